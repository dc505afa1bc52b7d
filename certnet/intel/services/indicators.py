"""Recording indicators and sightings, and changing them. Each function is one transaction: it checks
the actor's right through certnet.core.visibility, validates the whole input before writing anything,
appends to the audit log, and runs correlation over the values it touched."""

from __future__ import annotations

import datetime as dt
import ipaddress
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from certnet.accounts.models import User
from certnet.core import audit, clock
from certnet.core.errors import FieldError, Forbidden, InvalidInput, NotFound, invalid
from certnet.core.roles import Role
from certnet.core.tlp import TLP
from certnet.core.visibility import may_lower_tlp, principal_for, require
from certnet.incidents.models import Incident, Report
from certnet.incidents.services.handling import named_recipients
from certnet.incidents.taxonomy import rsit
from certnet.intel.index import warninglist_matcher
from certnet.intel.models import CorrelationAlert, Indicator, Sighting, Tag
from certnet.intel.observables import KINDS, Kind, normalise
from certnet.intel.services.correlation import correlate, key_chunks
from certnet.registry.models import Organisation
from certnet.registry.resources import address_key

MAX_TAG_LENGTH = 120
AUDIT_IDS_PER_ENTRY = 5000  # a large import is audited in entries naming this many indicators each


@dataclass
class IndicatorInput:
    kind: str
    value: str
    tlp: str | None = None  # None: AMBER for a new indicator, unchanged for a known one
    confidence: int | None = None  # None: 50 for a new indicator, unchanged for a known one
    description: str = ""
    source: str = ""
    first_seen: dt.datetime | None = None
    last_seen: dt.datetime | None = None
    expires_at: dt.datetime | None = None
    tags: Sequence[str] = ()
    named_users: Sequence[str] = ()
    incidents: Sequence[int] = ()
    reports: Sequence[int] = ()
    # What an imported record brings from its own format; a new indicator takes them as they are.
    stix_id: uuid.UUID | None = None
    name: str = ""
    indicator_types: Sequence[str] = ()
    made_by: str = ""  # the STIX identity that made it
    created: dt.datetime | None = None
    modified: dt.datetime | None = None
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class RecordResult:
    created: list[Indicator] = field(default_factory=list)
    updated: list[Indicator] = field(default_factory=list)
    alerts: list[CorrelationAlert] = field(default_factory=list)


@dataclass
class _Valid:
    kind: str
    value: str
    item: IndicatorInput
    tlp: TLP | None
    first_seen: dt.datetime
    last_seen: dt.datetime
    tags: list[str]
    where: str  # the item's position in the input, for error messages


# --- validation ------------------------------------------------------------------------------------


def normalise_tag(text: str, *, loc: str = "tags") -> str:
    """RSIT tags take the MISP machine-tag form rsit:<taxonomy>="<type>" (also accepted as
    rsit:<taxonomy>/<type>) and must name a real RSIT class; other tags are free words."""
    tag = text.strip()
    if not tag:
        raise invalid(loc, "a tag must not be empty")
    if len(tag) > MAX_TAG_LENGTH:
        raise invalid(loc, f"{tag[:40]!r}… is {len(tag)} characters long; the limit is {MAX_TAG_LENGTH}")
    if tag.lower().startswith("rsit:"):
        body = tag[5:]
        taxonomy, _, kind = body.partition("=") if "=" in body else body.partition("/")
        try:
            taxonomy, kind = rsit().classify(taxonomy, kind.strip().strip('"'))
        except InvalidInput as exc:
            raise invalid(loc, f"{tag!r} is not an RSIT class ({exc.detail})") from None
        return f'rsit:{taxonomy}="{kind}"'
    return tag


def normalised_tags(texts: Iterable[str], errors: list[FieldError]) -> list[str]:
    """Each tag in its normal form; a refused one adds its error (at `tags[n]`) and is left out."""
    tags: list[str] = []
    for number, text in enumerate(texts):
        try:
            tags.append(normalise_tag(text, loc=f"tags[{number}]"))
        except InvalidInput as exc:
            errors.extend(exc.errors)
    return tags


def _parse_tlp(text: str | None, loc: str, errors: list[FieldError]) -> TLP | None:
    if text is None:
        return None
    try:
        return TLP.parse(text)
    except ValueError as exc:
        errors.append(FieldError(loc, str(exc)))
        return None


