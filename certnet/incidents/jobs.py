"""Work the incident services hand to the job consumer once their transaction commits, so that a
request pays only for what it changes. Registered with Huey through certnet.incidents.tasks."""

from __future__ import annotations

import threading
import time

from django.conf import settings
from django.db import transaction
from huey.contrib.djhuey import db_task

from certnet.incidents.services import announcements


@db_task(retries=3, retry_delay=30)  # type: ignore[untyped-decorator]
def announce_new_reports() -> int:
    """Tell the handling CERTs about every report not yet announced (see services.announcements)."""
    return announcements.announce_pending_reports()


class AnnouncementQueue:
    """Queues the announcing job at most once per `CERTNET_ANNOUNCE_BATCH_SECONDS` per process.

    The job is queued to start that many seconds later, so a report committed before it starts is in
    its batch: while one queued by this process is still to start, a new report needs no job of its
    own. Half the window is kept as a margin for the consumer's clock. With 0 the job is queued at
    once for every report (the test suite, whose jobs run in-process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._covered_until = 0.0

    def after_commit(self) -> None:
        delay = float(settings.CERTNET_ANNOUNCE_BATCH_SECONDS)
        if delay <= 0:
            announce_new_reports()
            return
        with self._lock:
            now = time.monotonic()
            if now < self._covered_until:
                return
            announce_new_reports.schedule(delay=delay)
            self._covered_until = now + delay / 2


queue = AnnouncementQueue()


def announce_after_commit() -> None:
    # robust: the change has committed; a queue that cannot take the job must not turn that into an
    # error (nor make a caller clean up what it stored). The failure is logged, and the next job or
    # the minute's sweep announces the report.
    transaction.on_commit(queue.after_commit, robust=True)
