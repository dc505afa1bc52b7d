"""Background jobs of feeds, found by the Huey consumer: every minute, the sources that are due are
collected and run (in this process; with REDIS_URL the heavy work can go to `certnet worker`s by
running `certnet feeds run SOURCE --distributed` from the scheduler instead)."""

from __future__ import annotations

import logging

from django.conf import settings
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, lock_task

from certnet.core import clock
from certnet.core.audit import SystemActor
from certnet.feeds.digests import period_ending, send_digests
from certnet.feeds.services import run_due_sources

log = logging.getLogger(__name__)
SCHEDULER = SystemActor("feeds-schedule")


@db_periodic_task(crontab(minute="0", hour=str(settings.CERTNET_FEED_DIGEST_HOUR)))  # type: ignore[untyped-decorator]
@lock_task("certnet-feeds-digests")  # type: ignore[untyped-decorator]
def send_daily_digests() -> None:
    """Each constituent's events received in the 24 hours before this hour, to its abuse contact."""
    end = clock.now().replace(minute=0, second=0, microsecond=0)
    digests = send_digests(period_ending(end, 24))
    log.info(
        "feed digests: %d sent, %d not sent",
        sum(1 for d in digests if d.sent_at),
        sum(1 for d in digests if not d.sent_at),
    )


@db_periodic_task(crontab(minute="*"))  # type: ignore[untyped-decorator]
@lock_task("certnet-feeds-due")  # type: ignore[untyped-decorator]
def run_scheduled_sources() -> None:
    """One pass over the due sources; a pass still busy a minute later makes the next one skip."""
    for outcome in run_due_sources(SCHEDULER):
        run = outcome.run
        log.info("feed source %s: run %s %s %s", run.source_id, run.pk, run.status, run.error or run.counts)
