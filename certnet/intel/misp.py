"""MISP events read into what certnet keeps, without touching the database.

An event arrives as `{"Event": {...}}`, as the bare event object, or as a search result
`{"response": [{"Event": {...}}]}`. Its attributes (at the top level and inside objects) whose type
names an observable certnet has a kind for become indicator candidates, normalised here; every other
attribute is kept as an `Unsupported` entry with where it was and why, so an import can say exactly
what it did not take. A malformed attribute is `Refused` with every reason, named by place
(`Event.Object[1].Attribute[0].uuid`), so that a partial import can leave it out; a malformed event
(no uuid, no info, a bad tag on the event) raises InvalidInput, since nothing of it can be taken.

What certnet has no field for (category, to_ids, the object an attribute sat in, the event's threat
level ...) is returned as plain dictionaries (`Attribute.misp_fields`, `MispEvent.fields`) for the
caller to keep in `extras["misp"]`, which is what the MISP export rebuilds the event from."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

from certnet.core.errors import FieldError, InvalidInput
from certnet.core.tlp import TLP
from certnet.intel.observables import Kind, normalise
from certnet.intel.services.indicators import normalise_tag

MAX_ATTRIBUTES = 100_000  # what one intel report may hold (certnet.intel.services.reports)

# ip-src and ip-dst say nothing about the family: the value does (and "/" makes it a network).
IP = "ip"

# MISP attribute type -> the kind of observable its value is.
TYPE_KINDS: dict[str, str] = {
    "ip-src": IP,
    "ip-dst": IP,
    "domain": Kind.DOMAIN,
    "hostname": Kind.DOMAIN,
    "url": Kind.URL,
    "uri": Kind.URL,  # only when absolute; MISP mostly uses it for paths (see _relative_uri)
    "email": Kind.EMAIL,
    "email-src": Kind.EMAIL,
    "email-dst": Kind.EMAIL,
    "email-reply-to": Kind.EMAIL,
    "md5": Kind.MD5,
    "sha1": Kind.SHA1,
    "sha256": Kind.SHA256,
    "vulnerability": Kind.CVE,
    "AS": Kind.ASN,
}
# Types whose value is two values joined by "|": which half is the observable, and its kind. The
# other half (a file name, a port) is kept in extras so the export can join them again.
COMPOSITE_TYPES: dict[str, tuple[int, str]] = {
    "ip-src|port": (0, IP),
    "ip-dst|port": (0, IP),
    "hostname|port": (0, Kind.DOMAIN),
    "filename|md5": (1, Kind.MD5),
    "filename|sha1": (1, Kind.SHA1),
    "filename|sha256": (1, Kind.SHA256),
    "malware-sample": (1, Kind.MD5),  # "name|md5"; the sample file itself is not kept
}

_HASH_NOTE = "certnet keeps MD5, SHA-1 and SHA-256 hashes only"
_WHY_NOT: dict[str, str] = {
    "filename": "a file name is not an observable certnet keeps (the file's hashes are)",
    "text": "free text, not an observable",
    "comment": "free text, not an observable",
    "other": "free text, not an observable",
    "link": "a reference to a page about the event, not an indicator",
    "domain|ip": "two observables in one attribute; certnet keeps one value per indicator",
    "regkey": "Windows registry keys are not an observable kind in certnet",
    "regkey|value": "Windows registry keys are not an observable kind in certnet",
    "mutex": "mutex names are not an observable kind in certnet",
    "yara": "a detection rule, not an observable",
    "snort": "a detection rule, not an observable",
    "sigma": "a detection rule, not an observable",
    "sha224": _HASH_NOTE,
    "sha384": _HASH_NOTE,
    "sha512": _HASH_NOTE,
    "ssdeep": _HASH_NOTE,
    "imphash": _HASH_NOTE,
    "tlsh": _HASH_NOTE,
    "filename|sha512": _HASH_NOTE,
    "filename|imphash": _HASH_NOTE,
    "filename|ssdeep": _HASH_NOTE,
}
# MISP's tlp taxonomy also has these; they are not TLP labels and are kept as ordinary tags.
_TLP_TAXONOMY_EXTRAS = ("tlp:ex:", "tlp:unclear")

_THREAT_LEVELS = range(1, 5)  # high, medium, low, undefined
_ANALYSIS = range(3)  # initial, ongoing, completed
_DISTRIBUTION = range(6)  # own organisation .. sharing group, 5: inherit the event's


@dataclass(frozen=True)
class MispObject:
    """The object an attribute sat in: enough to rebuild it on export."""

    uuid: str
    name: str
    meta_category: str = ""
    template_uuid: str = ""
    template_version: str = ""
    description: str = ""
    comment: str = ""
    distribution: str | None = None
    timestamp: str | None = None

    def fields(self) -> dict[str, Any]:
        found = {
            "uuid": self.uuid,
            "name": self.name,
            "meta-category": self.meta_category,
            "template_uuid": self.template_uuid,
            "template_version": self.template_version,
            "description": self.description,
            "comment": self.comment,
            "distribution": self.distribution,
            "timestamp": self.timestamp,
        }
        return {key: value for key, value in found.items() if value not in (None, "")}


@dataclass
class Attribute:
    """An attribute certnet takes: `kind` and `observable` are what the indicator records."""

    where: str
    type: str
    value: str  # as MISP gave it
    kind: str
    observable: str  # normalised
    uuid: uuid.UUID | None
    category: str | None = None
    to_ids: bool | None = None
    distribution: str | None = None
    comment: str = ""
    timestamp: dt.datetime | None = None
    first_seen: dt.datetime | None = None
    last_seen: dt.datetime | None = None
    tags: list[str] = field(default_factory=list)  # normalised, without the TLP tag
    tlp: TLP | None = None  # its own tlp tag; None: the event's
    value_parts: list[str | None] | None = None  # a composite value, None where the observable goes
    object: MispObject | None = None
    object_relation: str | None = None

    def misp_fields(self) -> dict[str, Any]:
        """What certnet has no column for, as the export reads it back from extras."""
        found: dict[str, Any] = {
            "uuid": str(self.uuid) if self.uuid else None,
            "type": self.type,
            "category": self.category,
            "to_ids": self.to_ids,
            "distribution": self.distribution,
            "comment": self.comment or None,
            "timestamp": _epoch_text(self.timestamp),
            "seen": self.first_seen is not None or self.last_seen is not None,
            "value_parts": self.value_parts,
            "object": self.object.fields() if self.object else None,
            "object_relation": self.object_relation,
        }
        return {key: value for key, value in found.items() if value is not None}


@dataclass
class Unsupported:
    """Something of the event certnet cannot keep as an indicator, with the reason."""

    where: str
    type: str
    value: str
    note: str

    def as_dict(self) -> dict[str, str]:
        return {"where": self.where, "type": self.type, "value": self.value[:500], "note": self.note}


@dataclass
class Refused:
    """A malformed attribute (or object): every problem, each named by place."""

    where: str
    uuid: str
    type: str
    errors: list[FieldError]

    @property
    def reasons(self) -> list[str]:
        return [str(error) for error in self.errors]

    def as_dict(self) -> dict[str, Any]:
        return {"where": self.where, "id": self.uuid, "type": self.type, "reasons": self.reasons}


@dataclass
class MispEvent:
    uuid: uuid.UUID
    info: str
    date: dt.date | None = None
    timestamp: dt.datetime | None = None
    threat_level_id: str | None = None
    analysis: str | None = None
    distribution: str | None = None
    published: bool | None = None
    orgc: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)  # normalised, without the TLP tag
    tlp: TLP | None = None  # None: no tlp tag on the event
    attributes: list[Attribute] = field(default_factory=list)
    unsupported: list[Unsupported] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    attribute_count: int = 0  # every attribute, taken or not
    object_count: int = 0

    def fields(self) -> dict[str, Any]:
        """The event's own fields, as an intel report keeps them in extras["misp"]."""
        found: dict[str, Any] = {
            "uuid": str(self.uuid),
            "info": self.info,
            "date": self.date.isoformat() if self.date else None,
            "timestamp": _epoch_text(self.timestamp),
            "threat_level_id": self.threat_level_id,
            "analysis": self.analysis,
            "distribution": self.distribution,
            "published": self.published,
            "Orgc": self.orgc or None,
        }
        return {key: value for key, value in found.items() if value is not None}

    def problems(self) -> list[FieldError]:
        return [error for refused in self.refused for error in refused.errors]


