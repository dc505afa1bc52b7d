"""Web pages of feeds: the sources a user may see, a page per source and per run (with its
quarantine), event search over the events store, and the national feed dashboard. Thin: parse the
request, call a selector, render; what a user sees is decided by core.visibility through the
selectors."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from certnet.core.clock import parse_date
from certnet.core.errors import DomainError, InvalidInput
from certnet.core.pagination import CappedPaginator
from certnet.feeds import selectors, selectors_dashboard
from certnet.feeds.engine import RUN_COUNTS as PIPELINE_COUNTS
from certnet.feeds.selectors import MAX_EVENTS_PAGE, EventQuery
from certnet.web.rendering import render_page_or_fragment

RUNS_PAGE = 25
QUARANTINE_PAGE = 50
EVENTS_PAGE = 50
MAX_FILTER_TEXT = 200
# The search form's fields; `source` is the feed's code (EventQuery.feed).
TEXT_FILTERS = ("ip", "prefix", "constituent", "cert", "taxonomy", "type", "source")
ALL_FILTERS = (*TEXT_FILTERS, "asn", "since", "until")
# A run's counts in the order the pipeline takes them; any other count is listed after these.
RUN_COUNTS = (*PIPELINE_COUNTS, "bytes")


@login_required
def source_list(request: HttpRequest) -> HttpResponse:
    context = {"overview": selectors_dashboard.sources_overview(request.user)}
    return render(request, "feeds/sources.html", context)


@login_required
def source_detail(request: HttpRequest, code: str) -> HttpResponse:
    try:
        source = selectors.access_source(request.user, code)
    except DomainError:
        return render(request, "404.html", status=404)
    runs = selectors.runs_of(request.user, source)
    page = CappedPaginator(runs, RUNS_PAGE).get_page(request.GET.get("page"))
    context = {
        "source": source,
        "page": page,
        "runs": list(page.object_list),
        "volumes": selectors_dashboard.run_volumes(request.user, source),
        "volume_days": selectors_dashboard.DEFAULT_DAYS,
        "failures": selectors_dashboard.failed_runs(request.user, source),
    }
    return render_page_or_fragment(request, "feeds/source_detail.html", "feeds/_runs_table.html", context)


@login_required
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    try:
        run = selectors.access_run(request.user, run_id)
    except DomainError:
        return render(request, "404.html", status=404)
    rows = selectors.quarantine_of(request.user, run)
    page = CappedPaginator(rows, QUARANTINE_PAGE).get_page(request.GET.get("page"))
    context = {
        "run": run,
        "counts": [(name, run.counts.get(name, 0)) for name in RUN_COUNTS if name in run.counts],
        "other_counts": sorted((k, v) for k, v in run.counts.items() if k not in RUN_COUNTS),
        "per_cert": sorted(run.per_cert.items()),
        "page": page,
        "quarantined": list(page.object_list),
    }
    return render_page_or_fragment(request, "feeds/run_detail.html", "feeds/_quarantine_table.html", context)


@login_required
def event_search(request: HttpRequest) -> HttpResponse:
    query, errors = _event_query(request.GET)
    rows: list[dict[str, Any]] = []
    total = 0
    if not errors:
        try:
            rows, total = selectors.search_events(request.user, query)
        except InvalidInput as exc:
            for problem in exc.errors or ():
                errors[problem.loc].append(problem.msg)
            if not exc.errors:
                errors[""].append(exc.detail)
    shown = len(rows)
    context = {
        "form": {name: request.GET.get(name, "")[:MAX_FILTER_TEXT] for name in ALL_FILTERS},
        "sources": list(selectors.visible_sources(request.user).values_list("code", flat=True)),
        "errors": dict(errors),
        "events": [_event_row(row) for row in rows],
        "total": total,
        "first": query.offset + 1 if shown else 0,
        "last": query.offset + shown,
        "limit": query.limit,
        "previous_offset": max(query.offset - query.limit, 0) if query.offset > 0 else None,
        "next_offset": query.offset + query.limit if query.offset + shown < total else None,
    }
    return render_page_or_fragment(request, "feeds/events.html", "feeds/_event_result.html", context)


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    error = ""
    try:
        days = selectors_dashboard.dashboard_days(request.GET.get("days"))
    except InvalidInput as exc:
        error = "; ".join(str(problem) for problem in exc.errors) or exc.detail
        days = selectors_dashboard.DEFAULT_DAYS
    context = {
        "days": days,
        "days_text": request.GET.get("days", str(days))[:20],
        "error": error,
        "board": selectors_dashboard.feed_dashboard(request.user, days),
        "max_days": selectors_dashboard.MAX_DAYS,
    }
    return render(request, "feeds/dashboard.html", context)


def _event_query(params: Mapping[str, str]) -> tuple[EventQuery, defaultdict[str, list[str]]]:
    """The search form read into an EventQuery, and what could not be read, by field."""
    errors: defaultdict[str, list[str]] = defaultdict(list)
    text = {name: str(params.get(name, "")).strip()[:MAX_FILTER_TEXT] for name in ALL_FILTERS}
    asn = None
    if text["asn"]:
        digits = text["asn"].upper().removeprefix("AS")
        if digits.isdigit() and int(digits) < 2**32:
            asn = int(digits)
        else:
            errors["asn"].append(f"{text['asn']!r} is not an AS number")
    days: dict[str, dt.date | None] = {"since": None, "until": None}
    for name in days:
        if text[name]:
            try:
                days[name] = parse_date(text[name], loc=name)
            except ValueError as exc:
                errors[name].append(str(exc).removeprefix(f"{name}: "))
    if days["since"] and days["until"] and days["since"] > days["until"]:
        errors["until"].append("is before since")
    limit = _whole(params.get("limit"), EVENTS_PAGE)
    if limit is None or not 1 <= limit <= MAX_EVENTS_PAGE:
        errors["limit"].append(f"a whole number from 1 to {MAX_EVENTS_PAGE}")
        limit = EVENTS_PAGE
    offset = _whole(params.get("offset"), 0)
    if offset is None or offset < 0:
        errors["offset"].append("a whole number, 0 or more")
        offset = 0
    query = EventQuery(
        ip=text["ip"],
        prefix=text["prefix"],
        asn=asn,
        constituent=text["constituent"],
        cert=text["cert"],
        taxonomy=text["taxonomy"],
        type=text["type"],
        feed=text["source"],
        since=days["since"],
        until=days["until"],
        limit=limit,
        offset=offset,
    )
    return query, errors


def _whole(text: str | None, default: int) -> int | None:
    if text is None or not str(text).strip():
        return default
    try:
        return int(str(text).strip())
    except ValueError:
        return None


def _event_row(event: dict[str, Any]) -> dict[str, Any]:
    """An event's fields under names a template can read (the store's names hold dots)."""
    return {
        "time": event.get("time.source") or event.get("time.observation"),
        "ip": event.get("source.ip", ""),
        "port": event.get("source.port"),
        "taxonomy": event.get("classification.taxonomy", ""),
        "type": event.get("classification.type", ""),
        "identifier": event.get("classification.identifier", ""),
        "organisation": event.get("route.organisation", ""),
        "cert": event.get("route.cert", ""),
        "feed": event.get("feed.code", ""),
        "tlp": str(event.get("tlp", "")).lower(),
    }
