"""Evidence: receipt with its hash, downloads, referrals to the investigating agency and evidence
packages, every access written to the chain of custody. Who may touch a file is decided by the
record it belongs to (incident, else report, else intake message), through certnet.core.visibility.

Evidence bytes live outside the database, so a transaction that fails cannot roll them back by
itself: services that store bytes run inside `bytes_kept_only_if_committed()`, which deletes what
they stored when the transaction fails. A refused request leaves neither a row nor a file."""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import logging
import re
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import IO, Any

from django.conf import settings
from django.db import transaction

from certnet.accounts.models import User
from certnet.core import audit, clock
from certnet.core.audit import Actor
from certnet.core.errors import Conflict, FieldError, IllegalTransition, InvalidInput, TooLarge, invalid
from certnet.core.tlp import TLP
from certnet.core.visibility import require
from certnet.incidents import packages, selectors_evidence, storage
from certnet.incidents.models import (
    Evidence,
    EvidencePackage,
    InboundMail,
    Incident,
    IncidentStatus,
    Referral,
    Report,
)
from certnet.incidents.models_handling import CustodyAction, EvidenceSource
from certnet.incidents.services import handling
from certnet.incidents.services.trail import custody, timeline_event

log = logging.getLogger(__name__)

MAX_FILENAME = 255
MAX_DESCRIPTION = 300
MAX_CASE_NUMBER = 80
# PECA-2016 runs to s. 55; amendments insert lettered sections (s. 26A), so a capital may follow.
PECA_LAST_SECTION = 55
_SECTION = re.compile(r"(?:s(?:ec(?:tion)?)?\.?)?\s*(\d{1,3})\s*([A-Za-z]?)", re.IGNORECASE)


