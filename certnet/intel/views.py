"""Web pages of intel: the one-box indicator search, an indicator, intel reports (read, published and
changed), and the correlation alerts of the CERTs the user may see. Thin: a selector reads, a service
writes, a template renders."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from certnet.accounts.models import User
from certnet.core.errors import DomainError, FieldError, InvalidInput
from certnet.core.pagination import CappedPaginator
from certnet.core.tlp import TLP
from certnet.core.visibility import can
from certnet.incidents.webforms import FormErrors
from certnet.intel import selectors
from certnet.intel.models import AlertStatus, Audience, CorrelationAlert, IntelReport
from certnet.intel.selectors import PastedValue, exports
from certnet.intel.services.correlation import set_alert_status
from certnet.intel.services.indicators import organisation_acting_for
from certnet.intel.services.report_changes import ReportChange, change_intel_report
from certnet.intel.services.reports import ReportInput, publish_intel_report
from certnet.registry.models import Organisation
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
    context = {
        "page": page,
        "reports": list(page.object_list),
        "may_publish": bool(selectors.publishing_organisations(request.user)),
    }
    return render(request, "intel/reports.html", context)


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
        "may_change": can(request.user, "change", report),
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


# --- publishing and changing a report through forms ------------------------------------------------

PUBLISH_FIELDS = (
    "owner",
    "title",
    "summary",
    "tlp",
    "audience",
    "sectors",
    "provinces",
    "organisations",
    "tags",
    "indicators",
)
CHANGE_FIELDS = ("title", "summary", "tlp", "tags", "add")


def _listed(raw: str) -> list[str]:
    """'a, b' or one per line → ['a', 'b']. Not split on spaces: a sector or a free tag may have one."""
    return [part.strip() for part in re.split(r"[,\r\n]+", raw) if part.strip()]


def _text(raw: str) -> str:
    # Browsers send a textarea's line breaks as CRLF; what is stored and compared uses LF.
    return raw.replace("\r\n", "\n").strip()


def _require_shareable(pasted: Sequence[PastedValue], loc: str) -> list[int]:
    """The indicator ids of the pasted values; InvalidInput naming every value the user may share no
    indicator of. Checked before the service is called, since it takes ids and could only publish the
    report without those values."""
    errors = [
        FieldError(loc, f"{item.value}: no indicator you may share has this value; record it first")
        for item in pasted
        if item.indicator is None
    ]
    if errors:
        raise InvalidInput(f"{len(errors)} value(s) cannot be shared", errors=errors)
    return [item.indicator.pk for item in pasted if item.indicator is not None]


def _form_errors(
    exc: DomainError,
    fields: Iterable[str],
    *,
    indicators_field: str,
    values_at: Mapping[int, str],
    what: str,
) -> FormErrors:
    """A DomainError laid out beside the form: `title`, `tags[2]` and the like beside their fields;
    `indicators[n]` beside the box the values were pasted into, led by the pasted value the service
    checked at position n (`values_at`); whatever belongs to no field listed on top."""
    known = set(fields)
    placed: dict[str, list[str]] = {}
    other: list[str] = []
    for error in exc.errors:
        name, _, rest = error.loc.partition("[")
        position = int(rest.rstrip("]")) if name == "indicators" and rest.rstrip("]").isdigit() else None
        if name == "indicators" and (position is None or position in values_at):
            message = error.msg if position is None else f"{values_at[position]}: {error.msg}"
            placed.setdefault(indicators_field, []).append(message)
        elif name in known:
            placed.setdefault(name, []).append(error.msg)
        elif error.loc != "body":  # the detail says what an empty change is
            other.append(str(error))
    if isinstance(exc, InvalidInput) and placed:
        detail = f"{len(exc.errors)} problem(s), nothing {what}; each is marked below."
    else:
        detail = exc.detail
    return FormErrors(detail=detail, fields=placed, other=other)


def _publish_context(
    owners: list[Organisation], values: Mapping[str, str], errors: FormErrors | None
) -> dict[str, Any]:
    return {
        "values": values,
        "errors": errors or FormErrors(),
        "owners": owners,
        "tlps": TLP.choices,
        "audiences": Audience.choices,
    }


@login_required
@require_http_methods(["GET", "POST"])
def report_new(request: HttpRequest) -> HttpResponse:
    user = cast(User, request.user)
    owners = selectors.publishing_organisations(user)
    if request.method == "GET":
        values = {
            "owner": owners[0].slug if owners else "",
            "tlp": TLP.AMBER.value,
            "audience": Audience.OWNER.value,
        }
        return render(request, "intel/report_form.html", _publish_context(owners, values, None))
    values = {name: request.POST.get(name, "") for name in PUBLISH_FIELDS}
    pasted: list[PastedValue] = []
    ids: list[int] = []
    try:
        # Refusing someone who may not publish comes before naming values they could not share.
        organisation_acting_for(user, values["owner"], doing="publish intel reports")
        pasted = selectors.shareable_indicators_in(user, values["indicators"], owner=values["owner"])
        ids = _require_shareable(pasted, "indicators")
        report = publish_intel_report(
            actor=user,
            spec=ReportInput(
                owner=values["owner"],
                title=values["title"].strip(),
                summary=_text(values["summary"]),
                tlp=values["tlp"],
                audience=values["audience"],
                sectors=_listed(values["sectors"]),
                provinces=_listed(values["provinces"]),
                organisations=_listed(values["organisations"]),
                indicators=ids,
                tags=_listed(values["tags"]),
            ),
        )
    except DomainError as exc:
        # Each pasted value resolved to an indicator of its own, so `indicators[n]` is the n-th value.
        values_at = {n: item.value for n, item in enumerate(pasted)} if ids else {}
        errors = _form_errors(
            exc, PUBLISH_FIELDS, indicators_field="indicators", values_at=values_at, what="published"
        )
        context = _publish_context(owners, values, errors)
        return render(request, "intel/report_form.html", context, status=exc.status)
    messages.success(request, f"Published to {_audience_text(report)}.")
    return redirect("intel-report-detail", report_id=report.pk)


def _change_context(
    request: HttpRequest,
    report: IntelReport,
    values: Mapping[str, Any],
    errors: FormErrors | None,
    *,
    may_change: bool = True,
) -> dict[str, Any]:
    return {
        "report": report,
        "may_change": may_change,
        "values": values,
        "errors": errors or FormErrors(),
        "tlps": TLP.choices,
        "indicators": list(exports.report_indicators(request.user, report)),
    }


def _current_values(report: IntelReport) -> dict[str, Any]:
    return {
        "title": report.title,
        "summary": report.summary,
        "tlp": report.tlp,
        "tags": ", ".join(sorted(tag.name for tag in report.tags.all())),
        "add": "",
        "remove": [],
    }


@login_required
@require_http_methods(["GET", "POST"])
def report_change(request: HttpRequest, report_id: int) -> HttpResponse:
    user = cast(User, request.user)
    try:
        report = exports.access_report(user, report_id)
    except DomainError:
        return render(request, "404.html", status=404)
    current = _current_values(report)
    if not can(user, "change", report):
        refused = FormErrors(detail=f"you may not change intel report {report.pk}.")
        context = _change_context(request, report, current, refused, may_change=False)
        return render(request, "intel/report_change.html", context, status=403)
    if request.method == "GET":
        return render(request, "intel/report_change.html", _change_context(request, report, current, None))
    values: dict[str, Any] = {name: request.POST.get(name, "") for name in CHANGE_FIELDS}
    values["remove"] = request.POST.getlist("remove")
    tags = _listed(values["tags"])
    pasted: list[PastedValue] = []
    added: list[int] = []
    try:
        pasted = selectors.shareable_indicators_in(user, values["add"], owner=report.owner.slug)
        added = _require_shareable(pasted, "add")
        # Only what the form changed is named, so the audit entry says what was changed and tags
        # are not set again when they were left as they were.
        change_intel_report(
            actor=user,
            report_id=report.pk,
            change=ReportChange(
                title=_changed(values["title"].strip(), report.title),
                summary=_changed(_text(values["summary"]), report.summary),
                tlp=_changed(values["tlp"], report.tlp),
                tags=tags if sorted(tags) != sorted(_listed(current["tags"])) else None,
                add_indicators=added,
                remove_indicators=[int(pk) for pk in values["remove"] if pk.isdigit()],
            ),
        )
    except DomainError as exc:
        errors = _form_errors(
            exc,
            (*CHANGE_FIELDS, "remove_indicators"),
            indicators_field="add",
            values_at=_added_positions(report, added, values["remove"], pasted),
            what="changed",
        )
        context = _change_context(request, report, values, errors)
        return render(request, "intel/report_change.html", context, status=exc.status)
    messages.success(request, "Report changed.")
    return redirect("intel-report-detail", report_id=report.pk)


def _changed(new: str, old: str) -> str | None:
    return new if new != old else None


def _added_positions(
    report: IntelReport, added: list[int], removed: list[str], pasted: list[PastedValue]
) -> dict[int, str]:
    """Where the change service checks each added indicator: after those the report keeps."""
    if not added:
        return {}
    before = selectors.indicator_ids_of(report)
    kept = len(set(before) - {int(pk) for pk in removed if pk.isdigit()})
    value_of = {item.indicator.pk: item.value for item in pasted if item.indicator is not None}
    already = set(before)
    new = [pk for pk in added if pk not in already]
    return {kept + n: value_of[pk] for n, pk in enumerate(new)}
