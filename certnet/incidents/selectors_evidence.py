"""Reads of evidence, custody, referrals and exported packages, always through visibility.

An evidence file is read by whoever sees in full a record it belongs to: its incident; its report, and
the incident that report became part of; its intake message, the report made of it and that report's
incident. So a report's files show on the incident once the report is triaged or merged, without
moving them, and the people who saw the report keep seeing what they saw. One exception: a report
marked stricter than its incident (a TLP:RED report merged into an AMBER incident) keeps its files to
its own readers; the incident's wider audience does not inherit them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import models
from django.db.models import Count, Q, QuerySet

from certnet.core.errors import Forbidden, NotFound
from certnet.core.models import AuditEntry
from certnet.core.tlp import TLP
from certnet.core.visibility import can
from certnet.incidents.models import CustodyEntry, Evidence, EvidencePackage, Incident, Referral, Report
from certnet.registry.models import Organisation, OrganisationKind

if TYPE_CHECKING:
    from certnet.core.visibility import UserLike

PACKAGE_AUDIT_ACTION = "incidents.evidence.package"


def _with_custody_counts(queryset: QuerySet[Evidence]) -> QuerySet[Evidence]:
    return queryset.select_related("received_by").annotate(custody_count=Count("custody"))


def _labels_up_to(tlp: str) -> list[str]:
    rank = TLP(tlp).rank
    return [label.value for label in TLP if label.rank <= rank]


def evidence_of_incident(incident: Incident, viewer: UserLike | None) -> QuerySet[Evidence]:
    """The incident's own files and those of its reports (and of the mail those reports came from),
    for a viewer the caller has established sees the incident in full."""
    within = _labels_up_to(incident.tlp)
    readable = Report.objects.restrict(viewer, "view").filter(incident=incident).values("pk")
    via_report = Q(report__incident=incident) & (Q(report__tlp__in=within) | Q(report__in=readable))
    via_mail = Q(inbound_mail__report__incident=incident) & (
        Q(inbound_mail__report__tlp__in=within) | Q(inbound_mail__report__in=readable)
    )
    belongs = Q(incident=incident) | via_report | via_mail
    return _with_custody_counts(Evidence.objects.filter(belongs)).order_by("received_at", "id")


def _readers_records(evidence: Evidence) -> list[models.Model]:
    records: list[models.Model] = []
    if evidence.incident is not None:
        records.append(evidence.incident)
    report = evidence.report
    mail = evidence.inbound_mail
    if mail is not None:
        report = report or mail.report
        # Once the mail became a report stricter than the intake record (a TLP:RED report naming its
        # readers), the report's readers decide, not the mailbox's.
        if report is None or not TLP(report.tlp).is_stricter_than(TLP(mail.tlp)):
            records.append(mail)
    if report is not None:
        records.append(report)
        incident = report.incident
        if incident is not None and not TLP(report.tlp).is_stricter_than(TLP(incident.tlp)):
            records.append(incident)
    return records


def access_evidence(user: UserLike | None, evidence_id: int) -> Evidence:
    """One evidence file for a reader: 404 (like a missing one) unless the user sees at least a stub
    of a record it belongs to; 403 if stubs are all they see; never the file otherwise."""
    evidence = (
        Evidence.objects.select_related(
            "received_by", "incident", "report__incident", "inbound_mail__report__incident"
        )
        .filter(pk=evidence_id)
        .first()
    )
    if evidence is None:
        raise NotFound(f"no evidence {evidence_id}")
    records = _readers_records(evidence)
    if any(can(user, "view", record) for record in records):
        return evidence
    if any(can(user, "view_stub", record) for record in records):
        raise Forbidden(f"you may not see evidence {evidence_id}: its record is restricted (TLP:RED)")
    raise NotFound(f"no evidence {evidence_id}")


def custody_of(evidence: Evidence | list[int]) -> QuerySet[CustodyEntry]:
    ids = evidence if isinstance(evidence, list) else [evidence.pk]
    return CustodyEntry.objects.filter(evidence_id__in=ids).order_by("at", "id")


def referrals_of(incident: Incident) -> QuerySet[Referral]:
    return incident.referrals.select_related("agency", "referred_by").order_by("referred_at", "id")


def packages_of(incident: Incident) -> QuerySet[EvidencePackage]:
    return incident.packages.select_related("referral__agency", "created_by").order_by("created_at", "id")


def investigating_agencies(user: UserLike | None) -> QuerySet[Organisation]:
    """The registry's law-enforcement bodies an incident can be referred to (PECA-2016 s. 29)."""
    return (
        Organisation.objects.restrict(user, "view")
        .filter(kind=OrganisationKind.LAW_ENFORCEMENT)
        .order_by("slug")
    )


def package_with_manifest(manifest_sha256: str) -> EvidencePackage | None:
    return (
        EvidencePackage.objects.select_related("incident", "referral__agency", "created_by")
        .filter(manifest_sha256=manifest_sha256)
        .first()
    )


def audit_entry_for_manifest(manifest_sha256: str) -> AuditEntry | None:
    return (
        AuditEntry.objects.filter(action=PACKAGE_AUDIT_ACTION, data__manifest_sha256=manifest_sha256)
        .order_by("seq")
        .first()
    )
