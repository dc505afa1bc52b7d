"""Incident work pages: the tasks and comments sections of the incident page (their forms post here,
plain POST and redirect), and the escalated view — every escalated incident the user sees, for the
National CERT every escalated incident in the country.

Thin like views.py: parse, call one service, redirect; a refused or invalid form renders the incident
page again with the message beside the form (the services decide who may do what; the sections only
hide forms a user could not use)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from certnet.accounts.models import User
from certnet.core import clock
from certnet.core.errors import DomainError, FieldError, NotFound
from certnet.core.pagination import CappedPaginator
from certnet.core.visibility import can, principal_for
from certnet.incidents import selectors
from certnet.incidents.models import Comment, Incident, IncidentStatus
from certnet.incidents.services import work
from certnet.incidents.views import PAGE_SIZE, SEVERITIES, incident_context, queue_rows
from certnet.incidents.webforms import FormErrors, form_text, parse_moment, reject_if, signed_in_user
from certnet.registry import selectors as registry
from certnet.web.rendering import render_page_or_fragment

WORK_FIELDS = ("title", "owner", "due_at", "body")
TASK_ACTIONS = {"complete": "Task done", "reopen": "Task reopened", "edit": "Task changed"}


# --- what the incident page's sections show (through templatetags/incident_work.py) -------------


@dataclass
class TaskRow:
    task: Any
    overdue: bool

    @property
    def key(self) -> str:
        """The row's anchor, and the name its edit form goes by when it is refused."""
        return f"task-{self.task.pk}"


@dataclass
class TasksSection:
    rows: list[TaskRow]
    open_count: int
    overdue_count: int
    may_handle: bool
    owners: list[User]
    failed_action: str = ""

    @property
    def alert_on_top(self) -> bool:
        """A refusal is shown beside its form; above the table when that form is not on the page."""
        if self.failed_action == "task-add":
            return True
        in_a_row = self.may_handle and any(row.key == self.failed_action for row in self.rows)
        return self.failed_action.startswith("task-") and not in_a_row

    @property
    def alert_heading(self) -> str:
        return "The task was not added." if self.failed_action == "task-add" else "The task was not changed."


@dataclass
class CommentsSection:
    comments: list[Comment]
    may_comment: bool
    limit: int


def tasks_section(user: User, incident: Incident, failed_action: str = "") -> TasksSection:
    """Only called for a user who sees the incident in full (the page shows the stub otherwise)."""
    now = clock.now()
    rows = [
        TaskRow(task=t, overdue=t.done_at is None and t.due_at is not None and t.due_at < now)
        for t in selectors.tasks_of(incident)
    ]
    may_handle = can(user, "handle", incident) and work.open_to_work(incident)
    return TasksSection(
        rows=rows,
        open_count=sum(1 for r in rows if r.task.done_at is None),
        overdue_count=sum(1 for r in rows if r.overdue),
        may_handle=may_handle,
        owners=work.possible_owners(incident) if may_handle else [],
        failed_action=failed_action,
    )


def comments_section(user: User, incident: Incident) -> CommentsSection:
    return CommentsSection(
        comments=list(selectors.comments_of(incident)),
        may_comment=can(user, "change", incident) and work.open_to_work(incident),
        limit=work.COMMENT_MAX,
    )


def is_cert_member(user: Any) -> bool:
    """Whether the user belongs to a CERT (the navigation then offers the escalated view)."""
    return bool(principal_for(user).roles) and registry.certs_of(user).exists()


# --- the forms ----------------------------------------------------------------------------------


def _incident_or_404(user: User, incident_id: int) -> tuple[Incident, bool]:
    try:
        return selectors.access_incident(user, incident_id)
    except NotFound as exc:
        raise Http404(exc.detail) from None


def _back(incident_id: int, anchor: str) -> HttpResponse:
    return redirect(reverse("incident-detail", kwargs={"incident_id": incident_id}) + f"#{anchor}")


