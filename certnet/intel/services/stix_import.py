"""Importing STIX 2.1 bundles, with a report on every object: taken (as an indicator, a sighting, or
kept as STIX) or refused, and why.

A bundle is read as a stream, twice: the first pass checks every object and lists every violation;
the second writes, in chunks. Memory stays bounded by the chunk and by one small entry per object id
(for duplicates and references), whatever the bundle's size. Unless the caller asks for a partial
import, one refused object means nothing is imported."""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import ijson
from django.db import transaction

from certnet.accounts.models import User
from certnet.core import audit, clock
from certnet.core.errors import FieldError, InvalidInput
from certnet.core.tlp import TLP
from certnet.intel import stix
from certnet.intel.models import ImportFormat, Indicator, IntelImport, StixObject
from certnet.intel.services.indicators import (
    IndicatorInput,
    SightingInput,
    check_indicators,
    organisation_acting_for,
    record_indicators,
    record_sightings,
)
from certnet.intel.stix_checks import Checked, check_object

CHUNK = 5000
MAX_LISTED_TAKEN = 200_000  # the per-object report lists at most this many taken objects

Source = dict[str, Any] | bytes | Path | IO[bytes]


@dataclass
class Taken:
    index: int
    stix_id: str
    type: str
    version: str
    outcome: str


@dataclass
class Refused:
    index: int
    stix_id: str
    type: str
    reasons: list[str]


@dataclass
class ImportOutcome:
    import_id: int | None = None
    objects: int = 0
    taken: list[Taken] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    alerts: int = 0


# --- reading ---------------------------------------------------------------------------------------


def _open(source: Source) -> IO[bytes]:
    if isinstance(source, bytes):
        return io.BytesIO(source)
    if isinstance(source, Path):
        return source.open("rb")
    if isinstance(source, dict):
        raise TypeError("an in-memory bundle is not read as a stream")
    source.seek(0)
    return source


def _header(source: Source) -> None:
    """The bundle's own shape: an object of type "bundle" with a bundle id and a list of objects."""
    if isinstance(source, dict):
        found = {key: source.get(key) for key in ("type", "id")}
        objects_is_list = isinstance(source.get("objects", []), list)
    else:
        found = {}
        objects_is_list = True
        stream = _open(source)
        try:
            for prefix, event, value in ijson.parse(stream):
                if prefix in ("type", "id") and event == "string":
                    found[prefix] = value
                elif prefix == "objects" and event not in ("start_array", "end_array"):
                    objects_is_list = False
                elif prefix == "" and event not in ("start_map", "end_map", "map_key"):
                    raise InvalidInput(
                        "a STIX bundle is a JSON object", errors=[FieldError("bundle", "not an object")]
                    )
        except ijson.JSONError as exc:
            raise InvalidInput(
                f"the bundle is not valid JSON: {exc}",
                errors=[FieldError("bundle", f"not valid JSON: {exc}")],
            ) from None
        finally:
            if isinstance(source, Path):
                stream.close()
    errors = []
    if found.get("type") != "bundle":
        errors.append(FieldError("bundle.type", f"is {found.get('type')!r}; a STIX bundle has type 'bundle'"))
    if stix.id_type(found.get("id")) != "bundle":
        errors.append(FieldError("bundle.id", f"{found.get('id')!r} is not a bundle id (bundle--<uuid>)"))
    if not objects_is_list:
        errors.append(FieldError("bundle.objects", "must be a list of objects"))
    if errors:
        raise InvalidInput("not a STIX 2.1 bundle: " + "; ".join(str(e) for e in errors), errors=errors)


def _objects(source: Source) -> Iterator[tuple[int, Any]]:
    if isinstance(source, dict):
        yield from enumerate(source.get("objects") or [])
        return
    stream = _open(source)
    try:
        yield from enumerate(ijson.items(stream, "objects.item", use_float=True))
    except ijson.JSONError as exc:
        raise _not_json(exc) from None
    finally:
        if isinstance(source, Path):
            stream.close()


def _not_json(exc: Exception) -> InvalidInput:
    return InvalidInput(
        f"the bundle is not valid JSON: {exc}", errors=[FieldError("bundle", f"not JSON: {exc}")]
    )


