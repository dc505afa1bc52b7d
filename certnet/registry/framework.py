"""Loading a framework file (the bodies of a national CERT network, their functions, designations, the
council and the legal basis) into the registry.

The whole file is validated first, structurally (pydantic) and across references (slugs, reporting
cycles, lifecycle steps); every problem is reported with its path and nothing is written. A valid file
is applied in one transaction through the registry services, so each change is audited. Loading the
same file again changes nothing."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any, Literal

import yaml
from django.db import transaction
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from certnet.core import audit, clock
from certnet.core.audit import SystemActor
from certnet.core.errors import FieldError, InvalidInput
from certnet.core.tlp import TLP
from certnet.registry import services
from certnet.registry.models import (
    CouncilSeat,
    Designation,
    DesignationKind,
    DesignationStatus,
    FrameworkLoad,
    Function,
    LegalInstrument,
    Organisation,
    OrganisationKind,
    ReportingLine,
)

LOADER = SystemActor("framework-loader")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Provision(_Strict):
    ref: str
    title: str
    note: str = ""


class LegalInstrumentSpec(_Strict):
    slug: str = Field(pattern=r"^[a-z0-9-]+$")
    title: str
    year: int = Field(ge=1900, le=2100)
    provisions: list[Provision] = []


class FunctionSpec(_Strict):
    slug: str = Field(pattern=r"^[a-z0-9-]+$")
    name: str
    description: str = ""


class FunctionHeld(_Strict):
    function: str
    since: dt.date
    reference: str = ""


class HistoryStep(_Strict):
    status: DesignationStatus
    date: dt.date
    reference: str = ""
    gazette_reference: str = ""
    note: str = ""


def _check_tlp(value: str) -> str:
    tlp = TLP.parse(value)
    if tlp == TLP.RED:
        raise ValueError("registry records cannot be TLP:RED; use amber+strict")
    return str(tlp)


class DesignationSpec(_Strict):
    kind: DesignationKind
    scope: str = ""
    designating_authority: str | None = None
    legal_basis: str = ""
    grade: str = ""
    review_due: dt.date | None = None
    tlp: str = "green"
    history: list[HistoryStep] = Field(min_length=1)

    validate_tlp = field_validator("tlp")(_check_tlp)


class OrganisationSpec(_Strict):
    slug: str = Field(pattern=r"^[a-z0-9-]+$", max_length=80)
    name: str = Field(min_length=1)
    short_name: str = ""
    kind: OrganisationKind
    sector: str = ""
    province: str = ""
    lead_department: str = ""
    lead_body: str | None = None
    description: str = ""
    website: str = ""
    tlp: str = "clear"
    reports_to: str | None = None
    validate_tlp = field_validator("tlp")(_check_tlp)
    reports_since: dt.date | None = None
    via_function: str | None = None
    functions: list[FunctionHeld] = []
    designations: list[DesignationSpec] = []


class SeatSpec(_Strict):
    number: int = Field(ge=1)
    title: str
    category: Literal[
        "chair", "ministry", "division", "regulator", "cert", "academia", "industry", "civil-society", "other"
    ]
    holder: str | None = None
    holder_title: str = ""
    confirmed: bool = True
    note: str = ""


class CouncilSpec(_Strict):
    body: str
    seat_count: int = Field(ge=1)
    seats: list[SeatSpec]


class FrameworkMeta(_Strict):
    name: str
    version: str
    country: str = Field(pattern=r"^[A-Z]{2}$")
    title: str = ""
    as_of: dt.date
    sources: list[str] = []
    notes: list[str] = []


class FrameworkFile(_Strict):
    framework: FrameworkMeta
    legal_instruments: list[LegalInstrumentSpec] = []
    functions: list[FunctionSpec] = []
    organisations: list[OrganisationSpec]
    council: CouncilSpec | None = None


def _loc(parts: tuple[int | str, ...]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def parse_framework(text: str, *, source: str = "framework") -> FrameworkFile:
    """Parse and validate a framework file; raise InvalidInput listing every problem with its path."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        raise InvalidInput(
            f"{source} is not valid YAML ({where})",
            errors=[FieldError(where, str(getattr(exc, "problem", exc)))],
        ) from None
    if not isinstance(raw, dict):
        raise InvalidInput(
            f"{source} must hold a mapping at the top level",
            errors=[FieldError("", "expected a mapping with 'framework' and 'organisations'")],
        )
    try:
        spec = FrameworkFile.model_validate(raw)
    except ValidationError as exc:
        errors = [FieldError(_loc(tuple(err["loc"])), err["msg"]) for err in exc.errors()]
        raise InvalidInput(f"{source} has {len(errors)} error(s)", errors=errors) from None
    errors = _cross_check(spec)
    if errors:
        raise InvalidInput(f"{source} has {len(errors)} error(s)", errors=errors)
    return spec


