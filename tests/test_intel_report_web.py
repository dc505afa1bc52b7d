"""Publishing and changing intel reports through the web forms: pasted text is resolved to indicators
the user may share (the owner's own first), every refusal is shown beside the field it is about with
what was typed kept, and the publishing rules of the services hold as they do through the API."""

from __future__ import annotations

import re

from django.test import Client

from certnet.core.models import AuditEntry
from certnet.intel.models import IntelReport
from tests.test_intel_sharing import publish, record

NEW = "/intel/reports/new/"


def browser(user, **kwargs):
    client = Client(**kwargs)
    client.force_login(user)
    return client


def form(**fields):
    return {"owner": "lahore", "title": "October campaign", "tlp": "amber", "audience": "owner", **fields}


def field_errors(html, name):
    """The messages shown beside the field named `name`."""
    label = re.search(rf'<label class="field[^"]*">(?:(?!</label>).)*?name="{name}".*?</label>', html, re.S)
    assert label, f"no field {name}"
    return re.findall(r'<small class="field-error" role="alert">(.*?)</small>', label.group(0), re.S)


def test_an_analyst_publishes_the_values_pasted_from_a_mail(intel_world):
    _, people, clients = intel_world
    (owned,) = record(clients["lahore"], "lahore", "45.9.148.5")
    lahore = browser(people["lahore"])
    page = lahore.get(NEW)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="csrfmiddlewaretoken"' in html
    assert '<option value="lahore" selected>' in html
    pasted = "Hi team,\nthe beacon went to 45.9.148[.]5 every 10 minutes (see the proxy log).\n"
    response = lahore.post(
        NEW,
        form(audience="organisations", organisations="karachi", tags="phishing, rsit:fraud/phishing",
             summary="Mail seen\r\ntoday", indicators=pasted),
    )  # fmt: skip
    report = IntelReport.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/intel/reports/{report.pk}/"
    assert list(report.indicators.values_list("pk", flat=True)) == [owned]
    assert list(report.shared_with.values_list("slug", flat=True)) == ["karachi"]
    assert sorted(report.tags.values_list("name", flat=True)) == ["phishing", 'rsit:fraud="phishing"']
    assert report.summary == "Mail seen\ntoday"
    shown = lahore.get(response["Location"]).content.decode()
    assert "Published to Listed organisations: Karachi." in shown
    # Publishing shared the indicator with the audience, as through the API.
    assert clients["karachi"].get(f"/indicators/{owned}").status_code == 200


def test_the_owners_own_indicator_of_a_value_is_chosen_else_the_oldest_one_the_user_may_share(intel_world):
    _, people, clients = intel_world
    (lahores_first,) = record(clients["lahore"], "lahore", "45.9.148.1")
    (punjabs_own,) = record(clients["punjab-handler"], "punjab-cert", "45.9.148.1")
    (lahores,) = record(clients["lahore"], "lahore", "45.9.148.2")
    (multans,) = record(clients["multan"], "multan", "45.9.148.2")
    response = browser(people["punjab-handler"]).post(
        NEW, form(owner="punjab-cert", indicators="45.9.148.2 45.9.148.1")
    )
    assert response.status_code == 302, response.content.decode()
    chosen = set(IntelReport.objects.get().indicators.values_list("pk", flat=True))
    assert chosen == {punjabs_own, lahores}
    assert not chosen & {lahores_first, multans}


def test_a_value_the_user_may_not_share_is_named_and_nothing_is_published(intel_world):
    _, people, clients = intel_world
    record(clients["lahore"], "lahore", "45.9.148.6")
    record(clients["multan"], "multan", "45.9.148.7")  # Lahore's analyst may not even see it
    pasted = "45.9.148.6\n45.9.148.7\n45.9.148.8"
    response = browser(people["lahore"]).post(NEW, form(title="Kept title", indicators=pasted))
    assert response.status_code == 422
    html = response.content.decode()
    assert field_errors(html, "indicators") == [
        "45.9.148.7: no indicator you may share has this value; record it first",
        "45.9.148.8: no indicator you may share has this value; record it first",
    ]
    assert 'value="Kept title"' in html
    assert ">45.9.148.6\n45.9.148.7\n45.9.148.8</textarea>" in html
    assert IntelReport.objects.count() == 0
    assert not AuditEntry.objects.filter(action="intel.report.publish").exists()


