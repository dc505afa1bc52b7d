"""The tamper-evident audit log.

Every service that changes state calls `record()` inside its transaction. Each entry's SHA-256 hash
covers a canonical JSON form of the entry and the previous entry's hash, so altering, removing or
reordering any row breaks the chain from that row on; `verify()` finds the first break.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from django.db import models, transaction

from certnet.core import clock, statements
from certnet.core.models import AuditEntry, AuditHead, AuditMark

GENESIS_HASH = "0" * 64


class Actor(Protocol):
    @property
    def pk(self) -> Any: ...

    def get_username(self) -> str: ...


@dataclass(frozen=True)
class SystemActor:
    """An actor that is not a person: the loader, a scheduled job. Named so the log says who."""

    name: str
    pk: None = None

    def get_username(self) -> str:
        return f"system:{self.name}"


def canonical_json(value: Any) -> str:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str, allow_nan=False
    )


def without_floats(value: Any) -> Any:
    # Floats do not survive every JSON store identically (PostgreSQL's jsonb rewrites 1e16 as an
    # integer), so they are recorded as text and the hash stays verifiable on every database.
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict):
        return {key: without_floats(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [without_floats(item) for item in value]
    return value


def _normalised(data: Mapping[str, Any]) -> dict[str, Any]:
    # Round-trip through JSON so what is hashed is exactly what the database gives back later.
    result: dict[str, Any] = json.loads(canonical_json(without_floats(dict(data))))
    return result


def _entry_hash(
    *,
    seq: int,
    at: dt.datetime,
    actor_id: int | None,
    actor_label: str,
    action: str,
    object_type: str,
    object_id: str,
    organisation_id: int | None,
    data: Mapping[str, Any],
    prev_hash: str,
) -> str:
    body = {
        "seq": seq,
        "at": at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        "actor_id": actor_id,
        "actor_label": actor_label,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "organisation_id": organisation_id,
        "data": data,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


# Every column the hash covers; adding a column to AuditEntry means adding it here and to _entry_hash.
HASHED_FIELDS = (
    "seq",
    "at",
    "actor_id",
    "actor_label",
    "action",
    "object_type",
    "object_id",
    "organisation_id",
    "data",
    "prev_hash",
)


def lock_chain() -> None:
    """Take the chain's lock now, at the start of a service whose checks must not race another writer
    (e.g. "is this netblock already registered?"). Every audited write takes it anyway; taking it
    first makes check-then-write atomic on PostgreSQL too."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit.lock_chain() must be called inside the service's transaction")
    AuditHead.objects.select_for_update().get_or_create(id=1, defaults={"seq": 0, "hash": GENESIS_HASH})


def object_type_of(target: models.Model | type[models.Model]) -> str:
    meta = target._meta
    return f"{meta.app_label}.{meta.model_name}"


