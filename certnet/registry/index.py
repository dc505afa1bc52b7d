"""The registry's routing index: every netblock, ASN and domain in force on a date, in memory.

Built from the database in one pass per resource type (about a second for 100,000 netblocks) and kept until
the registry changes: every registry change is made through a service that appends to the audit log,
and the hash of the registry's latest entry names the revision.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from certnet.core import audit
from certnet.core.errors import InvalidInput
from certnet.registry.lookup import AsnIndex, DomainSuffixIndex, PrefixIndex
from certnet.registry.models import AutonomousSystem, Domain, Netblock, ReportingLine
from certnet.registry.resources import normalise_domain, parse_asn


@dataclass(frozen=True)
class RegistryIndex:
    day: dt.date
    revision: str
    prefixes: PrefixIndex
    asns: AsnIndex
    domains: DomainSuffixIndex
    parents: dict[int, int]

    def chain_ids(self, org_id: int) -> list[int]:
        """The organisations above `org_id` on this index's day, nearest first."""
        chain: list[int] = []
        current = self.parents.get(org_id)
        while current is not None and current not in chain and current != org_id:
            chain.append(current)
            current = self.parents.get(current)
        return chain

    def find_ip(self, address: str) -> int | None:
        return self.prefixes.lookup_one(address.strip())

    def find_asn(self, asn: str | int) -> int | None:
        try:
            return self.asns.lookup_one(parse_asn(asn))
        except InvalidInput:
            return None

    def find_domain(self, name: str) -> int | None:
        try:
            ascii_name, _ = normalise_domain(name)
        except InvalidInput:
            return None
        return self.domains.lookup_one(ascii_name)


def build_index(day: dt.date, revision: str = "") -> RegistryIndex:
    netblocks = Netblock.objects.filter(Netblock.in_force_on(day)).values_list("cidr", "pk")
    cidrs, netblock_ids = _columns(netblocks)
    asns = AutonomousSystem.objects.filter(AutonomousSystem.in_force_on(day)).values_list("asn", "pk")
    asn_numbers, asn_ids = _columns(asns)
    domains = Domain.objects.filter(Domain.in_force_on(day)).values_list("name", "pk")
    names, domain_ids = _columns(domains)
    return RegistryIndex(
        day=day,
        revision=revision,
        prefixes=PrefixIndex.build(cidrs, np.asarray(netblock_ids, dtype=np.int64)),
        asns=AsnIndex.build(asn_numbers, asn_ids),
        domains=DomainSuffixIndex.build(names, domain_ids),
        parents=_edges_on(day),
    )


def _columns(rows: Iterable[tuple[Any, int]]) -> tuple[list[Any], list[int]]:
    pairs = list(rows)
    return [p[0] for p in pairs], [int(p[1]) for p in pairs]


_CACHE_SIZE = 16
_cache: OrderedDict[tuple[str, dt.date], tuple[str, object]] = OrderedDict()
_lock = threading.Lock()


def registry_revision() -> str:
    # The hash of the registry's latest audit entry, not a sequence number (a rolled-back
    # transaction can reuse a number); changes elsewhere (tokens, incidents) leave it alone.
    return audit.latest_mark("registry")


def registry_index(day: dt.date) -> RegistryIndex:
    """The index for `day`, rebuilt if the registry changed since it was built."""
    revision = registry_revision()
    key = ("index", day)
    with _lock:
        cached = _cache.get(key)
        if cached is not None and cached[0] == revision:
            _cache.move_to_end(key)
            return cast(RegistryIndex, cached[1])
    index = build_index(day, revision)
    _remember(key, revision, index)
    return index


def reporting_edges(day: dt.date) -> dict[int, int]:
    """child → parent as the reporting lines stood on `day`, cached until the registry changes.

    Every request that checks visibility below an organisation needs this; reading all reporting
    lines each time would cost a full table scan per request."""
    revision = registry_revision()
    key = ("edges", day)
    with _lock:
        cached = _cache.get(key)
        if cached is not None and cached[0] == revision:
            _cache.move_to_end(key)
            return dict(cast(dict[int, int], cached[1]))
    edges = _edges_on(day)
    _remember(key, revision, edges)
    return dict(edges)


def _edges_on(day: dt.date) -> dict[int, int]:
    lines = ReportingLine.objects.filter(ReportingLine.in_force_on(day))
    return dict(lines.values_list("organisation_id", "parent_id"))


def _remember(key: tuple[str, dt.date], revision: str, value: object) -> None:
    with _lock:
        _cache[key] = (revision, value)
        _cache.move_to_end(key)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)


def clear_cache() -> None:
    with _lock:
        _cache.clear()
