"""The background job that e-mails the notifications `notify` wrote (registered with Huey through
certnet.notifications.tasks, which the job consumer discovers)."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mail
from huey.contrib.djhuey import db_task

from certnet.core import clock
from certnet.notifications.models import Notification


@db_task(retries=3, retry_delay=60)  # type: ignore[untyped-decorator]
def send_notification_mail(ids: list[int]) -> int:
    """Send each unsent notification to its recipient's address; record the failure on the row (and
    let Huey retry) when the relay refuses. Returns how many went out."""
    sent = 0
    failed: list[str] = []
    pending = Notification.objects.filter(pk__in=ids, emailed_at__isnull=True).select_related("recipient")
    for item in pending:
        address = item.recipient.email
        if not address:
            continue
        body = item.body
        if item.link:
            body = f"{body}\n\n{settings.CERTNET_BASE_URL}{item.link}".strip()
        # One line: a line break in a title would make the header invalid (Django refuses it).
        subject = " ".join(f"[certnet] {item.subject}".split())
        try:
            send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [address])
        except OSError as exc:  # smtplib's errors are OSErrors: refused, unreachable, timed out
            Notification.objects.filter(pk=item.pk).update(email_error=f"{type(exc).__name__}: {exc}"[:300])
            failed.append(address)
            continue
        Notification.objects.filter(pk=item.pk).update(emailed_at=clock.now(), email_error="")
        sent += 1
    if failed:
        raise RuntimeError(f"mail to {', '.join(failed)} failed; Huey will retry")
    return sent
