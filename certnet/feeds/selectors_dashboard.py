"""Reads behind the feed pages: the sources overview, a source's volumes per day, and the national
feed dashboard over the events store.

What a user may see is decided elsewhere: sources and runs through `selectors` (the restrict()
managers), events through `selectors._visibility_condition`, the one SQL condition for the store.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import duckdb
from django.db.models import OuterRef, Subquery

from certnet.core import clock
from certnet.core.errors import FieldError, InvalidInput
from certnet.feeds.models import FeedRun, FeedSource, RunStatus
from certnet.feeds.selectors import _quote, _visibility_condition, runs_of, visible_sources
from certnet.feeds.store import EventStore

if TYPE_CHECKING:
    from certnet.core.visibility import UserLike

DEFAULT_DAYS = 30
MAX_DAYS = 365
RECENT_DAYS = 7
VOLUME_FIELDS = ("read", "written", "routed", "unrouted", "duplicates", "quarantined")
UNKNOWN = "(none)"


# --- sources and runs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceOverview:
    source: FeedSource
    last_run: FeedRun | None
    routed_recently: int


def sources_overview(user: UserLike | None) -> list[SourceOverview]:
    """Every source `user` may see, with its last run and the events its runs routed in the last
    RECENT_DAYS days. Three queries, whatever the number of sources."""
    latest = runs_of(user).filter(source=OuterRef("pk")).order_by("-started_at", "-id").values("pk")[:1]
    sources = list(visible_sources(user).annotate(last_run_id=Subquery(latest)))
    wanted = [s.last_run_id for s in sources if s.last_run_id is not None]
    last_runs = runs_of(user).in_bulk(wanted)
    since = clock.now() - dt.timedelta(days=RECENT_DAYS)
    routed: Counter[int] = Counter()
    recent = runs_of(user).filter(source__in=[s.pk for s in sources], started_at__gte=since)
    for source_id, counts in recent.values_list("source_id", "counts"):
        routed[source_id] += _count(counts, "routed")
    return [
        SourceOverview(
            source=s,
            last_run=last_runs.get(s.last_run_id),
            routed_recently=routed[s.pk],
        )
        for s in sources
    ]


@dataclass(frozen=True)
class DayVolume:
    day: dt.date
    runs: int
    counts: dict[str, int]
    share: float  # of the busiest day's written events (0 to 100), for a bar


def run_volumes(user: UserLike | None, source: FeedSource, days: int = DEFAULT_DAYS) -> list[DayVolume]:
    """Per day a run of `source` started on, over the last `days` days: the runs' counts summed."""
    since = clock.now() - dt.timedelta(days=days)
    totals: dict[dt.date, Counter[str]] = defaultdict(Counter)
    runs: Counter[dt.date] = Counter()
    for started, counts in (
        runs_of(user, source).filter(started_at__gte=since).values_list("started_at", "counts")
    ):
        day = started.astimezone(dt.UTC).date()
        runs[day] += 1
        for name in VOLUME_FIELDS:
            totals[day][name] += _count(counts, name)
    busiest = max((c["written"] for c in totals.values()), default=0)
    return [
        DayVolume(
            day=day,
            runs=runs[day],
            counts={name: totals[day][name] for name in VOLUME_FIELDS},
            share=_percent(totals[day]["written"], busiest),
        )
        for day in sorted(totals, reverse=True)
    ]


def failed_runs(user: UserLike | None, source: FeedSource, limit: int = 20) -> list[FeedRun]:
    return list(runs_of(user, source).filter(status=RunStatus.FAILED)[:limit])


# --- the national feed dashboard ---------------------------------------------------------------------


COLOURS = 8  # bar colours the template knows (fc0 … fc7); columns past them reuse them


@dataclass(frozen=True)
class Column:
    label: str
    colour: int


@dataclass(frozen=True)
class Part:
    label: str
    count: int
    width: float  # percent of the day's bar
    colour: int


@dataclass(frozen=True)
class DayBreakdown:
    day: dt.date
    total: int
    cells: list[int]  # one per column of the table, in the table's order
    parts: list[Part]  # the non-empty cells, for a stacked bar
    width: float  # the day's total as a percent of the busiest day's


@dataclass(frozen=True)
class Breakdown:
    columns: list[Column]
    days: list[DayBreakdown]
    totals: list[int]


@dataclass(frozen=True)
class UnroutedDay:
    day: dt.date
    total: int
    unrouted: int
    share: float  # percent of the day's events


@dataclass
class Dashboard:
    since: dt.date
    until: dt.date
    store_empty: bool = True
    total: int = 0
    by_taxonomy: Breakdown = field(default_factory=lambda: Breakdown([], [], []))
    by_cert: Breakdown = field(default_factory=lambda: Breakdown([], [], []))
    unrouted: list[UnroutedDay] = field(default_factory=list)


