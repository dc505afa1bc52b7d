from __future__ import annotations

import datetime as dt
import hashlib

from django.db.models import QuerySet

from certnet.accounts.models import ApiToken, Membership, User
from certnet.core import clock
from certnet.core.roles import Role

LAST_USED_RESOLUTION = dt.timedelta(minutes=1)
TOKEN_PREFIX = "cnt_"  # noqa: S105 - a public marker that makes leaked tokens greppable, not a secret


def roles_of_user(user_id: int) -> dict[int, Role]:
    return {
        org_id: Role(role)
        for org_id, role in Membership.objects.filter(user_id=user_id).values_list("organisation_id", "role")
    }


def token_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def user_for_token(secret: str) -> User | None:
    """The active user a bearer token belongs to, or None if unknown, revoked or expired."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    token = (
        ApiToken.objects.select_related("user")
        .filter(digest=token_digest(secret), revoked_at__isnull=True, expires_at__gt=clock.now())
        .first()
    )
    if token is None or not token.user.is_active:
        return None
    now = clock.now()
    # Recorded to the minute: a write on every request would serialise all API reads behind the writer.
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user


def get_user_by_username(username: str) -> User | None:
    return User.objects.filter(username=username).first()


def memberships_of(user: User) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user).select_related("organisation")


def organisation_id_for_slug(slug: str) -> int | None:
    from django.apps import apps

    organisation = apps.get_model("registry", "Organisation")
    found = organisation.objects.filter(slug=slug).values_list("pk", flat=True).first()
    return int(found) if found is not None else None