# --- the event -------------------------------------------------------------------------------------


def parse_event(data: Any, *, prefix: str = "") -> MispEvent:
    """Read one MISP event. `prefix` goes before every place named (a feed's file name)."""
    body = _unwrap(data, prefix)
    here = f"{prefix}Event"
    errors: list[FieldError] = []
    event_uuid = _uuid(body.get("uuid"), f"{here}.uuid", errors, required=True)
    info = body.get("info")
    if not isinstance(info, str) or not info.strip():
        errors.append(FieldError(f"{here}.info", "missing: an event needs its info (the title)"))
    date = _date(body.get("date"), f"{here}.date", errors)
    timestamp = _epoch(body.get("timestamp"), f"{here}.timestamp", errors)
    threat = _number(body.get("threat_level_id"), f"{here}.threat_level_id", _THREAT_LEVELS, errors)
    analysis = _number(body.get("analysis"), f"{here}.analysis", _ANALYSIS, errors)
    distribution = _number(body.get("distribution"), f"{here}.distribution", _DISTRIBUTION, errors)
    published = _flag(body.get("published"), f"{here}.published", errors)
    orgc = _org(body.get("Orgc"), f"{here}.Orgc", errors)
    tags, tlp = _tags(body.get("Tag"), f"{here}.Tag", errors)
    attributes = _list(body.get("Attribute"), f"{here}.Attribute", errors)
    objects = _list(body.get("Object"), f"{here}.Object", errors)
    total = len(attributes) + sum(
        len(o.get("Attribute") or [])
        for o in objects
        if isinstance(o, dict) and isinstance(o.get("Attribute"), list)
    )
    if total > MAX_ATTRIBUTES:
        errors.append(FieldError(here, f"{total} attributes; the limit is {MAX_ATTRIBUTES}"))
    if errors or event_uuid is None or not isinstance(info, str):
        raise InvalidInput(
            "not a MISP event certnet can read: " + "; ".join(str(e) for e in errors[:20]), errors=errors
        )
    event = MispEvent(
        uuid=event_uuid,
        info=info.strip(),
        date=date,
        timestamp=timestamp,
        threat_level_id=threat,
        analysis=analysis,
        distribution=distribution,
        published=published,
        orgc=orgc,
        tags=tags,
        tlp=tlp,
        attribute_count=total,
        object_count=len(objects),
    )
    seen_uuids: dict[uuid.UUID, str] = {}
    for number, item in enumerate(attributes):
        _attribute(item, f"{here}.Attribute[{number}]", None, event, seen_uuids)
    for number, item in enumerate(objects):
        _object(item, f"{here}.Object[{number}]", event, seen_uuids)
    _other_parts(body, here, event)
    return event