def test_every_refusal_is_shown_beside_its_field_and_what_was_typed_is_kept(intel_world):
    _, people, clients = intel_world
    record(clients["lahore"], "lahore", "45.9.148.9")
    response = browser(people["lahore"]).post(
        NEW,
        form(title="  ", tlp="green", audience="organisations", organisations="",
             summary="<script>alert(1)</script>", tags="rsit:nonsense/thing", indicators="45.9.148.9"),
    )  # fmt: skip
    assert response.status_code == 422
    html = response.content.decode()
    assert "nothing published" in html
    assert field_errors(html, "title") == ["A report needs a title"]
    assert field_errors(html, "tlp") == [
        "An audience of organisations is published at TLP:AMBER or TLP:AMBER+STRICT, not TLP:GREEN"
    ]
    assert field_errors(html, "organisations") == ["An audience of organisations names at least one"]
    assert len(field_errors(html, "tags")) == 1
    assert '<option value="green" selected>' in html
    assert '<option value="organisations" selected>' in html
    assert 'value="rsit:nonsense/thing"' in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)</script>" not in html
    assert IntelReport.objects.count() == 0


def test_an_indicator_refused_by_the_service_is_traced_back_to_its_pasted_value(intel_world):
    _, people, clients = intel_world
    (lahores,) = record(clients["lahore"], "lahore", "45.9.149.1")
    # Punjab CERT's handler may share Lahore's AMBER indicator but not lower it to GREEN.
    response = browser(people["punjab-handler"]).post(
        NEW, form(owner="punjab-cert", tlp="green", audience="community", indicators="x 45.9.149.1 y")
    )
    assert response.status_code == 422
    assert field_errors(response.content.decode(), "indicators") == [
        f"45.9.149.1: indicator {lahores} is TLP:AMBER; only its owner lahore may lower it to TLP:GREEN"
    ]
    assert IntelReport.objects.count() == 0


def test_a_viewer_has_no_organisation_to_publish_for_and_is_refused(intel_world):
    _, people, _ = intel_world
    assert "Publish a report" in browser(people["lahore"]).get("/intel/reports/").content.decode()
    viewer = browser(people["lahore-viewer"])
    assert "Publish a report" not in viewer.get("/intel/reports/").content.decode()
    page = viewer.get(NEW).content.decode()
    assert "You cannot publish intel reports." in page
    assert "<option" not in page.split('name="owner"')[1].split("</select>")[0]
    refused = viewer.post(NEW, form(indicators="45.9.148.1"))
    assert refused.status_code == 403
    assert "You need the analyst role or above in lahore to publish intel reports" in refused.content.decode()
    assert IntelReport.objects.count() == 0


def test_the_form_needs_its_csrf_token(intel_world):
    _, people, _ = intel_world
    guarded = browser(people["lahore"], enforce_csrf_checks=True)
    assert guarded.post(NEW, form()).status_code == 403
    assert IntelReport.objects.count() == 0


def published_report(clients, *ids, **body):
    response = publish(clients["lahore"], owner="lahore", indicators=list(ids), **body)
    assert response.status_code == 201, response.content
    return IntelReport.objects.get(pk=response.json()["id"])


