from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from certnet.accounts import services as accounts
from certnet.accounts.models import User
from certnet.core.audit import SystemActor
from certnet.core.errors import DomainError
from certnet.core.roles import Role
from certnet.registry.demo import load_demo_registry, read_demo
from certnet.registry.framework import load_framework_file
from certnet.registry.models import Organisation

DEMO_PASSWORD_ENV = "CERTNET_DEMO_PASSWORD"  # noqa: S105 - the name of a variable
DEFAULT_DEMO_PASSWORD = "certnet-demo-2026"  # noqa: S105 - demo accounts only, documented in the README


class Command(BaseCommand):
    help = "Create or upgrade the database, load the framework, and with --demo the demo data and accounts."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--demo", action="store_true", help="also load demo constituents and accounts")
        parser.add_argument("--framework", type=Path, default=settings.CERTNET_FRAMEWORK_FILE)

    def handle(self, *args: Any, **options: Any) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("database: migrated")
        try:
            summary = load_framework_file(options["framework"])
            self.stdout.write(
                f"framework: {summary['name']} {summary['version']} — {summary['created']} created, "
                f"{summary['updated']} updated, {summary['unchanged']} unchanged"
            )
            # By name: the registry does not import the apps built on it.
            call_command("load_warninglists", stdout=self.stdout)
            if options["demo"]:
                self._load_demo()
                call_command("load_demo_intel", stdout=self.stdout)
                call_command("load_demo_feeds", stdout=self.stdout)
        except DomainError as exc:
            raise CommandError("\n".join([exc.detail, *(f"  {e}" for e in exc.errors)])) from None

    @transaction.atomic
    def _load_demo(self) -> None:
        data = read_demo(settings.CERTNET_DEMO_FILE)
        added = load_demo_registry(data)
        password = os.environ.get(DEMO_PASSWORD_ENV, DEFAULT_DEMO_PASSWORD)
        actor = SystemActor("demo-loader")
        created = []
        for spec in data.get("users", []):
            user = User.objects.filter(username=spec["username"]).first()
            if user is None:
                user = accounts.create_user(
                    actor=actor,
                    username=spec["username"],
                    password=password,
                    full_name=spec.get("full_name", ""),
                    email=spec.get("email", ""),
                    is_platform_admin=spec.get("platform_admin", False),
                    check_password_strength=False,
                )
                created.append(user.username)
            for membership in spec.get("memberships", []):
                organisation = Organisation.objects.get(slug=membership["organisation"])
                if not user.memberships.filter(organisation=organisation, role=membership["role"]).exists():
                    accounts.set_membership(
                        actor=actor, user=user, organisation_id=organisation.pk, role=Role(membership["role"])
                    )
        self.stdout.write(
            f"demo: {added} registry records added; accounts created: {', '.join(created) or 'none'}"
        )
        if created:
            self.stdout.write(
                f"demo accounts share the password {password!r} (set {DEMO_PASSWORD_ENV} to change)"
            )
