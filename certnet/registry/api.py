"""Registry endpoints. Thin: parse, call one selector or service, shape the answer."""

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status
from ninja.pagination import LimitOffsetPagination, paginate

from certnet.core import clock
from certnet.core.errors import NotFound, invalid
from certnet.core.pagination import ShapedPage
from certnet.registry import selectors, services
from certnet.registry.models import (
    AutonomousSystem,
    CIISystem,
    Contact,
    Designation,
    Domain,
    FunctionHolding,
    Netblock,
    Organisation,
)

router = Router(tags=["registry"])


# --- schemas ------------------------------------------------------------------------------------


class OrganisationRef(Schema):
    slug: str
    name: str
    kind: str


class OrganisationOut(Schema):
    slug: str
    name: str
    short_name: str
    kind: str
    sector: str
    province: str
    lead_department: str
    description: str
    website: str
    tlp: str
    reports_to: OrganisationRef | None = None
    statuses: dict[str, str] = {}


class OrganisationCreate(Schema):
    slug: str = Field(..., max_length=80)
    name: str = Field(..., max_length=200)
    kind: str
    short_name: str = ""
    sector: str = ""
    province: str = ""
    lead_department: str = ""
    description: str = ""
    website: str = ""
    tlp: str = "green"
    reports_to: str | None = None
    reports_since: dt.date | None = None


class OrganisationPatch(Schema):
    name: str | None = None
    short_name: str | None = None
    kind: str | None = None
    sector: str | None = None
    province: str | None = None
    lead_department: str | None = None
    description: str | None = None
    website: str | None = None
    tlp: str | None = None


class OrganisationFilters(Schema):
    kind: str | None = None
    sector: str | None = None
    province: str | None = None
    status: str | None = None
    search: str | None = Field(None, alias="q")


class ReportingLineIn(Schema):
    parent: str | None
    effective: dt.date
    reference: str = ""
    via_function: str | None = None


class HierarchyOut(Schema):
    organisation: OrganisationRef
    at: dt.date
    chain: list[OrganisationRef]
    constituents: list[OrganisationRef]


class DesignationEventOut(Schema):
    event: str
    from_status: str
    to_status: str
    effective_on: dt.date
    reference: str
    note: str
    actor: str


class DesignationOut(Schema):
    kind: str
    status: str
    scope: str
    designating_authority: str | None
    legal_basis: str
    grade: str
    review_due: dt.date | None
    gazette_reference: str
    notified_on: dt.date | None
    events: list[DesignationEventOut]


class DesignationCreate(Schema):
    kind: str
    scope: str = ""
    designating_authority: str | None = None
    legal_basis: str = ""
    grade: str = ""
    review_due: dt.date | None = None
    proposed_on: dt.date | None = None
    reference: str = ""


class TransitionIn(Schema):
    to_status: str
    effective_on: dt.date | None = None
    reference: str = ""
    gazette_reference: str = ""
    note: str = ""


class ReviewIn(Schema):
    reviewed_on: dt.date
    reference: str = ""
    note: str = ""
    grade: str | None = None
    next_review_due: dt.date | None = None


class NetblockOut(Schema):
    id: int
    organisation: str
    cidr: str
    family: int
    prefix_length: int
    description: str
    valid_from: dt.date
    valid_to: dt.date | None
    tlp: str
    cii_system: str | None = Field(None, description="the CII system it serves, where you may see it")


class NetblockIn(Schema):
    cidr: str
    valid_from: dt.date | None = None
    description: str = ""
    tlp: str | None = None
    cii_system: str = Field("", description="the name of one of the organisation's CII systems")


class AsnOut(Schema):
    id: int
    organisation: str
    asn: int
    name: str
    valid_from: dt.date
    valid_to: dt.date | None


class AsnIn(Schema):
    asn: int | str
    name: str = ""
    valid_from: dt.date | None = None


class DomainOut(Schema):
    id: int
    organisation: str
    name: str
    unicode_name: str
    valid_from: dt.date
    valid_to: dt.date | None
    cii_system: str | None = Field(None, description="the CII system it serves, where you may see it")


