"""Tasks and comments on an incident. Thin: find the incident through visibility, call one service or
selector, shape. Reading them needs the incident in full: a TLP:RED stub viewer gets 403, whoever sees
not even the stub 404, as for the incident itself."""

import datetime as dt
from typing import Any, cast

from django.http import HttpRequest
from ninja import Router, Schema, Status
from ninja.pagination import LimitOffsetPagination, paginate

from certnet.accounts.models import User
from certnet.core import clock
from certnet.core.pagination import ShapedPage
from certnet.incidents import selectors
from certnet.incidents.models import Comment, Task
from certnet.incidents.services import work

router = Router(tags=["incident work"])


class TaskOut(Schema):
    id: int
    incident: int
    title: str
    owner: str | None
    due_at: dt.datetime | None
    done_at: dt.datetime | None
    overdue: bool
    created_by: str
    created_at: dt.datetime


class TaskIn(Schema):
    title: str
    owner: str | None = None
    due_at: dt.datetime | None = None


class TaskPatch(Schema):
    """Only the fields sent change; `null` clears the owner or the due time."""

    title: str | None = None
    owner: str | None = None
    due_at: dt.datetime | None = None


class CommentOut(Schema):
    id: int
    incident: int
    author: str
    body: str
    created_at: dt.datetime


class CommentIn(Schema):
    body: str


def _actor(request: HttpRequest) -> User:
    return cast(User, request.user)


def _task_out(task: Task, now: dt.datetime) -> dict[str, Any]:
    return {
        "id": task.pk,
        "incident": task.incident_id,
        "title": task.title,
        "owner": task.owner.username if task.owner else None,
        "due_at": task.due_at,
        "done_at": task.done_at,
        "overdue": task.done_at is None and task.due_at is not None and task.due_at < now,
        "created_by": task.created_by.username,
        "created_at": task.created_at,
    }


def _comment_out(comment: Comment) -> dict[str, Any]:
    return {
        "id": comment.pk,
        "incident": comment.incident_id,
        "author": comment.author.username,
        "body": comment.body,
        "created_at": comment.created_at,
    }


def _task_of(request: HttpRequest, incident_id: int, task_id: int) -> dict[str, Any]:
    task = selectors.tasks_of(selectors.access_incident_in_full(request.user, incident_id)).get(pk=task_id)
    return _task_out(task, clock.now())


# --- tasks ----------------------------------------------------------------------------------------


@router.get(
    "/incidents/{incident_id}/tasks",
    response=list[TaskOut],
    summary="The incident's tasks, in the order they were added",
)
@paginate(LimitOffsetPagination)
def list_tasks(request: HttpRequest, incident_id: int) -> Any:
    incident = selectors.access_incident_in_full(request.user, incident_id)
    now = clock.now()
    return ShapedPage(selectors.tasks_of(incident), lambda page: [_task_out(t, now) for t in page])


@router.post(
    "/incidents/{incident_id}/tasks",
    response={201: TaskOut},
    summary="Add a task (handlers of the CERTs above the affected organisation)",
)
def add_task(request: HttpRequest, incident_id: int, payload: TaskIn) -> Status[dict[str, Any]]:
    incident, _ = selectors.access_incident(request.user, incident_id)
    task = work.add_task(
        actor=_actor(request),
        incident=incident,
        title=payload.title,
        owner_username=payload.owner,
        due_at=payload.due_at,
    )
    return Status(201, _task_of(request, incident_id, task.pk))


@router.patch(
    "/incidents/{incident_id}/tasks/{task_id}",
    response=TaskOut,
    summary="Change a task's title, owner or due time",
)
def update_task(request: HttpRequest, incident_id: int, task_id: int, payload: TaskPatch) -> dict[str, Any]:
    incident, _ = selectors.access_incident(request.user, incident_id)
    sent = payload.model_dump(exclude_unset=True)
    changes: dict[str, Any] = {}
    if "title" in sent:
        changes["title"] = sent["title"] or ""
    if "owner" in sent:
        changes["owner_username"] = sent["owner"]
    if "due_at" in sent:
        changes["due_at"] = sent["due_at"]
    work.update_task(actor=_actor(request), incident=incident, task_id=task_id, **changes)
    return _task_of(request, incident_id, task_id)


@router.post(
    "/incidents/{incident_id}/tasks/{task_id}/complete", response=TaskOut, summary="Mark a task done"
)
def complete_task(request: HttpRequest, incident_id: int, task_id: int) -> dict[str, Any]:
    incident, _ = selectors.access_incident(request.user, incident_id)
    work.complete_task(actor=_actor(request), incident=incident, task_id=task_id)
    return _task_of(request, incident_id, task_id)


@router.post(
    "/incidents/{incident_id}/tasks/{task_id}/reopen", response=TaskOut, summary="Reopen a done task"
)
def reopen_task(request: HttpRequest, incident_id: int, task_id: int) -> dict[str, Any]:
    incident, _ = selectors.access_incident(request.user, incident_id)
    work.reopen_task(actor=_actor(request), incident=incident, task_id=task_id)
    return _task_of(request, incident_id, task_id)


# --- comments -------------------------------------------------------------------------------------


@router.get(
    "/incidents/{incident_id}/comments",
    response=list[CommentOut],
    summary="The incident's comments, oldest first",
)
@paginate(LimitOffsetPagination)
def list_comments(request: HttpRequest, incident_id: int) -> Any:
    incident = selectors.access_incident_in_full(request.user, incident_id)
    return ShapedPage(selectors.comments_of(incident), lambda page: [_comment_out(c) for c in page])


@router.post(
    "/incidents/{incident_id}/comments",
    response={201: CommentOut},
    summary="Comment (analysts of the affected organisation, handlers of the CERTs above)",
)
def add_comment(request: HttpRequest, incident_id: int, payload: CommentIn) -> Status[dict[str, Any]]:
    incident, _ = selectors.access_incident(request.user, incident_id)
    comment = work.add_comment(actor=_actor(request), incident=incident, body=payload.body)
    return Status(201, _comment_out(comment))
