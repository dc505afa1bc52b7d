"""Helpers shared by the incident pages: the signed-in user, reading form fields, and laying a
DomainError out beside the form it came from."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from django.http import HttpRequest

from certnet.accounts.models import User
from certnet.core.errors import DomainError, FieldError, InvalidInput


def signed_in_user(request: HttpRequest) -> User:
    """The signed-in user (every page here is behind login_required)."""
    return cast(User, request.user)


@dataclass
class FormErrors:
    """A DomainError laid out for a form: the detail on top, each field's messages beside it."""

    detail: str = ""
    fields: dict[str, list[str]] | None = None
    other: list[str] | None = None

    @classmethod
    def of(cls, exc: DomainError, known: Iterable[str]) -> FormErrors:
        names = set(known)
        fields: dict[str, list[str]] = {}
        other: list[str] = []
        for error in exc.errors:
            if error.loc in names:
                fields.setdefault(error.loc, []).append(error.msg)
            else:
                other.append(str(error))
        return cls(detail=exc.detail, fields=fields, other=other)


def form_text(data: Mapping[str, Any], name: str) -> str:
    return str(data.get(name, "")).strip()


def form_words(raw: str) -> list[str]:
    """'a, b  c' → ['a', 'b', 'c'] (usernames, slugs)."""
    return [w for w in re.split(r"[\s,;]+", raw) if w]


def parse_moment(raw: str, loc: str, errors: list[FieldError]) -> dt.datetime | None:
    """A datetime-local value ('2026-11-01T08:00') read as UTC; an offset, if given, is honoured."""
    if not raw:
        return None
    try:
        moment = dt.datetime.fromisoformat(raw)
    except ValueError:
        errors.append(FieldError(loc, f"{raw!r} is not a date and time (YYYY-MM-DD HH:MM, UTC)"))
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def parse_severity(raw: str, errors: list[FieldError], *, required: bool) -> int | None:
    if not raw:
        if required:
            errors.append(FieldError("severity", "choose a severity level"))
        return None
    try:
        return int(raw)
    except ValueError:
        errors.append(FieldError("severity", f"{raw!r} is not a national severity level (0-5)"))
        return None


def reject_if(errors: list[FieldError], what: str) -> None:
    if errors:
        raise InvalidInput(f"{what} is not valid: " + "; ".join(str(e) for e in errors), errors=errors)
