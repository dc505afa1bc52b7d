"""When a designated CII operator's networks appear in a finished run, a report goes into the incidents
capability for its handling CERT: one per operator, CII system and kind of finding, with the addresses
involved. Findings in a netblock or domain the registry links to a CII system name that system."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import duckdb
import yaml
from django.db import transaction

from certnet.feeds.correlation import run_files
from certnet.feeds.models import FeedRun
from certnet.feeds.store import EventStore
from certnet.incidents.models import Report
from certnet.incidents.services.feed_alerts import FeedAlert, file_feed_alert
from certnet.registry.models import CIISystem, Organisation

SEVERITY_FILE = Path(__file__).with_name("data") / "severity.yaml"
ADDRESSES_LISTED = 50


@cache
def severities() -> dict[str, object]:
    return dict(yaml.safe_load(SEVERITY_FILE.read_text(encoding="utf-8")))


def severity_for(mapping_key: str, classification_type: str) -> int:
    table = severities()
    by_report = dict(table.get("reports") or {})  # type: ignore[call-overload]
    by_type = dict(table.get("types") or {})  # type: ignore[call-overload]
    if mapping_key in by_report:
        return int(by_report[mapping_key])
    if classification_type in by_type:
        return int(by_type[classification_type])
    return int(str(table.get("default", 2)))


def alert_cii_operators(run: FeedRun) -> list[Report]:
    connection = duckdb.connect()
    try:
        events = EventStore.configured().events(connection, run_files(run))
        if events is None or "route.cii" not in events.columns:
            return []
        # Files written before systems were routed lack the column: their events name no system.
        system_column = '"route.cii_system"' if "route.cii_system" in events.columns else "NULL::VARCHAR"
        keys = (
            f'"route.organisation", {system_column}, "classification.taxonomy", "classification.type", '
            '"classification.identifier", "feed.name"'
        )
        groups = (
            events.filter('"route.cii"')
            .aggregate(
                f'{keys}, count(*), min("time.source"), list(DISTINCT "source.ip")[1:{ADDRESSES_LISTED}]',
                keys,
            )
            .fetchall()
        )
    finally:
        connection.close()
    organisations = Organisation.objects.in_bulk([g[0] for g in groups], field_name="slug")
    systems = {
        (s.organisation_id, s.name): s
        for s in CIISystem.objects.filter(organisation__slug__in=[g[0] for g in groups if g[1]])
    }
    filed = []
    with transaction.atomic():
        for slug, system_name, taxonomy, kind, identifier, feed, count, first, addresses in sorted(
            groups, key=lambda g: (g[0], str(g[1]), str(g[4]))
        ):
            affected = organisations.get(slug)
            if affected is None:
                continue
            system = systems.get((affected.pk, system_name)) if system_name else None
            what = identifier or kind or "security"
            listed = ", ".join(a for a in addresses if a) or "none given"
            where = f"{affected.name}'s {system.name}" if system else f"{affected.name}'s networks"
            filed.append(
                file_feed_alert(
                    FeedAlert(
                        operator=run.owner,
                        affected=affected,
                        cii_system=system,
                        title=(
                            f"{affected.name} (CII{': ' + system.name if system else ''}): "
                            f"{count} {what} event(s) in {feed or run.source.name}"
                        ),
                        description=(
                            f"The feed {run.source.name} ({run.source.code}) reported {count} {what} "
                            f"event(s) in {where}, a designated CII operator (run {run.pk}, file "
                            f"{run.file_name}). Addresses: {listed}. The events are in the events store."
                        ),
                        taxonomy=taxonomy or "",
                        type=kind or "",
                        severity=severity_for(run.mapping, kind or ""),
                        first_seen=first,
                        tlp=run.tlp,
                    )
                )
            )
    return filed
