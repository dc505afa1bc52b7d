from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from certnet.api import api


def openapi_document() -> str:
    return json.dumps(api.get_openapi_schema(path_prefix="/api/v1"), indent=2, sort_keys=True) + "\n"


class Command(BaseCommand):
    help = "Write the API's OpenAPI document (docs/openapi.json is checked against it by the tests)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("output", type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        options["output"].write_text(openapi_document(), encoding="utf-8")
        self.stdout.write(f"wrote {options['output']}")
