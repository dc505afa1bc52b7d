from django.apps import AppConfig


class TaxiiConfig(AppConfig):
    name = "certnet.taxii"
    label = "taxii"

    def ready(self) -> None:
        from certnet.intel.signals import report_published
        from certnet.taxii.receivers import place_published_report

        # A dispatch uid, so a second ready() (tests that reload apps) does not place objects twice.
        report_published.connect(place_published_report, dispatch_uid="certnet.taxii.place_published_report")
