"""`certnet smtpd`: the SMTP intake server. Each message is handed to services.mail.ingest and the
sender's server gets an answer it can act on:

250  received: the reference of the report, or of the mail held for triage (also for a repeat delivery)
552  too large: the message, or one attachment, is over its limit (the message was not kept)
554  refused: the message cannot be read (no sender, broken structure, damaged attachment)
451  something went wrong here: nothing was kept, and the sending server retries later
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Sequence
from typing import Any

from aiosmtpd.controller import Controller
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections

from certnet.core.errors import DomainError, InvalidInput, TooLarge
from certnet.incidents.services import mail as mail_intake

log = logging.getLogger("certnet.smtpd")
REPLY_MAX = 400  # characters of detail in one reply line; RFC 5321 allows 512 octets in all


def _reply_text(text: str) -> str:
    """One line of ASCII: a reply must not contain line breaks, and aiosmtpd sends replies as ASCII."""
    line = " ".join(text.split())
    line = line.encode("ascii", errors="replace").decode("ascii")
    return line[:REPLY_MAX]


def deliver(raw: bytes, mail_from: str, recipients: Sequence[str]) -> str:
    """Ingest one message and answer with the SMTP reply line. Runs the ORM: call it from a thread
    where synchronous code is allowed (the handler below does)."""
    close_old_connections()
    try:
        result = mail_intake.ingest(raw, envelope_from=mail_from, recipients=list(recipients))
    except TooLarge as exc:
        return f"552 5.3.4 {_reply_text(exc.detail)}"
    except InvalidInput as exc:
        return f"554 5.6.0 message refused: {_reply_text(exc.detail)}"
    except DomainError as exc:
        return f"554 5.7.0 message refused: {_reply_text(exc.detail)}"
    except Exception:
        log.exception("mail intake failed for a message from %r", mail_from)
        return "451 4.3.0 the message could not be stored just now; nothing was kept, please retry later"
    finally:
        close_old_connections()
    if not result.created:
        return f"250 2.0.0 already received as {result.reference}"
    if result.report is not None:
        return f"250 2.0.0 received as {result.reference}"
    return f"250 2.0.0 received as {result.reference}, held for triage"


class IntakeHandler:
    """The aiosmtpd handler. aiosmtpd runs its asyncio loop in a thread of its own, where the
    synchronous ORM may not run; sync_to_async moves each delivery to a worker thread (one at a time),
    and deliver() opens and closes that thread's database connection around it."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        raw = envelope.original_content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", errors="surrogateescape")
        reply: str = await sync_to_async(deliver, thread_sensitive=True)(
            bytes(raw), envelope.mail_from or "", list(envelope.rcpt_tos)
        )
        return reply


def controller(host: str, port: int) -> Controller:
    """An aiosmtpd controller for the intake handler; refuses data over the message limit itself."""
    return Controller(
        IntakeHandler(),
        hostname=host,
        port=port,
        data_size_limit=settings.CERTNET_MAIL_MAX_BYTES,
        ident="certnet intake",
    )


class Command(BaseCommand):
    help = "Run the SMTP intake server: each message becomes a report or waits in a CERT's triage queue."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--host", default=settings.CERTNET_SMTPD_HOST, help="address to listen on (default loopback)"
        )
        parser.add_argument("--port", type=int, default=settings.CERTNET_SMTPD_PORT)

    def handle(self, *args: Any, **options: Any) -> None:
        server = controller(options["host"], options["port"])
        stopping = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stopping.set())
        server.start()
        self.stdout.write(
            f"certnet smtpd listening on {options['host']}:{options['port']} "
            f"(messages up to {settings.CERTNET_MAIL_MAX_BYTES} bytes; Ctrl-C to stop)"
        )
        self.stdout.flush()
        try:
            stopping.wait()
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()
            self.stdout.write("certnet smtpd stopped")