def _validate(
    items: Sequence[IndicatorInput], loc: str, labels: Sequence[str] | None, errors: list[FieldError]
) -> list[_Valid]:
    now = clock.now()
    valid: list[_Valid] = []
    for position, item in enumerate(items):
        here = labels[position] if labels else f"{loc}[{position}]"
        before = len(errors)
        value = ""
        if item.kind not in KINDS:
            errors.append(FieldError(f"{here}.kind", f"{item.kind!r} is not one of {', '.join(KINDS)}"))
        else:
            try:
                value = normalise(item.kind, item.value, loc=f"{here}.value")
            except InvalidInput as exc:
                errors.extend(exc.errors)
        tlp = _parse_tlp(item.tlp, f"{here}.tlp", errors)
        if item.confidence is not None and not 0 <= item.confidence <= 100:
            errors.append(FieldError(f"{here}.confidence", f"{item.confidence} is not in 0..100"))
        first = item.first_seen or item.last_seen or now
        last = item.last_seen or item.first_seen or now
        if first > now or last > now:
            errors.append(FieldError(f"{here}.last_seen", "lies in the future"))
        if first > last:
            errors.append(FieldError(f"{here}.first_seen", f"{first.isoformat()} is after last_seen"))
        if item.expires_at is not None and item.expires_at <= first:
            errors.append(FieldError(f"{here}.expires_at", "must be after first_seen"))
        tags: list[str] = []
        for number, tag in enumerate(item.tags):
            try:
                tags.append(normalise_tag(tag, loc=f"{here}.tags[{number}]"))
            except InvalidInput as exc:
                errors.extend(exc.errors)
        if len(errors) == before:
            valid.append(_Valid(item.kind, value, item, tlp, first, last, sorted(set(tags)), here))
    return valid


def check_indicators(items: Sequence[IndicatorInput], labels: Sequence[str]) -> list[FieldError]:
    """What record_indicators would refuse in these items, without recording anything (an import
    checks a whole bundle before it writes any of it)."""
    errors: list[FieldError] = []
    _validate(items, "indicators", labels, errors)
    return errors


def organisation_acting_for(
    actor: User, owner_slug: str, *, doing: str = "record indicators"
) -> Organisation:
    """The organisation the actor records, imports or publishes for: one where they are an analyst."""
    owner = Organisation.objects.filter(slug=owner_slug).first()
    principal = principal_for(actor)
    if owner is None or owner.pk not in principal.orgs_with(Role.VIEWER):
        raise Forbidden(
            f"you may only {doing} for an organisation you belong to (as an analyst or above), "
            f"not {owner_slug!r}"
        )
    if owner.pk not in principal.orgs_with(Role.ANALYST):
        raise Forbidden(f"you need the analyst role or above in {owner.slug} to {doing}")
    return owner


def _visible_ids(actor: User, model: type[Incident] | type[Report], wanted: set[int]) -> set[int]:
    if not wanted:
        return set()
    return set(model.objects.restrict(actor).filter(pk__in=wanted).values_list("pk", flat=True))


def _ranges(kind: str, value: str) -> tuple[str, str]:
    if kind in (Kind.IPV4, Kind.IPV6):
        key = address_key(ipaddress.ip_address(value))
        return key, key
    if kind == Kind.CIDR:
        network = ipaddress.ip_network(value)
        return address_key(network.network_address), address_key(network.broadcast_address)
    return "", ""


# --- recording -------------------------------------------------------------------------------------


