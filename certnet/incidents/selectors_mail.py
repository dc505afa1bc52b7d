"""Reads for e-mail intake: which CERT a mailbox address belongs to, which organisations an address
is a contact of, and the intake mail a user may see (always through visibility)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import Lower

from certnet.core.errors import NotFound
from certnet.incidents.models import InboundMail, InboundMailStatus
from certnet.registry.models import CERT_KINDS, Contact, ContactKind, Organisation
from certnet.registry.selectors import descendants_of

if TYPE_CHECKING:
    from certnet.core.visibility import UserLike

MAILBOX_CONTACT_KINDS = (ContactKind.INCIDENT, ContactKind.ABUSE)


def _address_q(addresses: Iterable[str]) -> Q:
    q = Q(pk__in=[])
    for address in addresses:
        q |= Q(email__iexact=address)
    return q


def mailbox_cert_for(recipients: Iterable[str]) -> Organisation | None:
    """The CERT whose incident or abuse contact is one of the recipients; with several, the CERT of
    the first recipient (in the order the message was addressed) that is one."""
    wanted = [address.strip().lower() for address in recipients if address.strip()]
    if not wanted:
        return None
    contacts = (
        Contact.objects.filter(_address_q(wanted), kind__in=list(MAILBOX_CONTACT_KINDS))
        .filter(organisation__kind__in=list(CERT_KINDS))
        .select_related("organisation")
    )
    by_address: dict[str, Organisation] = {}
    for contact in contacts.order_by("organisation__slug"):
        by_address.setdefault(contact.email.lower(), contact.organisation)
    for address in wanted:
        if address in by_address:
            return by_address[address]
    return None


def default_mailbox_cert() -> Organisation:
    """The CERT whose triage queue receives mail addressed to no CERT's intake address."""
    slug = settings.CERTNET_MAIL_DEFAULT_CERT
    found = Organisation.objects.filter(slug=slug).first()
    if found is None:
        raise ImproperlyConfigured(
            f"CERTNET_MAIL_DEFAULT_CERT is {slug!r}, but no organisation has that slug; "
            "load the framework or set it to an existing CERT"
        )
    return found


def organisations_with_address(address: str) -> list[Organisation]:
    """Every organisation that lists `address` (case-insensitively) among its contacts, of any kind."""
    ids = Contact.objects.filter(email__iexact=address.strip()).values("organisation_id")
    return list(Organisation.objects.filter(pk__in=ids).order_by("slug"))


def mail_by_key(message_key: str) -> InboundMail | None:
    return InboundMail.objects.filter(message_key=message_key).select_related("report").first()


def visible_mail(user: UserLike | None, status: str | None = None) -> QuerySet[InboundMail]:
    queryset = (
        InboundMail.objects.restrict(user, "view")
        .select_related("mailbox_cert", "sender_organisation", "report")
        .annotate(attachment_count=Count("attachments"))
        .order_by("-received_at", "-id")
    )
    return queryset.filter(status=status) if status else queryset


def access_mail(user: UserLike | None, mail_id: int) -> InboundMail:
    mail = visible_mail(user).filter(pk=mail_id).first()
    if mail is None:
        raise NotFound(f"no mail {mail_id}")
    return mail


def pending_count(user: UserLike | None) -> int:
    return visible_mail(user, InboundMailStatus.PENDING).count()


def hold_reasons(mails: Sequence[InboundMail]) -> dict[int, str]:
    """Why each pending message waits for a person rather than having become a report by itself
    ("" for a message already decided), for a whole page of messages in one query."""

    def sender(mail: InboundMail) -> str:
        return (mail.header_from or mail.envelope_from).lower()

    unmatched = [
        m for m in mails if m.status == InboundMailStatus.PENDING and m.sender_organisation_id is None
    ]
    wanted = {sender(m) for m in unmatched if sender(m)}
    owners: dict[str, int] = {}
    if wanted:
        rows = (
            Contact.objects.annotate(address=Lower("email"))
            .filter(address__in=sorted(wanted))
            .values("address")
            .annotate(organisations=Count("organisation", distinct=True))
        )
        owners = {row["address"]: row["organisations"] for row in rows}
    reasons: dict[int, str] = {}
    for mail in mails:
        address = sender(mail)
        if mail.status != InboundMailStatus.PENDING:
            reasons[mail.pk] = ""
        elif mail.sender_organisation_id is not None:
            reasons[mail.pk] = "marked TLP:RED: a handler decides who may read it"
        elif owners.get(address, 0) > 1:
            reasons[mail.pk] = f"{address} is a contact of {owners[address]} organisations"
        else:
            who = address or "the sender"
            reasons[mail.pk] = f"{who} is not a contact of any organisation in the registry"
    return reasons


def hold_reason(mail: InboundMail) -> str:
    return hold_reasons([mail])[mail.pk]


def organisations_for_mail(mail: InboundMail, candidates: QuerySet[Organisation]) -> QuerySet[Organisation]:
    """The organisations (among `candidates`) a pending message may be accepted for: the mailbox CERT
    and every organisation below it."""
    ids = {mail.mailbox_cert_id, *descendants_of([mail.mailbox_cert_id])}
    return candidates.filter(pk__in=ids).order_by("name")
