"""Changes to the registry. Each function is one transaction, checks the actor's right through
certnet.core.visibility, validates completely before writing, and appends to the audit log.

`actor` is a user, or a `SystemActor` for trusted platform processes (the framework loader, the CLI
run by the operator), which are not subject to organisation roles."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import models, transaction

from certnet.core import audit, clock
from certnet.core.audit import Actor, SystemActor
from certnet.core.errors import (
    Conflict,
    FieldError,
    Forbidden,
    IllegalTransition,
    InvalidInput,
    NotFound,
    invalid,
)
from certnet.core.tlp import TLP
from certnet.core.visibility import can, may_lower_tlp
from certnet.registry.models import (
    AutonomousSystem,
    CIISystem,
    Contact,
    ContactKind,
    Designation,
    DesignationEvent,
    DesignationKind,
    DesignationStatus,
    Domain,
    Function,
    FunctionHolding,
    Netblock,
    Organisation,
    OrganisationKind,
    ReportingLine,
)
from certnet.registry.resources import normalise_domain, parse_asn, parse_network
from certnet.registry.selectors import reporting_edges

# --- helpers ------------------------------------------------------------------------------------


def _require(actor: Actor, action: str, record: models.Model) -> None:
    if isinstance(actor, SystemActor):
        return
    if not can(actor, "view", record):  # type: ignore[arg-type]
        raise NotFound(f"no {record._meta.verbose_name} {record}")
    if not can(actor, action, record):  # type: ignore[arg-type]
        raise Forbidden(f"you may not {action} {record._meta.verbose_name} {record}")


def _require_manager_above(actor: Actor, organisation: Organisation | None) -> None:
    """Creating a record under `organisation` needs the right to change that organisation."""
    if isinstance(actor, SystemActor) or getattr(actor, "is_platform_admin", False):
        return
    if organisation is None:
        raise Forbidden("only platform administrators may create a top-level organisation")
    _require(actor, "change", organisation)


def _registry_tlp(value: str | TLP | None, default: TLP) -> TLP:
    # RED admits only an author and named people; registry records have neither, so RED would hide
    # them from their own organisation. AMBER+STRICT is the strictest label that makes sense here.
    tlp = _tlp(value, default)
    if tlp == TLP.RED:
        raise invalid("tlp", "registry records cannot be TLP:RED; use amber+strict")
    return tlp


def _tlp(value: str | TLP | None, default: TLP, loc: str = "tlp") -> TLP:
    if value is None or value == "":
        return default
    try:
        return TLP.parse(str(value))
    except ValueError as exc:
        raise invalid(loc, str(exc)) from None


def _choice(value: str, choices: type[models.TextChoices], loc: str) -> str:
    if value not in choices.values:
        raise invalid(loc, f"{value!r} is not one of: {', '.join(choices.values)}")
    return value


def _day(value: dt.date | None) -> dt.date:
    return value or clock.today()


def _not_in_future(day: dt.date, loc: str) -> dt.date:
    # A step is recorded when it has happened; a status that only becomes true later would make
    # today's badge disagree with the history.
    if day > clock.today():
        raise invalid(loc, f"{day} is in the future; record a step once it has taken effect")
    return day


def _one_year_after(day: dt.date) -> dt.date:
    try:
        return day.replace(year=day.year + 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year + 1, day=28)


def _require_fits(model: type[models.Model], values: Mapping[str, Any]) -> None:
    """Refuse text longer than its column or holding NUL, naming each field, before the database does."""
    errors = []
    for name, value in values.items():
        if not isinstance(value, str):
            continue
        limit = getattr(model._meta.get_field(name), "max_length", None)
        if limit is not None and len(value.strip()) > limit:
            errors.append(FieldError(name, f"is {len(value.strip())} characters long; the limit is {limit}"))
        if "\x00" in value:
            errors.append(FieldError(name, "contains a NUL character"))
    if errors:
        raise _invalid_all("input too long or malformed", errors)


# --- organisations ------------------------------------------------------------------------------

ORGANISATION_FIELDS = (
    "name",
    "short_name",
    "kind",
    "sector",
    "province",
    "lead_department",
    "description",
    "website",
)


@dataclass
class OrganisationInput:
    slug: str
    name: str
    kind: str
    short_name: str = ""
    sector: str = ""
    province: str = ""
    lead_department: str = ""
    description: str = ""
    website: str = ""
    tlp: str = "green"
    reports_to: str | None = None
    reports_since: dt.date | None = None
    via_function: str | None = None


def _visible_to(actor: Actor) -> models.QuerySet[Organisation]:
    if isinstance(actor, SystemActor):
        return Organisation.objects.all()
    return Organisation.objects.restrict(actor, "view")  # type: ignore[arg-type]


def _invalid_all(what: str, errors: list[FieldError]) -> InvalidInput:
    return InvalidInput(f"{what}: " + "; ".join(str(error) for error in errors), errors=errors)


@transaction.atomic
def create_organisation(*, actor: Actor, data: OrganisationInput) -> Organisation:
    errors: list[FieldError] = []
    slug = data.slug.strip().lower()
    if not slug or not all(ch.isalnum() or ch == "-" for ch in slug):
        errors.append(FieldError("slug", f"{data.slug!r} must be lower-case letters, digits and '-'"))
    if not data.name.strip():
        errors.append(FieldError("name", "must not be empty"))
    if data.kind not in OrganisationKind.values:
        errors.append(
            FieldError("kind", f"{data.kind!r} is not one of: {', '.join(OrganisationKind.values)}")
        )
    parent = None
    if data.reports_to:
        # A parent the actor may not see answers exactly like one that does not exist.
        parent = _visible_to(actor).filter(slug=data.reports_to).first()
        if parent is None:
            errors.append(FieldError("reports_to", f"no organisation {data.reports_to!r}"))
    if errors:
        raise _invalid_all("the organisation is not valid", errors)
    _require_fits(Organisation, {"slug": slug, **{name: getattr(data, name) for name in ORGANISATION_FIELDS}})
    # The right to create comes before the slug check, so a refusal tells nothing about other slugs.
    _require_manager_above(actor, parent)
    if Organisation.objects.filter(slug=slug).exists():
        raise Conflict(f"an organisation with slug {slug!r} already exists")
    organisation = Organisation(
        slug=slug,
        tlp=_registry_tlp(data.tlp, TLP.GREEN),
        **{name: getattr(data, name).strip() for name in ORGANISATION_FIELDS},
    )
    organisation.save()
    audit.record(
        actor=actor,
        action="registry.organisation.create",
        target=organisation,
        organisation_id=organisation.pk,
        data={"slug": slug, "kind": data.kind, "name": data.name},
    )
    if parent is not None:
        # The right was checked above against the parent; the new record has no line to check yet.
        _move_reporting_line(
            actor=actor,
            organisation=organisation,
            parent=parent,
            effective=data.reports_since or clock.today(),
            via_function=data.via_function,
        )
    return organisation


@transaction.atomic
def update_organisation(
    *, actor: Actor, organisation: Organisation, changes: Mapping[str, Any]
) -> Organisation:
    _require(actor, "change", organisation)
    unknown = set(changes) - set(ORGANISATION_FIELDS) - {"tlp"}
    if unknown:
        raise InvalidInput(
            "unknown fields", errors=[FieldError(name, "cannot be changed here") for name in sorted(unknown)]
        )
    before: dict[str, Any] = {}
    _require_fits(Organisation, {k: v for k, v in changes.items() if k in ORGANISATION_FIELDS})
    if "kind" in changes:
        _choice(changes["kind"], OrganisationKind, "kind")
    if "name" in changes and not str(changes["name"]).strip():
        raise invalid("name", "must not be empty")
    if "tlp" in changes:
        new_tlp = _registry_tlp(changes["tlp"], TLP(organisation.tlp))
        if TLP(organisation.tlp).is_stricter_than(new_tlp) and not (
            isinstance(actor, SystemActor) or may_lower_tlp(actor, organisation)  # type: ignore[arg-type]
        ):
            raise Forbidden("only the owner organisation may lower a record's TLP")
        changes = {**changes, "tlp": str(new_tlp)}
    for name, value in changes.items():
        old = getattr(organisation, name)
        value = value.strip() if isinstance(value, str) else value
        if old != value:
            before[name] = old
            setattr(organisation, name, value)
    if before:
        organisation.save()
        audit.record(
            actor=actor,
            action="registry.organisation.update",
            target=organisation,
            organisation_id=organisation.pk,
            data={"before": before, "after": {k: getattr(organisation, k) for k in before}},
        )
    return organisation


@transaction.atomic
def set_reporting_line(
    *,
    actor: Actor,
    organisation: Organisation,
    parent: Organisation | None,
    effective: dt.date,
    reference: str = "",
    via_function: str | None = None,
) -> ReportingLine | None:
    """From `effective` on, `organisation` reports to `parent` (None: to nobody). Refuses cycles.

    Decided above the organisation: a manager of a CERT it reports to (who must also be able to
    change the new parent) or a platform administrator. Only a platform administrator may detach an
    organisation from the hierarchy, because that also removes its CERT chain's oversight."""
    if not isinstance(actor, SystemActor) and not getattr(actor, "is_platform_admin", False):
        if parent is None:
            _require(actor, "view", organisation)
            raise Forbidden("only platform administrators may detach an organisation from its CERT chain")
        _require(actor, "move", organisation)
        _require(actor, "change", parent)
    return _move_reporting_line(
        actor=actor,
        organisation=organisation,
        parent=parent,
        effective=effective,
        reference=reference,
        via_function=via_function,
    )