class DomainIn(Schema):
    name: str
    valid_from: dt.date | None = None
    cii_system: str = Field("", description="the name of one of the organisation's CII systems")


class CIISystemLinkIn(Schema):
    cii_system: str = Field(description="the name of one of the organisation's CII systems; '' for none")


class RetireIn(Schema):
    valid_to: dt.date | None = None


class ContactOut(Schema):
    id: int
    kind: str
    name: str
    email: str
    phone: str
    pgp_fingerprint: str
    available_24_7: bool
    tlp: str


class ContactIn(Schema):
    kind: str
    name: str = ""
    email: str = ""
    phone: str = ""
    pgp_fingerprint: str = ""
    pgp_key: str = ""
    available_24_7: bool = False
    tlp: str | None = None


class AddedOut(Schema):
    id: int
    overlaps: list[str]


class LookupOut(Schema):
    query: str
    kind: str
    at: dt.date
    matched: str
    organisation: OrganisationRef
    chain: list[OrganisationRef]


# --- shaping ------------------------------------------------------------------------------------


def _ref(org: Organisation) -> dict[str, str]:
    return {"slug": org.slug, "name": org.name, "kind": org.kind}


def _organisations_out(request: HttpRequest, organisations: list[Organisation]) -> list[dict[str, Any]]:
    ids = [org.pk for org in organisations]
    statuses = selectors.designation_statuses(request.user, ids)
    parents = selectors.visible_parents(request.user, ids)
    result = []
    for org in organisations:
        data = {
            f: getattr(org, f) for f in OrganisationOut.model_fields if f not in {"reports_to", "statuses"}
        }
        data["reports_to"] = _ref(parents[org.pk]) if org.pk in parents else None
        data["statuses"] = statuses.get(org.pk, {})
        result.append(data)
    return result


def _organisation_out(request: HttpRequest, org: Organisation) -> dict[str, Any]:
    return _organisations_out(request, [org])[0]


def _designation_out(request: HttpRequest, designation: Designation) -> dict[str, Any]:
    authority = designation.designating_authority
    if (
        authority is not None
        and not selectors.visible_organisations(request.user).filter(pk=authority.pk).exists()
    ):
        authority = None
    return {
        **{
            f: getattr(designation, f)
            for f in DesignationOut.model_fields
            if f not in {"designating_authority", "events"}
        },
        "designating_authority": authority.slug if authority else None,
        "events": [
            {
                "event": e.event,
                "from_status": e.from_status,
                "to_status": e.to_status,
                "effective_on": e.effective_on,
                "reference": e.reference,
                "note": e.note,
                "actor": e.actor_label,
            }
            for e in designation.events.all()
        ],
    }


def _access_designation(request: HttpRequest, slug: str, kind: str) -> Designation:
    organisation = selectors.access_organisation(request.user, slug)
    designation = (
        Designation.objects.restrict(request.user).filter(organisation=organisation, kind=kind).first()
    )
    if designation is None:
        raise NotFound(f"{slug} has no {kind} designation you may see")
    return designation


# --- organisations ------------------------------------------------------------------------------


@router.get("/organisations", response=list[OrganisationOut], summary="Organisations you may see")
@paginate(LimitOffsetPagination)
def list_organisations(request: HttpRequest, filters: Query[OrganisationFilters]) -> Any:
    queryset = selectors.filter_organisations(
        request.user, selectors.visible_organisations(request.user), **filters.model_dump()
    )
    return ShapedPage(queryset, lambda page: _organisations_out(request, page))


@router.post("/organisations", response={201: OrganisationOut}, summary="Register an organisation")
def create_organisation(request: HttpRequest, payload: OrganisationCreate) -> Status[dict[str, Any]]:
    organisation = services.create_organisation(
        actor=request.user,
        data=services.OrganisationInput(**payload.model_dump()),
    )
    return Status(201, _organisation_out(request, organisation))


@router.get("/organisations/{slug}", response=OrganisationOut)
def get_organisation(request: HttpRequest, slug: str) -> dict[str, Any]:
    return _organisation_out(request, selectors.access_organisation(request.user, slug))


