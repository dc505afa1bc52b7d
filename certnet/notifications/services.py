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
    return deliver(compose(recipients, kind=kind, subject=subject, body=body, link=link))


def compose(
    recipients: Iterable[User], *, kind: str, subject: str, body: str = "", link: str = ""
) -> list[Notification]:
    """The notifications `notify` would write, unsaved: a caller telling many people about many
    records collects them and delivers them in one go."""
    seen: set[int] = set()
    now = clock.now()
    composed: list[Notification] = []
    for user in recipients:
        if user.pk in seen or not user.is_active:
            continue
        seen.add(user.pk)
        composed.append(
            Notification(
                recipient=user, kind=kind, subject=subject[:200], body=body, link=link[:300], created_at=now
            )
        )
    return composed


def deliver(notifications: list[Notification]) -> list[Notification]:
    """Write composed notifications in one statement and queue one mail job for all of them."""
    if not notifications:
        return []
    Notification.objects.bulk_create(notifications)
    ids = [int(n.pk) for n in notifications]  # both SQLite (3.35+) and PostgreSQL return the new keys
    transaction.on_commit(lambda: _queue_mail(ids), robust=True)  # see incidents.jobs
    return notifications


def _queue_mail(ids: list[int]) -> None:
    send_notification_mail(ids)


def mark_read(user: User, ids: Iterable[int] | None = None) -> int:
    """Mark the user's own notifications read (all of them when ids is None); returns how many."""
    queryset = Notification.objects.filter(recipient=user, read_at__isnull=True)
    if ids is not None:
        queryset = queryset.filter(pk__in=list(ids))
    return queryset.update(read_at=clock.now())
