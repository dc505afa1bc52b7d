"""Feed sources and runs: every change audited, every run recorded with its counts and quarantine."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from django.conf import settings
from django.db import transaction

from certnet.core import audit, clock
from certnet.core.errors import Conflict, FieldError, InvalidInput
from certnet.core.tlp import TLP
from certnet.core.visibility import require
from certnet.feeds.dedup import SqliteSeenKeys
from certnet.feeds.engine import (
    BatchResult,
    Pipeline,
    Quarantined,
    RunSummary,
    SourceSettings,
    file_digest,
    run_file,
)
from certnet.feeds.mapping import Mapping, available_mappings
from certnet.feeds.models import Collector, FeedRun, FeedSource, QuarantinedRow, RunStatus
from certnet.feeds.store import EventStore
from certnet.registry.models import Organisation

# A quarantined line is kept whole up to this size; beyond it the head is kept and the size noted.
RAW_KEEP_CHARS = 64 * 1024
if TYPE_CHECKING:
    from certnet.core.visibility import UserLike

Actor = Union["UserLike", audit.SystemActor]


def mappings() -> dict[str, Mapping]:
    return available_mappings(settings.CERTNET_FEED_MAPPINGS_DIR)


@dataclass(frozen=True)
class SourceInput:
    code: str
    name: str
    provider: str
    owner: str  # organisation slug
    collector: str = Collector.FILE
    location: str = ""
    parser: str = "auto"
    tlp: str = TLP.AMBER
    schedule_minutes: int | None = None
    dedup_window_hours: int = 24
    options: dict[str, Any] | None = None


def _check_source(data: SourceInput) -> list[FieldError]:
    errors = []
    if (
        not data.code
        or not data.code.replace("-", "").replace("_", "").isalnum()
        or data.code != data.code.lower()
    ):
        errors.append(FieldError("code", "use lower-case letters, digits, '-' and '_'"))
    if not data.name.strip():
        errors.append(FieldError("name", "a name is required"))
    if data.collector not in Collector.values:
        errors.append(FieldError("collector", f"expected one of: {', '.join(Collector.values)}"))
    if data.parser != "auto" and data.parser not in mappings():
        errors.append(
            FieldError(
                "parser",
                f"unknown mapping {data.parser!r}; 'auto' or one of: {', '.join(mappings())}",
            )
        )
    if data.tlp not in TLP.values:
        errors.append(FieldError("tlp", f"expected one of: {', '.join(TLP.values)}"))
    if data.dedup_window_hours < 1:
        errors.append(FieldError("dedup_window_hours", "the window is at least one hour"))
    return errors


def create_source(actor: Actor, data: SourceInput) -> FeedSource:
    errors = _check_source(data)
    owner = Organisation.objects.filter(slug=data.owner).first()
    if owner is None:
        errors.append(FieldError("owner", f"no organisation {data.owner!r}"))
    if errors or owner is None:
        raise InvalidInput("the feed source is not valid", errors=errors)
    if FeedSource.objects.filter(code=data.code).exists():
        raise Conflict(f"a feed source {data.code!r} exists already")
    with transaction.atomic():
        source = FeedSource.objects.create(
            code=data.code,
            name=data.name.strip(),
            provider=data.provider.strip(),
            owner=owner,
            collector=data.collector,
            location=data.location,
            parser=data.parser,
            options=data.options or {},
            tlp=data.tlp,
            schedule_minutes=data.schedule_minutes,
            dedup_window_hours=data.dedup_window_hours,
            created_at=clock.now(),
        )
        audit.record(
            actor=actor,
            action="feeds.source_created",
            target=source,
            organisation_id=owner.pk if owner else None,
            data={
                "code": source.code,
                "provider": source.provider,
                "parser": source.parser,
                "tlp": source.tlp,
            },
        )
    return source


def pipeline_for(source: FeedSource) -> Pipeline:
    state = settings.CERTNET_FEEDS_STATE_DIR / "seen.sqlite3"
    seen = SqliteSeenKeys(state, window=dt.timedelta(hours=source.dedup_window_hours), namespace=source.code)
    return Pipeline(store=EventStore.configured(), seen=seen, observed_at=clock.now)


def settings_for(source: FeedSource) -> SourceSettings:
    mapping: Mapping | None = None if source.parser == "auto" else mappings()[source.parser]
    return SourceSettings(
        code=source.code,
        provider=source.provider,
        tlp=source.tlp.upper(),
        mapping=mapping,
        candidates=mappings(),
    )


@dataclass
class RunOutcome:
    run: FeedRun
    summary: RunSummary | None  # None when the file had been processed already
    repeated: bool = False


def check_may_run(actor: Actor, source: FeedSource, path: Path) -> None:
    if not isinstance(actor, audit.SystemActor):
        require(actor, "run", source, label=f"feed source {source.code}")
    if not path.is_file():
        raise InvalidInput(
            f"{path}: no such file", errors=[FieldError("file", f"{path} is not a readable file")]
        )


def start_run(actor: Actor, source: FeedSource, path: Path, sha256: str) -> FeedRun:
    user = None if isinstance(actor, audit.SystemActor) else actor
    with transaction.atomic():
        run = FeedRun.objects.create(
            source=source,
            owner=source.owner,
            started_by=user if getattr(user, "pk", None) else None,  # type: ignore[misc]
            file_name=path.name,
            sha256=sha256,
            bytes=path.stat().st_size,
            started_at=clock.now(),
            tlp=source.tlp,
        )
        audit.record(
            actor=actor,
            action="feeds.run_started",
            target=run,
            organisation_id=source.owner_id,
            data={"source": source.code, "file": path.name, "sha256": sha256},
        )
    return run


def finish_run(actor: Actor, run: FeedRun, summary: RunSummary) -> FeedRun:
    """Record the run's outcome; its stored events are offered to intel as sightings first, so the
    run's record says how many indicators they met."""
    from certnet.feeds.cii import alert_cii_operators
    from certnet.feeds.correlation import correlate_run

    sightings = correlate_run(run) if summary.written else None
    cii_reports = alert_cii_operators(run) if summary.written else []
    with transaction.atomic():
        run.status = RunStatus.FAILED if summary.error else RunStatus.DONE
        run.finished_at = clock.now()
        run.mapping = summary.mapping
        run.counts = {k: v for k, v in summary.as_dict().items() if isinstance(v, int)}
        if sightings is not None:
            run.counts["indicator_hits"] = sightings.matched_events
            run.counts["sightings"] = sightings.sightings
            run.counts["correlation_alerts"] = len(sightings.alerts)
        run.counts["cii_reports"] = len(cii_reports)
        run.per_cert = dict(summary.per_cert)
        run.notes = summary.notes
        run.error = summary.error
        run.save()
        audit.record(
            actor=actor,
            action="feeds.run_finished",
            target=run,
            organisation_id=run.owner_id,
            data={"status": run.status, "counts": run.counts, "error": run.error},
        )
    return run


