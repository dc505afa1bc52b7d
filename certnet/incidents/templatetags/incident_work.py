"""The incident page's tasks and comments sections, and the navigation's escalated link, fetch what
they show here, so the incident page (views.py) needs no knowledge of them: each section is one
include line in incident_detail.html. The work itself is done in views_work.py."""

from __future__ import annotations

from typing import Any

from django import template

from certnet.incidents import views_work
from certnet.incidents.models import Incident

register = template.Library()


def _user(context: Any) -> Any:
    request = context.get("request")
    return getattr(request, "user", None)


@register.simple_tag(takes_context=True)
def incident_tasks(context: Any, incident: Incident, failed_action: str = "") -> views_work.TasksSection:
    return views_work.tasks_section(_user(context), incident, failed_action)


@register.simple_tag(takes_context=True)
def incident_comments(context: Any, incident: Incident) -> views_work.CommentsSection:
    return views_work.comments_section(_user(context), incident)


@register.simple_tag(takes_context=True)
def member_of_a_cert(context: Any) -> bool:
    user = _user(context)
    return user is not None and user.is_authenticated and views_work.is_cert_member(user)