def clean_filename(name: str) -> str:
    """Keep the sender's name for the record, without paths or control characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip()
    return (base or "unnamed")[:MAX_FILENAME]


# --- bytes that must not outlive a failed transaction ----------------------------------------------

_stored_in_transaction: ContextVar[list[str] | None] = ContextVar("stored_in_transaction", default=None)


@contextlib.contextmanager
def bytes_kept_only_if_committed() -> Iterator[None]:
    """Wrap a service's transaction (outside its `atomic()`): evidence bytes stored inside are deleted
    again if it fails. Nested uses hand their files to the outer one."""
    outer = _stored_in_transaction.get()
    keys: list[str] = []
    token = _stored_in_transaction.set(keys)
    try:
        yield
    except BaseException:
        for key in keys:
            try:
                storage.delete_stored(key)
            except OSError:
                log.warning("could not delete evidence bytes %s left by a failed transaction", key)
        raise
    finally:
        _stored_in_transaction.reset(token)
    if outer is not None:
        outer.extend(keys)


# --- custody and receipt --------------------------------------------------------------------------


def receive_evidence(
    *,
    actor: Actor,
    content: bytes | IO[bytes],
    filename: str,
    content_type: str,
    source: EvidenceSource,
    incident: Incident | None = None,
    report: Report | None = None,
    inbound_mail: InboundMail | None = None,
    description: str = "",
) -> Evidence:
    """Store the bytes (hashed, size-limited: TooLarge names the file and the limit) and record them
    with a 'received' custody entry. The caller has already checked the actor's right to add evidence
    to the parent record; this runs inside the caller's transaction (wrapped in
    `bytes_kept_only_if_committed()` so a rollback also removes the bytes)."""
    if incident is None and report is None and inbound_mail is None:
        raise ValueError("evidence must belong to an incident, a report or an intake message")
    name = clean_filename(filename)
    stored = storage.store(content, what=f"the file {name!r}")
    pending = _stored_in_transaction.get()
    if pending is not None:
        pending.append(stored.key)
    user = actor if isinstance(actor, User) else None
    try:
        with transaction.atomic():
            evidence = Evidence.objects.create(
                incident=incident,
                report=report,
                inbound_mail=inbound_mail,
                filename=name,
                content_type=(content_type or "application/octet-stream")[:120],
                size=stored.size,
                sha256=stored.sha256,
                storage_key=stored.key,
                source=source,
                description=description[:MAX_DESCRIPTION],
                received_at=clock.now(),
                received_by=user,
            )
            custody(evidence, actor, CustodyAction.RECEIVED, f"{stored.size} bytes, sha256 {stored.sha256}")
    except BaseException:
        if pending is None:
            storage.delete_stored(stored.key)
        raise
    return evidence


# --- adding evidence ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    """A file offered as evidence. `size` is known in advance for uploaded files, so an oversized one
    is refused before a byte is stored; otherwise storage measures it."""

    filename: str
    content: bytes | IO[bytes]
    content_type: str = "application/octet-stream"
    size: int | None = None
    description: str = ""


def _check_size(size: int | None, name: str, loc: str) -> None:
    limit: int = settings.CERTNET_EVIDENCE_MAX_BYTES
    if size is not None and size > limit:
        message = f"the file {name!r} is {size} bytes; the limit for an evidence file is {limit} bytes"
        raise TooLarge(message, errors=[FieldError(loc, message)])
    if size == 0:
        raise invalid(loc, f"the file {name!r} is empty")


def add_evidence(
    *,
    actor: User,
    upload: Upload,
    incident: Incident | None = None,
    report: Report | None = None,
    source: EvidenceSource = EvidenceSource.UPLOAD,
) -> Evidence:
    """Add a file to an incident or a report: for whoever may change that record (its organisation's
    analysts, the handlers of the CERTs above). Hashed on receipt, size-limited, in the custody log,
    and on the incident's timeline."""
    if (incident is None) == (report is None):
        raise ValueError("evidence is added to an incident or to a report")
    with bytes_kept_only_if_committed(), transaction.atomic():
        if incident is not None:
            incident = Incident.objects.select_for_update().get(pk=incident.pk)
            require(actor, "change", incident, label=f"incident {incident.pk}")
        elif report is not None:
            # Only the report's row: PostgreSQL cannot lock the nullable side of the join to its incident.
            locked = Report.objects.select_for_update(of=("self",)).select_related("incident")
            report = locked.get(pk=report.pk)
            require(actor, "change", report, label=f"report {report.pk}")
        name = clean_filename(upload.filename)
        size = len(upload.content) if isinstance(upload.content, bytes) else upload.size
        _check_size(size, name, "file")
        if len(upload.description) > MAX_DESCRIPTION:
            raise invalid(
                "description", f"is {len(upload.description)} characters long; the limit is {MAX_DESCRIPTION}"
            )
        evidence = receive_evidence(
            actor=actor,
            content=upload.content,
            filename=name,
            content_type=upload.content_type,
            source=source,
            incident=incident,
            report=report,
            description=upload.description.strip(),
        )
        on_incident = incident if incident is not None else report.incident if report is not None else None
        if on_incident is not None:
            where = f" to report R-{report.pk}" if report is not None else ""
            # A report stricter than its incident keeps its files to its own readers (selectors_evidence);
            # the incident's wider audience learns only that a file arrived, not its name or hash.
            hidden = (
                report is not None
                and incident is None
                and TLP(report.tlp).is_stricter_than(TLP(on_incident.tlp))
            )
            summary = (
                f"a file was added{where} (restricted to the report's readers)"
                if hidden
                else f"evidence {name} added{where} ({evidence.size} bytes, sha256 {evidence.sha256[:16]}…)"
            )
            timeline_event(
                on_incident, actor, "evidence", summary, **({} if hidden else {"evidence": evidence.pk})
            )
    return evidence


@dataclass(frozen=True)
class AttachmentInput:
    """A file sent inside a JSON report, base64-encoded."""

    filename: str
    content_base64: str
    content_type: str = "application/octet-stream"


def _decode_attachments(
    attachments: Sequence[AttachmentInput], problems: list[FieldError]
) -> list[tuple[AttachmentInput, bytes]]:
    decoded: list[tuple[AttachmentInput, bytes]] = []
    for index, attachment in enumerate(attachments):
        loc = f"attachments[{index}]"
        if not attachment.filename.strip():
            problems.append(FieldError(f"{loc}.filename", "must not be empty"))
        try:
            content = base64.b64decode("".join(attachment.content_base64.split()), validate=True)
        except (binascii.Error, ValueError):
            problems.append(FieldError(f"{loc}.content_base64", "is not valid base64"))
            continue
        decoded.append((attachment, content))
    return decoded


