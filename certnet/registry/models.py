"""The CERT network's registry: organisations, how they report to each other, what they hold, and
the network resources that make up each constituency. Everything that changes over time carries
effective dates so that "as of date D" questions can be answered from history."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models
from django.db.models import Q

from certnet.core.roles import Role
from certnet.core.tlp import TLP
from certnet.core.visibility import ActionRule, RestrictedManager, VisibilitySpec

# Organisation records are maintained by their own managers or by the managers of a CERT above.
REGISTRY_ACTIONS = {
    "change": ActionRule(own=Role.MANAGER, chain=Role.MANAGER),
    # Where a body sits in the hierarchy is decided above it: a body never moves itself.
    "move": ActionRule(own=None, chain=Role.MANAGER),
    "delete": ActionRule(own=None, chain=Role.ADMIN),
    "share": ActionRule(own=Role.MANAGER, chain=Role.MANAGER),
}
# Designations are decided above the body concerned: never by the body itself.
LIFECYCLE_ACTIONS = {**REGISTRY_ACTIONS, "transition": ActionRule(own=None, chain=Role.MANAGER)}


class OrganisationKind(models.TextChoices):
    NATIONAL_CERT = "national-cert", "National CERT"
    PROVINCIAL_CERT = "provincial-cert", "Provincial CERT"
    SECTORAL_CERT = "sectoral-cert", "Sectoral CERT"
    ORGANISATIONAL_CERT = "organisational-cert", "Organisational CERT"
    CII_OPERATOR = "cii-operator", "CII operator"
    CONSTITUENT = "constituent", "Constituent"
    MINISTRY = "ministry", "Ministry"
    REGULATOR = "regulator", "Regulator"
    LAW_ENFORCEMENT = "law-enforcement", "Law enforcement"
    COUNCIL = "council", "Council"
    EXECUTING_AGENCY = "executing-agency", "Executing agency"
    ACADEMIA = "academia", "Academia"
    INDUSTRY = "industry", "Industry body"
    CIVIL_SOCIETY = "civil-society", "Civil society"

    @property
    def is_cert(self) -> bool:
        return self in CERT_KINDS


CERT_KINDS = frozenset(
    {
        OrganisationKind.NATIONAL_CERT,
        OrganisationKind.PROVINCIAL_CERT,
        OrganisationKind.SECTORAL_CERT,
        OrganisationKind.ORGANISATIONAL_CERT,
    }
)


class Organisation(models.Model):
    slug = models.SlugField(max_length=80, unique=True)
    name = models.CharField(max_length=200)
    short_name = models.CharField(max_length=40, blank=True)
    kind = models.CharField(max_length=24, choices=OrganisationKind.choices, db_index=True)
    sector = models.CharField(max_length=60, blank=True, db_index=True)
    province = models.CharField(max_length=60, blank=True, db_index=True)
    lead_department = models.CharField(max_length=300, blank=True)
    lead_body = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="bodies_led",
        help_text="the body that runs this one (e.g. the executing agency of a national CERT)",
    )
    description = models.TextField(blank=True)
    website = models.URLField(blank=True)
    tlp = models.CharField(max_length=16, choices=TLP.choices, default=TLP.GREEN)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = RestrictedManager()
    visibility = VisibilitySpec(owner="pk", actions=REGISTRY_ACTIONS)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.short_name or self.name

    @property
    def display_name(self) -> str:
        return self.short_name or self.name

    @property
    def is_cert(self) -> bool:
        return OrganisationKind(self.kind).is_cert


class Dated(models.Model):
    """A fact that holds from `valid_from` until the day before `valid_to` (open-ended when null)."""

    valid_from = models.DateField()
    valid_to = models.DateField(null=True, blank=True)

    class Meta:
        abstract = True

    @staticmethod
    def in_force_on(day: dt.date, prefix: str = "") -> Q:
        return Q(**{f"{prefix}valid_from__lte": day}) & (
            Q(**{f"{prefix}valid_to__isnull": True}) | Q(**{f"{prefix}valid_to__gt": day})
        )

    def in_force(self, day: dt.date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day < self.valid_to)


class ReportingLine(Dated):
    """`organisation` reports to `parent` over a period, optionally through a function the parent holds."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="reporting_lines")
    parent = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="constituent_lines")
    via_function = models.ForeignKey(
        "Function", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reference = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["organisation_id", "valid_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation"],
                condition=Q(valid_to__isnull=True),
                name="reportingline_one_open_per_org",
            ),
            models.CheckConstraint(
                condition=~Q(organisation=models.F("parent")), name="reportingline_not_self"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.organisation_id} → {self.parent_id} from {self.valid_from}"


