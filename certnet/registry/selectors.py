"""Reads of the registry: the hierarchy as of a date, organisations a user may see, resource lookup."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db.models import Q, QuerySet

from certnet.core import clock
from certnet.core.errors import Forbidden, NotFound, invalid
from certnet.core.visibility import can, principal_for
from certnet.registry.models import (
    CERT_KINDS,
    AutonomousSystem,
    CIISystem,
    Designation,
    DesignationEvent,
    DesignationKind,
    Domain,
    FunctionHolding,
    Netblock,
    Organisation,
)
from certnet.registry.resources import address_key, normalise_domain, parse_address, parse_asn, parse_network

if TYPE_CHECKING:
    from certnet.core.visibility import UserLike


def reporting_edges(day: dt.date | None = None) -> dict[int, int]:
    """child organisation id → parent organisation id, as the reporting lines stood on `day`."""
    from certnet.registry.index import reporting_edges as cached_edges

    return cached_edges(day or clock.today())


def cert_ids_among(org_ids: Iterable[int]) -> set[int]:
    """Which of the given organisations are CERTs."""
    certs = Organisation.objects.filter(pk__in=set(org_ids), kind__in=CERT_KINDS)
    return set(certs.values_list("pk", flat=True))


def descendants_of(org_ids: Iterable[int], day: dt.date | None = None) -> set[int]:
    """Every organisation below the given ones (not including them), as of `day` (default today)."""
    children: dict[int, list[int]] = defaultdict(list)
    for child, parent in reporting_edges(day).items():
        children[parent].append(child)
    found: set[int] = set()
    stack = list(org_ids)
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def chain_ids(org_id: int, day: dt.date | None = None) -> list[int]:
    """The organisations above `org_id`, nearest first, as of `day`."""
    edges = reporting_edges(day)
    chain: list[int] = []
    current = edges.get(org_id)
    while current is not None and current not in chain and current != org_id:
        chain.append(current)
        current = edges.get(current)
    return chain


def chain_of(
    organisation: Organisation, day: dt.date | None = None, user: UserLike | None = None
) -> list[Organisation]:
    """The organisations above, nearest first; with `user`, only those that user may see."""
    ids = chain_ids(organisation.pk, day)
    source = visible_organisations(user) if user is not None else Organisation.objects.all()
    by_id = source.in_bulk(ids)
    return [by_id[i] for i in ids if i in by_id]


def visible_parents(
    user: UserLike | None, org_ids: Iterable[int], day: dt.date | None = None
) -> dict[int, Organisation]:
    """organisation id → the organisation it reports to on `day`, where the user may see that parent
    (one query for a whole page of organisations)."""
    edges = reporting_edges(day)
    wanted = {org_id: edges[org_id] for org_id in org_ids if org_id in edges}
    parents = visible_organisations(user).in_bulk(set(wanted.values()))
    return {org_id: parents[parent] for org_id, parent in wanted.items() if parent in parents}


def visible_function_holdings(user: UserLike | None, day: dt.date | None = None) -> list[FunctionHolding]:
    visible = set(visible_organisations(user).values_list("pk", flat=True))
    return [
        holding
        for org_id, holdings in function_holdings(day).items()
        if org_id in visible
        for holding in holdings
    ]


def certs_of(user: UserLike | None) -> QuerySet[Organisation]:
    """The CERTs the user is a member of (any role), by name."""
    roles = principal_for(user).roles
    return Organisation.objects.filter(pk__in=list(roles), kind__in=list(CERT_KINDS)).order_by("name")


def visible_organisations(user: UserLike | None) -> QuerySet[Organisation]:
    return Organisation.objects.restrict(user, "view")


def access_organisation(user: UserLike | None, slug: str, action: str = "view") -> Organisation:
    """The organisation if the user may do `action`; 404 alike for missing and not visible."""
    organisation = visible_organisations(user).filter(slug=slug).first()
    if organisation is None:
        raise NotFound(f"no organisation {slug!r}")
    if action != "view" and not can(user, action, organisation):
        raise Forbidden(f"you may not {action} organisation {slug!r}")
    return organisation


def filter_organisations(
    user: UserLike | None,
    queryset: QuerySet[Organisation],
    *,
    kind: str | None = None,
    sector: str | None = None,
    province: str | None = None,
    status: str | None = None,
    search: str | None = None,
) -> QuerySet[Organisation]:
    if kind:
        queryset = queryset.filter(kind=kind)
    if sector:
        queryset = queryset.filter(sector=sector)
    if province:
        queryset = queryset.filter(province=province)
    if status:
        designated = Designation.objects.restrict(user, "view").filter(status=status)
        queryset = queryset.filter(pk__in=designated.values("organisation_id"))
    if search:
        queryset = queryset.filter(
            Q(name__icontains=search) | Q(short_name__icontains=search) | Q(slug__icontains=search)
        )
    return queryset


def designation_statuses(
    user: UserLike | None, org_ids: Iterable[int], day: dt.date | None = None
) -> dict[int, dict[str, str]]:
    """organisation id → {designation kind: status} of the designations the user may see, for
    badges: today's, or as they stood on `day`."""
    ids = list(org_ids)
    result: dict[int, dict[str, str]] = defaultdict(dict)
    visible = Designation.objects.restrict(user, "view").filter(organisation_id__in=ids)
    if day is None or day >= clock.today():
        for org_id, kind, status in visible.values_list("organisation_id", "kind", "status"):
            result[org_id][kind] = status
        return result
    # Events in order: the last one on or before `day` is the status then.
    events = (
        DesignationEvent.objects.filter(designation__in=visible.values("pk"), effective_on__lte=day)
        .order_by("effective_on", "id")
        .values_list("designation__organisation_id", "designation__kind", "to_status")
    )
    for org_id, kind, status in events:
        result[org_id][kind] = status
    return result


