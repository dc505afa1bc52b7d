"""The work services: tasks (owners, due times, done and reopened, changed) and comments, each with its
audit entry, timeline event and — for a task given to someone — a notification; refusals change
nothing. The API and its authorisation walk are in tests/test_api_work_authz.py."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from certnet.accounts.models import User
from certnet.core import clock
from certnet.core.audit import SystemActor
from certnet.core.errors import Forbidden, IllegalTransition, InvalidInput, NotFound
from certnet.core.models import AuditEntry
from certnet.core.roles import Role
from certnet.incidents import services
from certnet.incidents.models import Comment, Incident, Report, Task, TimelineEvent
from certnet.incidents.services import work
from certnet.notifications.models import Notification
from certnet.registry import services as registry
from certnet.registry.models import Organisation

SYSTEM = SystemActor("test")
AWARE = dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.UTC)
NOW = AWARE + dt.timedelta(hours=1)
TOMORROW = NOW + dt.timedelta(days=1)


@pytest.fixture(autouse=True)
def _frozen_now() -> Iterator[None]:
    with clock.frozen_at(NOW):
        yield


@dataclass
class World:
    orgs: dict[str, Organisation]
    people: dict[str, User]

    def __getitem__(self, name: str) -> User:
        return self.people[name]

    def incident(self, severity: int = 2, **report_extra: Any) -> Incident:
        report = services.submit_report(
            actor=self["lahore"],
            data=services.ReportInput(
                reporting_organisation="lahore",
                title="Ransomware on file servers",
                description="Files encrypted on two servers.",
                aware_at=AWARE,
                **report_extra,
            ),
        )
        return services.triage_report(
            actor=self["punjab"],
            report=report,
            data=services.TriageInput(
                classification_taxonomy="malicious-code",
                classification_type="infected-system",
                severity=severity,
            ),
        )


@pytest.fixture
def world(framework: dict[str, Organisation], make_user: Any) -> World:
    lahore = registry.create_organisation(
        actor=SYSTEM,
        data=registry.OrganisationInput(
            slug="lahore",
            name="Lahore Water Board",
            kind="constituent",
            reports_to="punjab-cert",
            reports_since=dt.date(2024, 1, 1),
        ),
    )
    orgs = {**framework, "lahore": lahore}
    people = {
        "lahore": make_user(lahore, Role.ANALYST, username="lahore.analyst"),
        "lahore-viewer": make_user(lahore, Role.VIEWER, username="lahore.viewer"),
        "punjab": make_user(orgs["punjab-cert"], Role.HANDLER, username="punjab.handler"),
        "punjab-other": make_user(orgs["punjab-cert"], Role.MANAGER, username="punjab.manager"),
        "punjab-analyst": make_user(orgs["punjab-cert"], Role.ANALYST, username="punjab.analyst"),
        "sindh": make_user(orgs["sindh-cert"], Role.HANDLER, username="sindh.handler"),
        "ncert": make_user(orgs["ncert"], Role.HANDLER, username="ncert.handler"),
        "admin": make_user(username="platform.admin", platform_admin=True),
    }
    return World(orgs, people)


def written() -> tuple[int, ...]:
    """Counts of every row a work service writes."""
    return (
        Task.objects.count(),
        Comment.objects.count(),
        TimelineEvent.objects.count(),
        AuditEntry.objects.count(),
        Notification.objects.count(),
    )


def last_audit() -> AuditEntry:
    entry = AuditEntry.objects.order_by("-seq").first()
    assert entry is not None
    return entry


def last_event(incident: Incident) -> TimelineEvent:
    event = incident.timeline.order_by("-at", "-id").first()
    assert event is not None
    return event


# --- tasks ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_handler_adds_a_task_for_a_colleague_who_is_told(world: World) -> None:
    incident = world.incident()
    task = work.add_task(
        actor=world["punjab"],
        incident=incident,
        title="  Image the two file servers ",
        owner_username="punjab.manager",
        due_at=TOMORROW,
    )
    task.refresh_from_db()
    assert (task.title, task.owner, task.due_at, task.done_at, task.created_by, task.created_at) == (
        "Image the two file servers",
        world["punjab-other"],
        TOMORROW,
        None,
        world["punjab"],
        NOW,
    )
    entry = last_audit()
    assert (entry.action, entry.object_type, entry.object_id, entry.actor_label) == (
        "incidents.task.add",
        "incidents.task",
        str(task.pk),
        "punjab.handler",
    )
    assert entry.organisation_id == world.orgs["lahore"].pk
    assert entry.data == {
        "incident": incident.pk,
        "title": "Image the two file servers",
        "owner": "punjab.manager",
        "due_at": "2026-11-02T09:00:00+00:00",
    }
    event = last_event(incident)
    assert (event.kind, event.actor_label, event.summary, event.data) == (
        "task-added",
        "punjab.handler",
        "task added: Image the two file servers (for punjab.manager, due 2026-11-02 09:00 UTC)",
        {"task": task.pk},
    )
    told = Notification.objects.get(kind="task-assigned")
    assert (told.recipient, told.kind, told.subject, told.link) == (
        world["punjab-other"],
        "task-assigned",
        f"INC-{incident.pk}: a task for you — Image the two file servers",
        f"/incidents/{incident.pk}/#tasks",
    )
    assert told.body == (
        f"punjab.handler gave you the task “Image the two file servers” on INC-{incident.pk}, "
        "due 2026-11-02 09:00 UTC."
    )


@pytest.mark.django_db
def test_a_task_without_owner_or_due_time_and_one_for_oneself_tell_nobody(world: World) -> None:
    incident = world.incident()
    bare = work.add_task(actor=world["punjab"], incident=incident, title="Collect the logs")
    assert (bare.owner, bare.due_at) == (None, None)
    assert last_event(incident).summary == "task added: Collect the logs"
    mine = work.add_task(
        actor=world["punjab"], incident=incident, title="Call the operator", owner_username="punjab.handler"
    )
    assert mine.owner == world["punjab"]
    assert not Notification.objects.filter(kind="task-assigned").exists()


@pytest.mark.django_db
def test_task_input_is_checked_completely_and_nothing_is_written(world: World) -> None:
    incident = world.incident()
    before = written()
    with pytest.raises(InvalidInput) as caught:
        work.add_task(
            actor=world["punjab"],
            incident=incident,
            title="   ",
            owner_username="nobody.at.all",
            due_at=NOW - dt.timedelta(minutes=1),
        )
    assert [(e.loc, e.msg) for e in caught.value.errors] == [
        ("title", "must not be empty: say what is to be done"),
        (
            "due_at",
            "2026-11-01 08:59 UTC is in the past (it is now 2026-11-01 09:00 UTC); give a time from now on",
        ),
        ("owner", "no user 'nobody.at.all'"),
    ]
    assert caught.value.detail.startswith("the task is not valid: title: must not be empty")
    with pytest.raises(InvalidInput) as caught:
        work.add_task(actor=world["punjab"], incident=incident, title="x" * 201)
    assert [(e.loc, e.msg) for e in caught.value.errors] == [
        ("title", "is 201 characters long; the limit is 200")
    ]
    assert written() == before


@pytest.mark.django_db
def test_a_due_time_without_offset_is_utc_and_now_is_not_the_past(world: World) -> None:
    incident = world.incident()
    naive = work.add_task(
        actor=world["punjab"],
        incident=incident,
        title="a",
        due_at=dt.datetime.fromisoformat("2026-11-03T12:00"),
    )
    assert naive.due_at == dt.datetime(2026, 11, 3, 12, 0, tzinfo=dt.UTC)
    karachi = dt.timezone(dt.timedelta(hours=5))
    offset = work.add_task(
        actor=world["punjab"],
        incident=incident,
        title="b",
        due_at=dt.datetime(2026, 11, 3, 17, 0, tzinfo=karachi),
    )
    assert offset.due_at == dt.datetime(2026, 11, 3, 12, 0, tzinfo=dt.UTC)
    assert work.add_task(actor=world["punjab"], incident=incident, title="c", due_at=NOW).due_at == NOW


@pytest.mark.django_db
def test_task_owners_are_handlers_of_the_cert_in_charge_who_read_the_incident(world: World) -> None:
    incident = world.incident()
    for username, why in (
        ("punjab.analyst", "punjab.analyst is not a handler of Punjab CERT"),
        ("lahore.analyst", "lahore.analyst is not a handler of Punjab CERT"),
        ("sindh.handler", "sindh.handler is not a handler of Punjab CERT"),
        ("ncert.handler", "ncert.handler is not a handler of Punjab CERT"),
        ("platform.admin", "platform.admin is not a handler of Punjab CERT"),
    ):
        before = written()
        with pytest.raises(InvalidInput) as caught:
            work.add_task(actor=world["punjab"], incident=incident, title="t", owner_username=username)
        assert [(e.loc, e.msg) for e in caught.value.errors] == [("owner", why)]
        assert written() == before
    assert [u.username for u in work.possible_owners(incident)] == ["punjab.handler", "punjab.manager"]
    # Escalated, the National CERT's handlers may own its tasks too.
    services.escalate_incident(actor=world["punjab"], incident=incident, reason="national coordination")
    incident.refresh_from_db()
    task = work.add_task(actor=world["ncert"], incident=incident, title="t", owner_username="ncert.handler")
    assert task.owner == world["ncert"]
    assert [u.username for u in work.possible_owners(incident)] == [
        "ncert.handler",
        "punjab.handler",
        "punjab.manager",
    ]
    with pytest.raises(InvalidInput) as caught:
        work.add_task(actor=world["ncert"], incident=incident, title="t", owner_username="sindh.handler")
    assert caught.value.errors[0].msg == "sindh.handler is not a handler of Punjab CERT or NCERT"


@pytest.mark.django_db
def test_on_a_red_incident_only_named_readers_own_tasks_and_the_mail_keeps_the_title(world: World) -> None:
    incident = world.incident(tlp="red", named_users=["punjab.handler"])
    with pytest.raises(InvalidInput) as caught:
        work.add_task(actor=world["punjab"], incident=incident, title="t", owner_username="punjab.manager")
    assert caught.value.errors[0].msg == (
        f"punjab.manager may not read INC-{incident.pk}: "
        "it is TLP:RED and they are not among its named readers"
    )
    assert [u.username for u in work.possible_owners(incident)] == ["punjab.handler"]
    incident.named_users.add(world["punjab-other"])
    work.add_task(
        actor=world["punjab"], incident=incident, title="Secret step", owner_username="punjab.manager"
    )
    told = Notification.objects.get(kind="task-assigned")
    assert told.subject == f"INC-{incident.pk}: a task for you"
    assert "Secret step" not in told.body
    assert (
        told.body
        == f"punjab.handler gave you a task (TLP:RED: read it on the platform) on INC-{incident.pk}."
    )


@pytest.mark.django_db
def test_tasks_are_for_the_handlers_above_and_invisible_incidents_are_not_found(world: World) -> None:
    incident = world.incident()
    before = written()
    for person in ("lahore", "lahore-viewer", "punjab-analyst"):
        with pytest.raises(Forbidden) as forbidden:
            work.add_task(actor=world[person], incident=incident, title="t")
        assert forbidden.value.detail == f"you may not handle incident {incident.pk}"
    with pytest.raises(NotFound) as missing:
        work.add_task(actor=world["sindh"], incident=incident, title="t")
    assert missing.value.detail == f"no incident {incident.pk}"
    # The right is checked before the input: a refused person learns nothing about user names.
    with pytest.raises(Forbidden):
        work.add_task(actor=world["lahore"], incident=incident, title="", owner_username="ghost")
    assert written() == before
    for person in ("punjab-other", "ncert", "admin"):
        assert work.add_task(actor=world[person], incident=incident, title=person).created_by == world[person]


@pytest.mark.django_db
def test_done_and_reopened_tasks(world: World) -> None:
    incident = world.incident()
    task = work.add_task(actor=world["punjab"], incident=incident, title="Reset passwords")
    later = NOW + dt.timedelta(hours=2)
    with clock.frozen_at(later):
        done = work.complete_task(actor=world["ncert"], incident=incident, task_id=task.pk)
    assert done.done_at == later
    assert (last_audit().action, last_event(incident).summary) == (
        "incidents.task.complete",
        "task done: Reset passwords",
    )
    before = written()
    with pytest.raises(IllegalTransition) as twice:
        work.complete_task(actor=world["punjab"], incident=incident, task_id=task.pk)
    assert twice.value.detail == f"task {task.pk} was already done at 2026-11-01 11:00 UTC"
    assert written() == before
    with clock.frozen_at(later + dt.timedelta(hours=1)):
        reopened = work.reopen_task(actor=world["punjab"], incident=incident, task_id=task.pk)
    assert reopened.done_at is None
    assert last_audit().data == {
        "incident": incident.pk,
        "title": "Reset passwords",
        "was_done_at": "2026-11-01T11:00:00+00:00",
    }
    assert last_event(incident).kind == "task-reopened"
    before = written()
    with pytest.raises(IllegalTransition) as open_already:
        work.reopen_task(actor=world["punjab"], incident=incident, task_id=task.pk)
    assert open_already.value.detail == f"task {task.pk} is not done; only a done task can be reopened"
    with pytest.raises(Forbidden):
        work.complete_task(actor=world["lahore"], incident=incident, task_id=task.pk)
    assert written() == before


@pytest.mark.django_db
def test_a_task_is_found_on_its_own_incident_only_after_the_right(world: World) -> None:
    first, second = world.incident(), world.incident()
    task = work.add_task(actor=world["punjab"], incident=first, title="t")
    with pytest.raises(NotFound) as elsewhere:
        work.complete_task(actor=world["punjab"], incident=second, task_id=task.pk)
    assert elsewhere.value.detail == f"no task {task.pk} on INC-{second.pk}"
    with pytest.raises(NotFound) as missing:
        work.update_task(actor=world["punjab"], incident=first, task_id=987_654, title="x")
    assert missing.value.detail == f"no task 987654 on INC-{first.pk}"
    with pytest.raises(Forbidden):  # not NotFound: whether task 987654 exists is none of their business
        work.complete_task(actor=world["lahore"], incident=first, task_id=987_654)


@pytest.mark.django_db
def test_changing_a_task(world: World) -> None:
    incident = world.incident()
    task = work.add_task(
        actor=world["punjab"], incident=incident, title="Image servers", due_at=NOW + dt.timedelta(seconds=90)
    )
    # Nothing said, or the same again (a form sends the due time to the minute): no change, no entry.
    before = written()
    work.update_task(actor=world["punjab"], incident=incident, task_id=task.pk)
    work.update_task(
        actor=world["punjab"],
        incident=incident,
        task_id=task.pk,
        title="Image servers",
        owner_username=None,
        due_at=dt.datetime.fromisoformat("2026-11-01T09:01"),
    )
    assert written() == before
    # Past its due time the task keeps it through an unrelated change.
    with clock.frozen_at(NOW + dt.timedelta(hours=1)):
        changed = work.update_task(
            actor=world["punjab"],
            incident=incident,
            task_id=task.pk,
            title="Image both servers",
            owner_username="punjab.manager",
            due_at=dt.datetime.fromisoformat("2026-11-01T09:01"),
        )
    assert (changed.title, changed.owner, changed.due_at) == (
        "Image both servers",
        world["punjab-other"],
        NOW + dt.timedelta(seconds=90),
    )
    assert last_event(incident).summary == (
        "task changed: Image both servers: "
        "title Image servers → Image both servers; owner none → punjab.manager"
    )
    assert last_audit().data == {
        "incident": incident.pk,
        "changes": {"title": ["Image servers", "Image both servers"], "owner": [None, "punjab.manager"]},
    }
    assert Notification.objects.get(kind="task-assigned").recipient == world["punjab-other"]
    cleared = work.update_task(
        actor=world["punjab"], incident=incident, task_id=task.pk, owner_username=None, due_at=None
    )
    assert (cleared.owner, cleared.due_at) == (None, None)
    before = written()
    with pytest.raises(InvalidInput) as caught:
        work.update_task(
            actor=world["punjab"],
            incident=incident,
            task_id=task.pk,
            title="",
            due_at=NOW - dt.timedelta(days=1),
            owner_username="sindh.handler",
        )
    assert [e.loc for e in caught.value.errors] == ["title", "due_at", "owner"]
    assert caught.value.detail.startswith("the change to the task is not valid: ")
    assert written() == before


@pytest.mark.django_db
def test_a_final_incident_takes_no_more_work(world: World) -> None:
    incident = world.incident()
    task = work.add_task(actor=world["punjab"], incident=incident, title="t")
    for move in ("in-progress", "resolved"):
        services.change_status(actor=world["punjab"], incident=incident, to_status=move)
    incident.refresh_from_db()
    assert work.open_to_work(incident)  # resolved may reopen
    work.complete_task(actor=world["punjab"], incident=incident, task_id=task.pk)
    services.change_status(actor=world["punjab"], incident=incident, to_status="closed")
    incident.refresh_from_db()
    assert not work.open_to_work(incident)
    before = written()
    calls = [
        lambda: work.add_task(actor=world["punjab"], incident=incident, title="t"),
        lambda: work.reopen_task(actor=world["punjab"], incident=incident, task_id=task.pk),
        lambda: work.update_task(actor=world["punjab"], incident=incident, task_id=task.pk, title="u"),
        lambda: work.add_comment(actor=world["lahore"], incident=incident, body="thanks"),
    ]
    for call in calls:
        with pytest.raises(IllegalTransition) as caught:
            call()
        assert (
            caught.value.detail == f"INC-{incident.pk} is closed; its tasks and comments can no longer change"
        )
    assert written() == before


# --- comments -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_comments_from_both_sides_and_the_first_response(world: World) -> None:
    incident = world.incident()
    report = Report.objects.get(incident=incident)
    assert report.first_response_at is None
    # The affected organisation's own comment does not answer its report.
    work.add_comment(actor=world["lahore"], incident=incident, body="Backups are offline.\nSecond line.")
    report.refresh_from_db()
    assert report.first_response_at is None
    event = last_event(incident)
    assert (event.kind, event.summary) == ("comment", "commented: Backups are offline. Second line.")
    entry = last_audit()
    assert entry.action == "incidents.comment.add"
    assert entry.data == {
        "incident": incident.pk,
        "length": 33,
        "sha256": "a936ea4a2ddf0f7aa892b9f3316e9ae06c6efb0534c92dd95dab5aabcb3d6b92",
    }
    later = NOW + dt.timedelta(minutes=30)
    with clock.frozen_at(later):
        comment = work.add_comment(
            actor=world["punjab"], incident=incident, body="  " + "Isolate them. " * 20
        )
    report.refresh_from_db()
    assert report.first_response_at == later
    assert report.acknowledged_at is not None
    assert report.acknowledged_at <= later
    assert comment.body == ("Isolate them. " * 20).strip()
    assert (comment.author, comment.created_at) == (world["punjab"], later)
    summary = last_event(incident).summary
    assert summary.startswith("commented: Isolate them. Isolate them.")
    assert summary.endswith("…")
    assert len(summary) == len("commented: ") + work.EXCERPT
    # A later response leaves the first where it was.
    with clock.frozen_at(later + dt.timedelta(minutes=5)):
        work.add_comment(actor=world["ncert"], incident=incident, body="Noted.")
    report.refresh_from_db()
    assert report.first_response_at == later
    assert list(incident.comments.values_list("author__username", flat=True)) == [
        "lahore.analyst",
        "punjab.handler",
        "ncert.handler",
    ]


@pytest.mark.django_db
def test_comment_rights_and_input(world: World) -> None:
    incident = world.incident()
    before = written()
    for person in ("lahore-viewer", "punjab-analyst"):
        with pytest.raises(Forbidden) as refused:
            work.add_comment(actor=world[person], incident=incident, body="hello")
        assert refused.value.detail == f"you may not change incident {incident.pk}"
    with pytest.raises(NotFound):
        work.add_comment(actor=world["sindh"], incident=incident, body="hello")
    with pytest.raises(InvalidInput) as empty:
        work.add_comment(actor=world["lahore"], incident=incident, body=" \n ")
    assert [(e.loc, e.msg) for e in empty.value.errors] == [("body", "must not be empty: write the comment")]
    with pytest.raises(InvalidInput) as long:
        work.add_comment(actor=world["punjab"], incident=incident, body="x" * 10_001)
    assert [(e.loc, e.msg) for e in long.value.errors] == [
        ("body", "is 10001 characters long; the limit is 10000")
    ]
    assert written() == before
    assert work.add_comment(actor=world["admin"], incident=incident, body="x" * 10_000).pk
