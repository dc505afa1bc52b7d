from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from certnet.core import audit


class Command(BaseCommand):
    help = "Work with the hash-chained audit log. `audit verify` exits 1 and names the first bad entry."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="verb", required=True)
        sub.add_parser("verify", help="recompute every hash and check the chain")

    def handle(self, *args: Any, **options: Any) -> None:
        result = audit.verify()
        if not result.ok:
            raise CommandError(
                f"audit log BROKEN at entry #{result.first_bad_seq}: {result.reason}", returncode=1
            )
        self.stdout.write(f"audit log intact: {result.checked} entries verified")
