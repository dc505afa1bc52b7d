"""Registry pages: the framework tree, the organisations table, one organisation, and lookup.

Thin, like the API: parse the query string, read through the selectors (every read starts from
`restrict(user, "view")`), shape rows for the templates, render. An HTMX request gets only the
fragment it swaps in; any other request gets the whole page, so everything also works without JS.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from certnet.core import clock
from certnet.core.errors import DomainError, FieldError, NotFound
from certnet.registry import selectors
from certnet.registry.models import (
    AutonomousSystem,
    CIISystem,
    Contact,
    Designation,
    DesignationKind,
    DesignationStatus,
    Domain,
    FunctionHolding,
    Netblock,
    Organisation,
    OrganisationKind,
)
from certnet.registry.resources import classify_query
from certnet.web.rendering import render_page_or_fragment

# Roots of the tree that are not part of the CERT network proper.
GOVERNANCE_KINDS = frozenset(
    {
        OrganisationKind.MINISTRY,
        OrganisationKind.REGULATOR,
        OrganisationKind.LAW_ENFORCEMENT,
        OrganisationKind.COUNCIL,
        OrganisationKind.EXECUTING_AGENCY,
    }
)

# Columns the organisations table may be sorted by: parameter → order_by fields. Nothing else is
# ever passed to order_by.
SORTS: dict[str, tuple[str, ...]] = {
    "name": ("name",),
    "kind": ("kind", "name"),
    "sector": ("sector", "name"),
    "province": ("province", "name"),
}
PAGE_SIZE = 50


# --- request helpers ----------------------------------------------------------------------------


def _as_of(request: HttpRequest) -> tuple[dt.date, str]:
    """The `at` parameter (YYYY-MM-DD), today when absent; an unreadable date gives today and a message."""
    raw = request.GET.get("at", "").strip()
    if not raw:
        return clock.today(), ""
    try:
        return clock.parse_date(raw, loc="as of"), ""
    except ValueError as exc:
        return clock.today(), f"{exc}; showing today instead."


def _visible_ids(request: HttpRequest, organisations: Iterable[Organisation | None]) -> set[int]:
    """Which of these organisations the user may see (for links to related bodies)."""
    ids = {o.pk for o in organisations if o is not None}
    if not ids:
        return set()
    return set(selectors.visible_organisations(request.user).filter(pk__in=ids).values_list("pk", flat=True))


# --- the framework tree ------------------------------------------------------------------------


@dataclass
class TreeRow:
    organisation: Organisation
    statuses: list[tuple[str, str]]
    functions: list[FunctionHolding]
    children: list[TreeRow] = field(default_factory=list)

    @property
    def size(self) -> int:
        """How many organisations sit below this one."""
        return sum(1 + child.size for child in self.children)


def _tree_rows(
    nodes: list[selectors.TreeNode],
    day: dt.date,
    counts: dict[str, int],
    holdings: dict[int, list[FunctionHolding]],
) -> list[TreeRow]:
    rows = []
    for node in nodes:
        organisation = node.organisation
        counts[organisation.kind] = counts.get(organisation.kind, 0) + 1
        functions = holdings.get(organisation.pk, []) if organisation.is_cert else []
        rows.append(
            TreeRow(
                organisation=organisation,
                statuses=sorted(node.statuses.items()),
                functions=functions,
                children=_tree_rows(node.children, day, counts, holdings),
            )
        )
    return rows


def _walk(rows: list[TreeRow]) -> Iterable[TreeRow]:
    for row in rows:
        yield row
        yield from _walk(row.children)


@login_required
def framework_tree(request: HttpRequest) -> HttpResponse:
    day, date_error = _as_of(request)
    counts: dict[str, int] = {}
    rows = _tree_rows(
        selectors.organisation_tree(request.user, day), day, counts, selectors.function_holdings(day)
    )
    network: list[TreeRow] = []
    governance: list[TreeRow] = []
    unattached: list[TreeRow] = []
    for row in rows:
        if row.organisation.is_cert:
            network.append(row)
        elif row.organisation.kind in GOVERNANCE_KINDS:
            governance.append(row)
        else:
            unattached.append(row)
    holdings = sorted(
        (holding for row in _walk(rows) for holding in row.functions),
        key=lambda h: h.function.name,
    )
    summary = [
        (label, counts.get(kind, 0))
        for kind, label in (
            (OrganisationKind.NATIONAL_CERT, "National CERT"),
            (OrganisationKind.PROVINCIAL_CERT, "Provincial CERTs"),
            (OrganisationKind.SECTORAL_CERT, "Sectoral CERTs"),
            (OrganisationKind.CII_OPERATOR, "CII operators"),
            (OrganisationKind.CONSTITUENT, "Constituents"),
        )
    ]
    context = {
        "day": day,
        "is_today": day == clock.today(),
        "date_error": date_error,
        "network": network,
        "governance": governance,
        "unattached": unattached,
        "holdings": holdings,
        "summary": summary,
        "total": sum(counts.values()),
    }
    return render_page_or_fragment(request, "registry/tree.html", "registry/_tree.html", context)


# --- the organisations table -------------------------------------------------------------------


@dataclass
class OrganisationRow:
    organisation: Organisation
    statuses: list[tuple[str, str]]
    reports_to: Organisation | None


@login_required
def organisation_list(request: HttpRequest) -> HttpResponse:
    params = request.GET
    filters = {
        "kind": params.get("kind", "").strip(),
        "sector": params.get("sector", "").strip(),
        "province": params.get("province", "").strip(),
        "status": params.get("status", "").strip(),
        "q": params.get("q", "").strip(),
    }
    sort = params.get("sort", "name")
    column = sort.removeprefix("-")
    if column not in SORTS:
        sort, column = "name", "name"
    descending = sort.startswith("-")
    order = [f"-{f}" if descending else f for f in SORTS[column]]

    visible = selectors.visible_organisations(request.user)
    queryset = selectors.filter_organisations(
        request.user,
        visible,
        kind=filters["kind"] or None,
        sector=filters["sector"] or None,
        province=filters["province"] or None,
        status=filters["status"] or None,
        search=filters["q"] or None,
    ).order_by(*order)
    page = Paginator(queryset, PAGE_SIZE).get_page(params.get("page"))
    organisations = list(page.object_list)
    statuses = selectors.designation_statuses(request.user, (o.pk for o in organisations))
    parents = selectors.visible_parents(request.user, [o.pk for o in organisations])
    rows = [
        OrganisationRow(
            organisation=o,
            statuses=sorted(statuses.get(o.pk, {}).items()),
            reports_to=parents.get(o.pk),
        )
        for o in organisations
    ]
    context = {
        "rows": rows,
        "page": page,
        "filters": filters,
        "active_filters": any(filters.values()),
        "sort": sort,
        "sort_column": column,
        "descending": descending,
        # (parameter, heading, the sort a click on the heading asks for: the reverse when sorted by it)
        "columns": [
            (key, label, f"-{key}" if key == column and not descending else key)
            for key, label in (
                ("name", "Name"),
                ("kind", "Kind"),
                ("sector", "Sector"),
                ("province", "Province"),
            )
        ],
        "kinds": OrganisationKind.choices,
        "statuses": DesignationStatus.choices,
        "sectors": _distinct(visible, "sector"),
        "provinces": _distinct(visible, "province"),
    }
    return render_page_or_fragment(
        request, "registry/organisation_list.html", "registry/_organisation_table.html", context
    )


def _distinct(queryset: QuerySet[Organisation], column: str) -> list[str]:
    values = queryset.exclude(**{column: ""}).order_by(column).values_list(column, flat=True).distinct()
    return list(values)


# --- one organisation --------------------------------------------------------------------------


@login_required
def organisation_detail(request: HttpRequest, slug: str) -> HttpResponse:
    try:
        organisation = selectors.access_organisation(request.user, slug)
    except NotFound as exc:
        raise Http404(exc.detail) from None
    day, date_error = _as_of(request)
    user = request.user
    chain = selectors.chain_of(organisation, day)
    kind_order = {kind: i for i, kind in enumerate(OrganisationKind.values)}
    constituents = sorted(
        selectors.constituents_of(user, organisation, day),
        key=lambda o: (kind_order.get(o.kind, 99), o.display_name.lower()),
    )
    constituent_statuses = selectors.designation_statuses(user, (o.pk for o in constituents), day)
    designations = list(
        Designation.objects.restrict(user)
        .filter(organisation=organisation)
        .select_related("designating_authority")
        .prefetch_related("events")
        .order_by("kind")
    )
    seats = (
        list(organisation.seats.select_related("holder"))
        if organisation.kind == OrganisationKind.COUNCIL
        else []
    )
    related = [
        organisation.lead_body,
        *chain,
        *(d.designating_authority for d in designations),
        *(s.holder for s in seats),
    ]
    systems = list(
        CIISystem.objects.restrict(user).filter(organisation=organisation).select_related("designation")
    )
    context = {
        "organisation": organisation,
        "day": day,
        "today": clock.today(),
        "is_today": day == clock.today(),
        "date_error": date_error,
        "statuses": sorted(
            selectors.designation_statuses(user, [organisation.pk], day).get(organisation.pk, {}).items()
        ),
        "chain": chain,
        "constituents": [(o, sorted(constituent_statuses.get(o.pk, {}).items())) for o in constituents],
        "functions": list(selectors.functions_held(organisation, day)),
        "designations": designations,
        "cii_kind": DesignationKind.CII,
        "cii_systems": systems,
        "netblocks": _with_system_names(Netblock.objects.restrict(user), organisation, systems),
        "asns": list(AutonomousSystem.objects.restrict(user).filter(organisation=organisation)),
        "domains": _with_system_names(Domain.objects.restrict(user), organisation, systems),
        "contacts": list(Contact.objects.restrict(user).filter(organisation=organisation)),
        "seats": seats,
        "visible_ids": _visible_ids(request, related),
    }
    return render(request, "registry/organisation_detail.html", context)


def _with_system_names(records: Any, organisation: Organisation, systems: list[CIISystem]) -> list[Any]:
    """The organisation's records, each with `system_name`: the CII system it serves, where the viewer
    may see it."""
    names = {system.pk: system.name for system in systems}
    listed = list(records.filter(organisation=organisation))
    for record in listed:
        record.system_name = names.get(record.cii_system_id, "")
    return listed


# --- lookup ------------------------------------------------------------------------------------


@login_required
def lookup_page(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()
    day, date_error = _as_of(request)
    context: dict[str, Any] = {
        "query": query,
        "at": request.GET.get("at", "").strip(),
        "day": day,
        "date_error": date_error,
        "result": None,
        "resource": None,
        "error": "",
        "field_errors": [],
    }
    if query and not date_error:
        kind = classify_query(query)
        try:
            result = selectors.lookup(request.user, query, kind, day)
        except DomainError as exc:
            context["error"] = exc.detail.rstrip(".")
            context["field_errors"] = [e for e in exc.errors if isinstance(e, FieldError)]
            context["kind"] = kind
        else:
            context["kind"] = kind
            context["result"] = result
            context["resource"] = _matched_resource(request, kind, result.resource_id)
            context["visible_ids"] = _visible_ids(request, [result.organisation, *result.chain])
    return render_page_or_fragment(request, "registry/lookup.html", "registry/_lookup_result.html", context)


def _matched_resource(
    request: HttpRequest, kind: str, pk: int
) -> Netblock | AutonomousSystem | Domain | None:
    """The record a lookup matched (for its description and validity), read through the same rules."""
    if kind == "ip":
        return Netblock.objects.restrict(request.user).filter(pk=pk).first()
    if kind == "asn":
        return AutonomousSystem.objects.restrict(request.user).filter(pk=pk).first()
    return Domain.objects.restrict(request.user).filter(pk=pk).first()
