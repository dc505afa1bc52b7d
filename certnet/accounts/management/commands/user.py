from __future__ import annotations

import getpass
import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from certnet.accounts import services
from certnet.accounts.selectors import get_user_by_username, organisation_id_for_slug
from certnet.core.audit import SystemActor
from certnet.core.errors import DomainError
from certnet.core.roles import Role


class Command(BaseCommand):
    help = (
        "Manage accounts: `user create NAME [--platform-admin] [--org SLUG --role ROLE]`, "
        "`user grant NAME --org SLUG --role ROLE`. The password comes from CERTNET_PASSWORD or a prompt."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="verb", required=True)
        create = sub.add_parser("create", help="create a user")
        create.add_argument("username")
        create.add_argument("--email", default="")
        create.add_argument("--full-name", default="")
        create.add_argument("--platform-admin", action="store_true")
        grant = sub.add_parser("grant", help="give a user a role in an organisation")
        grant.add_argument("username")
        for command in (create, grant):
            command.add_argument("--org", help="organisation slug")
            command.add_argument("--role", choices=Role.values)

    def handle(self, *args: Any, **options: Any) -> None:
        actor = SystemActor("cli")
        try:
            if options["verb"] == "create":
                password = os.environ.get("CERTNET_PASSWORD") or getpass.getpass("Password: ")
                user = services.create_user(
                    actor=actor,
                    username=options["username"],
                    password=password,
                    email=options["email"],
                    full_name=options["full_name"],
                    is_platform_admin=options["platform_admin"],
                )
            else:
                found = get_user_by_username(options["username"])
                if found is None:
                    raise CommandError(f"no user {options['username']!r}")
                user = found
            if options["org"] or options["role"]:
                if not (options["org"] and options["role"]):
                    raise CommandError("--org and --role go together")
                org_id = organisation_id_for_slug(options["org"])
                if org_id is None:
                    raise CommandError(f"no organisation {options['org']!r}")
                services.set_membership(
                    actor=actor, user=user, organisation_id=org_id, role=Role(options["role"])
                )
        except DomainError as exc:
            raise CommandError("\n".join([exc.detail, *(f"  {e}" for e in exc.errors)])) from None
        self.stdout.write(f"{options['verb']}: {user.username} done")