def submit_report_with_attachments(
    *, actor: User, data: handling.ReportInput, attachments: Sequence[AttachmentInput]
) -> Report:
    """A report and its attached files in one transaction: if the report is refused, or any file is
    invalid or too large, nothing is kept (no report, no evidence row, no stored bytes)."""
    with bytes_kept_only_if_committed(), transaction.atomic():
        problems: list[FieldError] = []
        decoded = _decode_attachments(attachments, problems)
        try:
            report = handling.create_report(actor=actor, data=data)
        except InvalidInput as exc:
            errors = [*exc.errors, *problems]
            raise InvalidInput(
                "the report is not valid: " + "; ".join(str(e) for e in errors), errors=errors
            ) from None
        if problems:
            raise InvalidInput(
                "the attachments are not valid: " + "; ".join(str(e) for e in problems), errors=problems
            )
        for index, (attachment, content) in enumerate(decoded):
            _check_size(len(content), clean_filename(attachment.filename), f"attachments[{index}]")
        for attachment, content in decoded:
            receive_evidence(
                actor=actor,
                content=content,
                filename=attachment.filename,
                content_type=attachment.content_type,
                source=EvidenceSource.API,
                report=report,
            )
    return report


# --- downloads ------------------------------------------------------------------------------------


@dataclass
class Download:
    evidence: Evidence
    file: IO[bytes]


def open_evidence_for_download(*, actor: User, evidence_id: int, via: str = "") -> Download:
    """The stored bytes, for a user who sees in full a record the file belongs to (a TLP:RED stub
    is not enough). The download is written to the chain of custody before a byte is sent."""
    evidence = selectors_evidence.access_evidence(actor, evidence_id)
    try:
        handle = storage.open_stored(evidence.storage_key)
    except FileNotFoundError:
        raise Conflict(
            f"the stored bytes of evidence {evidence_id} ({evidence.filename!r}) are missing "
            "from the evidence store"
        ) from None
    try:
        with transaction.atomic():
            custody(evidence, actor, CustodyAction.DOWNLOADED, f"downloaded{' ' + via if via else ''}")
    except BaseException:
        handle.close()
        raise
    return Download(evidence, handle)


# --- referral -------------------------------------------------------------------------------------


def _sections(raw: Sequence[str], errors: list[FieldError]) -> list[str]:
    """'s. 3', 's.3', 'section 3', '3' → 's. 3'; every section must exist in PECA-2016."""
    found: list[str] = []
    for index, value in enumerate(raw):
        match = _SECTION.fullmatch(value.strip())
        number = int(match.group(1)) if match else 0
        if match is None or not 1 <= number <= PECA_LAST_SECTION:
            errors.append(
                FieldError(
                    f"sections[{index}]",
                    f"{value!r} is not a PECA-2016 section: write 's. N' with N from 1 to "
                    f"{PECA_LAST_SECTION} (e.g. 's. 3')",
                )
            )
            continue
        section = f"s. {number}{match.group(2).upper()}"
        if section not in found:
            found.append(section)
    if not raw:
        errors.append(FieldError("sections", "name the PECA-2016 sections the referral is made under"))
    return found


