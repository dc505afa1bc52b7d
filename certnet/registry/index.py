"""The registry's routing index: every netblock, ASN and domain in force on a date, in memory.

Built from the database in one pass per resource type (seconds for 100,000 netblocks) and kept until
the registry changes: the audit log's sequence number is the registry's revision, because every
change is made through a service that appends to it (the head's hash names the revision).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from certnet.core.errors import InvalidInput
from certnet.core.models import AuditHead
from certnet.registry.lookup import AsnIndex, DomainSuffixIndex, PrefixIndex
from certnet.registry.models import AutonomousSystem, Domain, Netblock
from certnet.registry.resources import normalise_domain, parse_asn


@dataclass(frozen=True)
class RegistryIndex:
    day: dt.date
    revision: str
    prefixes: PrefixIndex
    asns: AsnIndex
    domains: DomainSuffixIndex

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
    )


def _columns(rows: Iterable[tuple[Any, int]]) -> tuple[list[Any], list[int]]:
    pairs = list(rows)
    return [p[0] for p in pairs], [int(p[1]) for p in pairs]


_CACHE_SIZE = 8
_cache: OrderedDict[dt.date, RegistryIndex] = OrderedDict()
_lock = threading.Lock()


def registry_revision() -> str:
    # The head's hash, not its sequence number: a rolled-back transaction can reuse a number.
    head = AuditHead.objects.filter(id=1).values_list("hash", flat=True).first()
    return str(head or "")


def registry_index(day: dt.date) -> RegistryIndex:
    """The index for `day`, rebuilt if the registry changed since it was built."""
    revision = registry_revision()
    with _lock:
        cached = _cache.get(day)
        if cached is not None and cached.revision == revision:
            _cache.move_to_end(day)
            return cached
    index = build_index(day, revision)
    with _lock:
        _cache[day] = index
        _cache.move_to_end(day)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return index


def clear_cache() -> None:
    with _lock:
        _cache.clear()
