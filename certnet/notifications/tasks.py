"""Huey's consumer imports each app's `tasks` module; the notification jobs live in `mail`."""

from certnet.notifications.mail import send_notification_mail

__all__ = ["send_notification_mail"]