def _unwrap(data: Any, prefix: str) -> dict[str, Any]:
    def fail(loc: str, msg: str) -> InvalidInput:
        return InvalidInput(f"not a MISP event: {prefix}{loc}: {msg}", errors=[FieldError(prefix + loc, msg)])

    if not isinstance(data, dict):
        raise fail("Event", "a MISP event is a JSON object")
    if "response" in data:
        response = data["response"]
        if not isinstance(response, list) or len(response) != 1:
            count = len(response) if isinstance(response, list) else "no"
            raise fail("response", f"holds {count} events; one event is imported at a time")
        data = response[0]
        if not isinstance(data, dict):
            raise fail("response[0]", "not an object")
    if "Event" in data:
        body = data["Event"]
        if not isinstance(body, dict):
            raise fail("Event", "not an object")
        return body
    if not {"uuid", "info", "Attribute"} & set(data):
        raise fail("Event", "neither {'Event': {...}} nor an event (no uuid, info or Attribute)")
    return data


def _other_parts(body: dict[str, Any], here: str, event: MispEvent) -> None:
    """Parts of an event that are not attributes, listed so the import says it left them out."""
    for number, report in enumerate(body.get("EventReport") or []):
        if isinstance(report, dict):
            event.unsupported.append(
                Unsupported(
                    f"{here}.EventReport[{number}]",
                    "event-report",
                    str(report.get("name") or ""),
                    "MISP event reports (free text) are not kept",
                )
            )
    for number, galaxy in enumerate(body.get("Galaxy") or []):
        clusters = galaxy.get("GalaxyCluster") if isinstance(galaxy, dict) else None
        for index, cluster in enumerate(clusters if isinstance(clusters, list) else []):
            if isinstance(cluster, dict):
                event.unsupported.append(
                    Unsupported(
                        f"{here}.Galaxy[{number}].GalaxyCluster[{index}]",
                        "galaxy-cluster",
                        str(cluster.get("value") or ""),
                        "galaxy clusters are kept only as the misp-galaxy tags the event carries",
                    )
                )


