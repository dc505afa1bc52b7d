"""Every task and comment endpoint walked with people of every role and tier.

The organisations, people, tokens and helpers are those of tests/test_api_incidents_authz.py (lahore
and multan under punjab-cert, karachi under sindh-cert; viewers, analysts, handlers and managers of
each tier; a platform administrator; anonymous). Time is frozen an hour after awareness.

Expected answers: 401 anonymous; 404 for whoever sees not even a stub of the incident, exactly like a
missing incident; 403 for whoever sees it (a TLP:RED stub included) but may not read its work or act;
200/201 otherwise. Reading tasks and comments needs the incident in full; tasks are written by those
who may handle the incident; comments by analysts of the affected organisation and handlers above it.
A refused request changes nothing: no task, comment, timeline event, audit entry or notification.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from certnet.incidents.models import Comment, Task
from certnet.notifications.models import Notification
from tests import test_api_incidents_authz as base
from tests.test_api_incidents_authz import (
    ADMIN,
    ANON,
    EVERYONE,
    HANDLERS,
    KARACHI,
    L_ANALYST,
    L_MANAGER,
    L_VIEWER,
    MISSING,
    MULTAN,
    N_HANDLER,
    N_VIEWER,
    NOW,
    P_HANDLER,
    P_OTHER,
    P_VIEWER,
    PEOPLE,
    REFUSED_HANDLE,
    S_HANDLER,
    World,
    problem,
    same_as_missing,
    shape,
)

# The same world and frozen clock as the incident endpoints' walk.
world = base.world
_frozen_now = base._frozen_now

TOMORROW = (NOW + dt.timedelta(days=1)).isoformat()
INVISIBLE = (MULTAN, KARACHI, S_HANDLER)

# Reading the tasks or comments of lahore's AMBER incident: everyone who sees it.
READ_AMBER = {person: 404 if person in INVISIBLE else 200 for person in PEOPLE} | {ANON: 401}
# Commenting on it ("change"): analysts of lahore and above, handlers above it, platform administrators.
COMMENT_AMBER = {
    ANON: 401,
    L_VIEWER: 403,
    L_ANALYST: 201,
    L_MANAGER: 201,
    MULTAN: 404,
    KARACHI: 404,
    P_VIEWER: 403,
    P_HANDLER: 201,
    P_OTHER: 201,
    S_HANDLER: 404,
    N_VIEWER: 403,
    N_HANDLER: 201,
    ADMIN: 201,
}
# On the TLP:RED incident reported by lahore's analyst and naming punjab's handler, whoever sees the
# stub only is refused everything (403); who sees nothing gets 404.
RED_STUB = (L_VIEWER, L_MANAGER, P_VIEWER, P_OTHER, N_VIEWER, N_HANDLER, ADMIN)
RED_READ = (
    {ANON: 401, L_ANALYST: 200, P_HANDLER: 200} | dict.fromkeys(RED_STUB, 403) | dict.fromkeys(INVISIBLE, 404)
)
RED_HANDLE = RED_READ | {L_ANALYST: 403}  # the author reads it but does not handle it
RED_COMMENT = RED_READ | {L_ANALYST: 201, P_HANDLER: 201}


def snapshot() -> tuple[Any, ...]:
    """What the incidents walk compares, and every task, comment and notification."""
    return (
        base.snapshot(),
        list(Task.objects.order_by("pk").values_list("pk", "title", "owner", "due_at", "done_at")),
        list(Comment.objects.order_by("pk").values_list("pk", "author", "body")),
        Notification.objects.count(),
    )


def refused(world: World, table: dict[str, int], send: Callable[[Any], Any]) -> None:
    """Every person in `table` gets exactly the listed 4xx as problem+json, and nothing changes."""
    before = snapshot()
    got: dict[str, int] = {}
    for person, expected in table.items():
        response = send(world(person))
        got[person] = response.status_code
        if response.status_code == expected:
            problem(response, expected)
    assert got == table
    assert snapshot() == before


def answers(world: World, people: Any, send: Callable[[Any], Any]) -> dict[str, int]:
    return {person: send(world(person)).status_code for person in people}


def add_task(world: World, incident_id: int, person: str = P_HANDLER, **body: Any) -> dict[str, Any]:
    response = world(person).post(f"/incidents/{incident_id}/tasks", {"title": "Image the servers", **body})
    assert response.status_code == 201, response.content
    created: dict[str, Any] = response.json()
    return created


def listed(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["count"] == len(body["items"])
    items: list[dict[str, Any]] = body["items"]
    return items


# --- anonymous ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_anonymous_callers_get_401_from_every_work_endpoint(world: World) -> None:
    incident_id = world.incident(L_ANALYST)
    task = add_task(world, incident_id)["id"]
    anonymous = world(ANON)
    before = snapshot()
    got = []
    for target in (incident_id, MISSING):
        for task_id in (task, MISSING):
            got += [
                anonymous.post(f"/incidents/{target}/tasks/{task_id}/complete"),
                anonymous.post(f"/incidents/{target}/tasks/{task_id}/reopen"),
                anonymous.patch(f"/incidents/{target}/tasks/{task_id}", {"title": "x"}),
            ]
        got += [
            anonymous.get(f"/incidents/{target}/tasks"),
            anonymous.post(f"/incidents/{target}/tasks", {"title": "x"}),
            anonymous.get(f"/incidents/{target}/comments"),
            anonymous.post(f"/incidents/{target}/comments", {"body": "x"}),
        ]
    assert [r.status_code for r in got] == [401] * len(got)
    for response in got:
        problem(response, 401)
    assert snapshot() == before


# --- reading ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_tasks_and_comments_are_read_by_everyone_who_sees_the_incident_in_full(world: World) -> None:
    incident_id = world.incident(L_ANALYST)
    task = add_task(world, incident_id, owner=P_OTHER, due_at=TOMORROW)
    world(L_ANALYST).post(f"/incidents/{incident_id}/comments", {"body": "Backups are offline."})
    for suffix in ("tasks", "comments"):
        path = f"/incidents/{incident_id}/{suffix}"
        assert answers(world, EVERYONE, lambda c, p=path: c.get(p)) == READ_AMBER
        for person in INVISIBLE:
            same_as_missing(world, person, f"/incidents/{{id}}/{suffix}", incident_id)
    assert listed(world(N_VIEWER).get(f"/incidents/{incident_id}/tasks")) == [
        {
            "id": task["id"],
            "incident": incident_id,
            "title": "Image the servers",
            "owner": P_OTHER,
            "due_at": "2026-11-02T09:00:00Z",
            "done_at": None,
            "overdue": False,
            "created_by": P_HANDLER,
            "created_at": "2026-11-01T09:00:00Z",
        }
    ]
    comments = listed(world(L_VIEWER).get(f"/incidents/{incident_id}/comments"))
    assert [(c["author"], c["body"], c["incident"]) for c in comments] == [
        (L_ANALYST, "Backups are offline.", incident_id)
    ]


@pytest.mark.django_db
def test_the_work_of_a_red_incident_is_read_by_its_named_readers_only(world: World) -> None:
    red = world.incident(L_ANALYST, tlp="red", named_users=[P_HANDLER])
    add_task(world, red)
    assert world(L_ANALYST).post(f"/incidents/{red}/comments", {"body": "secret"}).status_code == 201
    for suffix in ("tasks", "comments"):
        path = f"/incidents/{red}/{suffix}"
        refused(world, {p: s for p, s in RED_READ.items() if s != 200}, lambda c, p=path: c.get(p))
        for person in (L_ANALYST, P_HANDLER):
            assert len(listed(world(person).get(path))) == 1
        stub = problem(world(N_HANDLER).get(path), 403)
        assert stub["detail"] == f"incident {red} is TLP:RED and you are not among its named readers"
        same_as_missing(world, S_HANDLER, f"/incidents/{{id}}/{suffix}", red)


# --- tasks --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_tasks_are_added_by_the_handlers_above(world: World) -> None:
    incident_id = world.incident(L_ANALYST)
    path = f"/incidents/{incident_id}/tasks"
    body = {"title": "Image the servers", "owner": P_HANDLER, "due_at": TOMORROW}
    refused(world, REFUSED_HANDLE, lambda c: c.post(path, body))
    for person in INVISIBLE:
        same_as_missing(world, person, "/incidents/{id}/tasks", incident_id, body)
    for person in HANDLERS:
        created = add_task(world, incident_id, person, title=f"by {person}", owner=P_OTHER)
        assert (created["created_by"], created["owner"], created["title"]) == (
            person,
            P_OTHER,
            f"by {person}",
        )
    assert [t["title"] for t in listed(world(P_VIEWER).get(path))] == [f"by {p}" for p in HANDLERS]
    kinds = [t["kind"] for t in world(P_HANDLER).get(f"/incidents/{incident_id}").json()["timeline"]]
    assert kinds == ["opened"] + ["task-added"] * len(HANDLERS)
    # Validation only after the right: a viewer learns nothing from a bad body, not even about names.
    ghost = {"title": "", "owner": "no-such-user", "due_at": "2020-01-01T00:00:00Z"}
    refused(
        world, {P_VIEWER: 403, L_ANALYST: 403, KARACHI: 404, P_HANDLER: 422}, lambda c: c.post(path, ghost)
    )
    invalid = problem(world(P_HANDLER).post(path, ghost), 422)
    assert [e["loc"] for e in invalid["errors"]] == ["title", "due_at", "owner"]
    refused(world, {P_HANDLER: 422, P_VIEWER: 422}, lambda c: c.post(path, {"owner": P_HANDLER}))


@pytest.mark.django_db
def test_tasks_are_changed_done_and_reopened_by_the_handlers_above(world: World) -> None:
    incident_id = world.incident(L_ANALYST)
    task = add_task(world, incident_id)["id"]
    base_path = f"/incidents/{incident_id}/tasks/{task}"
    refused(world, REFUSED_HANDLE, lambda c: c.patch(base_path, {"title": "Image both servers"}))
    refused(world, REFUSED_HANDLE, lambda c: c.post(f"{base_path}/complete"))
    # Not done: reopening is a conflict for those who may; the others are refused as always.
    refused(world, {**REFUSED_HANDLE, P_HANDLER: 409, ADMIN: 409}, lambda c: c.post(f"{base_path}/reopen"))
    for person in INVISIBLE:
        same_as_missing(world, person, f"/incidents/{{id}}/tasks/{task}/complete", incident_id, {})
    # Each handler gives the task to someone (the administrator, who owns nothing, takes it away).
    owners = {P_HANDLER: P_HANDLER, P_OTHER: P_OTHER, N_HANDLER: P_HANDLER, ADMIN: None}
    for person in HANDLERS:
        response = world(person).patch(base_path, {"owner": owners[person]})
        assert response.json()["owner"] == owners[person]
        assert response.status_code == 200, (person, response.content)
        done = world(person).post(f"{base_path}/complete")
        assert done.status_code == 200, (person, done.content)
        assert done.json()["done_at"] == "2026-11-01T09:00:00Z"
        refused(world, {person: 409}, lambda c: c.post(f"{base_path}/complete"))
        refused(world, REFUSED_HANDLE, lambda c: c.post(f"{base_path}/reopen"))
        reopened = world(person).post(f"{base_path}/reopen")
        assert (reopened.status_code, reopened.json()["done_at"]) == (200, None)
    # PATCH changes only what is sent; null clears.
    changed = world(P_HANDLER).patch(base_path, {"title": "Image both servers", "due_at": TOMORROW})
    assert changed.status_code == 200, changed.content
    assert (changed.json()["title"], changed.json()["owner"], changed.json()["due_at"]) == (
        "Image both servers",
        None,
        "2026-11-02T09:00:00Z",
    )
    cleared = world(P_HANDLER).patch(base_path, {"due_at": None, "owner": P_OTHER}).json()
    assert (cleared["title"], cleared["owner"], cleared["due_at"]) == ("Image both servers", P_OTHER, None)
    refused(world, {P_HANDLER: 422, P_VIEWER: 403}, lambda c: c.patch(base_path, {"title": None}))
    refused(world, {P_HANDLER: 422, P_VIEWER: 403}, lambda c: c.patch(base_path, {"owner": S_HANDLER}))
    # The new owner is told, unless they gave the task to themselves.
    told = Notification.objects.filter(kind="task-assigned").order_by("pk")
    assert list(told.values_list("recipient__username", flat=True)) == [P_HANDLER, P_OTHER]


@pytest.mark.django_db
def test_a_task_is_addressed_through_its_own_incident(world: World) -> None:
    first, second = world.incident(L_ANALYST), world.incident(L_ANALYST)
    task = add_task(world, first)["id"]
    for person in (P_HANDLER, N_VIEWER, L_VIEWER):
        elsewhere = world(person).post(f"/incidents/{second}/tasks/{task}/complete")
        missing = world(person).post(f"/incidents/{second}/tasks/{MISSING}/complete")
        expected = 404 if person == P_HANDLER else 403
        assert shape(problem(elsewhere, expected)) == shape(problem(missing, expected))
    assert (
        problem(world(P_HANDLER).patch(f"/incidents/{second}/tasks/{task}", {"title": "x"}), 404)["detail"]
        == f"no task {task} on INC-{second}"
    )
    assert Task.objects.get(pk=task).done_at is None


# --- comments -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_comments_are_for_the_analysts_of_the_affected_organisation_and_the_handlers_above(
    world: World,
) -> None:
    incident_id = world.incident(L_ANALYST)
    path = f"/incidents/{incident_id}/comments"
    refused(
        world, {p: s for p, s in COMMENT_AMBER.items() if s != 201}, lambda c: c.post(path, {"body": "hi"})
    )
    for person in INVISIBLE:
        same_as_missing(world, person, "/incidents/{id}/comments", incident_id, {"body": "hi"})
    writers = [p for p, s in COMMENT_AMBER.items() if s == 201]
    for person in writers:
        response = world(person).post(path, {"body": f"from {person}"})
        assert response.status_code == 201, (person, response.content)
        assert (response.json()["author"], response.json()["body"]) == (person, f"from {person}")
    assert [c["author"] for c in listed(world(N_VIEWER).get(path))] == writers
    refused(world, {L_VIEWER: 403, L_ANALYST: 422, S_HANDLER: 404}, lambda c: c.post(path, {"body": "  "}))
    refused(world, {L_ANALYST: 422}, lambda c: c.post(path, {"body": "x" * 10_001}))
    refused(world, {L_ANALYST: 422}, lambda c: c.post(path, {}))


# --- TLP:RED ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_work_of_a_red_incident_is_written_by_named_people_only(world: World) -> None:
    red = world.incident(L_ANALYST, tlp="red", named_users=[P_HANDLER])
    task = add_task(world, red)["id"]
    done = f"/incidents/{red}/tasks/{task}/complete"
    # Repeatable writes: everyone in turn, the allowed ones succeeding.
    repeatable: list[tuple[dict[str, int], Callable[[Any], Any]]] = [
        (RED_HANDLE | {P_HANDLER: 201}, lambda c: c.post(f"/incidents/{red}/tasks", {"title": "t"})),
        (RED_HANDLE, lambda c: c.patch(f"/incidents/{red}/tasks/{task}", {"title": "t"})),
        (RED_COMMENT, lambda c: c.post(f"/incidents/{red}/comments", {"body": "b"})),
    ]
    for table, send in repeatable:
        assert answers(world, table, send) == table
    refused(world, {p: s for p, s in RED_HANDLE.items() if s != 200}, lambda c: c.post(done))
    for suffix, body in (
        ("tasks", {"title": "t"}),
        (f"tasks/{task}/complete", {}),
        ("comments", {"body": "b"}),
    ):
        same_as_missing(world, S_HANDLER, f"/incidents/{{id}}/{suffix}", red, body)
    # The named handler works on it; the ncert handler who handles it after escalation sees a stub only.
    assert world(P_HANDLER).post(done).status_code == 200
    assert world(P_HANDLER).post(f"/incidents/{red}/escalate", {"reason": "national"}).status_code == 200
    refused(world, {N_HANDLER: 403}, lambda c: c.post(f"/incidents/{red}/tasks/{task}/reopen"))
    # Owners must read the incident: an unnamed handler of the same CERT cannot be given a task.
    not_named = problem(
        world(P_HANDLER).post(f"/incidents/{red}/tasks", {"title": "t", "owner": P_OTHER}), 422
    )
    assert not_named["errors"] == [
        {
            "loc": "owner",
            "msg": f"{P_OTHER} may not read INC-{red}: "
            "it is TLP:RED and they are not among its named readers",
        }
    ]
    assert Comment.objects.filter(incident_id=red).count() == 2
    assert Task.objects.filter(incident_id=red).count() == 2
