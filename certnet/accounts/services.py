"""Account changes. Each runs in one transaction and writes its audit entry."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction

from certnet.accounts.models import ApiToken, Membership, User
from certnet.accounts.selectors import TOKEN_PREFIX, token_digest
from certnet.core import audit, clock
from certnet.core.audit import Actor
from certnet.core.errors import Conflict, FieldError, InvalidInput, NotFound, invalid
from certnet.core.roles import Role


@transaction.atomic
def create_user(
    *,
    actor: Actor,
    username: str,
    password: str,
    email: str = "",
    full_name: str = "",
    is_platform_admin: bool = False,
    check_password_strength: bool = True,
) -> User:
    username = username.strip()
    if not username:
        raise invalid("username", "must not be empty")
    if User.objects.filter(username=username).exists():
        raise Conflict(f"a user named {username!r} already exists")
    first, _, last = full_name.partition(" ")
    user = User(
        username=username, email=email, first_name=first, last_name=last, is_platform_admin=is_platform_admin
    )
    if check_password_strength:
        try:
            validate_password(password, user)
        except ValidationError as exc:
            raise InvalidInput(
                "the password is too weak", errors=[FieldError("password", m) for m in exc.messages]
            ) from None
    user.set_password(password)
    user.save()
    audit.record(
        actor=actor,
        action="accounts.user.create",
        target=user,
        data={"username": username, "is_platform_admin": is_platform_admin},
    )
    return user


@transaction.atomic
def set_membership(*, actor: Actor, user: User, organisation_id: int, role: Role) -> Membership:
    membership, created = Membership.objects.update_or_create(
        user=user, organisation_id=organisation_id, defaults={"role": role}
    )
    audit.record(
        actor=actor,
        action="accounts.membership.set",
        target=membership,
        organisation_id=organisation_id,
        data={"user": user.username, "role": str(role), "created": created},
    )
    return membership


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str


@transaction.atomic
def create_token(*, actor: Actor, user: User, name: str = "", days: int | None = None) -> IssuedToken:
    lifetime = days if days is not None else settings.CERTNET_TOKEN_DEFAULT_DAYS
    if not 1 <= lifetime <= 366:
        raise invalid("days", f"a token lives between 1 and 366 days, not {lifetime}")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = clock.now()
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=secret[: len(TOKEN_PREFIX) + 6],
        digest=token_digest(secret),
        created_at=now,
        expires_at=now + dt.timedelta(days=lifetime),
    )
    audit.record(
        actor=actor,
        action="accounts.token.create",
        target=token,
        data={"user": user.username, "name": name, "expires_at": token.expires_at},
    )
    return IssuedToken(token, secret)


@transaction.atomic
def revoke_token(*, actor: Actor, user: User, prefix: str) -> ApiToken:
    token = ApiToken.objects.select_for_update().filter(user=user, prefix=prefix).first()
    if token is None:
        raise NotFound(f"{user.username} has no token starting {prefix!r}")
    if token.revoked_at is None:
        token.revoked_at = clock.now()
        token.save(update_fields=["revoked_at"])
        audit.record(actor=actor, action="accounts.token.revoke", target=token, data={"user": user.username})
    return token