# --- attributes and objects ------------------------------------------------------------------------


def _object(body: Any, where: str, event: MispEvent, seen_uuids: dict[uuid.UUID, str]) -> None:
    if not isinstance(body, dict):
        event.refused.append(Refused(where, "", "object", [FieldError(where, "not an object")]))
        return
    errors: list[FieldError] = []
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        errors.append(FieldError(f"{where}.name", "missing: an object needs its template name"))
    object_uuid = _uuid(body.get("uuid"), f"{where}.uuid", errors, required=True)
    distribution = _number(body.get("distribution"), f"{where}.distribution", _DISTRIBUTION, errors)
    timestamp = _epoch(body.get("timestamp"), f"{where}.timestamp", errors)
    attributes = _list(body.get("Attribute"), f"{where}.Attribute", errors)
    if errors or object_uuid is None or not isinstance(name, str):
        event.refused.append(Refused(where, str(body.get("uuid") or ""), "object", errors))
        return
    if _truthy(body.get("deleted")):
        event.unsupported.append(Unsupported(where, f"object {name}", str(object_uuid), "deleted in MISP"))
        return
    found = MispObject(
        uuid=str(object_uuid),
        name=name.strip(),
        meta_category=_text(body.get("meta-category")),
        template_uuid=_text(body.get("template_uuid")),
        template_version=_text(body.get("template_version")),
        description=_text(body.get("description")),
        comment=_text(body.get("comment")),
        distribution=distribution,
        timestamp=_epoch_text(timestamp),
    )
    for number, item in enumerate(attributes):
        _attribute(item, f"{where}.Attribute[{number}]", found, event, seen_uuids)


