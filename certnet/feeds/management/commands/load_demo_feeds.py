"""Demo feed data for `certnet setup --demo`: a Shadowserver source operated by the National CERT and
yesterday's exposed-RDP report over the demo constituents' networks, run through the pipeline, so the
feed pages, the dashboard, event search and a CII report have something to show."""

from __future__ import annotations

import csv
import datetime as dt
import io
import ipaddress
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from certnet.core import clock
from certnet.core.audit import SystemActor
from certnet.feeds.models import FeedSource
from certnet.feeds.services import SourceInput, create_source, run_source_file
from certnet.registry.models import Netblock

DEMO_ACTOR = SystemActor("demo")
COLUMNS = [
    "timestamp",
    "severity",
    "ip",
    "protocol",
    "port",
    "hostname",
    "tag",
    "asn",
    "geo",
    "region",
    "city",
]
EVENTS_PER_NETBLOCK = 4


def demo_report(day: dt.date) -> str:
    """A few exposed RDP services in every demo IPv4 netblock, and one malformed row."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(COLUMNS)
    blocks = Netblock.objects.filter(Netblock.in_force_on(day), family=4).order_by("cidr")
    for number, block in enumerate(blocks):
        network = ipaddress.ip_network(block.cidr)
        for offset in range(1, min(EVENTS_PER_NETBLOCK, network.num_addresses - 1) + 1):
            at = f"{day.isoformat()} {(number + offset) % 24:02d}:{offset * 7 % 60:02d}:00"
            tag = "rdp;cve-2019-0708" if offset == 1 else "rdp"
            writer.writerow(
                [
                    at,
                    "medium",
                    str(network.network_address + offset),
                    "tcp",
                    "3389",
                    "",
                    tag,
                    "",
                    "PK",
                    "",
                    "",
                ]
            )
    writer.writerow(
        [
            f"{day.isoformat()} 01:00:00",
            "medium",
            "not-an-address",
            "tcp",
            "3389",
            "",
            "rdp",
            "",
            "PK",
            "",
            "",
        ]
    )
    return out.getvalue()


class Command(BaseCommand):
    help = "Load the demo feed source and run yesterday's demo report (idempotent within a day)."

    def handle(self, *args: Any, **options: Any) -> None:
        source = FeedSource.objects.filter(code="shadowserver").first() or create_source(
            DEMO_ACTOR,
            SourceInput(
                code="shadowserver", name="Shadowserver reports", provider="Shadowserver", owner="ncert"
            ),
        )
        day = clock.today() - dt.timedelta(days=1)
        folder = settings.CERTNET_FEEDS_STATE_DIR / "demo"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{day.isoformat()}-scan_rdp-pakistan-demo.csv"
        path.write_text(demo_report(day), encoding="utf-8")
        outcome = run_source_file(DEMO_ACTOR, source, path)
        run = outcome.run
        if outcome.repeated:
            self.stdout.write("demo feeds: already loaded")
        else:
            counts = run.counts
            self.stdout.write(
                f"demo feeds: run {run.pk} of {path.name}: {counts.get('written', 0)} events, "
                f"{counts.get('cii_reports', 0)} CII report(s), {counts.get('quarantined', 0)} quarantined"
            )
