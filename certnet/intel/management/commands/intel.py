from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from certnet.accounts.selectors import get_user_by_username
from certnet.core.errors import DomainError
from certnet.intel import csvfile, selectors
from certnet.intel.services.indicators import record_indicators


class Command(BaseCommand):
    help = "Import indicators from a CSV file, or export the indicators a user may see as CSV."

    def add_arguments(self, parser: CommandParser) -> None:
        verbs = parser.add_subparsers(dest="verb", required=True)
        importing = verbs.add_parser("import", help="record the rows of FILE (- reads stdin) for --owner")
        importing.add_argument("file")
        importing.add_argument("--owner", required=True, help="slug of the organisation recording them")
        importing.add_argument(
            "--user", required=True, help="the analyst on whose authority they are recorded"
        )
        exporting = verbs.add_parser("export", help="print the indicators --user may see")
        exporting.add_argument("--format", choices=["csv"], default="csv")
        exporting.add_argument("--user", required=True, help="whose view of the indicators to export")
        exporting.add_argument("--kind")
        exporting.add_argument("--owner")
        exporting.add_argument("--tag")

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
            text = sys.stdin.read()
        else:
            path = Path(name)
            if not path.is_file():
                raise CommandError(f"{name}: no such file")
            text = path.read_text(encoding="utf-8-sig")
        if text.lstrip().startswith(("{", "[")):
            raise CommandError(
                f"{name}: this is JSON; import takes CSV (columns: {', '.join(csvfile.COLUMNS)})"
            )
        items, labels = csvfile.read_csv(text)
        result = record_indicators(actor=user, owner=options["owner"], items=items, labels=labels)
        self.stdout.write(
            f"{len(result.created)} indicators recorded, {len(result.updated)} brought up to date, "
            f"{len(result.alerts)} correlation alerts raised or widened"
        )

    def _export(self, user: Any, options: dict[str, Any]) -> None:
        queryset = selectors.visible_indicators(
            user, kind=options["kind"], owner=options["owner"], tag=options["tag"]
        ).prefetch_related("tags")
        for line in csvfile.write_csv(queryset.iterator(chunk_size=2000)):
            self.stdout.write(line, ending="")