def _attribute(
    body: Any, where: str, inside: MispObject | None, event: MispEvent, seen_uuids: dict[uuid.UUID, str]
) -> None:
    if not isinstance(body, dict):
        event.refused.append(Refused(where, "", "", [FieldError(where, "not an object")]))
        return
    errors: list[FieldError] = []
    type_ = body.get("type")
    if not isinstance(type_, str) or not type_.strip():
        errors.append(FieldError(f"{where}.type", "missing: every attribute has a type"))
        type_ = ""
    value = body.get("value")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # an AS number written as a number
    if not isinstance(value, str) or not value.strip():
        errors.append(FieldError(f"{where}.value", "missing: every attribute has a value"))
        value = ""
    attribute_uuid = _uuid(body.get("uuid"), f"{where}.uuid", errors, required=False)
    if attribute_uuid is not None:
        if attribute_uuid in seen_uuids:
            errors.append(
                FieldError(f"{where}.uuid", f"{attribute_uuid} is also {seen_uuids[attribute_uuid]}'s")
            )
        else:
            seen_uuids[attribute_uuid] = where
    if errors:
        event.refused.append(Refused(where, str(body.get("uuid") or ""), type_, errors))
        return
    type_ = type_.strip()
    why_not = _why_not(type_, value, body)
    if why_not:
        event.unsupported.append(Unsupported(where, type_, value, why_not))
        return
    try:
        kind, observable, parts = _observable(type_, value, where)
    except InvalidInput as exc:
        errors.extend(exc.errors)
        kind, observable, parts = "", "", None
    tags, tlp = _tags(body.get("Tag"), f"{where}.Tag", errors)
    found = Attribute(
        where=where,
        type=type_,
        value=value,
        kind=kind,
        observable=observable,
        uuid=attribute_uuid,
        category=_optional_text(body.get("category"), f"{where}.category", errors),
        to_ids=_flag(body.get("to_ids"), f"{where}.to_ids", errors),
        distribution=_number(body.get("distribution"), f"{where}.distribution", _DISTRIBUTION, errors),
        comment=_optional_text(body.get("comment"), f"{where}.comment", errors) or "",
        timestamp=_epoch(body.get("timestamp"), f"{where}.timestamp", errors),
        first_seen=_moment(body.get("first_seen"), f"{where}.first_seen", errors),
        last_seen=_moment(body.get("last_seen"), f"{where}.last_seen", errors),
        tags=tags,
        tlp=tlp,
        value_parts=parts,
        object=inside,
        object_relation=_optional_text(body.get("object_relation"), f"{where}.object_relation", errors)
        if inside
        else None,
    )
    if errors:
        event.refused.append(Refused(where, str(attribute_uuid or ""), type_, errors))
        return
    event.attributes.append(found)


def _why_not(type_: str, value: str, body: dict[str, Any]) -> str:
    """Why an attribute is not taken, or "" when it is."""
    if _truthy(body.get("deleted")):
        return "deleted in MISP"
    if type_ in COMPOSITE_TYPES:
        return ""
    if type_ not in TYPE_KINDS:
        return _WHY_NOT.get(type_, f"MISP type {type_!r} has no certnet kind")
    if type_ == "uri" and "://" not in value:
        return "a relative URI (a path without scheme and host) is not a URL certnet can keep"
    return ""


def _observable(type_: str, value: str, where: str) -> tuple[str, str, list[str | None] | None]:
    loc = f"{where}.value"
    parts: list[str | None] | None = None
    if type_ in COMPOSITE_TYPES:
        index, kind = COMPOSITE_TYPES[type_]
        halves = value.split("|")
        if len(halves) != 2 or not halves[index].strip():
            raise InvalidInput(
                f"{loc}: not two values joined by '|'",
                errors=[FieldError(loc, f"{value[:200]!r} is not two values joined by '|', as {type_} is")],
            )
        wanted = halves[index]
        other = halves[1 - index]
        if type_.endswith("|port") and not (other.strip().isdigit() and int(other) <= 65535):
            raise InvalidInput(
                f"{loc}: bad port", errors=[FieldError(loc, f"{other!r} after '|' is not a port number")]
            )
        parts = [None, other] if index == 0 else [other, None]
    else:
        kind = TYPE_KINDS[type_]
        wanted = value
    if kind == IP:
        text = wanted.strip()
        kind = Kind.CIDR if "/" in text else Kind.IPV6 if ":" in text else Kind.IPV4
    return str(kind), normalise(kind, wanted, loc=loc), parts


# --- fields ----------------------------------------------------------------------------------------


def _tags(raw: Any, loc: str, errors: list[FieldError]) -> tuple[list[str], TLP | None]:
    """Tags normalised (RSIT machine tags checked against the taxonomy), and the strictest TLP among
    them: a thing marked twice is handled as the stricter marking says."""
    if raw is None:
        return [], None
    if not isinstance(raw, list):
        errors.append(FieldError(loc, "must be a list of tags"))
        return [], None
    names: set[str] = set()
    strictest: TLP | None = None
    for number, tag in enumerate(raw):
        here = f"{loc}[{number}]"
        name = tag.get("name") if isinstance(tag, dict) else None
        if not isinstance(name, str) or not name.strip():
            errors.append(FieldError(here, "a tag is an object with a name"))
            continue
        name = name.strip()
        lowered = name.lower()
        if lowered.startswith("tlp:") and not lowered.startswith(_TLP_TAXONOMY_EXTRAS):
            try:
                tlp = TLP.parse(name)
            except ValueError as exc:
                errors.append(FieldError(f"{here}.name", str(exc)))
                continue
            if strictest is None or tlp.is_stricter_than(strictest):
                strictest = tlp
            continue
        try:
            names.add(normalise_tag(name, loc=f"{here}.name"))
        except InvalidInput as exc:
            errors.extend(exc.errors)
    return sorted(names), strictest


