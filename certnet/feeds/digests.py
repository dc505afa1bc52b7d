"""Per-constituent digests: each organisation's own feed events of a period, e-mailed to its abuse
contact with the events attached as CSV and as IntelMQ JSON lines — the common national-CERT
practice. A digest is sent once per organisation and period (its record says when, to whom, how many
events, or why it could not be sent); only the organisation's own events are in it, by construction:
the query is for events routed to it.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
from dataclasses import dataclass

import duckdb
import pyarrow as pa
from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction

from certnet.core import audit, clock
from certnet.feeds.formats import write_intelmq_json
from certnet.feeds.models import FeedDigest
from certnet.feeds.store import EventStore
from certnet.registry.models import Contact, ContactKind, Organisation

DIGESTER = audit.SystemActor("feed-digests")
# The columns of the CSV attachment, in this order; the JSON attachment carries every field.
CSV_FIELDS = (
    "time.source",
    "source.ip",
    "source.port",
    "source.asn",
    "source.fqdn",
    "source.url",
    "source.reverse_dns",
    "protocol.transport",
    "protocol.application",
    "classification.taxonomy",
    "classification.type",
    "classification.identifier",
    "product.vulnerabilities",
    "severity",
    "feed.name",
    "feed.provider",
    "tlp",
)
CONTACT_ORDER = (ContactKind.ABUSE, ContactKind.SECURITY_OFFICER, ContactKind.INCIDENT, ContactKind.GENERAL)


@dataclass(frozen=True)
class Period:
    start: dt.datetime
    end: dt.datetime


def period_ending(end: dt.datetime, hours: int) -> Period:
    return Period(start=end - dt.timedelta(hours=hours), end=end)


def _events(
    connection: duckdb.DuckDBPyConnection, store: EventStore, period: Period
) -> duckdb.DuckDBPyRelation | None:
    events = store.events(connection)
    if events is None:
        return None
    # Received in the period (time.observation), whatever the feed says the event's own time is.
    since, until = period.start.isoformat(), period.end.isoformat()
    return events.filter(
        f'"route.organisation" IS NOT NULL AND "time.observation" >= TIMESTAMPTZ \'{since}\''
        f" AND \"time.observation\" < TIMESTAMPTZ '{until}'"
    )


def _address(organisation: Organisation) -> str:
    contacts = {c.kind: c.email for c in Contact.objects.filter(organisation=organisation).exclude(email="")}
    return next((contacts[kind] for kind in CONTACT_ORDER if kind in contacts), "")


def _csv(table: pa.Table) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    columns = [name for name in CSV_FIELDS if name in table.column_names]
    writer.writerow(columns)
    rows = table.select(columns).to_pylist()
    for row in rows:
        writer.writerow(
            [
                "" if row[c] is None else (row[c].isoformat() if hasattr(row[c], "isoformat") else row[c])
                for c in columns
            ]
        )
    return out.getvalue().encode()


def _json_lines(table: pa.Table) -> bytes:
    out = io.StringIO()
    write_intelmq_json(table.drop_columns([c for c in table.column_names if c == "day"]), out)
    return out.getvalue().encode()


def send_digests(period: Period) -> list[FeedDigest]:
    """One digest per organisation with events received in the period and no digest for it yet."""
    store = EventStore.configured()
    connection = duckdb.connect()
    done: list[FeedDigest] = []
    try:
        events = _events(connection, store, period)
        if events is None:
            return []
        counts = dict(events.aggregate('"route.organisation", count(*)', '"route.organisation"').fetchall())
        already = set(
            FeedDigest.objects.filter(period_start=period.start, sent_at__isnull=False).values_list(
                "organisation__slug", flat=True
            )
        )
        organisations = Organisation.objects.in_bulk(
            [s for s in counts if s not in already], field_name="slug"
        )
        mail = get_connection()
        for slug, organisation in sorted(organisations.items()):
            table = (
                events.filter(f"\"route.organisation\" = '{slug.replace(chr(39), chr(39) * 2)}'")
                .order('"time.source", "source.ip"')
                .to_arrow_table()
            )
            done.append(_send_one(mail, organisation, period, table))
    finally:
        connection.close()
    return done


def _send_one(mail: object, organisation: Organisation, period: Period, table: pa.Table) -> FeedDigest:
    address = _address(organisation)
    attachment = _csv(table)
    digest, _ = FeedDigest.objects.get_or_create(
        organisation=organisation,
        period_start=period.start,
        defaults={"period_end": period.end, "events": table.num_rows, "created_at": clock.now()},
    )
    digest.period_end, digest.events, digest.address = period.end, table.num_rows, address
    digest.sha256 = hashlib.sha256(attachment).hexdigest()
    if not address:
        digest.error = "no abuse, security-officer, incident or general contact with an e-mail address"
    else:
        day = period.start.date().isoformat()
        message = EmailMessage(
            subject=f"[certnet] {table.num_rows} security events for {organisation.name} ({day})",
            body=(
                f"{table.num_rows} events concerning {organisation.name}'s networks were received "
                f"between {period.start:%Y-%m-%d %H:%M} and {period.end:%Y-%m-%d %H:%M} UTC. They are "
                "attached as CSV and as JSON lines (IntelMQ's field names). Each event is TLP-marked by "
                "its source; handle them accordingly."
            ),
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[address],
            connection=mail,
        )
        message.attach(f"certnet-events-{organisation.slug}-{day}.csv", attachment, "text/csv")
        message.attach(
            f"certnet-events-{organisation.slug}-{day}.jsonl", _json_lines(table), "application/json"
        )
        try:
            message.send()
            digest.sent_at, digest.error = clock.now(), ""
        except OSError as error:  # smtplib's errors: refused, unreachable, timed out
            digest.error = f"{type(error).__name__}: {error}"[:300]
    with transaction.atomic():
        digest.save()
        audit.record(
            actor=DIGESTER,
            action="feeds.digest_sent" if digest.sent_at else "feeds.digest_failed",
            target=digest,
            organisation_id=organisation.pk,
            data={"events": digest.events, "to": address, "sha256": digest.sha256, "error": digest.error},
        )
    return digest