@transaction.atomic
def create_referral(
    *,
    actor: User,
    incident: Incident,
    agency: str,
    sections: Sequence[str],
    case_number: str = "",
    note: str = "",
) -> Referral:
    """Refer an incident to the investigating agency (PECA-2016 s. 29): for its handlers."""
    incident = Incident.objects.select_for_update().get(pk=incident.pk)
    require(actor, "handle", incident, label=f"incident {incident.pk}")
    if incident.status in (IncidentStatus.MERGED, IncidentStatus.REJECTED):
        raise IllegalTransition(f"incident {incident.pk} is {incident.status}; it cannot be referred")
    errors: list[FieldError] = []
    agencies = list(selectors_evidence.investigating_agencies(actor))
    chosen = next((a for a in agencies if a.slug == agency.strip()), None)
    if chosen is None:
        valid = ", ".join(a.slug for a in agencies) or "none are registered"
        errors.append(
            FieldError("agency", f"{agency!r} is not an investigating agency; valid agencies: {valid}")
        )
    case_number = case_number.strip()
    if len(case_number) > MAX_CASE_NUMBER:
        errors.append(
            FieldError(
                "case_number", f"is {len(case_number)} characters long; the limit is {MAX_CASE_NUMBER}"
            )
        )
    cited = _sections(sections, errors)
    if errors or chosen is None:
        raise InvalidInput("the referral is not valid: " + "; ".join(str(e) for e in errors), errors=errors)
    referral = Referral.objects.create(
        incident=incident,
        agency=chosen,
        case_number=case_number,
        sections=cited,
        note=note.strip(),
        referred_at=clock.now(),
        referred_by=actor,
    )
    audit.record(
        actor=actor,
        action="incidents.referral.create",
        target=referral,
        organisation_id=incident.affected_organisation_id,
        data={"incident": incident.pk, "agency": chosen.slug, "case_number": case_number, "sections": cited},
    )
    case = f", case {case_number}" if case_number else ""
    timeline_event(
        incident,
        actor,
        "referred",
        f"referred to {chosen.display_name}{case} under PECA-2016 {', '.join(cited)}",
        referral=referral.pk,
    )
    return referral


# --- evidence packages ----------------------------------------------------------------------------


@dataclass
class ExportedPackage:
    package: EvidencePackage
    file: IO[bytes]  # the zip, positioned at its start; the caller closes it
    filename: str
    manifest_sha256: str
    size: int


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _referral_record(referral: Referral) -> dict[str, Any]:
    return {
        "id": referral.pk,
        "agency": referral.agency.slug,
        "agency_name": referral.agency.name,
        "case_number": referral.case_number,
        "sections": referral.sections,
        "note": referral.note,
        "referred_at": _iso(referral.referred_at),
        "referred_by": referral.referred_by.get_username(),
    }


def _pack_evidence(writer: packages.PackageWriter, files: list[Evidence]) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = []
    for evidence in files:
        path = packages.evidence_path(evidence.pk, evidence.filename)
        what = f"evidence {evidence.pk} ({evidence.filename!r})"
        try:
            source = storage.open_stored(evidence.storage_key)
        except FileNotFoundError:
            raise Conflict(f"the stored bytes of {what} are missing; nothing was exported") from None
        with source:
            packed = writer.add_evidence(path, source, recorded_sha256=evidence.sha256, what=what)
        listed.append(
            {
                "path": packed.path,
                "sha256": packed.sha256,
                "size": packed.size,
                "evidence_id": evidence.pk,
                "filename": evidence.filename,
                "content_type": evidence.content_type,
                "source": evidence.source,
                "received_at": _iso(evidence.received_at),
                "received_by": evidence.received_by.get_username() if evidence.received_by else None,
                "report": evidence.report_id,
            }
        )
    return listed


def _record_integrity_failure(actor: User, incident: Incident, failure: packages.StoredBytesChanged) -> None:
    """A refused export rolls back, but a file that no longer matches its hash is a fact to keep."""
    with transaction.atomic():
        audit.record(
            actor=actor,
            action="incidents.evidence.integrity_failure",
            target=incident,
            organisation_id=incident.affected_organisation_id,
            data={"detail": failure.detail, "recorded": failure.recorded, "actual": failure.actual},
        )


@dataclass(frozen=True)
class _Built:
    manifest_sha256: str
    package_id: str
    files: list[dict[str, Any]]


