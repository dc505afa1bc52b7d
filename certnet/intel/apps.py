from django.apps import AppConfig


class IntelConfig(AppConfig):
    name = "certnet.intel"
    label = "intel"