def _move_reporting_line(
    *,
    actor: Actor,
    organisation: Organisation,
    parent: Organisation | None,
    effective: dt.date,
    reference: str = "",
    via_function: str | None = None,
) -> ReportingLine | None:
    _require_fits(ReportingLine, {"reference": reference})
    function = None
    if via_function:
        function = Function.objects.filter(slug=via_function).first()
        if function is None:
            raise invalid("via_function", f"no function {via_function!r}")
    current = (
        ReportingLine.objects.select_for_update()
        .filter(organisation=organisation, valid_to__isnull=True)
        .first()
    )
    if current is not None and current.parent_id == (parent.pk if parent else None):
        return current
    if current is not None and effective <= current.valid_from:
        raise invalid(
            "effective",
            f"the current reporting line began on {current.valid_from}; a change must take effect later",
        )
    # History is written in date order: nothing recorded may already cover the days from `effective`.
    covered = ReportingLine.objects.filter(organisation=organisation, valid_to__gt=effective)
    if current is not None:
        covered = covered.exclude(pk=current.pk)
    clash = covered.order_by("valid_from").first()
    if clash is not None:
        raise invalid(
            "effective",
            f"{organisation.slug} already has a reporting line from {clash.valid_from} to {clash.valid_to}; "
            f"a new line cannot start before {clash.valid_to}",
        )
    if parent is not None:
        _refuse_cycle(organisation, parent, effective)
    if current is not None:
        current.valid_to = effective
        current.save(update_fields=["valid_to"])
    line = None
    if parent is not None:
        line = ReportingLine.objects.create(
            organisation=organisation,
            parent=parent,
            valid_from=effective,
            via_function=function,
            reference=reference,
        )
    audit.record(
        actor=actor,
        action="registry.reporting_line.set",
        target=organisation,
        organisation_id=organisation.pk,
        data={
            "parent": parent.slug if parent else None,
            "previous_parent_id": current.parent_id if current else None,
            "effective": effective,
            "via_function": via_function,
            "reference": reference,
        },
    )
    return line


