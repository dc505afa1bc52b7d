"""Organisations, their reporting lines and the framework functions they hold."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db import models, transaction

from certnet.core import audit, clock
from certnet.core.audit import Actor, SystemActor
from certnet.core.errors import (
    Conflict,
    FieldError,
    Forbidden,
    InvalidInput,
    invalid,
)
from certnet.core.tlp import TLP
from certnet.core.visibility import may_lower_tlp
from certnet.registry.models import (
    Function,
    FunctionHolding,
    Organisation,
    OrganisationKind,
    ReportingLine,
)
from certnet.registry.selectors import reporting_edges
from certnet.registry.services.common import (
    _choice,
    _invalid_all,
    _registry_tlp,
    _require,
    _require_fits,
    _require_manager_above,
    _visible_to,
)

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