@router.patch("/organisations/{slug}", response=OrganisationOut)
def update_organisation(request: HttpRequest, slug: str, payload: OrganisationPatch) -> dict[str, Any]:
    organisation = selectors.access_organisation(request.user, slug)
    changes = payload.model_dump(exclude_none=True)
    organisation = services.update_organisation(
        actor=request.user, organisation=organisation, changes=changes
    )
    return _organisation_out(request, organisation)


@router.get(
    "/organisations/{slug}/hierarchy",
    response=HierarchyOut,
    summary="The CERT chain above and the constituents below, as of a date",
)
def hierarchy(request: HttpRequest, slug: str, at: dt.date | None = None) -> dict[str, Any]:
    organisation = selectors.access_organisation(request.user, slug)
    day = at or clock.today()
    return {
        "organisation": _ref(organisation),
        "at": day,
        "chain": [_ref(o) for o in selectors.chain_of(organisation, day, request.user)],
        "constituents": [_ref(o) for o in selectors.constituents_of(request.user, organisation, day)],
    }


@router.post(
    "/organisations/{slug}/reporting-line",
    response=HierarchyOut,
    summary="Change whom an organisation reports to, from a date",
)
def set_reporting_line(request: HttpRequest, slug: str, payload: ReportingLineIn) -> dict[str, Any]:
    organisation = selectors.access_organisation(request.user, slug)
    parent = selectors.access_organisation(request.user, payload.parent) if payload.parent else None
    services.set_reporting_line(
        actor=request.user,
        organisation=organisation,
        parent=parent,
        effective=payload.effective,
        reference=payload.reference,
        via_function=payload.via_function,
    )
    return hierarchy(request, slug, payload.effective)


# --- designations -------------------------------------------------------------------------------


@router.get("/organisations/{slug}/designations", response=list[DesignationOut])
def list_designations(request: HttpRequest, slug: str) -> list[dict[str, Any]]:
    organisation = selectors.access_organisation(request.user, slug)
    return [
        _designation_out(request, d)
        for d in Designation.objects.restrict(request.user).filter(organisation=organisation)
    ]


@router.post("/organisations/{slug}/designations", response={201: DesignationOut})
def propose_designation(
    request: HttpRequest, slug: str, payload: DesignationCreate
) -> Status[dict[str, Any]]:
    organisation = selectors.access_organisation(request.user, slug)
    designation = services.propose_designation(
        actor=request.user,
        organisation=organisation,
        data=services.DesignationInput(**payload.model_dump()),
    )
    return Status(201, _designation_out(request, designation))


@router.post(
    "/organisations/{slug}/designations/{kind}/transitions",
    response=DesignationOut,
    summary="Move a designation one lifecycle step",
)
def transition_designation(
    request: HttpRequest, slug: str, kind: str, payload: TransitionIn
) -> dict[str, Any]:
    designation = _access_designation(request, slug, kind)
    designation = services.transition_designation(
        actor=request.user,
        designation=designation,
        **payload.model_dump(),
    )
    return _designation_out(request, designation)


@router.post(
    "/organisations/{slug}/designations/{kind}/reviews",
    response=DesignationOut,
    summary="Record the annual review of a CII designation",
)
def review_designation(request: HttpRequest, slug: str, kind: str, payload: ReviewIn) -> dict[str, Any]:
    designation = _access_designation(request, slug, kind)
    designation = services.record_designation_review(
        actor=request.user,
        designation=designation,
        **payload.model_dump(),
    )
    return _designation_out(request, designation)


# --- resources ----------------------------------------------------------------------------------


def _resources(request: HttpRequest, model: Any, slug: str | None, at: dt.date | None) -> QuerySet[Any]:
    owner = selectors.access_organisation(request.user, slug) if slug else None
    return selectors.visible_resources(request.user, model, organisation=owner, at=at)


class NetblockFilters(Schema):
    organisation: str | None = None
    family: int | None = None
    contains: str | None = Field(None, description="only netblocks that contain this address or network")
    at: dt.date | None = None