def visible_resources(
    user: UserLike | None,
    model: type[Netblock] | type[AutonomousSystem] | type[Domain],
    *,
    organisation: Organisation | None = None,
    at: dt.date | None = None,
) -> QuerySet[Any]:
    """Resources the user may see, of owners the user may see (a resource must not name a hidden owner)."""
    queryset = model.objects.restrict(user, "view").filter(
        organisation__in=visible_organisations(user).values("pk")
    )
    if organisation is not None:
        queryset = queryset.filter(organisation=organisation)
    if at is not None:
        queryset = queryset.filter(model.in_force_on(at))
    return queryset.select_related("organisation")


def netblocks_containing(queryset: QuerySet[Netblock], text: str) -> QuerySet[Netblock]:
    """Netblocks that contain an address or a whole network (`text` as '192.0.2.7' or '192.0.2.0/28')."""
    if "/" in text:
        target = parse_network(text, loc="contains")
        start, end = target.start, target.end
    else:
        start = end = address_key(parse_address(text, loc="contains"))
    return queryset.filter(start__lte=start, end__gte=end)


def constituents_of(
    user: UserLike | None, organisation: Organisation, day: dt.date | None = None
) -> QuerySet[Organisation]:
    """The visible organisations reporting directly to `organisation` on `day`."""
    children = [child for child, parent in reporting_edges(day).items() if parent == organisation.pk]
    return visible_organisations(user).filter(pk__in=children)


def function_holdings(day: dt.date | None = None) -> dict[int, list[FunctionHolding]]:
    """organisation id → the functions it held on `day` (one query for the whole framework)."""
    holdings: dict[int, list[FunctionHolding]] = defaultdict(list)
    in_force = FunctionHolding.objects.filter(FunctionHolding.in_force_on(day or clock.today()))
    for holding in in_force.select_related("function", "organisation").order_by("function__name"):
        holdings[holding.organisation_id].append(holding)
    return holdings


def designation_status_on(designation: Designation, day: dt.date) -> str | None:
    """The status a designation had on `day`, from its events (None: it did not exist yet)."""
    event = designation.events.filter(effective_on__lte=day).order_by("-effective_on", "-id").first()
    return event.to_status if event else None


def functions_held(organisation: Organisation, day: dt.date | None = None) -> QuerySet[FunctionHolding]:
    day = day or clock.today()
    return organisation.functions_held.filter(FunctionHolding.in_force_on(day)).select_related("function")


def holder_of_function(slug: str, day: dt.date | None = None) -> Organisation | None:
    day = day or clock.today()
    holding = (
        FunctionHolding.objects.filter(FunctionHolding.in_force_on(day), function__slug=slug)
        .select_related("organisation")
        .first()
    )
    return holding.organisation if holding else None


@dataclass
class TreeNode:
    organisation: Organisation
    statuses: dict[str, str]
    children: list[TreeNode] = field(default_factory=list)