def _refuse_cycle(organisation: Organisation, parent: Organisation, effective: dt.date) -> None:
    if parent.pk == organisation.pk:
        raise invalid("reports_to", f"{organisation.slug} cannot report to itself")
    # The new line is open-ended, so it must not close a loop on any day from `effective` on: check
    # the day it starts and every later day on which some other line starts or ends.
    later = ReportingLine.objects.filter(
        models.Q(valid_from__gt=effective) | models.Q(valid_to__gt=effective)
    ).values_list("valid_from", "valid_to")
    days = {effective} | {d for pair in later for d in pair if d is not None and d > effective}
    for day in sorted(days):
        edges = reporting_edges(day)
        edges[organisation.pk] = parent.pk
        seen = [organisation.pk]
        current = edges.get(organisation.pk)
        while current is not None:
            if current == organisation.pk:
                names = dict(Organisation.objects.filter(pk__in=seen).values_list("pk", "slug"))
                path = " → ".join(names.get(pk, str(pk)) for pk in [*seen, organisation.pk])
                raise invalid("reports_to", f"this would make a reporting cycle: {path}")
            seen.append(current)
            current = edges.get(current)


# --- functions ----------------------------------------------------------------------------------


@transaction.atomic
def assign_function(
    *, actor: Actor, function_slug: str, organisation: Organisation, effective: dt.date, reference: str = ""
) -> FunctionHolding:
    """From `effective` on, `organisation` holds the function; whoever held it before stops then."""
    if not isinstance(actor, SystemActor) and not getattr(actor, "is_platform_admin", False):
        raise Forbidden("only platform administrators move framework functions between bodies")
    _require_fits(FunctionHolding, {"reference": reference})
    function = Function.objects.filter(slug=function_slug).first()
    if function is None:
        raise invalid("function", f"no function {function_slug!r}")
    current = (
        FunctionHolding.objects.select_for_update().filter(function=function, valid_to__isnull=True).first()
    )
    if current is not None:
        if current.organisation_id == organisation.pk:
            return current
        if effective <= current.valid_from:
            raise invalid(
                "effective", f"{function.name} has been held since {current.valid_from}; choose a later date"
            )
        current.valid_to = effective
        current.save(update_fields=["valid_to"])
    holding = FunctionHolding.objects.create(
        function=function, organisation=organisation, valid_from=effective, reference=reference
    )
    audit.record(
        actor=actor,
        action="registry.function.assign",
        target=holding,
        organisation_id=organisation.pk,
        data={
            "function": function_slug,
            "to": organisation.slug,
            "effective": effective,
            "from_organisation_id": current.organisation_id if current else None,
            "reference": reference,
        },
    )
    return holding


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


