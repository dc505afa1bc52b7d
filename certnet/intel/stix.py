"""STIX 2.1 as certnet writes and reads it: patterns for the observable kinds, timestamps, the TLP 2.0
marking definitions, and the objects for indicators, identities, sightings and reports.

The parser of record is the `stix2` library: every object certnet writes passes `stix2.parse`
(tests hold it to that), and objects certnet does not model are validated by it on import. Indicators
come in by the hundred thousand, so their common shape (a single comparison of one value) is checked
here first, and anything unusual is handed to `stix2`."""

from __future__ import annotations

import datetime as dt
import functools
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from certnet.core.tlp import STIX_MARKING_IDS, TLP
from certnet.intel.observables import Kind

SPEC_VERSION = "2.1"
TLP2_EXTENSION = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
# Identities of organisations are derived from their slugs, so every export names them alike.
IDENTITY_NAMESPACE = uuid.UUID("5b7c3e0a-8f0e-4f53-9a55-6a4e2f0c1d21")

TLP_BY_MARKING = {marking: tlp for tlp, marking in STIX_MARKING_IDS.items()}
# The TLP 1.0 marking definitions the stix2 library and older feeds use.
TLP_BY_MARKING.update(
    {
        "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9": TLP.CLEAR,
        "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da": TLP.GREEN,
        "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82": TLP.AMBER,
        "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed": TLP.RED,
    }
)
# When FIRST published the TLP 2.0 marking definitions.
_TLP2_CREATED = "2022-10-01T00:00:00.000Z"

# kind -> the object path its value sits on in a pattern.
PATTERN_PATHS: Mapping[str, str] = {
    Kind.IPV4: "ipv4-addr:value",
    Kind.IPV6: "ipv6-addr:value",
    Kind.DOMAIN: "domain-name:value",
    Kind.URL: "url:value",
    Kind.EMAIL: "email-addr:value",
    Kind.MD5: "file:hashes.MD5",
    Kind.SHA1: "file:hashes.'SHA-1'",
    Kind.SHA256: "file:hashes.'SHA-256'",
    Kind.ASN: "autonomous-system:number",
}
_HASH_KINDS = {
    "md5": Kind.MD5,
    "sha1": Kind.SHA1,
    "sha-1": Kind.SHA1,
    "sha256": Kind.SHA256,
    "sha-256": Kind.SHA256,
}
# The SCO types whose value certnet records, and the kind each becomes.
SCO_KINDS: Mapping[str, str] = {
    "ipv4-addr": Kind.IPV4,
    "ipv6-addr": Kind.IPV6,
    "domain-name": Kind.DOMAIN,
    "url": Kind.URL,
    "email-addr": Kind.EMAIL,
    "autonomous-system": Kind.ASN,
}

_SIMPLE_PATTERN = re.compile(
    r"^\[\s*(?P<type>[a-z0-9-]+):(?P<path>[A-Za-z0-9_.'-]+)\s*=\s*"
    r"(?:'(?P<text>(?:[^'\\]|\\.)*)'|(?P<number>\d+))\s*\]$"
)
_ID = re.compile(
    r"^(?P<type>[a-z0-9][a-z0-9-]*[a-z0-9])--[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
)
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$")


class PatternError(ValueError):
    """The pattern is not valid STIX patterning."""


# --- timestamps and ids ----------------------------------------------------------------------------


def timestamp(moment: dt.datetime) -> str:
    """RFC 3339 in UTC with milliseconds, or microseconds when the moment has them, so a timestamp read
    from a bundle is written back exactly."""
    moment = moment.astimezone(dt.UTC)
    if moment.microsecond % 1000:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_timestamp(text: Any) -> dt.datetime:
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not a STIX timestamp (YYYY-MM-DDTHH:MM:SS[.s]Z)")
    return _parse_timestamp(text)


@functools.lru_cache(maxsize=4096)  # a feed's objects mostly share a few timestamps
def _parse_timestamp(text: str) -> dt.datetime:
    if not _TIMESTAMP.match(text):
        raise ValueError(f"{text!r} is not a STIX timestamp (YYYY-MM-DDTHH:MM:SS[.s]Z)")
    whole, _, fraction = text[:-1].partition(".")
    try:
        moment = dt.datetime.fromisoformat(whole).replace(tzinfo=dt.UTC)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a valid time: {exc}") from None
    return moment.replace(microsecond=int((fraction + "000000")[:6])) if fraction else moment


def id_type(stix_id: Any) -> str | None:
    """The type part of a well-formed STIX id (an RFC 4122 UUID after the type), or None."""
    found = _ID.match(stix_id) if isinstance(stix_id, str) else None
    if found is None or uuid.UUID(stix_id.split("--", 1)[1]).variant != uuid.RFC_4122:
        return None
    return found.group("type")


def identity_id(organisation_slug: str) -> str:
    return f"identity--{uuid.uuid5(IDENTITY_NAMESPACE, organisation_slug)}"


def strictest_tlp(marking_refs: Iterable[str]) -> TLP | None:
    found = [TLP_BY_MARKING[ref] for ref in marking_refs if ref in TLP_BY_MARKING]
    return max(found, key=lambda tlp: tlp.rank) if found else None


# --- patterns --------------------------------------------------------------------------------------


def to_pattern(kind: str, value: str) -> str:
    if kind == Kind.ASN:
        return f"[{PATTERN_PATHS[kind]} = {int(value.removeprefix('AS'))}]"
    if kind == Kind.CIDR:
        path = "ipv6-addr:value" if ":" in value else "ipv4-addr:value"
    else:
        path = PATTERN_PATHS[kind]
    quoted = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"[{path} = '{quoted}']"


