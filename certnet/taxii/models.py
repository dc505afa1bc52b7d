"""TAXII collections, the STIX objects in them, and the status of each add-objects request."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from certnet.core.tlp import TLP
from certnet.core.visibility import RestrictedManager, VisibilitySpec


class Audience(models.TextChoices):
    COMMUNITY = "community", "The whole community"
    SECTOR = "sector", "A sector"
    PROVINCE = "province", "A province"
    ORGANISATION = "organisation", "One organisation"


class TaxiiCollection(models.Model):
    """One audience's share of the intelligence. Who may read or write it follows from the audience
    (certnet.taxii.selectors); what each reader sees inside it is decided per object by visibility."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    title = models.CharField(max_length=250)
    description = models.TextField(blank=True)
    audience = models.CharField(max_length=16, choices=Audience.choices)
    # The sector or province name, or the organisation's slug; "" for the community.
    target = models.CharField(max_length=80, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["audience", "target"]
        constraints = [
            models.UniqueConstraint(fields=["audience", "target"], name="taxii_collection_once_per_audience"),
        ]

    def __str__(self) -> str:
        return self.title


class TaxiiObject(models.Model):
    """One version of one STIX object in one collection, kept as the JSON it arrived as so a page is
    served without rebuilding objects."""

    collection = models.ForeignKey(TaxiiCollection, on_delete=models.CASCADE, related_name="stix_objects")
    stix_id = models.CharField(max_length=100)  # "<type>--<uuid>"
    type = models.CharField(max_length=60)
    spec_version = models.CharField(max_length=8, default="2.1")
    # The version as the object states it (its `modified`, else `created`), returned byte for byte in
    # manifests and version lists; version_at is the same instant, for ordering and match[version].
    version = models.CharField(max_length=40)
    version_at = models.DateTimeField()
    # Strictly increasing within a collection, so (added_at, id) pages never skip or repeat a row and
    # the X-TAXII-Date-Added-* headers are exact cursors for added_after.
    added_at = models.DateTimeField()
    body = models.JSONField()
    owner = models.ForeignKey("registry.Organisation", on_delete=models.PROTECT, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    tlp = models.CharField(max_length=16, choices=TLP.choices, default=TLP.AMBER)
    shared_with = models.ManyToManyField("registry.Organisation", blank=True, related_name="+")
    named_users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")

    objects = RestrictedManager()
    visibility = VisibilitySpec(
        owner="owner", author="created_by", named_users="named_users", shared_with="shared_with"
    )

    class Meta:
        ordering = ["added_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["collection", "stix_id", "version"], name="taxii_object_version_once"
            ),
            # Unique, not only indexed: the page cursor relies on no two rows sharing an instant.
            models.UniqueConstraint(
                fields=["collection", "added_at"], name="taxii_object_added_at_increasing"
            ),
        ]
        indexes = [
            # match[version]=first/last probes a collection's other versions of the same object.
            models.Index(fields=["collection", "stix_id", "version_at"], name="taxii_object_versions"),
        ]

    def __str__(self) -> str:
        return f"{self.stix_id} ({self.version})"


class TaxiiStatus(models.Model):
    """The outcome of one add-objects request, for its caller to fetch again."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    collection = models.ForeignKey(TaxiiCollection, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    organisation = models.ForeignKey("registry.Organisation", on_delete=models.PROTECT, related_name="+")
    request_timestamp = models.DateTimeField()
    resource = models.JSONField()  # the TAXII status resource, as answered

    class Meta:
        ordering = ["-request_timestamp"]

    def __str__(self) -> str:
        return str(self.id)
