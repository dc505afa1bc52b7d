"""The organisations and people the notification, clock-sweep and service-level tests share: the real
Pakistan framework, a constituent under Punjab CERT and one under Sindh CERT, and people of each tier,
every one with an e-mail address."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from certnet.accounts.models import User
from certnet.accounts.services import create_user, set_membership
from certnet.core import clock
from certnet.core.audit import SystemActor
from certnet.core.roles import Role
from certnet.incidents import services
from certnet.incidents.models import Incident, Report
from certnet.registry import index
from certnet.registry import services as registry
from certnet.registry.framework import load_framework_file
from certnet.registry.models import Organisation

ACTOR = SystemActor("test")
PASSWORD = "notification-tests-password-2026"
AWARE = dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.UTC)
RECEIVED = AWARE + dt.timedelta(hours=1)  # when the tests' reports reach the platform

PEOPLE = {
    "lahore.analyst": ("lahore", Role.ANALYST),
    "lahore.viewer": ("lahore", Role.VIEWER),
    "karachi.analyst": ("karachi", Role.ANALYST),
    "punjab.handler": ("punjab-cert", Role.HANDLER),
    "punjab.manager": ("punjab-cert", Role.MANAGER),
    "punjab.viewer": ("punjab-cert", Role.VIEWER),
    "sindh.manager": ("sindh-cert", Role.MANAGER),
    "ncert.handler": ("ncert", Role.HANDLER),
    "ncert.manager": ("ncert", Role.MANAGER),
    "ncert.deputy": ("ncert", Role.MANAGER),
}


def address(username: str) -> str:
    return f"{username}@certnet.test"


@dataclass
class World:
    orgs: dict[str, Organisation]
    people: dict[str, User] = field(default_factory=dict)

    def __getitem__(self, username: str) -> User:
        return self.people[username]

    def report(self, reporter: str = "lahore.analyst", **extra: Any) -> Report:
        """A report filed at RECEIVED (the clock frozen there) for the reporter's organisation."""
        user = self.people[reporter]
        organisation = PEOPLE[reporter][0]
        data = {
            "reporting_organisation": organisation,
            "title": "Ransomware on the billing servers",
            "description": "Invoices encrypted; ransom note on every share.",
            "aware_at": AWARE,
            **extra,
        }
        with clock.frozen_at(RECEIVED):
            return services.submit_report(actor=user, data=services.ReportInput(**data))

    def incident(self, report: Report, *, severity: int = 2, handler: str = "punjab.handler") -> Incident:
        """Triage `report` into an incident at RECEIVED + 30 minutes."""
        with clock.frozen_at(RECEIVED + dt.timedelta(minutes=30)):
            return services.triage_report(
                actor=self.people[handler],
                report=report,
                data=services.TriageInput(
                    classification_taxonomy="malicious-code",
                    classification_type="infected-system",
                    severity=severity,
                ),
            )


def build_world() -> World:
    index.clear_cache()
    load_framework_file(settings.CERTNET_FRAMEWORK_FILE)
    for slug, parent in (("lahore", "punjab-cert"), ("karachi", "sindh-cert")):
        registry.create_organisation(
            actor=ACTOR,
            data=registry.OrganisationInput(
                slug=slug,
                name=f"{slug.title()} Electric Supply",
                kind="constituent",
                reports_to=parent,
                reports_since=dt.date(2024, 1, 1),
            ),
        )
    world = World(orgs={o.slug: o for o in Organisation.objects.all()})
    for username, (slug, role) in PEOPLE.items():
        user = create_user(
            actor=ACTOR,
            username=username,
            password=PASSWORD,
            email=address(username),
            check_password_strength=False,
        )
        set_membership(actor=ACTOR, user=user, organisation_id=world.orgs[slug].pk, role=role)
        world.people[username] = user
    return world
