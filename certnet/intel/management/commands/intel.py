from __future__ import annotations

import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from certnet.accounts.selectors import get_user_by_username
from certnet.core.errors import DomainError
from certnet.intel import csvfile, selectors
from certnet.intel.selectors import exports, misp_export
from certnet.intel.services.indicators import record_indicators
from certnet.intel.services.misp_import import MispImportOutcome, import_misp_event, import_misp_feed
from certnet.intel.services.stix_import import ImportOutcome, import_bundle

# A STIX bundle says so near its start; anything else in JSON is read as a MISP event.
STIX_BUNDLE = re.compile(rb'"type"\s*:\s*"bundle"')


class Command(BaseCommand):
    help = (
        "Import indicators from a STIX 2.1 bundle or a CSV file, or export the indicators a user may "
        "see as STIX 2.1 or CSV."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        verbs = parser.add_subparsers(dest="verb", required=True)
        importing = verbs.add_parser(
            "import",
            help="import FILE (- reads stdin) for --owner: a STIX 2.1 bundle, a MISP event (JSON), a MISP "
            "feed directory (with manifest.json) or CSV",
        )
        importing.add_argument("file")
        importing.add_argument(
            "--partial", action="store_true", help="take the valid objects of a bundle and report the rest"
        )
        importing.add_argument("--default-tlp", help="TLP for objects without a TLP marking (default amber)")
        importing.add_argument("--owner", required=True, help="slug of the organisation recording them")
        importing.add_argument(
            "--user", required=True, help="the analyst on whose authority they are recorded"
        )
        exporting = verbs.add_parser("export", help="print the indicators --user may see")
        exporting.add_argument("--format", choices=["stix", "misp", "csv"], default="csv")
        exporting.add_argument("--user", required=True, help="whose view of the indicators to export")
        exporting.add_argument("--kind")
        exporting.add_argument("--owner")
        exporting.add_argument("--tag")
        exporting.add_argument("--incident", type=int, help="only the indicators linked to this incident")
        exporting.add_argument("--report", type=int, help="an intel report (STIX: with the report object)")

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_by_username(options["user"])
        if user is None or not user.is_active:
            raise CommandError(f"no active user {options['user']!r}")
        try:
            if options["verb"] == "import":
                self._import(user, options)
            else:
                self._export(user, options)
        except DomainError as exc:
            raise CommandError("\n".join([exc.detail, *(f"  {e}" for e in exc.errors[:50])])) from None

    def _import(self, user: Any, options: dict[str, Any]) -> None:
        name = options["file"]
        if name == "-":
            spooled = tempfile.SpooledTemporaryFile(max_size=8 << 20)  # noqa: SIM115 - closed below
            spooled.write(sys.stdin.buffer.read())
            path: Path | None = None
        else:
            path = Path(name)
            if path.is_dir():
                self._import_feed(user, path, options)
                return
            if not path.is_file():
                raise CommandError(f"{name}: no such file")
        with path.open("rb") if path else spooled as stream:
            start = stream.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
            stream.seek(0)
            if start.startswith(b"{") and not STIX_BUNDLE.search(stream.read(1 << 16)):
                stream.seek(0)
                try:
                    data = json.load(stream)
                except (ValueError, UnicodeDecodeError) as exc:
                    raise CommandError(f"{name}: not valid JSON: {exc}") from None
                event = import_misp_event(
                    actor=user,
                    owner=options["owner"],
                    data=data,
                    partial=options["partial"],
                    source_name=name,
                )
                self._report_misp(event)
                return
            stream.seek(0)
            if start.startswith(b"{"):
                outcome = import_bundle(
                    actor=user,
                    owner=options["owner"],
                    source=stream,
                    partial=options["partial"],
                    default_tlp=options["default_tlp"],
                    source_name=name,
                )
                self._report(outcome)
                return
            if start.startswith(b"["):
                raise CommandError(f"{name}: a JSON list; import takes a STIX bundle (an object) or CSV")
            text = stream.read().decode("utf-8-sig")
        items, labels = csvfile.read_csv(text)
        result = record_indicators(actor=user, owner=options["owner"], items=items, labels=labels)
        self.stdout.write(
            f"{len(result.created)} indicators recorded, {len(result.updated)} brought up to date, "
            f"{len(result.alerts)} correlation alerts raised or widened"
        )

    def _import_feed(self, user: Any, path: Path, options: dict[str, Any]) -> None:
        if not (path / "manifest.json").is_file():
            raise CommandError(f"{path}: a directory is imported as a MISP feed and needs manifest.json")
        feed = import_misp_feed(
            actor=user, owner=options["owner"], directory=path, partial=options["partial"]
        )
        for event in feed.events:
            self._report_misp(event)
        for name in feed.not_in_manifest:
            self.stderr.write(f"not in manifest.json, not imported: {name}")
        self.stdout.write(f"import {feed.import_id}: {len(feed.events)} events")

    def _report_misp(self, outcome: MispImportOutcome) -> None:
        for refused in outcome.refused:
            self.stderr.write(f"refused {refused.where}: {'; '.join(str(e) for e in refused.errors)}")
        for kept in outcome.unsupported:
            self.stderr.write(f"unsupported, kept with the import: {kept.where} {kept.type} — {kept.note}")
        self.stdout.write(
            f"event {outcome.event_uuid}: {len(outcome.indicators)} indicators; intel report "
            f"{outcome.report_id or '-'} ({outcome.report}); {len(outcome.unsupported)} unsupported, "
            f"{len(outcome.refused)} refused; {outcome.alerts} correlation alerts raised or widened"
        )

    def _report(self, outcome: ImportOutcome) -> None:
        for refused in outcome.refused:
            where = refused.stix_id or refused.type or "object"
            self.stderr.write(f"refused objects[{refused.index}] {where}: {'; '.join(refused.reasons)}")
        counts = outcome.counts
        self.stdout.write(
            f"import {outcome.import_id}: {counts['objects']} objects; "
            f"{counts['indicators_created']} indicators recorded, {counts['indicators_updated']} brought "
            f"up to date, {counts['kept']} kept as STIX, {counts['sightings']} sightings, "
            f"{counts['refused']} refused; {outcome.alerts} correlation alerts raised or widened"
        )

    def _export(self, user: Any, options: dict[str, Any]) -> None:
        report = exports.access_report(user, options["report"]) if options["report"] else None
        if report is not None:
            queryset = exports.report_indicators(user, report)
        else:
            queryset = selectors.visible_indicators(
                user, kind=options["kind"], owner=options["owner"], tag=options["tag"]
            )
        if options["incident"]:
            queryset = queryset.filter(incidents=selectors.access_incident(user, options["incident"]))
        if options["format"] == "misp":
            if report is not None:
                event = misp_export.misp_event_for_report(user, report.pk)
            else:
                event = misp_export.misp_event_for_indicators(user, queryset, info="certnet indicator export")
            self.stdout.write(json.dumps(event, indent=1))
            return
        if options["format"] == "stix":
            self.stdout.write(json.dumps(exports.stix_bundle(user, queryset, report=report), indent=1))
            return
        for line in csvfile.write_csv(queryset.prefetch_related("tags").iterator(chunk_size=2000)):
            self.stdout.write(line, ending="")