# --- constituency resources ---------------------------------------------------------------------


@dataclass
class AddedResource:
    """A new resource and what it overlaps in other organisations (allowed; the most specific wins)."""

    record: Netblock | AutonomousSystem | Domain
    overlaps: list[str] = field(default_factory=list)


def _owners_as_seen_by(actor: Actor, records: list[Any]) -> list[str]:
    """'<resource> (<owner slug>)' for records the actor may see; others only say they exist, so
    registering a resource does not reveal who holds a hidden one."""
    if not records:
        return []
    model = type(records[0])
    visible = set(
        model.objects.all().values_list("pk", flat=True)
        if isinstance(actor, SystemActor)
        else model.objects.restrict(actor, "view")
        .filter(pk__in=[r.pk for r in records])
        .values_list("pk", flat=True)
    )
    return [
        f"{r} ({r.organisation.slug})" if r.pk in visible else f"{r} (another organisation)" for r in records
    ]


def _in_force_between(valid_from: dt.date) -> models.Q:
    """Records still in force on or after `valid_from` (their period overlaps an open-ended new one)."""
    return models.Q(valid_to__isnull=True) | models.Q(valid_to__gt=valid_from)


@transaction.atomic
def add_netblock(
    *,
    actor: Actor,
    organisation: Organisation,
    cidr: str,
    valid_from: dt.date | None = None,
    description: str = "",
    tlp: str | None = None,
) -> AddedResource:
    _require(actor, "change", organisation)
    audit.lock_chain()
    parsed = parse_network(cidr)
    _require_fits(Netblock, {"description": description})
    day = _day(valid_from)
    same_family = Netblock.objects.filter(_in_force_between(day), family=parsed.family)
    duplicate = same_family.filter(cidr=parsed.cidr).select_related("organisation").first()
    if duplicate is not None:
        raise Conflict(f"{parsed.cidr} is already registered: {_owners_as_seen_by(actor, [duplicate])[0]}")
    overlapping = list(
        same_family.filter(start__lte=parsed.end, end__gte=parsed.start).select_related("organisation")
    )
    own = [block.cidr for block in overlapping if block.organisation_id == organisation.pk]
    if own:
        raise Conflict(f"{parsed.cidr} overlaps {', '.join(own)}, already registered to {organisation.slug}")
    netblock = Netblock.objects.create(
        organisation=organisation,
        cidr=parsed.cidr,
        family=parsed.family,
        prefix_length=parsed.prefix_length,
        start=parsed.start,
        end=parsed.end,
        valid_from=day,
        description=description,
        tlp=_registry_tlp(tlp, TLP.AMBER),
    )
    audit.record(
        actor=actor,
        action="registry.netblock.add",
        target=netblock,
        organisation_id=organisation.pk,
        data={
            "cidr": parsed.cidr,
            "valid_from": day,
            "overlaps": [f"{block.cidr} ({block.organisation.slug})" for block in overlapping],
        },
    )
    overlaps = _owners_as_seen_by(actor, overlapping)
    return AddedResource(netblock, overlaps)


