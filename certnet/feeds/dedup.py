"""Which events were seen before: a window of keys that survives restarts.

An event is a duplicate when an earlier batch, within the window, had an event with the same key.
Every key remembers the batch that first had it, and a batch that is processed again (a crash before
its output was acknowledged, a redelivered stream message, the same file run twice) finds its own
keys new again: its output is written under the same name and replaces itself, so a redelivery never
turns an event into a "duplicate" of itself and loses it.

`SqliteSeenKeys` (embedded) keeps the window in memory as sorted runs of keys (12 bytes a key) and on
disk in a SQLite file, one row per batch. `RedisSeenKeys` (distributed, in `shared_window.py`) keeps
the same runs in every worker, built from a log in Redis that all workers share.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
import time
from pathlib import Path
from typing import Protocol

import numpy as np

DEFAULT_WINDOW = dt.timedelta(hours=24)
PRUNE_EVERY_SECONDS = 60.0


class SeenKeys(Protocol):
    def claim(self, batch_id: str, keys: np.ndarray) -> np.ndarray:
        """True for each key (distinct within the batch) not seen before by another batch in the
        window; the new ones now belong to this batch, so a batch processed next sees them."""

    def commit(self, batch_id: str) -> None:
        """Make the batch's claim durable, once its output is committed."""

    def close(self) -> None: ...


def first_in_batch(keys: np.ndarray) -> np.ndarray:
    """True at the first row of each key within the batch."""
    keep = np.zeros(len(keys), dtype=bool)
    _, first = np.unique(keys, return_index=True)
    keep[first] = True
    return keep