def _digest(source: Source) -> str:
    digest = hashlib.sha256()
    if isinstance(source, dict):
        return ""
    stream = _open(source)
    try:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    finally:
        if isinstance(source, Path):
            stream.close()
    return digest.hexdigest()


# --- the first pass: check everything ---------------------------------------------------------------


@dataclass
class _Survey:
    """What the first pass learnt, one small entry per object."""

    objects: int = 0
    refused: list[Refused] = field(default_factory=list)
    versions: dict[tuple[str, str], int] = field(default_factory=dict)  # (id, version) -> index
    indicators: dict[str, int] = field(default_factory=dict)  # STIX ids taken as indicators -> index
    scos: dict[str, tuple[str, str]] = field(default_factory=dict)  # SCO id -> (kind, raw value)


def _survey(source: Source, default_tlp: TLP) -> _Survey:
    survey = _Survey()
    pending: list[tuple[Checked, IndicatorInput]] = []
    for index, body in _objects(source):
        survey.objects = index + 1
        checked = check_object(index, body, default_tlp)
        if checked.reasons:
            survey.refused.append(Refused(index, checked.stix_id, checked.type, checked.reasons))
            continue
        key = (checked.stix_id, checked.version)
        if key in survey.versions:
            reason = f"duplicate of objects[{survey.versions[key]}] (same id and version)"
            survey.refused.append(Refused(index, checked.stix_id, checked.type, [reason]))
            continue
        survey.versions[key] = index
        if checked.sco_value is not None:
            survey.scos[checked.stix_id] = checked.sco_value
        if checked.indicator is not None:
            pending.append((checked, checked.indicator))
            survey.indicators[checked.stix_id] = index
        if len(pending) >= CHUNK:
            _check_batch(pending, survey)
    _check_batch(pending, survey)
    return survey


def _check_batch(pending: list[tuple[Checked, IndicatorInput]], survey: _Survey) -> None:
    """The same checks record_indicators makes (values normalised, times in order), so the second pass
    cannot fail half-way."""
    labels = [f"objects[{checked.index}]" for checked, _ in pending]
    errors = check_indicators([item for _, item in pending], labels)
    by_label: dict[str, list[str]] = {}
    for error in errors:
        by_label.setdefault(error.loc.split(".")[0], []).append(f"{error.loc}: {error.msg}")
    for checked, _ in pending:
        reasons = by_label.get(f"objects[{checked.index}]")
        if reasons:
            survey.refused.append(Refused(checked.index, checked.stix_id, checked.type, reasons))
            survey.indicators.pop(checked.stix_id, None)
            survey.versions.pop((checked.stix_id, checked.version), None)
    pending.clear()


# --- the second pass: write ---------------------------------------------------------------------------


@transaction.atomic
def import_bundle(
    *,
    actor: User,
    owner: str,
    source: Source,
    partial: bool = False,
    default_tlp: str | None = None,
    source_name: str = "api",
) -> ImportOutcome:
    """Import a STIX 2.1 bundle for the owner organisation (the actor must be one of its analysts).
    Indicators whose pattern compares one value become certnet indicators (merged with the owner's
    own); sightings of them are counted; every other STIX object is kept as it came."""
    organisation = organisation_acting_for(actor, owner, doing="import intelligence")
    try:
        tlp = TLP.parse(default_tlp) if default_tlp else TLP.AMBER
    except ValueError as exc:
        raise InvalidInput(str(exc), errors=[FieldError("default_tlp", str(exc))]) from None
    _header(source)
    survey = _survey(source, tlp)
    refused_ids = {r.index for r in survey.refused}
    if survey.refused and not partial:
        errors = [
            FieldError(f"objects[{r.index}]", f"{r.stix_id or r.type or 'object'}: {'; '.join(r.reasons)}")
            for r in survey.refused
        ]
        raise InvalidInput(
            f"{len(survey.refused)} of {survey.objects} object(s) refused, nothing imported "
            "(ask for a partial import to take the rest): " + "; ".join(str(e) for e in errors[:20]),
            errors=errors,
        )
    outcome = ImportOutcome(objects=survey.objects, refused=survey.refused)
    writer = _Writer(actor, organisation, outcome, survey)
    for index, body in _objects(source):
        if index not in refused_ids:
            writer.add(check_object(index, body, tlp))
    writer.finish()
    outcome.refused.sort(key=lambda r: r.index)
    record = IntelImport.objects.create(
        owner=organisation,
        created_by=actor,
        format=ImportFormat.STIX,
        source=source_name[:300],
        sha256=_digest(source),
        tlp=tlp,
        partial=partial,
        counts=outcome.counts,
        refused=[
            {"index": r.index, "id": r.stix_id, "type": r.type, "reasons": r.reasons} for r in outcome.refused
        ],
        created_at=clock.now(),
    )
    outcome.import_id = record.pk
    audit.record(
        actor=actor,
        action="intel.import",
        target=record,
        organisation_id=organisation.pk,
        data={"format": "stix", "source": record.source, "sha256": record.sha256, **outcome.counts},
    )
    return outcome


