"""Web pages of intel: the one-box indicator search, an indicator, intel reports, and the correlation
alerts of the CERTs the user may see. Thin: a selector reads, a service writes, a template renders."""

from __future__ import annotations

import json
from typing import cast

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from certnet.accounts.models import User
from certnet.core.errors import DomainError
from certnet.core.pagination import CappedPaginator
from certnet.core.visibility import can
from certnet.intel import selectors
from certnet.intel.models import AlertStatus, Audience, CorrelationAlert, IntelReport
from certnet.intel.selectors import exports
from certnet.intel.services.correlation import set_alert_status
from certnet.web.rendering import render_page_or_fragment

PAGE_SIZE = 50
MAX_SEARCH_TEXT = 100_000  # characters of pasted text read for values


@login_required
def indicator_search(request: HttpRequest) -> HttpResponse:
    text = request.GET.get("q", "")[:MAX_SEARCH_TEXT]
    context = {"query": text, "hits": selectors.search(request.user, text) if text.strip() else None}
    return render_page_or_fragment(request, "intel/search.html", "intel/_search_result.html", context)


@login_required
def indicator_detail(request: HttpRequest, indicator_id: int) -> HttpResponse:
    try:
        indicator = selectors.access_indicator(request.user, indicator_id)
    except DomainError:
        return render(request, "404.html", status=404)
    context = {
        "indicator": indicator,
        "tags": sorted(tag.name for tag in indicator.tags.all()),
        "sightings": selectors.sightings_of(indicator),
        "incidents": selectors.incidents_of(request.user, indicator),
    }
    return render(request, "intel/indicator_detail.html", context)


@login_required
def correlation_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "open")
    if status not in AlertStatus.values and status != "all":
        status = "open"
    alerts = selectors.visible_alerts(request.user, status=None if status == "all" else status)
    page = CappedPaginator(alerts, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "alerts": list(page.object_list),
        "status": status,
        "statuses": AlertStatus.choices,
    }
    return render_page_or_fragment(
        request, "intel/correlations.html", "intel/_correlation_table.html", context
    )


@login_required
def correlation_detail(request: HttpRequest, alert_id: int) -> HttpResponse:
    try:
        alert = selectors.access_alert(request.user, alert_id)
    except DomainError:
        return render(request, "404.html", status=404)
    return render(request, "intel/correlation_detail.html", _detail_context(request, alert))


@login_required
@require_POST
def correlation_status(request: HttpRequest, alert_id: int) -> HttpResponse:
    try:
        set_alert_status(
            actor=cast(User, request.user),
            alert_id=alert_id,
            status=request.POST.get("status", ""),
            note=request.POST.get("note", ""),
        )
    except DomainError as exc:
        if exc.status == 404:
            return render(request, "404.html", status=404)
        return render(
            request,
            "intel/correlation_detail.html",
            {**_detail_context(request, selectors.access_alert(request.user, alert_id)), "error": exc.detail},
            status=exc.status,
        )
    return redirect("correlation-detail", alert_id=alert_id)


def _detail_context(request: HttpRequest, alert: CorrelationAlert) -> dict[str, object]:
    organisations, indicators = selectors.alert_contents(request.user, alert)
    return {
        "alert": alert,
        "organisations": organisations,
        "indicators": indicators,
        "may_change": can(request.user, "change", alert),
        "statuses": AlertStatus.choices,
    }


@login_required
def report_list(request: HttpRequest) -> HttpResponse:
    reports = exports.visible_reports(request.user).prefetch_related("tags")
    page = CappedPaginator(reports, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "intel/reports.html", {"page": page, "reports": list(page.object_list)})


@login_required
def report_detail(request: HttpRequest, report_id: int) -> HttpResponse:
    try:
        report = exports.access_report(request.user, report_id)
    except DomainError:
        return render(request, "404.html", status=404)
    context = {
        "report": report,
        "audience": _audience_text(report),
        "tags": sorted(tag.name for tag in report.tags.all()),
        "indicators": list(exports.report_indicators(request.user, report).prefetch_related("tags")),
    }
    return render(request, "intel/report_detail.html", context)


@login_required
def report_stix(request: HttpRequest, report_id: int) -> HttpResponse:
    try:
        report = exports.access_report(request.user, report_id)
    except DomainError:
        return render(request, "404.html", status=404)
    bundle = exports.stix_bundle(request.user, exports.report_indicators(request.user, report), report=report)
    response = HttpResponse(json.dumps(bundle, indent=1), content_type="application/stix+json;version=2.1")
    response["Content-Disposition"] = f'attachment; filename="intel-report-{report.pk}.stix.json"'
    return response


def _audience_text(report: IntelReport) -> str:
    named = {
        Audience.SECTORS: report.sectors,
        Audience.PROVINCES: report.provinces,
        Audience.ORGANISATIONS: [org.display_name for org in report.shared_with.all()],
    }.get(Audience(report.audience))
    label = Audience(report.audience).label
    return f"{label}: {', '.join(named)}" if named else label
