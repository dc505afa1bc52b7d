from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from certnet.core.errors import DomainError
from certnet.registry.framework import load_framework_file


class Command(BaseCommand):
    help = (
        "Validate a framework file and load it. Every error is listed with its path; nothing is loaded then."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        try:
            summary = load_framework_file(path)
        except DomainError as exc:
            lines = [exc.detail, *(f"  {error}" for error in exc.errors)]
            raise CommandError("\n".join(lines)) from None
        self.stdout.write(json.dumps(summary, indent=2))
