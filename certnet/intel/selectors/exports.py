"""Visible sets of indicators as STIX 2.1 bundles: the indicators with their patterns, the
organisations behind them as identities, the TLP 2.0 marking definitions they carry, who saw them
(sightings), the objects kept with them (malware, relationships, ...) and, for an intel report, the
report itself. Everything here is read through visibility: an export holds only what its reader may
see."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from django.db.models import QuerySet

from certnet.core.errors import NotFound
from certnet.core.tlp import TLP
from certnet.intel import stix
from certnet.intel.models import Indicator, IntelReport, Sighting, StixObject
from certnet.registry.models import Organisation

if TYPE_CHECKING:
    from certnet.core.visibility import UserLike

CHUNK = 2000


def visible_reports(user: UserLike | None) -> QuerySet[IntelReport]:
    return IntelReport.objects.restrict(user, "view").select_related("owner", "created_by")


def access_report(user: UserLike | None, report_id: int) -> IntelReport:
    found = visible_reports(user).filter(pk=report_id).first()
    if found is None:
        raise NotFound(f"no intel report {report_id}")
    return found


def report_indicators(user: UserLike | None, report: IntelReport) -> QuerySet[Indicator]:
    """The report's indicators this reader may see (publishing shared them with the audience; one
    made stricter since is left out for readers it no longer admits)."""
    return Indicator.objects.restrict(user, "view").filter(intel_reports=report).select_related("owner")


def tag_names(indicator_ids: Iterable[int]) -> dict[int, list[str]]:
    through = Indicator.tags.through
    names: dict[int, list[str]] = defaultdict(list)
    ids = list(indicator_ids)
    for start in range(0, len(ids), CHUNK):
        rows = through.objects.filter(indicator_id__in=ids[start : start + CHUNK]).values_list(
            "indicator_id", "tag__name"
        )
        for indicator_id, name in rows:
            names[indicator_id].append(name)
    for found in names.values():
        found.sort()
    return names


def indicator_as_stix(indicator: Indicator, labels: list[str]) -> dict[str, Any]:
    return stix.indicator_object(
        stix_id=indicator.stix_id,
        kind=indicator.kind,
        value=indicator.value,
        name=indicator.name,
        description=indicator.description,
        created=indicator.created_at,
        modified=indicator.updated_at,
        valid_from=indicator.first_seen,
        valid_until=indicator.expires_at,
        confidence=indicator.confidence,
        labels=labels,
        indicator_types=indicator.indicator_types,
        made_by=indicator.made_by or stix.identity_id(indicator.owner.slug),
        tlp=TLP(indicator.tlp),
    )


def indicator_ref(indicator: Indicator) -> str:
    prefix = "vulnerability" if indicator.kind == "cve" else "indicator"
    return f"{prefix}--{indicator.stix_id}"


def stix_bundle(
    user: UserLike | None, indicators: QuerySet[Indicator], *, report: IntelReport | None = None
) -> dict[str, Any]:
    """A bundle of the given (already visible) indicators and what goes with them."""
    return stix.bundle(stix_objects(user, indicators, report=report))


def stix_objects(
    user: UserLike | None, indicators: QuerySet[Indicator], *, report: IntelReport | None = None
) -> list[dict[str, Any]]:
    chosen = list(indicators.select_related("owner").order_by("id"))
    labels = tag_names(indicator.pk for indicator in chosen)
    by_id: dict[str, dict[str, Any]] = {}
    organisations: dict[int, Organisation] = {}
    markings: set[TLP] = set()
    for indicator in chosen:
        body = indicator_as_stix(indicator, labels.get(indicator.pk, []))
        known = by_id.get(body["id"])
        # Two owners may hold the same imported id: the later version stands for both.
        if known is None or known["modified"] < body["modified"]:
            by_id[body["id"]] = body
        organisations[indicator.owner_id] = indicator.owner
        markings.add(TLP(indicator.tlp))
    refs = {indicator.pk: indicator_ref(indicator) for indicator in chosen}
    sightings = list(_sightings(refs, organisations))
    kept = _kept_objects(user, list(refs), report)
    made_by = {body.get("created_by_ref") for body in [*by_id.values(), *kept]}
    kept_ids = {body["id"] for body in kept}
    for body in kept:
        marked = stix.strictest_tlp(body.get("object_marking_refs", []))
        if marked is not None:
            markings.add(marked)
    extra_identities = _kept_identities(user, {ref for ref in made_by if ref} - kept_ids)
    objects: list[dict[str, Any]] = [stix.marking_definition(tlp) for tlp in sorted(markings, key=_rank)]
    own_identities = [
        stix.identity_object(org.slug, org.name, org.created_at)
        for org in sorted(organisations.values(), key=lambda org: org.slug)
    ]
    objects += _unique([*own_identities, *extra_identities])
    objects += list(by_id.values())
    objects += [body for body in kept if body["id"] not in by_id]
    objects += sightings
    if report is not None:
        objects.append(_report_body(report, [*by_id, *(b["id"] for b in kept)]))
    return _unique(objects)


def _rank(tlp: TLP) -> int:
    return tlp.rank


def _unique(objects: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[tuple[str, str]] = set()
    unique = []
    for body in objects:
        key = (body["id"], body.get("modified", ""))
        if key not in seen:
            seen.add(key)
            unique.append(body)
    return unique


def _sightings(refs: dict[int, str], organisations: dict[int, Organisation]) -> Iterator[dict[str, Any]]:
    """Who saw these indicators: shown to whoever may see the indicator, as on its page."""
    ids = list(refs)
    for start in range(0, len(ids), CHUNK):
        rows = (
            Sighting.objects.filter(indicator_id__in=ids[start : start + CHUNK])
            .select_related("organisation", "indicator")
            .order_by("id")
        )
        for sighting in rows:
            organisations.setdefault(sighting.organisation_id, sighting.organisation)
            yield stix.sighting_object(
                indicator_ref=refs[sighting.indicator_id],
                seer_slug=sighting.organisation.slug,
                first_seen=sighting.first_seen,
                last_seen=sighting.last_seen,
                count=sighting.count,
                tlp=TLP(sighting.indicator.tlp),
            )


def _kept_objects(user: UserLike | None, indicator_ids: list[int], report: IntelReport | None) -> list[Any]:
    """The newest version of each kept object linked to these indicators (or named by the report)
    that this reader may see."""
    visible = StixObject.objects.restrict(user, "view")
    found: dict[str, StixObject] = {}
    batches: list[QuerySet[StixObject]] = [
        visible.filter(indicators__in=indicator_ids[start : start + CHUNK])
        for start in range(0, len(indicator_ids), CHUNK)
    ]
    if report is not None:
        batches.append(visible.filter(intel_reports=report))
    for batch in batches:
        for kept in batch.distinct():
            known = found.get(kept.stix_id)
            if known is None or known.modified < kept.modified:
                found[kept.stix_id] = kept
    return [kept.body for kept in sorted(found.values(), key=lambda kept: kept.pk)]


def _kept_identities(user: UserLike | None, refs: set[str]) -> list[dict[str, Any]]:
    if not refs:
        return []
    rows = StixObject.objects.restrict(user, "view").filter(stix_id__in=refs).order_by("stix_id", "-modified")
    newest: dict[str, dict[str, Any]] = {}
    for kept in rows:
        newest.setdefault(kept.stix_id, kept.body)
    return list(newest.values())


def _report_body(report: IntelReport, refs: list[str]) -> dict[str, Any]:
    return stix.report_object(
        stix_id=report.stix_id,
        title=report.title,
        summary=report.summary,
        published=report.published_at,
        modified=report.updated_at,
        made_by=stix.identity_id(report.owner.slug),
        tlp=TLP(report.tlp),
        labels=sorted(report.tags.values_list("name", flat=True)),
        refs=refs,
    )