def _places(run: np.ndarray, ordered: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For sorted `ordered` keys: where each would be in the sorted `run`, and whether it is there."""
    at = np.minimum(np.searchsorted(run, ordered), len(run) - 1)
    return at, run[at] == ordered


class SortedRuns:
    """A set of 64-bit keys, each with the number of the batch that first had it, as sorted runs.

    A batch's new keys become a run of their own, and runs of similar size merge, so adding a batch
    costs about its own size, not the window's. Runs stop merging at `MAX_RUN` keys: a window of
    millions is a few large runs and never one array copied whole (which would briefly double it)."""

    MAX_RUN = 1 << 20

    def __init__(self) -> None:
        self.keys: list[np.ndarray] = []  # uint64, sorted, disjoint across runs
        self.owners: list[np.ndarray] = []  # int32 batch numbers, aligned with keys

    def __len__(self) -> int:
        return sum(len(run) for run in self.keys)

    def find(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(found, owner or -1) for each key."""
        # Searched in order, neighbouring keys walk the same path down a run, which then stays in
        # the CPU's cache: measured four times faster than searching a batch's keys as they come.
        order = np.argsort(keys)
        ordered = keys[order]
        found_ordered = np.zeros(len(keys), dtype=bool)
        owner_ordered = np.full(len(keys), -1, dtype=np.int32)
        for run, owners in zip(self.keys, self.owners, strict=True):
            at, hit = _places(run, ordered)
            found_ordered |= hit
            owner_ordered[hit] = owners[at[hit]]
        found = np.empty_like(found_ordered)
        owner = np.empty_like(owner_ordered)
        found[order], owner[order] = found_ordered, owner_ordered
        return found, owner

    def add(self, keys: np.ndarray, owners: np.ndarray) -> None:
        """Add keys none of the runs holds (sorted and distinct)."""
        if not len(keys):
            return
        self.keys.append(keys)
        self.owners.append(owners.astype(np.int32, copy=False))
        while len(self.keys) > 1:
            last, before = len(self.keys[-1]), len(self.keys[-2])
            if 2 * last < before or last + before > self.MAX_RUN:
                break
            keys_a, keys_b = self.keys.pop(), self.keys.pop()
            owners_a, owners_b = self.owners.pop(), self.owners.pop()
            merged = np.concatenate([keys_b, keys_a])
            order = np.argsort(merged, kind="stable")
            self.keys.append(merged[order])
            self.owners.append(np.concatenate([owners_b, owners_a])[order])

    def assign(self, keys: np.ndarray, owner: int) -> None:
        """Make `owner` the owner of `keys` (sorted and distinct), whether a run holds them or not."""
        held = np.zeros(len(keys), dtype=bool)
        for run, owners in zip(self.keys, self.owners, strict=True):
            at, hit = _places(run, keys)
            owners[at[hit]] = owner
            held |= hit
        self.add(keys[~held], np.full(int((~held).sum()), owner, dtype=np.int32))

    def keep(self, live_owner: np.ndarray, renumbered: np.ndarray | None = None) -> None:
        """Keep only keys whose owner is marked live; `renumbered[old]` gives each owner a new number."""
        kept = [(k[live_owner[o]], o[live_owner[o]]) for k, o in zip(self.keys, self.owners, strict=True)]
        self.keys = [k for k, _ in kept if len(k)]
        self.owners = [o if renumbered is None else renumbered[o] for k, o in kept if len(k)]


class SqliteSeenKeys:
    """The embedded window: a SQLite file of per-batch key blocks, read into memory once."""

    def __init__(self, path: Path, window: dt.timedelta = DEFAULT_WINDOW, namespace: str = "") -> None:
        self.path = path
        self.window = window
        self.namespace = namespace
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS seen_blocks (namespace TEXT NOT NULL, batch TEXT NOT NULL,"
            " expires REAL NOT NULL, keys BLOB NOT NULL, PRIMARY KEY (namespace, batch))"
        )
        self._seen = SortedRuns()
        self._batches: list[str] = []
        self._batch_numbers: dict[str, int] = {}
        self._pending: dict[str, np.ndarray] = {}
        self._expires: list[float] = []  # per batch number; a batch not yet committed never expires
        self._next_prune = time.time() + PRUNE_EVERY_SECONDS
        self._load()

    def _load(self) -> None:
        now = time.time()
        self._db.execute("DELETE FROM seen_blocks WHERE expires < ?", (now,))
        rows = self._db.execute(
            "SELECT batch, expires, keys FROM seen_blocks WHERE namespace = ? ORDER BY rowid",
            (self.namespace,),
        ).fetchall()
        for batch, expires, blob in rows:
            number = self._number(batch)
            self._expires[number] = expires
            block = np.frombuffer(blob, dtype=np.uint64)
            self._merge(block, np.full(len(block), number, dtype=np.int32))

    def _number(self, batch_id: str) -> int:
        number = self._batch_numbers.get(batch_id)
        if number is None:
            number = len(self._batches)
            self._batches.append(batch_id)
            self._batch_numbers[batch_id] = number
            self._expires.append(float("inf"))
        return number

    def _prune(self, now: float) -> None:
        """Forget the keys of batches older than the window, in memory as on disk."""
        self._next_prune = now + PRUNE_EVERY_SECONDS
        expires = np.asarray(self._expires, dtype=np.float64)
        if not (expires < now).any():
            return
        self._seen.keep(expires >= now)
        self._db.execute("DELETE FROM seen_blocks WHERE expires < ?", (now,))

    def _merge(self, keys: np.ndarray, owners: np.ndarray) -> None:
        """Add keys (with the batch that first had them); a key already known keeps its first batch."""
        keys, first = np.unique(keys, return_index=True)
        owners = owners[first]
        found, _ = self._seen.find(keys)
        self._seen.add(keys[~found], owners[~found])

    def __len__(self) -> int:
        return len(self._seen)

    def claim(self, batch_id: str, keys: np.ndarray) -> np.ndarray:
        keys = keys.astype(np.uint64, copy=False)
        with self._lock:
            now = time.time()
            if now >= self._next_prune:
                self._prune(now)
            mine = self._number(batch_id)
            found, owner = self._seen.find(keys)
            new = ~found | (owner == mine)
            claimed = np.unique(keys[new])
            self._pending[batch_id] = claimed
            # The keys found were this batch's already; the others are in no run yet.
            fresh = np.unique(keys[~found])
            self._seen.add(fresh, np.full(len(fresh), mine, dtype=np.int32))
            return np.asarray(new, dtype=bool)

    def commit(self, batch_id: str) -> None:
        with self._lock:
            block = self._pending.pop(batch_id, None)
            if block is None:
                return
            expires = time.time() + self.window.total_seconds()
            self._expires[self._batch_numbers[batch_id]] = expires
            self._db.execute(
                "INSERT INTO seen_blocks (namespace, batch, expires, keys) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (namespace, batch)"
                " DO UPDATE SET expires = excluded.expires, keys = excluded.keys",
                (self.namespace, batch_id, expires, block.tobytes()),
            )

    def close(self) -> None:
        self._db.close()