def dashboard_days(text: str | None) -> int:
    """The `days` parameter: a whole number from 1 to MAX_DAYS (DEFAULT_DAYS when not given)."""
    if text is None or not text.strip():
        return DEFAULT_DAYS
    try:
        days = int(text.strip())
    except ValueError:
        days = 0
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInput(
            "days out of range", errors=[FieldError("days", f"a whole number from 1 to {MAX_DAYS}")]
        )
    return days


def feed_dashboard(user: UserLike | None, days: int = DEFAULT_DAYS) -> Dashboard:
    """Events `user` may read, per day of the last `days` days (today included): by classification
    taxonomy, by handling CERT, and the share left unrouted. One scan of the store, limited to the
    period's day partitions."""
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInput(
            "days out of range", errors=[FieldError("days", f"a whole number from 1 to {MAX_DAYS}")]
        )
    until = clock.today()
    since = until - dt.timedelta(days=days - 1)
    dashboard = Dashboard(since=since, until=until)
    rows = _grouped(user, EventStore.configured(), since, until)
    if rows is None:
        return dashboard
    dashboard.store_empty = False
    dashboard.total = sum(count for *_, count in rows)
    by_taxonomy: dict[dt.date, Counter[str]] = defaultdict(Counter)
    by_cert: dict[dt.date, Counter[str]] = defaultdict(Counter)
    unrouted: Counter[dt.date] = Counter()
    for day, taxonomy, cert, is_unrouted, count in rows:
        by_taxonomy[day][taxonomy or UNKNOWN] += count
        by_cert[day][cert or UNKNOWN] += count
        if is_unrouted:
            unrouted[day] += count
    dashboard.by_taxonomy = _breakdown(by_taxonomy)
    dashboard.by_cert = _breakdown(by_cert)
    for day in sorted(by_taxonomy, reverse=True):
        total = sum(by_taxonomy[day].values())
        share = _percent(unrouted[day], total)
        dashboard.unrouted.append(UnroutedDay(day=day, total=total, unrouted=unrouted[day], share=share))
    return dashboard


def _grouped(
    user: UserLike | None, store: EventStore, since: dt.date, until: dt.date
) -> list[tuple[dt.date, str | None, str | None, bool, int]] | None:
    """None when the store holds no file at all."""
    connection = duckdb.connect()
    try:
        events = store.events(connection)
        if events is None:
            return None
        present = set(events.columns)

        def column(name: str) -> str:
            return f'"{name}"' if name in present else "NULL"

        # `day` is the partition column: DuckDB reads only the period's directories. TRY_CAST keeps
        # a partition whose name is not a date out of the way instead of failing the query.
        first, last = _quote(since.isoformat()), _quote(until.isoformat())
        period = f"TRY_CAST(day AS DATE) BETWEEN DATE {first} AND DATE {last}"
        matching = events.filter(f"{_visibility_condition(user)} AND {period}")
        keys = matching.project(
            "TRY_CAST(day AS DATE) AS d, "
            f"{column('classification.taxonomy')} AS taxonomy, "
            f"{column('route.cert')} AS cert, "
            f"{column('route.organisation')} IS NULL AS unrouted"
        )
        grouped = keys.aggregate("d, taxonomy, cert, unrouted, count(*) AS n", "d, taxonomy, cert, unrouted")
        return [(d, tax, cert, bool(unrouted), int(n)) for d, tax, cert, unrouted, n in grouped.fetchall()]
    finally:
        connection.close()


def _breakdown(per_day: dict[dt.date, Counter[str]]) -> Breakdown:
    overall: Counter[str] = Counter()
    for counts in per_day.values():
        overall.update(counts)
    labels = [label for label, _ in sorted(overall.items(), key=lambda item: (-item[1], item[0]))]
    columns = [Column(label, i % COLOURS) for i, label in enumerate(labels)]
    busiest = max((sum(c.values()) for c in per_day.values()), default=0)
    days = []
    for day in sorted(per_day, reverse=True):
        counts = per_day[day]
        total = sum(counts.values())
        days.append(
            DayBreakdown(
                day=day,
                total=total,
                cells=[counts[c.label] for c in columns],
                parts=[
                    Part(c.label, counts[c.label], _percent(counts[c.label], total), c.colour)
                    for c in columns
                    if counts[c.label]
                ],
                width=_percent(total, busiest),
            )
        )
    return Breakdown(columns=columns, days=days, totals=[overall[c.label] for c in columns])


def _count(counts: object, name: str) -> int:
    value = counts.get(name, 0) if isinstance(counts, dict) else 0
    return value if isinstance(value, int) else 0


def _percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0
