"""Reports, incidents, escalations up the CERT tiers, the staged statutory reports, and one timeline."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from certnet.core.roles import Role
from certnet.core.tlp import TLP
from certnet.core.visibility import ActionRule, RestrictedManager, VisibilitySpec

# Reporting organisations file reports; the CERTs above them triage and handle. A CERT's own
# incident (its own systems affected) is in its own queue: it triages and handles that one itself.
REPORT_ACTIONS = {
    "change": ActionRule(own=Role.ANALYST, chain=Role.HANDLER),
    "triage": ActionRule(own=None, chain=Role.HANDLER, cert_itself=Role.HANDLER),
    "delete": ActionRule(own=None, chain=Role.ADMIN),
    "share": ActionRule(own=Role.ANALYST, chain=Role.HANDLER),
}
INCIDENT_ACTIONS = {
    "change": ActionRule(own=Role.ANALYST, chain=Role.HANDLER),
    # status, assignment, escalation
    "handle": ActionRule(own=None, chain=Role.HANDLER, cert_itself=Role.HANDLER),
    # Statutory stage reports are the affected organisation's own duty, not its CERT's.
    "file_stage": ActionRule(own=Role.ANALYST, chain=None, platform_admins=False),
    "delete": ActionRule(own=None, chain=Role.ADMIN),
    "share": ActionRule(own=Role.ANALYST, chain=Role.HANDLER),
}


class Channel(models.TextChoices):
    WEB = "web", "Web form"
    API = "api", "API"
    EMAIL = "email", "E-mail"
    FEED = "feed", "Security feed"


class ReportStatus(models.TextChoices):
    NEW = "new", "New"
    TRIAGED = "triaged", "Triaged into an incident"
    MERGED = "merged", "Merged into an incident"
    REJECTED = "rejected", "Rejected"


class Report(models.Model):
    """What a constituent or CII operator tells its CERT. Triage turns it into, or adds it to, an incident."""

    channel = models.CharField(max_length=8, choices=Channel.choices)
    reporting_organisation = models.ForeignKey(
        "registry.Organisation", on_delete=models.PROTECT, related_name="reports_filed"
    )
    affected_organisation = models.ForeignKey(
        "registry.Organisation", on_delete=models.PROTECT, related_name="reports_affecting"
    )
    cii_system = models.ForeignKey(
        "registry.CIISystem", on_delete=models.PROTECT, null=True, blank=True, related_name="reports"
    )
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    title = models.CharField(max_length=200)
    description = models.TextField()
    classification_taxonomy = models.CharField(max_length=40, blank=True)
    classification_type = models.CharField(max_length=60, blank=True)
    severity = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(5)]
    )
    aware_at = models.DateTimeField()
    detected_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField()
    tlp = models.CharField(max_length=16, choices=TLP.choices, default=TLP.AMBER)
    status = models.CharField(max_length=10, choices=ReportStatus.choices, default=ReportStatus.NEW)
    incident = models.ForeignKey(
        "Incident", on_delete=models.PROTECT, null=True, blank=True, related_name="reports"
    )
    named_users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    # The handling CERT's own service levels (data/reporting_profiles.yaml, service_levels) are met
    # when it first acknowledges the report, and when it first responds on the report or its incident.
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    first_response_at = models.DateTimeField(null=True, blank=True)
    # When the handling CERT was told of the report; empty until the announcing job has run
    # (certnet.incidents.services.announcements), which takes every report still waiting.
    announced_at = models.DateTimeField(null=True, blank=True)

    objects = RestrictedManager()
    visibility = VisibilitySpec(
        owner="affected_organisation",
        author="submitted_by",
        named_users="named_users",
        actions=REPORT_ACTIONS,
    )

    class Meta:
        ordering = ["-received_at"]
        indexes = [
            models.Index(fields=["status", "received_at"]),
            models.Index(
                fields=["id"], condition=models.Q(announced_at__isnull=True), name="report_unannounced_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"R-{self.pk}: {self.title}"


class IncidentStatus(models.TextChoices):
    TRIAGED = "triaged", "Triaged"
    IN_PROGRESS = "in-progress", "In progress"
    CONTAINED = "contained", "Contained"
    RESOLVED = "resolved", "Resolved"
    CLOSED = "closed", "Closed"
    MERGED = "merged", "Merged"
    REJECTED = "rejected", "Rejected"


class Incident(models.Model):
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    classification_taxonomy = models.CharField(max_length=40)
    classification_type = models.CharField(max_length=60)
    severity = models.PositiveSmallIntegerField(validators=[MinValueValidator(0), MaxValueValidator(5)])
    tlp = models.CharField(max_length=16, choices=TLP.choices, default=TLP.AMBER)
    status = models.CharField(
        max_length=12, choices=IncidentStatus.choices, default=IncidentStatus.TRIAGED, db_index=True
    )
    affected_organisation = models.ForeignKey(
        "registry.Organisation", on_delete=models.PROTECT, related_name="incidents"
    )
    involved_organisations = models.ManyToManyField(
        "registry.Organisation",
        blank=True,
        related_name="incidents_involved",
        help_text="other affected organisations and their handling CERTs; they see the incident",
    )
    cii_system = models.ForeignKey(
        "registry.CIISystem", on_delete=models.PROTECT, null=True, blank=True, related_name="incidents"
    )
    handling_cert = models.ForeignKey(
        "registry.Organisation", on_delete=models.PROTECT, related_name="incidents_handled"
    )
    escalated_to = models.ForeignKey(
        "registry.Organisation",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="incidents_escalated",
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    named_users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    reporting_profile = models.CharField(max_length=40)
    peca_sections = models.JSONField(default=list, help_text="a hint for referral, never a legal finding")
    aware_at = models.DateTimeField()
    detected_at = models.DateTimeField(null=True, blank=True)
    classified_at = models.DateTimeField()
    created_at = models.DateTimeField()
    merged_into = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    # The earliest unmet statutory deadline, kept by the services so queues sort by urgency in SQL.
    next_deadline_at = models.DateTimeField(null=True, blank=True, db_index=True)

    objects = RestrictedManager()
    visibility = VisibilitySpec(
        owner="affected_organisation",
        author="created_by",
        named_users="named_users",
        shared_with="involved_organisations",
        actions=INCIDENT_ACTIONS,
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["handling_cert", "status"]),
            models.Index(fields=["escalated_to", "status"]),
            models.Index(fields=["severity"]),
            # The open queue in queue order, carrying the columns the visibility rules test, so open
            # and overdue pages and their counters read this small index alone (6 MB at a million
            # incidents, of which some 80,000 open). Key columns, not INCLUDE, so SQLite takes it too.
            models.Index(
                fields=[
                    "next_deadline_at",
                    "-severity",
                    "-created_at",
                    "-id",
                    "tlp",
                    "affected_organisation",
                    "created_by",
                ],
                name="incident_open_queue_idx",
                condition=models.Q(status__in=["triaged", "in-progress", "contained"]),
            ),
        ]

    def __str__(self) -> str:
        return f"INC-{self.pk}: {self.title}"

    @property
    def reference(self) -> str:
        return f"INC-{self.pk}"


class Escalation(models.Model):
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="escalations")
    direction = models.CharField(max_length=4, choices=[("up", "Escalated"), ("down", "De-escalated")])
    from_cert = models.ForeignKey("registry.Organisation", on_delete=models.PROTECT, related_name="+")
    to_cert = models.ForeignKey("registry.Organisation", on_delete=models.PROTECT, related_name="+")
    rule = models.CharField(max_length=20)  # severity | cii | cross-cert | manual
    reason = models.TextField()
    actor_label = models.CharField(max_length=200)
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.direction} {self.from_cert_id} → {self.to_cert_id} ({self.rule})"


class StageReport(models.Model):
    """A staged statutory report (early warning, notification, final …) filed by the affected organisation."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="stage_reports")
    stage = models.CharField(max_length=40)
    submitted_at = models.DateTimeField()
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    content = models.JSONField(default=dict)

    class Meta:
        ordering = ["submitted_at"]
        constraints = [
            models.UniqueConstraint(fields=["incident", "stage"], name="stagereport_once_per_stage")
        ]

    def __str__(self) -> str:
        return f"{self.stage} for {self.incident_id}"


class TimelineEvent(models.Model):
    """Everything that happened to an incident, in one place, for the people who may see it."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="timeline")
    at = models.DateTimeField()
    actor_label = models.CharField(max_length=200)
    kind = models.CharField(max_length=30)
    summary = models.CharField(max_length=300)
    data = models.JSONField(default=dict)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.kind}"


# Tasks, comments, evidence, referrals, mail intake and clock alerts live in their own module.
from certnet.incidents.models_handling import (  # noqa: E402
    ClockAlert,
    Comment,
    CustodyEntry,
    Evidence,
    EvidencePackage,
    InboundMail,
    InboundMailStatus,
    Referral,
    Task,
)

__all__ = [
    "ClockAlert",
    "Comment",
    "CustodyEntry",
    "Evidence",
    "EvidencePackage",
    "InboundMail",
    "InboundMailStatus",
    "Referral",
    "Task",
]
