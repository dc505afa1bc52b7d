from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

from certnet.core.tlp import TLP
from certnet.core.visibility import RestrictedManager, VisibilitySpec


class ProbeRecord(models.Model):
    title = models.CharField(max_length=100)
    owner = models.ForeignKey("registry.Organisation", on_delete=models.CASCADE, related_name="+")
    tlp = models.CharField(max_length=16, choices=TLP.choices)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    named_users = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="+", blank=True)
    shared_with: models.ManyToManyField[Any, Any] = models.ManyToManyField(
        "registry.Organisation", related_name="+", blank=True
    )

    objects = RestrictedManager()
    visibility = VisibilitySpec(
        owner="owner", author="author", named_users="named_users", shared_with="shared_with"
    )

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.title
