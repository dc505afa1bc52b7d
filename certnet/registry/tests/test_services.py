"""Registry services: validation, refusals that change nothing, history, and the audit trail."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from certnet.core.audit import SystemActor
from certnet.core.errors import Conflict, Forbidden, IllegalTransition, InvalidInput, NotFound
from certnet.core.models import AuditEntry
from certnet.core.roles import Role
from certnet.registry import selectors, services
from certnet.registry.models import Designation, FunctionHolding, Netblock, Organisation, ReportingLine

ACTOR = SystemActor("test")


def _constituent(slug: str, parent: str, **extra) -> Organisation:
    return services.create_organisation(
        actor=ACTOR,
        data=services.OrganisationInput(
            slug=slug,
            name=slug.title(),
            kind="constituent",
            reports_to=parent,
            reports_since=dt.date(2024, 1, 1),
            **extra,
        ),
    )


def _unchanged(model):
    """Snapshot a table and the audit log; compare after a refused call."""
    return model.objects.count(), AuditEntry.objects.count()


@pytest.mark.django_db
def test_create_organisation_validates_everything_at_once(framework):
    with pytest.raises(InvalidInput) as excinfo:
        services.create_organisation(
            actor=ACTOR,
            data=services.OrganisationInput(slug="Bad Slug", name=" ", kind="bank", reports_to="nowhere"),
        )
    assert [e.loc for e in excinfo.value.errors] == ["slug", "name", "kind", "reports_to"]


@pytest.mark.django_db
def test_reporting_cycle_is_refused_and_nothing_changes(framework):
    alpha = _constituent("alpha", "punjab-cert")
    before = _unchanged(ReportingLine)
    with pytest.raises(InvalidInput, match="reporting cycle: punjab-cert → alpha → punjab-cert"):
        services.set_reporting_line(
            actor=ACTOR, organisation=framework["punjab-cert"], parent=alpha, effective=dt.date(2025, 6, 1)
        )
    assert _unchanged(ReportingLine) == before


@pytest.mark.django_db
def test_moving_a_constituent_keeps_history(framework):
    alpha = _constituent("alpha", "punjab-cert")
    services.set_reporting_line(
        actor=ACTOR,
        organisation=alpha,
        parent=framework["sindh-cert"],
        effective=dt.date(2025, 6, 1),
        reference="transfer order 7",
    )
    assert selectors.chain_ids(alpha.pk, dt.date(2025, 5, 31))[0] == framework["punjab-cert"].pk
    assert selectors.chain_ids(alpha.pk, dt.date(2025, 6, 1))[0] == framework["sindh-cert"].pk
    with pytest.raises(InvalidInput, match="must take effect later"):
        services.set_reporting_line(
            actor=ACTOR, organisation=alpha, parent=framework["punjab-cert"], effective=dt.date(2025, 6, 1)
        )


@pytest.mark.django_db
def test_moving_a_function_is_one_call(framework):
    gov_cert = services.create_organisation(
        actor=ACTOR,
        data=services.OrganisationInput(
            slug="gov-cert", name="Government CERT", kind="sectoral-cert", reports_to="ncert"
        ),
    )
    services.assign_function(
        actor=ACTOR,
        function_slug="government-cert",
        organisation=gov_cert,
        effective=dt.date(2027, 1, 1),
        reference="cabinet decision",
    )
    assert selectors.holder_of_function("government-cert", dt.date(2026, 12, 31)) == framework["ncert"]
    assert selectors.holder_of_function("government-cert", dt.date(2027, 1, 1)) == gov_cert
    assert selectors.holder_of_function("cii-cert", dt.date(2027, 1, 1)) == framework["ncert"]
    assert FunctionHolding.objects.filter(function__slug="government-cert").count() == 2


@pytest.mark.django_db
def test_only_platform_admins_move_functions(framework, make_user):
    manager = make_user(framework["ncert"], Role.ADMIN)
    with pytest.raises(Forbidden):
        services.assign_function(
            actor=manager,
            function_slug="cii-cert",
            organisation=framework["punjab-cert"],
            effective=dt.date(2027, 1, 1),
        )


@pytest.mark.django_db
def test_designation_lifecycle_in_order(framework, make_user):
    ncert_manager = make_user(framework["ncert"], Role.MANAGER)
    designation = Designation.objects.get(organisation=framework["sindh-cert"])
    steps = [("approved", {}), ("notified", {"gazette_reference": "S.R.O. 1/2026"}), ("operational", {})]
    for status, extra in steps:
        services.transition_designation(
            actor=ncert_manager,
            designation=designation,
            to_status=status,
            effective_on=dt.date(2026, 3, 1),
            **extra,
        )
    designation.refresh_from_db()
    assert (designation.status, designation.gazette_reference, designation.notified_on) == (
        "operational",
        "S.R.O. 1/2026",
        dt.date(2026, 3, 1),
    )
    assert designation.events.last().actor == ncert_manager
    assert AuditEntry.objects.filter(action="registry.designation.notify").count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("to_status", "extra", "error", "message"),
    [
        (
            "operational",
            {},
            IllegalTransition,
            "cannot become operational; it can become: approved, dissolved",
        ),
        ("bogus", {}, InvalidInput, "'bogus' is not a designation status"),
    ],
)
def test_illegal_transitions_change_nothing(framework, to_status, extra, error, message):
    designation = Designation.objects.get(organisation=framework["sindh-cert"])
    before = (designation.events.count(), AuditEntry.objects.count())
    with pytest.raises(error, match=message):
        services.transition_designation(actor=ACTOR, designation=designation, to_status=to_status, **extra)
    designation.refresh_from_db()
    assert designation.status == "summary-submitted"
    assert (designation.events.count(), AuditEntry.objects.count()) == before


@pytest.mark.django_db
def test_notification_needs_the_gazette_reference(framework):
    designation = Designation.objects.get(organisation=framework["sindh-cert"])
    services.transition_designation(actor=ACTOR, designation=designation, to_status="approved")
    with pytest.raises(InvalidInput, match="must cite the gazette notification"):
        services.transition_designation(actor=ACTOR, designation=designation, to_status="notified")


@pytest.mark.django_db
def test_the_body_itself_cannot_move_its_own_designation(framework, make_user):
    own_manager = make_user(framework["sindh-cert"], Role.ADMIN)
    designation = Designation.objects.get(organisation=framework["sindh-cert"])
    with pytest.raises(Forbidden):
        services.transition_designation(actor=own_manager, designation=designation, to_status="approved")


@pytest.mark.django_db
def test_annual_cii_review(framework):
    designation = Designation.objects.get(organisation=framework["nadra"])
    services.record_designation_review(
        actor=ACTOR,
        designation=designation,
        reviewed_on=dt.date(2026, 1, 10),
        grade="tier 1",
        reference="review 2026",
    )
    designation.refresh_from_db()
    assert (designation.grade, designation.review_due, designation.status) == (
        "tier 1",
        dt.date(2027, 1, 10),
        "notified",
    )
    cert_designation = Designation.objects.get(organisation=framework["ncert"])
    with pytest.raises(InvalidInput, match="only CII designations"):
        services.record_designation_review(
            actor=ACTOR, designation=cert_designation, reviewed_on=dt.date(2026, 1, 10)
        )


@pytest.mark.django_db
def test_netblocks_duplicates_and_overlaps(framework):
    alpha = _constituent("alpha", "punjab-cert")
    beta = _constituent("beta", "sindh-cert")
    services.add_netblock(actor=ACTOR, organisation=alpha, cidr="10.20.0.0/16")
    added = services.add_netblock(actor=ACTOR, organisation=beta, cidr="10.20.30.0/24")
    assert added.overlaps == ["10.20.0.0/16 (alpha)"]
    before = _unchanged(Netblock)
    with pytest.raises(
        Conflict, match=re.escape("10.20.30.0/24 is already registered: 10.20.30.0/24 (beta)")
    ):
        services.add_netblock(actor=ACTOR, organisation=alpha, cidr="10.20.30.0/24")
    with pytest.raises(Conflict, match=re.escape("overlaps 10.20.0.0/16, already registered to alpha")):
        services.add_netblock(actor=ACTOR, organisation=alpha, cidr="10.20.99.0/24")
    with pytest.raises(InvalidInput, match=re.escape("host bits set; did you mean 10.9.0.0/16")):
        services.add_netblock(actor=ACTOR, organisation=alpha, cidr="10.9.8.7/16")
    with pytest.raises(InvalidInput, match="is not an IPv4 or IPv6 network"):
        services.add_netblock(actor=ACTOR, organisation=alpha, cidr="10.300.0.0/16")
    assert _unchanged(Netblock) == before


@pytest.mark.django_db
def test_most_specific_wins_and_history_answers(framework, make_user):
    alpha = _constituent("alpha", "punjab-cert")
    beta = _constituent("beta", "sindh-cert")
    gamma = _constituent("gamma", "punjab-cert")
    admin = make_user(platform_admin=True)
    services.add_netblock(
        actor=ACTOR, organisation=alpha, cidr="2001:db8::/32", valid_from=dt.date(2024, 1, 1)
    )
    old = services.add_netblock(
        actor=ACTOR, organisation=gamma, cidr="2001:db8:5::/48", valid_from=dt.date(2024, 1, 1)
    ).record
    services.retire_resource(actor=ACTOR, record=old, valid_to=dt.date(2025, 6, 1))
    services.add_netblock(
        actor=ACTOR, organisation=beta, cidr="2001:db8:5::/48", valid_from=dt.date(2025, 6, 1)
    )
    before = selectors.lookup(admin, "2001:db8:5::1", "ip", dt.date(2025, 5, 31))
    after = selectors.lookup(admin, "2001:db8:5::1", "ip", dt.date(2025, 6, 1))
    assert (before.organisation.slug, before.matched, [o.slug for o in before.chain]) == (
        "gamma",
        "2001:db8:5::/48",
        ["punjab-cert", "ncert"],
    )
    assert (after.organisation.slug, after.matched, [o.slug for o in after.chain]) == (
        "beta",
        "2001:db8:5::/48",
        ["sindh-cert", "ncert"],
    )
    assert selectors.lookup(admin, "2001:db8:6::1", "ip").organisation.slug == "alpha"


@pytest.mark.django_db
def test_lookup_respects_visibility(framework, make_user):
    alpha = _constituent("alpha", "punjab-cert")
    services.add_netblock(actor=ACTOR, organisation=alpha, cidr="192.0.2.0/24")  # AMBER by default
    outsider = make_user(framework["sindh-cert"], Role.ANALYST)
    punjab = make_user(framework["punjab-cert"], Role.VIEWER)
    assert selectors.lookup(punjab, "192.0.2.9", "ip").organisation == alpha
    with pytest.raises(NotFound, match=re.escape("no organisation you may see held '192.0.2.9'")):
        selectors.lookup(outsider, "192.0.2.9", "ip")


@pytest.mark.django_db
def test_asn_and_domain_rules(framework):
    alpha = _constituent("alpha", "punjab-cert")
    beta = _constituent("beta", "punjab-cert")
    services.add_asn(actor=ACTOR, organisation=alpha, asn="AS64512")
    with pytest.raises(Conflict, match=re.escape("AS64512 is already registered: AS64512 (alpha)")):
        services.add_asn(actor=ACTOR, organisation=beta, asn=64512)
    with pytest.raises(InvalidInput, match="outside 1-4294967295"):
        services.add_asn(actor=ACTOR, organisation=beta, asn=4294967296)
    with pytest.raises(InvalidInput, match="is not an AS number"):
        services.add_asn(actor=ACTOR, organisation=beta, asn="ASX")
    services.add_domain(actor=ACTOR, organisation=alpha, name="Example.PK.")
    added = services.add_domain(actor=ACTOR, organisation=beta, name="mail.example.pk")
    assert added.overlaps == ["example.pk (alpha)"]
    unicode_domain = services.add_domain(actor=ACTOR, organisation=beta, name="bücher.example").record
    assert (unicode_domain.name, unicode_domain.unicode_name) == ("xn--bcher-kva.example", "bücher.example")
    with pytest.raises(Conflict):
        services.add_domain(actor=ACTOR, organisation=beta, name="EXAMPLE.pk")
    with pytest.raises(InvalidInput, match="not a valid domain name"):
        services.add_domain(actor=ACTOR, organisation=beta, name="bad_domain..pk")


@pytest.mark.django_db
def test_contacts_are_validated(framework):
    nadra = framework["nadra"]
    with pytest.raises(InvalidInput, match="needs an e-mail address or a phone number"):
        services.add_contact(actor=ACTOR, organisation=nadra, kind="abuse")
    with pytest.raises(InvalidInput, match="PGP fingerprint"):
        services.add_contact(
            actor=ACTOR, organisation=nadra, kind="abuse", email="a@b.pk", pgp_fingerprint="ABC"
        )
    contact = services.add_contact(
        actor=ACTOR,
        organisation=nadra,
        kind="abuse",
        email="SOC@Nadra.PK",
        pgp_fingerprint="0123 4567 89AB CDEF 0123 4567 89AB CDEF 0123 4567",
    )
    assert (contact.email, contact.pgp_fingerprint, contact.tlp) == (
        "soc@nadra.pk",
        "0123456789ABCDEF0123456789ABCDEF01234567",
        "amber",
    )


@pytest.mark.django_db
def test_only_the_owner_lowers_tlp(framework, make_user):
    alpha = _constituent("alpha", "punjab-cert", tlp="amber")
    punjab_manager = make_user(framework["punjab-cert"], Role.MANAGER)
    alpha_manager = make_user(alpha, Role.MANAGER)
    with pytest.raises(InvalidInput, match="registry records cannot be TLP:RED"):
        services.update_organisation(actor=punjab_manager, organisation=alpha, changes={"tlp": "red"})
    services.update_organisation(actor=punjab_manager, organisation=alpha, changes={"tlp": "amber+strict"})
    alpha.refresh_from_db()
    assert alpha.tlp == "amber+strict"
    services.update_organisation(actor=alpha_manager, organisation=alpha, changes={"tlp": "amber"})
    alpha.refresh_from_db()
    assert alpha.tlp == "amber"
    with pytest.raises(Forbidden, match="only the owner organisation may lower"):
        services.update_organisation(actor=punjab_manager, organisation=alpha, changes={"tlp": "green"})


@pytest.mark.django_db
def test_registry_resources_cannot_be_red(framework):
    before = _unchanged(Netblock)
    with pytest.raises(InvalidInput, match="registry records cannot be TLP:RED; use amber\\+strict"):
        services.add_netblock(actor=ACTOR, organisation=framework["nadra"], cidr="192.0.2.0/24", tlp="red")
    assert _unchanged(Netblock) == before
    contact = services.add_contact(
        actor=ACTOR, organisation=framework["nadra"], kind="abuse", email="a@b.pk", tlp="amber+strict"
    )
    assert contact.tlp == "amber+strict"


@pytest.mark.django_db
def test_a_body_cannot_move_or_detach_itself(framework, make_user):
    nadra_manager = make_user(framework["nadra"], Role.ADMIN)
    ncert_manager = make_user(framework["ncert"], Role.MANAGER)
    admin = make_user(platform_admin=True)
    before = _unchanged(ReportingLine)
    with pytest.raises(Forbidden, match="only platform administrators may detach"):
        services.set_reporting_line(
            actor=nadra_manager, organisation=framework["nadra"], parent=None, effective=dt.date(2026, 1, 1)
        )
    with pytest.raises(Forbidden, match="you may not move"):
        services.set_reporting_line(
            actor=nadra_manager,
            organisation=framework["nadra"],
            parent=framework["telecom-cert"],
            effective=dt.date(2026, 1, 1),
        )
    with pytest.raises(Forbidden, match="only platform administrators may detach"):
        services.set_reporting_line(
            actor=ncert_manager, organisation=framework["nadra"], parent=None, effective=dt.date(2026, 1, 1)
        )
    assert _unchanged(ReportingLine) == before
    services.set_reporting_line(
        actor=ncert_manager,
        organisation=framework["nadra"],
        parent=framework["telecom-cert"],
        effective=dt.date(2026, 1, 1),
    )
    services.set_reporting_line(
        actor=admin, organisation=framework["nadra"], parent=None, effective=dt.date(2026, 2, 1)
    )
    assert selectors.chain_ids(framework["nadra"].pk, dt.date(2026, 1, 15)) == [
        framework["telecom-cert"].pk,
        framework["ncert"].pk,
    ]
    assert selectors.chain_ids(framework["nadra"].pk, dt.date(2026, 2, 1)) == []


@pytest.mark.django_db
def test_history_cannot_overlap_or_loop_on_a_later_day(framework):
    alpha = _constituent("alpha", "punjab-cert")  # since 2024-01-01
    beta = _constituent("beta", "punjab-cert")
    services.set_reporting_line(actor=ACTOR, organisation=alpha, parent=None, effective=dt.date(2025, 1, 1))
    with pytest.raises(InvalidInput, match="already has a reporting line from 2024-01-01 to 2025-01-01"):
        services.set_reporting_line(
            actor=ACTOR, organisation=alpha, parent=framework["sindh-cert"], effective=dt.date(2024, 6, 1)
        )
    # beta reports to alpha from 2030; alpha may not report to beta from 2029 (a loop from 2030 on).
    services.set_reporting_line(
        actor=ACTOR, organisation=alpha, parent=framework["sindh-cert"], effective=dt.date(2025, 2, 1)
    )
    services.set_reporting_line(actor=ACTOR, organisation=beta, parent=alpha, effective=dt.date(2030, 1, 1))
    with pytest.raises(InvalidInput, match="reporting cycle"):
        services.set_reporting_line(
            actor=ACTOR, organisation=alpha, parent=beta, effective=dt.date(2029, 1, 1)
        )


@pytest.mark.django_db
def test_designation_steps_are_recorded_when_they_happen(framework):
    from certnet.core import clock

    designation = Designation.objects.get(organisation=framework["sindh-cert"])
    with pytest.raises(InvalidInput, match="is in the future"):
        services.transition_designation(
            actor=ACTOR,
            designation=designation,
            to_status="approved",
            effective_on=clock.today() + dt.timedelta(days=1),
        )
    nadra = Designation.objects.get(organisation=framework["nadra"])
    with pytest.raises(InvalidInput, match="last recorded step is of 2025-01-01; 2024-12-31 is earlier"):
        services.record_designation_review(actor=ACTOR, designation=nadra, reviewed_on=dt.date(2024, 12, 31))
    reviewed = services.record_designation_review(
        actor=ACTOR, designation=nadra, reviewed_on=dt.date(2025, 3, 1)
    )
    assert reviewed.review_due == dt.date(2026, 3, 1)
    assert services._one_year_after(dt.date(2024, 2, 29)) == dt.date(2025, 2, 28)


@pytest.mark.django_db
def test_designation_badges_follow_the_designations_tlp(framework, make_user):
    nadra = Designation.objects.get(organisation=framework["nadra"])
    Designation.objects.filter(pk=nadra.pk).update(tlp="amber")
    outsider = make_user(framework["sindh-cert"], Role.ANALYST)
    chain = make_user(framework["ncert"], Role.VIEWER)
    assert selectors.designation_statuses(outsider, [framework["nadra"].pk]) == {}
    assert selectors.designation_statuses(chain, [framework["nadra"].pk]) == {
        framework["nadra"].pk: {"cii": "notified"}
    }
    visible = selectors.visible_organisations(outsider)
    assert "nadra" not in set(
        selectors.filter_organisations(outsider, visible, status="notified").values_list("slug", flat=True)
    )


@pytest.mark.django_db
def test_overlong_and_nul_text_is_refused_with_the_field(framework):
    with pytest.raises(InvalidInput, match="phone: is 41 characters long; the limit is 40"):
        services.add_contact(actor=ACTOR, organisation=framework["nadra"], kind="abuse", phone="1" * 41)
    with pytest.raises(InvalidInput, match="name: contains a NUL character"):
        services.add_cii_system(actor=ACTOR, organisation=framework["nadra"], name="a\x00b")


@pytest.mark.django_db
def test_the_routing_index_follows_registry_changes_only(framework, make_user):
    from certnet.accounts import services as accounts
    from certnet.registry import index

    today = dt.date(2026, 1, 1)
    built = index.registry_index(today)
    accounts.create_token(actor=ACTOR, user=make_user())  # an audited change outside the registry
    assert index.registry_index(today) is built
    services.add_netblock(
        actor=ACTOR, organisation=framework["nadra"], cidr="192.0.2.0/24", valid_from=dt.date(2025, 1, 1)
    )
    rebuilt = index.registry_index(today)
    assert rebuilt is not built
    assert rebuilt.find_ip("192.0.2.1") is not None