@transaction.atomic
def add_asn(
    *,
    actor: Actor,
    organisation: Organisation,
    asn: str | int,
    valid_from: dt.date | None = None,
    name: str = "",
    tlp: str | None = None,
) -> AddedResource:
    _require(actor, "change", organisation)
    audit.lock_chain()
    number = parse_asn(asn)
    _require_fits(AutonomousSystem, {"name": name})
    day = _day(valid_from)
    existing = (
        AutonomousSystem.objects.filter(_in_force_between(day), asn=number)
        .select_related("organisation")
        .first()
    )
    if existing is not None:
        raise Conflict(f"AS{number} is already registered: {_owners_as_seen_by(actor, [existing])[0]}")
    record = AutonomousSystem.objects.create(
        organisation=organisation, asn=number, name=name, valid_from=day, tlp=_registry_tlp(tlp, TLP.GREEN)
    )
    audit.record(
        actor=actor,
        action="registry.asn.add",
        target=record,
        organisation_id=organisation.pk,
        data={"asn": number, "valid_from": day},
    )
    return AddedResource(record)


@transaction.atomic
def add_domain(
    *,
    actor: Actor,
    organisation: Organisation,
    name: str,
    valid_from: dt.date | None = None,
    tlp: str | None = None,
) -> AddedResource:
    _require(actor, "change", organisation)
    audit.lock_chain()
    ascii_name, unicode_name = normalise_domain(name)
    day = _day(valid_from)
    active = Domain.objects.filter(_in_force_between(day)).select_related("organisation")
    existing = active.filter(name=ascii_name).first()
    if existing is not None:
        raise Conflict(f"{ascii_name} is already registered: {_owners_as_seen_by(actor, [existing])[0]}")
    suffixes = [".".join(ascii_name.split(".")[i:]) for i in range(1, ascii_name.count(".") + 1)]
    related = active.filter(models.Q(name__in=suffixes) | models.Q(name__endswith="." + ascii_name))
    record = Domain.objects.create(
        organisation=organisation,
        name=ascii_name,
        unicode_name=unicode_name if unicode_name != ascii_name else "",
        valid_from=day,
        tlp=_registry_tlp(tlp, TLP.GREEN),
    )
    related_domains = list(related)
    audit.record(
        actor=actor,
        action="registry.domain.add",
        target=record,
        organisation_id=organisation.pk,
        data={
            "name": ascii_name,
            "valid_from": day,
            "overlaps": [f"{d.name} ({d.organisation.slug})" for d in related_domains],
        },
    )
    return AddedResource(record, _owners_as_seen_by(actor, related_domains))


