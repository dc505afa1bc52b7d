"""The framework file: the seeds' facts are all there, loading is idempotent, errors list every path."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import yaml
from django.conf import settings

from certnet.core import audit
from certnet.core.errors import InvalidInput
from certnet.core.models import AuditEntry
from certnet.registry import selectors
from certnet.registry.framework import load_framework, parse_framework
from certnet.registry.models import (
    CouncilSeat,
    Designation,
    DesignationEvent,
    FrameworkLoad,
    LegalInstrument,
    Organisation,
    ReportingLine,
)

FRAMEWORK_TEXT = settings.CERTNET_FRAMEWORK_FILE.read_text(encoding="utf-8")


def _mutated(change) -> str:
    # Through JSON so that YAML anchors (shared designations) become separate copies to edit.
    data = json.loads(json.dumps(yaml.safe_load(FRAMEWORK_TEXT), default=str))
    change(data)
    return yaml.safe_dump(data, sort_keys=False)


@pytest.mark.django_db
def test_the_seeds_are_in_the_registry(framework):
    slugs = set(framework)
    assert {
        "ncert",
        "punjab-cert",
        "sindh-cert",
        "kp-cert",
        "balochistan-cert",
        "ajk-cert",
        "gb-cert",
        "defence-cert",
        "telecom-cert",
        "community-cert",
        "nadra",
        "immpass",
        "fbr",
        "pta",
        "cert-council",
        "moitt",
        "ntisb",
        "nccia",
    } <= slugs
    assert Organisation.objects.filter(kind="provincial-cert").count() == 6
    assert Organisation.objects.filter(kind="sectoral-cert").count() == 3
    punjab = framework["punjab-cert"]
    assert punjab.lead_department == "Punjab Information Technology Board (PITB)"
    assert [o.slug for o in selectors.chain_of(punjab)] == ["ncert"]
    assert [o.slug for o in selectors.chain_of(framework["pta"])] == ["telecom-cert", "ncert"]
    # NCERT is run by NTISB (Cabinet Division) and holds both functions.
    ncert = framework["ncert"]
    assert ncert.lead_body == framework["ntisb"]
    assert sorted(h.function.slug for h in selectors.functions_held(ncert)) == ["cii-cert", "government-cert"]
    assert selectors.holder_of_function("cii-cert") == ncert


@pytest.mark.django_db
def test_designations_and_their_history(framework, make_user):
    admin = make_user(platform_admin=True)
    statuses = selectors.designation_statuses(admin, (o.pk for o in framework.values()))
    assert statuses[framework["ncert"].pk] == {"cert": "operational"}
    assert statuses[framework["sindh-cert"].pk] == {"cert": "summary-submitted"}
    assert statuses[framework["telecom-cert"].pk] == {"cert": "summary-submitted"}
    assert statuses[framework["nadra"].pk] == {"cii": "notified"}
    assert statuses[framework["pta"].pk] == {"cii": "summary-submitted"}
    punjab = Designation.objects.get(organisation=framework["punjab-cert"])
    assert [(e.event, e.to_status) for e in punjab.events.all()] == [
        ("propose", "proposed"),
        ("recommend", "recommended"),
        ("submit-summary", "summary-submitted"),
    ]
    nadra = Designation.objects.get(organisation=framework["nadra"])
    assert (nadra.designating_authority.slug, nadra.review_due) == ("moi", dt.date(2026, 1, 1))
    assert selectors.is_cii_operator(framework["fbr"])
    assert not selectors.is_cii_operator(framework["pta"])


@pytest.mark.django_db
def test_council_and_legal_basis(framework):
    seats = CouncilSeat.objects.filter(council=framework["cert-council"])
    assert seats.count() == 16
    chair = seats.get(number=1)
    assert (chair.holder.slug, chair.holder_title) == ("moitt", "Federal Secretary IT & Telecom")
    held = set(seats.exclude(holder=None).values_list("holder__slug", flat=True))
    assert {"mod", "moi", "mofa", "pta", "ncert"} <= held
    peca = LegalInstrument.objects.get(slug="peca-2016")
    assert [p["ref"] for p in peca.provisions][:3] == ["s. 6", "s. 7", "s. 8"]
    assert LegalInstrument.objects.get(slug="cert-rules-2023").year == 2023


@pytest.mark.django_db
def test_loading_twice_changes_nothing(framework):
    before = (Organisation.objects.count(), ReportingLine.objects.count(), DesignationEvent.objects.count())
    summary = load_framework(FRAMEWORK_TEXT)
    assert (summary["created"], summary["updated"], summary["unchanged"]) == (0, 0, len(framework))
    after = (Organisation.objects.count(), ReportingLine.objects.count(), DesignationEvent.objects.count())
    assert after == before
    assert FrameworkLoad.objects.count() == 2
    assert audit.verify().ok


@pytest.mark.django_db
def test_a_changed_file_updates_through_the_services(framework):
    def rename(data):
        data["organisations"][0]["description"] = "changed"

    updates_before = AuditEntry.objects.filter(action="registry.organisation.update").count()
    summary = load_framework(_mutated(rename))
    assert summary["updated"] == 1
    assert Organisation.objects.get(slug="moitt").description == "changed"
    assert AuditEntry.objects.filter(action="registry.organisation.update").count() == updates_before + 1


@pytest.mark.django_db
def test_history_as_of_a_date(framework):
    # Provincial CERTs' reporting lines begin in 2025: before that date they report to nobody.
    assert selectors.chain_ids(framework["punjab-cert"].pk, dt.date(2024, 12, 31)) == []
    assert selectors.chain_ids(framework["punjab-cert"].pk, dt.date(2025, 1, 1)) == [framework["ncert"].pk]
    designation = Designation.objects.get(organisation=framework["ncert"])
    assert selectors.designation_status_on(designation, dt.date(2023, 6, 30)) is None
    assert selectors.designation_status_on(designation, dt.date(2023, 7, 1)) == "operational"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda d: d["organisations"][7].update(reports_to="nowhere"),
            ("organisations[7].reports_to", "no organisation 'nowhere' in this file"),
        ),
        (
            lambda d: d["organisations"][3].update(kind="spaceship"),
            ("organisations[3].kind", "Input should be"),
        ),
        (
            lambda d: d["organisations"][1].update(slug="moitt"),
            ("organisations[1].slug", "'moitt' is already used by organisations[0]"),
        ),
        (
            lambda d: d["council"].update(seat_count=17),
            ("council.seats", "16 seats listed, seat_count says 17"),
        ),
        (lambda d: d["framework"].pop("version"), ("framework.version", "Field required")),
        (lambda d: d["organisations"][0].update(colour="red"), ("organisations[0].colour", "Extra inputs")),
    ],
)
@pytest.mark.django_db
def test_each_error_has_its_path_and_nothing_is_loaded(change, expected):
    with pytest.raises(InvalidInput) as excinfo:
        load_framework(_mutated(change))
    locs = {(e.loc, e.msg[: len(expected[1])]) for e in excinfo.value.errors}
    assert expected in locs, excinfo.value.errors
    assert Organisation.objects.count() == 0
    assert AuditEntry.objects.count() == 0


def test_every_error_is_listed_at_once():
    def break_three(data):
        data["organisations"][7]["reports_to"] = "nowhere"
        data["organisations"][8]["via_function"] = "no-such-function"
        data["council"]["seats"][1]["holder"] = "nobody"

    with pytest.raises(InvalidInput) as excinfo:
        parse_framework(_mutated(break_three))
    assert [e.loc for e in excinfo.value.errors] == [
        "organisations[7].reports_to",
        "organisations[8].via_function",
        "council.seats[1].holder",
    ]
    assert excinfo.value.detail == "framework has 3 error(s)"


def test_a_reporting_cycle_is_refused_with_its_path():
    def cycle(data):
        for org in data["organisations"]:
            if org["slug"] == "ncert":
                org["reports_to"] = "punjab-cert"

    with pytest.raises(InvalidInput) as excinfo:
        parse_framework(_mutated(cycle))
    messages = [e.msg for e in excinfo.value.errors]
    assert any("reporting cycle: " in m and "ncert" in m and "punjab-cert" in m for m in messages), messages


def test_an_illegal_lifecycle_in_the_file_is_refused():
    def skip(data):
        for org in data["organisations"]:
            if org["slug"] == "punjab-cert":
                org["designations"][0]["history"].append({"status": "operational", "date": "2025-02-01"})

    with pytest.raises(InvalidInput) as excinfo:
        parse_framework(_mutated(skip))
    assert any(e.msg == "cannot go from summary-submitted to operational" for e in excinfo.value.errors)


def test_yaml_syntax_error_names_the_line():
    with pytest.raises(InvalidInput) as excinfo:
        parse_framework("framework:\n  name: [unclosed\n", source="broken.yaml")
    assert excinfo.value.detail.startswith("broken.yaml is not valid YAML (line ")


@pytest.mark.django_db
def test_reloading_converges_and_audits_every_change(framework):
    def edit(data):
        data["legal_instruments"][0]["title"] = "Prevention of Electronic Crimes Act 2016 (as amended)"
        for org in data["organisations"]:
            if org["slug"] == "nadra":
                org["designations"][0]["grade"] = "tier 1"
                org["designations"][0]["designating_authority"] = "moitt"
            if org["slug"] == "pta":
                del org["reports_to"]

    entries_before = AuditEntry.objects.count()
    load_framework(_mutated(edit))
    assert LegalInstrument.objects.get(slug="peca-2016").title.endswith("(as amended)")
    nadra = Designation.objects.get(organisation=framework["nadra"])
    assert (nadra.grade, nadra.designating_authority.slug) == ("tier 1", "moitt")
    assert selectors.chain_ids(framework["pta"].pk) == []
    actions = list(AuditEntry.objects.filter(pk__gt=0).order_by("-seq").values_list("action", flat=True)[:10])
    assert {
        "registry.legalinstrument.update",
        "registry.designation.update",
        "registry.reporting_line.set",
    } <= set(actions)
    assert AuditEntry.objects.count() > entries_before
    assert audit.verify().ok


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda d: d["organisations"][0].update(tlp="beige"),
            ("organisations[0].tlp", "Value error, unknown TLP"),
        ),
        (
            lambda d: d["organisations"][0].update(tlp="red"),
            ("organisations[0].tlp", "Value error, registry records"),
        ),
    ],
)
def test_tlp_is_checked_with_the_structure(change, expected):
    with pytest.raises(InvalidInput) as excinfo:
        parse_framework(_mutated(change))
    assert any((e.loc, e.msg[: len(expected[1])]) == expected for e in excinfo.value.errors), (
        excinfo.value.errors
    )


def test_a_notification_in_the_file_must_cite_the_gazette():
    def notify_without_gazette(data):
        for org in data["organisations"]:
            if org["slug"] == "punjab-cert":
                org["designations"][0]["history"] += [
                    {"status": "approved", "date": "2025-03-01"},
                    {"status": "notified", "date": "2025-04-01"},
                ]

    with pytest.raises(InvalidInput) as excinfo:
        parse_framework(_mutated(notify_without_gazette))
    assert [(e.loc, e.msg) for e in excinfo.value.errors] == [
        (
            "organisations[12].designations[0].history[4].gazette_reference",
            "becoming notified must cite the gazette notification",
        ),
    ]
