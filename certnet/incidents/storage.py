"""Evidence bytes, outside the database: written through Django's storage API (the "evidence" entry of
STORAGES, a directory by default, an S3-compatible store by configuration), hashed while they are
written, refused past the size limit without leaving a partial file behind."""

from __future__ import annotations

import hashlib
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO

from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage, storages

from certnet.core.errors import TooLarge

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class StoredFile:
    key: str
    sha256: str
    size: int


def evidence_storage() -> Storage:
    return storages["evidence"]


def _chunks(source: bytes | IO[bytes] | Iterable[bytes]) -> Iterator[bytes]:
    if isinstance(source, bytes | bytearray | memoryview):
        yield bytes(source)
    elif hasattr(source, "read"):
        while chunk := source.read(CHUNK):
            yield chunk
    else:
        yield from source


def store(
    source: bytes | IO[bytes] | Iterable[bytes], *, what: str, max_bytes: int | None = None
) -> StoredFile:
    """Hash and size the bytes in one pass into a spooled temporary file, refuse them past the limit
    (TooLarge, naming `what`), then hand them to the storage under a fresh key."""
    limit = settings.CERTNET_EVIDENCE_MAX_BYTES if max_bytes is None else max_bytes
    digest = hashlib.sha256()
    size = 0
    with tempfile.SpooledTemporaryFile(max_size=8 * CHUNK) as spool:
        for chunk in _chunks(source):
            size += len(chunk)
            if size > limit:
                raise TooLarge(f"{what} is larger than the limit of {limit} bytes")
            digest.update(chunk)
            spool.write(chunk)
        spool.seek(0)
        sha256 = digest.hexdigest()
        key = f"{sha256[:2]}/{sha256}-{uuid.uuid4().hex[:12]}"
        saved = evidence_storage().save(key, File(spool, name=key))
    return StoredFile(key=saved, sha256=sha256, size=size)


def open_stored(key: str) -> IO[bytes]:
    handle: IO[bytes] = evidence_storage().open(key, "rb")
    return handle


def delete_stored(key: str) -> None:
    """Only for bytes stored by a transaction that then failed: nothing accepted is ever deleted."""
    evidence_storage().delete(key)


def hash_of(key: str) -> str:
    digest = hashlib.sha256()
    with open_stored(key) as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
