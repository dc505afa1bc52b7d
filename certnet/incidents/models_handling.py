"""The working records around an incident: tasks and comments, evidence with its chain of custody,
referrals to the investigating agency, mail received by a CERT's intake, and the clock alerts
already raised (so each goes out once)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from certnet.core.roles import Role
from certnet.core.tlp import TLP
from certnet.core.visibility import ActionRule, RestrictedManager, VisibilitySpec


class Task(models.Model):
    incident = models.ForeignKey("incidents.Incident", on_delete=models.CASCADE, related_name="tasks")
    title = models.CharField(max_length=200)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    due_at = models.DateTimeField(null=True, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.title


class Comment(models.Model):
    incident = models.ForeignKey("incidents.Incident", on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    body = models.TextField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"comment {self.pk} on {self.incident_id}"


class EvidenceSource(models.TextChoices):
    UPLOAD = "upload", "Uploaded"
    API = "api", "Attached through the API"
    EMAIL = "email", "E-mail attachment"


class Evidence(models.Model):
    """A file held as evidence. The bytes live in the evidence storage under `storage_key`; the
    SHA-256 taken on receipt is what every later check compares against. Who may read it is decided
    by the record it belongs to: the incident, else the report, else the intake message."""

    incident = models.ForeignKey(
        "incidents.Incident", on_delete=models.PROTECT, null=True, blank=True, related_name="evidence"
    )
    report = models.ForeignKey(
        "incidents.Report", on_delete=models.PROTECT, null=True, blank=True, related_name="evidence"
    )
    inbound_mail = models.ForeignKey(
        "incidents.InboundMail", on_delete=models.PROTECT, null=True, blank=True, related_name="attachments"
    )
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=120, default="application/octet-stream")
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64, db_index=True)
    storage_key = models.CharField(max_length=300, unique=True)
    source = models.CharField(max_length=8, choices=EvidenceSource.choices)
    description = models.CharField(max_length=300, blank=True)
    received_at = models.DateTimeField()
    received_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["received_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(incident__isnull=False) | Q(report__isnull=False) | Q(inbound_mail__isnull=False),
                name="evidence_belongs_somewhere",
            )
        ]

    def __str__(self) -> str:
        return f"{self.filename} ({self.sha256[:12]})"


class CustodyAction(models.TextChoices):
    RECEIVED = "received", "Received"
    ATTACHED = "attached", "Attached to an incident"
    DOWNLOADED = "downloaded", "Downloaded"
    EXPORTED = "exported", "Exported in an evidence package"
    VERIFIED = "verified", "Hash verified"


class CustodyEntry(models.Model):
    """Chain of custody: every receipt, access, download and export of one evidence file."""

    evidence = models.ForeignKey(Evidence, on_delete=models.PROTECT, related_name="custody")
    at = models.DateTimeField()
    actor_label = models.CharField(max_length=200)
    action = models.CharField(max_length=12, choices=CustodyAction.choices)
    detail = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.action} {self.evidence_id}"


class Referral(models.Model):
    """A referral of an incident to the investigating agency (PECA-2016 s. 29)."""

    incident = models.ForeignKey("incidents.Incident", on_delete=models.PROTECT, related_name="referrals")
    agency = models.ForeignKey("registry.Organisation", on_delete=models.PROTECT, related_name="+")
    case_number = models.CharField(max_length=80, blank=True)
    sections = models.JSONField(default=list)
    note = models.TextField(blank=True)
    referred_at = models.DateTimeField()
    referred_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["referred_at", "id"]

    def __str__(self) -> str:
        return f"referral {self.pk} of {self.incident_id} to {self.agency_id}"


class EvidencePackage(models.Model):
    """An exported evidence package. Its manifest's SHA-256 is also in the audit log."""

    incident = models.ForeignKey("incidents.Incident", on_delete=models.PROTECT, related_name="packages")
    referral = models.ForeignKey(
        Referral, on_delete=models.PROTECT, null=True, blank=True, related_name="packages"
    )
    manifest_sha256 = models.CharField(max_length=64, unique=True)
    file_count = models.PositiveIntegerField()
    total_bytes = models.BigIntegerField()
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"package {self.manifest_sha256[:12]} of {self.incident_id}"


class InboundMailStatus(models.TextChoices):
    PENDING = "pending", "Waiting for triage (sender not recognised)"
    REPORTED = "reported", "Became a report"
    DISCARDED = "discarded", "Discarded"


MAIL_ACTIONS = {
    # The CERT that owns the mailbox sorts what arrived in it; the CERTs above may help.
    "triage": ActionRule(own=Role.HANDLER, chain=Role.MANAGER),
    "change": ActionRule(own=Role.HANDLER, chain=Role.MANAGER),
    "delete": ActionRule(own=None, chain=Role.ADMIN),
    "share": ActionRule(own=Role.HANDLER, chain=Role.MANAGER),
}


class InboundMail(models.Model):
    """One message received by a CERT's intake (SMTP or an imported .eml). Kept whole: the raw
    message is stored beside the evidence, and `message_key` makes a second delivery a no-op."""

    # SHA-256 of the Message-ID and the From address, else of the bytes (services.mail.message_key)
    message_key = models.CharField(max_length=64, unique=True)
    message_id = models.TextField(blank=True)
    mailbox_cert = models.ForeignKey("registry.Organisation", on_delete=models.PROTECT, related_name="+")
    envelope_from = models.CharField(max_length=320, blank=True)
    header_from = models.CharField(max_length=320, blank=True)
    recipients = models.JSONField(default=list)
    subject = models.CharField(max_length=300, blank=True)
    body = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField()
    raw_sha256 = models.CharField(max_length=64)
    raw_storage_key = models.CharField(max_length=300)
    raw_size = models.BigIntegerField()
    tlp = models.CharField(max_length=16, choices=TLP.choices, default=TLP.AMBER)
    status = models.CharField(
        max_length=10, choices=InboundMailStatus.choices, default=InboundMailStatus.PENDING, db_index=True
    )
    sender_organisation = models.ForeignKey(
        "registry.Organisation", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    report = models.OneToOneField(
        "incidents.Report", on_delete=models.PROTECT, null=True, blank=True, related_name="inbound_mail"
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)

    objects = RestrictedManager()
    visibility = VisibilitySpec(owner="mailbox_cert", actions=MAIL_ACTIONS)

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"mail {self.pk} from {self.header_from or self.envelope_from}: {self.subject}"


class ClockKind(models.TextChoices):
    DUE_SOON = "due-soon", "Coming due"
    OVERDUE = "overdue", "Overdue"


class ClockAlert(models.Model):
    """A deadline alert already raised, so the background sweep raises each one exactly once.
    `subject` is "incident:<id>" for statutory stages or "report:<id>" for service levels."""

    subject = models.CharField(max_length=40)
    incident = models.ForeignKey(
        "incidents.Incident", on_delete=models.CASCADE, null=True, blank=True, related_name="clock_alerts"
    )
    report = models.ForeignKey(
        "incidents.Report", on_delete=models.CASCADE, null=True, blank=True, related_name="clock_alerts"
    )
    clock = models.CharField(max_length=60)  # a stage slug, or "sla:<slug>"
    kind = models.CharField(max_length=10, choices=ClockKind.choices)
    due_at = models.DateTimeField()
    raised_at = models.DateTimeField()

    class Meta:
        ordering = ["raised_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["subject", "clock", "kind", "due_at"], name="clockalert_once"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.clock} on {self.subject}"
