"""Evidence, referrals and evidence packages. Thin: find the record through visibility, call one
service or selector, shape. Files go up as multipart and come down as attachments that browsers never
render (nosniff, application/octet-stream), with the SHA-256 recorded on receipt in a header."""

import datetime as dt
from typing import Any, cast

from django.http import FileResponse, HttpRequest
from ninja import File, Form, Router, Schema, Status, UploadedFile
from pydantic import BaseModel

from certnet.accounts.models import User
from certnet.incidents import selectors, selectors_evidence
from certnet.incidents.models import Evidence, Referral
from certnet.incidents.models_handling import EvidenceSource
from certnet.incidents.services import evidence as services

router = Router(tags=["evidence"])

SHA256_HEADER = "X-Evidence-SHA256"
MANIFEST_HEADER = "X-Manifest-SHA256"


class AttachmentIn(BaseModel):
    """A file attached to a report submitted as JSON."""

    filename: str
    content_type: str = "application/octet-stream"
    content_base64: str


class EvidenceOut(Schema):
    id: int
    filename: str
    content_type: str
    size: int
    sha256: str
    source: str
    description: str
    received_at: dt.datetime
    received_by: str | None
    incident: int | None
    report: int | None
    custody_entries: int


class CustodyOut(Schema):
    at: dt.datetime
    actor: str
    action: str
    detail: str


class EvidenceDetailOut(EvidenceOut):
    custody: list[CustodyOut]


class ReferralIn(Schema):
    agency: str
    sections: list[str]
    case_number: str = ""
    note: str = ""


class AgencyRef(Schema):
    slug: str
    name: str


class ReferralOut(Schema):
    id: int
    incident: int
    agency: AgencyRef
    case_number: str
    sections: list[str]
    note: str
    referred_at: dt.datetime
    referred_by: str


class PackageIn(Schema):
    referral_id: int | None = None


def _actor(request: HttpRequest) -> User:
    return cast(User, request.user)


def _evidence_out(evidence: Evidence) -> dict[str, Any]:
    count = getattr(evidence, "custody_count", None)
    return {
        "id": evidence.pk,
        "filename": evidence.filename,
        "content_type": evidence.content_type,
        "size": evidence.size,
        "sha256": evidence.sha256,
        "source": evidence.source,
        "description": evidence.description,
        "received_at": evidence.received_at,
        "received_by": evidence.received_by.get_username() if evidence.received_by else None,
        "incident": evidence.incident_id,
        "report": evidence.report_id,
        "custody_entries": count if count is not None else evidence.custody.count(),
    }


def _referral_out(referral: Referral) -> dict[str, Any]:
    return {
        "id": referral.pk,
        "incident": referral.incident_id,
        "agency": {"slug": referral.agency.slug, "name": referral.agency.name},
        "case_number": referral.case_number,
        "sections": referral.sections,
        "note": referral.note,
        "referred_at": referral.referred_at,
        "referred_by": referral.referred_by.get_username(),
    }


def _upload(file: UploadedFile, description: str) -> services.Upload:
    return services.Upload(
        filename=file.name or "unnamed",
        content=file,
        content_type=file.content_type or "application/octet-stream",
        size=file.size,
        description=description,
    )


