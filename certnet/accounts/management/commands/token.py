from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from certnet.accounts import services
from certnet.accounts.selectors import get_user_by_username
from certnet.core.audit import SystemActor
from certnet.core.errors import DomainError


class Command(BaseCommand):
    help = "Create or revoke API tokens. `token create USER` prints the token once; keep it secret."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="verb", required=True)
        create = sub.add_parser("create", help="create a token for USER and print it")
        create.add_argument("username")
        create.add_argument("--name", default="cli")
        create.add_argument("--days", type=int, default=None, help="lifetime in days (default from settings)")
        revoke = sub.add_parser("revoke", help="revoke USER's token starting with PREFIX")
        revoke.add_argument("username")
        revoke.add_argument("prefix")

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_by_username(options["username"])
        if user is None:
            raise CommandError(f"no user {options['username']!r}")
        actor = SystemActor("cli")
        try:
            if options["verb"] == "create":
                issued = services.create_token(
                    actor=actor, user=user, name=options["name"], days=options["days"]
                )
                self.stdout.write(issued.secret)
                self.stderr.write(f"expires {issued.token.expires_at:%Y-%m-%d %H:%M} UTC")
            else:
                services.revoke_token(actor=actor, user=user, prefix=options["prefix"])
                self.stdout.write(f"revoked {options['prefix']}")
        except DomainError as exc:
            raise CommandError(exc.detail) from None
