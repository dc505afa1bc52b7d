"""Importing MISP events and MISP feed directories: the attributes certnet has a kind for become the
owner's indicators, the event becomes an intel report, and an IntelImport row says what was taken,
what was refused and what certnet could not use (with a note for each), so nothing goes silently.

- **All or nothing** unless the caller asks for a partial import: then only the malformed attributes
  are refused and listed. A malformed event (or, for a feed, a missing event file) always fails the
  whole call. One transaction per call.
- **TLP**: an attribute's own tlp tag, else the event's, else AMBER. The report is published at the
  event's TLP: AMBER and AMBER+STRICT to audience "owner" (not shared yet), CLEAR and GREEN to the
  community (which already sees GREEN indicators). A TLP:RED event gets no report (no audience admits
  RED); its indicators are recorded at RED and the import lists the event as not made a report.
- **Never lowered**: an indicator that ends up stricter than the report (an attribute tagged
  tlp:red in an AMBER event, a value the owner already holds at RED) is recorded but left out of the
  report, since publishing would lower it; the import lists it.
- **Re-import**: indicators merge by value, as every recording does. Each indicator keeps, per event,
  the MISP fields certnet has no column for in `extras["misp"]["events"][<event uuid>]`, so the same
  value in two events keeps both. The report is found by the owner and the event uuid: when it exists
  (and the actor may change it) its title, tags, MISP fields and indicators are replaced by the
  event's, an update rather than a second report; its TLP and audience stay as published, and a
  shared report's new version is placed in its audience's TAXII collections. Another
  organisation importing the same event gets its own report: report ids are unique across the
  platform, so that one takes a fresh id and keeps the event uuid in its extras (the export uses it).
- **One value per indicator**: two attributes with the same value become one indicator; the second
  is listed, since its own uuid, category and object are not kept."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import transaction
from django.db.models import Q

from certnet.accounts.models import User
from certnet.core import audit, clock
from certnet.core.errors import FieldError, InvalidInput
from certnet.core.tlp import TLP
from certnet.core.visibility import require
from certnet.intel import misp
from certnet.intel.models import Audience, ImportFormat, Indicator, IntelImport, IntelReport
from certnet.intel.services.correlation import key_chunks
from certnet.intel.services.indicators import (
    IndicatorInput,
    check_indicators,
    organisation_acting_for,
    record_indicators,
    tags_named,
)
from certnet.intel.services.reports import (
    ReportInput,
    announce_report,
    publish_intel_report,
    share_with_audience,
)
from certnet.registry.models import Organisation

MANIFEST = "manifest.json"
_AUDIENCE_BY_TLP = {
    TLP.CLEAR: Audience.COMMUNITY,
    TLP.GREEN: Audience.COMMUNITY,
    TLP.AMBER: Audience.OWNER,
    TLP.AMBER_STRICT: Audience.OWNER,
}


@dataclass
class MispImportOutcome:
    event_uuid: str
    import_id: int | None = None
    report_id: int | None = None
    report: str = ""  # "created", "updated", or why the event is not a report
    indicators: list[int] = field(default_factory=list)  # in the event's order
    refused: list[misp.Refused] = field(default_factory=list)
    unsupported: list[misp.Unsupported] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    alerts: int = 0


@dataclass
class MispFeedOutcome:
    import_id: int | None = None
    events: list[MispImportOutcome] = field(default_factory=list)  # in the manifest's order
    not_in_manifest: list[str] = field(default_factory=list)  # event files the manifest does not name
    counts: dict[str, int] = field(default_factory=dict)


# --- one event -------------------------------------------------------------------------------------


@transaction.atomic
def import_misp_event(
    *, actor: User, owner: str, data: dict[str, Any], partial: bool = False, source_name: str = "api"
) -> MispImportOutcome:
    """Import one MISP event for the owner organisation (the actor must be one of its analysts)."""
    organisation = organisation_acting_for(actor, owner, doing="import intelligence")
    event = misp.parse_event(data)
    _check(event)
    _refuse_unless_partial([event], partial)
    outcome = _take(actor, organisation, event)
    digest = hashlib.sha256(audit.canonical_json(data).encode("utf-8")).hexdigest()
    record = _record_import(
        actor,
        organisation,
        ImportFormat.MISP,
        source=source_name,
        digest=digest,
        tlp=event.tlp or TLP.AMBER,
        partial=partial,
        outcomes=[outcome],
        extra=[],
    )
    outcome.import_id = record.pk
    return outcome


# --- a feed ----------------------------------------------------------------------------------------


@transaction.atomic
def import_misp_feed(*, actor: User, owner: str, directory: Path, partial: bool = False) -> MispFeedOutcome:
    """Import a MISP feed directory: `manifest.json` (event uuid -> its summary) and one
    `<uuid>.json` per event. Every event the manifest names must be there; an event file the
    manifest does not name is not imported, and is listed."""
    organisation = organisation_acting_for(actor, owner, doing="import intelligence")
    manifest_bytes = _read_bytes(directory / MANIFEST, MANIFEST)
    uuids = _manifest_uuids(_json(manifest_bytes, MANIFEST))
    missing = [key for key in uuids if not (directory / f"{key}.json").is_file()]
    if missing:
        absent = [
            FieldError(f"{MANIFEST}[{key}]", f"{key}.json is not in the feed directory") for key in missing
        ]
        raise InvalidInput(
            f"{MANIFEST} names {len(missing)} event(s) whose file is missing, nothing imported: "
            + "; ".join(str(e) for e in absent[:20]),
            errors=absent,
        )
    listed = {f"{key}.json" for key in uuids}
    strays = sorted(
        path.name for path in directory.glob("*.json") if path.name != MANIFEST and path.name not in listed
    )
    events: list[misp.MispEvent] = []
    errors: list[FieldError] = []
    for key in uuids:
        name = f"{key}.json"
        try:
            event = misp.parse_event(_json(_read_bytes(directory / name, name), name), prefix=f"{name}:")
        except InvalidInput as exc:
            errors.extend(exc.errors)
            continue
        if event.uuid != uuid.UUID(key):
            errors.append(FieldError(f"{name}:Event.uuid", f"is {event.uuid}; the manifest names it {key}"))
        events.append(event)
    if errors:
        raise InvalidInput(
            f"{len(errors)} problem(s) in the feed, nothing imported: "
            + "; ".join(str(e) for e in errors[:20]),
            errors=errors,
        )
    for event in events:
        _check(event)
    _refuse_unless_partial(events, partial)
    outcome = MispFeedOutcome(
        events=[_take(actor, organisation, event) for event in events], not_in_manifest=strays
    )
    extra = [
        misp.Unsupported(name, "event file", name.removesuffix(".json"), f"not in {MANIFEST}; not imported")
        for name in strays
    ]
    strictest = max((event.tlp or TLP.AMBER for event in events), key=lambda t: t.rank, default=TLP.AMBER)
    record = _record_import(
        actor,
        organisation,
        ImportFormat.MISP_FEED,
        source=directory.name,
        digest=hashlib.sha256(manifest_bytes).hexdigest(),
        tlp=strictest,
        partial=partial,
        outcomes=outcome.events,
        extra=extra,
    )
    outcome.import_id = record.pk
    outcome.counts = dict(record.counts)
    for event_outcome in outcome.events:
        event_outcome.import_id = record.pk
    return outcome


def _read_bytes(path: Path, name: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidInput(
            f"{name} cannot be read: {exc.strerror}",
            errors=[FieldError(name, f"cannot be read: {exc.strerror}")],
        ) from None


def _json(raw: bytes, name: str) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            f"{name} is not valid JSON: {exc}", errors=[FieldError(name, f"not valid JSON: {exc}")]
        ) from None


def _manifest_uuids(manifest: Any) -> list[str]:
    """The event uuids, checked as UUIDs before any of them becomes a file name."""
    if not isinstance(manifest, dict):
        raise InvalidInput(
            f"{MANIFEST} is not an object of event uuids",
            errors=[FieldError(MANIFEST, "must map event uuids to their summaries")],
        )
    errors: list[FieldError] = []
    found: list[str] = []
    for key, summary in manifest.items():
        try:
            uuid.UUID(key)  # no path separators can pass, so the key is safe as a file name
        except ValueError:
            errors.append(FieldError(f"{MANIFEST}[{key[:80]!r}]", "not an event uuid"))
            continue
        if not isinstance(summary, dict):
            errors.append(FieldError(f"{MANIFEST}[{key}]", "an event's summary must be an object"))
        found.append(key)
    if errors:
        raise InvalidInput(
            f"{MANIFEST} is not a MISP feed manifest: " + "; ".join(str(e) for e in errors[:20]),
            errors=errors,
        )
    return found


# --- checking --------------------------------------------------------------------------------------


def _item(attribute: misp.Attribute, event: misp.MispEvent, extras: dict[str, Any]) -> IndicatorInput:
    # MISP's timestamp is when the attribute last changed: the best "seen" time there is when the
    # attribute has no first_seen/last_seen (the export leaves them out again for such attributes).
    seen = attribute.first_seen is None and attribute.last_seen is None
    return IndicatorInput(
        kind=attribute.kind,
        value=attribute.observable,
        tlp=(attribute.tlp or event.tlp or TLP.AMBER).value,
        description=attribute.comment,
        source=f"MISP event {event.uuid}",
        first_seen=attribute.timestamp if seen else attribute.first_seen,
        last_seen=attribute.timestamp if seen else attribute.last_seen,
        tags=attribute.tags,
        stix_id=attribute.uuid,
        created=attribute.timestamp,
        modified=attribute.timestamp,
        extras=extras,
    )


def _check(event: misp.MispEvent) -> None:
    """What record_indicators would refuse (times in the future, first seen after last seen), moved
    to the refused list before anything is written, so the writing cannot fail half-way."""
    labels = [attribute.where for attribute in event.attributes]
    errors = check_indicators([_item(a, event, {}) for a in event.attributes], labels)
    by_label: dict[str, list[FieldError]] = {}
    for error in errors:
        by_label.setdefault(error.loc.rpartition(".")[0], []).append(error)
    kept = []
    for attribute in event.attributes:
        found = by_label.get(attribute.where)
        if found:
            event.refused.append(
                misp.Refused(attribute.where, str(attribute.uuid or ""), attribute.type, found)
            )
        else:
            kept.append(attribute)
    event.attributes = kept


def _refuse_unless_partial(events: Sequence[misp.MispEvent], partial: bool) -> None:
    refused = [refused for event in events for refused in event.refused]
    if not refused or partial:
        return
    errors = [error for event in events for error in event.problems()]
    total = sum(event.attribute_count for event in events)
    raise InvalidInput(
        f"{len(refused)} of {total} attribute(s) refused, nothing imported (ask for a partial import "
        "to take the rest): " + "; ".join(str(e) for e in errors[:20]),
        errors=errors,
    )


# --- writing ---------------------------------------------------------------------------------------


def _take(actor: User, organisation: Organisation, event: misp.MispEvent) -> MispImportOutcome:
    outcome = MispImportOutcome(event_uuid=str(event.uuid), refused=list(event.refused))
    outcome.unsupported = list(event.unsupported)
    first_at: dict[tuple[str, str], str] = {}
    for attribute in event.attributes:
        key = (attribute.kind, attribute.observable)
        if key in first_at:
            outcome.unsupported.append(
                misp.Unsupported(
                    attribute.where,
                    attribute.type,
                    attribute.value,
                    f"same value as {first_at[key]}: certnet keeps one indicator per value, so this "
                    "attribute's tags and seen times are kept but not its own uuid, category or object",
                )
            )
        else:
            first_at[key] = attribute.where
    known = _known_extras(organisation, list(first_at))
    items = [_item(a, event, _extras(known, a, event)) for a in event.attributes]
    by_key: dict[tuple[str, str], Indicator] = {}
    if items:
        result = record_indicators(
            actor=actor,
            owner=organisation.slug,
            items=items,
            labels=[attribute.where for attribute in event.attributes],
        )
        by_key = {(i.kind, i.value): i for i in [*result.created, *result.updated]}
        outcome.alerts = len(result.alerts)
        created, updated = len(result.created), len(result.updated)
    else:
        created = updated = 0
    indicators = [by_key[key] for key in first_at]
    outcome.indicators = [indicator.pk for indicator in indicators]
    report, outcome.report = _report(actor, organisation, event, indicators, first_at, outcome)
    outcome.report_id = report.pk if report else None
    outcome.counts = {
        "attributes": event.attribute_count,
        "objects": event.object_count,
        "indicators_created": created,
        "indicators_updated": updated,
        "refused": len(outcome.refused),
        "unsupported": len(outcome.unsupported),
        "reports_created": int(outcome.report == "created"),
        "reports_updated": int(outcome.report == "updated"),
    }
    return outcome


def _known_extras(organisation: Organisation, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Any]:
    return {
        (kind, value): extras
        for chunk in key_chunks(keys)
        for kind, value, extras in Indicator.objects.filter(chunk, owner=organisation).values_list(
            "kind", "value", "extras"
        )
    }


def _extras(
    known: dict[tuple[str, str], Any], attribute: misp.Attribute, event: misp.MispEvent
) -> dict[str, Any]:
    """The indicator's MISP fields with this event's entry added (or replaced): recording replaces
    extras["misp"] as a whole, so the other events' entries are carried over here."""
    before = known.get((attribute.kind, attribute.observable))
    found = before.get("misp") if isinstance(before, dict) else None
    kept: dict[str, Any] = found if isinstance(found, dict) else {}
    listed = kept.get("events")
    events: dict[str, Any] = listed if isinstance(listed, dict) else {}
    return {"misp": {**kept, "events": {**events, str(event.uuid): attribute.misp_fields()}}}


