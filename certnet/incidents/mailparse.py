"""An e-mail message (RFC 5322 bytes) read into what intake needs: sender, recipients, subject, date,
a text body, the attachments and the TLP label the subject carries. Pure: no database, no storage.

Anything that cannot be read faithfully is refused with InvalidInput saying what is wrong: no sender,
not a message at all, a multipart message whose structure is broken (often a truncated message), or an
attachment whose encoding is damaged. Evidence must be exactly what the sender sent, so a damaged
attachment refuses the whole message rather than keeping bytes that were guessed at.
"""

from __future__ import annotations

import datetime as dt
import mimetypes
import re
from dataclasses import dataclass
from email import errors as email_errors
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage, Message
from email.parser import BytesParser
from html.parser import HTMLParser

from certnet.core.errors import FieldError, InvalidInput
from certnet.core.tlp import TLP

# Defects after which the parts of a multipart message cannot be trusted to be what was sent.
STRUCTURE_DEFECTS = (
    email_errors.NoBoundaryInMultipartDefect,
    email_errors.StartBoundaryNotFoundDefect,
    email_errors.CloseBoundaryNotFoundDefect,
    email_errors.MultipartInvariantViolationDefect,
)
# Defects that mean an attachment's bytes would be decoded into something other than what was sent.
ENCODING_DEFECTS = (
    email_errors.InvalidBase64CharactersDefect,
    email_errors.InvalidBase64PaddingDefect,
    email_errors.InvalidBase64LengthDefect,
)

# Serialises a parsed part back with its header lines as they came (no refolding), CRLF line ends.
_AS_RECEIVED = policy.SMTP.clone(refold_source="none")

_TLP_TAG = re.compile(r"\bTLP\s*:\s*(CLEAR|WHITE|GREEN|AMBER\s*\+\s*STRICT|AMBER|RED)\b", re.IGNORECASE)
_BRACKETED_TLP_TAG = re.compile(
    r"\[\s*TLP\s*:\s*(?:CLEAR|WHITE|GREEN|AMBER\s*\+\s*STRICT|AMBER|RED)\s*\]\s*", re.IGNORECASE
)


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    content: bytes

    @property
    def size(self) -> int:
        return len(self.content)


@dataclass(frozen=True)
class ParsedMail:
    message_id: str  # as written, angle brackets included; "" when the message has none
    from_address: str
    from_name: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    subject: str
    sent_at: dt.datetime | None  # the Date header, aware (UTC when it gave no zone); None if absent or bad
    body: str
    attachments: tuple[Attachment, ...]
    tlp: TLP | None  # the label in the subject, the strictest if it names several

    @property
    def title(self) -> str:
        return title_of(self.subject)


def title_of(subject: str) -> str:
    """The subject without its bracketed TLP label (the label becomes the record's TLP)."""
    return " ".join(_BRACKETED_TLP_TAG.sub(" ", subject).split())


def _refuse(loc: str, msg: str) -> InvalidInput:
    """The error for a message that cannot be read; the detail names the header or part at fault."""
    return InvalidInput(msg if loc == "message" else f"{loc}: {msg}", errors=[FieldError(loc, msg)])


def tlp_in_subject(subject: str) -> TLP | None:
    """'[TLP:AMBER] Phishing' → AMBER; 'tlp:amber+strict' and the TLP 1.0 WHITE are understood.
    A subject that names several labels (a reply to a RED thread tagged GREEN) gets the strictest."""
    found = [TLP.parse("tlp:" + re.sub(r"\s+", "", m.group(1))) for m in _TLP_TAG.finditer(subject)]
    return max(found, key=lambda label: label.rank) if found else None


def parse(raw: bytes) -> ParsedMail:
    """Read one message; InvalidInput (with the header or part at fault as its location) if it cannot
    be read faithfully."""
    if not raw.strip():
        raise _refuse("message", "the message is empty")
    try:
        return _read(BytesParser(policy=policy.default).parsebytes(raw))
    except InvalidInput:
        raise
    except (email_errors.MessageError, ValueError, LookupError, TypeError, AttributeError) as exc:
        # The email package raises these on headers or parts it cannot make sense of at all.
        raise _refuse("message", f"the message could not be decoded ({type(exc).__name__}: {exc})") from None


def _read(message: EmailMessage) -> ParsedMail:
    if not message.keys():
        raise _refuse("message", "this is not an e-mail message: it has no header fields (From, Subject ...)")
    from_address, from_name = _sender(message)
    for part in message.walk():
        for defect in part.defects:
            if isinstance(defect, STRUCTURE_DEFECTS):
                raise _refuse(
                    "message",
                    f"the message's MIME structure is broken ({_describe(defect)}); "
                    "it may have been truncated in transit",
                )
    body_part = message.get_body(preferencelist=("plain", "html"))
    return ParsedMail(
        message_id=_single_line(str(message.get("Message-ID", "") or "")),
        from_address=from_address,
        from_name=from_name,
        to=_addresses(message, "To"),
        cc=_addresses(message, "Cc"),
        subject=_single_line(str(message.get("Subject", "") or "")),
        sent_at=_date(message),
        body=_text_of(body_part) if body_part is not None else "",
        attachments=tuple(_attachments(message, body_part)),
        tlp=tlp_in_subject(str(message.get("Subject", "") or "")),
    )


