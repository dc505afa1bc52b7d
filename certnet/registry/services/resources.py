"""Constituency resources: netblocks, ASNs, domains, contacts and CII systems."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.db import models, transaction

from certnet.core import audit
from certnet.core.audit import Actor, SystemActor
from certnet.core.errors import (
    Conflict,
    invalid,
)
from certnet.core.tlp import TLP
from certnet.registry.models import (
    AutonomousSystem,
    CIISystem,
    Contact,
    ContactKind,
    Designation,
    Domain,
    Netblock,
    Organisation,
)
from certnet.registry.resources import normalise_domain, parse_asn, parse_network
from certnet.registry.selectors import cii_system_named
from certnet.registry.services.common import (
    _choice,
    _day,
    _registry_tlp,
    _require,
    _require_fits,
)

# --- constituency resources ---------------------------------------------------------------------


@dataclass
class AddedResource:
    """A new resource and what it overlaps in other organisations (allowed; the most specific wins)."""

    record: Netblock | AutonomousSystem | Domain
    overlaps: list[str] = field(default_factory=list)


def _owners_as_seen_by(actor: Actor, records: list[Any]) -> list[str]:
    """'<resource> (<owner slug>)' for records the actor may see; others only say they exist, so
    registering a resource does not reveal who holds a hidden one."""
    if not records:
        return []
    model = type(records[0])
    visible = set(
        model.objects.all().values_list("pk", flat=True)
        if isinstance(actor, SystemActor)
        else model.objects.restrict(actor, "view")
        .filter(pk__in=[r.pk for r in records])
        .values_list("pk", flat=True)
    )
    return [
        f"{r} ({r.organisation.slug})" if r.pk in visible else f"{r} (another organisation)" for r in records
    ]


def _in_force_between(valid_from: dt.date) -> models.Q:
    """Records still in force on or after `valid_from` (their period overlaps an open-ended new one)."""
    return models.Q(valid_to__isnull=True) | models.Q(valid_to__gt=valid_from)


@transaction.atomic
def add_netblock(
    *,
    actor: Actor,
    organisation: Organisation,
    cidr: str,
    valid_from: dt.date | None = None,
    description: str = "",
    tlp: str | None = None,
    cii_system: str = "",
) -> AddedResource:
    _require(actor, "change", organisation)
    audit.lock_chain()
    parsed = parse_network(cidr)
    _require_fits(Netblock, {"description": description})
    system = _cii_system_named(organisation, cii_system)
    day = _day(valid_from)
    same_family = Netblock.objects.filter(_in_force_between(day), family=parsed.family)
    duplicate = same_family.filter(cidr=parsed.cidr).select_related("organisation").first()
    if duplicate is not None:
        raise Conflict(f"{parsed.cidr} is already registered: {_owners_as_seen_by(actor, [duplicate])[0]}")
    overlapping = list(
        same_family.filter(start__lte=parsed.end, end__gte=parsed.start).select_related("organisation")
    )
    own = [block.cidr for block in overlapping if block.organisation_id == organisation.pk]
    if own:
        raise Conflict(f"{parsed.cidr} overlaps {', '.join(own)}, already registered to {organisation.slug}")
    netblock = Netblock.objects.create(
        organisation=organisation,
        cidr=parsed.cidr,
        family=parsed.family,
        prefix_length=parsed.prefix_length,
        start=parsed.start,
        end=parsed.end,
        valid_from=day,
        description=description,
        cii_system=system,
        tlp=_registry_tlp(tlp, TLP.AMBER),
    )
    audit.record(
        actor=actor,
        action="registry.netblock.add",
        target=netblock,
        organisation_id=organisation.pk,
        data={
            "cidr": parsed.cidr,
            "valid_from": day,
            "cii_system": system.name if system else None,
            "overlaps": [f"{block.cidr} ({block.organisation.slug})" for block in overlapping],
        },
    )
    overlaps = _owners_as_seen_by(actor, overlapping)
    return AddedResource(netblock, overlaps)


@transaction.atomic
def add_asn(
    *,
    actor: Actor,
    organisation: Organisation,
    asn: str | int,
    valid_from: dt.date | None = None,
    name: str = "",
    tlp: str | None = None,
) -> AddedResource:
    _require(actor, "change", organisation)
    audit.lock_chain()
    number = parse_asn(asn)
    _require_fits(AutonomousSystem, {"name": name})
    day = _day(valid_from)
    existing = (
        AutonomousSystem.objects.filter(_in_force_between(day), asn=number)
        .select_related("organisation")
        .first()
    )
    if existing is not None:
        raise Conflict(f"AS{number} is already registered: {_owners_as_seen_by(actor, [existing])[0]}")
    record = AutonomousSystem.objects.create(
        organisation=organisation, asn=number, name=name, valid_from=day, tlp=_registry_tlp(tlp, TLP.GREEN)
    )
    audit.record(
        actor=actor,
        action="registry.asn.add",
        target=record,
        organisation_id=organisation.pk,
        data={"asn": number, "valid_from": day},
    )
    return AddedResource(record)


@transaction.atomic
def add_domain(
    *,
    actor: Actor,
    organisation: Organisation,
    name: str,
    valid_from: dt.date | None = None,
    tlp: str | None = None,
    cii_system: str = "",
) -> AddedResource:
    _require(actor, "change", organisation)
    audit.lock_chain()
    ascii_name, unicode_name = normalise_domain(name)
    system = _cii_system_named(organisation, cii_system)
    day = _day(valid_from)
    active = Domain.objects.filter(_in_force_between(day)).select_related("organisation")
    existing = active.filter(name=ascii_name).first()
    if existing is not None:
        raise Conflict(f"{ascii_name} is already registered: {_owners_as_seen_by(actor, [existing])[0]}")
    suffixes = [".".join(ascii_name.split(".")[i:]) for i in range(1, ascii_name.count(".") + 1)]
    related = active.filter(models.Q(name__in=suffixes) | models.Q(name__endswith="." + ascii_name))
    record = Domain.objects.create(
        organisation=organisation,
        name=ascii_name,
        unicode_name=unicode_name if unicode_name != ascii_name else "",
        valid_from=day,
        cii_system=system,
        tlp=_registry_tlp(tlp, TLP.GREEN),
    )
    related_domains = list(related)
    audit.record(
        actor=actor,
        action="registry.domain.add",
        target=record,
        organisation_id=organisation.pk,
        data={
            "name": ascii_name,
            "valid_from": day,
            "cii_system": system.name if system else None,
            "overlaps": [f"{d.name} ({d.organisation.slug})" for d in related_domains],
        },
    )
    return AddedResource(record, _owners_as_seen_by(actor, related_domains))


def _cii_system_named(organisation: Organisation, name: str) -> CIISystem | None:
    """The organisation's CII system of that name; '' for none."""
    return cii_system_named(organisation, name) if name.strip() else None


