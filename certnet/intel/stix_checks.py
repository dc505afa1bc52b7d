"""One STIX 2.1 object checked on import: refused (with every reason), or what certnet takes from it.

Indicators with the common shape are checked here (fast: an import holds hundreds of thousands);
everything else, and any indicator with properties this check does not know, is validated by the
`stix2` library."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

from certnet.core.errors import InvalidInput
from certnet.core.tlp import TLP
from certnet.intel import stix
from certnet.intel.observables import Kind, normalise
from certnet.intel.services.indicators import IndicatorInput

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)  # the version of objects without created/modified

DOMAIN_TYPES = frozenset(
    [
        "attack-pattern",
        "campaign",
        "course-of-action",
        "grouping",
        "identity",
        "incident",
        "indicator",
        "infrastructure",
        "intrusion-set",
        "location",
        "malware",
        "malware-analysis",
        "note",
        "observed-data",
        "opinion",
        "report",
        "threat-actor",
        "tool",
        "vulnerability",
        "relationship",
        "sighting",
    ]
)
CYBER_OBSERVABLE_TYPES = frozenset(
    [
        "artifact",
        "autonomous-system",
        "directory",
        "domain-name",
        "email-addr",
        "email-message",
        "file",
        "ipv4-addr",
        "ipv6-addr",
        "mac-addr",
        "mutex",
        "network-traffic",
        "process",
        "software",
        "url",
        "user-account",
        "windows-registry-key",
        "x509-certificate",
    ]
)
META_TYPES = frozenset({"marking-definition", "language-content", "extension-definition"})
TAKEN_TYPES = DOMAIN_TYPES | CYBER_OBSERVABLE_TYPES | META_TYPES

_INDICATOR_PROPERTIES = frozenset(
    [
        "type",
        "spec_version",
        "id",
        "created",
        "modified",
        "created_by_ref",
        "revoked",
        "labels",
        "confidence",
        "lang",
        "external_references",
        "object_marking_refs",
        "name",
        "description",
        "indicator_types",
        "pattern",
        "pattern_type",
        "pattern_version",
        "valid_from",
        "valid_until",
        "kill_chain_phases",
    ]
)


@dataclass
class Checked:
    index: int
    stix_id: str = ""
    type: str = ""
    version: str = ""
    modified: dt.datetime = EPOCH
    body: dict[str, Any] = field(default_factory=dict)
    tlp: TLP = TLP.AMBER
    reasons: list[str] = field(default_factory=list)
    indicator: IndicatorInput | None = None  # taken as a certnet indicator
    keep: bool = False  # kept as STIX
    note: str = ""
    tlp_marking: bool = False
    sco_value: tuple[str, str] | None = None  # (kind, normalised value) of a supported SCO
    observed: list[str] = field(default_factory=list)  # SCO ids an observed-data names
    refs: list[str] = field(default_factory=list)  # ids it names, for linking kept objects to indicators
    sighting_of: str = ""
    first_seen: dt.datetime | None = None
    last_seen: dt.datetime | None = None
    count: int = 1


def check_object(index: int, body: Any, default_tlp: TLP) -> Checked:
    checked = Checked(index)
    if not isinstance(body, dict):
        checked.reasons.append("is not a JSON object")
        return checked
    checked.body = body
    object_type = body.get("type")
    checked.type = object_type if isinstance(object_type, str) else ""
    stix_id = body.get("id")
    checked.stix_id = stix_id if isinstance(stix_id, str) else ""
    if not isinstance(object_type, str) or not object_type:
        checked.reasons.append("has no type")
        return checked
    if stix.id_type(stix_id) != object_type:
        checked.reasons.append(f"id {stix_id!r} is not '{object_type}--<uuid>'")
    if object_type not in TAKEN_TYPES:
        checked.reasons.append(
            f"type {object_type!r} is not a STIX 2.1 object type (custom types are not taken)"
        )
        return checked
    if object_type not in CYBER_OBSERVABLE_TYPES and body.get("spec_version") != stix.SPEC_VERSION:
        checked.reasons.append(
            f"spec_version is {body.get('spec_version')!r}; certnet takes STIX 2.1 ('2.1')"
        )
    if checked.reasons:
        return checked
    checked.version = str(body.get("modified") or body.get("created") or "")
    try:
        checked.modified = stix.parse_timestamp(checked.version) if checked.version else EPOCH
    except ValueError as exc:
        checked.reasons.append(f"modified: {exc}")
        return checked
    marked = stix.strictest_tlp(_strings(body.get("object_marking_refs")))
    checked.tlp = marked or default_tlp
    if object_type == "indicator" and _common_shape(body):
        _check_indicator(checked, body)
    else:
        _check_with_library(checked, body)
    return checked


def _strings(value: Any) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def _common_shape(body: dict[str, Any]) -> bool:
    return all(key in _INDICATOR_PROPERTIES or key.startswith("x_") for key in body)


def _timestamp(checked: Checked, body: dict[str, Any], name: str, *, required: bool) -> dt.datetime | None:
    if name not in body:
        if required:
            checked.reasons.append(f"{name} is missing")
        return None
    try:
        return stix.parse_timestamp(body[name])
    except ValueError as exc:
        checked.reasons.append(f"{name}: {exc}")
        return None


def _check_indicator(checked: Checked, body: dict[str, Any]) -> None:
    """The STIX rules for an indicator's properties, then what certnet can take from its pattern."""
    reasons = checked.reasons
    created = _timestamp(checked, body, "created", required=True)
    modified = _timestamp(checked, body, "modified", required=True)
    valid_from = _timestamp(checked, body, "valid_from", required=True)
    valid_until = _timestamp(checked, body, "valid_until", required=False)
    if created and modified and modified < created:
        reasons.append("modified is before created")
    if valid_from and valid_until and valid_until <= valid_from:
        reasons.append("valid_until must be after valid_from")
    for name in ("pattern", "pattern_type"):
        if not isinstance(body.get(name), str) or not body[name]:
            reasons.append(f"{name} is missing or not a string")
    for name in ("name", "description", "pattern_version", "lang"):
        if name in body and not isinstance(body[name], str):
            reasons.append(f"{name} must be a string")
    for name in ("labels", "indicator_types", "object_marking_refs"):
        if name in body and (
            not isinstance(body[name], list) or len(_strings(body[name])) != len(body[name])
        ):
            reasons.append(f"{name} must be a list of strings")
    confidence = body.get("confidence", 50)
    if isinstance(confidence, bool) or not isinstance(confidence, int) or not 0 <= confidence <= 100:
        reasons.append(f"confidence {confidence!r} is not an integer in 0..100")
    if "revoked" in body and not isinstance(body["revoked"], bool):
        reasons.append("revoked must be true or false")
    for ref in _strings(body.get("object_marking_refs")):
        if stix.id_type(ref) != "marking-definition":
            reasons.append(f"object_marking_refs: {ref!r} is not a marking-definition id")
    made_by = body.get("created_by_ref", "")
    if made_by and stix.id_type(made_by) != "identity":
        reasons.append(f"created_by_ref {made_by!r} is not an identity id")
    if not _well_formed_lists(body):
        reasons.append("kill_chain_phases and external_references must be lists of objects")
    if reasons:
        return
    _take_indicator(checked, body, created, modified, valid_from, valid_until)


