"""Work the incident services hand to the job consumer once their transaction commits, so that a
request pays only for what it changes. Registered with Huey through certnet.incidents.tasks."""

from __future__ import annotations

import threading
import time

from django.conf import settings
from django.db import transaction
from huey.constants import EmptyData
from huey.contrib.djhuey import HUEY, db_task

from certnet.incidents.services import announcements

# Set while an announcing job is queued and has not started; its value is the job's start time. Shared
# by every web worker through the job queue's own store (SQLite or Redis), so that under load one
# job a window serves them all.
PENDING_KEY = "certnet:announce-reports-pending"
STALE_AFTER = 60.0  # seconds past its start time: that job was lost (the queue was flushed)


@db_task(retries=3, retry_delay=30)  # type: ignore[untyped-decorator]
def announce_new_reports() -> int:
    """Tell the handling CERTs about every report not yet announced (see services.announcements)."""
    HUEY.storage.delete_data(PENDING_KEY)  # reports committed from here on need a job of their own
    return announcements.announce_pending_reports()


class AnnouncementQueue:
    """Queues the announcing job at most once per `CERTNET_ANNOUNCE_BATCH_SECONDS`.

    The job is queued to start that many seconds later, so every report committed before it starts is
    in its batch: while one is queued and has not started (by this web worker or another), a new
    report needs no job of its own. Each worker remembers until when it need not even ask, keeping
    half the window as a margin. With 0 the job is queued at once for every report (the test suite,
    whose jobs run in-process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._covered_until = 0.0  # wall-clock seconds, like the queue's start times

    def after_commit(self) -> None:
        delay = float(settings.CERTNET_ANNOUNCE_BATCH_SECONDS)
        if delay <= 0:
            announce_new_reports()
            return
        with self._lock:
            now = time.time()
            if now < self._covered_until:
                return
            starts = self._pending_start(now)
            if starts is None:
                starts = now + delay
                HUEY.storage.put_data(PENDING_KEY, repr(starts).encode())
                announce_new_reports.schedule(delay=delay)
            self._covered_until = starts - delay / 2

    @staticmethod
    def _pending_start(now: float) -> float | None:
        """When the queued job starts, if one is queued and not started (and not lost)."""
        found = HUEY.storage.peek_data(PENDING_KEY)
        if found is EmptyData:
            return None
        try:
            starts = float(found)
        except (TypeError, ValueError):
            return None
        return starts if starts > now - STALE_AFTER else None


queue = AnnouncementQueue()


def announce_after_commit() -> None:
    # robust: the change has committed; a queue that cannot take the job must not turn that into an
    # error (nor make a caller clean up what it stored). The failure is logged, and the next job or
    # the minute's sweep announces the report.
    transaction.on_commit(queue.after_commit, robust=True)