def _published_at(event: misp.MispEvent) -> dt.datetime | None:
    if event.timestamp is not None:
        return event.timestamp
    if event.date is not None:
        return dt.datetime.combine(event.date, dt.time(), tzinfo=dt.UTC)
    return None


def _report(
    actor: User,
    organisation: Organisation,
    event: misp.MispEvent,
    indicators: list[Indicator],
    first_at: dict[tuple[str, str], str],
    outcome: MispImportOutcome,
) -> tuple[IntelReport | None, str]:
    existing = (
        IntelReport.objects.filter(owner=organisation)
        .filter(Q(stix_id=event.uuid) | Q(extras__misp__uuid=str(event.uuid)))
        .order_by("pk")
        .first()
    )
    event_tlp = event.tlp or TLP.AMBER
    if existing is None and event_tlp == TLP.RED:
        outcome.unsupported.append(
            misp.Unsupported(
                "Event",
                "event",
                event.info,
                "a TLP:RED event is not made an intel report (no audience admits RED); its "
                "attributes are recorded as TLP:RED indicators",
            )
        )
        return None, "not a report: the event is TLP:RED"
    if existing is not None:
        require(actor, "change", existing, label=f"intel report {existing.pk}")
    report_tlp = TLP(existing.tlp) if existing else event_tlp
    shared: list[Indicator] = []
    for indicator in indicators:
        if TLP(indicator.tlp).is_stricter_than(report_tlp):
            where = first_at[(indicator.kind, indicator.value)]
            outcome.unsupported.append(
                misp.Unsupported(
                    where,
                    indicator.kind,
                    indicator.value,
                    f"recorded as indicator {indicator.pk} at {TLP(indicator.tlp).label}, left out of "
                    f"the report ({report_tlp.label}) so that its TLP is not lowered",
                )
            )
        else:
            shared.append(indicator)
    if existing is not None:
        _update_report(actor, existing, event, shared)
        return existing, "updated"
    taken = IntelReport.objects.filter(stix_id=event.uuid).exists()  # another organisation's import
    report = publish_intel_report(
        actor=actor,
        spec=ReportInput(
            owner=organisation.slug,
            title=event.info,
            tlp=event_tlp.value,
            audience=_AUDIENCE_BY_TLP[event_tlp].value,
            indicators=[indicator.pk for indicator in shared],
            tags=event.tags,
            stix_id=uuid.uuid4() if taken else event.uuid,
            published_at=_published_at(event),
            extras={"misp": event.fields()},
        ),
    )
    return report, "created"


