"""What the relational database keeps about feeds: sources, runs and quarantined rows.

The events themselves live in the Parquet events store (`store.py`); the database holds what people
configure, what happened on each run, and what other capabilities link to.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from certnet.core.roles import Role
from certnet.core.tlp import TLP
from certnet.core.visibility import ActionRule, RestrictedManager, VisibilitySpec

# Sources are the operating CERT's configuration: its analysts see them, its managers change them.
SOURCE_ACTIONS = {
    "change": ActionRule(own=Role.MANAGER, chain=Role.MANAGER),
    "delete": ActionRule(own=Role.MANAGER, chain=Role.MANAGER),
    "share": ActionRule(own=None, chain=None),
    "run": ActionRule(own=Role.ANALYST, chain=Role.HANDLER),
}


class Collector(models.TextChoices):
    FILE = "file", "file or directory"
    HTTP = "http", "HTTP(S) URL"
    MAILBOX = "mailbox", "mailbox export"


class FeedSource(models.Model):
    """A configured feed: where it comes from, how it is parsed, its TLP and schedule."""

    code = models.SlugField(max_length=80, unique=True)
    name = models.CharField(max_length=200)
    provider = models.CharField(max_length=120)
    owner = models.ForeignKey("registry.Organisation", on_delete=models.PROTECT, related_name="feed_sources")
    collector = models.CharField(max_length=12, choices=Collector.choices, default=Collector.FILE)
    location = models.CharField(max_length=500, blank=True)  # path, URL or mailbox file
    parser = models.CharField(max_length=120, default="auto")  # a mapping key (provider/report) or "auto"
    options = models.JSONField(default=dict, blank=True)  # timeouts, size limit, column mapping …
    tlp = models.CharField(max_length=16, choices=TLP.choices, default=TLP.AMBER)
    schedule_minutes = models.PositiveIntegerField(null=True, blank=True)  # None: run on demand
    dedup_window_hours = models.PositiveIntegerField(default=24)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField()

    objects = RestrictedManager()
    visibility = VisibilitySpec(owner="owner", actions=SOURCE_ACTIONS)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class RunStatus(models.TextChoices):
    RUNNING = "running", "running"
    DONE = "done", "done"
    FAILED = "failed", "failed"


class FeedRun(models.Model):
    """One file through the pipeline: its counts, per CERT, and what went wrong."""

    source = models.ForeignKey(FeedSource, on_delete=models.PROTECT, related_name="runs")
    owner = models.ForeignKey("registry.Organisation", on_delete=models.PROTECT, related_name="+")
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    file_name = models.CharField(max_length=300)
    sha256 = models.CharField(max_length=64, db_index=True)
    bytes = models.BigIntegerField(default=0)
    mapping = models.CharField(max_length=120, blank=True)
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.RUNNING)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    counts = models.JSONField(default=dict)  # read, parsed, duplicates, routed, unrouted, quarantined …
    per_cert = models.JSONField(default=dict)  # CERT slug → events routed to its constituency
    notes = models.JSONField(default=list)
    error = models.TextField(blank=True)
    tlp = models.CharField(max_length=16, choices=TLP.choices, default=TLP.AMBER)

    objects = RestrictedManager()
    visibility = VisibilitySpec(owner="owner", actions=SOURCE_ACTIONS)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["source", "-started_at"], name="feedrun_source_recent")]

    def __str__(self) -> str:
        return f"run {self.pk} of {self.source_id}"


class QuarantinedRow(models.Model):
    """A row the pipeline could not take, with the reason and the text as received."""

    run = models.ForeignKey(FeedRun, on_delete=models.CASCADE, related_name="quarantined")
    owner = models.ForeignKey("registry.Organisation", on_delete=models.PROTECT, related_name="+")
    batch = models.CharField(max_length=40, blank=True, db_index=True)  # rewritten whole when redone
    line = models.PositiveBigIntegerField(null=True, blank=True)
    reason = models.CharField(max_length=500)
    raw = models.TextField()
    tlp = models.CharField(max_length=16, choices=TLP.choices, default=TLP.AMBER)

    objects = RestrictedManager()
    visibility = VisibilitySpec(owner="owner", actions=SOURCE_ACTIONS)

    class Meta:
        ordering = ["run", "id"]

    def __str__(self) -> str:
        return f"quarantined row {self.pk} of run {self.run_id}"


class FeedDigest(models.Model):
    """One organisation's events of one period, e-mailed to its abuse contact (once)."""

    organisation = models.ForeignKey("registry.Organisation", on_delete=models.PROTECT, related_name="+")
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    events = models.PositiveIntegerField(default=0)
    address = models.EmailField(blank=True)
    sha256 = models.CharField(max_length=64, blank=True)  # of the CSV attachment
    sent_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField()
    tlp = models.CharField(max_length=16, choices=TLP.choices, default=TLP.AMBER)

    objects = RestrictedManager()
    visibility = VisibilitySpec(owner="organisation", actions=SOURCE_ACTIONS)

    class Meta:
        ordering = ["-period_start", "organisation"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "period_start"], name="feeddigest_once_per_period"
            )
        ]

    def __str__(self) -> str:
        return f"digest for {self.organisation_id} from {self.period_start:%Y-%m-%d %H:%M}"