def _build_package(
    spool: IO[bytes], *, actor: User, incident: Incident, referral: Referral | None, at: dt.datetime
) -> _Built:
    """Pack the files, write their 'exported' custody entries, then the records and the manifest."""
    files = list(selectors_evidence.evidence_of_incident(incident, actor))
    package_id = uuid.uuid4().hex
    writer = packages.PackageWriter(spool, at=at)
    try:
        listed = _pack_evidence(writer, files)
        where = f"evidence package {package_id} of {incident.reference}"
        if referral is not None:
            where += f" for referral {referral.pk} to {referral.agency.slug}"
        # Written before custody.json is packed: the package carries its own export.
        for evidence in files:
            custody(evidence, actor, CustodyAction.EXPORTED, f"exported in {where}")
        custody_log = [
            {
                "evidence_id": entry.evidence_id,
                "at": _iso(entry.at),
                "actor": entry.actor_label,
                "action": entry.action,
                "detail": entry.detail,
            }
            for entry in selectors_evidence.custody_of([e.pk for e in files])
        ]
        timeline = [
            {"at": _iso(t.at), "actor": t.actor_label, "kind": t.kind, "summary": t.summary, "data": t.data}
            for t in incident.timeline.all()
        ]
        records = {
            "custody": writer.add_record(packages.CUSTODY, custody_log),
            "timeline": writer.add_record(packages.TIMELINE, timeline),
        }
        manifest_sha256 = writer.finish(
            {
                "format": packages.FORMAT,
                "package_id": package_id,
                "incident": {
                    "id": incident.pk,
                    "reference": incident.reference,
                    "title": incident.title,
                    "affected_organisation": incident.affected_organisation.slug,
                    "handling_cert": incident.handling_cert.slug,
                    "tlp": incident.tlp,
                    "peca_sections_hint": incident.peca_sections,
                },
                "referral": _referral_record(referral) if referral is not None else None,
                "exported_at": _iso(at),
                "exported_by": actor.get_username(),
                "files": listed,
                **{
                    key: {"path": packed.path, "sha256": packed.sha256, "size": packed.size}
                    for key, packed in records.items()
                },
            }
        )
    except BaseException:
        writer.abandon()
        raise
    return _Built(manifest_sha256, package_id, listed)


def export_package(*, actor: User, incident: Incident, referral_id: int | None = None) -> ExportedPackage:
    """Build the evidence package of an incident (its files and its reports' files), for its handlers.

    Every stored file is re-hashed as it is packed; one that no longer matches its recorded hash stops
    the export (409, naming it; the failed check itself is audited). The 'exported' custody entries are
    written before custody.json is packed, so the package carries its own export in its chain of
    custody; the manifest, written last, hashes every member, and its own hash goes to the audit log
    and the EvidencePackage record."""
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the caller, who streams then closes it
    try:
        with transaction.atomic():
            incident = (
                Incident.objects.select_for_update()
                .select_related("affected_organisation", "handling_cert")
                .get(pk=incident.pk)
            )
            require(actor, "handle", incident, label=f"incident {incident.pk}")
            referral = None
            if referral_id is not None:
                referral = selectors_evidence.referrals_of(incident).filter(pk=referral_id).first()
                if referral is None:
                    raise invalid("referral_id", f"incident {incident.pk} has no referral {referral_id}")
            now = clock.now()
            built = _build_package(spool, actor=actor, incident=incident, referral=referral, at=now)
            package = EvidencePackage.objects.create(
                incident=incident,
                referral=referral,
                manifest_sha256=built.manifest_sha256,
                file_count=len(built.files),
                total_bytes=sum(entry["size"] for entry in built.files),
                created_at=now,
                created_by=actor,
            )
            audit.record(
                actor=actor,
                action=selectors_evidence.PACKAGE_AUDIT_ACTION,
                target=package,
                organisation_id=incident.affected_organisation_id,
                data={
                    "manifest_sha256": built.manifest_sha256,
                    "incident": incident.pk,
                    "referral": referral.pk if referral is not None else None,
                    "package_id": built.package_id,
                    "files": len(built.files),
                },
            )
            timeline_event(
                incident,
                actor,
                "evidence-package",
                f"evidence package exported ({len(built.files)} files), "
                f"manifest sha256 {built.manifest_sha256}",
                package=package.pk,
            )
    except packages.StoredBytesChanged as failure:
        spool.close()
        _record_integrity_failure(actor, incident, failure)
        raise
    except BaseException:
        spool.close()
        raise
    size = spool.seek(0, 2)
    spool.seek(0)
    return ExportedPackage(
        package=package,
        file=spool,
        filename=f"{incident.reference}-evidence-{now.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}.zip",
        manifest_sha256=built.manifest_sha256,
        size=size,
    )