@transaction.atomic
def record_indicators(
    *,
    actor: User,
    owner: str,
    items: Sequence[IndicatorInput],
    loc: str = "indicators",
    labels: Sequence[str] | None = None,
) -> RecordResult:
    """Record values for the owner organisation: new ones become indicators, known ones are brought up
    to date (seen times widened, tags added, TLP raised, never lowered here). All or nothing: any
    invalid item fails the whole call, naming every problem with its position (`loc[i]`, or the
    item's own label, such as a file's line number, when `labels` are given)."""
    organisation = organisation_acting_for(actor, owner)
    errors: list[FieldError] = []
    valid = _validate(items, loc, labels, errors)
    incident_ids = _visible_ids(actor, Incident, {i for v in valid for i in v.item.incidents})
    report_ids = _visible_ids(actor, Report, {r for v in valid for r in v.item.reports})
    readers = sorted({u for v in valid for u in v.item.named_users})
    named = {user.username: user for user in named_recipients(organisation, readers, errors)}
    for entry in valid:
        missing = [i for i in entry.item.incidents if i not in incident_ids]
        if missing:
            errors.append(FieldError(f"{entry.where}.incidents", f"no incident {missing[0]}"))
        missing = [r for r in entry.item.reports if r not in report_ids]
        if missing:
            errors.append(FieldError(f"{entry.where}.reports", f"no report {missing[0]}"))
    if errors:
        raise InvalidInput(
            f"{len(errors)} problem(s), nothing recorded: " + "; ".join(str(e) for e in errors[:20]),
            errors=errors,
        )
    merged = _merge_duplicates(valid)
    result = _store(actor, organisation, merged, named)
    audit_batch(actor, organisation, result)
    result.alerts = correlate((i.kind, i.value) for i in [*result.created, *result.updated])
    return result


def _merge_duplicates(valid: list[_Valid]) -> list[_Valid]:
    """The same value twice in one batch is one indicator seen over both entries' times."""
    by_key: dict[tuple[str, str], _Valid] = {}
    for entry in valid:
        known = by_key.get((entry.kind, entry.value))
        if known is None:
            by_key[(entry.kind, entry.value)] = entry
            continue
        known.first_seen = min(known.first_seen, entry.first_seen)
        known.last_seen = max(known.last_seen, entry.last_seen)
        known.tags = sorted(set(known.tags) | set(entry.tags))
        if entry.tlp is not None and (known.tlp is None or entry.tlp.is_stricter_than(known.tlp)):
            known.tlp = entry.tlp
    return list(by_key.values())


def _existing(organisation: Organisation, entries: list[_Valid]) -> dict[tuple[str, str], Indicator]:
    return {
        (indicator.kind, indicator.value): indicator
        for chunk in key_chunks((entry.kind, entry.value) for entry in entries)
        for indicator in Indicator.objects.filter(chunk, owner=organisation)
    }


def _store(
    actor: User, organisation: Organisation, entries: list[_Valid], named: dict[str, User]
) -> RecordResult:
    now = clock.now()
    matcher = warninglist_matcher()
    existing = _existing(organisation, entries)
    taken_ids = _stix_ids_taken(organisation, entries)
    result = RecordResult()
    new: list[tuple[Indicator, _Valid]] = []
    known: list[tuple[Indicator, _Valid]] = []
    for entry in entries:
        indicator = existing.get((entry.kind, entry.value))
        listed = matcher.listed(entry.kind, entry.value) or ""
        if indicator is None:
            start, end = _ranges(entry.kind, entry.value)
            item = entry.item
            indicator = Indicator(
                kind=entry.kind,
                value=entry.value,
                owner=organisation,
                stix_id=_fresh_stix_id(item.stix_id, taken_ids),
                name=item.name[:250],
                indicator_types=list(item.indicator_types),
                made_by=item.made_by,
                extras=item.extras,
                created_by=actor,
                tlp=entry.tlp or TLP.AMBER,
                confidence=50 if entry.item.confidence is None else entry.item.confidence,
                description=entry.item.description,
                source=entry.item.source[:200],
                first_seen=entry.first_seen,
                last_seen=entry.last_seen,
                expires_at=entry.item.expires_at,
                warninglist=listed,
                range_start=start,
                range_end=end,
                created_at=item.created or now,
                updated_at=item.modified or item.created or now,
            )
            new.append((indicator, entry))
            continue
        _bring_up_to_date(indicator, entry, listed, now)
        known.append((indicator, entry))
        result.updated.append(indicator)
    Indicator.objects.bulk_create([indicator for indicator, _ in new], batch_size=1000)
    result.created = [indicator for indicator, _ in new]
    if result.updated:
        Indicator.objects.bulk_update(
            result.updated,
            [
                "tlp",
                "confidence",
                "description",
                "source",
                "first_seen",
                "last_seen",
                "expires_at",
                "name",
                "indicator_types",
                "extras",
                "warninglist",
                "updated_at",
            ],
            batch_size=1000,
        )
    _link(new + known, named)
    return result


