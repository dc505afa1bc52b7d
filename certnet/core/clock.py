"""The platform's notion of 'now', injectable so that deadlines and history are testable without sleeping."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

_frozen: dt.datetime | None = None


def now() -> dt.datetime:
    return _frozen if _frozen is not None else dt.datetime.now(tz=dt.UTC)


def today() -> dt.date:
    return now().date()


@contextmanager
def frozen_at(moment: dt.datetime) -> Iterator[None]:
    """Make now() return `moment` (aware) inside the block."""
    global _frozen
    if moment.tzinfo is None:
        raise ValueError("frozen_at needs an aware datetime")
    previous, _frozen = _frozen, moment
    try:
        yield
    finally:
        _frozen = previous


def parse_date(text: str, *, loc: str = "date") -> dt.date:
    """Parse an ISO date (YYYY-MM-DD) or raise a ValueError that says where and what."""
    try:
        return dt.date.fromisoformat(text.strip())
    except (ValueError, AttributeError):
        raise ValueError(f"{loc}: {text!r} is not a date in the form YYYY-MM-DD") from None
