"""The unread count in the navigation bar: one COUNT query per page."""

from __future__ import annotations

from typing import Any

from django import template

from certnet.accounts.models import User
from certnet.notifications.selectors import unread_count

register = template.Library()


@register.simple_tag(takes_context=True)
def unread_notifications(context: dict[str, Any]) -> int:
    user = context.get("user")
    if not isinstance(user, User) or not user.is_authenticated:
        return 0
    return unread_count(user)
