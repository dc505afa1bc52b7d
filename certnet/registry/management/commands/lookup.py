from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from certnet.accounts.models import User
from certnet.core.clock import parse_date
from certnet.core.errors import DomainError
from certnet.registry.resources import classify_query
from certnet.registry.selectors import lookup


class Command(BaseCommand):
    help = "Which organisation held an IP address, AS number or domain (as of --at), and its CERT chain."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("query", help="an IP address, an AS number (AS64500 or 64500) or a domain")
        parser.add_argument("--at", help="the date to answer for (YYYY-MM-DD); default today")
        parser.add_argument("--json", action="store_true", help="print JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            day = parse_date(options["at"], loc="--at") if options["at"] else None
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        # The operator's CLI answers over the whole registry, as a platform administrator would.
        operator = User(username="cli", is_platform_admin=True, is_active=True, pk=0)
        try:
            result = lookup(operator, options["query"], classify_query(options["query"]), day)
        except DomainError as exc:
            raise CommandError(exc.detail) from None
        if options["json"]:
            self.stdout.write(json.dumps(result.as_dict(), indent=2))
            return
        chain = " → ".join(o.display_name for o in result.chain) or "(none)"
        self.stdout.write(
            f"{result.query} on {result.at}: {result.organisation.name} ({result.organisation.slug})\n"
            f"  matched {result.matched}\n  CERT chain: {chain}"
        )
