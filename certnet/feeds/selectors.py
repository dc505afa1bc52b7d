"""Reads of feed sources, runs, quarantine and the events store, always through visibility.

An event belongs to the constituent it was routed to (an unrouted one to the CERT that operates its
source) and carries its source's TLP; `core.visibility.readable_owners` says, per TLP, whose events a
user may read, and the store is queried with exactly that condition.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import duckdb
from django.db.models import QuerySet

from certnet.core.errors import FieldError, InvalidInput, NotFound
from certnet.core.tlp import TLP
from certnet.core.visibility import readable_owners
from certnet.feeds.models import FeedRun, FeedSource, QuarantinedRow
from certnet.feeds.store import EventStore
from certnet.registry.models import Organisation

if TYPE_CHECKING:
    from certnet.core.visibility import UserLike

MAX_EVENTS_PAGE = 1000


def visible_sources(user: UserLike | None) -> QuerySet[FeedSource]:
    return FeedSource.objects.restrict(user).select_related("owner")


def access_source(user: UserLike | None, code: str) -> FeedSource:
    source = visible_sources(user).filter(code=code).first()
    if source is None:
        raise NotFound(f"no feed source {code!r}")
    return source


def runs_of(user: UserLike | None, source: FeedSource | None = None) -> QuerySet[FeedRun]:
    runs = FeedRun.objects.restrict(user).select_related("source")
    return runs.filter(source=source) if source is not None else runs


def access_run(user: UserLike | None, run_id: int) -> FeedRun:
    run = runs_of(user).filter(pk=run_id).first()
    if run is None:
        raise NotFound(f"no feed run {run_id}")
    return run


def quarantine_of(user: UserLike | None, run: FeedRun) -> QuerySet[QuarantinedRow]:
    return QuarantinedRow.objects.restrict(user).filter(run=run)


@dataclass(frozen=True)
class EventQuery:
    ip: str = ""
    prefix: str = ""
    asn: int | None = None
    constituent: str = ""
    cert: str = ""
    taxonomy: str = ""
    type: str = ""
    feed: str = ""
    since: dt.date | None = None
    until: dt.date | None = None
    limit: int = 100
    offset: int = 0


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _visibility_condition(user: UserLike | None) -> str:
    """The SQL condition admitting exactly the events `user` may read."""
    slugs = dict(Organisation.objects.values_list("pk", "slug"))
    operators = dict(FeedSource.objects.values_list("code", "owner_id"))
    parts = []
    for label in TLP:
        readable = readable_owners(user, label)
        tlp = _quote(label.value.upper())
        if readable.everyone:
            parts.append(f"tlp = {tlp}")
            continue
        if not readable.owner_ids:
            continue
        owners = ", ".join(_quote(slugs[pk]) for pk in sorted(readable.owner_ids) if pk in slugs) or "NULL"
        feeds = (
            ", ".join(_quote(code) for code, owner in operators.items() if owner in readable.owner_ids)
            or "NULL"
        )
        parts.append(
            f'(tlp = {tlp} AND ("route.organisation" IN ({owners})'
            f' OR ("route.organisation" IS NULL AND "feed.code" IN ({feeds}))))'
        )
    return "(" + " OR ".join(parts) + ")" if parts else "FALSE"


def _filters(query: EventQuery) -> list[str]:
    conditions = []
    if query.ip:
        try:
            conditions.append(f'"source.ip" = {_quote(str(ipaddress.ip_address(query.ip.strip())))}')
        except ValueError:
            raise InvalidInput(
                "ip is not an address", errors=[FieldError("ip", f"{query.ip!r} is not an IP address")]
            ) from None
    if query.prefix:
        try:
            network = ipaddress.ip_network(query.prefix.strip(), strict=False)
        except ValueError:
            raise InvalidInput(
                "prefix is not a network",
                errors=[FieldError("prefix", f"{query.prefix!r} is not a CIDR network")],
            ) from None
        if network.version == 4:
            number = (
                "(TRY_CAST(split_part(\"source.ip\", '.', 1) AS UBIGINT) << 24)"
                " + (TRY_CAST(split_part(\"source.ip\", '.', 2) AS UBIGINT) << 16)"
                " + (TRY_CAST(split_part(\"source.ip\", '.', 3) AS UBIGINT) << 8)"
                " + TRY_CAST(split_part(\"source.ip\", '.', 4) AS UBIGINT)"
            )
            first, last = int(network.network_address), int(network.broadcast_address)
            conditions.append(f"(\"source.ip\" NOT LIKE '%:%' AND {number} BETWEEN {first} AND {last})")
        else:
            conditions.append(
                f'("source.ip" LIKE \'%:%\' AND in_network("source.ip", {_quote(str(network))}))'
            )
    if query.asn is not None:
        conditions.append(f'"source.asn" = {int(query.asn)}')
    for column, value in (
        ("route.organisation", query.constituent),
        ("route.cert", query.cert),
        ("classification.taxonomy", query.taxonomy),
        ("classification.type", query.type),
        ("feed.code", query.feed),
    ):
        if value:
            conditions.append(f'"{column}" = {_quote(value.strip().lower())}')
    # TRY_CAST: a partition whose name is not a date (events with no time at all) is left out rather
    # than failing the query; DuckDB still skips the other days' files.
    if query.since:
        conditions.append(f"TRY_CAST(day AS DATE) >= DATE {_quote(query.since.isoformat())}")
    if query.until:
        conditions.append(f"TRY_CAST(day AS DATE) <= DATE {_quote(query.until.isoformat())}")
    return conditions


def _in_network(address: str, network: str) -> bool:
    # IPv6 text is stored compressed, so a prefix cannot be matched as text; these rows are few.
    try:
        return ipaddress.ip_address(address) in ipaddress.ip_network(network)
    except ValueError:
        return False


def search_events(user: UserLike | None, query: EventQuery) -> tuple[list[dict[str, Any]], int]:
    """The events `user` may read that match `query`, newest first, and how many match in all."""
    if not 1 <= query.limit <= MAX_EVENTS_PAGE:
        raise InvalidInput(
            "limit out of range", errors=[FieldError("limit", f"between 1 and {MAX_EVENTS_PAGE}")]
        )
    if query.offset < 0:
        raise InvalidInput("offset out of range", errors=[FieldError("offset", "0 or more")])
    store = EventStore.configured()
    where = " AND ".join([_visibility_condition(user), *_filters(query)])
    connection = duckdb.connect()
    connection.create_function(
        "in_network", _in_network, ["VARCHAR", "VARCHAR"], "BOOLEAN", side_effects=False
    )
    try:
        events = store.events(connection)
        if events is None:
            return [], 0
        matching = events.filter(where)
        total = int(matching.aggregate("count(*)").fetchall()[0][0])
        page = matching.order('"time.source" DESC NULLS LAST, "source.ip"').limit(
            query.limit, offset=query.offset
        )
        rows = [dict(zip(page.columns, row, strict=True)) for row in page.fetchall()]
    finally:
        connection.close()
    return [{k: v for k, v in row.items() if v is not None} for row in rows], total