@router.get("/netblocks", response=list[NetblockOut])
@paginate(LimitOffsetPagination)
def list_netblocks(request: HttpRequest, filters: Query[NetblockFilters]) -> Any:
    queryset = _resources(request, Netblock, filters.organisation, filters.at)
    if filters.family is not None:
        if filters.family not in (4, 6):
            raise invalid("family", "must be 4 or 6")
        queryset = queryset.filter(family=filters.family)
    if filters.contains:
        queryset = selectors.netblocks_containing(queryset, filters.contains)
    return ShapedPage(queryset, lambda page: _resources_out(request, page, NetblockOut))


def _resources_out(request: HttpRequest, page: Iterable[Any], schema: type[Schema]) -> list[dict[str, Any]]:
    """The records as `schema`, naming their CII system only where the user may see that system."""
    records = list(page)
    linked = {r.cii_system_id for r in records if getattr(r, "cii_system_id", None)}
    systems = dict(
        CIISystem.objects.restrict(request.user).filter(pk__in=linked).values_list("pk", "name")
        if linked
        else []
    )
    plain = [f for f in schema.model_fields if f not in ("organisation", "cii_system")]
    return [
        {
            **{f: getattr(r, f) for f in plain},
            "organisation": r.organisation.slug,
            "cii_system": systems.get(getattr(r, "cii_system_id", None) or 0),
        }
        for r in records
    ]


@router.get("/organisations/{slug}/netblocks", response=list[NetblockOut])
def organisation_netblocks(request: HttpRequest, slug: str, at: dt.date | None = None) -> Any:
    return _resources_out(request, _resources(request, Netblock, slug, at), NetblockOut)


@router.post(
    "/organisations/{slug}/netblocks",
    response={201: AddedOut},
    summary="Add a netblock; overlaps with other organisations are allowed and listed",
)
def add_netblock(request: HttpRequest, slug: str, payload: NetblockIn) -> Status[dict[str, Any]]:
    organisation = selectors.access_organisation(request.user, slug)
    added = services.add_netblock(actor=request.user, organisation=organisation, **payload.model_dump())
    return Status(201, {"id": added.record.pk, "overlaps": added.overlaps})


@router.post("/netblocks/{netblock_id}/retire", response=NetblockOut)
def retire_netblock(request: HttpRequest, netblock_id: int, payload: RetireIn) -> Any:
    netblock = Netblock.objects.restrict(request.user).filter(pk=netblock_id).first()
    if netblock is None:
        raise NotFound(f"no netblock {netblock_id}")
    services.retire_resource(actor=request.user, record=netblock, valid_to=payload.valid_to)
    return _resources_out(request, [netblock], NetblockOut)[0]


def _link_cii_system(
    request: HttpRequest, model: type[Netblock] | type[Domain], record_id: int, cii_system: str
) -> dict[str, Any]:
    record = model.objects.restrict(request.user).filter(pk=record_id).select_related("organisation").first()
    if record is None:
        raise NotFound(f"no {model._meta.verbose_name} {record_id}")
    services.link_cii_system(actor=request.user, record=record, cii_system=cii_system)
    return _resources_out(request, [record], NetblockOut if model is Netblock else DomainOut)[0]


@router.post(
    "/netblocks/{netblock_id}/cii-system",
    response=NetblockOut,
    summary="Say which of its organisation's CII systems the netblock serves ('' for none)",
)
def link_netblock_cii_system(request: HttpRequest, netblock_id: int, payload: CIISystemLinkIn) -> Any:
    return _link_cii_system(request, Netblock, netblock_id, payload.cii_system)


@router.post(
    "/domains/{domain_id}/cii-system",
    response=DomainOut,
    summary="Say which of its organisation's CII systems the domain serves ('' for none)",
)
def link_domain_cii_system(request: HttpRequest, domain_id: int, payload: CIISystemLinkIn) -> Any:
    return _link_cii_system(request, Domain, domain_id, payload.cii_system)


def _simple_out(record: AutonomousSystem, schema: type[Schema]) -> dict[str, Any]:
    return {
        **{f: getattr(record, f) for f in schema.model_fields if f != "organisation"},
        "organisation": record.organisation.slug,
    }


@router.get("/asns", response=list[AsnOut])
@paginate(LimitOffsetPagination)
def list_asns(request: HttpRequest, organisation: str | None = None, at: dt.date | None = None) -> Any:
    return ShapedPage(
        _resources(request, AutonomousSystem, organisation, at),
        lambda page: [_simple_out(r, AsnOut) for r in page],
    )


