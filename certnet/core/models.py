"""Core tables: the hash-chained audit log. Domain apps import from core, never the reverse."""

from __future__ import annotations

from django.db import models


class AuditEntry(models.Model):
    """One state change. Append-only; each row's hash covers its content and the previous row's hash."""

    seq = models.BigIntegerField(unique=True)
    at = models.DateTimeField()
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor_label = models.CharField(max_length=200)
    action = models.CharField(max_length=100, db_index=True)
    object_type = models.CharField(max_length=100)
    object_id = models.CharField(max_length=100)
    organisation_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    data = models.JSONField(default=dict)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["seq"]
        indexes = [models.Index(fields=["object_type", "object_id"])]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.object_type}:{self.object_id}"


class AuditHead(models.Model):
    """The chain's tip, one row. Locking it serialises appends; it also exposes a removed last entry."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"audit head #{self.seq}"


class AuditMark(models.Model):
    """The latest entry per app (the target's app label): lets a cache of one domain's data (e.g. the
    registry's routing index) notice that domain's changes and ignore everyone else's."""

    topic = models.CharField(max_length=50, primary_key=True)
    seq = models.BigIntegerField()
    hash = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"{self.topic} at #{self.seq}"