def read_pattern(pattern: str) -> tuple[str, str] | None:
    """(kind, raw value) for a pattern that compares one value certnet records; None for any other
    valid pattern. PatternError, with the parser's words, for an invalid one."""
    found = _SIMPLE_PATTERN.match(pattern.strip())
    if found is not None:
        single = _single_value(found)
        if single is not None:
            return single
    _validate_pattern(pattern)
    return None


def _single_value(found: re.Match[str]) -> tuple[str, str] | None:
    object_type, path = found.group("type"), found.group("path")
    text, number = found.group("text"), found.group("number")
    if text is not None:
        text = re.sub(r"\\(.)", r"\1", text)
    if object_type == "autonomous-system" and path == "number" and number is not None:
        return Kind.ASN, f"AS{number}"
    if text is None:
        return None
    if object_type in ("ipv4-addr", "ipv6-addr") and path == "value":
        return (Kind.CIDR if "/" in text else SCO_KINDS[object_type]), text
    if object_type == "file" and path.startswith("hashes."):
        algorithm = path.removeprefix("hashes.").strip("'").lower()
        kind = _HASH_KINDS.get(algorithm)
        return (kind, text) if kind else None
    if path == "value" and object_type in SCO_KINDS:
        return SCO_KINDS[object_type], text
    return None


def _validate_pattern(pattern: str) -> None:
    from stix2patterns.validator import run_validator

    problems = run_validator(pattern, stix_version=SPEC_VERSION)
    if problems:
        raise PatternError("; ".join(str(problem) for problem in problems))


# --- objects certnet writes ------------------------------------------------------------------------


def marking_definition(tlp: TLP) -> dict[str, Any]:
    return {
        "type": "marking-definition",
        "spec_version": SPEC_VERSION,
        "id": tlp.stix_marking_id,
        "created": _TLP2_CREATED,
        "name": tlp.label,
        "extensions": {TLP2_EXTENSION: {"extension_type": "property-extension", "tlp_2_0": tlp.value}},
    }


def identity_object(slug: str, name: str, created: dt.datetime) -> dict[str, Any]:
    stamp = timestamp(created)
    return {
        "type": "identity",
        "spec_version": SPEC_VERSION,
        "id": identity_id(slug),
        "created": stamp,
        "modified": stamp,
        "name": name,
        "identity_class": "organization",
    }


def indicator_object(
    *,
    stix_id: uuid.UUID,
    kind: str,
    value: str,
    name: str,
    description: str,
    created: dt.datetime,
    modified: dt.datetime,
    valid_from: dt.datetime,
    valid_until: dt.datetime | None,
    confidence: int,
    labels: Sequence[str],
    indicator_types: Sequence[str],
    made_by: str,
    tlp: TLP,
) -> dict[str, Any]:
    """A certnet indicator as STIX: an `indicator` with a one-value pattern, or for a CVE id the
    `vulnerability` it names (patterns cannot express one)."""
    common: dict[str, Any] = {
        "spec_version": SPEC_VERSION,
        "created": timestamp(created),
        "modified": timestamp(max(modified, created)),
        "created_by_ref": made_by,
        "object_marking_refs": [tlp.stix_marking_id],
    }
    if kind == Kind.CVE:
        body = {
            "type": "vulnerability",
            "id": f"vulnerability--{stix_id}",
            "name": name or value,
            **common,
            "external_references": [{"source_name": "cve", "external_id": value}],
        }
    else:
        body = {
            "type": "indicator",
            "id": f"indicator--{stix_id}",
            **common,
            "pattern": to_pattern(kind, value),
            "pattern_type": "stix",
            "pattern_version": SPEC_VERSION,
            "valid_from": timestamp(valid_from),
        }
        if name:
            body["name"] = name
        if indicator_types:
            body["indicator_types"] = list(indicator_types)
        if valid_until is not None and valid_until > valid_from:
            body["valid_until"] = timestamp(valid_until)
    if description:
        body["description"] = description
    body["confidence"] = confidence
    if labels:
        body["labels"] = list(labels)
    return body


def sighting_object(
    *,
    indicator_ref: str,
    seer_slug: str,
    first_seen: dt.datetime,
    last_seen: dt.datetime,
    count: int,
    tlp: TLP,
) -> dict[str, Any]:
    """One organisation's sightings of an indicator; its id follows from the two, so exports agree."""
    seer = identity_id(seer_slug)
    return {
        "type": "sighting",
        "spec_version": SPEC_VERSION,
        "id": f"sighting--{uuid.uuid5(IDENTITY_NAMESPACE, indicator_ref + ' ' + seer)}",
        "created": timestamp(first_seen),
        "modified": timestamp(last_seen),
        "sighting_of_ref": indicator_ref,
        "where_sighted_refs": [seer],
        "first_seen": timestamp(first_seen),
        "last_seen": timestamp(last_seen),
        "count": count,
        "object_marking_refs": [tlp.stix_marking_id],
    }


def report_object(
    *,
    stix_id: uuid.UUID,
    title: str,
    summary: str,
    published: dt.datetime,
    modified: dt.datetime,
    made_by: str,
    tlp: TLP,
    labels: Sequence[str],
    refs: Sequence[str],
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "report",
        "spec_version": SPEC_VERSION,
        "id": f"report--{stix_id}",
        "created": timestamp(published),
        "modified": timestamp(max(modified, published)),
        "created_by_ref": made_by,
        "name": title,
        "report_types": ["threat-report"],
        "published": timestamp(published),
        "object_refs": list(refs),
        "object_marking_refs": [tlp.stix_marking_id],
    }
    if summary:
        body["description"] = summary
    if labels:
        body["labels"] = list(labels)
    return body


def bundle(objects: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    return {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": list(objects)}
