"""The warninglists as one in-memory matcher, rebuilt when a list changes.

Networks go into the registry's `PrefixIndex` and domains into its `DomainSuffixIndex` (the same
structures that route feed events), so checking a value is a lookup, not a scan of the lists.
"""

from __future__ import annotations

import ipaddress
import threading
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import numpy as np
from django.db.models import Count, Max

from certnet.intel.models import Warninglist, WarninglistEntry, WarninglistKind
from certnet.intel.observables import Kind
from certnet.registry.lookup import DomainSuffixIndex, PrefixIndex


@dataclass
class WarninglistMatcher:
    revision: str = ""
    networks: PrefixIndex = field(default_factory=PrefixIndex)
    domains: DomainSuffixIndex = field(default_factory=DomainSuffixIndex)
    exact: dict[str, str] = field(default_factory=dict)  # "kind:value" → list slug
    slugs: list[str] = field(default_factory=list)  # index values → list slug

    def listed(self, kind: str, value: str) -> str | None:
        """The slug of a warninglist the (normalised) value is on, or None."""
        exact = self.exact.get(f"{kind}:{value}")
        if exact is not None:
            return exact
        if kind in (Kind.IPV4, Kind.IPV6):
            return self._network_of(value)
        if kind == Kind.CIDR:
            # A network is listed when both its ends are: 10.1.0.0/16 is private space, 0.0.0.0/0 is not.
            first, last = _network_ends(value)
            slug = self._network_of(first)
            return slug if slug is not None and self._network_of(last) is not None else None
        if kind == Kind.DOMAIN:
            return self._domain_of(value)
        if kind == Kind.URL:
            host = urlsplit(value).hostname or ""
            if host and (":" in host or host.replace(".", "").isdigit()):
                return self._network_of(host)
            return self._domain_of(host) if host else None
        # E-mail addresses are not matched by their domain: a phishing sender at a large webmail
        # provider is a real indicator.
        return None

    def _network_of(self, address: str) -> str | None:
        found = self.networks.lookup_one(address)
        return self.slugs[found] if found is not None else None

    def _domain_of(self, name: str) -> str | None:
        found = self.domains.lookup_one(name)
        return self.slugs[found] if found is not None else None


def _network_ends(cidr: str) -> tuple[str, str]:
    network = ipaddress.ip_network(cidr)
    return str(network.network_address), str(network.broadcast_address)


def warninglist_revision() -> str:
    # Every edit of a list or its entries moves the list's updated_at; the count catches a deletion.
    figures = Warninglist.objects.filter(enabled=True).aggregate(latest=Max("updated_at"), lists=Count("id"))
    return f"{figures['latest']}/{figures['lists']}"


def build_matcher(revision: str = "") -> WarninglistMatcher:
    lists = {wl.pk: wl for wl in Warninglist.objects.filter(enabled=True)}
    slugs = [wl.slug for wl in lists.values()]
    position = {pk: i for i, pk in enumerate(lists)}
    networks: list[str] = []
    network_values: list[int] = []
    domains: list[str] = []
    domain_values: list[int] = []
    exact: dict[str, str] = {}
    entries = WarninglistEntry.objects.filter(warninglist_id__in=list(lists)).values_list(
        "warninglist_id", "value"
    )
    for list_id, value in entries:
        kind = lists[list_id].kind
        if kind == WarninglistKind.CIDR:
            networks.append(value)
            network_values.append(position[list_id])
        elif kind == WarninglistKind.DOMAIN:
            domains.append(value)
            domain_values.append(position[list_id])
        else:
            exact.setdefault(value, lists[list_id].slug)
    return WarninglistMatcher(
        revision=revision,
        networks=PrefixIndex.build(*_first_claims(networks, network_values)),
        domains=DomainSuffixIndex.build(*_first_claims(domains, domain_values)),
        exact=exact,
        slugs=slugs,
    )


def _first_claims(keys: list[str], values: list[int]) -> tuple[list[str], np.ndarray]:
    """The same network or domain on two lists is fine here: keep the first list's claim."""
    seen: dict[str, int] = {}
    for key, value in zip(keys, values, strict=True):
        seen.setdefault(key, value)
    return list(seen), np.asarray(list(seen.values()), dtype=np.int64)


_lock = threading.Lock()
_cached = WarninglistMatcher(revision="-")


def warninglist_matcher() -> WarninglistMatcher:
    """The matcher for the lists as they are now (one small query to check that)."""
    global _cached
    revision = warninglist_revision()
    with _lock:
        if _cached.revision == revision:
            return _cached
    matcher = build_matcher(revision)
    with _lock:
        _cached = matcher
    return matcher


def clear_cache() -> None:
    global _cached
    with _lock:
        _cached = WarninglistMatcher(revision="-")
