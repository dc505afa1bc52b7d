"""Evidence packages: the zip handed to the investigating agency, and the check that it is intact.

A package holds `evidence/<id>-<filename>` for every file, `custody.json` (the chain of custody of
those files), `timeline.json` (the incident's timeline) and `manifest.json`, which records the SHA-256
and size of every other member. The manifest's own SHA-256 is what the exporting platform records in
its audit log, so the recipient can tie the package to that record. Nothing here touches the database:
the services decide what goes in, the `evidence verify` command reports what `verify()` finds.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import zipfile
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from certnet.core.errors import Conflict

FORMAT = "certnet-evidence-package/1"
MANIFEST = "manifest.json"
CUSTODY = "custody.json"
TIMELINE = "timeline.json"
EVIDENCE_DIR = "evidence/"
CHUNK = 1024 * 1024
# What reading a damaged or odd member raises: bad CRC, broken deflate stream, truncation, an
# unsupported compression method.
_DAMAGED = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError)
_SHA256 = re.compile(r"[0-9a-f]{64}")


def evidence_path(evidence_id: int, filename: str) -> str:
    # The id keeps two files of the same name apart; filenames were cleaned of paths on receipt.
    return f"{EVIDENCE_DIR}{evidence_id}-{filename}"


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n").encode()


class StoredBytesChanged(Conflict):
    """A stored evidence file no longer hashes to what was recorded on receipt."""

    def __init__(self, what: str, *, recorded: str, actual: str) -> None:
        super().__init__(
            f"{what} no longer matches the hash recorded on receipt (recorded sha256 {recorded}, "
            f"the stored bytes now hash to {actual}); nothing was exported"
        )
        self.recorded = recorded
        self.actual = actual


@dataclass(frozen=True)
class PackedFile:
    path: str
    sha256: str
    size: int


class PackageWriter:
    """Writes a package member by member into `target` (a seekable binary file). Evidence first,
    re-hashed on the way in; then the custody and timeline records; the manifest last, since it
    hashes everything before it."""

    def __init__(self, target: IO[bytes], *, at: dt.datetime) -> None:
        self._zip = zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED)
        # Zip times have no zone; every member carries the export time in UTC.
        self._stamp = at.astimezone(dt.UTC).timetuple()[:6]
        self.files: list[PackedFile] = []
        self.records: dict[str, PackedFile] = {}

    def _info(self, path: str) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(path, date_time=self._stamp)
        info.compress_type = zipfile.ZIP_DEFLATED
        return info

    def add_evidence(self, path: str, source: IO[bytes], *, recorded_sha256: str, what: str) -> PackedFile:
        """Copy one stored file in, hashing it as it goes; refuse it if it no longer matches the hash
        recorded on receipt (the zip is then abandoned by the caller)."""
        digest = hashlib.sha256()
        size = 0
        with self._zip.open(self._info(path), "w") as member:
            while chunk := source.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
                member.write(chunk)
        actual = digest.hexdigest()
        if actual != recorded_sha256:
            raise StoredBytesChanged(what, recorded=recorded_sha256, actual=actual)
        packed = PackedFile(path, actual, size)
        self.files.append(packed)
        return packed

    def add_record(self, path: str, value: Any) -> PackedFile:
        data = _json_bytes(value)
        self._zip.writestr(self._info(path), data)
        packed = PackedFile(path, hashlib.sha256(data).hexdigest(), len(data))
        self.records[path] = packed
        return packed

    def finish(self, manifest: Mapping[str, Any]) -> str:
        """Write manifest.json (the caller's fields plus the hashes of every member) and close the
        zip; return the manifest's SHA-256."""
        data = _json_bytes(dict(manifest))
        self._zip.writestr(self._info(MANIFEST), data)
        self._zip.close()
        return hashlib.sha256(data).hexdigest()

    def abandon(self) -> None:
        self._zip.close()


# --- verification -----------------------------------------------------------------------------


class UnreadablePackage(Exception):
    """The file cannot be read, or is not a zip at all: nothing in it could be checked."""


@dataclass(frozen=True)
class Check:
    ok: bool
    message: str


@dataclass
class Verification:
    """Every check made, in order; the manifest (when it could be read) and its SHA-256."""

    checks: list[Check] = field(default_factory=list)
    manifest_sha256: str | None = None
    manifest: dict[str, Any] | None = None

    @property
    def problems(self) -> list[str]:
        return [check.message for check in self.checks if not check.ok]

    @property
    def ok(self) -> bool:
        return not self.problems

    def passed(self, message: str) -> None:
        self.checks.append(Check(True, message))

    def failed(self, message: str) -> None:
        self.checks.append(Check(False, message))


def _hash_member(archive: zipfile.ZipFile, name: str) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with archive.open(name) as member:
        while chunk := member.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


@dataclass(frozen=True)
class _Expected:
    path: str
    sha256: str
    size: int | None
    what: str


def _listed(manifest: dict[str, Any], result: Verification) -> Iterator[_Expected]:
    """The members the manifest vouches for; a malformed entry is a problem, not a crash."""
    files = manifest.get("files")
    if not isinstance(files, list):
        result.failed("manifest.json has no list of files ('files')")
        files = []
    for index, entry in enumerate(files):
        loc = f"manifest files[{index}]"
        if not isinstance(entry, dict):
            result.failed(f"{loc} is not an object")
            continue
        path, sha256, size = entry.get("path"), entry.get("sha256"), entry.get("size")
        if not isinstance(path, str) or not path:
            result.failed(f"{loc} has no path")
            continue
        if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
            result.failed(f"{loc} ({path}) has no valid sha256 (64 lowercase hex digits)")
            continue
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            result.failed(f"{loc} ({path}) has no valid size")
            continue
        yield _Expected(path, sha256, size, "evidence file")
    for key, default in (("custody", CUSTODY), ("timeline", TIMELINE)):
        record = manifest.get(key)
        if not isinstance(record, dict) or not isinstance(record.get("sha256"), str):
            result.failed(f"manifest.json does not record the sha256 of {default} ('{key}')")
            continue
        path = record.get("path", default)
        if not isinstance(path, str) or not path:
            result.failed(f"manifest.json names no path for '{key}'")
            continue
        size = record.get("size")
        yield _Expected(path, record["sha256"], size if isinstance(size, int) else None, f"{key} record")


def _read_manifest(archive: zipfile.ZipFile, result: Verification) -> dict[str, Any] | None:
    try:
        data = archive.read(MANIFEST)
    except KeyError:
        result.failed("manifest.json is missing: nothing in the package can be checked against it")
        return None
    except _DAMAGED as exc:
        result.failed(f"manifest.json is damaged inside the zip: {exc}")
        return None
    result.manifest_sha256 = hashlib.sha256(data).hexdigest()
    try:
        manifest = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        result.failed("manifest.json is not UTF-8 text")
        return None
    except json.JSONDecodeError as exc:
        result.failed(f"manifest.json is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})")
        return None
    if not isinstance(manifest, dict):
        result.failed("manifest.json is not a JSON object")
        return None
    if manifest.get("format") != FORMAT:
        result.failed(f"manifest.json declares format {manifest.get('format')!r}, not {FORMAT!r}")
    else:
        result.passed(f"manifest.json is readable, format {FORMAT}, sha256 {result.manifest_sha256}")
    result.manifest = manifest
    return manifest


def _check_member(
    archive: zipfile.ZipFile, present: set[str], expected: _Expected, result: Verification
) -> None:
    if expected.path not in present:
        result.failed(f"{expected.path} is listed in the manifest but missing from the package")
        return
    try:
        actual, size = _hash_member(archive, expected.path)
    except _DAMAGED as exc:
        result.failed(f"{expected.path} is damaged inside the zip ({exc}); its bytes cannot be trusted")
        return
    if actual != expected.sha256:
        result.failed(
            f"{expected.path}: HASH MISMATCH, the file hashes to sha256 {actual} "
            f"but the manifest records {expected.sha256}"
        )
    elif expected.size is not None and size != expected.size:
        result.failed(f"{expected.path}: {size} bytes, but the manifest records {expected.size} bytes")
    else:
        result.passed(f"{expected.path}: sha256 {actual} matches ({size} bytes, {expected.what})")


def verify(package: str | Path | IO[bytes]) -> Verification:
    """Re-check every hash in a package against its manifest. Problems are listed, never raised;
    UnreadablePackage only when the file cannot be opened as a zip at all."""
    name = str(package) if isinstance(package, str | Path) else "the package"
    try:
        archive = zipfile.ZipFile(package)
    except zipfile.BadZipFile:
        raise UnreadablePackage(f"{name} is not a zip file (an evidence package is a .zip)") from None
    except OSError as exc:
        raise UnreadablePackage(f"{name} cannot be read: {exc.strerror or exc}") from None
    result = Verification()
    with archive:
        names = [info.filename for info in archive.infolist()]
        present = set(names)
        duplicates = sorted({n for n in names if names.count(n) > 1})
        for duplicate in duplicates:
            result.failed(
                f"{duplicate} appears more than once in the zip: which copy is evidence is ambiguous"
            )
        manifest = _read_manifest(archive, result)
        if manifest is None:
            for extra in sorted(present - {MANIFEST}):
                result.failed(f"{extra} cannot be checked: there is no usable manifest")
            return result
        listed: list[str] = []
        for expected in _listed(manifest, result):
            if expected.path in listed:
                result.failed(f"{expected.path} is listed more than once in the manifest")
                continue
            listed.append(expected.path)
            _check_member(archive, present, expected, result)
        for extra in sorted(present - set(listed) - {MANIFEST}):
            result.failed(f"{extra} is in the package but not in the manifest (added after export?)")
    return result


def summary_lines(manifest: Mapping[str, Any]) -> Sequence[str]:
    """What the manifest says the package is, for people reading the verification."""
    found = manifest.get("incident")
    incident: Mapping[str, Any] = found if isinstance(found, dict) else {}
    lines = [
        f"incident {incident.get('reference', '?')}: {incident.get('title', '')}".rstrip(": "),
        f"exported {manifest.get('exported_at', '?')} by {manifest.get('exported_by', '?')}",
    ]
    referral = manifest.get("referral")
    if isinstance(referral, dict):
        sections = ", ".join(str(s) for s in referral.get("sections", []))
        case = referral.get("case_number") or "no case number yet"
        lines.append(f"referral to {referral.get('agency', '?')} ({case}) under PECA-2016 {sections}")
    files = manifest.get("files")
    lines.append(f"{len(files) if isinstance(files, list) else 0} evidence file(s) listed")
    return lines
