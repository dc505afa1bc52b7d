from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    name = "certnet.incidents"
    label = "incidents"