def _stix_ids_taken(organisation: Organisation, entries: list[_Valid]) -> set[uuid.UUID]:
    wanted = [entry.item.stix_id for entry in entries if entry.item.stix_id]
    taken: set[uuid.UUID] = set()
    for start in range(0, len(wanted), 500):
        taken.update(
            Indicator.objects.filter(owner=organisation, stix_id__in=wanted[start : start + 500]).values_list(
                "stix_id", flat=True
            )
        )
    return taken


def _fresh_stix_id(wanted: uuid.UUID | None, taken: set[uuid.UUID]) -> uuid.UUID:
    """The id an imported record came with, unless the owner already uses it for another value (a
    later version of a STIX indicator whose pattern changed): then a new one, so neither is lost."""
    chosen = wanted if wanted is not None and wanted not in taken else uuid.uuid4()
    taken.add(chosen)
    return chosen


def _bring_up_to_date(indicator: Indicator, entry: _Valid, listed: str, now: dt.datetime) -> None:
    indicator.first_seen = min(indicator.first_seen, entry.first_seen)
    indicator.last_seen = max(indicator.last_seen, entry.last_seen)
    if entry.tlp is not None and entry.tlp.is_stricter_than(TLP(indicator.tlp)):
        indicator.tlp = entry.tlp
    if entry.item.confidence is not None:
        indicator.confidence = entry.item.confidence
    if entry.item.description:
        indicator.description = entry.item.description
    if entry.item.source:
        indicator.source = entry.item.source[:200]
    if entry.item.expires_at is not None:
        indicator.expires_at = entry.item.expires_at
    if entry.item.name:
        indicator.name = entry.item.name[:250]
    if entry.item.indicator_types:
        indicator.indicator_types = sorted(set(indicator.indicator_types) | set(entry.item.indicator_types))
    if entry.item.extras:
        indicator.extras = {**indicator.extras, **entry.item.extras}
    indicator.warninglist = listed
    indicator.updated_at = now


def _link(pairs: list[tuple[Indicator, _Valid]], named: dict[str, User]) -> None:
    """Tags, incidents, reports and named readers for many indicators: one insert per link table."""
    tags = {tag.name: tag for tag in tags_named({tag for _, entry in pairs for tag in entry.tags})}
    links: dict[str, list[Any]] = {"tags": [], "incidents": [], "reports": [], "named_users": []}
    through = {name: getattr(Indicator, name).through for name in links}
    for indicator, entry in pairs:
        links["tags"] += [through["tags"](indicator_id=indicator.pk, tag_id=tags[t].pk) for t in entry.tags]
        links["incidents"] += [
            through["incidents"](indicator_id=indicator.pk, incident_id=i) for i in entry.item.incidents
        ]
        links["reports"] += [
            through["reports"](indicator_id=indicator.pk, report_id=r) for r in entry.item.reports
        ]
        links["named_users"] += [
            through["named_users"](indicator_id=indicator.pk, user_id=named[u].pk)
            for u in entry.item.named_users
        ]
    for name, rows in links.items():
        if rows:
            through[name].objects.bulk_create(rows, batch_size=1000, ignore_conflicts=True)


def tags_named(names: Iterable[str]) -> list[Tag]:
    """The tags with these (already normalised) names, the missing ones created: two queries at most."""
    wanted = set(names)
    tags = list(Tag.objects.filter(name__in=wanted))
    missing = [Tag(name=name) for name in sorted(wanted - {tag.name for tag in tags})]
    if missing:
        Tag.objects.bulk_create(missing, ignore_conflicts=True)
        tags = list(Tag.objects.filter(name__in=wanted))
    return tags


