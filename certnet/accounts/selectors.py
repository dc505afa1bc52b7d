from __future__ import annotations

import hashlib

from django.db.models import QuerySet

from certnet.accounts.models import ApiToken, Membership, User
from certnet.core import clock
from certnet.core.roles import Role

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
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=clock.now())
    return token.user


def get_user_by_username(username: str) -> User | None:
    return User.objects.filter(username=username).first()


def memberships_of(user: User) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user).select_related("organisation")