def _cross_check(spec: FrameworkFile) -> list[FieldError]:
    from certnet.registry.services import TRANSITIONS

    errors: list[FieldError] = []
    slugs: dict[str, int] = {}
    for i, org in enumerate(spec.organisations):
        if org.slug in slugs:
            errors.append(
                FieldError(
                    f"organisations[{i}].slug",
                    f"{org.slug!r} is already used by organisations[{slugs[org.slug]}]",
                )
            )
        slugs.setdefault(org.slug, i)
    functions = {f.slug for f in spec.functions}
    for i, org in enumerate(spec.organisations):
        at = f"organisations[{i}]"
        for name in ("reports_to", "lead_body"):
            target = getattr(org, name)
            if target is not None and target not in slugs:
                errors.append(FieldError(f"{at}.{name}", f"no organisation {target!r} in this file"))
        if org.reports_to == org.slug:
            errors.append(FieldError(f"{at}.reports_to", "an organisation cannot report to itself"))
        if org.via_function and org.via_function not in functions:
            errors.append(FieldError(f"{at}.via_function", f"no function {org.via_function!r} in this file"))
        for j, held in enumerate(org.functions):
            if held.function not in functions:
                errors.append(FieldError(f"{at}.functions[{j}].function", f"no function {held.function!r}"))
        kinds = [d.kind for d in org.designations]
        for j, designation in enumerate(org.designations):
            dat = f"{at}.designations[{j}]"
            if kinds.count(designation.kind) > 1 and kinds.index(designation.kind) != j:
                errors.append(FieldError(f"{dat}.kind", f"a second {designation.kind} designation"))
            if designation.kind == DesignationKind.CERT and not OrganisationKind(org.kind).is_cert:
                errors.append(FieldError(f"{dat}.kind", f"{org.slug} is a {org.kind}, not a CERT"))
            auth = designation.designating_authority
            if auth is not None and auth not in slugs:
                errors.append(FieldError(f"{dat}.designating_authority", f"no organisation {auth!r}"))
            steps = designation.history
            for k in range(1, len(steps)):
                before, after = steps[k - 1], steps[k]
                if after.status not in TRANSITIONS[before.status]:
                    errors.append(
                        FieldError(
                            f"{dat}.history[{k}].status", f"cannot go from {before.status} to {after.status}"
                        )
                    )
                needed = services.REQUIRED_FOR.get(str(after.status))
                if needed and not getattr(after, needed[0]).strip():
                    errors.append(
                        FieldError(
                            f"{dat}.history[{k}].{needed[0]}",
                            f"becoming {after.status} must cite {needed[1]}",
                        )
                    )
                if after.date < before.date:
                    errors.append(
                        FieldError(f"{dat}.history[{k}].date", f"{after.date} is before {before.date}")
                    )
    errors.extend(_cycle_errors(spec, slugs))
    if spec.council is not None:
        errors.extend(_council_errors(spec.council, slugs))
    return errors


def _cycle_errors(spec: FrameworkFile, slugs: dict[str, int]) -> list[FieldError]:
    parent = {org.slug: org.reports_to for org in spec.organisations if org.reports_to in slugs}
    errors = []
    reported: set[str] = set()
    for start in parent:
        path, current = [start], parent.get(start)
        while current is not None and current not in path:
            path.append(current)
            current = parent.get(current)
        if current is not None and current == start and not reported & set(path):
            reported.update(path)
            errors.append(
                FieldError(
                    f"organisations[{slugs[start]}].reports_to",
                    "reporting cycle: " + " → ".join([*path, start]),
                )
            )
    return errors


