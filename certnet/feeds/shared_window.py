"""The deduplication window every worker shares: a log in Redis of which batch first had which keys.

Redis keeps only the log, one stream entry per claim: the batch and the keys it was the first to have
(8 bytes a key). Each worker keeps the window itself in memory, as the embedded window does
(`SortedRuns`, 12 bytes a key), built from the log and brought up to its end before each claim. A
claim is decided in the worker and appended with a check-and-append script that refuses it if any
other claim was appended since the worker last read the log; the worker then reads what was
appended and decides again. Every worker's copy is therefore the same log applied in the same order,
and a key belongs to the first batch in the log that had it.

Why a log and not a Redis key per event key: Redis runs on one thread, and a key per event cost it
about 2.4 µs and 145 bytes a key, which capped every worker together at about 400,000 events/s
whatever the number of machines. Appending and reading a log costs Redis a fixed amount per batch;
the per-key work (about 0.2 µs a key, each worker for every batch) is spread over the workers.

A key is remembered for the source's window from the time its claim was appended (the entry's id),
as a TTL would; every time is Redis's clock, so workers whose clocks differ agree. A batch processed
again (redelivered after a crash, or a reply lost on the way back) finds the keys the log gives it
as new, so its output replaces itself whole. Entries older than the window are trimmed.

Keys: `certnet:feeds:claims:{<source>}` (the stream: `batch`, `keys` as little-endian uint64) and
`certnet:feeds:claims:{<source>}:end` (`<generation>/<id of the last entry>`, which the script
checks). A log whose end is gone (Redis lost its data, or the key was removed) starts a new
generation, and every worker that read an older one drops its copy and reads the log again: the
window is the log, even where a new entry's id happens to equal an old one.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from typing import Any

import numpy as np
import redis

from certnet.feeds.dedup import PRUNE_EVERY_SECONDS, SortedRuns
from certnet.feeds.streams import as_text

READ_PAGE = 32  # log entries per XRANGE: a reply of at most a few MB, even of large batches

# Append the claim only if the log still ends where the worker last read it; else answer its end.
# ARGV: the end the worker read ('' for no log), the batch, its keys, a generation for a new log.
_APPEND = """
local last = redis.call('GET', KEYS[2]) or ''
if last ~= ARGV[1] then return {0, last} end
local generation = ARGV[4]
if last ~= '' then generation = string.match(last, '^[^/]*') end
local id = redis.call('XADD', KEYS[1], '*', 'batch', ARGV[2], 'keys', ARGV[3])
local value = generation .. '/' .. id
redis.call('SET', KEYS[2], value)
return {1, value}
"""


def _order(entry_id: str) -> tuple[int, int]:
    milliseconds, _, sequence = entry_id.partition("-")
    return int(milliseconds or 0), int(sequence or 0)


class RedisSeenKeys:
    """The window of one source, shared through `client`'s Redis by every worker."""

    def __init__(self, client: redis.Redis, window: dt.timedelta, namespace: str) -> None:
        self.client = client
        self.window_seconds = window.total_seconds()
        # One hash tag for both keys: the script may touch them together on a Redis Cluster too.
        self.stream = f"certnet:feeds:claims:{{{namespace}}}"
        self.end_key = f"{self.stream}:end"
        self._append = client.register_script(_APPEND)
        self._lock = threading.Lock()
        self._loaded = False
        self._forget_all()
        self._next_prune = 0.0

    def _forget_all(self) -> None:
        self._seen = SortedRuns()
        self._expires = np.empty(64, dtype=np.float64)  # per entry number: when its keys are forgotten
        self._entries = 0
        self._entries_of: dict[str, list[int]] = {}  # batch → its entries' numbers
        self._generation = ""  # of the log read; "" while there is none
        self._read_to = "0-0"  # the last entry applied, or the log's end where that was trimmed

    @property
    def _end(self) -> str:
        """The log's end as the worker has read it, in the end key's form."""
        return f"{self._generation}/{self._read_to}" if self._generation else ""

    def __len__(self) -> int:
        return len(self._seen)

    def claim(self, batch_id: str, keys: np.ndarray) -> np.ndarray:
        keys = keys.astype(np.uint64, copy=False)
        with self._lock:
            while True:
                if not self._loaded:
                    self._load(as_text(self.client.get(self.end_key) or ""))
                else:
                    self._read_from(f"({self._read_to}")
                now = self._now()
                if now >= self._next_prune:
                    self._prune(now)
                found, owner = self._seen.find(keys)
                held = found.copy()
                held[found] = self._expires[owner[found]] > now
                mine = np.zeros(len(keys), dtype=bool)
                mine[held] = np.isin(owner[held], self._entries_of.get(batch_id, []))
                fresh = np.unique(keys[~held])
                if not len(fresh) or self._appended(batch_id, fresh):
                    return np.asarray(~held | mine, dtype=bool)

    def commit(self, batch_id: str) -> None:
        # The claim is in the log once appended; the log's durability is Redis's (AOF in production).
        return None

    def close(self) -> None:
        return None  # the client belongs to the worker

    def _now(self) -> float:
        seconds, microseconds = self.client.time()
        return float(seconds) + microseconds / 1e6

    def _appended(self, batch_id: str, fresh: np.ndarray) -> bool:
        """Append the claim of `fresh` keys if no claim came first; else read those that did."""
        ok, answer = self._append(
            keys=[self.stream, self.end_key],
            args=[self._end, batch_id, fresh.astype("<u8").tobytes(), uuid.uuid4().hex],
        )
        end = as_text(answer)
        generation, _, end_id = end.partition("/")
        if int(ok) == 1:
            self._generation = generation
            self._apply(end_id, batch_id, fresh)
            return True
        if generation != self._generation:
            self._load(end)  # a log that started again: this copy is of one that is gone
        elif self._read_from(f"({self._read_to}") == 0 and _order(end_id) > _order(self._read_to):
            # Nothing to read after what was applied, yet the log ends later: the entries up to its
            # end were trimmed (older than the window). There is nothing to wait for.
            self._read_to = end_id
        return False

    def _load(self, end: str) -> None:
        """Read the window back from the log whose end key says `end` ('' for none)."""
        self._forget_all()
        self._generation, _, end_id = end.partition("/")
        start = max(0, int((self._now() - self.window_seconds) * 1000))
        self._read_from(f"{start}-0")
        if end_id and _order(end_id) > _order(self._read_to):
            self._read_to = end_id
        self._loaded = True

    def _read_from(self, start: str) -> int:
        """Apply the entries from `start` ('(id' for after id) to the log's end; the number applied."""
        applied = 0
        while True:
            entries: list[Any] = self.client.xrange(self.stream, min=start, max="+", count=READ_PAGE) or []
            for entry_id, fields in entries:
                got: dict[str, Any] = {as_text(k): v for k, v in fields.items()}
                self._apply(as_text(entry_id), as_text(got["batch"]), np.frombuffer(got["keys"], dtype="<u8"))
                applied += 1
            if len(entries) < READ_PAGE:
                return applied
            start = f"({self._read_to}"

    def _apply(self, entry_id: str, batch_id: str, keys: np.ndarray) -> None:
        number = self._entries
        if number == len(self._expires):
            self._expires = np.concatenate([self._expires, np.empty(number, dtype=np.float64)])
        self._expires[number] = _order(entry_id)[0] / 1000 + self.window_seconds
        self._entries += 1
        self._entries_of.setdefault(batch_id, []).append(number)
        keys = keys.astype(np.uint64, copy=False)
        if len(keys) > 1 and not (keys[1:] > keys[:-1]).all():  # appended sorted and distinct
            keys = np.unique(keys)
        self._seen.assign(keys, number)
        self._read_to = entry_id

    def _prune(self, now: float) -> None:
        """Forget the keys and entries older than the window, here and in the log."""
        self._next_prune = now + PRUNE_EVERY_SECONDS
        live = self._expires[: self._entries] > now
        if not live.all():
            renumbered = (np.cumsum(live) - 1).astype(np.int32)
            self._seen.keep(live, renumbered)
            self._expires = self._expires[: self._entries][live].copy()
            self._entries = len(self._expires)
            if not len(self._expires):
                self._expires = np.empty(64, dtype=np.float64)
            self._entries_of = {
                batch: [int(renumbered[n]) for n in numbers if live[n]]
                for batch, numbers in self._entries_of.items()
                if any(live[n] for n in numbers)
            }
        oldest = max(0, int((now - self.window_seconds) * 1000))
        self.client.xtrim(self.stream, minid=f"{oldest}-0", approximate=False)
