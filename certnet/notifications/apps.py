from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "certnet.notifications"
    label = "notifications"
