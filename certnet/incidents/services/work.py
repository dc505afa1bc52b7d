"""The work on an incident: tasks with owners and due dates, and comments. Each function is one
transaction that checks the actor's right through certnet.core.visibility before it reads the input,
validates completely before writing, and adds an audit entry and a timeline event.

Who may do what:
- tasks (add, change, complete, reopen): the incident's "handle" right, i.e. handlers of a CERT above
  the affected organisation (and platform administrators);
- a task's owner: a handler (or above) of the handling CERT or of the CERT it is escalated to, who
  can read the incident in full (a TLP:RED incident names its readers) — the people who may also
  close the task;
- comments: the incident's "change" right, i.e. analysts of the affected organisation and handlers
  above it. A comment from the handling side is the CERT's first response on the incident's reports.

Nothing changes on an incident in a final status (closed, merged, rejected)."""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
from typing import Any, Final

from django.db import transaction
from django.urls import reverse

from certnet.accounts.models import User
from certnet.accounts.selectors import get_user_by_username
from certnet.core import audit, clock
from certnet.core.errors import FieldError, IllegalTransition, InvalidInput, NotFound, invalid
from certnet.core.roles import Role
from certnet.core.tlp import TLP
from certnet.core.visibility import can, facts_of, may, principal_for, require, spec_of
from certnet.incidents.models import Comment, Incident, Task
from certnet.incidents.services import notices
from certnet.incidents.services.handling import STATUS_MOVES
from certnet.incidents.services.service_levels import mark_first_response
from certnet.incidents.services.trail import timeline_event as timeline
from certnet.notifications.services import notify

TITLE_MAX = 200  # Task.title
COMMENT_MAX = 10_000  # long enough for an analyst's write-up, short enough to read on the page
EXCERPT = 160  # how much of a comment the timeline repeats


class _Keep(enum.Enum):
    KEEP = "keep"


KEEP: Final = _Keep.KEEP
"""For update_task: leave this field as it is (None means "clear it")."""


def _label(incident: Incident) -> str:
    return f"incident {incident.pk}"


def open_to_work(incident: Incident) -> bool:
    """Whether tasks and comments may still change: not once the incident is final."""
    return bool(STATUS_MOVES.get(incident.status))


def _locked(actor: User, incident: Incident, action: str) -> Incident:
    """The incident, locked for this transaction, once the actor's right is established."""
    incident = Incident.objects.select_for_update().get(pk=incident.pk)
    require(actor, action, incident, label=_label(incident))
    if not open_to_work(incident):
        raise IllegalTransition(
            f"{incident.reference} is {incident.status}; its tasks and comments can no longer change"
        )
    return incident


def _task(incident: Incident, task_id: int) -> Task:
    task = Task.objects.select_for_update().filter(incident=incident, pk=task_id).first()
    if task is None:
        raise NotFound(f"no task {task_id} on {incident.reference}")
    return task


def _title(value: str, errors: list[FieldError]) -> str:
    title = value.strip()
    if not title:
        errors.append(FieldError("title", "must not be empty: say what is to be done"))
    elif len(title) > TITLE_MAX:
        errors.append(FieldError("title", f"is {len(title)} characters long; the limit is {TITLE_MAX}"))
    return title


def _due(value: dt.datetime | None, errors: list[FieldError]) -> dt.datetime | None:
    """A due time, read as UTC when it names no offset; never in the past."""
    if value is None:
        return None
    due = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    now = clock.now()
    if due < now:
        errors.append(
            FieldError(
                "due_at",
                f"{due:%Y-%m-%d %H:%M} UTC is in the past (it is now {now:%Y-%m-%d %H:%M} UTC); "
                "give a time from now on",
            )
        )
    return due


def _owner(incident: Incident, username: str | None, errors: list[FieldError]) -> User | None:
    """A handler of the CERT handling the incident (or of the CERT it is escalated to) who may read
    it in full. Resolved only after the actor's right is established, so nobody probes for names."""
    if not username:
        return None
    owner = get_user_by_username(username)
    if owner is None or not owner.is_active:
        errors.append(FieldError("owner", f"no user {username!r}"))
        return None
    teams = {cert for cert in (incident.handling_cert_id, incident.escalated_to_id) if cert is not None}
    if not principal_for(owner).orgs_with(Role.HANDLER) & teams:
        certs = " or ".join(
            c.display_name for c in (incident.handling_cert, incident.escalated_to) if c is not None
        )
        errors.append(FieldError("owner", f"{owner.username} is not a handler of {certs}"))
        return None
    if not can(owner, "view", incident):
        errors.append(
            FieldError(
                "owner",
                f"{owner.username} may not read {incident.reference}: it is TLP:RED and they are not "
                "among its named readers",
            )
        )
        return None
    return owner