def _well_formed_lists(body: dict[str, Any]) -> bool:
    phases = body.get("kill_chain_phases", [])
    references = body.get("external_references", [])
    return (
        isinstance(phases, list)
        and all(isinstance(p, dict) and {"kill_chain_name", "phase_name"} <= set(p) for p in phases)
        and isinstance(references, list)
        and all(isinstance(r, dict) and "source_name" in r for r in references)
    )


def _take_indicator(
    checked: Checked,
    body: dict[str, Any],
    created: dt.datetime | None,
    modified: dt.datetime | None,
    valid_from: dt.datetime | None,
    valid_until: dt.datetime | None,
) -> None:
    if body["pattern_type"] != "stix":
        checked.keep, checked.note = True, f"a {body['pattern_type']} pattern is kept, not matched"
        return
    try:
        single = stix.read_pattern(body["pattern"])
    except stix.PatternError as exc:
        checked.reasons.append(f"pattern: {exc}")
        return
    if single is None:
        checked.keep, checked.note = True, "its pattern is more than one value"
        return
    if body.get("revoked"):
        checked.keep, checked.note = True, "revoked"
        return
    kind, raw = single
    try:
        value = normalise(kind, raw, loc="pattern")
    except InvalidInput as exc:
        checked.reasons.append("; ".join(f"{e.loc}: {e.msg}" for e in exc.errors) or exc.detail)
        return
    checked.indicator = IndicatorInput(
        kind=kind,
        value=value,
        tlp=checked.tlp.value,
        confidence=body.get("confidence", 50),
        description=body.get("description", ""),
        first_seen=valid_from,
        expires_at=valid_until,
        tags=_strings(body.get("labels")),
        stix_id=uuid.UUID(checked.stix_id.split("--", 1)[1]),
        name=body.get("name", ""),
        indicator_types=_strings(body.get("indicator_types")),
        made_by=body.get("created_by_ref", ""),
        created=created,
        modified=modified,
    )