class _Writer:
    def __init__(self, actor: User, organisation: Any, outcome: ImportOutcome, survey: _Survey) -> None:
        self.actor = actor
        self.organisation = organisation
        self.outcome = outcome
        self.survey = survey
        self.indicators: list[tuple[Checked, IndicatorInput]] = []
        self.kept: list[tuple[Checked, StixObject]] = []
        self.links: list[tuple[int, list[str]]] = []  # kept object pk -> the ids it names
        self.kept_pks: dict[str, list[int]] = {}  # kept STIX id -> its rows
        self.sightings: list[Checked] = []
        self.counts = {
            "indicators_created": 0,
            "indicators_updated": 0,
            "kept": 0,
            "sightings": 0,
            "markings": 0,
        }
        self.now = clock.now()

    def add(self, checked: Checked) -> None:
        if checked.indicator is not None:
            self.indicators.append((checked, checked.indicator))
        elif checked.tlp_marking:
            self.counts["markings"] += 1
            self._taken(checked, "the TLP marking definition certnet knows")
        if checked.keep:
            self.kept.append((checked, self._stix_object(checked)))
        for derived in checked.observed:
            value = self.survey.scos.get(derived)
            if value is not None:
                item = IndicatorInput(
                    kind=value[0],
                    value=value[1],
                    tlp=checked.tlp.value,
                    first_seen=checked.first_seen,
                    last_seen=checked.last_seen,
                    source=checked.stix_id,
                )
                self.indicators.append((checked, item))
        if checked.sighting_of:
            self.sightings.append(checked)
        if len(self.indicators) >= CHUNK:
            self._flush_indicators()
        if len(self.kept) >= CHUNK:
            self._flush_kept()

    def _taken(self, checked: Checked, outcome: str) -> None:
        if len(self.outcome.taken) < MAX_LISTED_TAKEN:
            self.outcome.taken.append(
                Taken(checked.index, checked.stix_id, checked.type, checked.version, outcome)
            )

    def _stix_object(self, checked: Checked) -> StixObject:
        return StixObject(
            stix_id=checked.stix_id,
            type=checked.type,
            modified=checked.modified,
            body=checked.body,
            owner=self.organisation,
            created_by=self.actor,
            tlp=checked.tlp,
            added_at=self.now,
        )

    def _flush_indicators(self) -> None:
        if not self.indicators:
            return
        result = record_indicators(
            actor=self.actor,
            owner=self.organisation.slug,
            items=[item for _, item in self.indicators],
            labels=[f"objects[{checked.index}]" for checked, _ in self.indicators],
        )
        self.counts["indicators_created"] += len(result.created)
        self.counts["indicators_updated"] += len(result.updated)
        self.outcome.alerts += len(result.alerts)
        by_value = {(i.kind, i.value): i for i in [*result.created, *result.updated]}
        for checked, item in self.indicators:
            if item.source == checked.stix_id and checked.indicator is None:
                continue  # a value observed-data named: reported with its observed-data below
            found = by_value.get((item.kind, item.value))
            self._taken(checked, f"indicator {found.pk if found else '?'}")
        self.indicators.clear()

    def _flush_kept(self) -> None:
        if not self.kept:
            return
        rows = [row for _, row in self.kept]
        StixObject.objects.bulk_create(rows, batch_size=1000, ignore_conflicts=True)
        stored = {
            (row.stix_id, row.modified): row.pk
            for row in StixObject.objects.filter(
                owner=self.organisation, stix_id__in=[row.stix_id for row in rows]
            ).only("pk", "stix_id", "modified")
        }
        for checked, row in self.kept:
            self.counts["kept"] += 1
            pk = stored.get((row.stix_id, row.modified))
            if pk is not None:
                self.kept_pks.setdefault(row.stix_id, []).append(pk)
                if checked.refs:
                    self.links.append((pk, checked.refs))
            if checked.indicator is None:
                self._taken(checked, "kept as STIX" + (f" ({checked.note})" if checked.note else ""))
        self.kept.clear()

    def finish(self) -> None:
        self._flush_indicators()
        self._flush_kept()
        self._link_kept()
        self._count_sightings()
        self.outcome.counts = {
            "objects": self.outcome.objects,
            "refused": len(self.outcome.refused),
            **self.counts,
        }

    def _indicator_pks(self, refs: set[str]) -> dict[str, int]:
        """Indicators of the owner's by STIX id (indicator--x or vulnerability--x)."""
        wanted: dict[uuid.UUID, list[str]] = {}
        for ref in refs:
            if stix.id_type(ref) in ("indicator", "vulnerability"):
                wanted.setdefault(uuid.UUID(ref.split("--", 1)[1]), []).append(ref)
        found: dict[str, int] = {}
        keys = list(wanted)
        for start in range(0, len(keys), 2000):
            rows = Indicator.objects.filter(owner=self.organisation, stix_id__in=keys[start : start + 2000])
            for pk, stix_id in rows.values_list("pk", "stix_id"):
                for ref in wanted[stix_id]:
                    found[ref] = pk
        return found

    def _link_kept(self) -> None:
        """Link kept objects to the indicators they name, and the objects named alongside an indicator
        too (a relationship's malware, a report's attack pattern), so an export of the indicators
        carries them."""
        pks = self._indicator_pks({ref for _, refs in self.links for ref in refs})
        through = StixObject.indicators.through
        rows = []
        for kept_pk, refs in self.links:
            indicators = [pks[ref] for ref in refs if ref in pks]
            alongside = [pk for ref in refs for pk in self.kept_pks.get(ref, ())]
            rows += [
                through(stixobject_id=linked, indicator_id=indicator)
                for indicator in indicators
                for linked in [kept_pk, *alongside]
            ]
        through.objects.bulk_create(rows, batch_size=2000, ignore_conflicts=True)

    def _count_sightings(self) -> None:
        refs = {checked.sighting_of for checked in self.sightings if checked.sighting_of}
        owned = self._indicator_pks(refs)
        missing = refs - set(owned)
        elsewhere = self._visible_elsewhere(missing)
        items = []
        for checked in self.sightings:
            indicator_pk = owned.get(checked.sighting_of) or elsewhere.get(checked.sighting_of)
            if indicator_pk is None or checked.first_seen is None or checked.last_seen is None:
                continue
            items.append(
                SightingInput(
                    indicator_id=indicator_pk,
                    first_seen=checked.first_seen,
                    last_seen=checked.last_seen,
                    count=checked.count,
                    source=checked.stix_id,
                )
            )
        self.counts["sightings"] = len(items)
        self.outcome.alerts += len(
            record_sightings(actor=self.actor, organisation=self.organisation, sightings=items)
        )

    def _visible_elsewhere(self, refs: set[str]) -> dict[str, int]:
        """Indicators of other organisations this actor may see, by STIX id: a sighting of one counts."""
        wanted = {uuid.UUID(ref.split("--", 1)[1]): ref for ref in refs if stix.id_type(ref)}
        if not wanted:
            return {}
        rows = Indicator.objects.restrict(self.actor, "view").filter(stix_id__in=list(wanted))
        return {wanted[stix_id]: pk for pk, stix_id in rows.values_list("pk", "stix_id")}
