"""The evidence section of an incident's page: its files (its reports' included), the upload form, the
referrals to the investigating agency and the evidence packages.

The incident page loads the section from here (HTMX), and the same URL serves it as a page of its own
without JavaScript. Thin, like the API: the services decide who may do what, the section only hides
forms a user could not use. A refused form is shown again with its error beside it; a user who sees the
incident as a TLP:RED stub only is refused (403) before anything of the evidence is shown.
"""

from __future__ import annotations

import re
from typing import Any, cast

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from certnet.accounts.models import User
from certnet.core.errors import DomainError, Forbidden, NotFound, invalid
from certnet.core.visibility import can
from certnet.incidents import selectors, selectors_evidence
from certnet.incidents.models import Incident
from certnet.incidents.models_handling import EvidenceSource
from certnet.incidents.services import evidence as services
from certnet.incidents.webforms import FormErrors
from certnet.web.rendering import render_page_or_fragment

PAGE = "incidents/_evidence_page.html"
SECTION = "incidents/_evidence_section.html"
FIELDS = ("file", "description", "agency", "case_number", "sections", "note", "referral_id")


def signed_in_user(request: HttpRequest) -> User:
    return cast(User, request.user)


def _visible(request: HttpRequest, incident_id: int) -> Incident:
    """The incident as far as the user may see it at all (404 otherwise); the services judge the rest."""
    try:
        incident, _ = selectors.access_incident(request.user, incident_id)
    except NotFound as exc:
        raise Http404(exc.detail) from None
    return incident


def _in_full(request: HttpRequest, incident_id: int) -> Incident:
    try:
        return selectors.access_incident_in_full(request.user, incident_id)
    except NotFound as exc:
        raise Http404(exc.detail) from None
    except Forbidden as exc:
        raise PermissionDenied(exc.detail) from None


def _context(
    request: HttpRequest,
    incident: Incident,
    failed: tuple[str, FormErrors] | None = None,
    values: dict[str, str] | None = None,
) -> dict[str, Any]:
    user = signed_in_user(request)
    may_handle = can(user, "handle", incident)
    referrals = list(selectors_evidence.referrals_of(incident))
    return {
        "incident": incident,
        "evidence": list(selectors_evidence.evidence_of_incident(incident, user)),
        "referrals": referrals,
        "packages": list(selectors_evidence.packages_of(incident)),
        "may_add": can(user, "change", incident),
        "may_handle": may_handle,
        "agencies": list(selectors_evidence.investigating_agencies(user)) if may_handle else [],
        "max_bytes": settings.CERTNET_EVIDENCE_MAX_BYTES,
        "failed_action": failed[0] if failed else "",
        "errors": failed[1] if failed else FormErrors(),
        "values": values or {"sections": ", ".join(incident.peca_sections)},
    }


def _refused(
    request: HttpRequest, incident_id: int, action: str, exc: DomainError, values: dict[str, str]
) -> HttpResponse:
    """The section again, with the error next to the form it came from."""
    if isinstance(exc, NotFound):
        raise Http404(exc.detail)
    if isinstance(exc, Forbidden):
        raise PermissionDenied(exc.detail)
    incident = _in_full(request, incident_id)
    context = _context(request, incident, (action, FormErrors.of(exc, FIELDS)), values)
    response = render_page_or_fragment(request, PAGE, SECTION, context)
    response.status_code = exc.status
    return response


def _back(incident_id: int) -> HttpResponse:
    return redirect(reverse("incident-detail", kwargs={"incident_id": incident_id}) + "#evidence")


@login_required
@require_GET
def evidence_section(request: HttpRequest, incident_id: int) -> HttpResponse:
    incident = _in_full(request, incident_id)
    return render_page_or_fragment(request, PAGE, SECTION, _context(request, incident))


@login_required
@require_POST
def evidence_upload(request: HttpRequest, incident_id: int) -> HttpResponse:
    incident = _visible(request, incident_id)
    values = {"description": request.POST.get("description", "").strip()}
    upload = request.FILES.get("file")
    try:
        if upload is None:
            raise invalid("file", "choose a file to add as evidence")
        evidence = services.add_evidence(
            actor=signed_in_user(request),
            incident=incident,
            upload=services.Upload(
                filename=upload.name or "unnamed",
                content=upload,
                content_type=upload.content_type or "application/octet-stream",
                size=upload.size,
                description=values["description"],
            ),
            source=EvidenceSource.UPLOAD,
        )
    except DomainError as exc:
        return _refused(request, incident_id, "evidence-upload", exc, values)
    messages.success(request, f"Evidence {evidence.filename} added (sha256 {evidence.sha256[:16]}…).")
    return _back(incident_id)


@login_required
@require_GET
def evidence_download(request: HttpRequest, evidence_id: int) -> HttpResponseBase:
    try:
        download = services.open_evidence_for_download(
            actor=signed_in_user(request), evidence_id=evidence_id, via="from the web page"
        )
    except NotFound as exc:
        raise Http404(exc.detail) from None
    except Forbidden as exc:
        raise PermissionDenied(exc.detail) from None
    except DomainError as exc:
        return HttpResponse(exc.detail, status=exc.status, content_type="text/plain; charset=utf-8")
    response = FileResponse(
        download.file,
        as_attachment=True,
        filename=download.evidence.filename,
        content_type="application/octet-stream",
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "no-store"
    response["X-Evidence-SHA256"] = download.evidence.sha256
    return response


def _split_sections(raw: str) -> list[str]:
    return [part.strip() for part in re.split(r"[,;\n]+", raw) if part.strip()]


@login_required
@require_POST
def referral_add(request: HttpRequest, incident_id: int) -> HttpResponse:
    incident = _visible(request, incident_id)
    names = ("agency", "case_number", "sections", "note")
    values = {name: request.POST.get(name, "").strip() for name in names}
    try:
        referral = services.create_referral(
            actor=signed_in_user(request),
            incident=incident,
            agency=values["agency"],
            sections=_split_sections(values["sections"]),
            case_number=values["case_number"],
            note=values["note"],
        )
    except DomainError as exc:
        return _refused(request, incident_id, "referral", exc, values)
    messages.success(request, f"Referred to {referral.agency.display_name}.")
    return _back(incident_id)


@login_required
@require_POST
def package_export(request: HttpRequest, incident_id: int) -> HttpResponseBase:
    incident = _visible(request, incident_id)
    raw = request.POST.get("referral_id", "").strip()
    values = {"referral_id": raw}
    try:
        if raw and not raw.isdigit():
            raise invalid("referral_id", f"{raw!r} is not a referral of this incident")
        exported = services.export_package(
            actor=signed_in_user(request), incident=incident, referral_id=int(raw) if raw else None
        )
    except DomainError as exc:
        return _refused(request, incident_id, "package", exc, values)
    response = FileResponse(
        exported.file, as_attachment=True, filename=exported.filename, content_type="application/zip"
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "no-store"
    response["X-Manifest-SHA256"] = exported.manifest_sha256
    return response
