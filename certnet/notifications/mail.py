"""The background job that e-mails the notifications `notify` wrote (registered with Huey through
certnet.notifications.tasks, which the job consumer discovers).

One job sends everything it was given through one connection to the relay. A person with several
notifications in one job gets one message listing them (a digest), not one message each: under a
flood of reports a handler's inbox gets a summary a second, and every item is still in the app."""

from __future__ import annotations

from collections import defaultdict

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from huey.contrib.djhuey import db_task

from certnet.core import clock
from certnet.notifications.models import Notification


def _one_line(text: str) -> str:
    # A line break in a header would make it invalid (Django refuses it).
    return " ".join(text.split())


def _link(item: Notification) -> str:
    return f"{settings.CERTNET_BASE_URL}{item.link}" if item.link else ""


def message_for(items: list[Notification]) -> tuple[str, str]:
    """Subject and body of the mail telling one person about `items` (oldest first)."""
    if len(items) == 1:
        item = items[0]
        body = f"{item.body}\n\n{_link(item)}".strip() if item.link else item.body
        return _one_line(f"[certnet] {item.subject}"), body
    subject = f"[certnet] {len(items)} notifications: {items[0].subject}"
    sections = [f"{len(items)} notifications; each is also in your list on the platform."]
    for item in items:
        sections.append("\n".join(part for part in (f"* {item.subject}", item.body, _link(item)) if part))
    return _one_line(subject)[:250], "\n\n".join(sections)


@db_task(retries=3, retry_delay=60)  # type: ignore[untyped-decorator]
def send_notification_mail(ids: list[int]) -> int:
    """Send the unsent notifications among `ids`, one message per recipient; record a refusal on the
    rows (and let Huey retry the job). Returns how many notifications went out."""
    by_address: dict[str, list[Notification]] = defaultdict(list)
    pending = (
        Notification.objects.filter(pk__in=ids, emailed_at__isnull=True)
        .select_related("recipient")
        .order_by("created_at", "id")
    )
    for item in pending:
        if item.recipient.email:
            by_address[item.recipient.email].append(item)
    if not by_address:
        return 0
    sent = 0
    failed: list[str] = []
    connection = get_connection()
    try:
        connection.open()
        for address, items in by_address.items():
            subject, body = message_for(items)
            keys = [item.pk for item in items]
            try:
                EmailMessage(
                    subject, body, settings.DEFAULT_FROM_EMAIL, [address], connection=connection
                ).send()
            except OSError as exc:  # smtplib's errors are OSErrors: refused, unreachable, timed out
                error = f"{type(exc).__name__}: {exc}"[:300]
                Notification.objects.filter(pk__in=keys).update(email_error=error)
                failed.append(address)
                continue
            Notification.objects.filter(pk__in=keys).update(emailed_at=clock.now(), email_error="")
            sent += len(items)
    except OSError as exc:  # the relay could not be reached at all
        every_key = [item.pk for items in by_address.values() for item in items]
        Notification.objects.filter(pk__in=every_key, emailed_at__isnull=True).update(
            email_error=f"{type(exc).__name__}: {exc}"[:300]
        )
        raise RuntimeError(f"the mail relay could not be reached ({exc}); Huey will retry") from exc
    finally:
        connection.close()
    if failed:
        raise RuntimeError(f"mail to {', '.join(failed)} failed; Huey will retry")
    return sent
