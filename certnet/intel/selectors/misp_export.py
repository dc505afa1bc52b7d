"""Visible indicators and intel reports as MISP events (`{"Event": {...}}`), read through visibility
like every export: an event holds only the indicators its reader may see.

What a MISP import kept in extras comes back as it came: the event's uuid, date, threat level,
analysis, distribution, creator organisation and published flag (IntelReport.extras["misp"]); each
attribute's uuid, type, category, to_ids, distribution, timestamp and the object it sat in
(Indicator.extras["misp"]["events"][<event uuid>]). Otherwise:

| certnet kind | MISP type | | event field | default |
| --- | --- | --- | --- | --- |
| ipv4, ipv6, cidr | ip-dst | | threat_level_id | "4" (undefined: certnet grades no threat) |
| domain | domain | | analysis | "2" (completed) for a published report, "0" for a set of indicators |
| url | url | | distribution | "0" for audience owner and named audiences, "1" for the community |
| email | email (no direction claimed) | | published | true for a report, false for a set |
| md5, sha1, sha256 | md5, sha1, sha256 | | date, timestamp | published / last changed |
| cve | vulnerability | | Orgc | the owner organisation |
| asn | AS | | | |

Category and to_ids default to MISP's own defaults for the type. An attribute's uuid is the
indicator's STIX id, except for an indicator that came from another MISP event: that event already
uses the uuid (MISP attribute uuids are unique on an instance), so it gets one derived from this
event's uuid and its STIX id, the same on every export."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import TYPE_CHECKING, Any

from django.db.models import QuerySet

from certnet.core import clock
from certnet.core.tlp import TLP
from certnet.intel import stix
from certnet.intel.models import Audience, Indicator, IntelReport
from certnet.intel.observables import Kind
from certnet.intel.selectors.exports import access_report, report_indicators, tag_names
from certnet.registry.models import Organisation

if TYPE_CHECKING:
    from certnet.core.visibility import UserLike

TYPE_BY_KIND: dict[str, str] = {
    Kind.IPV4: "ip-dst",
    Kind.IPV6: "ip-dst",
    Kind.CIDR: "ip-dst",
    Kind.DOMAIN: "domain",
    Kind.URL: "url",
    Kind.EMAIL: "email",
    Kind.MD5: "md5",
    Kind.SHA1: "sha1",
    Kind.SHA256: "sha256",
    Kind.CVE: "vulnerability",
    Kind.ASN: "AS",
}
# MISP's defaults (category, to_ids) for the types certnet writes or imports.
TYPE_DEFAULTS: dict[str, tuple[str, bool]] = {
    "ip-src": ("Network activity", True),
    "ip-dst": ("Network activity", True),
    "ip-src|port": ("Network activity", True),
    "ip-dst|port": ("Network activity", True),
    "domain": ("Network activity", True),
    "hostname": ("Network activity", True),
    "hostname|port": ("Network activity", True),
    "url": ("Network activity", True),
    "uri": ("Network activity", True),
    "email": ("Social network", True),
    "email-src": ("Payload delivery", True),
    "email-dst": ("Network activity", True),
    "email-reply-to": ("Payload delivery", False),
    "md5": ("Payload delivery", True),
    "sha1": ("Payload delivery", True),
    "sha256": ("Payload delivery", True),
    "filename|md5": ("Payload delivery", True),
    "filename|sha1": ("Payload delivery", True),
    "filename|sha256": ("Payload delivery", True),
    "malware-sample": ("Payload delivery", True),
    "vulnerability": ("External analysis", False),
    "AS": ("Network activity", False),
}
THREAT_LEVEL_UNDEFINED = "4"
ANALYSIS_INITIAL, ANALYSIS_COMPLETED = "0", "2"
DISTRIBUTION_OWN_ORGANISATION, DISTRIBUTION_COMMUNITY = "0", "1"
DISTRIBUTION_INHERIT = "5"  # an attribute's: as its event
# Derived attribute uuids (see the module's docstring) live in their own namespace.
_ATTRIBUTE_NAMESPACE = uuid.UUID("1f0d6a43-6c1e-4d0f-9b53-2c8e7a4d5b90")


def misp_event_for_report(user: UserLike | None, report_id: int) -> dict[str, Any]:
    """The intel report as a MISP event, with the indicators this reader may see. NotFound for a
    report the reader may not see."""
    report = access_report(user, report_id)
    kept = report.extras.get("misp") if isinstance(report.extras, dict) else None
    fields: dict[str, Any] = kept if isinstance(kept, dict) else {}
    event_uuid = _text(fields.get("uuid")) or str(report.stix_id)
    title = report.title
    info = _text(fields.get("info"))
    indicators = list(report_indicators(user, report).order_by("id"))
    attributes, objects = _attributes(indicators, event_uuid)
    tags = [f"tlp:{report.tlp}", *sorted(report.tags.values_list("name", flat=True))]
    owner = _organisation(report.owner)
    event: dict[str, Any] = {
        "uuid": event_uuid,
        # A title cut to certnet's 250 characters is still the event's info.
        "info": info if info and info[:250].strip() == title else title,
        "date": _text(fields.get("date")) or report.published_at.date().isoformat(),
        "timestamp": _text(fields.get("timestamp")) or _epoch(report.updated_at),
        "published": fields.get("published", True) is True,
        "threat_level_id": _text(fields.get("threat_level_id")) or THREAT_LEVEL_UNDEFINED,
        "analysis": _text(fields.get("analysis")) or ANALYSIS_COMPLETED,
        "distribution": _text(fields.get("distribution")) or _distribution(report),
        "Orgc": _orgc(fields.get("Orgc")) or owner,
        "Org": owner,
        "Tag": [{"name": name} for name in tags],
        "Attribute": attributes,
        "Object": objects,
    }
    return {"Event": event}


def misp_event_for_indicators(
    user: UserLike | None, indicators: QuerySet[Indicator], *, info: str
) -> dict[str, Any]:
    """A set of indicators as a new MISP event, as far as this reader may see them."""
    visible = list(
        Indicator.objects.restrict(user, "view")
        .filter(pk__in=indicators.values("pk"))
        .select_related("owner")
        .order_by("id")
    )
    event_uuid = str(uuid.uuid4())
    attributes, _ = _attributes(visible, event_uuid, with_objects=False)
    strictest = max((TLP(i.tlp) for i in visible), key=lambda tlp: tlp.rank, default=TLP.AMBER)
    owners = {indicator.owner_id: indicator.owner for indicator in visible}
    now = clock.now()
    org = _organisation(next(iter(owners.values()))) if len(owners) == 1 else {"name": "certnet"}
    event: dict[str, Any] = {
        "uuid": event_uuid,
        "info": info.strip() or "certnet indicators",
        "date": now.date().isoformat(),
        "timestamp": _epoch(now),
        "published": False,
        "threat_level_id": THREAT_LEVEL_UNDEFINED,
        "analysis": ANALYSIS_INITIAL,
        "distribution": DISTRIBUTION_OWN_ORGANISATION,
        "Orgc": org,
        "Org": org,
        "Tag": [{"name": f"tlp:{strictest.value}"}],
        "Attribute": attributes,
        "Object": [],
    }
    return {"Event": event}


# --- attributes ------------------------------------------------------------------------------------


def _attributes(
    indicators: list[Indicator], event_uuid: str, *, with_objects: bool = True
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The event's standalone attributes, and its objects rebuilt from what the import kept."""
    labels = tag_names(indicator.pk for indicator in indicators)
    standalone: list[dict[str, Any]] = []
    objects: dict[str, dict[str, Any]] = {}
    used: set[str] = set()
    for indicator in indicators:
        events = _misp_events(indicator)
        own = events.get(event_uuid)
        latest = own if own is not None else (list(events.values())[-1] if events else {})
        attribute = _attribute(indicator, own, latest, event_uuid, bool(events), labels.get(indicator.pk, []))
        if attribute["uuid"] in used:  # two owners' copies of one imported value
            attribute["uuid"] = str(uuid.uuid5(_ATTRIBUTE_NAMESPACE, f"{event_uuid}/{indicator.pk}"))
        used.add(attribute["uuid"])
        inside = own.get("object") if own and with_objects else None
        if isinstance(inside, dict) and _text(inside.get("uuid")) and _text(inside.get("name")):
            body = objects.setdefault(inside["uuid"], {**inside, "Attribute": []})
            relation = _text(own.get("object_relation") if own else "") or attribute["type"]
            body["Attribute"].append({**attribute, "object_relation": relation})
        else:
            standalone.append(attribute)
    return standalone, list(objects.values())


