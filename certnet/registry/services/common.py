"""Helpers shared by the registry services: rights, TLP, dates, input limits."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from django.db import models

from certnet.core import clock
from certnet.core.audit import Actor, SystemActor
from certnet.core.errors import (
    FieldError,
    Forbidden,
    InvalidInput,
    invalid,
)
from certnet.core.tlp import TLP
from certnet.core.visibility import require
from certnet.registry.models import (
    Organisation,
)

# --- helpers ------------------------------------------------------------------------------------


def _require(actor: Actor, action: str, record: models.Model) -> None:
    if isinstance(actor, SystemActor):
        return
    require(actor, action, record, label=f"{record._meta.verbose_name} {record}")  # type: ignore[arg-type]


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


def _visible_to(actor: Actor) -> models.QuerySet[Organisation]:
    if isinstance(actor, SystemActor):
        return Organisation.objects.all()
    return Organisation.objects.restrict(actor, "view")  # type: ignore[arg-type]


def _invalid_all(what: str, errors: list[FieldError]) -> InvalidInput:
    return InvalidInput(f"{what}: " + "; ".join(str(error) for error in errors), errors=errors)