def previous_run(source: FeedSource, sha256: str) -> FeedRun | None:
    return FeedRun.objects.filter(source=source, sha256=sha256, status=RunStatus.DONE).first()


def begin_run(
    actor: Actor, source: FeedSource, path: Path, *, again: bool
) -> RunOutcome | tuple[FeedRun, str]:
    """A new run of the file (and its digest), or the outcome of the run that already took it."""
    check_may_run(actor, source, path)
    sha256 = file_digest(path)
    previous = previous_run(source, sha256)
    if previous is not None and not again:
        return RunOutcome(run=previous, summary=None, repeated=True)
    return start_run(actor, source, path, sha256), sha256


def run_source_file(
    actor: Actor,
    source: FeedSource,
    path: Path,
    *,
    again: bool = False,
    on_batch: Callable[[BatchResult, int], None] | None = None,
) -> RunOutcome:
    """Run one file of `source` through the pipeline in this process and keep the run's record.

    The same file twice is answered with the first run unless `again`: processing it again is
    harmless (its batches replace their own output) but pointless."""
    begun = begin_run(actor, source, path, again=again)
    if isinstance(begun, RunOutcome):
        return begun
    run, sha256 = begun
    pipeline = pipeline_for(source)
    try:
        summary = run_file(
            path,
            settings_for(source),
            pipeline,
            on_quarantine=lambda rows: keep_quarantined(run, rows),
            on_batch=on_batch,
            sha256=sha256,
            block_bytes=settings.CERTNET_FEED_BLOCK_BYTES,
        )
    finally:
        pipeline.close()
    return RunOutcome(run=finish_run(actor, run, summary), summary=summary)


def keep_quarantined(run: FeedRun, rows: list[Quarantined], batch: str | None = None) -> None:
    """Keep a batch's quarantined rows; for a batch processed again, its rows replace the earlier ones."""
    with transaction.atomic():
        if batch is not None:
            QuarantinedRow.objects.filter(run=run, batch=batch).delete()
        QuarantinedRow.objects.bulk_create(
            [
                QuarantinedRow(
                    run=run,
                    owner_id=run.owner_id,
                    batch=r.batch,
                    line=r.line,
                    reason=r.reason[:500],
                    raw=_kept(r.raw),
                    tlp=run.tlp,
                )
                for r in rows
            ],
            batch_size=1000,
        )


def _kept(raw: str) -> str:
    if len(raw) <= RAW_KEEP_CHARS:
        return raw
    return raw[:RAW_KEEP_CHARS] + f"\n[… {len(raw) - RAW_KEEP_CHARS} more characters not kept]"


MANUAL_SOURCE = "manual-files"


