from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "certnet.web"
    label = "web"
