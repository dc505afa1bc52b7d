"""`certnet ingest-mail FILE.eml`: import one message as if it had arrived by SMTP. FILE may be `-`
to read the message from standard input (a mail relay's pipe transport)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from certnet.core.errors import DomainError
from certnet.incidents.services import mail as mail_intake

UNREADABLE = 2


class Command(BaseCommand):
    help = (
        "Import one e-mail message (.eml): it becomes a report for the sender's organisation, or waits "
        "in a CERT's triage queue. Exit 1 if the message is refused, 2 if the file cannot be read."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="the message, as RFC 5322 bytes (an .eml file), or - for stdin")
        parser.add_argument(
            "--from", dest="envelope_from", default="", help="the envelope sender (default: none recorded)"
        )
        parser.add_argument(
            "--to",
            dest="recipients",
            action="append",
            default=[],
            help="an envelope recipient (repeatable; default: the message's To and Cc)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        raw = self._read(options["file"])
        try:
            result = mail_intake.ingest(
                raw, envelope_from=options["envelope_from"], recipients=options["recipients"]
            )
        except DomainError as exc:
            raise CommandError(f"{options['file']}: {exc.detail}") from None
        self.stdout.write(f"{options['file']}: {result.describe()}")

    def _read(self, name: str) -> bytes:
        """The message's bytes; one over the size limit is refused before it is read into memory."""
        limit = settings.CERTNET_MAIL_MAX_BYTES
        try:
            if name == "-":
                raw = sys.stdin.buffer.read(limit + 1)
                if len(raw) > limit:
                    raise CommandError(f"-: the message is larger than the limit of {limit} bytes")
                return raw
            path = Path(name)
            size = path.stat().st_size
            if size > limit:
                raise CommandError(f"{name}: the message is {size} bytes; the limit is {limit} bytes")
            return path.read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read {name}: {exc.strerror or exc}", returncode=UNREADABLE) from None