def _attribute(
    indicator: Indicator,
    own: dict[str, Any] | None,
    latest: dict[str, Any],
    event_uuid: str,
    from_misp: bool,
    tags: list[str],
) -> dict[str, Any]:
    """`own`: what the import of this very event kept; `latest`: that, or what the latest import of
    another event kept (type, category and to_ids describe the value, wherever it was seen)."""
    type_ = _text(latest.get("type")) or TYPE_BY_KIND[indicator.kind]
    category, to_ids = TYPE_DEFAULTS.get(type_, ("Other", False))
    if own is not None and _text(own.get("uuid")):
        attribute_uuid = own["uuid"]
    elif from_misp:
        attribute_uuid = str(uuid.uuid5(_ATTRIBUTE_NAMESPACE, f"{event_uuid}/{indicator.stix_id}"))
    else:
        attribute_uuid = str(indicator.stix_id)
    attribute: dict[str, Any] = {
        "uuid": attribute_uuid,
        "type": type_,
        "category": _text(latest.get("category")) or category,
        "to_ids": latest["to_ids"] if isinstance(latest.get("to_ids"), bool) else to_ids,
        "value": _value(indicator.value, latest.get("value_parts")),
        "comment": indicator.description,
        "distribution": _text(own.get("distribution") if own else "") or DISTRIBUTION_INHERIT,
        "timestamp": _text(own.get("timestamp") if own else "") or _epoch(indicator.updated_at),
        "Tag": [{"name": name} for name in [f"tlp:{indicator.tlp}", *tags]],
    }
    # An attribute that had no first_seen/last_seen in MISP gets none back (certnet's are then only
    # MISP's timestamp).
    if latest.get("seen", True) is not False:
        attribute["first_seen"] = _iso(indicator.first_seen)
        attribute["last_seen"] = _iso(indicator.last_seen)
    return attribute