def record(
    *,
    actor: Actor,
    action: str,
    target: models.Model,
    data: Mapping[str, Any] | None = None,
    organisation_id: int | None = None,
) -> AuditEntry:
    """Append one entry, inside the caller's transaction so the change and its entry commit together."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit.record() must be called inside the service's transaction")
    prev_seq, prev_hash = _locked_head()
    seq = prev_seq + 1
    at = clock.now()
    actor_id = int(actor.pk) if actor.pk is not None else None
    payload = _normalised(data or {})
    fields: dict[str, Any] = {
        "seq": seq,
        "at": at,
        "actor_id": actor_id,
        "actor_label": actor.get_username(),
        "action": action,
        "object_type": object_type_of(target),
        "object_id": str(target.pk),
        "organisation_id": organisation_id,
        "data": payload,
        "prev_hash": prev_hash,
    }
    entry_hash = _entry_hash(**fields)
    entry = AuditEntry(hash=entry_hash, **fields)
    _store(entry, topic=target._meta.app_label)
    return entry


# Every audited write passes through the two functions below, so they speak SQL directly: the ORM
# would build the same fixed statements anew on each call, which is most of the cost of an audit
# entry.


def _locked_head() -> tuple[int, str]:
    """The chain's tip (seq, hash), locked until the caller's transaction ends."""
    connection = transaction.get_connection()
    table = connection.ops.quote_name(AuditHead._meta.db_table)
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT seq, hash FROM {table} WHERE id = 1{lock}")  # noqa: S608 - our own table name
        row = cursor.fetchone()
    if row is None:  # the very first entry: the ORM creates the row under its lock
        head, _ = AuditHead.objects.select_for_update().get_or_create(
            id=1, defaults={"seq": 0, "hash": GENESIS_HASH}
        )
        return int(head.seq), str(head.hash)
    return int(row[0]), str(row[1])


def _store(entry: AuditEntry, *, topic: str) -> None:
    """Insert the entry and move the tip and `topic`'s mark to it (the tip's lock serialises the
    rare first insert of a mark). PostgreSQL does all three in one statement; SQLite, in-process,
    pays nothing per statement and runs them one by one."""
    connection = transaction.get_connection()
    head = connection.ops.quote_name(AuditHead._meta.db_table)
    mark = connection.ops.quote_name(AuditMark._meta.db_table)
    insert_sql, insert_params = statements.insert_statement(entry)
    advance = [entry.seq, entry.hash, entry.seq, entry.hash, topic]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"WITH entry AS ({insert_sql}), "  # noqa: S608 - our own table names
                f"tip AS (UPDATE {head} SET seq = %s, hash = %s WHERE id = 1), "
                f"marked AS (UPDATE {mark} SET seq = %s, hash = %s WHERE topic = %s RETURNING 1) "
                "SELECT (SELECT id FROM entry), (SELECT count(*) FROM marked)",
                insert_params + advance,
            )
            entry_id, marks_moved = cursor.fetchone()
        else:
            cursor.execute(insert_sql, insert_params)
            entry_id = cursor.fetchone()[0]
            cursor.execute(f"UPDATE {head} SET seq = %s, hash = %s WHERE id = 1", advance[:2])  # noqa: S608
            cursor.execute(f"UPDATE {mark} SET seq = %s, hash = %s WHERE topic = %s", advance[2:])  # noqa: S608
            marks_moved = cursor.rowcount
    statements.stored(entry, entry_id)
    if marks_moved == 0:
        AuditMark.objects.create(topic=topic, seq=entry.seq, hash=entry.hash)


def latest_mark(topic: str) -> str:
    """The hash of the latest entry about `topic`'s records ('' if none): a revision stamp. Caches
    ask on every request, so this too is one fixed statement rather than an ORM query."""
    connection = transaction.get_connection()
    table = connection.ops.quote_name(AuditMark._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT hash FROM {table} WHERE topic = %s", [topic])  # noqa: S608
        row = cursor.fetchone()
    return str(row[0]) if row else ""


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str = ""


def _entries(batch: int = 5000) -> Iterator[AuditEntry]:
    last = 0
    while True:
        rows = list(AuditEntry.objects.filter(seq__gt=last).order_by("seq")[:batch])
        if not rows:
            return
        yield from rows
        last = rows[-1].seq


def verify() -> VerifyResult:
    """Walk the chain from the start; report the first entry that was altered, removed or reordered."""
    expected_prev = GENESIS_HASH
    expected_seq = 1
    checked = 0
    for entry in _entries():
        if entry.seq != expected_seq:
            return VerifyResult(
                False,
                checked,
                expected_seq,
                f"entry #{expected_seq} is missing (next present is #{entry.seq})",
            )
        if entry.prev_hash != expected_prev:
            return VerifyResult(
                False,
                checked,
                entry.seq,
                f"entry #{entry.seq} does not link to the hash of entry #{entry.seq - 1}",
            )
        recomputed = _entry_hash(**{name: getattr(entry, name) for name in HASHED_FIELDS})
        if recomputed != entry.hash:
            return VerifyResult(
                False,
                checked,
                entry.seq,
                f"entry #{entry.seq} was altered: its content no longer matches its hash",
            )
        expected_prev = entry.hash
        expected_seq += 1
        checked += 1
    head = AuditHead.objects.filter(id=1).first()
    head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS_HASH)
    if head_seq != checked or head_hash != expected_prev:
        missing_from = checked + 1
        return VerifyResult(
            False,
            checked,
            missing_from,
            f"the log ends at #{checked} but its head records #{head_seq}: "
            f"entries from #{missing_from} were removed",
        )
    return VerifyResult(True, checked)


def history_of(target: models.Model) -> models.QuerySet[AuditEntry]:
    return AuditEntry.objects.filter(object_type=object_type_of(target), object_id=str(target.pk))