def audit_batch(actor: User, organisation: Organisation, result: RecordResult) -> None:
    """One indicator recorded: an entry on it. A batch: entries on the owner organisation naming the
    indicators, so a 100,000-value import is a few entries rather than 100,000."""
    if len(result.created) + len(result.updated) == 1:
        indicator = (result.created or result.updated)[0]
        audit.record(
            actor=actor,
            action="intel.indicator.create" if result.created else "intel.indicator.update",
            target=indicator,
            organisation_id=organisation.pk,
            data={"kind": indicator.kind, "value": indicator.value, "tlp": indicator.tlp},
        )
        return
    for action, indicators in (
        ("intel.indicators.create", result.created),
        ("intel.indicators.update", result.updated),
    ):
        for start in range(0, len(indicators), AUDIT_IDS_PER_ENTRY):
            part = indicators[start : start + AUDIT_IDS_PER_ENTRY]
            audit.record(
                actor=actor,
                action=action,
                target=organisation,
                organisation_id=organisation.pk,
                data={"count": len(part), "indicators": [int(i.pk) for i in part]},
            )


@transaction.atomic
def record_sighting(
    *,
    actor: User,
    indicator_id: int,
    organisation: str,
    seen_at: dt.datetime | None = None,
    count: int = 1,
    source: str = "",
) -> tuple[Sighting, list[CorrelationAlert]]:
    """The actor's organisation saw a value someone recorded. Anyone who can read the indicator may
    say so for an organisation they belong to (analyst or above)."""
    indicator = Indicator.objects.filter(pk=indicator_id).first()
    if indicator is None:
        raise NotFound(f"no indicator {indicator_id}")
    require(actor, "view", indicator, label=f"indicator {indicator_id}")
    seer = Organisation.objects.filter(slug=organisation).first()
    principal = principal_for(actor)
    if seer is None or seer.pk not in principal.orgs_with(Role.ANALYST):
        raise Forbidden(
            f"sightings are reported by an analyst of the organisation that saw it, not for {organisation!r}"
        )
    when = seen_at or clock.now()
    if when > clock.now():
        raise invalid("seen_at", "lies in the future")
    if count < 1:
        raise invalid("count", f"{count} is not a positive number of sightings")
    sighting = Sighting.objects.select_for_update().filter(indicator=indicator, organisation=seer).first()
    if sighting is None:
        sighting = Sighting.objects.create(
            indicator=indicator,
            organisation=seer,
            reported_by=actor,
            first_seen=when,
            last_seen=when,
            count=count,
            source=source[:200],
        )
    else:
        sighting.first_seen = min(sighting.first_seen, when)
        sighting.last_seen = max(sighting.last_seen, when)
        sighting.count += count
        sighting.reported_by = actor
        if source:
            sighting.source = source[:200]
        sighting.save()
    if when > indicator.last_seen:
        indicator.last_seen = when
        indicator.save(update_fields=["last_seen"])
    audit.record(
        actor=actor,
        action="intel.indicator.sighting",
        target=indicator,
        organisation_id=seer.pk,
        data={"organisation": seer.slug, "seen_at": when.isoformat(), "count": count},
    )
    return sighting, correlate([(indicator.kind, indicator.value)])


@dataclass
class SightingInput:
    indicator_id: int
    first_seen: dt.datetime
    last_seen: dt.datetime
    count: int = 1
    source: str = ""


def record_sightings(
    *, actor: User, organisation: Organisation, sightings: Sequence[SightingInput]
) -> list[CorrelationAlert]:
    """Many sightings by one organisation at once (an imported bundle's): one read, bulk writes, one
    audit entry and one correlation pass. The caller has checked that the actor may see each
    indicator and speaks for the organisation."""
    if not sightings:
        return []
    ids = sorted({s.indicator_id for s in sightings})
    known = {
        sighting.indicator_id: sighting
        for start in range(0, len(ids), 2000)
        for sighting in Sighting.objects.select_for_update().filter(
            organisation=organisation, indicator_id__in=ids[start : start + 2000]
        )
    }
    new: dict[int, Sighting] = {}
    for item in sightings:
        sighting = known.get(item.indicator_id) or new.get(item.indicator_id)
        if sighting is None:
            new[item.indicator_id] = Sighting(
                indicator_id=item.indicator_id,
                organisation=organisation,
                reported_by=actor,
                first_seen=item.first_seen,
                last_seen=item.last_seen,
                count=item.count,
                source=item.source[:200],
            )
            continue
        sighting.first_seen = min(sighting.first_seen, item.first_seen)
        sighting.last_seen = max(sighting.last_seen, item.last_seen)
        sighting.count += item.count
        sighting.reported_by = actor
    Sighting.objects.bulk_create(list(new.values()), batch_size=1000)
    if known:
        Sighting.objects.bulk_update(
            list(known.values()), ["first_seen", "last_seen", "count", "reported_by"], batch_size=1000
        )
    for start in range(0, len(ids), AUDIT_IDS_PER_ENTRY):
        part = ids[start : start + AUDIT_IDS_PER_ENTRY]
        audit.record(
            actor=actor,
            action="intel.indicators.sightings",
            target=organisation,
            organisation_id=organisation.pk,
            data={"count": len(part), "indicators": part},
        )
    keys = [
        key
        for start in range(0, len(ids), 2000)
        for key in Indicator.objects.filter(pk__in=ids[start : start + 2000]).values_list("kind", "value")
    ]
    return correlate(keys)


