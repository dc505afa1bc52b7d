"""Background jobs of feeds, found by the Huey consumer: every minute, the sources that are due are
collected and run (in this process; with REDIS_URL the heavy work can go to `certnet worker`s by
running `certnet feeds run SOURCE --distributed` from the scheduler instead)."""

from __future__ import annotations

import logging

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, lock_task

from certnet.core.audit import SystemActor
from certnet.feeds.services import run_due_sources

log = logging.getLogger(__name__)
SCHEDULER = SystemActor("feeds-schedule")


@db_periodic_task(crontab(minute="*"))  # type: ignore[untyped-decorator]
@lock_task("certnet-feeds-due")  # type: ignore[untyped-decorator]
def run_scheduled_sources() -> None:
    """One pass over the due sources; a pass still busy a minute later makes the next one skip."""
    for outcome in run_due_sources(SCHEDULER):
        run = outcome.run
        log.info("feed source %s: run %s %s %s", run.source_id, run.pk, run.status, run.error or run.counts)
