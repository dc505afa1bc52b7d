"""Background jobs of incidents, found by the Huey consumer (`certnet run_huey`, started by `certnet
serve` beside the web server): the clock sweep and the announcement of waiting reports, every minute,
and the jobs services hand off after commit (certnet.incidents.jobs)."""

from __future__ import annotations

import logging

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, lock_task

from certnet.incidents.jobs import announce_new_reports
from certnet.incidents.services.announcements import announce_pending_reports
from certnet.incidents.services.clocks_sweep import sweep

__all__ = ["announce_new_reports", "announce_waiting_reports", "sweep_clocks"]

log = logging.getLogger(__name__)


@db_periodic_task(crontab(minute="*"))  # type: ignore[untyped-decorator]
@lock_task("certnet-clock-sweep")  # type: ignore[untyped-decorator]
def sweep_clocks() -> None:
    """One sweep; a run still busy when the next minute starts makes that one skip (the alerts are
    once-only anyway, the lock only saves the duplicate work)."""
    log.info("%s", sweep())


@db_periodic_task(crontab(minute="*"))  # type: ignore[untyped-decorator]
def announce_waiting_reports() -> None:
    """The safety net under the per-report job: a report whose job was lost (the queue was down when
    it committed) is announced within the minute."""
    written = announce_pending_reports()
    if written:
        log.info("announced waiting reports: %d notifications", written)
