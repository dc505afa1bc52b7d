"""Indicators and who saw them, intel reports shared to an audience, warninglists, correlation alerts."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from certnet.core.roles import Role
from certnet.core.tlp import TLP
from certnet.core.visibility import ActionRule, RestrictedManager, VisibilitySpec
from certnet.intel.observables import Kind

# Anyone who may see an indicator may say they saw it too; only its owner (or the CERTs above) edits it.
INDICATOR_ACTIONS = {
    "change": ActionRule(own=Role.ANALYST, chain=Role.HANDLER),
    "sight": ActionRule(own=Role.VIEWER, chain=Role.VIEWER),
    "delete": ActionRule(own=Role.MANAGER, chain=Role.MANAGER),
    "share": ActionRule(own=Role.ANALYST, chain=Role.HANDLER),
}
# A correlation alert belongs to the CERT it was raised for; its analysts work it.
ALERT_ACTIONS = {
    "change": ActionRule(own=Role.ANALYST, chain=Role.HANDLER, cert_itself=Role.ANALYST),
    "delete": ActionRule(own=Role.ADMIN, chain=Role.ADMIN),
}

KIND_CHOICES = [(kind.value, kind.value) for kind in Kind]


class Tag(models.Model):
    """A label on indicators: an RSIT class (`rsit:malicious-code/c2-server`) or a free word."""

    name = models.CharField(max_length=120, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Indicator(models.Model):
    """One organisation's record of one observable value. The same value recorded by two organisations
    is two indicators; that is what correlation looks for."""

    kind = models.CharField(max_length=8, choices=KIND_CHOICES)
    value = models.CharField(max_length=2048)  # normalised (certnet.intel.observables.normalise)
    owner = models.ForeignKey("registry.Organisation", on_delete=models.PROTECT, related_name="indicators")
    # Its STIX identity: kept from an imported bundle, so the same indicator keeps its id across tools.
    stix_id = models.UUIDField(default=uuid.uuid4)
    name = models.CharField(max_length=250, blank=True)
    indicator_types = models.JSONField(default=list, blank=True)  # STIX indicator-type-ov words
    # The STIX identity that made it, when it came from elsewhere ("" when recorded here).
    made_by = models.CharField(max_length=60, blank=True)
    # What other formats said of it that certnet has no field for, kept to give back on export
    # (e.g. {"misp": {"category": "Network activity", "to_ids": true}}).
    extras = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    tlp = models.CharField(max_length=16, choices=TLP.choices, default=TLP.AMBER)
    confidence = models.PositiveSmallIntegerField(
        default=50, validators=[MinValueValidator(0), MaxValueValidator(100)]
    )
    description = models.TextField(blank=True)
    source = models.CharField(max_length=200, blank=True)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    # The warninglist the value is on when it was last checked ("" if none): listed values never
    # raise correlation alerts.
    warninglist = models.CharField(max_length=80, blank=True)
    # For ipv4, ipv6 and cidr: the first and last address as 32 sortable hex digits, so a search for
    # an address finds the networks that contain it.
    range_start = models.CharField(max_length=32, blank=True)
    range_end = models.CharField(max_length=32, blank=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="indicators")
    incidents = models.ManyToManyField("incidents.Incident", blank=True, related_name="indicators")
    reports = models.ManyToManyField("incidents.Report", blank=True, related_name="indicators")
    named_users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    shared_with = models.ManyToManyField("registry.Organisation", blank=True, related_name="+")
    # STIX created/modified: when it was first made (kept from an imported bundle) and last changed.
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    objects = RestrictedManager()
    visibility = VisibilitySpec(
        owner="owner",
        author="created_by",
        named_users="named_users",
        shared_with="shared_with",
        actions=INDICATOR_ACTIONS,
    )

    class Meta:
        ordering = ["-last_seen", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "kind", "value"], name="indicator_once_per_owner"),
            models.UniqueConstraint(fields=["owner", "stix_id"], name="indicator_stix_id_once_per_owner"),
        ]
        indexes = [
            models.Index(fields=["kind", "value"]),
            models.Index(fields=["range_start", "range_end"]),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


class Sighting(models.Model):
    """An organisation saw an indicator's value: when first and last, and how often. One row per
    indicator and organisation; repeats raise the count."""

    indicator = models.ForeignKey(Indicator, on_delete=models.CASCADE, related_name="sightings")
    organisation = models.ForeignKey("registry.Organisation", on_delete=models.PROTECT, related_name="+")
    reported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    count = models.PositiveIntegerField(default=1)
    source = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-last_seen", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["indicator", "organisation"], name="sighting_once_per_org"),
        ]

    def __str__(self) -> str:
        return f"{self.indicator_id} seen by {self.organisation_id} x{self.count}"


class WarninglistKind(models.TextChoices):
    CIDR = "cidr", "Networks (an address inside one is listed)"
    DOMAIN = "domain", "Domains (subdomains included)"
    VALUE = "value", "Exact values"


class Warninglist(models.Model):
    """Values known to be harmless or shared (private space, public resolvers, huge sites): flagged on
    indicators and never correlated. Shipped as data files; editable afterwards."""

    slug = models.SlugField(max_length=80, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=8, choices=WarninglistKind.choices)
    source = models.CharField(max_length=300, blank=True)
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class WarninglistEntry(models.Model):
    warninglist = models.ForeignKey(Warninglist, on_delete=models.CASCADE, related_name="entries")
    # A network (cidr lists), a domain (domain lists) or "kind:value" (value lists), normalised.
    value = models.CharField(max_length=300)
    comment = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["value"]
        constraints = [
            models.UniqueConstraint(fields=["warninglist", "value"], name="warninglist_entry_once"),
        ]

    def __str__(self) -> str:
        return f"{self.warninglist_id}: {self.value}"


class AlertStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    CLOSED = "closed", "Closed"


class CorrelationAlert(models.Model):
    """The same value recorded by several organisations, raised for the lowest CERT above all of them.
    It names the value and the organisations; the indicators behind it are shown to each reader
    through visibility, never copied in."""

    cert = models.ForeignKey("registry.Organisation", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=8, choices=KIND_CHOICES)
    value = models.CharField(max_length=2048)
    organisations = models.ManyToManyField("registry.Organisation", related_name="+")
    indicators = models.ManyToManyField(Indicator, related_name="correlations")
    tlp = models.CharField(max_length=16, choices=TLP.choices, default=TLP.AMBER_STRICT)
    status = models.CharField(max_length=12, choices=AlertStatus.choices, default=AlertStatus.OPEN)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    objects = RestrictedManager()
    visibility = VisibilitySpec(owner="cert", actions=ALERT_ACTIONS)

    class Meta:
        ordering = ["-updated_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["cert", "kind", "value"], name="correlation_once_per_cert"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.value} for {self.cert_id}"


class Audience(models.TextChoices):
    OWNER = "owner", "Not shared yet (the owner and the CERTs above it)"
    COMMUNITY = "community", "The whole community"
    SECTORS = "sectors", "Sectors"
    PROVINCES = "provinces", "Provinces"
    ORGANISATIONS = "organisations", "Listed organisations"


class IntelReport(models.Model):
    """A set of indicators an analyst published to an audience at one TLP. Publishing shares the
    indicators with the audience (certnet.intel.services.reports); the report keeps who it went to."""

    stix_id = models.UUIDField(default=uuid.uuid4, unique=True)
    title = models.CharField(max_length=250)
    summary = models.TextField(blank=True)
    owner = models.ForeignKey("registry.Organisation", on_delete=models.PROTECT, related_name="intel_reports")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    tlp = models.CharField(max_length=16, choices=TLP.choices, default=TLP.AMBER)
    audience = models.CharField(max_length=16, choices=Audience.choices)
    sectors = models.JSONField(default=list, blank=True)
    provinces = models.JSONField(default=list, blank=True)
    indicators = models.ManyToManyField(Indicator, related_name="intel_reports")
    tags = models.ManyToManyField(Tag, blank=True, related_name="intel_reports")
    extras = models.JSONField(default=dict, blank=True)  # as on Indicator (a MISP event's own fields)
    # Objects kept as STIX (malware, attack patterns, ...) that the report names.
    stix_objects: models.ManyToManyField[StixObject, Any] = models.ManyToManyField(
        "StixObject", blank=True, related_name="intel_reports"
    )
    # The organisations the audience named when it was published (AMBER and AMBER+STRICT).
    shared_with = models.ManyToManyField("registry.Organisation", blank=True, related_name="+")
    published_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    objects = RestrictedManager()
    visibility = VisibilitySpec(owner="owner", author="created_by", shared_with="shared_with")

    class Meta:
        ordering = ["-published_at", "-id"]

    def __str__(self) -> str:
        return self.title


class StixObject(models.Model):
    """A STIX object certnet keeps as it came (malware, attack patterns, identities, relationships,
    reports, observed data, indicators whose patterns are more than one value): nothing imported is
    lost, and exports give it back. One row per owner, id and version."""

    stix_id = models.CharField(max_length=100)  # "<type>--<uuid>"
    type = models.CharField(max_length=60)
    modified = models.DateTimeField()  # its version
    body = models.JSONField()
    owner = models.ForeignKey("registry.Organisation", on_delete=models.PROTECT, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    tlp = models.CharField(max_length=16, choices=TLP.choices, default=TLP.AMBER)
    shared_with = models.ManyToManyField("registry.Organisation", blank=True, related_name="+")
    named_users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    # Indicators it refers to (a relationship's or report's refs, an observed value), for exports.
    indicators = models.ManyToManyField(Indicator, blank=True, related_name="stix_objects")
    added_at = models.DateTimeField()

    objects = RestrictedManager()
    visibility = VisibilitySpec(
        owner="owner", author="created_by", named_users="named_users", shared_with="shared_with"
    )

    class Meta:
        ordering = ["added_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "stix_id", "modified"], name="stix_object_version_once"),
        ]
        indexes = [models.Index(fields=["stix_id"])]

    def __str__(self) -> str:
        return self.stix_id


class ImportFormat(models.TextChoices):
    STIX = "stix", "STIX 2.1 bundle"
    MISP = "misp", "MISP event"
    MISP_FEED = "misp-feed", "MISP feed directory"
    CSV = "csv", "CSV"


class IntelImport(models.Model):
    """One import of a file or bundle: who brought what in, what was taken, what was refused and why,
    and what certnet could not use but kept with a note (a MISP attribute of a type it does not know)."""

    owner = models.ForeignKey("registry.Organisation", on_delete=models.PROTECT, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    format = models.CharField(max_length=12, choices=ImportFormat.choices)
    source = models.CharField(max_length=300, blank=True)  # file name or "api"
    sha256 = models.CharField(max_length=64, blank=True)
    tlp = models.CharField(max_length=16, choices=TLP.choices, default=TLP.AMBER)
    partial = models.BooleanField(default=False)
    counts = models.JSONField(default=dict)  # {"objects": n, "indicators_created": n, ...}
    refused = models.JSONField(default=list)  # [{"where": ..., "id": ..., "reasons": [...]}]
    unsupported = models.JSONField(default=list)  # [{"where": ..., "type": ..., "value": ..., "note": ...}]
    created_at = models.DateTimeField()

    objects = RestrictedManager()
    visibility = VisibilitySpec(owner="owner", author="created_by")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.format} import {self.pk} for {self.owner_id}"