@dataclass
class IndicatorChange:
    tlp: str | None = None
    confidence: int | None = None
    description: str | None = None
    expires_at: dt.datetime | None = None
    clear_expiry: bool = False
    tags: Sequence[str] | None = None
    shared_with: Sequence[str] | None = None
    incidents: Sequence[int] | None = None
    reports: Sequence[int] | None = None


@transaction.atomic
def change_indicator(*, actor: User, indicator_id: int, change: IndicatorChange) -> Indicator:
    """Edit one indicator. TLP may be raised by anyone who can change it and lowered only by its owner;
    sharing needs the share right; links must point at incidents and reports the actor can see."""
    indicator = Indicator.objects.select_for_update().filter(pk=indicator_id).first()
    if indicator is None:
        raise NotFound(f"no indicator {indicator_id}")
    require(actor, "change", indicator, label=f"indicator {indicator_id}")
    errors: list[FieldError] = []
    before = {"tlp": indicator.tlp, "confidence": indicator.confidence}
    tlp = _parse_tlp(change.tlp, "tlp", errors)
    if tlp is not None and TLP(indicator.tlp).is_stricter_than(tlp) and not may_lower_tlp(actor, indicator):
        raise Forbidden(f"only {indicator.owner.slug} may lower the TLP of indicator {indicator_id}")
    if change.confidence is not None and not 0 <= change.confidence <= 100:
        errors.append(FieldError("confidence", f"{change.confidence} is not in 0..100"))
    tags = normalised_tags(change.tags or (), errors)
    shared: list[Organisation] = []
    if change.shared_with is not None:
        require(actor, "share", indicator, label=f"indicator {indicator_id}")
        found = {
            org.slug: org for org in Organisation.objects.restrict(actor).filter(slug__in=change.shared_with)
        }
        unknown = sorted(set(change.shared_with) - set(found))
        if unknown:
            errors.append(FieldError("shared_with", f"no organisation {unknown[0]!r}"))
        shared = list(found.values())
    for name, model, wanted in (
        ("incidents", Incident, change.incidents),
        ("reports", Report, change.reports),
    ):
        if wanted is not None:
            missing = sorted(set(wanted) - _visible_ids(actor, model, set(wanted)))
            if missing:
                errors.append(FieldError(name, f"no {name[:-1]} {missing[0]}"))
    if errors:
        raise InvalidInput("the change is not valid: " + "; ".join(str(e) for e in errors), errors=errors)
    if tlp is not None:
        indicator.tlp = tlp
    if change.confidence is not None:
        indicator.confidence = change.confidence
    if change.description is not None:
        indicator.description = change.description
    if change.clear_expiry:
        indicator.expires_at = None
    elif change.expires_at is not None:
        indicator.expires_at = change.expires_at
    indicator.updated_at = clock.now()
    indicator.save()
    if change.tags is not None:
        indicator.tags.set(tags_named(tags))
    if change.shared_with is not None:
        indicator.shared_with.set(shared)
    if change.incidents is not None:
        indicator.incidents.set(change.incidents)
    if change.reports is not None:
        indicator.reports.set(change.reports)
    audit.record(
        actor=actor,
        action="intel.indicator.change",
        target=indicator,
        organisation_id=indicator.owner_id,
        data={
            "before": before,
            "after": {"tlp": indicator.tlp, "confidence": indicator.confidence},
            "fields": sorted(k for k, v in vars(change).items() if v not in (None, False)),
        },
    )
    correlate([(indicator.kind, indicator.value)])
    return indicator
