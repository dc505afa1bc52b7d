"""`certnet feeds …`: run feed files through the pipeline, manage sources, render the field reference."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from certnet.accounts.selectors import get_user_by_username
from certnet.core.audit import SystemActor
from certnet.core.errors import DomainError
from certnet.feeds.collectors import CollectError
from certnet.feeds.engine import RUN_COUNTS, BatchResult
from certnet.feeds.models import FeedSource
from certnet.feeds.schema import field_reference
from certnet.feeds.services import (
    RunOutcome,
    SourceInput,
    collect,
    create_source,
    install_shadowserver_schema,
    run_source_file,
    source_for_file,
)


class Command(BaseCommand):
    help = "Run feed files through the pipeline (parse, deduplicate, route, store) and manage feed sources."

    def add_arguments(self, parser: CommandParser) -> None:
        verbs = parser.add_subparsers(dest="verb", required=True)
        run = verbs.add_parser("run", help="run a configured source, or a file or directory, in this process")
        run.add_argument("target", help="a source code, or a file or directory of files")
        run.add_argument("--source", help="the source a file belongs to (default: recognised from the file)")
        run.add_argument(
            "--again", action="store_true", help="process a file again that was processed before"
        )
        run.add_argument("--json", action="store_true", help="print each run's summary as JSON")
        run.add_argument("--user", help="run on this person's authority (default: the platform operator)")
        run.add_argument(
            "--distributed",
            action="store_true",
            help="put the batches on the Redis stream (REDIS_URL) for `certnet worker` processes",
        )
        run.add_argument(
            "--wait", action="store_true", help="with --distributed: wait until the workers finish"
        )
        verbs.add_parser("sources", help="list the configured sources")
        add = verbs.add_parser("add-source", help="configure a source")
        add.add_argument("code")
        add.add_argument("--name", required=True)
        add.add_argument("--provider", required=True)
        add.add_argument("--owner", required=True, help="slug of the CERT that operates the source")
        add.add_argument("--collector", default="file", choices=["file", "http", "mailbox"])
        add.add_argument("--location", default="", help="path, URL or mailbox file")
        add.add_argument("--parser", default="auto", help="mapping (provider/report) or auto")
        add.add_argument("--tlp", default="amber")
        add.add_argument("--every", type=int, help="run every N minutes")
        add.add_argument("--window-hours", type=int, default=24, help="deduplication window")
        add.add_argument("--timeout", type=float, help="http: seconds before a download is abandoned")
        add.add_argument("--max-bytes", type=int, help="http: the largest download accepted")
        schema = verbs.add_parser(
            "shadowserver-schema", help="install mappings translated from a Shadowserver report schema file"
        )
        schema.add_argument("file", help="the schema as downloaded from Shadowserver (JSON)")
        digests = verbs.add_parser("digests", help="e-mail each constituent its events of a period (once)")
        digests.add_argument("--hours", type=int, default=24, help="the period's length")
        digests.add_argument("--until", help="the period's end, ISO 8601 (default: the current hour)")
        fields = verbs.add_parser("fields", help="print (or --write) the event field reference")
        fields.add_argument("--write", help="write it to this file instead")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, "_" + options["verb"].replace("-", "_"))(options)
        except DomainError as error:
            raise CommandError(
                error.message_with_fields() if hasattr(error, "message_with_fields") else str(error)
            ) from error

    def _actor(self, options: dict[str, Any]) -> Any:
        if not options.get("user"):
            return SystemActor("feeds-cli")
        user = get_user_by_username(options["user"])
        if user is None or not user.is_active:
            raise CommandError(f"no active user {options['user']!r}")
        return user

    def _run(self, options: dict[str, Any]) -> None:
        actor = self._actor(options)
        target = options["target"]
        source = FeedSource.objects.filter(code=target).first()
        if source is not None:
            if not source.location:
                raise CommandError(f"source {source.code!r} has no location to read from")
            try:
                paths = collect(source)
            except CollectError as error:
                raise CommandError(str(error)) from error
        else:
            path = Path(target)
            if not path.exists():
                raise CommandError(f"{target!r} is neither a configured source nor a file or directory")
            paths = _files_in(path)
        if not paths:
            raise CommandError(f"no files to run in {target!r}")
        console = Console(stderr=True)
        failures = 0
        for path in paths:
            chosen = source or source_for_file(path, options.get("source"))
            outcome = self._run_one(actor, chosen, path, options, console)
            failures += bool(outcome.run.error)
        if failures:
            raise CommandError(f"{failures} of {len(paths)} file(s) could not be run to the end (see above)")

    def _run_one(
        self, actor: Any, source: FeedSource, path: Path, options: dict[str, Any], console: Console
    ) -> RunOutcome:
        if options.get("distributed"):
            return self._enqueue_one(actor, source, path, options, console)
        return self._run_here(actor, source, path, options, console)

    def _enqueue_one(
        self, actor: Any, source: FeedSource, path: Path, options: dict[str, Any], console: Console
    ) -> RunOutcome:
        from certnet.feeds.distributed import enqueue_source_file, redis_client

        outcome = enqueue_source_file(actor, source, path, redis_client(), again=options["again"])
        run = outcome.run
        if not outcome.repeated and run.status == "running":
            console.print(f"run {run.pk}: {path.name} queued for the workers")
            while options.get("wait") and run.status == "running":
                time.sleep(0.5)
                run.refresh_from_db()
        self._report(outcome, options, console)
        return outcome

    def _run_here(
        self, actor: Any, source: FeedSource, path: Path, options: dict[str, Any], console: Console
    ) -> RunOutcome:
        size = path.stat().st_size
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TextColumn("{task.fields[rows]:>12,} rows  {task.fields[rate]:>10,.0f} rows/s"),
            TimeElapsedColumn(),
            console=console,
            transient=not console.is_terminal,
            disable=options.get("json", False),
        ) as progress:
            task = progress.add_task(path.name, total=size, rows=0, rate=0.0)
            seen = {"rows": 0}

            def advance(result: BatchResult, position: int) -> None:
                seen["rows"] += result.read
                elapsed = progress.tasks[task].elapsed or 0.0
                rate = seen["rows"] / elapsed if elapsed else 0.0
                progress.update(task, completed=min(size, position), rows=seen["rows"], rate=rate)

            outcome = run_source_file(actor, source, path, again=options["again"], on_batch=advance)
            progress.update(task, completed=size)
        self._report(outcome, options, console)
        return outcome

    def _report(self, outcome: RunOutcome, options: dict[str, Any], console: Console) -> None:
        run = outcome.run
        if options.get("json"):
            self.stdout.write(
                json.dumps(
                    {
                        "run": run.pk,
                        "repeated": outcome.repeated,
                        "status": run.status,
                        **run.counts,
                        "per_cert": run.per_cert,
                        "mapping": run.mapping,
                        "notes": run.notes,
                        "error": run.error,
                    }
                )
            )
            return
        if outcome.repeated:
            console.print(
                f"{run.file_name}: processed already in run {run.pk} (use --again to process it again)"
            )
        table = Table(
            title=f"run {run.pk}: {run.file_name} ({run.mapping or 'not recognised'})", show_header=False
        )
        for key in RUN_COUNTS:
            table.add_row(key, f"{run.counts.get(key, 0):,}")
        for cert, count in sorted(run.per_cert.items()):
            table.add_row(f"  routed to {cert}", f"{count:,}")
        console.print(table)
        for note in run.notes:
            console.print(f"note: {note}")
        if run.error:
            console.print(f"[red]error:[/red] {run.error}")

    def _sources(self, options: dict[str, Any]) -> None:
        for source in FeedSource.objects.select_related("owner"):
            every = f"every {source.schedule_minutes} min" if source.schedule_minutes else "on demand"
            columns = (
                (source.code, 30),
                (source.provider, 16),
                (source.parser, 28),
                (source.tlp, 12),
                (every, 16),
            )
            self.stdout.write(" ".join(f"{text:{width}}" for text, width in columns) + f" {source.location}")

    def _add_source(self, options: dict[str, Any]) -> None:
        source = create_source(
            SystemActor("feeds-cli"),
            SourceInput(
                code=options["code"],
                name=options["name"],
                provider=options["provider"],
                owner=options["owner"],
                collector=options["collector"],
                location=options["location"],
                parser=options["parser"],
                tlp=options["tlp"],
                schedule_minutes=options["every"],
                dedup_window_hours=options["window_hours"],
                options={
                    key: value
                    for key, value in (
                        ("timeout_seconds", options["timeout"]),
                        ("max_bytes", options["max_bytes"]),
                    )
                    if value is not None
                },
            ),
        )
        self.stdout.write(f"source {source.code} configured")

    def _shadowserver_schema(self, options: dict[str, Any]) -> None:
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        try:
            written = install_shadowserver_schema(SystemActor("feeds-cli"), path)
        except ValueError as error:
            raise CommandError(str(error)) from error
        where = written[0].parent if written else "-"
        self.stdout.write(f"{len(written)} Shadowserver report mappings installed in {where}")

    def _digests(self, options: dict[str, Any]) -> None:
        from certnet.core import clock
        from certnet.feeds.digests import period_ending, send_digests

        try:
            end = dt.datetime.fromisoformat(options["until"]) if options.get("until") else clock.now()
        except ValueError as error:
            raise CommandError(f"--until: {options['until']!r} is not an ISO 8601 time") from error
        end = end if end.tzinfo else end.replace(tzinfo=dt.UTC)
        for digest in send_digests(
            period_ending(end.replace(minute=0, second=0, microsecond=0), options["hours"])
        ):
            state = f"sent to {digest.address}" if digest.sent_at else f"not sent: {digest.error}"
            self.stdout.write(f"{digest.organisation.slug}: {digest.events} events, {state}")

    def _fields(self, options: dict[str, Any]) -> None:
        text = field_reference()
        if options.get("write"):
            Path(options["write"]).write_text(text, encoding="utf-8")
        else:
            self.stdout.write(text)


def _files_in(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    return [path]