def _same_minute(a: dt.datetime | None, b: dt.datetime | None) -> bool:
    if a is None or b is None:
        return a is b
    a = a.replace(tzinfo=dt.UTC) if a.tzinfo is None else a
    return a.replace(second=0, microsecond=0) == b.replace(second=0, microsecond=0)


def possible_owners(incident: Incident) -> list[User]:
    """Everyone who may own a task on the incident (see _owner), by username."""
    teams = [cert for cert in (incident.handling_cert_id, incident.escalated_to_id) if cert is not None]
    roles = [role.value for role in Role if role.includes(Role.HANDLER)]
    candidates = User.objects.filter(
        is_active=True, memberships__organisation_id__in=teams, memberships__role__in=roles
    ).distinct()
    facts, spec = facts_of(incident), spec_of(Incident)  # read once, judged for each candidate
    return [user for user in candidates.order_by("username") if may(principal_for(user), "view", facts, spec)]


def _reject(errors: list[FieldError], what: str) -> None:
    if errors:
        raise InvalidInput(f"{what} is not valid: " + "; ".join(str(e) for e in errors), errors=errors)


def _tell_owner(actor: User, incident: Incident, task: Task) -> None:
    """The new owner hears of the task, after commit. Above AMBER the task title stays on the
    platform, as for every notification (services/notices.py): the e-mail copy leaves it."""
    owner = task.owner
    if owner is None or owner.pk == actor.pk:
        return
    secret = TLP(incident.tlp) not in notices.TITLE_ALLOWED
    what = (
        f"a task ({TLP(incident.tlp).label}: read it on the platform)"
        if secret
        else f"the task “{task.title}”"
    )
    due = f", due {task.due_at:%Y-%m-%d %H:%M} UTC" if task.due_at else ""
    notify(
        [owner],
        kind="task-assigned",
        subject=f"{incident.reference}: a task for you" + ("" if secret else f" — {task.title}"),
        body=f"{actor.get_username()} gave you {what} on {incident.reference}{due}.",
        link=reverse("incident-detail", kwargs={"incident_id": incident.pk}) + "#tasks",
    )


def _record(actor: User, incident: Incident, action: str, target: Task | Comment, **data: Any) -> None:
    audit.record(
        actor=actor,
        action=action,
        target=target,
        organisation_id=incident.affected_organisation_id,
        data={"incident": incident.pk, **data},
    )