def _update_report(
    actor: User, report: IntelReport, event: misp.MispEvent, indicators: list[Indicator]
) -> None:
    """The event is the source of truth for what its report holds. Indicators new to the report are
    shared as publishing shared the others (with the organisations the audience named)."""
    now = clock.now()
    before = set(report.indicators.values_list("pk", flat=True))
    report.title = event.info.strip()[:250]
    report.extras = {**report.extras, "misp": event.fields()}
    report.updated_at = now
    report.save(update_fields=["title", "extras", "updated_at"])
    report.tags.set(tags_named(event.tags))
    report.indicators.set(indicators)
    added = [indicator for indicator in indicators if indicator.pk not in before]
    share_with_audience(added, TLP(report.tlp), list(report.shared_with.values_list("pk", flat=True)))
    audit.record(
        actor=actor,
        action="intel.report.update",
        target=report,
        organisation_id=report.owner_id,
        data={
            "source": "misp",
            "event": str(event.uuid),
            "title": report.title,
            "added": [i.pk for i in added],
            "removed": sorted(before - {i.pk for i in indicators}),
        },
    )
    announce_report(actor, report)


def _record_import(
    actor: User,
    organisation: Organisation,
    format_: ImportFormat,
    *,
    source: str,
    digest: str,
    tlp: TLP,
    partial: bool,
    outcomes: list[MispImportOutcome],
    extra: list[misp.Unsupported],
) -> IntelImport:
    counts: dict[str, int] = {"events": len(outcomes)}
    for outcome in outcomes:
        for name, number in outcome.counts.items():
            counts[name] = counts.get(name, 0) + number
    counts["unsupported"] = counts.get("unsupported", 0) + len(extra)
    feed = format_ == ImportFormat.MISP_FEED

    def where(outcome: MispImportOutcome, place: str) -> str:
        return (
            place
            if not feed or place.startswith(f"{outcome.event_uuid}.json:")
            else (f"{outcome.event_uuid}.json:{place}")
        )

    refused = [
        {**item.as_dict(), "where": where(outcome, item.where)}
        for outcome in outcomes
        for item in outcome.refused
    ]
    unsupported = [
        {**item.as_dict(), "where": where(outcome, item.where)}
        for outcome in outcomes
        for item in outcome.unsupported
    ] + [item.as_dict() for item in extra]
    record = IntelImport.objects.create(
        owner=organisation,
        created_by=actor,
        format=format_,
        source=source[:300],
        sha256=digest,
        tlp=tlp,
        partial=partial,
        counts=counts,
        refused=refused,
        unsupported=unsupported,
        created_at=clock.now(),
    )
    audit.record(
        actor=actor,
        action="intel.import",
        target=record,
        organisation_id=organisation.pk,
        data={
            "format": format_.value,
            "source": record.source,
            "sha256": record.sha256,
            "event_uuids": [outcome.event_uuid for outcome in outcomes],
            "reports": [outcome.report_id for outcome in outcomes if outcome.report_id],
            **counts,
        },
    )
    return record
