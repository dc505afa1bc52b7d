"""Domain errors. Services raise these; the API and CLI map them to problem+json / exit codes once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    """One problem with the input: where it is (a path such as 'organisations[3].reports_to') and what."""

    loc: str
    msg: str

    def as_dict(self) -> dict[str, str]:
        return {"loc": self.loc, "msg": self.msg}

    def __str__(self) -> str:
        return f"{self.loc}: {self.msg}" if self.loc else self.msg


class DomainError(Exception):
    status = 400
    title = "Bad request"

    def __init__(self, detail: str, *, errors: Sequence[FieldError] = ()) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors)

    def as_problem(self) -> dict[str, object]:
        problem: dict[str, object] = {
            "type": f"https://certnet.invalid/problems/{self.title.lower().replace(' ', '-')}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors:
            problem["errors"] = [error.as_dict() for error in self.errors]
        return problem


class InvalidInput(DomainError):
    status = 422
    title = "Invalid input"


class NotFound(DomainError):
    """Also what a caller gets for a record they may not see: no existence leak."""

    status = 404
    title = "Not found"


class Forbidden(DomainError):
    """The caller may see the record but not do this to it."""

    status = 403
    title = "Forbidden"


class Conflict(DomainError):
    status = 409
    title = "Conflict"


class TooLarge(DomainError):
    """A file or message over the configured size limit; the message says the size and the limit."""

    status = 413
    title = "Too large"


class IllegalTransition(Conflict):
    title = "Illegal transition"


def invalid(loc: str, msg: str) -> InvalidInput:
    """Shorthand for a single-field validation error."""
    return InvalidInput(f"{loc}: {msg}" if loc else msg, errors=[FieldError(loc, msg)])
