"""Routing feed events to constituents: address, AS number or domain → organisation, as of a day.

A `RoutingTable` is built once per day and registry revision from the registry's lookup index (the
same one `certnet lookup` answers from) and turns whole columns into `route.*` columns: the most
specific netblock first, then the AS number, then the host name (public-suffix aware through the
domain index). Everything about the organisation that routing needs (its handling CERT and the CERTs
above it, sector, province, CII designation) is resolved once per organisation, not per event.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from certnet.feeds import convert
from certnet.registry.index import RegistryIndex, registry_index
from certnet.registry.lookup import NO_MATCH

ROUTE_FIELDS = (
    "route.organisation",
    "route.cert",
    "route.chain",
    "route.sector",
    "route.province",
    "route.cii",
    "route.cii_system",
    "route.matched",
    "route.resource",
)


@dataclass(frozen=True)
class RoutingTable:
    day: dt.date
    revision: str
    index: RegistryIndex
    resource_ids: dict[str, np.ndarray]  # per kind: sorted resource pks
    resource_orgs: dict[str, np.ndarray]  # per kind: position of the owning organisation
    resource_texts: dict[str, pa.Array]  # per kind: the netblock / AS / domain as text
    resource_systems: dict[str, pa.Array]  # per kind: the CII system the resource serves, if any
    organisations: dict[str, pa.Array]  # route field → one value per organisation position

    def _owner_positions(self, kind: str, found: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(organisation position or -1, resource position or -1) for resource pks found by the index."""
        ids = self.resource_ids[kind]
        hit = found != NO_MATCH
        where = np.zeros(len(found), dtype=np.int64)
        if len(ids):
            where = np.minimum(np.searchsorted(ids, found), len(ids) - 1)
            hit &= ids[where] == found
        return np.where(hit, self.resource_orgs[kind][where] if len(ids) else -1, -1), np.where(
            hit, where, -1
        )

    def route(self, table: pa.Table) -> pa.Table:
        """The table with `route.*` columns; unrouted rows have them empty."""
        rows = table.num_rows
        owner = np.full(rows, -1, dtype=np.int64)
        resource = np.full(rows, -1, dtype=np.int64)
        matched = np.full(rows, -1, dtype=np.int8)
        for code, (kind, finder) in enumerate(
            (("ip", self._find_ip), ("asn", self._find_asn), ("domain", self._find_domain))
        ):
            pending = owner < 0
            if not pending.any():
                break
            found = finder(table, pending)
            if found is None:
                continue
            positions, resources = self._owner_positions(kind, found)
            take = pending & (positions >= 0)
            owner[take], resource[take], matched[take] = positions[take], resources[take], code
        routed = owner >= 0
        columns = {name: table.column(name) for name in table.column_names if not name.startswith("route.")}
        position = pa.array(np.where(routed, owner, 0), mask=~routed)
        for name, values in self.organisations.items():
            columns[name] = pc.take(values, position)
        kinds = pa.array(["ip", "asn", "domain"])
        columns["route.matched"] = pc.take(
            kinds, pa.array(np.where(routed, matched, 0).astype(np.int64), mask=~routed)
        )
        columns["route.resource"] = self._per_resource(self.resource_texts, resource, matched, routed)
        columns["route.cii_system"] = self._per_resource(self.resource_systems, resource, matched, routed)
        return pa.table(columns)

    @staticmethod
    def _per_resource(
        values: dict[str, pa.Array], resource: np.ndarray, matched: np.ndarray, routed: np.ndarray
    ) -> pa.Array:
        """Each routed row's value of `values` for the resource that matched it."""
        out = pa.nulls(len(resource), pa.string())
        for code, kind in enumerate(("ip", "asn", "domain")):
            rows = routed & (matched == code)
            if rows.any() and values[kind].null_count < len(values[kind]):
                taken = pc.take(values[kind], pa.array(np.where(rows, resource, 0), mask=~rows))
                out = pc.coalesce(out, taken)
        return out

    def _find_ip(self, table: pa.Table, pending: np.ndarray) -> np.ndarray | None:
        if "source.ip" not in table.column_names:
            return None
        addresses = table.column("source.ip").combine_chunks()
        found = np.full(table.num_rows, NO_MATCH, dtype=np.int64)
        numbers, is_v4 = convert.ipv4_numbers(addresses)
        v4 = pending & is_v4
        if v4.any():
            found[v4] = self.index.prefixes.lookup_ipv4(numbers[v4])
        others = (
            pending & ~is_v4 & np.asarray(pc.is_valid(addresses).to_numpy(zero_copy_only=False), dtype=bool)
        )
        if others.any():
            texts = pc.filter(addresses, pa.array(others)).to_pylist()
            found[others] = self.index.prefixes.lookup(texts)
        return found

    def _find_asn(self, table: pa.Table, pending: np.ndarray) -> np.ndarray | None:
        if "source.asn" not in table.column_names:
            return None
        column = table.column("source.asn").combine_chunks()
        present = pending & np.asarray(pc.is_valid(column).to_numpy(zero_copy_only=False), dtype=bool)
        found = np.full(table.num_rows, NO_MATCH, dtype=np.int64)
        if present.any():
            numbers = np.asarray(pc.fill_null(column, 0).to_numpy(zero_copy_only=False), dtype=np.int64)
            found[present] = self.index.asns.lookup(numbers[present])
        return found

    def _find_domain(self, table: pa.Table, pending: np.ndarray) -> np.ndarray | None:
        hosts = None
        if "source.fqdn" in table.column_names:
            hosts = table.column("source.fqdn").combine_chunks()
        if "source.url" in table.column_names:
            from_url = convert.hostname_of_url(table.column("source.url").combine_chunks())
            hosts = from_url if hosts is None else pc.coalesce(hosts, from_url)
        if hosts is None:
            return None
        present = pending & np.asarray(pc.is_valid(hosts).to_numpy(zero_copy_only=False), dtype=bool)
        found = np.full(table.num_rows, NO_MATCH, dtype=np.int64)
        if present.any():
            found[present] = self.index.domains.lookup(pc.filter(hosts, pa.array(present)).to_pylist())
        return found


