"""A published intel report's objects land in the collection(s) of its audience, through the
report_published signal, and what lands there is read through visibility like everything else."""

from __future__ import annotations

import pytest
from django.db import transaction

from certnet.core import clock
from certnet.core.models import AuditEntry
from certnet.core.tlp import TLP
from certnet.intel.models import IntelReport
from certnet.intel.signals import report_published
from certnet.taxii.models import Audience, TaxiiCollection, TaxiiObject
from certnet.taxii.tests.conftest import indicator

pytestmark = pytest.mark.django_db


def report(world, audience, *, tlp=TLP.AMBER, sectors=(), provinces=(), shared_with=()):
    orgs, people, _, _ = world
    now = clock.now()
    made = IntelReport.objects.create(
        title="Banking trojan C2",
        owner=orgs["bank-lahore"],
        created_by=people["bank-lahore"],
        tlp=tlp,
        audience=audience,
        sectors=list(sectors),
        provinces=list(provinces),
        published_at=now,
        updated_at=now,
    )
    made.shared_with.set([orgs[slug] for slug in shared_with])
    return made


def publish(world, made, objects):
    with transaction.atomic():  # the publishing service sends it inside its transaction
        report_published.send(sender=IntelReport, report=made, objects=objects, actor=world[1]["bank-lahore"])


def report_objects(made):
    amber = indicator("203.0.113.10", marking=TLP.AMBER.stix_marking_id)
    green = indicator("203.0.113.11", marking=TLP.GREEN.stix_marking_id)
    unmarked = indicator("203.0.113.12")
    marking = {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": TLP.AMBER.stix_marking_id,
        "created": "2022-10-01T00:00:00.000Z",
        "name": "TLP:AMBER",
        "extensions": {},
    }
    stix_report = {
        "type": "report",
        "spec_version": "2.1",
        "id": f"report--{made.stix_id}",
        "created": "2025-03-01T00:00:00.000Z",
        "modified": "2025-03-01T00:00:00.000Z",
        "name": made.title,
        "published": "2025-03-01T00:00:00.000Z",
        "object_refs": [amber["id"], green["id"], unmarked["id"]],
    }
    return [marking, stix_report, amber, green, unmarked]


def test_a_sector_report_goes_to_the_sector_collection(world, taxii_as):
    orgs = world[0]
    made = report(world, "sectors", sectors=["finance"], shared_with=["bank-lahore", "bank-karachi"])
    objects = report_objects(made)
    publish(world, made, objects)
    finance = world[3]["finance"]
    rows = {row.stix_id: row for row in TaxiiObject.objects.filter(collection=finance)}
    assert set(rows) == {body["id"] for body in objects}
    marking, stix_report, amber, green, unmarked = objects
    assert rows[marking["id"]].tlp == TLP.CLEAR  # a marking definition is public
    assert rows[amber["id"]].tlp == TLP.AMBER
    assert rows[green["id"]].tlp == TLP.GREEN  # its own marking, not the report's
    assert rows[unmarked["id"]].tlp == TLP.AMBER  # the report's TLP
    assert rows[stix_report["id"]].tlp == TLP.AMBER
    assert {row.owner_id for row in rows.values()} == {orgs["bank-lahore"].pk}
    assert set(rows[amber["id"]].shared_with.values_list("slug", flat=True)) == {
        "bank-lahore",
        "bank-karachi",
    }
    assert rows[amber["id"]].body == amber
    # nothing anywhere else
    assert TaxiiObject.objects.exclude(collection=finance).count() == 0
    entry = AuditEntry.objects.filter(action="taxii.objects.place").get()
    assert entry.object_id == str(finance.pk)
    assert entry.data["added"] == 5
    # the sector's other bank reads it over TAXII; a mill elsewhere may not read the collection
    seen = taxii_as("bank-karachi").get(f"api/collections/{finance.pk}/objects/").json()["objects"]
    assert {obj["id"] for obj in seen} == set(rows)
    assert taxii_as("mill").get(f"api/collections/{finance.pk}/objects/").status_code == 403


def test_publishing_again_adds_no_copies(world):
    made = report(world, "sectors", sectors=["finance"], shared_with=["bank-lahore", "bank-karachi"])
    objects = report_objects(made)
    publish(world, made, objects)
    publish(world, made, objects)
    assert TaxiiObject.objects.count() == 5


def test_a_province_report_goes_to_each_province(world):
    made = report(
        world, "provinces", provinces=["punjab", "sindh"], shared_with=["bank-lahore", "mill-multan"]
    )
    publish(world, made, report_objects(made))
    targets = set(TaxiiObject.objects.values_list("collection__target", flat=True))
    assert targets == {"punjab", "sindh"}


def test_a_community_report_goes_to_the_community_collection(world, taxii_as):
    made = report(world, "community", tlp=TLP.GREEN)
    objects = [indicator("203.0.113.20")]
    publish(world, made, objects)
    community = world[3]["community"]
    assert TaxiiObject.objects.get().collection == community
    seen = taxii_as("mill").get(f"api/collections/{community.pk}/objects/").json()["objects"]
    assert seen == objects


def test_a_report_to_organisations_makes_their_collections(world, taxii_as):
    made = report(world, "organisations", shared_with=["bank-karachi", "mill-multan"])
    publish(world, made, [indicator("203.0.113.30")])
    made_for = TaxiiCollection.objects.filter(audience=Audience.ORGANISATION)
    assert set(made_for.values_list("target", flat=True)) == {"bank-karachi", "mill-multan"}
    karachi = made_for.get(target="bank-karachi")
    assert karachi.title == "Bank Karachi"
    assert taxii_as("bank-karachi").get(f"api/collections/{karachi.pk}/objects/").json()["objects"]
    assert taxii_as("sindh").get(f"api/collections/{karachi.pk}/").status_code == 200  # the CERT above
    assert taxii_as("mill").get(f"api/collections/{karachi.pk}/").status_code == 403


def test_a_report_kept_by_its_owner_goes_nowhere(world):
    made = report(world, "owner")
    publish(world, made, [indicator("203.0.113.40")])
    assert TaxiiObject.objects.count() == 0


def test_the_intel_publishing_service_fills_the_collection(world, taxii_as):
    """The whole way: an analyst records an indicator and publishes it to the finance sector."""
    from certnet.intel.services.indicators import IndicatorInput, record_indicators
    from certnet.intel.services.reports import ReportInput, publish_intel_report

    _, people, _, collections = world
    analyst = people["bank-lahore"]
    recorded = record_indicators(
        actor=analyst, owner="bank-lahore", items=[IndicatorInput(kind="ipv4", value="203.0.113.50")]
    )
    publish_intel_report(
        actor=analyst,
        spec=ReportInput(
            owner="bank-lahore",
            title="Finance C2",
            tlp="amber",
            audience="sectors",
            sectors=["finance"],
            indicators=[recorded.created[0].pk],
        ),
    )
    finance = collections["finance"]
    types = set(TaxiiObject.objects.filter(collection=finance).values_list("type", flat=True))
    assert {"indicator", "report", "marking-definition"} <= types
    seen = taxii_as("bank-karachi").get(
        f"api/collections/{finance.pk}/objects/", {"match[type]": "indicator"}
    )
    patterns = [obj["pattern"] for obj in seen.json()["objects"]]
    assert patterns == ["[ipv4-addr:value = '203.0.113.50']"]
    assert taxii_as("sindh").get(
        f"api/collections/{finance.pk}/objects/", {"match[type]": "indicator"}
    ).json() == {"more": False}