@router.post("/organisations/{slug}/asns", response={201: AddedOut})
def add_asn(request: HttpRequest, slug: str, payload: AsnIn) -> Status[dict[str, Any]]:
    organisation = selectors.access_organisation(request.user, slug)
    added = services.add_asn(actor=request.user, organisation=organisation, **payload.model_dump())
    return Status(201, {"id": added.record.pk, "overlaps": added.overlaps})


@router.get("/domains", response=list[DomainOut])
@paginate(LimitOffsetPagination)
def list_domains(request: HttpRequest, organisation: str | None = None, at: dt.date | None = None) -> Any:
    return ShapedPage(
        _resources(request, Domain, organisation, at), lambda page: _resources_out(request, page, DomainOut)
    )


@router.post("/organisations/{slug}/domains", response={201: AddedOut})
def add_domain(request: HttpRequest, slug: str, payload: DomainIn) -> Status[dict[str, Any]]:
    organisation = selectors.access_organisation(request.user, slug)
    added = services.add_domain(actor=request.user, organisation=organisation, **payload.model_dump())
    return Status(201, {"id": added.record.pk, "overlaps": added.overlaps})


@router.get("/organisations/{slug}/contacts", response=list[ContactOut])
def list_contacts(request: HttpRequest, slug: str) -> Any:
    organisation = selectors.access_organisation(request.user, slug)
    return list(Contact.objects.restrict(request.user).filter(organisation=organisation))


@router.post("/organisations/{slug}/contacts", response={201: ContactOut})
def add_contact(request: HttpRequest, slug: str, payload: ContactIn) -> Status[Contact]:
    organisation = selectors.access_organisation(request.user, slug)
    return Status(
        201, services.add_contact(actor=request.user, organisation=organisation, **payload.model_dump())
    )


# --- lookup -------------------------------------------------------------------------------------


@router.get(
    "/lookup",
    response=LookupOut,
    summary="Who held an IP address, AS number or domain on a date, and its CERT chain",
)
def lookup(
    request: HttpRequest,
    ip: str | None = None,
    asn: str | None = None,
    domain: str | None = None,
    at: dt.date | None = None,
) -> dict[str, Any]:
    given = {k: v for k, v in {"ip": ip, "asn": asn, "domain": domain}.items() if v}
    if len(given) != 1:
        raise invalid("query", "give exactly one of ip=, asn= or domain=")
    kind, query = next(iter(given.items()))
    result = selectors.lookup(request.user, query, kind, at)
    return result.as_dict()


# --- functions ----------------------------------------------------------------------------------


class FunctionHoldingOut(Schema):
    function: str
    function_name: str
    organisation: OrganisationRef
    valid_from: dt.date
    valid_to: dt.date | None
    reference: str


class FunctionAssignIn(Schema):
    organisation: str
    effective: dt.date
    reference: str = ""


def _holding_out(holding: FunctionHolding) -> dict[str, Any]:
    return {
        "function": holding.function.slug,
        "function_name": holding.function.name,
        "organisation": _ref(holding.organisation),
        "valid_from": holding.valid_from,
        "valid_to": holding.valid_to,
        "reference": holding.reference,
    }


@router.get(
    "/functions",
    response=list[FunctionHoldingOut],
    summary="Which body held each framework function on a date",
)
def list_functions(request: HttpRequest, at: dt.date | None = None) -> list[dict[str, Any]]:
    return [_holding_out(holding) for holding in selectors.visible_function_holdings(request.user, at)]


@router.post(
    "/functions/{function_slug}/assign",
    response=FunctionHoldingOut,
    summary="Move a function to another body from a date (platform administrators)",
)
def assign_function(request: HttpRequest, function_slug: str, payload: FunctionAssignIn) -> dict[str, Any]:
    organisation = selectors.access_organisation(request.user, payload.organisation)
    holding = services.assign_function(
        actor=request.user,
        function_slug=function_slug,
        organisation=organisation,
        effective=payload.effective,
        reference=payload.reference,
    )
    return _holding_out(holding)
