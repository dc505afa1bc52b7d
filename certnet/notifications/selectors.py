"""A person's own notifications. Personal records: the recipient is the only reader."""

from __future__ import annotations

from django.db.models import QuerySet

from certnet.accounts.models import User
from certnet.notifications.models import Notification


def notifications_for(user: User, *, unread_only: bool = False) -> QuerySet[Notification]:
    queryset = Notification.objects.filter(recipient=user)
    return queryset.filter(read_at__isnull=True) if unread_only else queryset


def unread_count(user: User) -> int:
    return Notification.objects.filter(recipient=user, read_at__isnull=True).count()