def _misp_events(indicator: Indicator) -> dict[str, dict[str, Any]]:
    extras = indicator.extras if isinstance(indicator.extras, dict) else {}
    kept = extras.get("misp")
    events = kept.get("events") if isinstance(kept, dict) else None
    if not isinstance(events, dict):
        return {}
    return {key: value for key, value in events.items() if isinstance(value, dict)}


def _value(value: str, parts: Any) -> str:
    """A composite value ("invoice.exe|<md5>") joined again around certnet's half."""
    if not isinstance(parts, list) or len(parts) != 2 or parts.count(None) != 1:
        return value
    return "|".join(value if part is None else str(part) for part in parts)


# --- event fields ----------------------------------------------------------------------------------


def _distribution(report: IntelReport) -> str:
    return DISTRIBUTION_COMMUNITY if report.audience == Audience.COMMUNITY else DISTRIBUTION_OWN_ORGANISATION


def _organisation(organisation: Organisation) -> dict[str, str]:
    # The uuid of its STIX identity, so both exports name the organisation alike.
    return {"name": organisation.name, "uuid": stix.identity_id(organisation.slug).split("--", 1)[1]}


def _orgc(raw: Any) -> dict[str, str] | None:
    if not isinstance(raw, dict) or not _text(raw.get("name")):
        return None
    return {key: raw[key] for key in ("name", "uuid") if _text(raw.get(key))}


def _text(raw: Any) -> str:
    return raw.strip() if isinstance(raw, str) else ""


def _epoch(moment: dt.datetime) -> str:
    return str(int(moment.timestamp()))


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds")
