"""Publishing intel reports: a set of indicators shared with an audience at one TLP.

Publishing is an act of sharing, judged through certnet.core.visibility like any other: the publisher
needs the share right on every indicator; an indicator stricter than the report is lowered only when
the publisher may lower it (its owner); at AMBER the audience's organisations are added to each
indicator's sharing, at GREEN or CLEAR the indicators already reach the whole community."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from certnet.accounts.models import User
from certnet.core import audit, clock
from certnet.core.errors import FieldError, InvalidInput
from certnet.core.tlp import TLP
from certnet.core.visibility import LOWER_TLP
from certnet.intel.models import Audience, Indicator, IntelReport, StixObject
from certnet.intel.selectors.exports import stix_objects
from certnet.intel.services.indicators import normalised_tags, organisation_acting_for, tags_named
from certnet.intel.signals import report_published
from certnet.registry.models import Organisation

MAX_INDICATORS = 100_000
# What each audience admits: the whole community is reached at CLEAR or GREEN; named parts of it at
# AMBER or AMBER+STRICT; RED is for named people, who are named on indicators, not reports.
AUDIENCE_TLPS = {
    Audience.OWNER: {TLP.AMBER, TLP.AMBER_STRICT},
    Audience.COMMUNITY: {TLP.CLEAR, TLP.GREEN},
    Audience.SECTORS: {TLP.AMBER, TLP.AMBER_STRICT},
    Audience.PROVINCES: {TLP.AMBER, TLP.AMBER_STRICT},
    Audience.ORGANISATIONS: {TLP.AMBER, TLP.AMBER_STRICT},
}


@dataclass
class ReportInput:
    owner: str
    title: str
    tlp: str
    audience: str
    summary: str = ""
    sectors: Sequence[str] = ()
    provinces: Sequence[str] = ()
    organisations: Sequence[str] = ()
    indicators: Sequence[int] = ()
    stix_objects: Sequence[int] = ()
    tags: Sequence[str] = ()
    stix_id: uuid.UUID | None = None
    published_at: Any = None  # a datetime kept from an imported report; now otherwise
    extras: dict[str, Any] = field(default_factory=dict)


def audience_organisations(
    spec: ReportInput, audience: Audience, errors: list[FieldError]
) -> list[Organisation]:
    def named(field_name: str, values: Sequence[str], lookup: str) -> list[Organisation]:
        if not values:
            errors.append(FieldError(field_name, f"an audience of {audience.value} names at least one"))
            return []
        found = list(Organisation.objects.filter(**{f"{lookup}__in": list(values)}).order_by("slug"))
        present = {getattr(org, lookup) for org in found}
        for value in values:
            if value not in present:
                errors.append(FieldError(field_name, f"no organisation has {lookup} {value!r}"))
        return found

    if audience == Audience.SECTORS:
        return named("sectors", spec.sectors, "sector")
    if audience == Audience.PROVINCES:
        return named("provinces", spec.provinces, "province")
    if audience == Audience.ORGANISATIONS:
        return named("organisations", spec.organisations, "slug")
    return []


def check_report_indicators(
    actor: User,
    spec: ReportInput,
    tlp: TLP | None,
    errors: list[FieldError],
    *,
    unchecked: frozenset[int] = frozenset(),
) -> tuple[list[Indicator], list[Indicator]]:
    """The report's indicators, and those of them that must be lowered to the report's TLP.
    `unchecked`: ids already in a report whose TLP is not being lowered. They stay as they are, even
    where the actor could no longer share them (their owner may have raised one since)."""
    if len(spec.indicators) > MAX_INDICATORS:
        errors.append(
            FieldError("indicators", f"{len(spec.indicators)} indicators; the limit is {MAX_INDICATORS}")
        )
        return [], []
    wanted = list(dict.fromkeys(spec.indicators))
    kept = {
        indicator.pk: indicator
        for start in range(0, len(wanted), 2000)
        for indicator in Indicator.objects.filter(
            pk__in=[pk for pk in wanted[start : start + 2000] if pk in unchecked]
        )
    }
    found = _ids_allowed(actor, "view", [pk for pk in wanted if pk not in kept])
    shareable = _ids_allowed(actor, "share", list(found))
    lowerable = _ids_allowed(actor, LOWER_TLP, [pk for pk in shareable if _stricter(found[pk], tlp)])
    chosen: list[Indicator] = []
    to_lower: list[Indicator] = []
    for position, indicator_id in enumerate(wanted):
        if indicator_id in kept:
            chosen.append(kept[indicator_id])
            continue
        indicator = found.get(indicator_id)
        where = f"indicators[{position}]"
        if indicator is None:
            errors.append(FieldError(where, f"no indicator {indicator_id}"))
            continue
        if indicator_id not in shareable:
            errors.append(FieldError(where, f"you may not share indicator {indicator_id} ({indicator})"))
            continue
        chosen.append(indicator)
        if tlp is not None and _stricter(indicator, tlp):
            if indicator_id not in lowerable:
                errors.append(
                    FieldError(
                        where,
                        f"indicator {indicator_id} is {TLP(indicator.tlp).label}; only its owner "
                        f"{indicator.owner.slug} may lower it to {tlp.label}",
                    )
                )
            else:
                to_lower.append(indicator)
    return chosen, to_lower


def _stricter(indicator: Indicator, tlp: TLP | None) -> bool:
    return tlp is not None and TLP(indicator.tlp).is_stricter_than(tlp)


def _ids_allowed(actor: User, action: str, ids: list[int]) -> dict[int, Indicator]:
    """The indicators among `ids` the actor may act on, judged in SQL a chunk at a time (a report may
    name tens of thousands)."""
    return {
        indicator.pk: indicator
        for start in range(0, len(ids), 2000)
        for indicator in Indicator.objects.restrict(actor, action)
        .filter(pk__in=ids[start : start + 2000])
        .select_related("owner")
    }


@transaction.atomic
def publish_intel_report(*, actor: User, spec: ReportInput) -> IntelReport:
    """Publish indicators to an audience. All or nothing: every problem is named and nothing changes."""
    owner = organisation_acting_for(actor, spec.owner, doing="publish intel reports")
    errors: list[FieldError] = []
    if not spec.title.strip():
        errors.append(FieldError("title", "a report needs a title"))
    try:
        tlp: TLP | None = TLP.parse(spec.tlp)
    except ValueError as exc:
        errors.append(FieldError("tlp", str(exc)))
        tlp = None
    try:
        audience: Audience | None = Audience(spec.audience)
    except ValueError:
        errors.append(FieldError("audience", f"{spec.audience!r} is not one of {', '.join(Audience.values)}"))
        audience = None
    if audience is not None and tlp is not None and tlp not in AUDIENCE_TLPS[audience]:
        allowed = " or ".join(sorted(t.label for t in AUDIENCE_TLPS[audience]))
        errors.append(
            FieldError("tlp", f"an audience of {audience.value} is published at {allowed}, not {tlp.label}")
        )
    recipients = audience_organisations(spec, audience, errors) if audience else []
    indicators, to_lower = check_report_indicators(actor, spec, tlp, errors)
    kept = list(StixObject.objects.restrict(actor, "view").filter(pk__in=list(spec.stix_objects)))
    missing = sorted(set(spec.stix_objects) - {k.pk for k in kept})
    if missing:
        errors.append(FieldError("stix_objects", f"no kept STIX object {missing[0]}"))
    tags = normalised_tags(spec.tags, errors)
    refuse_if_any(errors, "nothing published")
    if tlp is None or audience is None:  # both were reported among the errors above
        raise AssertionError("unreachable")
    now = clock.now()
    report = IntelReport.objects.create(
        stix_id=spec.stix_id or uuid.uuid4(),
        title=spec.title.strip()[:250],
        summary=spec.summary,
        owner=owner,
        created_by=actor,
        tlp=tlp,
        audience=audience,
        sectors=sorted(set(spec.sectors)) if audience == Audience.SECTORS else [],
        provinces=sorted(set(spec.provinces)) if audience == Audience.PROVINCES else [],
        extras=spec.extras,
        published_at=spec.published_at or now,
        updated_at=now,
    )
    report.indicators.set(indicators)
    report.stix_objects.set(kept)
    report.shared_with.set(recipients)
    if tags:
        report.tags.set(tags_named(tags))
    lowered = share_indicators(indicators, to_lower, tlp, recipients, now)
    audit.record(
        actor=actor,
        action="intel.report.publish",
        target=report,
        organisation_id=owner.pk,
        data={
            "title": report.title,
            "tlp": report.tlp,
            "audience": audience.value,
            "recipients": [org.slug for org in recipients],
            "indicators": [indicator.pk for indicator in indicators],
            "lowered": lowered,
        },
    )
    announce_report(actor, report)
    return report


def refuse_if_any(errors: list[FieldError], outcome: str) -> None:
    """All or nothing: every problem found is named, and `outcome` says what did not happen."""
    if errors:
        raise InvalidInput(
            f"{len(errors)} problem(s), {outcome}: " + "; ".join(str(e) for e in errors[:20]),
            errors=errors,
        )


def announce_report(actor: User, report: IntelReport) -> None:
    """Tell the report's audience (its TAXII collections) what it holds now. A report kept to its
    owner is announced to nobody until it is shared; announcing again after a change adds only the
    objects whose version is new."""
    if report.audience != Audience.OWNER:
        objects = stix_objects(actor, Indicator.objects.filter(intel_reports=report), report=report)
        report_published.send(sender=IntelReport, report=report, objects=objects, actor=actor)


def share_indicators(
    indicators: list[Indicator], to_lower: list[Indicator], tlp: TLP, recipients: list[Organisation], now: Any
) -> list[int]:
    """Lower the indicators the owner agreed to lower by publishing, and share the rest with the
    audience. Returns the ids lowered (the audit entry names them)."""
    for indicator in to_lower:
        indicator.tlp = tlp
        indicator.updated_at = now
    if to_lower:
        Indicator.objects.bulk_update(to_lower, ["tlp", "updated_at"], batch_size=1000)
    share_with_audience(indicators, tlp, [org.pk for org in recipients])
    return [indicator.pk for indicator in to_lower]


def share_with_audience(indicators: Sequence[Indicator], tlp: TLP, organisation_ids: Sequence[int]) -> None:
    """Add the audience's organisations to the indicators' sharing. Only AMBER and AMBER+STRICT name
    their audience: at GREEN or CLEAR the whole community sees the indicators already."""
    if not organisation_ids or tlp not in (TLP.AMBER, TLP.AMBER_STRICT):
        return
    through = Indicator.shared_with.through
    rows = [through(indicator_id=i.pk, organisation_id=org) for i in indicators for org in organisation_ids]
    through.objects.bulk_create(rows, batch_size=2000, ignore_conflicts=True)
