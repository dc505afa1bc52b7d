"""Feeds over the API: sources, runs, their quarantine, running a source now, and event search.
Thin: parse, call one selector or service, shape. What a caller sees is decided by core.visibility
through the selectors."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Schema
from ninja.pagination import LimitOffsetPagination, paginate

from certnet.accounts.models import User
from certnet.feeds import selectors
from certnet.feeds.models import FeedRun, FeedSource
from certnet.feeds.services import collect_and_run

router = Router(tags=["feeds"])


class SourceOut(Schema):
    code: str
    name: str
    provider: str
    owner: str
    collector: str
    location: str
    parser: str
    tlp: str
    schedule_minutes: int | None
    dedup_window_hours: int
    enabled: bool


class RunOut(Schema):
    id: int
    source: str
    # Resolvers let the paged lists hand ninja a query set instead of every row.

    @staticmethod
    def resolve_source(run: Any) -> str:
        return str(run["source"]) if isinstance(run, dict) else str(run.source.code)

    file_name: str
    sha256: str
    bytes: int
    mapping: str
    status: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    counts: dict[str, int]
    per_cert: dict[str, int]
    notes: list[str]
    error: str


class QuarantinedOut(Schema):
    id: int
    batch: str
    line: int | None
    reason: str
    raw: str


class EventFilters(Schema):
    ip: str = ""
    prefix: str = ""
    asn: int | None = None
    constituent: str = ""
    cert: str = ""
    taxonomy: str = ""
    type: str = ""
    feed: str = ""
    since: dt.date | None = None
    until: dt.date | None = None
    limit: int = 100
    offset: int = 0


class EventsOut(Schema):
    total: int
    limit: int
    offset: int
    events: list[dict[str, Any]]


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)  # noqa: S101 - the API authenticates every request first
    return user


def _source_out(source: FeedSource) -> dict[str, Any]:
    return {
        "code": source.code,
        "name": source.name,
        "provider": source.provider,
        "owner": source.owner.slug,
        "collector": source.collector,
        "location": source.location,
        "parser": source.parser,
        "tlp": source.tlp,
        "schedule_minutes": source.schedule_minutes,
        "dedup_window_hours": source.dedup_window_hours,
        "enabled": source.enabled,
    }


def _run_out(run: FeedRun) -> dict[str, Any]:
    return {
        "id": run.pk,
        "source": run.source.code,
        "file_name": run.file_name,
        "sha256": run.sha256,
        "bytes": run.bytes,
        "mapping": run.mapping,
        "status": run.status,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "counts": run.counts,
        "per_cert": run.per_cert,
        "notes": run.notes,
        "error": run.error,
    }


@router.get("/feeds/sources", response=list[SourceOut], summary="Feed sources you may see")
@paginate(LimitOffsetPagination)
def list_sources(request: HttpRequest) -> Any:
    return [_source_out(s) for s in selectors.visible_sources(_user(request))]


@router.get("/feeds/sources/{code}", response=SourceOut)
def get_source(request: HttpRequest, code: str) -> dict[str, Any]:
    return _source_out(selectors.access_source(_user(request), code))


@router.post(
    "/feeds/sources/{code}/run",
    response={200: list[RunOut]},
    summary="Collect the source now and run what it has, in this process",
)
def run_source(request: HttpRequest, code: str) -> list[dict[str, Any]]:
    user = _user(request)
    return [_run_out(outcome.run) for outcome in collect_and_run(user, selectors.access_source(user, code))]


@router.get("/feeds/runs", response=list[RunOut], summary="Feed runs you may see, newest first")
@paginate(LimitOffsetPagination)
def list_runs(request: HttpRequest, source: str = "") -> Any:
    user = _user(request)
    chosen = selectors.access_source(user, source) if source else None
    return selectors.runs_of(user, chosen)


@router.get("/feeds/runs/{run_id}", response=RunOut)
def get_run(request: HttpRequest, run_id: int) -> dict[str, Any]:
    return _run_out(selectors.access_run(_user(request), run_id))


@router.get(
    "/feeds/runs/{run_id}/quarantine", response=list[QuarantinedOut], summary="A run's malformed rows"
)
@paginate(LimitOffsetPagination)
def run_quarantine(request: HttpRequest, run_id: int) -> Any:
    user = _user(request)
    run = selectors.access_run(user, run_id)
    return selectors.quarantine_of(user, run)


@router.get(
    "/feeds/events",
    response=EventsOut,
    summary="Feed events you may read: a constituent its own, a CERT its constituency's",
)
def search_events(request: HttpRequest, filters: Query[EventFilters]) -> dict[str, Any]:
    query = selectors.EventQuery(**filters.model_dump())
    events, total = selectors.search_events(_user(request), query)
    return {"total": total, "limit": query.limit, "offset": query.offset, "events": events}
