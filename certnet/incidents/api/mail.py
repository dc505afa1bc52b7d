"""E-mail intake endpoints: the mail a CERT received, and the triage of what could not become a report
by itself (unknown or ambiguous sender, TLP:RED). Thin: parse, one selector or service, shape."""

import datetime as dt
from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema
from ninja.pagination import LimitOffsetPagination, paginate

from certnet.accounts.models import User
from certnet.core.errors import invalid
from certnet.core.pagination import ShapedPage
from certnet.core.visibility import can
from certnet.incidents import selectors_mail
from certnet.incidents.api.incidents import OrganisationRef
from certnet.incidents.models import InboundMail, InboundMailStatus
from certnet.incidents.services import mail as mail_intake

router = Router(tags=["mail intake"])


class MailOut(Schema):
    id: int
    status: str
    mailbox_cert: OrganisationRef
    header_from: str
    envelope_from: str
    recipients: list[str]
    subject: str
    sent_at: dt.datetime | None
    received_at: dt.datetime
    tlp: str
    sender_organisation: OrganisationRef | None
    report: int | None
    hold_reason: str
    attachment_count: int
    decided_by: str | None
    decided_at: dt.datetime | None
    decision_note: str


class MailAttachmentOut(Schema):
    id: int
    filename: str
    content_type: str
    size: int
    sha256: str
    report: int | None


class MailDetailOut(MailOut):
    message_id: str
    body: str
    raw_sha256: str
    raw_size: int
    attachments: list[MailAttachmentOut]
    may_triage: bool


class AcceptIn(Schema):
    organisation: str
    title: str | None = None
    tlp: str | None = None
    named_users: list[str] = []
    note: str = ""


class DiscardIn(Schema):
    reason: str


def _ref(org: Any) -> dict[str, str] | None:
    return {"slug": org.slug, "name": org.name} if org is not None else None


def _attachment_count(mail: InboundMail) -> int:
    counted = getattr(mail, "attachment_count", None)  # annotated by the selectors
    return int(counted) if counted is not None else mail.attachments.count()


def _mail_out(mail: InboundMail, reason: str) -> dict[str, Any]:
    return {
        "id": mail.pk,
        "status": mail.status,
        "mailbox_cert": _ref(mail.mailbox_cert),
        "header_from": mail.header_from,
        "envelope_from": mail.envelope_from,
        "recipients": list(mail.recipients),
        "subject": mail.subject,
        "sent_at": mail.sent_at,
        "received_at": mail.received_at,
        "tlp": mail.tlp,
        "sender_organisation": _ref(mail.sender_organisation),
        "report": mail.report_id,
        "hold_reason": reason,
        "attachment_count": _attachment_count(mail),
        "decided_by": mail.decided_by.get_username() if mail.decided_by else None,
        "decided_at": mail.decided_at,
        "decision_note": mail.decision_note,
    }


def _mail_detail(request: HttpRequest, mail_id: int) -> dict[str, Any]:
    mail = selectors_mail.access_mail(request.user, mail_id)
    attachments = [
        {
            "id": item.pk,
            "filename": item.filename,
            "content_type": item.content_type,
            "size": item.size,
            "sha256": item.sha256,
            "report": item.report_id,
        }
        for item in mail.attachments.all()
    ]
    return {
        **_mail_out(mail, selectors_mail.hold_reason(mail)),
        "message_id": mail.message_id,
        "body": mail.body,
        "raw_sha256": mail.raw_sha256,
        "raw_size": mail.raw_size,
        "attachments": attachments,
        "may_triage": mail.status == InboundMailStatus.PENDING and can(request.user, "triage", mail),
    }


def _page(mails: list[InboundMail]) -> list[dict[str, Any]]:
    reasons = selectors_mail.hold_reasons(mails)
    return [_mail_out(mail, reasons[mail.pk]) for mail in mails]


@router.get(
    "/intake/mail",
    response=list[MailOut],
    summary="Mail received by the CERT mailboxes you may see (filter: status=pending|reported|discarded)",
)
@paginate(LimitOffsetPagination)
def list_mail(request: HttpRequest, status: str | None = None) -> Any:
    if status and status not in InboundMailStatus.values:
        raise invalid("status", f"{status!r} is not one of {', '.join(InboundMailStatus.values)}")
    queryset = selectors_mail.visible_mail(request.user, status).select_related("decided_by")
    return ShapedPage(queryset, _page)


@router.get("/intake/mail/{mail_id}", response=MailDetailOut, summary="One received message")
def get_mail(request: HttpRequest, mail_id: int) -> dict[str, Any]:
    return _mail_detail(request, mail_id)


@router.post(
    "/intake/mail/{mail_id}/accept",
    response=MailDetailOut,
    summary="Make a held message a report for an organisation under the mailbox CERT",
)
def accept_mail(request: HttpRequest, mail_id: int, payload: AcceptIn) -> dict[str, Any]:
    mail = selectors_mail.access_mail(request.user, mail_id)
    user: User = request.user  # type: ignore[assignment]
    mail_intake.accept_mail(actor=user, mail=mail, data=mail_intake.AcceptInput(**payload.model_dump()))
    return _mail_detail(request, mail_id)


@router.post(
    "/intake/mail/{mail_id}/discard",
    response=MailDetailOut,
    summary="Set a held message aside, with the reason (it is kept)",
)
def discard_mail(request: HttpRequest, mail_id: int, payload: DiscardIn) -> dict[str, Any]:
    mail = selectors_mail.access_mail(request.user, mail_id)
    user: User = request.user  # type: ignore[assignment]
    mail_intake.discard_mail(actor=user, mail=mail, reason=payload.reason)
    return _mail_detail(request, mail_id)