def _when(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment else None


# --- tasks ----------------------------------------------------------------------------------------


@transaction.atomic
def add_task(
    *,
    actor: User,
    incident: Incident,
    title: str,
    owner_username: str | None = None,
    due_at: dt.datetime | None = None,
) -> Task:
    incident = _locked(actor, incident, "handle")
    errors: list[FieldError] = []
    clean_title = _title(title, errors)
    due = _due(due_at, errors)
    owner = _owner(incident, owner_username, errors)
    _reject(errors, "the task")
    task = Task.objects.create(
        incident=incident,
        title=clean_title,
        owner=owner,
        due_at=due,
        created_by=actor,
        created_at=clock.now(),
    )
    who = owner.username if owner else None
    _record(actor, incident, "incidents.task.add", task, title=task.title, owner=who, due_at=_when(due))
    details = [f"for {who}" if who else "", f"due {due:%Y-%m-%d %H:%M} UTC" if due else ""]
    extra = ", ".join(d for d in details if d)
    timeline(
        incident,
        actor,
        "task-added",
        f"task added: {task.title}" + (f" ({extra})" if extra else ""),
        task=task.pk,
    )
    _tell_owner(actor, incident, task)
    return task


@transaction.atomic
def update_task(
    *,
    actor: User,
    incident: Incident,
    task_id: int,
    title: str | _Keep = KEEP,
    owner_username: str | _Keep | None = KEEP,
    due_at: dt.datetime | _Keep | None = KEEP,
) -> Task:
    """Change a task's title, owner or due time; KEEP leaves a field, None clears owner or due time."""
    incident = _locked(actor, incident, "handle")
    task = _task(incident, task_id)
    errors: list[FieldError] = []
    changes: dict[str, tuple[Any, Any]] = {}
    if not isinstance(title, _Keep):
        new_title = _title(title, errors)
        if new_title != task.title:
            changes["title"] = (task.title, new_title)
    if not isinstance(due_at, _Keep):
        # A form shows the due time to the minute and sends it back with any other change: that is
        # no change, even once the time has passed.
        due = task.due_at if _same_minute(due_at, task.due_at) else _due(due_at, errors)
        if due != task.due_at:
            changes["due_at"] = (task.due_at, due)
    if not isinstance(owner_username, _Keep) and owner_username != (
        task.owner.username if task.owner else None
    ):
        owner = _owner(incident, owner_username, errors)
        if (owner.pk if owner else None) != task.owner_id:
            changes["owner"] = (task.owner, owner)
    _reject(errors, "the change to the task")
    if not changes:
        return task
    for name, (_, new) in changes.items():
        setattr(task, name, new)
    task.save(update_fields=list(changes))
    said = "; ".join(f"{name} {_shown(old)} → {_shown(new)}" for name, (old, new) in changes.items())
    _record(
        actor,
        incident,
        "incidents.task.update",
        task,
        changes={name: [_plain(old), _plain(new)] for name, (old, new) in changes.items()},
    )
    timeline(incident, actor, "task-changed", f"task changed: {task.title}: {said}", task=task.pk)
    if "owner" in changes:
        _tell_owner(actor, incident, task)
    return task


def _plain(value: Any) -> Any:
    """A changed value as the audit log keeps it."""
    if isinstance(value, User):
        return value.username
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value


def _shown(value: Any) -> str:
    """A changed value as the timeline says it."""
    if value is None:
        return "none"
    if isinstance(value, User):
        return value.username
    if isinstance(value, dt.datetime):
        return f"{value:%Y-%m-%d %H:%M} UTC"
    return str(value)


@transaction.atomic
def complete_task(*, actor: User, incident: Incident, task_id: int) -> Task:
    incident = _locked(actor, incident, "handle")
    task = _task(incident, task_id)
    if task.done_at is not None:
        raise IllegalTransition(f"task {task.pk} was already done at {task.done_at:%Y-%m-%d %H:%M} UTC")
    task.done_at = clock.now()
    task.save(update_fields=["done_at"])
    _record(actor, incident, "incidents.task.complete", task, title=task.title)
    timeline(incident, actor, "task-done", f"task done: {task.title}", task=task.pk)
    return task


@transaction.atomic
def reopen_task(*, actor: User, incident: Incident, task_id: int) -> Task:
    incident = _locked(actor, incident, "handle")
    task = _task(incident, task_id)
    if task.done_at is None:
        raise IllegalTransition(f"task {task.pk} is not done; only a done task can be reopened")
    done_at = task.done_at
    task.done_at = None
    task.save(update_fields=["done_at"])
    _record(actor, incident, "incidents.task.reopen", task, title=task.title, was_done_at=_when(done_at))
    timeline(incident, actor, "task-reopened", f"task reopened: {task.title}", task=task.pk)
    return task


# --- comments -------------------------------------------------------------------------------------


@transaction.atomic
def add_comment(*, actor: User, incident: Incident, body: str) -> Comment:
    incident = _locked(actor, incident, "change")
    text = body.strip()
    if not text:
        raise invalid("body", "must not be empty: write the comment")
    if len(text) > COMMENT_MAX:
        raise invalid("body", f"is {len(text)} characters long; the limit is {COMMENT_MAX}")
    comment = Comment.objects.create(incident=incident, author=actor, body=text, created_at=clock.now())
    # The body's digest in the hash-chained log makes a later edit of the stored comment detectable.
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    _record(actor, incident, "incidents.comment.add", comment, length=len(text), sha256=digest)
    line = " ".join(text.split())
    excerpt = line if len(line) <= EXCERPT else line[: EXCERPT - 1].rstrip() + "…"
    timeline(incident, actor, "comment", f"commented: {excerpt}", comment=comment.pk)
    mark_first_response(incident, actor)
    return comment