class Function(models.Model):
    """A function in the framework, e.g. Government CERT or CII CERT, held by a body over time."""

    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class FunctionHolding(Dated):
    function = models.ForeignKey(Function, on_delete=models.PROTECT, related_name="holdings")
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="functions_held")
    reference = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["function__name", "valid_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["function"],
                condition=Q(valid_to__isnull=True),
                name="functionholding_one_open_holder",
            )
        ]

    def __str__(self) -> str:
        return f"{self.function_id} held by {self.organisation_id} from {self.valid_from}"


class DesignationKind(models.TextChoices):
    CERT = "cert", "CERT designation"
    CII = "cii", "CII designation"


class DesignationStatus(models.TextChoices):
    PROPOSED = "proposed", "Proposed"
    RECOMMENDED = "recommended", "Recommended by the Council"
    SUMMARY_SUBMITTED = "summary-submitted", "Summary submitted to Cabinet"
    APPROVED = "approved", "Approved"
    NOTIFIED = "notified", "Notified"
    OPERATIONAL = "operational", "Operational"
    SUSPENDED = "suspended", "Suspended"
    DISSOLVED = "dissolved", "Dissolved"


class Designation(models.Model):
    """The designation of a body as a CERT, or of an operator's systems as Critical Information
    Infrastructure. `status` is the latest event's outcome; the events are the history."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="designations")
    kind = models.CharField(max_length=8, choices=DesignationKind.choices)
    status = models.CharField(max_length=20, choices=DesignationStatus.choices)
    scope = models.CharField(max_length=300, blank=True)
    designating_authority = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, null=True, blank=True, related_name="designations_made"
    )
    legal_basis = models.CharField(max_length=300, blank=True)
    grade = models.CharField(max_length=40, blank=True)
    review_due = models.DateField(null=True, blank=True)
    gazette_reference = models.CharField(max_length=200, blank=True)
    notified_on = models.DateField(null=True, blank=True)
    tlp = models.CharField(max_length=16, choices=TLP.choices, default=TLP.GREEN)

    objects = RestrictedManager()
    visibility = VisibilitySpec(owner="organisation", actions=LIFECYCLE_ACTIONS)

    class Meta:
        ordering = ["organisation__name", "kind"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "kind"], name="designation_one_per_kind")
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.organisation_id}: {self.status}"


class DesignationEvent(models.Model):
    """One step of a designation's lifecycle, or an annual review (status unchanged)."""

    designation = models.ForeignKey(Designation, on_delete=models.CASCADE, related_name="events")
    event = models.CharField(max_length=30)
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20, choices=DesignationStatus.choices)
    effective_on = models.DateField()
    reference = models.CharField(max_length=300, blank=True)
    note = models.TextField(blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    actor_label = models.CharField(max_length=200)
    recorded_at = models.DateTimeField()

    class Meta:
        ordering = ["effective_on", "id"]

    def __str__(self) -> str:
        return f"{self.event} → {self.to_status} on {self.effective_on}"


class CIISystem(models.Model):
    """An information system (and its data) of a CII operator, possibly under a CII designation."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="cii_systems")
    designation = models.ForeignKey(
        Designation, on_delete=models.SET_NULL, null=True, blank=True, related_name="systems"
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    tlp = models.CharField(max_length=16, choices=TLP.choices, default=TLP.AMBER)

    objects = RestrictedManager()
    visibility = VisibilitySpec(owner="organisation", actions=REGISTRY_ACTIONS)

    class Meta:
        ordering = ["organisation__name", "name"]
        constraints = [models.UniqueConstraint(fields=["organisation", "name"], name="ciisystem_unique_name")]

    def __str__(self) -> str:
        return self.name


class Netblock(Dated):
    """An IPv4 or IPv6 network in an organisation's constituency. `start`/`end` are the first and last
    address as 32-digit hex (IPv4 in the ::ffff:0:0/96 space), so range queries compare as text on
    every database."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="netblocks")
    cidr = models.CharField(max_length=50)
    family = models.PositiveSmallIntegerField()
    prefix_length = models.PositiveSmallIntegerField()
    start = models.CharField(max_length=32)
    end = models.CharField(max_length=32)
    description = models.CharField(max_length=200, blank=True)
    # The CII system these addresses serve, if any: a feed finding in them names the system.
    cii_system = models.ForeignKey(
        CIISystem, on_delete=models.SET_NULL, null=True, blank=True, related_name="netblocks"
    )
    tlp = models.CharField(max_length=16, choices=TLP.choices, default=TLP.AMBER)

    objects = RestrictedManager()
    visibility = VisibilitySpec(owner="organisation", actions=REGISTRY_ACTIONS)

    class Meta:
        ordering = ["family", "start", "prefix_length"]
        indexes = [models.Index(fields=["family", "start", "end"])]

    def __str__(self) -> str:
        return self.cidr


class AutonomousSystem(Dated):
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="asns")
    asn = models.BigIntegerField(db_index=True)
    name = models.CharField(max_length=200, blank=True)
    tlp = models.CharField(max_length=16, choices=TLP.choices, default=TLP.GREEN)

    objects = RestrictedManager()
    visibility = VisibilitySpec(owner="organisation", actions=REGISTRY_ACTIONS)

    class Meta:
        ordering = ["asn"]

    def __str__(self) -> str:
        return f"AS{self.asn}"


