"""The work sections of the incident page (tasks, overdue ones highlighted; comments) with their forms,
and the escalated view, through Django's test client. The world (the Pakistan framework, lahore under
Punjab CERT, karachi under Sindh CERT, their people) is test_views.py's."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.test import Client

from certnet.core import clock
from certnet.incidents import services
from certnet.incidents.models import Comment, Incident, Task
from certnet.incidents.services import work
from certnet.incidents.tests import test_views as base
from certnet.incidents.tests.test_views import AWARE, SOON, file_report, open_incident, signed_in, text

world = base.world  # the same organisations and people as the incident pages' tests

LATER = SOON + dt.timedelta(days=1)


def incident_of(world: Any, severity: int = 2, **extra: Any) -> Incident:
    _, users = world
    return open_incident(users["punjab"], file_report(users["lahore"], **extra), severity=severity)


def section(page: str, element_id: str) -> str:
    found = re.search(rf'<section[^>]*id="{element_id}".*?</section>', page, re.S)
    assert found is not None, f"no section {element_id}"
    return found.group(0)


# --- the incident page --------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_sections_and_their_forms_follow_each_persons_rights(world: Any) -> None:
    _, users = world
    incident = incident_of(world)
    url = f"/incidents/{incident.pk}/"
    with clock.frozen_at(SOON):
        work.add_task(
            actor=users["punjab"],
            incident=incident,
            title="Image the servers",
            owner_username="punjab.handler",
        )
        work.add_comment(actor=users["lahore"], incident=incident, body="Backups are offline.")
        handler = text(signed_in(users["punjab"]).get(url))
        analyst = text(signed_in(users["lahore"]).get(url))
        viewer = text(signed_in(users["lahore-viewer"]).get(url))
    # The handler: the task with its actions, the add form with the possible owners, the comment form.
    tasks = section(handler, "tasks")
    assert "Image the servers" in tasks
    assert "1 open of 1" in tasks
    assert f'action="/incidents/{incident.pk}/tasks/"' in tasks
    assert '<button type="submit" class="btn btn-sm btn-primary">Done</button>' in tasks
    owners = re.search(r'<select name="owner" id="id_task_owner">.*?</select>', tasks, re.S)
    assert owners is not None
    assert re.findall(r'<option value="([^"]*)"', owners.group(0)) == ["", "punjab.handler"]
    assert 'name="csrfmiddlewaretoken"' in tasks
    comments = section(handler, "comments")
    assert "Backups are offline." in comments
    assert "<strong>lahore.analyst</strong>" in comments
    assert f'action="/incidents/{incident.pk}/comments/"' in comments
    # The affected organisation's analyst reads the tasks and comments; it comments, it does not handle.
    assert "Image the servers" in section(analyst, "tasks")
    assert 'data-testid="task-add"' not in analyst
    assert "Done</button>" not in analyst
    assert 'data-testid="comment-add"' in analyst
    # Its viewer only reads.
    assert "Backups are offline." in section(viewer, "comments")
    assert 'data-testid="task-add"' not in viewer
    assert 'data-testid="comment-add"' not in viewer


@pytest.mark.django_db
def test_a_red_stub_shows_no_work(world: Any) -> None:
    _, users = world
    incident = incident_of(world, tlp="red", named_users=["punjab.handler"])
    work.add_task(actor=users["punjab"], incident=incident, title="Secret step")
    page = text(signed_in(users["ncert"]).get(f"/incidents/{incident.pk}/"))
    assert 'data-testid="incident-stub"' in page
    assert 'id="tasks"' not in page
    assert 'id="comments"' not in page
    assert "Secret step" not in page
    # Its forms refuse the stub viewer and say why, changing nothing.
    response = signed_in(users["ncert"]).post(f"/incidents/{incident.pk}/comments/", {"body": "hello"})
    assert response.status_code == 403
    assert f"You may not change incident {incident.pk}" in text(response)
    assert Comment.objects.count() == 0


@pytest.mark.django_db
def test_adding_a_task_and_the_overdue_highlight(world: Any) -> None:
    _, users = world
    incident = incident_of(world)
    client = signed_in(users["punjab"])
    with clock.frozen_at(SOON):
        response = client.post(
            f"/incidents/{incident.pk}/tasks/",
            {"title": "Image the servers", "owner": "punjab.handler", "due_at": "2026-11-01T12:00"},
        )
    task = Task.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/incidents/{incident.pk}/#tasks"
    assert (task.title, task.owner, task.due_at) == (
        "Image the servers",
        users["punjab"],
        dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC),
    )
    with clock.frozen_at(SOON):
        page = text(client.get(response["Location"]))
    assert "Task added: Image the servers." in page
    row = re.search(rf'<tr id="task-{task.pk}"[^>]*>', page)
    assert row is not None
    assert "row-overdue" not in row.group(0)
    assert "2026-11-01 12:00 <span" in section(page, "tasks")
    # Past its due time the open task is highlighted; done, it is not.
    with clock.frozen_at(LATER):
        page = text(client.get(f"/incidents/{incident.pk}/"))
    assert f'<tr id="task-{task.pk}" class="row-overdue" data-task="{task.pk}">' in page
    assert '<span class="overdue">overdue since 2026-11-01 12:00 UTC</span>' in page
    assert '<span class="overdue">1 overdue</span>' in page
    with clock.frozen_at(LATER):
        done = client.post(f"/incidents/{incident.pk}/tasks/{task.pk}/complete/")
        assert done["Location"] == f"/incidents/{incident.pk}/#task-{task.pk}"
        page = text(client.get(f"/incidents/{incident.pk}/"))
    assert f'<tr id="task-{task.pk}" class=" task-done" data-task="{task.pk}">' in page
    assert "overdue since" not in page
    assert '<span class="badge badge-green badge-sm">done</span>' in page
    assert "Reopen</button>" in page


@pytest.mark.django_db
def test_a_bad_task_is_shown_again_with_the_errors_and_what_was_typed(world: Any) -> None:
    _, users = world
    incident = incident_of(world)
    client = signed_in(users["punjab"])
    with clock.frozen_at(SOON):
        past = client.post(
            f"/incidents/{incident.pk}/tasks/",
            {"title": "Reset passwords", "owner": "sindh.handler", "due_at": "2026-11-01T09:00"},
        )
        unreadable = client.post(f"/incidents/{incident.pk}/tasks/", {"title": "x", "due_at": "soon"})
    assert past.status_code == 422
    tasks = section(text(past), "tasks")
    assert "<strong>The task was not added.</strong> The task is not valid:" in tasks
    assert (
        '<small class="field-error" role="alert">2026-11-01 09:00 UTC is in the past (it is now 2026-11-01 '
        "10:00 UTC); give a time from now on</small>"
    ) in tasks
    assert (
        '<small class="field-error" role="alert">Sindh.handler is not a handler of Punjab CERT</small>'
        in tasks
    )
    assert 'value="Reset passwords"' in tasks
    assert 'value="2026-11-01T09:00"' in tasks
    assert unreadable.status_code == 422
    assert "&#x27;soon&#x27; is not a date and time (YYYY-MM-DD HH:MM, UTC)" in text(unreadable)
    assert Task.objects.count() == 0


@pytest.mark.django_db
def test_changing_and_reopening_a_task_through_the_page(world: Any) -> None:
    _, users = world
    incident = incident_of(world)
    client = signed_in(users["punjab"])
    with clock.frozen_at(SOON):
        task = work.add_task(actor=users["punjab"], incident=incident, title="Image the servers")
        url = f"/incidents/{incident.pk}/tasks/{task.pk}"
        changed = client.post(
            f"{url}/edit/",
            {"title": "Image both servers", "owner": "punjab.handler", "due_at": "2026-11-03T08:00"},
        )
        assert changed.status_code == 302
        task.refresh_from_db()
        assert (task.title, task.owner, task.due_at) == (
            "Image both servers",
            users["punjab"],
            dt.datetime(2026, 11, 3, 8, 0, tzinfo=dt.UTC),
        )
        page = text(client.get(f"/incidents/{incident.pk}/"))
        assert 'name="due_at" value="2026-11-03T08:00"' in page
        assert "task changed: Image both servers: title Image the servers → Image both servers" in page
        refused = client.post(f"{url}/edit/", {"title": "", "owner": "lahore.analyst", "due_at": ""})
        assert refused.status_code == 422
        row = text(refused)
        assert "<details open>" in row
        assert "<strong>The task was not changed.</strong>" in row
        assert "Lahore.analyst is not a handler of Punjab CERT" in row
        assert client.post(f"{url}/reopen/").status_code == 409
        assert client.post(f"{url}/complete/").status_code == 302
        assert client.post(f"{url}/complete/").status_code == 409
        assert client.post(f"{url}/reopen/").status_code == 302
        assert client.post(f"{url}/shred/").status_code == 404
        assert client.post(f"/incidents/{incident.pk}/tasks/987654/complete/").status_code == 404
    task.refresh_from_db()
    assert (task.title, task.done_at) == ("Image both servers", None)


@pytest.mark.django_db
def test_comments_through_the_page(world: Any) -> None:
    _, users = world
    incident = incident_of(world)
    client = signed_in(users["lahore"])
    with clock.frozen_at(SOON):
        response = client.post(
            f"/incidents/{incident.pk}/comments/", {"body": "Backups are offline.\nAll of them."}
        )
        comment = Comment.objects.get()
        assert response["Location"] == f"/incidents/{incident.pk}/#comment-{comment.pk}"
        page = text(client.get(f"/incidents/{incident.pk}/"))
        assert "Backups are offline.<br>All of them." in section(page, "comments")
        assert "commented: Backups are offline. All of them." in section(page, "timeline")
        empty = client.post(f"/incidents/{incident.pk}/comments/", {"body": "   "})
    assert empty.status_code == 422
    assert "<strong>The comment was not added.</strong>" in text(empty)
    assert '<small class="field-error" role="alert">Must not be empty: write the comment</small>' in text(
        empty
    )
    assert Comment.objects.count() == 1


@pytest.mark.django_db
def test_the_forms_refuse_whoever_may_not_and_hide_from_whoever_may_not_see(world: Any) -> None:
    _, users = world
    incident = incident_of(world)
    task = work.add_task(actor=users["punjab"], incident=incident, title="t")
    posts = [
        (f"/incidents/{incident.pk}/tasks/", {"title": "x"}),
        (f"/incidents/{incident.pk}/tasks/{task.pk}/complete/", {}),
        (f"/incidents/{incident.pk}/tasks/{task.pk}/edit/", {"title": "x"}),
    ]
    for url, body in posts:
        refused = signed_in(users["lahore"]).post(url, body)
        assert refused.status_code == 403
        assert f"</strong> You may not handle incident {incident.pk}" in section(text(refused), "tasks")
        assert signed_in(users["karachi"]).post(url, body).status_code == 404
        assert signed_in(users["sindh"]).post(url, body).status_code == 404
        anonymous = Client().post(url, body)
        assert (anonymous.status_code, anonymous["Location"]) == (302, f"/login/?next={url}")
    assert (
        signed_in(users["lahore-viewer"])
        .post(f"/incidents/{incident.pk}/comments/", {"body": "x"})
        .status_code
        == 403
    )
    assert (
        signed_in(users["karachi"]).post(f"/incidents/{incident.pk}/comments/", {"body": "x"}).status_code
        == 404
    )
    assert signed_in(users["punjab"]).get(f"/incidents/{incident.pk}/tasks/").status_code == 405
    task.refresh_from_db()
    assert (Task.objects.count(), task.title, task.done_at, Comment.objects.count()) == (1, "t", None, 0)


@pytest.mark.django_db
def test_a_closed_incident_offers_no_forms(world: Any) -> None:
    _, users = world
    incident = incident_of(world)
    for move in ("in-progress", "resolved", "closed"):
        services.change_status(actor=users["punjab"], incident=incident, to_status=move)
    page = text(signed_in(users["punjab"]).get(f"/incidents/{incident.pk}/"))
    assert "No tasks yet." in page
    assert 'data-testid="task-add"' not in page
    assert 'data-testid="comment-add"' not in page
    refused = signed_in(users["punjab"]).post(f"/incidents/{incident.pk}/comments/", {"body": "late"})
    assert refused.status_code == 409
    assert "its tasks and comments can no longer change" in text(refused)


# --- the escalated view -------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_escalated_view_lists_escalated_incidents_newest_escalation_first(world: Any) -> None:
    _, users = world
    with clock.frozen_at(SOON):
        quiet = incident_of(world, severity=2)
        first = incident_of(world, severity=4)  # escalated by the severity rule
        red = incident_of(world, severity=3, tlp="red", named_users=["punjab.handler"])
    with clock.frozen_at(LATER):
        services.escalate_incident(
            actor=users["punjab"], incident=quiet, reason="needs national coordination"
        )
        karachi = services.triage_report(
            actor=users["sindh"],
            report=services.submit_report(
                actor=users["karachi"],
                data=services.ReportInput(
                    reporting_organisation="karachi", title="DDoS on billing", description="d", aware_at=AWARE
                ),
            ),
            data=services.TriageInput(
                classification_taxonomy="availability", classification_type="ddos", severity=5
            ),
        )
    # The severity-4 and RED incidents went up together at SOON; the later ones lead.
    expected = [karachi.pk, quiet.pk, red.pk, first.pk]
    with clock.frozen_at(LATER):
        page = text(signed_in(users["ncert"]).get("/incidents/escalated/"))
    assert "4 escalated incidents" in page
    assert [int(i) for i in re.findall(r'<tr class="[^"]*" data-incident="(\d+)">', page)] == expected
    # The RED one is a stub row: no title, the rest as a stub shows it.
    red_row = re.search(rf'data-incident="{red.pk}">.*?</tr>', page, re.S)
    assert red_row is not None
    assert "restricted (TLP:RED)" in red_row.group(0)
    assert "Ransomware on file servers" not in red_row.group(0)
    assert "Lahore" in red_row.group(0)
    assert '<span class="escalated">NCERT</span>' in red_row.group(0)
    assert "2026-11-01 10:00" in red_row.group(0)
    # Punjab CERT sees its province's escalated incidents, named or stub; Sindh its own; the nav says so.
    with clock.frozen_at(LATER):
        punjab = text(signed_in(users["punjab"]).get("/incidents/escalated/"))
        sindh = text(signed_in(users["sindh"]).get("/incidents/escalated/"))
    assert [int(i) for i in re.findall(r'data-incident="(\d+)"', punjab)] == [quiet.pk, red.pk, first.pk]
    assert [int(i) for i in re.findall(r'data-incident="(\d+)"', sindh)] == [karachi.pk]
    assert '<a href="/incidents/escalated/" class="active" aria-current="page">Escalated</a>' in punjab


@pytest.mark.django_db
def test_the_escalated_view_filters_pages_and_answers_htmx_with_the_table(
    world: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, users = world
    with clock.frozen_at(SOON):
        severe = incident_of(world, severity=4)
        high = incident_of(world, severity=3)
    services.change_status(actor=users["punjab"], incident=high, to_status="in-progress")
    client = signed_in(users["ncert"])

    def listed(**params: str) -> list[int]:
        return [
            int(i)
            for i in re.findall(r'data-incident="(\d+)"', text(client.get("/incidents/escalated/", params)))
        ]

    assert sorted(listed()) == sorted([severe.pk, high.pk])
    assert listed(severity="4") == [severe.pk]
    assert listed(status="in-progress") == [high.pk]
    assert listed(status="in-progress", severity="4") == []
    assert listed(severity="high") == sorted([severe.pk, high.pk], reverse=True)  # ignored, not an error
    fragment = client.get("/incidents/escalated/", {"severity": "4"}, headers={"HX-Request": "true"})
    assert text(fragment).startswith('<section id="escalated-table"')
    assert "<html" not in text(fragment)
    assert "HX-Request" in fragment["Vary"]
    monkeypatch.setattr("certnet.incidents.views_work.PAGE_SIZE", 1)
    first, second = listed(), listed(page="2")
    assert len(first) == len(second) == 1
    assert first != second
    assert "1\u20131 of 2" in text(client.get("/incidents/escalated/"))


@pytest.mark.django_db
def test_the_escalated_link_is_for_members_of_a_cert(world: Any) -> None:
    _, users = world
    link = '<a href="/incidents/escalated/">Escalated</a>'
    assert link in text(signed_in(users["ncert"]).get("/incidents/"))
    assert link in text(signed_in(users["sindh"]).get("/incidents/"))
    assert link not in text(signed_in(users["lahore"]).get("/incidents/"))
    # The page itself shows a constituent only what it sees: its own escalated incidents.
    incident = incident_of(world, severity=4)
    page = text(signed_in(users["lahore"]).get("/incidents/escalated/"))
    assert re.findall(r'data-incident="(\d+)"', page) == [str(incident.pk)]
    assert text(signed_in(users["karachi"]).get("/incidents/escalated/")).count("data-incident=") == 0
    anonymous = Client().get("/incidents/escalated/")
    assert (anonymous.status_code, anonymous["Location"]) == (302, "/login/?next=/incidents/escalated/")