def source_for_file(path: Path, code: str | None = None) -> FeedSource:
    """The source a file given by hand belongs to: the one named, else the one configured for the
    report the file holds (or for any report of its provider), else the platform's own source for
    files brought by hand."""
    from certnet.feeds import reader as feed_reader
    from certnet.feeds.mapping import detect_mapping

    if code:
        source = FeedSource.objects.filter(code=code).first()
        if source is None:
            raise InvalidInput(
                f"no feed source {code!r}", errors=[FieldError("source", f"no feed source {code!r}")]
            )
        return source
    try:
        mapping = detect_mapping(path.name, feed_reader.sniff_csv(path).columns, mappings())
    except (feed_reader.UnreadableFile, OSError):
        mapping = None
    if mapping is not None:
        configured = FeedSource.objects.filter(parser=mapping.key).order_by("code").first()
        configured = configured or (
            FeedSource.objects.filter(parser="auto", provider__iexact=mapping.provider)
            .order_by("code")
            .first()
        )
        if configured is not None:
            return configured
    existing = FeedSource.objects.filter(code=MANUAL_SOURCE).first()
    if existing is not None:
        return existing
    operator = Organisation.objects.filter(kind="national-cert").order_by("pk").first()
    if operator is None:
        raise Conflict(
            "no national CERT in the registry to operate files brought by hand; configure a source"
        )
    return create_source(
        audit.SystemActor("feeds"),
        SourceInput(
            code=MANUAL_SOURCE, name="Files brought by hand", provider="various", owner=operator.slug
        ),
    )


def install_shadowserver_schema(actor: Actor, schema_file: Path) -> list[Path]:
    """Translate a Shadowserver report schema (as downloaded from Shadowserver) into this
    installation's mappings, replacing those translated before; audited."""
    from certnet.feeds import shadowserver

    operator = Organisation.objects.filter(kind="national-cert").order_by("pk").first()
    if operator is None:
        raise Conflict("no national CERT in the registry to record the change against")
    translation = shadowserver.translate_schema(schema_file)
    directory = settings.CERTNET_FEED_MAPPINGS_DIR / "shadowserver"
    with transaction.atomic():
        written = shadowserver.write_mapping_files(
            translation.mappings, directory, schema_date=translation.schema_date, notes=translation.notes
        )
        audit.record(
            actor=actor,
            action="feeds.mappings_installed",
            target=operator,
            organisation_id=operator.pk,
            data={"file": schema_file.name, "schema_date": translation.schema_date, "reports": len(written)},
        )
    return written


def collect(source: FeedSource) -> list[Path]:
    """The files a source has now: its file or directory, a download, or a mailbox's attachments.
    Downloads and attachments are kept under the spool directory, one folder per collection."""
    from certnet.feeds import collectors

    if source.collector == Collector.FILE:
        return collectors.collect_files(source.location)
    spool = settings.CERTNET_FEEDS_STATE_DIR / "spool" / source.code / clock.now().strftime("%Y%m%dT%H%M%S%f")
    if source.collector == Collector.HTTP:
        options = source.options or {}
        limits = collectors.CollectLimits(
            timeout_seconds=float(options.get("timeout_seconds", 60)),
            max_bytes=int(options.get("max_bytes", 2 * 1024**3)),
        )
        return collectors.collect_http(source.location, spool, limits, headers=options.get("headers"))
    return collectors.collect_mailbox(source.location, spool)


def due_sources(now: dt.datetime | None = None) -> list[FeedSource]:
    """Enabled sources with a schedule whose last run started at least one interval ago (or never)."""
    now = now or clock.now()
    due = []
    for source in FeedSource.objects.filter(enabled=True, schedule_minutes__isnull=False):
        last = (
            FeedRun.objects.filter(source=source)
            .order_by("-started_at")
            .values_list("started_at", flat=True)
            .first()
        )
        if last is None or last + dt.timedelta(minutes=source.schedule_minutes or 0) <= now:
            due.append(source)
    return due


def collect_and_run(actor: Actor, source: FeedSource) -> list[RunOutcome]:
    """Collect the source now and run what it has. A source that cannot be collected is recorded as
    a failed run with the reason, so its page shows it."""
    from certnet.feeds.collectors import CollectError

    if not isinstance(actor, audit.SystemActor):
        require(actor, "run", source, label=f"feed source {source.code}")
    try:
        paths = collect(source)
    except CollectError as error:
        return [RunOutcome(run=_failed_collection(actor, source, str(error)), summary=None)]
    return [run_source_file(actor, source, path) for path in paths]


def run_due_sources(actor: Actor) -> list[RunOutcome]:
    """Collect and run every source that is due; one that fails does not stop the others."""
    return [outcome for source in due_sources() for outcome in collect_and_run(actor, source)]


def _failed_collection(actor: Actor, source: FeedSource, reason: str) -> FeedRun:
    with transaction.atomic():
        run = FeedRun.objects.create(
            source=source,
            owner=source.owner,
            file_name=source.location[:300],
            sha256="",
            started_at=clock.now(),
            finished_at=clock.now(),
            status=RunStatus.FAILED,
            error=reason,
            tlp=source.tlp,
        )
        audit.record(
            actor=actor,
            action="feeds.collect_failed",
            target=run,
            organisation_id=source.owner_id,
            data={"source": source.code, "error": reason},
        )
    return run