def _refused(
    request: HttpRequest, incident: Incident, full: bool, form: str, exc: DomainError
) -> HttpResponse:
    """The incident page again, the problem shown beside the form `form` with what was typed."""
    if isinstance(exc, NotFound):
        raise Http404(exc.detail)
    incident.refresh_from_db()
    context = incident_context(request, incident, full, (form, FormErrors.of(exc, WORK_FIELDS)))
    context["work_values"] = {name: form_text(request.POST, name) for name in WORK_FIELDS}
    return render(request, "incidents/incident_detail.html", context, status=exc.status)


def _due(raw: str, problems: list[FieldError]) -> dt.datetime | None:
    return parse_moment(raw, "due_at", problems)


@login_required
@require_POST
def task_add(request: HttpRequest, incident_id: int) -> HttpResponse:
    user = signed_in_user(request)
    incident, full = _incident_or_404(user, incident_id)
    try:
        problems: list[FieldError] = []
        due_at = _due(form_text(request.POST, "due_at"), problems)
        reject_if(problems, "the task")
        task = work.add_task(
            actor=user,
            incident=incident,
            title=form_text(request.POST, "title"),
            owner_username=form_text(request.POST, "owner") or None,
            due_at=due_at,
        )
    except DomainError as exc:
        return _refused(request, incident, full, "task-add", exc)
    messages.success(request, f"Task added: {task.title}.")
    return _back(incident_id, "tasks")


@login_required
@require_POST
def task_action(request: HttpRequest, incident_id: int, task_id: int, action: str) -> HttpResponse:
    user = signed_in_user(request)
    if action not in TASK_ACTIONS:
        raise Http404(f"no task action {action!r}")
    incident, full = _incident_or_404(user, incident_id)
    try:
        if action == "complete":
            work.complete_task(actor=user, incident=incident, task_id=task_id)
        elif action == "reopen":
            work.reopen_task(actor=user, incident=incident, task_id=task_id)
        else:
            problems: list[FieldError] = []
            due_at = _due(form_text(request.POST, "due_at"), problems)
            reject_if(problems, "the change to the task")
            work.update_task(
                actor=user,
                incident=incident,
                task_id=task_id,
                title=form_text(request.POST, "title"),
                owner_username=form_text(request.POST, "owner") or None,
                due_at=due_at,
            )
    except DomainError as exc:
        return _refused(request, incident, full, f"task-{task_id}", exc)
    messages.success(request, TASK_ACTIONS[action] + ".")
    return _back(incident_id, f"task-{task_id}")


@login_required
@require_POST
def comment_add(request: HttpRequest, incident_id: int) -> HttpResponse:
    user = signed_in_user(request)
    incident, full = _incident_or_404(user, incident_id)
    try:
        comment = work.add_comment(actor=user, incident=incident, body=form_text(request.POST, "body"))
    except DomainError as exc:
        return _refused(request, incident, full, "comment", exc)
    messages.success(request, "Comment added.")
    return _back(incident_id, f"comment-{comment.pk}")


# --- the escalated view -------------------------------------------------------------------------


@login_required
def escalated(request: HttpRequest) -> HttpResponse:
    user = signed_in_user(request)
    params = request.GET
    status, severity = params.get("status", "").strip(), params.get("severity", "").strip()
    filters = {"status": status, "severity": severity}
    queryset = selectors.filter_incidents(
        selectors.escalated_incidents(user),
        status=status or None,
        severity_at_least=int(severity) if severity.isdigit() else None,
    )
    page = CappedPaginator(queryset, PAGE_SIZE).get_page(params.get("page"))
    incidents: list[Incident] = list(page.object_list)
    rows = queue_rows(user, incidents, clock.now())
    context: dict[str, Any] = {
        "rows": rows,
        "page": page,
        "filters": filters,
        "active_filters": any(filters.values()),
        "statuses": IncidentStatus.choices,
        "severities": SEVERITIES,
        "my_certs": list(registry.certs_of(user)),
    }
    return render_page_or_fragment(
        request, "incidents/escalated.html", "incidents/_escalated_table.html", context
    )
