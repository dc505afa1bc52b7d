from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from certnet.core.audit import SystemActor
from certnet.core.errors import DomainError
from certnet.intel.services.warninglists import WARNINGLIST_DIR, load_warninglists


class Command(BaseCommand):
    help = "Load the warninglists from their data files (idempotent); indicators are re-flagged to match."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--directory", type=Path, default=WARNINGLIST_DIR)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            summary = load_warninglists(options["directory"], actor=SystemActor("warninglist-loader"))
        except DomainError as exc:
            raise CommandError("\n".join([exc.detail, *(f"  {e}" for e in exc.errors)])) from None
        self.stdout.write(
            f"warninglists: {summary.lists} lists, {summary.entries_added} entries added, "
            f"{summary.entries_removed} removed"
        )