class Domain(Dated):
    """A domain and everything under it. `name` is lower-case ASCII (IDNA); `unicode_name` for display."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="domains")
    name = models.CharField(max_length=253, db_index=True)
    unicode_name = models.CharField(max_length=253, blank=True)
    cii_system = models.ForeignKey(
        CIISystem, on_delete=models.SET_NULL, null=True, blank=True, related_name="domains"
    )
    tlp = models.CharField(max_length=16, choices=TLP.choices, default=TLP.GREEN)

    objects = RestrictedManager()
    visibility = VisibilitySpec(owner="organisation", actions=REGISTRY_ACTIONS)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.unicode_name or self.name


class ContactKind(models.TextChoices):
    ABUSE = "abuse", "Abuse mailbox"
    INCIDENT = "incident", "Incident reporting"
    EMERGENCY = "emergency", "24/7 emergency"
    SECURITY_OFFICER = "security-officer", "Security officer"
    GENERAL = "general", "General"


class Contact(models.Model):
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="contacts")
    kind = models.CharField(max_length=20, choices=ContactKind.choices)
    name = models.CharField(max_length=200, blank=True)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    pgp_fingerprint = models.CharField(max_length=64, blank=True)
    pgp_key = models.TextField(blank=True)
    available_24_7 = models.BooleanField(default=False)
    tlp = models.CharField(max_length=16, choices=TLP.choices, default=TLP.AMBER)

    objects = RestrictedManager()
    visibility = VisibilitySpec(owner="organisation", actions=REGISTRY_ACTIONS)

    class Meta:
        ordering = ["organisation__name", "kind"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.email or self.phone}"


class CouncilSeat(models.Model):
    """A seat on a council body (the CERT Council has 16) and who holds it."""

    council = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="seats")
    number = models.PositiveSmallIntegerField()
    title = models.CharField(max_length=200)
    category = models.CharField(max_length=40)
    holder = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, null=True, blank=True, related_name="council_seats"
    )
    holder_title = models.CharField(max_length=200, blank=True)
    confirmed = models.BooleanField(default=True)
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["council_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["council", "number"], name="councilseat_unique_number")
        ]

    def __str__(self) -> str:
        return f"Seat {self.number}: {self.title}"


class LegalInstrument(models.Model):
    """A law or rule set the framework rests on, with the provisions the platform cites."""

    slug = models.SlugField(max_length=60, unique=True)
    title = models.CharField(max_length=200)
    year = models.PositiveSmallIntegerField()
    provisions = models.JSONField(default=list)

    class Meta:
        ordering = ["year", "slug"]

    def __str__(self) -> str:
        return self.title


class FrameworkLoad(models.Model):
    """Each load of a framework file: which file, which version, its digest, who loaded it."""

    name = models.CharField(max_length=120)
    version = models.CharField(max_length=40)
    sha256 = models.CharField(max_length=64)
    loaded_at = models.DateTimeField()
    actor_label = models.CharField(max_length=200)
    summary = models.JSONField(default=dict)

    class Meta:
        ordering = ["-loaded_at"]

    def __str__(self) -> str:
        return f"{self.name} {self.version}"
