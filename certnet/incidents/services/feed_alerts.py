"""Reports filed by the feed pipeline: a designated CII operator's systems appear in a security feed.

The report is the operating CERT's (it runs the feed), about the CII operator; it enters the handling
CERT's queue like any other report and is triaged, escalated and clocked the same way. Its severity
comes from the report type (`certnet/feeds/data/severity.yaml`), its classification from the events.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from certnet.core import audit, clock
from certnet.core.errors import InvalidInput
from certnet.core.tlp import TLP
from certnet.incidents import jobs
from certnet.incidents.models import Channel, Report
from certnet.incidents.taxonomy import rsit
from certnet.registry.models import CIISystem, Organisation

FEED_INTAKE = audit.SystemActor("feed-alerts")
TITLE_MAX = 200


@dataclass(frozen=True)
class FeedAlert:
    operator: Organisation  # the CERT whose feed found it
    affected: Organisation  # the CII operator
    title: str
    description: str
    taxonomy: str
    type: str
    severity: int
    first_seen: dt.datetime
    tlp: str
    cii_system: CIISystem | None = None  # the system the findings are in, where the registry knows it


def file_feed_alert(alert: FeedAlert) -> Report:
    """Inside the caller's transaction. A classification RSIT does not know is left blank for triage
    rather than refused: the events are real whatever the feed calls them."""
    try:
        taxonomy, kind = rsit().classify(alert.taxonomy, alert.type)
    except InvalidInput:
        taxonomy, kind = "", ""
    now = clock.now()
    report = Report.objects.create(
        channel=Channel.FEED,
        reporting_organisation=alert.operator,
        affected_organisation=alert.affected,
        cii_system=alert.cii_system,
        submitted_by=None,
        title=alert.title.strip()[:TITLE_MAX],
        description=alert.description,
        classification_taxonomy=taxonomy,
        classification_type=kind,
        severity=max(0, min(5, alert.severity)),
        aware_at=min(alert.first_seen, now),
        detected_at=min(alert.first_seen, now),
        received_at=now,
        tlp=TLP(alert.tlp.lower()),
    )
    audit.record(
        actor=FEED_INTAKE,
        action="incidents.report.submit",
        target=report,
        organisation_id=alert.affected.pk,
        data={
            "title": report.title,
            "channel": report.channel,
            "tlp": str(report.tlp),
            "severity": report.severity,
            "cii_system": alert.cii_system.name if alert.cii_system else None,
        },
    )
    jobs.announce_after_commit()
    return report
