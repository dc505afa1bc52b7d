from django.apps import AppConfig


class FeedsConfig(AppConfig):
    name = "certnet.feeds"
    label = "feeds"
    verbose_name = "Security feeds"
    default_auto_field = "django.db.models.BigAutoField"