BINARY = {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}
ZIP = {"content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}}}


# --- evidence -------------------------------------------------------------------------------------


@router.get(
    "/incidents/{incident_id}/evidence",
    response=list[EvidenceOut],
    summary="The incident's evidence files, its reports' included (readers of the whole incident)",
)
def list_incident_evidence(request: HttpRequest, incident_id: int) -> list[dict[str, Any]]:
    incident = selectors.access_incident_in_full(request.user, incident_id)
    return [_evidence_out(e) for e in selectors_evidence.evidence_of_incident(incident, request.user)]


@router.post(
    "/incidents/{incident_id}/evidence",
    response={201: EvidenceOut},
    summary="Add an evidence file (multipart: file, description); hashed on receipt, size-limited",
)
def upload_incident_evidence(
    request: HttpRequest, incident_id: int, file: File[UploadedFile], description: Form[str] = ""
) -> Status[dict[str, Any]]:
    incident, _ = selectors.access_incident(request.user, incident_id)
    evidence = services.add_evidence(
        actor=_actor(request),
        incident=incident,
        upload=_upload(file, description),
        source=EvidenceSource.API,
    )
    return Status(201, _evidence_out(evidence))


@router.post(
    "/reports/{report_id}/evidence",
    response={201: EvidenceOut},
    summary="Add an evidence file to a report (multipart: file, description)",
)
def upload_report_evidence(
    request: HttpRequest, report_id: int, file: File[UploadedFile], description: Form[str] = ""
) -> Status[dict[str, Any]]:
    report = selectors.access_report(request.user, report_id)
    evidence = services.add_evidence(
        actor=_actor(request), report=report, upload=_upload(file, description), source=EvidenceSource.API
    )
    return Status(201, _evidence_out(evidence))


@router.get(
    "/evidence/{evidence_id}", response=EvidenceDetailOut, summary="An evidence file's record and custody"
)
def get_evidence(request: HttpRequest, evidence_id: int) -> dict[str, Any]:
    evidence = selectors_evidence.access_evidence(request.user, evidence_id)
    custody = [
        {"at": c.at, "actor": c.actor_label, "action": c.action, "detail": c.detail}
        for c in selectors_evidence.custody_of(evidence)
    ]
    return {**_evidence_out(evidence), "custody_entries": len(custody), "custody": custody}


@router.get(
    "/evidence/{evidence_id}/download",
    response={200: None},
    summary="The file's bytes (recorded in its chain of custody); its SHA-256 in X-Evidence-SHA256",
    openapi_extra={"responses": {200: {"description": "the evidence file", **BINARY}}},
)
def download_evidence(request: HttpRequest, evidence_id: int) -> FileResponse:
    download = services.open_evidence_for_download(
        actor=_actor(request), evidence_id=evidence_id, via="through the API"
    )
    evidence = download.evidence
    response = FileResponse(
        download.file,
        as_attachment=True,
        filename=evidence.filename,
        content_type="application/octet-stream",
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "no-store"
    response[SHA256_HEADER] = evidence.sha256
    return response


# --- referral and packages ------------------------------------------------------------------------


@router.get(
    "/incidents/{incident_id}/referrals",
    response=list[ReferralOut],
    summary="The incident's referrals to the investigating agency",
)
def list_referrals(request: HttpRequest, incident_id: int) -> list[dict[str, Any]]:
    incident = selectors.access_incident_in_full(request.user, incident_id)
    return [_referral_out(r) for r in selectors_evidence.referrals_of(incident)]


@router.post(
    "/incidents/{incident_id}/referrals",
    response={201: ReferralOut},
    summary="Refer the incident to the investigating agency (PECA-2016 s. 29; handlers)",
)
def create_referral(request: HttpRequest, incident_id: int, payload: ReferralIn) -> Status[dict[str, Any]]:
    incident, _ = selectors.access_incident(request.user, incident_id)
    referral = services.create_referral(
        actor=_actor(request),
        incident=incident,
        agency=payload.agency,
        sections=payload.sections,
        case_number=payload.case_number,
        note=payload.note,
    )
    return Status(201, _referral_out(selectors_evidence.referrals_of(incident).get(pk=referral.pk)))


@router.post(
    "/incidents/{incident_id}/evidence-package",
    response={200: None},
    summary="Export the evidence package (zip: files, manifest, custody, timeline; handlers)",
    description=(
        "The manifest's SHA-256 is in the X-Manifest-SHA256 header and in the audit log; "
        "`certnet evidence verify PACKAGE.zip` re-checks every hash."
    ),
    openapi_extra={"responses": {200: {"description": "the evidence package", **ZIP}}},
)
def export_package(request: HttpRequest, incident_id: int, payload: PackageIn | None = None) -> FileResponse:
    incident, _ = selectors.access_incident(request.user, incident_id)
    referral_id = payload.referral_id if payload is not None else None
    exported = services.export_package(actor=_actor(request), incident=incident, referral_id=referral_id)
    response = FileResponse(
        exported.file, as_attachment=True, filename=exported.filename, content_type="application/zip"
    )
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    response[MANIFEST_HEADER] = exported.manifest_sha256
    return response
