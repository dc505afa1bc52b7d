"""Indicators as CSV: one row per value. Columns (a header row names them; only kind and value are
required): kind, value, tlp, confidence, first_seen, last_seen, expires_at, tags (separated by "|"),
description, source. Times are ISO 8601; a time without a zone is UTC."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable

from certnet.core.errors import FieldError, InvalidInput
from certnet.intel.models import Indicator
from certnet.intel.services.indicators import IndicatorInput

COLUMNS = (
    "kind",
    "value",
    "tlp",
    "confidence",
    "first_seen",
    "last_seen",
    "expires_at",
    "tags",
    "description",
    "source",
)
TAG_SEPARATOR = "|"


def _time(text: str, loc: str, errors: list[FieldError]) -> dt.datetime | None:
    if not text.strip():
        return None
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        errors.append(FieldError(loc, f"{text!r} is not an ISO 8601 time"))
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def read_csv(text: str) -> tuple[list[IndicatorInput], list[str]]:
    """The rows as indicator inputs, with a label per row ("line N") for error messages. Raises
    InvalidInput listing every malformed cell; nothing is recorded from a file with one."""
    reader = csv.DictReader(io.StringIO(text))
    header = [name.strip() for name in reader.fieldnames or []]
    missing = [name for name in ("kind", "value") if name not in header]
    unknown = [name for name in header if name not in COLUMNS]
    if missing or unknown:
        problems = []
        if missing:
            problems.append(f"missing column(s) {', '.join(missing)}")
        if unknown:
            problems.append(f"unknown column(s) {', '.join(unknown)}; known: {', '.join(COLUMNS)}")
        raise InvalidInput(
            "line 1: " + "; ".join(problems), errors=[FieldError("line 1", "; ".join(problems))]
        )
    items: list[IndicatorInput] = []
    labels: list[str] = []
    errors: list[FieldError] = []
    for row in reader:
        line = f"line {reader.line_num}"
        cells = {(key or "").strip(): (value or "") for key, value in row.items()}
        confidence = None
        if cells.get("confidence", "").strip():
            try:
                confidence = int(cells["confidence"])
            except ValueError:
                errors.append(
                    FieldError(f"{line}.confidence", f"{cells['confidence']!r} is not a whole number")
                )
        items.append(
            IndicatorInput(
                kind=cells.get("kind", "").strip().lower(),
                value=cells.get("value", ""),
                tlp=cells.get("tlp", "").strip() or None,
                confidence=confidence,
                first_seen=_time(cells.get("first_seen", ""), f"{line}.first_seen", errors),
                last_seen=_time(cells.get("last_seen", ""), f"{line}.last_seen", errors),
                expires_at=_time(cells.get("expires_at", ""), f"{line}.expires_at", errors),
                tags=[t for t in (part.strip() for part in cells.get("tags", "").split(TAG_SEPARATOR)) if t],
                description=cells.get("description", ""),
                source=cells.get("source", ""),
            )
        )
        labels.append(line)
    if errors:
        raise InvalidInput(
            f"{len(errors)} problem(s), nothing recorded: " + "; ".join(str(e) for e in errors[:20]),
            errors=errors,
        )
    return items, labels


def write_csv(indicators: Iterable[Indicator]) -> Iterable[str]:
    """CSV lines for the given indicators (tags prefetched by the caller), header first."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    yield buffer.getvalue()
    for indicator in indicators:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(
            [
                indicator.kind,
                indicator.value,
                indicator.tlp,
                indicator.confidence,
                indicator.first_seen.isoformat(),
                indicator.last_seen.isoformat(),
                indicator.expires_at.isoformat() if indicator.expires_at else "",
                TAG_SEPARATOR.join(sorted(tag.name for tag in indicator.tags.all())),
                indicator.description,
                indicator.source,
            ]
        )
        yield buffer.getvalue()