@transaction.atomic
def link_cii_system(*, actor: Actor, record: Netblock | Domain, cii_system: str) -> None:
    """Say which of its organisation's CII systems a netblock or domain serves ('' for none), so that
    feed findings in it name the system."""
    _require(actor, "change", record.organisation)
    system = _cii_system_named(record.organisation, cii_system)
    before = record.cii_system.name if record.cii_system else None
    if record.cii_system_id == (system.pk if system else None):
        return
    record.cii_system = system
    record.save(update_fields=["cii_system"])
    audit.record(
        actor=actor,
        action=f"registry.{record._meta.model_name}.cii_system",
        target=record,
        organisation_id=record.organisation_id,
        data={"resource": str(record), "from": before, "to": system.name if system else None},
    )


@transaction.atomic
def retire_resource(
    *, actor: Actor, record: Netblock | AutonomousSystem | Domain, valid_to: dt.date | None = None
) -> None:
    """The resource stops belonging to its organisation on `valid_to`; its history stays."""
    _require(actor, "change", record.organisation)
    day = _day(valid_to)
    if record.valid_to is not None:
        raise Conflict(f"{record} was already retired on {record.valid_to}")
    if day <= record.valid_from:
        raise invalid("valid_to", f"{record} became valid on {record.valid_from}; retire it after that")
    record.valid_to = day
    record.save(update_fields=["valid_to"])
    audit.record(
        actor=actor,
        action=f"registry.{record._meta.model_name}.retire",
        target=record,
        organisation_id=record.organisation_id,
        data={"resource": str(record), "valid_to": day},
    )


@transaction.atomic
def add_contact(
    *,
    actor: Actor,
    organisation: Organisation,
    kind: str,
    name: str = "",
    email: str = "",
    phone: str = "",
    pgp_fingerprint: str = "",
    pgp_key: str = "",
    available_24_7: bool = False,
    tlp: str | None = None,
) -> Contact:
    _require(actor, "change", organisation)
    _choice(kind, ContactKind, "kind")
    _require_fits(Contact, {"name": name, "email": email, "phone": phone, "pgp_key": pgp_key})
    if not email.strip() and not phone.strip():
        raise invalid("email", "a contact needs an e-mail address or a phone number")
    if email and ("@" not in email or email.startswith("@") or email.endswith("@")):
        raise invalid("email", f"{email!r} is not an e-mail address")
    fingerprint = pgp_fingerprint.replace(" ", "").upper()
    if fingerprint and (
        len(fingerprint) not in {40, 64} or any(c not in "0123456789ABCDEF" for c in fingerprint)
    ):
        raise invalid("pgp_fingerprint", "a PGP fingerprint is 40 (v4) or 64 (v5/v6) hexadecimal digits")
    contact = Contact.objects.create(
        organisation=organisation,
        kind=kind,
        name=name,
        email=email.strip().lower(),
        phone=phone.strip(),
        pgp_fingerprint=fingerprint,
        pgp_key=pgp_key,
        available_24_7=available_24_7,
        tlp=_registry_tlp(tlp, TLP.AMBER),
    )
    audit.record(
        actor=actor,
        action="registry.contact.add",
        target=contact,
        organisation_id=organisation.pk,
        data={"kind": kind, "email": contact.email, "phone": contact.phone},
    )
    return contact


@transaction.atomic
def add_cii_system(
    *,
    actor: Actor,
    organisation: Organisation,
    name: str,
    description: str = "",
    designation: Designation | None = None,
    tlp: str | None = None,
) -> CIISystem:
    _require(actor, "change", organisation)
    if not name.strip():
        raise invalid("name", "must not be empty")
    _require_fits(CIISystem, {"name": name, "description": description})
    if CIISystem.objects.filter(organisation=organisation, name=name.strip()).exists():
        raise Conflict(f"{organisation.slug} already has a CII system named {name.strip()!r}")
    if designation is not None and designation.organisation_id != organisation.pk:
        raise invalid("designation", "the designation belongs to another organisation")
    system = CIISystem.objects.create(
        organisation=organisation,
        name=name.strip(),
        description=description,
        designation=designation,
        tlp=_registry_tlp(tlp, TLP.AMBER),
    )
    audit.record(
        actor=actor,
        action="registry.cii_system.add",
        target=system,
        organisation_id=organisation.pk,
        data={"name": system.name, "designation_id": designation.pk if designation else None},
    )
    return system