def _check_with_library(checked: Checked, body: dict[str, Any]) -> None:
    import stix2
    from stix2.exceptions import STIXError

    try:
        stix2.parse(body, allow_custom=True, version=stix.SPEC_VERSION)
    except (STIXError, ValueError, TypeError, KeyError) as exc:
        checked.reasons.append(str(exc))
        return
    object_type = checked.type
    if object_type == "marking-definition" and checked.stix_id in stix.TLP_BY_MARKING:
        checked.tlp_marking, checked.tlp = True, TLP.CLEAR
        return
    checked.keep = True
    checked.refs = sorted(_refs(body))
    if object_type == "indicator":
        _take_indicator(
            checked,
            body,
            stix.parse_timestamp(body["created"]),
            stix.parse_timestamp(body["modified"]),
            stix.parse_timestamp(body["valid_from"]),
            stix.parse_timestamp(body["valid_until"]) if "valid_until" in body else None,
        )
        checked.keep = checked.indicator is None
    elif object_type == "vulnerability":
        _take_vulnerability(checked, body)
    elif object_type in stix.SCO_KINDS:
        _take_observable(checked, body)
    elif object_type == "observed-data":
        checked.observed = _strings(body.get("object_refs"))
        checked.first_seen = stix.parse_timestamp(body["first_observed"])
        checked.last_seen = stix.parse_timestamp(body["last_observed"])
    elif object_type == "sighting":
        checked.sighting_of = body["sighting_of_ref"]
        checked.count = max(int(body.get("count", 1)), 1)
        seen = body.get("first_seen") or body.get("created")
        checked.first_seen = stix.parse_timestamp(seen)
        checked.last_seen = stix.parse_timestamp(body.get("last_seen") or seen)


def _refs(body: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for key, value in body.items():
        if key.endswith("_ref") and isinstance(value, str):
            found.add(value)
        elif key.endswith("_refs") and isinstance(value, list):
            found.update(_strings(value))
    return found


def _take_vulnerability(checked: Checked, body: dict[str, Any]) -> None:
    """A vulnerability naming a CVE becomes a certnet cve indicator (and is exported back as one)."""
    cves = [
        reference.get("external_id", "")
        for reference in body.get("external_references", [])
        if isinstance(reference, dict) and reference.get("source_name") == "cve"
    ]
    if len(cves) != 1:
        return
    try:
        value = normalise(Kind.CVE, cves[0], loc="external_references")
    except InvalidInput as exc:
        checked.reasons.append(exc.detail)
        return
    checked.keep = False
    checked.indicator = IndicatorInput(
        kind=Kind.CVE,
        value=value,
        tlp=checked.tlp.value,
        confidence=body.get("confidence", 50),
        description=body.get("description", ""),
        tags=_strings(body.get("labels")),
        stix_id=uuid.UUID(checked.stix_id.split("--", 1)[1]),
        name=body.get("name", "") if body.get("name") != value else "",
        made_by=body.get("created_by_ref", ""),
        created=stix.parse_timestamp(body["created"]),
        modified=stix.parse_timestamp(body["modified"]),
    )


def _take_observable(checked: Checked, body: dict[str, Any]) -> None:
    kind = stix.SCO_KINDS[checked.type]
    raw = body.get("number") if kind == Kind.ASN else body.get("value")
    if raw is None:
        return
    text = f"AS{raw}" if kind == Kind.ASN else str(raw)
    if kind in (Kind.IPV4, Kind.IPV6) and "/" in text:
        kind = Kind.CIDR
    try:
        checked.sco_value = (kind, normalise(kind, text, loc="value"))
    except InvalidInput:
        checked.note = "its value is not one certnet records"
