"""The web UI through Django's test client: sign-in, the framework tree, the organisations table,
one organisation's page (with TLP-restricted resources), lookup, and the HTMX fragments.

The data is made here (the real framework file plus a few users and resources) so that these tests
depend on nothing but the services."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from certnet.accounts.models import User
from certnet.accounts.services import create_user, set_membership
from certnet.core import clock
from certnet.core.audit import SystemActor
from certnet.core.roles import Role
from certnet.registry import index, services
from certnet.registry.framework import load_framework_file
from certnet.registry.models import Organisation
from certnet.registry.resources import classify_query as classify

ACTOR = SystemActor("test")
PASSWORD = "web-test-password-2026"
NADRA_BLOCK = "203.0.113.0/24"
NADRA_CONTACT = "soc-amber@nadra.example"

PAGES = ["/", "/organisations/", "/organisations/ncert/", "/lookup/", "/lookup/?q=203.0.113.10"]


# --- data ---------------------------------------------------------------------------------------


@pytest.fixture
def orgs(db: Any) -> dict[str, Organisation]:
    """The Pakistan framework, loaded; organisations by slug."""
    index.clear_cache()
    load_framework_file(settings.CERTNET_FRAMEWORK_FILE)
    return {o.slug: o for o in Organisation.objects.all()}


@pytest.fixture
def nadra_resources(orgs: dict[str, Organisation]) -> None:
    """An AMBER netblock and an AMBER contact of NADRA (the services' defaults for both)."""
    services.add_netblock(
        actor=ACTOR,
        organisation=orgs["nadra"],
        cidr=NADRA_BLOCK,
        valid_from=dt.date(2024, 1, 1),
        description="identity data centre",
    )
    services.add_contact(actor=ACTOR, organisation=orgs["nadra"], kind="abuse", email=NADRA_CONTACT)
    services.add_asn(actor=ACTOR, organisation=orgs["nadra"], asn=64500, valid_from=dt.date(2024, 1, 1))
    services.add_domain(
        actor=ACTOR, organisation=orgs["nadra"], name="nadra.example", valid_from=dt.date(2024, 1, 1)
    )


@pytest.fixture
def member(orgs: dict[str, Organisation]) -> Callable[[str, str], User]:
    """member(org_slug, username): a user holding the analyst role in that organisation."""

    def make(slug: str, username: str, role: Role = Role.ANALYST) -> User:
        user = create_user(actor=ACTOR, username=username, password=PASSWORD, check_password_strength=False)
        set_membership(actor=ACTOR, user=user, organisation_id=orgs[slug].pk, role=role)
        return user

    return make


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def ncert(member: Callable[..., User]) -> Client:
    return signed_in(member("ncert", "ncert.analyst"))


@pytest.fixture
def punjab(member: Callable[..., User]) -> Client:
    return signed_in(member("punjab-cert", "punjab.analyst"))


HTMX = {"HX-Request": "true"}


def text(response: Any) -> str:
    return str(response.content.decode())


def rows_of(response: Any) -> list[str]:
    return [row.organisation.slug for row in response.context["rows"]]


# --- signing in ---------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("path", PAGES)
def test_anonymous_is_sent_to_login(client: Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


@pytest.mark.django_db
def test_login_page_and_sign_in(client: Client, member: Callable[..., User]) -> None:
    member("ncert", "ayesha")
    page = client.get("/login/")
    assert page.status_code == 200
    assert 'name="csrfmiddlewaretoken"' in text(page)
    assert "Sign in to certnet" in text(page)

    wrong = client.post("/login/", {"username": "ayesha", "password": "nope"})
    assert wrong.status_code == 200
    assert "alert-error" in text(wrong)

    right = client.post("/login/", {"username": "ayesha", "password": PASSWORD, "next": "/lookup/"})
    assert right.status_code == 302
    assert right["Location"] == "/lookup/"


@pytest.mark.django_db
def test_nav_shows_user_and_organisation_and_logout_is_post(ncert: Client) -> None:
    page = text(ncert.get("/"))
    assert 'data-testid="current-user">ncert.analyst<' in page
    assert '<a href="/organisations/ncert/" title="National Computer Emergency Response Team' in page
    assert '<form method="post" action="/logout/"' in page

    assert ncert.get("/logout/").status_code == 405
    out = ncert.post("/logout/")
    assert out.status_code == 302
    assert out["Location"] == "/login/"
    assert ncert.get("/").status_code == 302


# --- the framework tree -------------------------------------------------------------------------


@pytest.mark.django_db
def test_tree_shows_the_network_with_badges_and_functions(ncert: Client) -> None:
    response = ncert.get("/")
    assert response.status_code == 200
    page = text(response)
    assert ">NCERT</a>" in page
    assert ">Punjab CERT</a>" in page
    # Provincial CERTs: summary submitted (amber); NCERT operational (green); NADRA notified CII.
    assert re.search(
        r'class="badge badge-amber"[^>]*><span class="badge-key">CERT</span> summary submitted', page
    )
    assert re.search(r'class="badge badge-green"[^>]*><span class="badge-key">CERT</span> operational', page)
    assert re.search(r'class="badge badge-green"[^>]*><span class="badge-key">CII</span> notified', page)
    assert "Government and governance bodies" in page
    assert 'class="fn-chip"' in page

    network = response.context["network"]
    assert [row.organisation.slug for row in network] == ["ncert"]
    below_ncert = {row.organisation.slug for row in network[0].children}
    assert {"punjab-cert", "sindh-cert", "telecom-cert", "nadra", "fbr", "immpass"} <= below_ncert
    assert [h.function.slug for h in network[0].functions] == ["cii-cert", "government-cert"]
    governance = {row.organisation.slug for row in response.context["governance"]}
    assert {"moitt", "cert-council", "ntisb", "nccia", "fia-ccw"} <= governance
    assert not governance & below_ncert


@pytest.mark.django_db
def test_tree_as_of_an_earlier_date(ncert: Client) -> None:
    # Before 2025-01-01 the provincial CERTs did not report to NCERT yet: they stand on their own.
    response = ncert.get("/", {"at": "2024-06-01"})
    network = {row.organisation.slug: row for row in response.context["network"]}
    assert "punjab-cert" in network
    assert "punjab-cert" not in {row.organisation.slug for row in network["ncert"].children}
    assert response.context["day"] == dt.date(2024, 6, 1)
    assert 'value="2024-06-01"' in text(response)


@pytest.mark.django_db
def test_tree_with_an_unreadable_date_says_so(ncert: Client) -> None:
    response = ncert.get("/", {"at": "31/12/2024"})
    assert response.status_code == 200
    assert "is not a date in the form YYYY-MM-DD" in text(response)
    assert response.context["day"] == clock.today()


@pytest.mark.django_db
def test_tree_htmx_request_gets_only_the_fragment(ncert: Client) -> None:
    response = ncert.get("/", {"at": "2025-06-30"}, headers=HTMX)
    page = text(response)
    assert page.startswith('<div id="tree"')
    assert "<html" not in page
    assert "topbar" not in page
    assert "Punjab CERT" in page
    assert "HX-Request" in response["Vary"]


# --- the organisations table --------------------------------------------------------------------


@pytest.mark.django_db
def test_organisation_filters(ncert: Client) -> None:
    provincial = ncert.get("/organisations/", {"kind": "provincial-cert"})
    assert sorted(rows_of(provincial)) == [
        "ajk-cert", "balochistan-cert", "gb-cert", "kp-cert", "punjab-cert", "sindh-cert",
    ]  # fmt: skip
    assert rows_of(ncert.get("/organisations/", {"province": "sindh"})) == ["sindh-cert"]
    assert sorted(rows_of(ncert.get("/organisations/", {"sector": "telecom"}))) == ["pta", "telecom-cert"]
    assert sorted(rows_of(ncert.get("/organisations/", {"status": "notified"}))) == [
        "fbr",
        "immpass",
        "nadra",
    ]
    assert rows_of(ncert.get("/organisations/", {"q": "punjab"})) == ["punjab-cert"]
    assert rows_of(ncert.get("/organisations/", {"q": "NCERT"})) == ["ncert"]
    empty = ncert.get("/organisations/", {"q": "no such body"})
    assert "No organisation you may see matches these filters." in text(empty)


@pytest.mark.django_db
def test_organisation_sorting_is_whitelisted(ncert: Client) -> None:
    by_name = ncert.get("/organisations/", {"kind": "provincial-cert"})
    names = [row.organisation.name for row in by_name.context["rows"]]
    assert names == sorted(names)

    descending = ncert.get("/organisations/", {"kind": "provincial-cert", "sort": "-name"})
    assert [row.organisation.name for row in descending.context["rows"]] == sorted(names, reverse=True)
    assert 'aria-sort="descending"' in text(descending)

    # The heading of the column sorted by asks for the reverse order; the others for their own.
    ascending_page = text(by_name)
    assert 'href="/organisations/?kind=provincial-cert&amp;sort=-name"' in ascending_page
    assert 'href="/organisations/?kind=provincial-cert&amp;sort=province"' in ascending_page
    assert 'href="/organisations/?kind=provincial-cert&amp;sort=name"' in text(descending)

    by_province = ncert.get("/organisations/", {"kind": "provincial-cert", "sort": "province"})
    provinces = [row.organisation.province for row in by_province.context["rows"]]
    assert provinces == sorted(provinces)

    by_kind = ncert.get("/organisations/", {"sort": "-kind"})
    kinds = [row.organisation.kind for row in by_kind.context["rows"]]
    assert kinds == sorted(kinds, reverse=True)

    for hostile in ("tlp", "-lead_body__name", "password", "name;drop"):
        response = ncert.get("/organisations/", {"sort": hostile})
        assert response.status_code == 200
        assert response.context["sort"] == "name"


@pytest.mark.django_db
def test_organisation_table_pages(ncert: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("certnet.registry.views.PAGE_SIZE", 10)
    first = ncert.get("/organisations/", {"sort": "name"})
    total = first.context["page"].paginator.count
    assert total > 20
    assert len(first.context["rows"]) == 10
    assert f"1\u201310 of {total}" in text(first)
    assert 'href="/organisations/?sort=name&amp;page=2"' in text(first)
    second = ncert.get("/organisations/", {"sort": "name", "page": "2"})
    assert rows_of(second)[0] not in rows_of(first)
    assert ncert.get("/organisations/", {"page": "999"}).status_code == 200  # the last page


@pytest.mark.django_db
def test_organisation_table_shows_reporting_line_and_badges(ncert: Client) -> None:
    page = text(ncert.get("/organisations/", {"q": "punjab"}))
    assert '<a href="/organisations/punjab-cert/">Punjab CERT</a>' in page
    assert '<a href="/organisations/ncert/">NCERT</a>' in page  # reports to
    assert "summary submitted" in page


@pytest.mark.django_db
def test_organisation_table_htmx_fragment(ncert: Client) -> None:
    response = ncert.get("/organisations/", {"kind": "sectoral-cert", "sort": "-name"}, headers=HTMX)
    page = text(response)
    assert page.startswith('<section id="org-table"')
    assert "<html" not in page
    assert 'id="filters"' not in page  # the filter form stays on the page
    assert '<input type="hidden" name="sort" value="-name" form="filters">' in page
    assert rows_of(response) == ["telecom-cert", "defence-cert", "community-cert"]
    # The sort links keep the filters.
    assert "kind=sectoral-cert" in page


# --- one organisation ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_ncert_page_shows_functions_history_and_constituents(ncert: Client) -> None:
    response = ncert.get("/organisations/ncert/")
    assert response.status_code == 200
    page = text(response)
    assert "National Computer Emergency Response Team" in page
    assert [h.function.name for h in response.context["functions"]] == ["CII CERT", "Government CERT"]
    assert "Government CERT" in page
    assert "CII CERT" in page
    assert "since 2023-07-01" in page
    # The designation's lifecycle: proposed → notified (on record) → operational.
    history = page.split('data-testid="history-cert"')[1].split("</table>")[0]
    assert re.findall(r'<span class="event">([^<]+)</span>', history) == [
        "propose", "record", "make-operational",
    ]  # fmt: skip
    assert "soft launch July 2023" in history
    assert "system:framework-loader" in history
    assert "2023-07-01" in history
    # Lead body and constituents.
    assert (
        '<a href="/organisations/ntisb/">National Telecommunication &amp; Information Security Board</a>'
        in page
    )
    constituents = {o.slug for o, _ in response.context["constituents"]}
    assert {"punjab-cert", "sindh-cert", "nadra", "telecom-cert"} <= constituents
    assert "top of the CERT network" in page


@pytest.mark.django_db
def test_provincial_cert_page_shows_chain_and_history(punjab: Client) -> None:
    page = text(punjab.get("/organisations/punjab-cert/"))
    chain = page.split('data-testid="chain"')[1].split("</div>")[0]
    assert '<a href="/organisations/ncert/">NCERT</a>' in chain
    history = page.split('data-testid="history-cert"')[1].split("</table>")[0]
    assert "CERT Council recommendation under rule 4(2)" in history
    assert "summary submitted to the Federal Cabinet" in history
    assert "Punjab Information Technology Board (PITB)" in page


@pytest.mark.django_db
def test_cii_page_shows_review_due(ncert: Client) -> None:
    page = text(ncert.get("/organisations/nadra/"))
    assert "Review due" in page
    assert "2026-01-01" in page


@pytest.mark.django_db
def test_council_page_lists_seats(ncert: Client) -> None:
    response = ncert.get("/organisations/cert-council/")
    page = text(response)
    assert len(response.context["seats"]) == 16
    assert "Federal Secretary IT &amp; Telecom" in page
    assert "reported added (unconfirmed)" in page
    assert page.count('badge-sm">unconfirmed<') == len(
        [s for s in response.context["seats"] if not s.confirmed]
    )


@pytest.mark.django_db
@pytest.mark.usefixtures("nadra_resources")
def test_amber_resources_hidden_from_another_organisation(punjab: Client) -> None:
    response = punjab.get("/organisations/nadra/")
    assert response.status_code == 200  # the organisation itself is TLP:CLEAR
    page = text(response)
    assert NADRA_BLOCK not in page
    assert NADRA_CONTACT not in page
    assert response.context["netblocks"] == []
    assert response.context["contacts"] == []
    assert "None visible to you." in page
    # GREEN resources are shown to every member.
    assert "AS64500" in page
    assert "nadra.example" in page


@pytest.mark.django_db
@pytest.mark.usefixtures("nadra_resources")
def test_amber_resources_shown_up_the_chain_and_to_the_owner(
    ncert: Client, member: Callable[..., User]
) -> None:
    page = text(ncert.get("/organisations/nadra/"))
    assert NADRA_BLOCK in page
    assert "identity data centre" in page
    assert NADRA_CONTACT in page

    own = signed_in(member("nadra", "nadra.officer"))
    page = text(own.get("/organisations/nadra/"))
    assert NADRA_BLOCK in page
    assert NADRA_CONTACT in page


@pytest.mark.django_db
def test_organisation_not_visible_is_404(orgs: dict[str, Organisation], member: Callable[..., User]) -> None:
    services.create_organisation(
        actor=ACTOR,
        data=services.OrganisationInput(
            slug="sindh-water", name="Sindh Water Board", kind="constituent", tlp="amber",
            reports_to="sindh-cert", reports_since=dt.date(2025, 2, 1),
        ),
    )  # fmt: skip
    outsider = signed_in(member("punjab-cert", "punjab.viewer", Role.VIEWER))
    response = outsider.get("/organisations/sindh-water/")
    assert response.status_code == 404
    assert "There is nothing here that you may see." in text(response)
    assert outsider.get("/organisations/no-such-body/").status_code == 404

    insider = signed_in(member("sindh-cert", "sindh.viewer", Role.VIEWER))
    assert insider.get("/organisations/sindh-water/").status_code == 200
    assert "Sindh Water Board" in text(insider.get("/organisations/sindh-cert/"))


@pytest.mark.django_db
def test_organisation_page_as_of_a_date(ncert: Client) -> None:
    before = ncert.get("/organisations/punjab-cert/", {"at": "2024-06-01"})
    assert before.context["chain"] == []
    assert "no one — top of the CERT network on 2024-06-01" in text(before)


@pytest.mark.django_db
@pytest.mark.usefixtures("nadra_resources")
def test_organisation_page_names_the_cii_system_a_netblock_serves(
    ncert: Client, orgs: dict[str, Organisation]
) -> None:
    from certnet.registry.models import Netblock

    services.add_cii_system(actor=ACTOR, organisation=orgs["nadra"], name="Citizen identity database")
    netblock = Netblock.objects.get(cidr=NADRA_BLOCK)
    services.link_cii_system(actor=ACTOR, record=netblock, cii_system="Citizen identity database")
    page = text(ncert.get("/organisations/nadra/"))
    netblocks = page.split('data-testid="netblocks"')[1].split("</table>")[0]
    assert "CII: Citizen identity database" in netblocks
    assert "CII:" not in page.split('data-testid="domains"')[1].split("</table>")[0]


# --- lookup -------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.usefixtures("nadra_resources")
def test_lookup_finds_owner_and_chain(ncert: Client) -> None:
    response = ncert.get("/lookup/", {"q": "203.0.113.10"})
    assert response.status_code == 200
    result = response.context["result"]
    assert result.organisation.slug == "nadra"
    assert result.matched == NADRA_BLOCK
    assert [o.slug for o in result.chain] == ["ncert"]
    page = text(response)
    owner = page.split('data-testid="lookup-owner"')[1].split("</dd>")[0]
    assert '<a href="/organisations/nadra/">National Database &amp; Registration Authority</a>' in owner
    chain = page.split('data-testid="lookup-chain"')[1].split("</ol>")[0]
    assert '<a href="/organisations/ncert/">NCERT</a>' in chain
    assert "identity data centre" in page


@pytest.mark.django_db
@pytest.mark.usefixtures("nadra_resources")
@pytest.mark.parametrize(
    ("query", "matched"),
    [("AS64500", "AS64500"), ("64500", "AS64500"), ("portal.nadra.example", "nadra.example")],
)
def test_lookup_asn_and_domain(ncert: Client, query: str, matched: str) -> None:
    result = ncert.get("/lookup/", {"q": query}).context["result"]
    assert result.organisation.slug == "nadra"
    assert result.matched == matched


@pytest.mark.django_db
@pytest.mark.usefixtures("nadra_resources")
def test_lookup_as_of_a_date_before_the_block(ncert: Client) -> None:
    response = ncert.get("/lookup/", {"q": "203.0.113.10", "at": "2023-06-01"})
    assert response.context["result"] is None
    assert "no organisation you may see held &#x27;203.0.113.10&#x27; on 2023-06-01" in text(response).lower()


@pytest.mark.django_db
@pytest.mark.usefixtures("nadra_resources")
def test_lookup_hides_amber_netblock_from_outsiders(punjab: Client) -> None:
    response = punjab.get("/lookup/", {"q": "203.0.113.10"})
    assert response.status_code == 200
    assert response.context["result"] is None
    page = text(response)
    assert 'data-testid="lookup-error"' in page
    assert "National Database" not in page


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["not a domain!", "AS99999999999", "10.9.9.9", "-.-"])
def test_lookup_bad_or_unknown_input_is_a_message(ncert: Client, query: str) -> None:
    response = ncert.get("/lookup/", {"q": query})
    assert response.status_code == 200
    assert 'data-testid="lookup-error"' in text(response)
    assert response.context["result"] is None


@pytest.mark.django_db
def test_lookup_bad_date_is_a_message(ncert: Client) -> None:
    response = ncert.get("/lookup/", {"q": "203.0.113.10", "at": "yesterday"})
    assert response.status_code == 200
    assert "That date cannot be read." in text(response)


@pytest.mark.django_db
@pytest.mark.usefixtures("nadra_resources")
def test_lookup_htmx_fragment(ncert: Client) -> None:
    response = ncert.get("/lookup/", {"q": "203.0.113.10"}, headers=HTMX)
    page = text(response)
    assert page.startswith('<section id="lookup-result"')
    assert "<html" not in page
    assert "<form" not in page
    assert "National Database &amp; Registration Authority" in page


@pytest.mark.django_db
def test_lookup_form_without_query_shows_the_hint(ncert: Client) -> None:
    page = text(ncert.get("/lookup/"))
    assert 'hx-get="/lookup/"' in page
    assert "Enter an IPv4 or IPv6 address" in page


@pytest.mark.parametrize(
    ("query", "kind"),
    [
        ("203.0.113.10", "ip"),
        ("2001:db8::1", "ip"),
        ("AS64500", "asn"),
        ("as64500", "asn"),
        ("64500", "asn"),
        ("asus.example", "domain"),
        ("nadra.example", "domain"),
    ],
)
def test_classify(query: str, kind: str) -> None:
    assert classify(query) == kind


# --- static assets ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_pages_load_own_css_and_vendored_htmx(ncert: Client) -> None:
    page = text(ncert.get("/"))
    assert '<link rel="stylesheet" href="/static/certnet/certnet.css">' in page
    assert '<script src="/static/certnet/vendor/htmx.min.js" defer></script>' in page
    assert 'hx-headers=\'{"X-CSRFToken": "' in page
