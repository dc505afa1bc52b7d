"""Demo intelligence for `certnet setup --demo`: a Punjab CERT feed published to the community, and
NADRA's record of one of its values, which raises a correlation alert for the National CERT."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand

from certnet.accounts.selectors import get_user_by_username
from certnet.intel.models import Indicator, IntelImport, IntelReport
from certnet.intel.services.reports import ReportInput, publish_intel_report
from certnet.intel.services.stix_import import import_bundle

DEMO = Path(__file__).resolve().parents[2] / "data" / "demo"
# (file, owner, on whose authority); the demo accounts come from the registry's demo file.
IMPORTS = [
    ("punjab-cert-phishing.json", "punjab-cert", "punjab.analyst"),
    ("nadra-scanner.json", "nadra", "nadra.officer"),
]


class Command(BaseCommand):
    help = "Load the demo indicators and intel report (idempotent; needs the demo accounts)."

    def handle(self, *args: Any, **options: Any) -> None:
        loaded = []
        for name, owner, username in IMPORTS:
            path = DEMO / name
            user = get_user_by_username(username)
            if user is None:
                self.stdout.write(f"demo intel: no account {username}; skipped {name}")
                continue
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if IntelImport.objects.filter(owner__slug=owner, sha256=digest).exists():
                continue
            outcome = import_bundle(actor=user, owner=owner, source=path, source_name=name)
            loaded.append(f"{name} ({outcome.counts['indicators_created']} indicators)")
        analyst = get_user_by_username("punjab.analyst")
        if analyst is not None and not IntelReport.objects.filter(owner__slug="punjab-cert").exists():
            ids = list(
                Indicator.objects.filter(owner__slug="punjab-cert", tlp="green").values_list("pk", flat=True)
            )
            if ids:
                publish_intel_report(
                    actor=analyst,
                    spec=ReportInput(
                        owner="punjab-cert",
                        title="Fake FBR tax-refund phishing",
                        summary="SMS lures lead to a fake refund portal that harvests CNIC and bank details.",
                        tlp="green",
                        audience="community",
                        indicators=ids,
                        tags=['rsit:fraud="phishing"'],
                    ),
                )
                loaded.append("intel report 'Fake FBR tax-refund phishing'")
        self.stdout.write(f"demo intel: {', '.join(loaded) or 'already loaded'}")
