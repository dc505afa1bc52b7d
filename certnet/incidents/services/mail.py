"""E-mail intake: a message received by SMTP (`certnet smtpd`) or imported from a file
(`certnet ingest-mail`) becomes a report, or waits in a CERT's triage queue.

- Nothing accepted is lost: the raw message is stored whole (its SHA-256 and size on the InboundMail)
  before anything else is written, and a refusal leaves no row and no file behind.
- A second delivery of the same message (same Message-ID; without one, the same bytes) changes nothing
  and answers with the record made the first time.
- The mailbox: the CERT whose incident or abuse contact is one of the recipients, else the CERT named by
  CERTNET_MAIL_DEFAULT_CERT.
- The sender: the organisation whose registry contact has the From address. Exactly one → a report
  (channel e-mail) for that organisation, its attachments as evidence of the report. None, several, or a
  message marked TLP:RED → the mailbox CERT's triage queue, attachments held on the message. TLP:RED
  needs named readers, and an e-mail cannot name platform users, so a person decides.
- Limits: a message over CERTNET_MAIL_MAX_BYTES, or with one attachment over CERTNET_EVIDENCE_MAX_BYTES,
  is refused whole (TooLarge): the sending server bounces it to its author, who learns at once; keeping
  the rest would leave a report without the evidence it was sent with.
- The From header is not authenticated here; a report made from it is still only a report that the
  CERT triages. Checking SPF/DKIM/DMARC is the job of the mail relay in front of `certnet smtpd`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, transaction

from certnet.accounts.models import User
from certnet.core import audit, clock
from certnet.core.audit import Actor, SystemActor
from certnet.core.errors import FieldError, IllegalTransition, InvalidInput, TooLarge, invalid
from certnet.core.tlp import TLP
from certnet.core.visibility import require
from certnet.incidents import jobs, mailparse, selectors_mail, storage
from certnet.incidents.mailparse import ParsedMail
from certnet.incidents.models import Channel, Evidence, InboundMail, InboundMailStatus, Report
from certnet.incidents.models_handling import CustodyAction, EvidenceSource
from certnet.incidents.services.evidence import bytes_kept_only_if_committed, receive_evidence
from certnet.incidents.services.handling import named_recipients
from certnet.incidents.services.trail import custody
from certnet.registry.models import Organisation
from certnet.registry.selectors import descendants_of

INTAKE = SystemActor("mail-intake")
# A Date header older than this (mail relays give up retrying after about five days) or in the future
# is not believed as the moment of awareness; the time of receipt is used instead.
MAX_DATE_AGE = dt.timedelta(days=7)
NO_SUBJECT = "(no subject)"
NO_TEXT = "(the message has no text)"
TITLE_MAX = 200


@dataclass(frozen=True)
class IngestResult:
    mail: InboundMail
    report: Report | None
    created: bool  # False: the message had been received before; nothing was written this time
    evidence: list[Evidence] = field(default_factory=list)
    hold_reason: str = ""

    @property
    def reference(self) -> str:
        """What the sender is told the message became: 'report R-12', or 'mail 7' while it waits."""
        return f"report R-{self.report.pk}" if self.report is not None else f"mail {self.mail.pk}"

    def describe(self) -> str:
        mailbox = self.mail.mailbox_cert.slug
        if not self.created:
            return f"already received as mail {self.mail.pk} ({self.mail.status}); nothing changed"
        if self.report is not None:
            files = f", {len(self.evidence)} attachment(s) as evidence" if self.evidence else ""
            return (
                f"{self.reference} created for {self.report.affected_organisation.slug} "
                f"from mail {self.mail.pk} to {mailbox}{files}"
            )
        return f"held for triage by {mailbox} as mail {self.mail.pk}: {self.hold_reason}"


def message_key_of(parsed: ParsedMail, raw: bytes) -> str:
    return message_key(parsed.message_id, parsed.from_address, raw)


def message_key(message_id: str, from_address: str, raw: bytes) -> str:
    """What makes a second delivery of one message a no-op: its Message-ID together with its sender
    (a resend through another relay differs in its bytes, while another sender reusing the same
    Message-ID, by accident or to suppress a report, is another message), else the bytes."""
    if not message_id:
        return hashlib.sha256(raw).hexdigest()
    return hashlib.sha256(f"{message_id}\n{from_address.lower()}".encode()).hexdigest()


def aware_at_for(sent_at: dt.datetime | None, received_at: dt.datetime) -> dt.datetime:
    """The Date header when it is believable (not after receipt, not over MAX_DATE_AGE before)."""
    if sent_at is not None and received_at - MAX_DATE_AGE <= sent_at <= received_at:
        return sent_at
    return received_at


def _intake_tlp(requested: TLP) -> TLP:
    """The label of the intake record itself: never below AMBER (who wrote to a CERT, and the raw
    message with its routing headers, stay with the mailbox CERT and the CERTs above it whatever the
    content's label), and AMBER+STRICT for RED, which the mailbox CERT must still be able to triage."""
    return TLP.AMBER_STRICT if requested.rank >= TLP.AMBER_STRICT.rank else TLP.AMBER


def _check_message_size(raw: bytes) -> None:
    limit = settings.CERTNET_MAIL_MAX_BYTES
    if len(raw) > limit:
        raise TooLarge(f"the message is {len(raw)} bytes; the limit is {limit} bytes")


def _check_attachment_sizes(parsed: ParsedMail) -> None:
    """Before anything is stored: one oversized attachment refuses the whole message."""
    file_limit = settings.CERTNET_EVIDENCE_MAX_BYTES
    for attachment in parsed.attachments:
        if attachment.size > file_limit:
            raise TooLarge(
                f"the attachment {attachment.filename!r} is {attachment.size} bytes; the limit for one "
                f"evidence file is {file_limit} bytes, so the whole message was refused",
                errors=[FieldError("attachments", f"{attachment.filename!r} is too large")],
            )


def ingest(
    raw: bytes,
    *,
    envelope_from: str = "",
    recipients: Sequence[str] = (),
    actor: Actor = INTAKE,
) -> IngestResult:
    """Receive one message. `recipients` are the envelope recipients (RCPT TO); when empty (a file
    imported without --to) the To and Cc headers stand in. Raises TooLarge or InvalidInput, having
    written nothing, when the message is refused."""
    _check_message_size(raw)
    parsed = mailparse.parse(raw)
    _check_attachment_sizes(parsed)
    key = message_key_of(parsed, raw)
    existing = selectors_mail.mail_by_key(key)
    if existing is not None:
        return IngestResult(mail=existing, report=existing.report, created=False)
    stored: list[str] = []  # the raw message; the attachments' bytes are looked after by evidence
    try:
        with bytes_kept_only_if_committed():
            raw_file = storage.store(raw, what="the message", max_bytes=settings.CERTNET_MAIL_MAX_BYTES)
            stored.append(raw_file.key)
            result = _record(
                parsed,
                raw_file,
                key=key,
                envelope_from=envelope_from,
                recipients=list(recipients) or [*parsed.to, *parsed.cc],
                actor=actor,
            )
    except IntegrityError:
        # The same message delivered twice at once (PostgreSQL): the other delivery recorded it.
        _forget(stored)
        existing = selectors_mail.mail_by_key(key)
        if existing is None:
            raise
        return IngestResult(mail=existing, report=existing.report, created=False)
    except BaseException:
        _forget(stored)
        raise
    if not result.created:
        _forget(stored)
    return result


def _forget(keys: list[str]) -> None:
    """Remove files stored for a message whose transaction did not commit."""
    for key in keys:
        storage.delete_stored(key)


@transaction.atomic
def _record(
    parsed: ParsedMail,
    raw_file: storage.StoredFile,
    *,
    key: str,
    envelope_from: str,
    recipients: list[str],
    actor: Actor,
) -> IngestResult:
    # Taking the audit chain's lock first serialises deliveries, so the duplicate check holds.
    audit.lock_chain()
    existing = selectors_mail.mail_by_key(key)
    if existing is not None:
        return IngestResult(mail=existing, report=existing.report, created=False)
    now = clock.now()
    mailbox = selectors_mail.mailbox_cert_for(recipients) or selectors_mail.default_mailbox_cert()
    senders = selectors_mail.organisations_with_address(parsed.from_address)
    requested = parsed.tlp or TLP.AMBER
    sender = senders[0] if len(senders) == 1 else None
    report: Report | None = None
    if sender is not None and requested != TLP.RED:
        report = _create_report(
            sender,
            title=parsed.title or NO_SUBJECT,
            description=parsed.body,
            aware_at=aware_at_for(parsed.sent_at, now),
            received_at=now,
            tlp=requested,
        )
    mail = InboundMail.objects.create(
        message_key=key,
        message_id=parsed.message_id,
        mailbox_cert=mailbox,
        envelope_from=envelope_from.strip()[:320],
        header_from=parsed.from_address[:320],
        recipients=[address.lower() for address in recipients],
        subject=parsed.subject[:300],
        body=parsed.body,
        sent_at=parsed.sent_at,
        received_at=now,
        raw_sha256=raw_file.sha256,
        raw_storage_key=raw_file.key,
        raw_size=raw_file.size,
        tlp=_intake_tlp(requested),
        status=InboundMailStatus.REPORTED if report is not None else InboundMailStatus.PENDING,
        sender_organisation=sender,
        report=report,
    )
    hold_reason = selectors_mail.hold_reason(mail)
    evidence: list[Evidence] = []
    for attachment in parsed.attachments:
        item = receive_evidence(
            actor=actor,
            content=attachment.content,
            filename=attachment.filename,
            content_type=attachment.content_type,
            source=EvidenceSource.EMAIL,
            report=report,
            inbound_mail=mail,
            description=f"attachment of mail {mail.pk}",
        )
        evidence.append(item)
    audit.record(
        actor=actor,
        action="incidents.mail.receive",
        target=mail,
        organisation_id=mailbox.pk,
        data={
            "message_id": parsed.message_id,
            "from": parsed.from_address,
            "envelope_from": mail.envelope_from,
            "recipients": mail.recipients,
            "raw_sha256": raw_file.sha256,
            "status": mail.status,
            "report": report.pk if report is not None else None,
            "hold_reason": hold_reason,
            "attachments": [{"filename": e.filename, "sha256": e.sha256} for e in evidence],
        },
    )
    if report is not None:
        _record_new_report(actor, report, mail)
    return IngestResult(mail=mail, report=report, created=True, evidence=evidence, hold_reason=hold_reason)


def _create_report(
    organisation: Organisation,
    *,
    title: str,
    description: str,
    aware_at: dt.datetime,
    received_at: dt.datetime,
    tlp: TLP,
) -> Report:
    return Report.objects.create(
        channel=Channel.EMAIL,
        reporting_organisation=organisation,
        affected_organisation=organisation,
        submitted_by=None,  # the sender is an address, not a platform user
        title=title.strip()[:TITLE_MAX],
        description=description or NO_TEXT,
        aware_at=aware_at,
        received_at=received_at,
        tlp=tlp,
    )


def _record_new_report(actor: Actor, report: Report, mail: InboundMail) -> None:
    """Audit the new report and tell its handling CERT, as for a report filed on the web."""
    jobs.announce_after_commit()
    audit.record(
        actor=actor,
        action="incidents.report.submit",
        target=report,
        organisation_id=report.affected_organisation_id,
        data={
            "title": report.title,
            "channel": report.channel,
            "tlp": str(report.tlp),
            "mail": mail.pk,
            "named_users": sorted(report.named_users.values_list("username", flat=True)),
        },
    )


# --- triage of held mail ------------------------------------------------------------------------------


@dataclass
class AcceptInput:
    organisation: str
    title: str | None = None
    tlp: str | None = None
    named_users: Sequence[str] = ()
    note: str = ""


def _require_pending(mail: InboundMail, verb: str) -> None:
    if mail.status != InboundMailStatus.PENDING:
        raise IllegalTransition(f"mail {mail.pk} is already {mail.status}; only pending mail can be {verb}")


@transaction.atomic
def accept_mail(*, actor: User, mail: InboundMail, data: AcceptInput) -> Report:
    """A handler of the mailbox CERT makes a held message a report for the organisation it concerns
    (the mailbox CERT itself or one below it). Its attachments move onto the report. The sender's TLP
    label may be raised, never lowered; a TLP:RED report names its readers (by default the handler)."""
    mail = InboundMail.objects.select_for_update().select_related("mailbox_cert").get(pk=mail.pk)
    require(actor, "triage", mail, label=f"mail {mail.pk}")
    _require_pending(mail, "accepted")
    errors: list[FieldError] = []
    mailbox = mail.mailbox_cert
    organisation = Organisation.objects.filter(slug=data.organisation.strip()).first()
    if organisation is None or organisation.pk not in {mailbox.pk, *descendants_of([mailbox.pk])}:
        errors.append(
            FieldError(
                "organisation",
                f"{data.organisation!r} is not {mailbox.slug} or an organisation that reports to it",
            )
        )
    title = (data.title or "").strip() or mailparse.title_of(mail.subject) or NO_SUBJECT
    if len(title) > TITLE_MAX:
        errors.append(FieldError("title", f"is {len(title)} characters long; the limit is {TITLE_MAX}"))
    labelled = mailparse.tlp_in_subject(mail.subject)
    tlp = labelled or TLP.AMBER
    if data.tlp:
        try:
            tlp = TLP.parse(data.tlp)
        except ValueError as exc:
            errors.append(FieldError("tlp", str(exc)))
        else:
            if labelled is not None and labelled.is_stricter_than(tlp):
                errors.append(
                    FieldError("tlp", f"the sender marked the message {labelled.label}; it cannot be lowered")
                )
    named: list[User] = []
    if organisation is not None and not errors:
        wanted = list(data.named_users) or ([actor.username] if tlp == TLP.RED else [])
        named = named_recipients(organisation, wanted, errors)
    if errors or organisation is None:
        raise InvalidInput("the mail cannot be accepted: " + "; ".join(str(e) for e in errors), errors=errors)
    report = _create_report(
        organisation,
        title=title,
        description=mail.body,
        aware_at=aware_at_for(mail.sent_at, mail.received_at),
        received_at=mail.received_at,
        tlp=tlp,
    )
    report.named_users.set(named)
    moved = list(mail.attachments.select_for_update().filter(report__isnull=True, incident__isnull=True))
    for item in moved:
        item.report = report
        item.save(update_fields=["report"])
        custody(item, actor, CustodyAction.ATTACHED, f"moved to report R-{report.pk} from mail {mail.pk}")
    mail.status, mail.report = InboundMailStatus.REPORTED, report
    mail.decided_by, mail.decided_at, mail.decision_note = actor, clock.now(), data.note.strip()
    # The message's text is now the report's description: the intake record may not show it to anyone
    # the report would not, so it takes the report's label when that is stricter (a RED report's
    # text then lives only in the report, for its named readers).
    if tlp.is_stricter_than(TLP(mail.tlp)):
        mail.tlp = tlp
    mail.save(update_fields=["status", "report", "decided_by", "decided_at", "decision_note", "tlp"])
    audit.record(
        actor=actor,
        action="incidents.mail.accept",
        target=mail,
        organisation_id=mailbox.pk,
        data={
            "report": report.pk,
            "organisation": organisation.slug,
            "tlp": str(tlp),
            "attachments": [item.pk for item in moved],
            "note": mail.decision_note,
        },
    )
    _record_new_report(actor, report, mail)
    return report


@transaction.atomic
def discard_mail(*, actor: User, mail: InboundMail, reason: str) -> InboundMail:
    """Set a held message aside (spam, not an incident, a duplicate). It is kept, with its reason."""
    mail = InboundMail.objects.select_for_update().get(pk=mail.pk)
    require(actor, "triage", mail, label=f"mail {mail.pk}")
    _require_pending(mail, "discarded")
    if not reason.strip():
        raise invalid("reason", "say why the mail is discarded")
    mail.status = InboundMailStatus.DISCARDED
    mail.decided_by, mail.decided_at, mail.decision_note = actor, clock.now(), reason.strip()
    mail.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
    audit.record(
        actor=actor,
        action="incidents.mail.discard",
        target=mail,
        organisation_id=mail.mailbox_cert_id,
        data={"reason": mail.decision_note},
    )
    return mail