def _list(raw: Any, loc: str, errors: list[FieldError]) -> list[Any]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        errors.append(FieldError(loc, "must be a list"))
        return []
    return raw


def _uuid(raw: Any, loc: str, errors: list[FieldError], *, required: bool) -> uuid.UUID | None:
    if raw is None or raw == "":
        if required:
            errors.append(FieldError(loc, "missing"))
        return None
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        errors.append(FieldError(loc, f"{str(raw)[:80]!r} is not a UUID"))
        return None


def _epoch(raw: Any, loc: str, errors: list[FieldError]) -> dt.datetime | None:
    """MISP's timestamps: seconds since 1970, usually as a string."""
    if raw is None or raw == "":
        return None
    text = str(raw).strip() if isinstance(raw, int | str) and not isinstance(raw, bool) else ""
    if text.isdigit():
        try:
            return dt.datetime.fromtimestamp(int(text), tz=dt.UTC)
        except (OverflowError, OSError, ValueError):
            pass
    errors.append(FieldError(loc, f"{str(raw)[:40]!r} is not a MISP timestamp (seconds since 1970)"))
    return None


def _epoch_text(moment: dt.datetime | None) -> str | None:
    return str(int(moment.timestamp())) if moment else None


def _moment(raw: Any, loc: str, errors: list[FieldError]) -> dt.datetime | None:
    """first_seen and last_seen: ISO 8601 times; UTC when no zone is given."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, str):
        try:
            moment = dt.datetime.fromisoformat(raw.strip())
        except ValueError:
            pass
        else:
            return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    errors.append(FieldError(loc, f"{str(raw)[:60]!r} is not an ISO 8601 time"))
    return None


def _date(raw: Any, loc: str, errors: list[FieldError]) -> dt.date | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, str):
        try:
            return dt.date.fromisoformat(raw.strip())
        except ValueError:
            pass
    errors.append(FieldError(loc, f"{str(raw)[:40]!r} is not a date in the form YYYY-MM-DD"))
    return None


def _number(raw: Any, loc: str, allowed: range, errors: list[FieldError]) -> str | None:
    """MISP's small enumerations (threat level, analysis, distribution), kept as the strings MISP
    writes."""
    if raw is None or raw == "":
        return None
    text = str(raw).strip() if isinstance(raw, int | str) and not isinstance(raw, bool) else ""
    if text.isdigit() and int(text) in allowed:
        return str(int(text))
    errors.append(FieldError(loc, f"{str(raw)[:40]!r} is not one of {', '.join(map(str, allowed))}"))
    return None


def _flag(raw: Any, loc: str, errors: list[FieldError]) -> bool | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower() if isinstance(raw, int | str) else ""
    if text in ("1", "true"):
        return True
    if text in ("0", "false"):
        return False
    errors.append(FieldError(loc, f"{str(raw)[:40]!r} is not true or false"))
    return None


def _truthy(raw: Any) -> bool:
    return raw is True or str(raw).strip().lower() in ("1", "true")


def _org(raw: Any, loc: str, errors: list[FieldError]) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        errors.append(FieldError(loc, "must be an object with a name"))
        return {}
    found = {key: raw[key].strip() for key in ("name", "uuid") if isinstance(raw.get(key), str)}
    return {key: value for key, value in found.items() if value}


def _optional_text(raw: Any, loc: str, errors: list[FieldError]) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        errors.append(FieldError(loc, f"{str(raw)[:40]!r} is not text"))
        return None
    return raw


def _text(raw: Any) -> str:
    return str(raw).strip() if isinstance(raw, str | int) and not isinstance(raw, bool) else ""
