"""Telling people things. `notify` writes the in-app notifications inside the caller's transaction and,
once that commits, queues one background job that e-mails them (Huey; in-process in tests)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

from certnet.accounts.models import User
from certnet.core import clock
from certnet.notifications.mail import send_notification_mail
from certnet.notifications.models import Notification


def notify(
    recipients: Iterable[User], *, kind: str, subject: str, body: str = "", link: str = ""
) -> list[Notification]:
    """One notification per distinct active recipient. Mail goes out after commit, so a rolled-back
    change never tells anyone anything."""
    seen: set[int] = set()
    now = clock.now()
    created: list[Notification] = []
    for user in recipients:
        if user.pk in seen or not user.is_active:
            continue
        seen.add(user.pk)
        created.append(
            Notification(
                recipient=user, kind=kind, subject=subject[:200], body=body, link=link[:300], created_at=now
            )
        )
    if not created:
        return []
    Notification.objects.bulk_create(created)
    ids = [int(n.pk) for n in created]  # both SQLite (3.35+) and PostgreSQL return the new keys
    transaction.on_commit(lambda: _queue_mail(ids), robust=True)  # see incidents.jobs
    return created


def _queue_mail(ids: list[int]) -> None:
    send_notification_mail(ids)


def mark_read(user: User, ids: Iterable[int] | None = None) -> int:
    """Mark the user's own notifications read (all of them when ids is None); returns how many."""
    queryset = Notification.objects.filter(recipient=user, read_at__isnull=True)
    if ids is not None:
        queryset = queryset.filter(pk__in=list(ids))
    return queryset.update(read_at=clock.now())