def test_the_owner_raises_the_tlp_and_adds_and_removes_indicators(intel_world):
    _, people, clients = intel_world
    first, second = record(clients["lahore"], "lahore", "45.9.149.2", "45.9.149.3")
    (multans,) = record(clients["multan"], "multan", "45.9.149.4")
    report = published_report(clients, first, audience="organisations", organisations=["karachi"])
    path = f"/intel/reports/{report.pk}/change/"
    lahore = browser(people["lahore"])
    assert f'href="{path}"' in lahore.get(f"/intel/reports/{report.pk}/").content.decode()
    page = lahore.get(path).content.decode()
    assert 'value="October campaign"' in page
    assert f'name="remove" value="{first}"' in page
    changes = {"title": "October campaign", "summary": "", "tlp": "amber+strict", "tags": "",
               "remove": [str(first)]}  # fmt: skip
    # A value Lahore may not share: named, nothing changed, the ticked box stays ticked.
    refused = lahore.post(path, {**changes, "add": "45.9.149.3, 45.9.149.4"})
    assert refused.status_code == 422
    html = refused.content.decode()
    assert field_errors(html, "add") == [
        "45.9.149.4: no indicator you may share has this value; record it first"
    ]
    assert f'name="remove" value="{first}" checked' in html
    report.refresh_from_db()
    assert report.tlp == "amber"
    assert multans not in report.indicators.values_list("pk", flat=True)
    done = lahore.post(path, {**changes, "add": "the second server: 45.9.149[.]3"})
    assert done.status_code == 302
    assert done["Location"] == f"/intel/reports/{report.pk}/"
    report.refresh_from_db()
    assert report.tlp == "amber+strict"
    assert list(report.indicators.values_list("pk", flat=True)) == [second]
    entry = AuditEntry.objects.get(action="intel.report.change")
    # Only what the form changed is named: the title and summary were left as they were.
    assert entry.data["fields"] == ["add_indicators", "remove_indicators", "tlp"]
    assert "Report changed." in lahore.get(done["Location"]).content.decode()


def test_lowering_the_tlp_is_left_to_the_owner_and_others_may_not_change_at_all(intel_world):
    _, people, clients = intel_world
    (indicator,) = record(clients["lahore"], "lahore", "45.9.149.5")
    report = published_report(
        clients, indicator, tlp="amber+strict", audience="organisations", organisations=["karachi"]
    )
    path = f"/intel/reports/{report.pk}/change/"
    handler = browser(people["punjab-handler"])
    refused = handler.post(path, {"title": "Lowered", "tlp": "amber", "tags": "", "summary": ""})
    assert refused.status_code == 403
    html = refused.content.decode()
    assert f"Only lahore may lower the TLP of intel report {report.pk}" in html
    assert 'value="Lowered"' in html
    report.refresh_from_db()
    assert (report.title, report.tlp) == ("October campaign", "amber+strict")
    # Karachi received the report but may not change it; Multan does not see it at all.
    karachi = browser(people["karachi"])
    assert path not in karachi.get(f"/intel/reports/{report.pk}/").content.decode()
    assert karachi.get(path).status_code == 403
    assert karachi.post(path, {"title": "Mine now", "tlp": "amber+strict"}).status_code == 403
    assert browser(people["multan"]).get(path).status_code == 404
    report.refresh_from_db()
    assert report.title == "October campaign"
    lowered = browser(people["lahore"]).post(path, {"title": "October campaign", "tlp": "amber"})
    assert lowered.status_code == 302
    report.refresh_from_db()
    assert report.tlp == "amber"


def test_an_added_indicator_refused_by_the_service_is_traced_back_to_its_value(intel_world):
    _, people, clients = intel_world
    shared, kept_amber = record(clients["lahore"], "lahore", "45.9.149.6", "45.9.149.7")
    report = published_report(clients, shared, tlp="green", audience="community")
    path = f"/intel/reports/{report.pk}/change/"
    # Punjab CERT's handler may change the report and share Lahore's indicator, not lower it to GREEN.
    response = browser(people["punjab-handler"]).post(
        path, {"title": "October campaign", "tlp": "green", "add": "45.9.149.7"}
    )
    assert response.status_code == 422
    assert field_errors(response.content.decode(), "add") == [
        f"45.9.149.7: indicator {kept_amber} is TLP:AMBER; only its owner lahore may lower it to TLP:GREEN"
    ]
    assert list(report.indicators.values_list("pk", flat=True)) == [shared]