@transaction.atomic
def retire_resource(
    *, actor: Actor, record: Netblock | AutonomousSystem | Domain, valid_to: dt.date | None = None
) -> None:
    """The resource stops belonging to its organisation on `valid_to`; its history stays."""
    _require(actor, "change", record.organisation)
    day = _day(valid_to)
    if record.valid_to is not None:
        raise Conflict(f"{record} was already retired on {record.valid_to}")
    if day <= record.valid_from:
        raise invalid("valid_to", f"{record} became valid on {record.valid_from}; retire it after that")
    record.valid_to = day
    record.save(update_fields=["valid_to"])
    audit.record(
        actor=actor,
        action=f"registry.{record._meta.model_name}.retire",
        target=record,
        organisation_id=record.organisation_id,
        data={"resource": str(record), "valid_to": day},
    )


@transaction.atomic
def add_contact(
    *,
    actor: Actor,
    organisation: Organisation,
    kind: str,
    name: str = "",
    email: str = "",
    phone: str = "",
    pgp_fingerprint: str = "",
    pgp_key: str = "",
    available_24_7: bool = False,
    tlp: str | None = None,
) -> Contact:
    _require(actor, "change", organisation)
    _choice(kind, ContactKind, "kind")
    _require_fits(Contact, {"name": name, "email": email, "phone": phone, "pgp_key": pgp_key})
    if not email.strip() and not phone.strip():
        raise invalid("email", "a contact needs an e-mail address or a phone number")
    if email and ("@" not in email or email.startswith("@") or email.endswith("@")):
        raise invalid("email", f"{email!r} is not an e-mail address")
    fingerprint = pgp_fingerprint.replace(" ", "").upper()
    if fingerprint and (
        len(fingerprint) not in {40, 64} or any(c not in "0123456789ABCDEF" for c in fingerprint)
    ):
        raise invalid("pgp_fingerprint", "a PGP fingerprint is 40 (v4) or 64 (v5/v6) hexadecimal digits")
    contact = Contact.objects.create(
        organisation=organisation,
        kind=kind,
        name=name,
        email=email.strip().lower(),
        phone=phone.strip(),
        pgp_fingerprint=fingerprint,
        pgp_key=pgp_key,
        available_24_7=available_24_7,
        tlp=_registry_tlp(tlp, TLP.AMBER),
    )
    audit.record(
        actor=actor,
        action="registry.contact.add",
        target=contact,
        organisation_id=organisation.pk,
        data={"kind": kind, "email": contact.email, "phone": contact.phone},
    )
    return contact


@transaction.atomic
def add_cii_system(
    *,
    actor: Actor,
    organisation: Organisation,
    name: str,
    description: str = "",
    designation: Designation | None = None,
    tlp: str | None = None,
) -> CIISystem:
    _require(actor, "change", organisation)
    if not name.strip():
        raise invalid("name", "must not be empty")
    _require_fits(CIISystem, {"name": name, "description": description})
    if CIISystem.objects.filter(organisation=organisation, name=name.strip()).exists():
        raise Conflict(f"{organisation.slug} already has a CII system named {name.strip()!r}")
    if designation is not None and designation.organisation_id != organisation.pk:
        raise invalid("designation", "the designation belongs to another organisation")
    system = CIISystem.objects.create(
        organisation=organisation,
        name=name.strip(),
        description=description,
        designation=designation,
        tlp=_registry_tlp(tlp, TLP.AMBER),
    )
    audit.record(
        actor=actor,
        action="registry.cii_system.add",
        target=system,
        organisation_id=organisation.pk,
        data={"name": system.name, "designation_id": designation.pk if designation else None},
    )
    return system
