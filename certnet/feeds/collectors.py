"""Collectors: where a source's files come from. Each returns local files for the pipeline to run.

- `file`: a file, or every file of a directory.
- `http`: one HTTP(S) URL, streamed to disk under a time limit and a size limit.
- `mailbox`: a mailbox export (an mbox file, or a directory of .eml messages): every attachment of
  every message, as providers such as Shadowserver send their reports.

Compressed files (.gz, .zip) are opened on the way. Every problem is a `CollectError` naming the source
and what went wrong; nothing half-fetched is handed on.
"""

from __future__ import annotations

import email
import email.policy
import gzip
import hashlib
import mailbox
import re
import shutil
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import unquote, urlparse

CHUNK = 1 << 20
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class CollectError(RuntimeError):
    """A source could not be collected; the message says which and why."""


@dataclass(frozen=True)
class CollectLimits:
    timeout_seconds: float = 60.0
    max_bytes: int = 2 * 1024**3


def safe_name(name: str, fallback: str) -> str:
    """A file name that cannot leave the spool directory."""
    cleaned = _SAFE_NAME.sub("_", Path(name).name).strip("._")
    return cleaned or fallback


def _unpack(path: Path, spool: Path) -> list[Path]:
    """The data files in `path`: itself, or what a .gz or .zip holds."""
    if path.suffix == ".gz":
        target = spool / safe_name(path.stem, "report.csv")
        with gzip.open(path, "rb") as source, target.open("wb") as out:
            shutil.copyfileobj(source, out, CHUNK)
        path.unlink()
        return [target]
    if path.suffix == ".zip":
        found: list[Path] = []
        try:
            with zipfile.ZipFile(path) as archive:
                for member in archive.infolist():
                    if member.is_dir():
                        continue
                    target = spool / safe_name(member.filename, f"member-{len(found)}.csv")
                    with archive.open(member) as source, target.open("wb") as out:
                        shutil.copyfileobj(source, out, CHUNK)
                    found.append(target)
        except zipfile.BadZipFile as error:
            raise CollectError(f"{path.name}: not a readable zip archive ({error})") from error
        path.unlink()
        return found
    return [path]


def collect_files(location: str) -> list[Path]:
    path = Path(location)
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    if path.is_file():
        return [path]
    raise CollectError(f"{location}: no such file or directory")


def collect_http(
    url: str, spool: Path, limits: CollectLimits, headers: dict[str, str] | None = None
) -> list[Path]:
    parsed = urlparse(url)
    if parsed.scheme not in {"http", "https"} or not parsed.netloc:
        raise CollectError(f"{url}: not an http(s) URL")
    request = urllib.request.Request(url, headers={"User-Agent": "certnet-feeds", **(headers or {})})  # noqa: S310 (scheme checked above)
    spool.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(request, timeout=limits.timeout_seconds) as response:  # noqa: S310
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > limits.max_bytes:
                raise CollectError(
                    f"{url}: {int(declared):,} bytes is more than the limit of {limits.max_bytes:,}"
                )
            name = _name_from(response.headers.get("Content-Disposition", ""), parsed.path)
            partial = spool / f".{name}.part"
            received = 0
            digest = hashlib.sha256()
            with partial.open("wb") as out:
                while chunk := response.read(CHUNK):
                    received += len(chunk)
                    if received > limits.max_bytes:
                        out.close()
                        partial.unlink()
                        raise CollectError(f"{url}: the body passed the limit of {limits.max_bytes:,} bytes")
                    digest.update(chunk)
                    out.write(chunk)
    except urllib.error.HTTPError as error:
        raise CollectError(f"{url}: the server answered {error.code} {error.reason}") from error
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise CollectError(f"{url}: {reason}") from error
    target = spool / name
    partial.replace(target)
    return _unpack(target, spool)


def _name_from(disposition: str, url_path: str) -> str:
    match = re.search(r'filename\*?=(?:UTF-8\'\')?"?([^";]+)"?', disposition)
    name = unquote(match.group(1)) if match else unquote(Path(url_path).name)
    return safe_name(name, "download.csv")


def _parsed(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    if not isinstance(message, EmailMessage):  # the default policy always makes one
        raise CollectError("a message could not be read")
    return message


def _messages(location: Path) -> list[EmailMessage]:
    if location.is_dir():
        return [_parsed(path.read_bytes()) for path in sorted(location.glob("*.eml"))]
    if location.is_file():
        box = mailbox.mbox(str(location), create=False)
        try:
            return [_parsed(message.as_bytes()) for message in box]
        finally:
            box.close()
    raise CollectError(f"{location}: no such mailbox file or directory")


def collect_mailbox(location: str, spool: Path) -> list[Path]:
    spool.mkdir(parents=True, exist_ok=True)
    found: list[Path] = []
    for number, message in enumerate(_messages(Path(location)), start=1):
        # One directory per message: attachment names stay as sent (the report type is in them).
        folder = spool / f"message-{number:05d}"
        for part in message.iter_attachments():
            payload = part.get_payload(decode=True)
            if not isinstance(payload, bytes) or not payload:
                continue
            folder.mkdir(exist_ok=True)
            target = folder / safe_name(part.get_filename() or "", f"attachment-{len(found) + 1}.csv")
            target.write_bytes(payload)
            found.extend(_unpack(target, folder))
    if not found:
        raise CollectError(f"{location}: no attachments in the mailbox")
    return found
