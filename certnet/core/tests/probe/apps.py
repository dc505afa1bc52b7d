from django.apps import AppConfig


class ProbeConfig(AppConfig):
    """A test-only app whose one model uses every visibility feature, so the rules are proven before
    the domain apps that need them (incidents, intel) exist."""

    name = "certnet.core.tests.probe"
    label = "probe"
