from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from certnet.incidents.services.clocks_sweep import sweep


class Command(BaseCommand):
    help = (
        "The deadline clocks. `certnet clocks sweep` raises now every coming-due and overdue alert not yet "
        "raised (the background job does the same every minute)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["sweep"])

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(str(sweep()))
