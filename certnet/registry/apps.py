from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "certnet.registry"
    label = "registry"

    def ready(self) -> None:
        from certnet.core import visibility
        from certnet.registry.selectors import cert_ids_among, descendants_of

        visibility.set_hierarchy_source(descendants_of)
        visibility.set_cert_source(cert_ids_among)