def build_routing_table(day: dt.date) -> RoutingTable:
    from django.db.models import CharField, Value

    from certnet.incidents.selectors import certs_above, handling_cert_for
    from certnet.registry.models import AutonomousSystem, Domain, Netblock, Organisation
    from certnet.registry.selectors import is_cii_operator

    index = registry_index(day)
    organisations = list(Organisation.objects.order_by("pk"))
    position = {org.pk: i for i, org in enumerate(organisations)}
    resource_ids, resource_orgs, resource_texts, resource_systems = {}, {}, {}, {}
    for kind, rows in (
        (
            "ip",
            Netblock.objects.filter(Netblock.in_force_on(day)).values_list(
                "pk", "organisation_id", "cidr", "cii_system__name"
            ),
        ),
        (
            "asn",
            AutonomousSystem.objects.filter(AutonomousSystem.in_force_on(day)).values_list(
                "pk", "organisation_id", "asn", Value(None, output_field=CharField())
            ),
        ),
        (
            "domain",
            Domain.objects.filter(Domain.in_force_on(day)).values_list(
                "pk", "organisation_id", "name", "cii_system__name"
            ),
        ),
    ):
        ordered = sorted(rows, key=lambda r: r[0])
        resource_ids[kind] = np.array([r[0] for r in ordered], dtype=np.int64)
        resource_orgs[kind] = np.array([position[r[1]] for r in ordered], dtype=np.int64)
        resource_texts[kind] = pa.array([str(r[2]) for r in ordered], pa.string())
        resource_systems[kind] = pa.array([r[3] for r in ordered], pa.string())
    certs, chains = [], []
    for org in organisations:
        cert = handling_cert_for(org, day)
        certs.append(cert.slug if cert else None)
        chains.append(" ".join(c.slug for c in certs_above(cert, day)) if cert else None)
    values = {
        "route.organisation": pa.array([o.slug for o in organisations], pa.string()),
        "route.cert": pa.array(certs, pa.string()),
        "route.chain": pa.array([c or None for c in chains], pa.string()),
        "route.sector": pa.array([o.sector.lower() or None for o in organisations], pa.string()),
        "route.province": pa.array([o.province.lower() or None for o in organisations], pa.string()),
        "route.cii": pa.array([is_cii_operator(o, day) for o in organisations], pa.bool_()),
    }
    return RoutingTable(
        day=day,
        revision=index.revision,
        index=index,
        resource_ids=resource_ids,
        resource_orgs=resource_orgs,
        resource_texts=resource_texts,
        resource_systems=resource_systems,
        organisations=values,
    )


_tables: OrderedDict[dt.date, RoutingTable] = OrderedDict()
_lock = threading.Lock()


def routing_table(day: dt.date) -> RoutingTable:
    """The table for `day`, rebuilt when the registry has changed since it was built."""
    from certnet.registry.index import registry_revision

    revision = registry_revision()
    with _lock:
        cached = _tables.get(day)
        if cached is not None and cached.revision == revision:
            _tables.move_to_end(day)
            return cached
    table = build_routing_table(day)
    with _lock:
        _tables[day] = table
        while len(_tables) > 8:
            _tables.popitem(last=False)
    return table


def route_by_day(table: pa.Table) -> pa.Table:
    """Route each row as the registry stood on its own day (time.source, else today)."""
    from certnet.core import clock

    if "time.source" not in table.column_names or table.num_rows == 0:
        return routing_table(clock.today()).route(table)
    day_numbers = pc.cast(pc.cast(table.column("time.source"), pa.date32()), pa.int32())
    today = (clock.today() - dt.date(1970, 1, 1)).days
    numbers = np.asarray(pc.fill_null(day_numbers, today).to_numpy(zero_copy_only=False), dtype=np.int64)
    distinct = np.unique(numbers)
    if len(distinct) == 1:
        return routing_table(dt.date(1970, 1, 1) + dt.timedelta(days=int(distinct[0]))).route(table)
    parts = []
    order = []
    for number in distinct:
        rows = np.flatnonzero(numbers == number)
        order.append(rows)
        parts.append(
            routing_table(dt.date(1970, 1, 1) + dt.timedelta(days=int(number))).route(
                table.take(pa.array(rows))
            )
        )
    combined = pa.concat_tables(parts, promote_options="default")
    restore = np.argsort(np.concatenate(order), kind="stable")
    return combined.take(pa.array(restore))