def organisation_tree(user: UserLike | None, day: dt.date | None = None) -> list[TreeNode]:
    """The visible organisations as a forest by reporting line on `day`; roots first by kind and name."""
    visible = {org.pk: org for org in visible_organisations(user)}
    statuses = designation_statuses(user, visible, day)
    nodes = {pk: TreeNode(org, statuses.get(pk, {})) for pk, org in visible.items()}
    edges = reporting_edges(day)
    roots: list[TreeNode] = []
    for pk, node in nodes.items():
        parent = edges.get(pk)
        if parent in nodes:
            nodes[parent].children.append(node)
        else:
            roots.append(node)
    kind_order = {kind: i for i, kind in enumerate(_TREE_KIND_ORDER)}

    def sort(items: list[TreeNode]) -> None:
        items.sort(key=lambda n: (kind_order.get(n.organisation.kind, 99), n.organisation.name))
        for item in items:
            sort(item.children)

    sort(roots)
    return roots


_TREE_KIND_ORDER = [
    "council",
    "national-cert",
    "provincial-cert",
    "sectoral-cert",
    "organisational-cert",
    "cii-operator",
    "constituent",
    "ministry",
    "regulator",
    "law-enforcement",
    "executing-agency",
]


# --- lookup -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LookupResult:
    query: str
    kind: str  # 'ip' | 'asn' | 'domain'
    at: dt.date
    organisation: Organisation
    matched: str  # the netblock, AS number or domain that matched
    resource_id: int
    chain: list[Organisation]

    def as_dict(self) -> dict[str, Any]:
        def org(o: Organisation) -> dict[str, Any]:
            return {"slug": o.slug, "name": o.name, "kind": o.kind}

        return {
            "query": self.query,
            "kind": self.kind,
            "at": self.at.isoformat(),
            "matched": self.matched,
            "organisation": org(self.organisation),
            "chain": [org(o) for o in self.chain],
        }


def lookup(user: UserLike | None, query: str, kind: str, at: dt.date | None = None) -> LookupResult:
    """Who owned an IP address, AS number or domain on `at`, and which CERT chain answered for it.

    The most specific match is found over the whole registry; if the caller may not see that
    resource the answer is 404, never a less specific owner (which would be wrong)."""
    from certnet.registry.index import registry_index

    day = at or clock.today()
    index = registry_index(day)
    resource: Netblock | AutonomousSystem | Domain | None
    _validate_query(query, kind)
    model: type[Netblock] | type[AutonomousSystem] | type[Domain]
    if kind == "ip":
        model, found = Netblock, index.find_ip(query)
    elif kind == "asn":
        model, found = AutonomousSystem, index.find_asn(query)
    elif kind == "domain":
        model, found = Domain, index.find_domain(query)
    else:
        raise ValueError(f"unknown lookup kind {kind!r}")
    resource = model.objects.restrict(user).filter(pk=found).first() if found is not None else None
    if resource is None:
        raise NotFound(f"no organisation you may see held {query!r} on {day.isoformat()}")
    chain = index.chain_ids(resource.organisation_id)
    organisations = visible_organisations(user).in_bulk([resource.organisation_id, *chain])
    if resource.organisation_id not in organisations:
        raise NotFound(f"no organisation you may see held {query!r} on {day.isoformat()}")
    return LookupResult(
        query=query,
        kind=kind,
        at=day,
        organisation=organisations[resource.organisation_id],
        matched=resource.name if isinstance(resource, Domain) else str(resource),
        resource_id=resource.pk,
        chain=[organisations[pk] for pk in chain if pk in organisations],
    )


def _validate_query(query: str, kind: str) -> None:
    """Malformed input is a 422 that says what is wrong, never a 'not found'."""
    if kind == "ip":
        parse_address(query, loc="ip")
    elif kind == "asn":
        parse_asn(query, loc="asn")
    elif kind == "domain":
        normalise_domain(query, loc="domain")


def is_cii_operator(organisation: Organisation, day: dt.date | None = None) -> bool:
    """Holds a CII designation that is in force (notified or operational) on `day`."""
    day = day or clock.today()
    for designation in organisation.designations.filter(kind=DesignationKind.CII):
        if designation_status_on(designation, day) in {"notified", "operational"}:
            return True
    return False


def cii_system_named(organisation: Organisation, name: str) -> CIISystem:
    """The organisation's CII system of that name; InvalidInput at `cii_system` naming the ones it has."""
    system = CIISystem.objects.filter(organisation=organisation, name=name.strip()).first()
    if system is None:
        known = ", ".join(repr(s) for s in organisation.cii_systems.values_list("name", flat=True))
        raise invalid(
            "cii_system",
            f"{organisation.slug} has no CII system named {name.strip()!r} (it has: {known or 'none'})",
        )
    return system
