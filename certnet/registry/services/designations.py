"""CERT and CII designations through their lifecycle, and the annual CII review."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from certnet.core import audit, clock
from certnet.core.audit import Actor, SystemActor
from certnet.core.errors import (
    Conflict,
    FieldError,
    IllegalTransition,
    InvalidInput,
    invalid,
)
from certnet.core.tlp import TLP
from certnet.registry.models import (
    Designation,
    DesignationEvent,
    DesignationKind,
    DesignationStatus,
    Organisation,
)
from certnet.registry.services.common import (
    _choice,
    _day,
    _not_in_future,
    _one_year_after,
    _registry_tlp,
    _require,
    _require_fits,
    _visible_to,
)

# --- designations -------------------------------------------------------------------------------

S = DesignationStatus
# status → the statuses it may move to, with the name of the step.
TRANSITIONS: dict[str, dict[str, str]] = {
    S.PROPOSED: {S.RECOMMENDED: "recommend", S.DISSOLVED: "withdraw"},
    S.RECOMMENDED: {S.SUMMARY_SUBMITTED: "submit-summary", S.DISSOLVED: "withdraw"},
    S.SUMMARY_SUBMITTED: {S.APPROVED: "approve", S.DISSOLVED: "withdraw"},
    S.APPROVED: {S.NOTIFIED: "notify", S.DISSOLVED: "dissolve"},
    S.NOTIFIED: {S.OPERATIONAL: "make-operational", S.SUSPENDED: "suspend", S.DISSOLVED: "dissolve"},
    S.OPERATIONAL: {S.SUSPENDED: "suspend", S.DISSOLVED: "dissolve"},
    S.SUSPENDED: {S.OPERATIONAL: "reinstate", S.DISSOLVED: "dissolve"},
    S.DISSOLVED: {},
}
# What a step must cite.
REQUIRED_FOR: dict[str, tuple[str, str]] = {
    S.RECOMMENDED: ("reference", "the CERT Council's recommendation (meeting or minute reference)"),
    S.NOTIFIED: ("gazette_reference", "the gazette notification"),
}


@dataclass
class DesignationInput:
    kind: str
    scope: str = ""
    designating_authority: str | None = None
    legal_basis: str = ""
    grade: str = ""
    review_due: dt.date | None = None
    proposed_on: dt.date | None = None
    reference: str = ""
    tlp: str = "green"


@transaction.atomic
def propose_designation(*, actor: Actor, organisation: Organisation, data: DesignationInput) -> Designation:
    _choice(data.kind, DesignationKind, "kind")
    designation = Designation(
        organisation=organisation,
        kind=data.kind,
        status=S.PROPOSED,
        scope=data.scope,
        legal_basis=data.legal_basis,
        grade=data.grade,
        review_due=data.review_due,
        tlp=_registry_tlp(data.tlp, TLP.GREEN),
    )
    # The right comes first, so a refusal says nothing about designations the actor cannot see.
    if not isinstance(actor, SystemActor):
        _require(actor, "transition", designation)
    _require_fits(Designation, {"scope": data.scope, "legal_basis": data.legal_basis, "grade": data.grade})
    if data.kind == DesignationKind.CERT and not organisation.is_cert:
        raise invalid("kind", f"{organisation.slug} is a {organisation.get_kind_display()}, not a CERT")
    proposed_on = _not_in_future(_day(data.proposed_on), "proposed_on")
    if data.designating_authority:
        designation.designating_authority = _visible_to(actor).filter(slug=data.designating_authority).first()
        if designation.designating_authority is None:
            raise invalid("designating_authority", f"no organisation {data.designating_authority!r}")
    if Designation.objects.filter(organisation=organisation, kind=data.kind).exists():
        raise Conflict(f"{organisation.slug} already has a {data.kind} designation")
    designation.save()
    _event(actor, designation, "propose", "", S.PROPOSED, proposed_on, data.reference, "")
    audit.record(
        actor=actor,
        action="registry.designation.propose",
        target=designation,
        organisation_id=organisation.pk,
        data={"kind": data.kind, "scope": data.scope, "legal_basis": data.legal_basis},
    )
    return designation


@transaction.atomic
def transition_designation(
    *,
    actor: Actor,
    designation: Designation,
    to_status: str,
    effective_on: dt.date | None = None,
    reference: str = "",
    gazette_reference: str = "",
    note: str = "",
) -> Designation:
    """Move a designation one legal step. Anything else is refused and nothing changes."""
    designation = Designation.objects.select_for_update().get(pk=designation.pk)
    _require(actor, "transition", designation)
    if to_status not in S.values:
        raise invalid("status", f"{to_status!r} is not a designation status ({', '.join(S.values)})")
    allowed = TRANSITIONS[designation.status]
    if to_status not in allowed:
        options = ", ".join(allowed) or "none (dissolved is final)"
        raise IllegalTransition(
            f"a designation that is {designation.status} cannot become {to_status}; it can become: {options}"
        )
    day = _not_in_future(_day(effective_on), "effective_on")
    last = designation.events.order_by("-effective_on", "-id").first()
    if last is not None and day < last.effective_on:
        raise invalid(
            "effective_on", f"the previous step took effect on {last.effective_on}; {day} is earlier"
        )
    _require_fits(DesignationEvent, {"reference": reference, "note": note})
    _require_fits(Designation, {"gazette_reference": gazette_reference})
    if to_status in REQUIRED_FOR:
        needed, what = REQUIRED_FOR[to_status]
        if not {"reference": reference, "gazette_reference": gazette_reference}[needed].strip():
            raise invalid(needed, f"becoming {to_status} must cite {what}")
    step = allowed[to_status]
    previous = designation.status
    designation.status = to_status
    if to_status == S.NOTIFIED:
        designation.gazette_reference, designation.notified_on = gazette_reference.strip(), day
    designation.save()
    _event(actor, designation, step, previous, to_status, day, reference or gazette_reference, note)
    audit.record(
        actor=actor,
        action=f"registry.designation.{step}",
        target=designation,
        organisation_id=designation.organisation_id,
        data={
            "from": previous,
            "to": to_status,
            "effective_on": day,
            "reference": reference,
            "gazette_reference": gazette_reference,
            "note": note,
        },
    )
    return designation


@transaction.atomic
def record_designation_review(
    *,
    actor: Actor,
    designation: Designation,
    reviewed_on: dt.date,
    reference: str = "",
    note: str = "",
    grade: str | None = None,
    next_review_due: dt.date | None = None,
) -> Designation:
    """The annual review of a CII designation: keeps the status, may re-grade, sets the next due date."""
    designation = Designation.objects.select_for_update().get(pk=designation.pk)
    _require(actor, "transition", designation)
    if designation.kind != DesignationKind.CII:
        raise invalid("kind", "only CII designations are reviewed annually")
    if designation.status not in {S.NOTIFIED, S.OPERATIONAL}:
        raise IllegalTransition(f"a {designation.status} designation is not in force and cannot be reviewed")
    _not_in_future(reviewed_on, "reviewed_on")
    last = designation.events.order_by("-effective_on", "-id").first()
    if last is not None and reviewed_on < last.effective_on:
        raise invalid(
            "reviewed_on",
            f"the designation's last recorded step is of {last.effective_on}; {reviewed_on} is earlier",
        )
    due = next_review_due or _one_year_after(reviewed_on)
    if due <= reviewed_on:
        raise invalid("next_review_due", "the next review must fall after this one")
    before = {"grade": designation.grade, "review_due": designation.review_due}
    if grade is not None:
        designation.grade = grade
    designation.review_due = due
    designation.save()
    _event(actor, designation, "review", designation.status, designation.status, reviewed_on, reference, note)
    audit.record(
        actor=actor,
        action="registry.designation.review",
        target=designation,
        organisation_id=designation.organisation_id,
        data={"before": before, "grade": designation.grade, "review_due": due, "reference": reference},
    )
    return designation


@transaction.atomic
def record_designation_on_file(
    *,
    actor: Actor,
    designation: Designation,
    status: str,
    effective_on: dt.date,
    reference: str = "",
    gazette_reference: str = "",
    note: str = "",
) -> Designation:
    """A just-proposed designation whose earlier steps are not on record starts at the status an
    authoritative source gives (the framework file); the event says so."""
    _require(actor, "transition", designation)
    if designation.status != S.PROPOSED or designation.events.exclude(event="propose").exists():
        raise IllegalTransition("only a designation with no recorded steps can be set from the record")
    _choice(status, S, "status")
    designation.status = status
    if status == S.NOTIFIED:
        designation.gazette_reference, designation.notified_on = gazette_reference, effective_on
    designation.save()
    _event(actor, designation, "record", S.PROPOSED, status, effective_on, reference, note)
    audit.record(
        actor=actor,
        action="registry.designation.record",
        target=designation,
        organisation_id=designation.organisation_id,
        data={"status": status, "on": effective_on, "reference": reference, "note": note},
    )
    return designation


DESIGNATION_DETAILS = ("scope", "designating_authority", "legal_basis", "grade", "review_due")


@transaction.atomic
def update_designation_details(
    *, actor: Actor, designation: Designation, changes: Mapping[str, Any]
) -> Designation:
    """Correct what a designation says (scope, authority, legal basis, grade, review date); its
    lifecycle moves only through transitions."""
    _require(actor, "transition", designation)
    unknown = set(changes) - set(DESIGNATION_DETAILS)
    if unknown:
        raise InvalidInput(
            "unknown fields", errors=[FieldError(n, "cannot be changed here") for n in sorted(unknown)]
        )
    values = dict(changes)
    if "designating_authority" in values:
        slug = values["designating_authority"]
        values["designating_authority"] = _visible_to(actor).filter(slug=slug).first() if slug else None
        if slug and values["designating_authority"] is None:
            raise invalid("designating_authority", f"no organisation {slug!r}")
    _require_fits(Designation, {k: v for k, v in values.items() if isinstance(v, str)})
    before = {k: getattr(designation, k) for k, v in values.items() if getattr(designation, k) != v}
    if not before:
        return designation
    for name in before:
        setattr(designation, name, values[name])
    designation.save()
    audit.record(
        actor=actor,
        action="registry.designation.update",
        target=designation,
        organisation_id=designation.organisation_id,
        data={
            "before": {k: getattr(v, "slug", v) for k, v in before.items()},
            "after": {k: getattr(values[k], "slug", values[k]) for k in before},
        },
    )
    return designation


def _event(
    actor: Actor,
    designation: Designation,
    event: str,
    from_status: str,
    to_status: str,
    day: dt.date,
    reference: str,
    note: str,
) -> None:
    DesignationEvent.objects.create(
        designation=designation,
        event=event,
        from_status=from_status,
        to_status=to_status,
        effective_on=day,
        reference=reference,
        note=note,
        actor_id=actor.pk,
        actor_label=actor.get_username(),
        recorded_at=clock.now(),
    )
