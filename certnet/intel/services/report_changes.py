"""Changing a published intel report: its wording, tags, TLP, audience and indicators.

The rules are publishing's, applied to the report as it will stand after the change, so a change can
never reach further than a fresh publication could: TLP is raised by anyone who may change the report
and lowered only by its owner; the TLP must be one the audience admits; every indicator added needs
the share right, and one stricter than the report is lowered only by its owner. What was shared stays
shared: removing an indicator or narrowing the audience takes the report away from nobody who already
received it, so the audit entry names what was removed and who had been reached. A report shared
beyond its owner is placed again in its audience's TAXII collections (as a new version; objects that
did not change are not repeated)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

from django.db import transaction

from certnet.accounts.models import User
from certnet.core import audit, clock
from certnet.core.errors import FieldError, Forbidden, InvalidInput, NotFound
from certnet.core.tlp import TLP
from certnet.core.visibility import may_lower_tlp, require
from certnet.intel.models import Audience, IntelReport
from certnet.intel.services.indicators import normalised_tags, tags_named
from certnet.intel.services.reports import (
    AUDIENCE_TLPS,
    ReportInput,
    announce_report,
    audience_organisations,
    check_report_indicators,
    refuse_if_any,
    share_indicators,
)


@dataclass
class ReportChange:
    """Fields left None stay as they are. `sectors`, `provinces` and `organisations` are read with
    `audience` (the one it names); `add_indicators` and `remove_indicators` are indicator ids."""

    title: str | None = None
    summary: str | None = None
    tags: Sequence[str] | None = None
    tlp: str | None = None
    audience: str | None = None
    sectors: Sequence[str] = ()
    provinces: Sequence[str] = ()
    organisations: Sequence[str] = ()
    add_indicators: Sequence[int] = ()
    remove_indicators: Sequence[int] = ()

    def named_fields(self) -> list[str]:
        # None leaves a field alone; an empty list of tags clears them, but an empty list of
        # indicators to add or of sectors names nothing.
        return sorted(
            f.name
            for f in fields(self)
            if (getattr(self, f.name) is not None if f.default is None else bool(getattr(self, f.name)))
        )


@transaction.atomic
def change_intel_report(*, actor: User, report_id: int, change: ReportChange) -> IntelReport:
    """Apply a change to a report. All or nothing: every problem is named and nothing changes."""
    report = IntelReport.objects.select_for_update().select_related("owner").filter(pk=report_id).first()
    if report is None:
        raise NotFound(f"no intel report {report_id}")
    require(actor, "change", report, label=f"intel report {report_id}")
    if not change.named_fields():
        raise InvalidInput("the change names nothing to change", errors=[FieldError("body", "is empty")])
    errors: list[FieldError] = []
    if change.title is not None and not change.title.strip():
        errors.append(FieldError("title", "a report needs a title"))
    tlp = TLP(report.tlp)
    if change.tlp is not None:
        try:
            tlp = TLP.parse(change.tlp)
        except ValueError as exc:
            errors.append(FieldError("tlp", str(exc)))
    lowering = TLP(report.tlp).is_stricter_than(tlp)
    if lowering and not may_lower_tlp(actor, report):
        raise Forbidden(f"only {report.owner.slug} may lower the TLP of intel report {report_id}")
    audience = Audience(report.audience)
    if change.audience is not None:
        try:
            audience = Audience(change.audience)
        except ValueError:
            errors.append(
                FieldError("audience", f"{change.audience!r} is not one of {', '.join(Audience.values)}")
            )
    if tlp not in AUDIENCE_TLPS[audience]:
        allowed = " or ".join(sorted(t.label for t in AUDIENCE_TLPS[audience]))
        errors.append(
            FieldError("tlp", f"an audience of {audience.value} is published at {allowed}, not {tlp.label}")
        )
    before_ids = list(report.indicators.order_by("pk").values_list("pk", flat=True))
    held = frozenset(before_ids)  # a report may hold 100,000 indicators: membership by set, not list
    recipients_before = sorted(report.shared_with.values_list("slug", flat=True))
    unknown_removals = sorted(set(change.remove_indicators) - held)
    if unknown_removals:
        errors.append(
            FieldError("remove_indicators", f"indicator {unknown_removals[0]} is not in this report")
        )
    removed = set(change.remove_indicators)
    wanted = [pk for pk in before_ids if pk not in removed] + [
        pk for pk in change.add_indicators if pk not in held
    ]
    spec = ReportInput(
        owner=report.owner.slug,
        title=change.title or report.title,
        tlp=tlp.value,
        audience=audience.value,
        sectors=change.sectors if change.audience is not None else report.sectors,
        provinces=change.provinces if change.audience is not None else report.provinces,
        organisations=(change.organisations if change.audience is not None else recipients_before),
        indicators=wanted,
    )
    recipients = audience_organisations(spec, audience, errors)
    indicators, to_lower = check_report_indicators(
        actor, spec, tlp, errors, unchecked=frozenset() if lowering else held
    )
    tags = normalised_tags(change.tags or (), errors)
    refuse_if_any(errors, "nothing changed")
    before = {
        "title": report.title,
        "tlp": report.tlp,
        "audience": report.audience,
        "recipients": recipients_before,
    }
    now = clock.now()
    if change.title is not None:
        report.title = change.title.strip()[:250]
    if change.summary is not None:
        report.summary = change.summary
    report.tlp = tlp
    report.audience = audience
    report.sectors = sorted(set(spec.sectors)) if audience == Audience.SECTORS else []
    report.provinces = sorted(set(spec.provinces)) if audience == Audience.PROVINCES else []
    report.updated_at = now
    report.save()
    report.indicators.set(indicators)
    report.shared_with.set(recipients)
    if change.tags is not None:
        report.tags.set(tags_named(tags))
    lowered = share_indicators(indicators, to_lower, tlp, recipients, now)
    audit.record(
        actor=actor,
        action="intel.report.change",
        target=report,
        organisation_id=report.owner_id,
        data={
            "fields": change.named_fields(),
            "before": before,
            "after": {
                "title": report.title,
                "tlp": report.tlp,
                "audience": audience.value,
                "recipients": sorted(org.slug for org in recipients),
            },
            "added": [i.pk for i in indicators if i.pk not in held],
            "removed": sorted(removed),
            "lowered": lowered,
        },
    )
    announce_report(actor, report)
    return report
