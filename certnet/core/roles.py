"""Roles a user holds in an organisation, ordered: each includes the powers of those below it."""

from __future__ import annotations

from django.db import models


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    ANALYST = "analyst", "Analyst"
    HANDLER = "handler", "Handler"
    MANAGER = "manager", "Manager"
    ADMIN = "admin", "Administrator"

    @property
    def rank(self) -> int:
        return _ORDER.index(self)

    def includes(self, other: Role) -> bool:
        return self.rank >= other.rank


_ORDER = [Role.VIEWER, Role.ANALYST, Role.HANDLER, Role.MANAGER, Role.ADMIN]
