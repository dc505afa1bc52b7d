"""Presentation helpers for certnet's templates: badges, labels and the signed-in user's organisations."""

from __future__ import annotations

from typing import Any

from django import template
from django.db.models import QuerySet

from certnet.accounts.models import Membership
from certnet.accounts.selectors import memberships_of
from certnet.registry.models import DesignationKind, DesignationStatus, OrganisationKind

register = template.Library()

# One colour family per stage of a designation's life: not yet decided, in progress, in force,
# interrupted, ended.
_STATUS_TONE = {
    DesignationStatus.PROPOSED: "grey",
    DesignationStatus.RECOMMENDED: "amber",
    DesignationStatus.SUMMARY_SUBMITTED: "amber",
    DesignationStatus.APPROVED: "amber",
    DesignationStatus.NOTIFIED: "green",
    DesignationStatus.OPERATIONAL: "green",
    DesignationStatus.SUSPENDED: "red",
    DesignationStatus.DISSOLVED: "dark",
}

_DESIGNATION_SHORT = {DesignationKind.CERT: "CERT", DesignationKind.CII: "CII"}


@register.filter
def status_tone(status: str) -> str:
    """The badge colour of a designation status: grey, amber, green, red or dark."""
    try:
        return _STATUS_TONE[DesignationStatus(status)]
    except ValueError:
        return "grey"


@register.filter
def status_text(status: str) -> str:
    """'summary-submitted' → 'summary submitted' (the badge text)."""
    return str(status or "").replace("-", " ")


@register.filter
def status_title(status: str) -> str:
    """The full label of a status, e.g. 'Summary submitted to Cabinet' (a badge's tooltip)."""
    try:
        return str(DesignationStatus(status).label)
    except ValueError:
        return str(status)


@register.filter
def designation_short(kind: str) -> str:
    try:
        return _DESIGNATION_SHORT[DesignationKind(kind)]
    except (ValueError, KeyError):
        return str(kind).upper()


@register.filter
def kind_label(kind: str) -> str:
    try:
        return str(OrganisationKind(kind).label)
    except ValueError:
        return str(kind)


@register.filter
def humanise(value: str) -> str:
    """'khyber-pakhtunkhwa' → 'Khyber Pakhtunkhwa' for slugs used as sector and province values."""
    text = str(value or "").replace("-", " ").strip()
    return " ".join(word if word.isupper() else word.capitalize() for word in text.split())


@register.filter
def tlp_text(tlp: str) -> str:
    return f"TLP:{str(tlp or '').upper()}"


@register.filter
def tlp_class(tlp: str) -> str:
    return "tlp-" + str(tlp or "clear").replace("+", "-")


@register.simple_tag(takes_context=True)
def user_memberships(context: dict[str, Any]) -> QuerySet[Membership] | list[Membership]:
    """The signed-in user's memberships (organisation and role), for the navigation bar."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return []
    return memberships_of(user)
