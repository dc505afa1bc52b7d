from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "certnet.core"
    label = "core"
    verbose_name = "certnet core"
