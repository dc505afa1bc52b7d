"""Demo constituents, resources and contacts (certnet/registry/framework/demo.yaml) for `setup --demo`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import yaml
from django.db import transaction

from certnet.core.audit import SystemActor
from certnet.core.errors import invalid
from certnet.registry import services
from certnet.registry.models import Contact, Netblock, Organisation

DEMO = SystemActor("demo-loader")


def read_demo(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise invalid(str(path), "the demo file must hold a mapping")
    return data


@transaction.atomic
def load_demo_registry(data: dict[str, Any]) -> int:
    """Create what is missing; return how many records were added. Running it twice adds nothing."""
    added = 0
    for org in data.get("organisations", []):
        if not Organisation.objects.filter(slug=org["slug"]).exists():
            services.create_organisation(actor=DEMO, data=services.OrganisationInput(**org))
            added += 1
    for entry in data.get("resources", []):
        organisation = Organisation.objects.get(slug=entry["organisation"])
        added += _load_resources(organisation, entry)
    return added


def _load_resources(organisation: Organisation, entry: dict[str, Any]) -> int:
    added = 0
    # Systems first: netblocks and domains name the system they serve.
    for system in entry.get("cii_systems", []):
        if not organisation.cii_systems.filter(name=system["name"]).exists():
            designation = organisation.designations.filter(kind="cii").first()
            services.add_cii_system(actor=DEMO, organisation=organisation, designation=designation, **system)
            added += 1
    for block in entry.get("netblocks", []):
        since = block.get("since", dt.date(2024, 1, 1))
        if Netblock.objects.filter(organisation=organisation, cidr=block["cidr"], valid_from=since).exists():
            continue
        result = services.add_netblock(
            actor=DEMO,
            organisation=organisation,
            cidr=block["cidr"],
            valid_from=since,
            description=block.get("description", ""),
            cii_system=block.get("cii_system", ""),
        )
        if block.get("until"):
            services.retire_resource(actor=DEMO, record=result.record, valid_to=block["until"])
        added += 1
    for asn in entry.get("asns", []):
        if not organisation.asns.filter(asn=asn["asn"]).exists():
            services.add_asn(
                actor=DEMO,
                organisation=organisation,
                asn=asn["asn"],
                name=asn.get("name", ""),
                valid_from=dt.date(2024, 1, 1),
            )
            added += 1
    for domain in entry.get("domains", []):
        if not organisation.domains.filter(name=domain["name"]).exists():
            services.add_domain(
                actor=DEMO,
                organisation=organisation,
                name=domain["name"],
                valid_from=dt.date(2024, 1, 1),
                cii_system=domain.get("cii_system", ""),
            )
            added += 1
    for contact in entry.get("contacts", []):
        if not Contact.objects.filter(
            organisation=organisation,
            kind=contact["kind"],
            email=contact.get("email", ""),
            phone=contact.get("phone", ""),
        ).exists():
            services.add_contact(actor=DEMO, organisation=organisation, **contact)
            added += 1
    return added