def _describe(defect: Exception) -> str:
    return type(defect).__name__.removesuffix("Defect")


def _single_line(text: str) -> str:
    return " ".join(text.split())


def _sender(message: EmailMessage) -> tuple[str, str]:
    headers = message.get_all("From") or []
    if not headers:
        raise _refuse("From", "the message has no From header, so its sender is unknown")
    if len(headers) > 1:
        raise _refuse("From", f"the message has {len(headers)} From headers; a message has one sender")
    header = headers[0]
    addresses: tuple[Address, ...] = getattr(header, "addresses", ())
    if len(addresses) != 1:
        raise _refuse(
            "From", f"{_single_line(str(header))!r} names {len(addresses)} addresses; one sender is needed"
        )
    address = addresses[0]
    if not address.username or "." not in address.domain or any(ch.isspace() for ch in address.addr_spec):
        raise _refuse("From", f"{_single_line(str(header))!r} is not an e-mail address")
    return address.addr_spec.lower(), _single_line(address.display_name)


def _addresses(message: EmailMessage, name: str) -> tuple[str, ...]:
    found: list[str] = []
    for header in message.get_all(name) or []:
        for address in getattr(header, "addresses", ()):
            if address.username and address.domain:
                found.append(address.addr_spec.lower())
    return tuple(found)


def _date(message: EmailMessage) -> dt.datetime | None:
    header = message.get("Date")
    moment = getattr(header, "datetime", None) if header is not None else None
    if not isinstance(moment, dt.datetime):
        return None
    # "-0000" means the sender's zone is unknown; the instant is still given in UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def _text_of(part: Message) -> str:
    try:
        content = part.get_content()  # type: ignore[attr-defined]
    except LookupError:  # a charset Python does not know: keep what is readable
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else ""
    text = str(content)
    if part.get_content_subtype() == "html":
        text = html_to_text(text)
    return text.replace("\r\n", "\n").strip()


def _attachments(message: EmailMessage, body_part: Message | None) -> list[Attachment]:
    found: list[Attachment] = []

    def visit(part: Message) -> None:
        if part is body_part:
            return
        content_type = part.get_content_type()
        if content_type == "message/rfc822":
            # A forwarded message (the phishing mail itself, typically) is kept whole, as sent.
            inner = part.get_payload()
            inner_message = inner[0] if isinstance(inner, list) and inner else None
            content = (
                inner_message.as_bytes(policy=_AS_RECEIVED) if isinstance(inner_message, Message) else b""
            )
            found.append(Attachment(_filename(part, len(found), ".eml"), content_type, content))
            return
        if part.is_multipart():
            for sub in part.get_payload():
                if isinstance(sub, Message):
                    visit(sub)
            return
        filename = part.get_filename()
        is_attachment = (
            part.get_content_disposition() == "attachment"
            or filename is not None
            or part.get_content_maintype() != "text"
        )
        if not is_attachment:
            return  # the HTML twin of a plain-text body, or similar alternative text
        name = _filename(part, len(found), mimetypes.guess_extension(content_type) or ".bin")
        payload = part.get_payload(decode=True)  # records decoding defects on the part as it goes
        for defect in part.defects:
            if isinstance(defect, ENCODING_DEFECTS):
                raise _refuse(
                    f"attachments[{len(found)}]",
                    f"the attachment {name!r} is damaged ({_describe(defect)}); its bytes cannot be "
                    "recovered exactly",
                )
        content = payload if isinstance(payload, bytes) else b""
        found.append(Attachment(name, content_type, content))

    visit(message)
    return found


def _filename(part: Message, index: int, extension: str) -> str:
    name = part.get_filename()
    return _single_line(name) if name and name.strip() else f"attachment-{index + 1}{extension}"


# --- HTML bodies ------------------------------------------------------------------------------------

_BLOCK_TAGS = frozenset(
    {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote", "table", "hr"}
)
_SKIPPED_TAGS = frozenset({"script", "style", "head", "title", "template"})


class _TextExtractor(HTMLParser):
    """Text of an HTML body for people to read: scripts and styles dropped, blocks on their own lines,
    entities decoded. Nothing is rendered or executed; the text is escaped wherever it is shown."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.pieces: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_TAGS:
            self.skipping += 1
        elif tag in _BLOCK_TAGS:
            self.pieces.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS:
            self.skipping = max(0, self.skipping - 1)
        elif tag in _BLOCK_TAGS:
            self.pieces.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.pieces.append(data)


def html_to_text(html: str) -> str:
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    lines = (" ".join(line.split()) for line in "".join(extractor.pieces).splitlines())
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


__all__ = ["Attachment", "ParsedMail", "html_to_text", "parse", "title_of", "tlp_in_subject"]