def _council_errors(council: CouncilSpec, slugs: dict[str, int]) -> list[FieldError]:
    errors = []
    if council.body not in slugs:
        errors.append(FieldError("council.body", f"no organisation {council.body!r}"))
    if len(council.seats) != council.seat_count:
        errors.append(
            FieldError(
                "council.seats", f"{len(council.seats)} seats listed, seat_count says {council.seat_count}"
            )
        )
    numbers: set[int] = set()
    for i, seat in enumerate(council.seats):
        if seat.number in numbers:
            errors.append(FieldError(f"council.seats[{i}].number", f"seat {seat.number} listed twice"))
        numbers.add(seat.number)
        if seat.holder is not None and seat.holder not in slugs:
            errors.append(FieldError(f"council.seats[{i}].holder", f"no organisation {seat.holder!r}"))
    return errors


# --- applying a valid file ----------------------------------------------------------------------


def load_framework_file(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    return load_framework(text, source=str(path))


@transaction.atomic
def load_framework(text: str, *, source: str = "framework") -> dict[str, Any]:
    """Validate and apply; return a summary of what was created or changed."""
    spec = parse_framework(text, source=source)
    summary: dict[str, int] = {"created": 0, "updated": 0, "unchanged": 0}
    for instrument in spec.legal_instruments:
        _upsert_audited(
            LegalInstrument,
            instrument.slug,
            {
                "title": instrument.title,
                "year": instrument.year,
                "provisions": [p.model_dump() for p in instrument.provisions],
            },
        )
    for function in spec.functions:
        _upsert_audited(Function, function.slug, {"name": function.name, "description": function.description})
    by_slug: dict[str, Organisation] = {}
    for org in spec.organisations:
        by_slug[org.slug] = _upsert_organisation(org, summary)
    for org in spec.organisations:
        _apply_links(org, by_slug)
    if spec.council is not None:
        _apply_council(spec.council, by_slug)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    load = FrameworkLoad.objects.create(
        name=spec.framework.name,
        version=spec.framework.version,
        sha256=digest,
        loaded_at=clock.now(),
        actor_label=LOADER.get_username(),
        summary=summary,
    )
    audit.record(
        actor=LOADER,
        action="registry.framework.load",
        target=load,
        data={
            "source": source,
            "name": spec.framework.name,
            "version": spec.framework.version,
            "sha256": digest,
            **summary,
        },
    )
    return {
        "name": spec.framework.name,
        "version": spec.framework.version,
        "sha256": digest,
        "organisations": len(spec.organisations),
        **summary,
    }


def _upsert_audited(model: type[LegalInstrument] | type[Function], slug: str, values: dict[str, Any]) -> None:
    record = model.objects.filter(slug=slug).first()
    if record is not None and all(getattr(record, k) == v for k, v in values.items()):
        return
    record, created = model.objects.update_or_create(slug=slug, defaults=values)
    audit.record(
        actor=LOADER,
        action=f"registry.{model._meta.model_name}.{'create' if created else 'update'}",
        target=record,
        data={"slug": slug, **values},
    )


def _upsert_organisation(org: OrganisationSpec, summary: dict[str, int]) -> Organisation:
    fields = {name: getattr(org, name) for name in services.ORGANISATION_FIELDS}
    fields["kind"] = str(org.kind)
    existing = Organisation.objects.filter(slug=org.slug).first()
    if existing is None:
        summary["created"] += 1
        return services.create_organisation(
            actor=LOADER, data=services.OrganisationInput(slug=org.slug, tlp=org.tlp, **fields)
        )
    changes = {k: v for k, v in {**fields, "tlp": org.tlp}.items() if getattr(existing, k) != v}
    if changes:
        summary["updated"] += 1
        return services.update_organisation(actor=LOADER, organisation=existing, changes=changes)
    summary["unchanged"] += 1
    return existing


def _apply_links(org: OrganisationSpec, by_slug: dict[str, Organisation]) -> None:
    organisation = by_slug[org.slug]
    lead = by_slug[org.lead_body] if org.lead_body else None
    if organisation.lead_body_id != (lead.pk if lead else None):
        organisation.lead_body = lead
        organisation.save(update_fields=["lead_body"])
        audit.record(
            actor=LOADER,
            action="registry.organisation.update",
            target=organisation,
            organisation_id=organisation.pk,
            data={"lead_body": org.lead_body},
        )
    current = ReportingLine.objects.filter(organisation=organisation, valid_to__isnull=True).first()
    if not org.reports_to and current is not None:
        # The file no longer places this body under anyone: its line ends today, history stays.
        services.set_reporting_line(
            actor=LOADER, organisation=organisation, parent=None, effective=clock.today()
        )
    if org.reports_to and (current is None or current.parent_id != by_slug[org.reports_to].pk):
        services.set_reporting_line(
            actor=LOADER,
            organisation=organisation,
            parent=by_slug[org.reports_to],
            effective=org.reports_since or clock.today(),
            via_function=org.via_function,
        )
    for held in org.functions:
        services.assign_function(
            actor=LOADER,
            function_slug=held.function,
            organisation=organisation,
            effective=held.since,
            reference=held.reference,
        )
    for designation in org.designations:
        _apply_designation(organisation, designation)


def _apply_designation(organisation: Organisation, spec: DesignationSpec) -> None:
    designation = Designation.objects.filter(organisation=organisation, kind=spec.kind).first()
    first = spec.history[0]
    if designation is None:
        designation = services.propose_designation(
            actor=LOADER,
            organisation=organisation,
            data=services.DesignationInput(
                kind=str(spec.kind),
                scope=spec.scope,
                designating_authority=spec.designating_authority,
                legal_basis=spec.legal_basis,
                grade=spec.grade,
                review_due=spec.review_due,
                proposed_on=first.date,
                reference=first.reference,
                tlp=spec.tlp,
            ),
        )
        if first.status != DesignationStatus.PROPOSED:
            services.record_designation_on_file(
                actor=LOADER,
                designation=designation,
                status=str(first.status),
                effective_on=first.date,
                reference=first.reference,
                gazette_reference=first.gazette_reference,
                note=first.note or "status as recorded in the framework file",
            )
    else:
        services.update_designation_details(
            actor=LOADER,
            designation=designation,
            changes={
                "scope": spec.scope,
                "designating_authority": spec.designating_authority,
                "legal_basis": spec.legal_basis,
                "grade": spec.grade,
                "review_due": spec.review_due,
            },
        )
    applied = designation.events.exclude(event="review").count()
    already = applied - (1 if first.status != DesignationStatus.PROPOSED else 0)
    for step in spec.history[max(already, 1) :]:
        services.transition_designation(
            actor=LOADER,
            designation=designation,
            to_status=str(step.status),
            effective_on=step.date,
            reference=step.reference,
            gazette_reference=step.gazette_reference,
            note=step.note,
        )


def _apply_council(council: CouncilSpec, by_slug: dict[str, Organisation]) -> None:
    body = by_slug[council.body]
    for seat in council.seats:
        values = {
            "title": seat.title,
            "category": seat.category,
            "holder": by_slug[seat.holder] if seat.holder else None,
            "holder_title": seat.holder_title,
            "confirmed": seat.confirmed,
            "note": seat.note,
        }
        record, created = CouncilSeat.objects.get_or_create(council=body, number=seat.number, defaults=values)
        changed = {k: v for k, v in values.items() if getattr(record, k) != v}
        if changed and not created:
            for k, v in changed.items():
                setattr(record, k, v)
            record.save()
        if created or changed:
            audit.record(
                actor=LOADER,
                action="registry.council_seat.set",
                target=record,
                organisation_id=body.pk,
                data={"number": seat.number, "title": seat.title, "holder": seat.holder},
            )
