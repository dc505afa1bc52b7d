"""Mail for triage: what the CERT mailboxes received that could not become a report by itself (sender
unknown or ambiguous, or marked TLP:RED), for the mailbox CERT's handlers to accept as a report for an
organisation under them, or to discard with a reason. Thin, like views.py: reads through the
selectors (visibility first), changes through the services, errors shown beside the form."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from certnet.accounts.models import User
from certnet.core.errors import DomainError, NotFound
from certnet.core.tlp import TLP
from certnet.core.visibility import can
from certnet.incidents import selectors_mail
from certnet.incidents.mailparse import title_of, tlp_in_subject
from certnet.incidents.models import InboundMail, InboundMailStatus
from certnet.incidents.services import mail as mail_intake
from certnet.incidents.webforms import FormErrors, form_text, form_words
from certnet.registry import selectors as registry
from certnet.registry.models import Organisation

PAGE_SIZE = 50
ACCEPT_FIELDS = ("organisation", "title", "tlp", "named_users", "note")
DISCARD_FIELDS = ("reason",)


@dataclass
class MailRow:
    mail: InboundMail
    reason: str
    may_triage: bool
    organisations: list[Organisation]


def signed_in_user(request: HttpRequest) -> User:
    return cast(User, request.user)


def _access(user: User, mail_id: int) -> InboundMail:
    try:
        return selectors_mail.access_mail(user, mail_id)
    except NotFound as exc:
        raise Http404(exc.detail) from None


def _targets(user: User, mail: InboundMail, cache: dict[int, list[Organisation]]) -> list[Organisation]:
    """The organisations a held message may become a report for (one query per mailbox CERT)."""
    if mail.mailbox_cert_id not in cache:
        visible = registry.visible_organisations(user)
        cache[mail.mailbox_cert_id] = list(selectors_mail.organisations_for_mail(mail, visible))
    return cache[mail.mailbox_cert_id]


def _may_triage(user: User, mail: InboundMail) -> bool:
    return mail.status == InboundMailStatus.PENDING and can(user, "triage", mail)


@login_required
def mail_queue(request: HttpRequest) -> HttpResponse:
    user = signed_in_user(request)
    status = request.GET.get("status", InboundMailStatus.PENDING).strip()
    if status and status not in InboundMailStatus.values:
        status = InboundMailStatus.PENDING
    page = Paginator(selectors_mail.visible_mail(user, status or None), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    mails: list[InboundMail] = list(page.object_list)
    reasons = selectors_mail.hold_reasons(mails)
    cache: dict[int, list[Organisation]] = {}
    rows = []
    for mail in mails:
        may = _may_triage(user, mail)
        rows.append(MailRow(mail, reasons[mail.pk], may, _targets(user, mail, cache) if may else []))
    context: dict[str, Any] = {
        "rows": rows,
        "page": page,
        "status": status,
        "statuses": InboundMailStatus.choices,
        "pending_count": selectors_mail.pending_count(user),
    }
    return render(request, "incidents/mail_queue.html", context)


def _detail_context(
    request: HttpRequest,
    mail: InboundMail,
    failed: tuple[str, FormErrors] | None = None,
    values: dict[str, str] | None = None,
) -> dict[str, Any]:
    user = signed_in_user(request)
    may = _may_triage(user, mail)
    labelled = tlp_in_subject(mail.subject)
    if values is None:
        values = {
            "organisation": mail.sender_organisation.slug if mail.sender_organisation else "",
            "title": title_of(mail.subject),
            "tlp": (labelled or TLP.AMBER).value,
        }
    return {
        "mail": mail,
        "reason": selectors_mail.hold_reason(mail),
        "attachments": list(mail.attachments.all()),
        "may_triage": may,
        "organisations": _targets(user, mail, {}) if may else [],
        "tlps": TLP.choices,
        "labelled": labelled,
        "values": values,
        "failed_action": failed[0] if failed else "",
        "errors": failed[1] if failed else FormErrors(),
    }


@login_required
def mail_detail(request: HttpRequest, mail_id: int) -> HttpResponse:
    mail = _access(signed_in_user(request), mail_id)
    return render(request, "incidents/mail_detail.html", _detail_context(request, mail))


@login_required
@require_POST
def mail_action(request: HttpRequest, mail_id: int, action: str) -> HttpResponse:
    user = signed_in_user(request)
    if action not in {"accept", "discard"}:
        raise Http404(f"no action {action!r}")
    mail = _access(user, mail_id)
    fields = ACCEPT_FIELDS if action == "accept" else DISCARD_FIELDS
    values = {name: form_text(request.POST, name) for name in fields}
    try:
        if action == "accept":
            report = mail_intake.accept_mail(
                actor=user,
                mail=mail,
                data=mail_intake.AcceptInput(
                    organisation=values["organisation"],
                    title=values["title"] or None,
                    tlp=values["tlp"] or None,
                    named_users=form_words(values["named_users"]),
                    note=values["note"],
                ),
            )
            messages.success(request, f"Mail {mail.pk} accepted as report R-{report.pk}.")
            return redirect("report-detail", report_id=report.pk)
        mail_intake.discard_mail(actor=user, mail=mail, reason=values["reason"])
    except NotFound as exc:
        raise Http404(exc.detail) from None
    except DomainError as exc:
        mail.refresh_from_db()
        context = _detail_context(request, mail, (action, FormErrors.of(exc, fields)), values)
        return render(request, "incidents/mail_detail.html", context, status=exc.status)
    messages.success(request, f"Mail {mail.pk} discarded.")
    return redirect("mail-queue")
