from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Iterable

from django.db import connection
from django.db.models import QuerySet

from certnet.accounts.models import ApiToken, Membership, User
from certnet.core import clock, statements
from certnet.core.roles import Role

LAST_USED_RESOLUTION = dt.timedelta(minutes=1)
TOKEN_PREFIX = "cnt_"  # noqa: S105 - a public marker that makes leaked tokens greppable, not a secret


def roles_of_user(user_id: int) -> dict[int, Role]:
    """The user's role in each organisation. Every authenticated request asks this once (the
    visibility principal), so it is one fixed statement rather than an ORM query built each time."""
    table = connection.ops.quote_name(Membership._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT organisation_id, role FROM {table} WHERE user_id = %s", [user_id])  # noqa: S608
        return {int(org_id): Role(role) for org_id, role in cursor.fetchall()}


def roles_of_users(user_ids: Iterable[int]) -> dict[int, dict[int, Role]]:
    """roles_of_user for many people in one query; everyone asked about has an entry."""
    ids = set(user_ids)
    found: dict[int, dict[int, Role]] = {pk: {} for pk in ids}
    rows = Membership.objects.filter(user_id__in=ids).values_list("user_id", "organisation_id", "role")
    for user_id, org_id, role in rows:
        found[user_id][org_id] = Role(role)
    return found


def members_by_organisation(organisation_ids: Iterable[int], least: Role) -> dict[int, list[User]]:
    """The active members holding at least `least`, per organisation, from one query. A person in
    several of the organisations is one User object in each list."""
    roles = [role.value for role in Role if role.includes(least)]
    people: dict[int, User] = {}
    found: dict[int, list[User]] = {}
    rows = Membership.objects.filter(
        organisation_id__in=set(organisation_ids), role__in=roles, user__is_active=True
    ).select_related("user")
    for membership in rows:
        user = people.setdefault(membership.user_id, membership.user)
        found.setdefault(membership.organisation_id, []).append(user)
    return found


def token_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@functools.cache
def _token_and_user_sql(vendor: str) -> str:
    token_table = connection.ops.quote_name(ApiToken._meta.db_table)
    user_table = connection.ops.quote_name(User._meta.db_table)
    return (
        f"SELECT {statements.columns(ApiToken, 't')}, {statements.columns(User, 'u')} "  # noqa: S608
        f"FROM {token_table} t INNER JOIN {user_table} u ON u.id = t.user_id WHERE t.digest = %s"
    )


def _token_and_user(digest: str) -> tuple[ApiToken | None, User | None]:
    """The token with this digest and its owner, in one prepared-once statement: every API request
    asks, and two ORM queries would cost more than the rest of a small request."""
    with connection.cursor() as cursor:
        cursor.execute(_token_and_user_sql(connection.vendor), [digest])
        row = cursor.fetchone()
    if row is None:
        return None, None
    token = statements.from_row(ApiToken, row)
    return token, statements.from_row(User, row, start=len(ApiToken._meta.concrete_fields))


def user_for_token(secret: str) -> User | None:
    """The active user a bearer token belongs to, or None if unknown, revoked or expired."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    token, user = _token_and_user(token_digest(secret))
    if token is None or user is None:
        return None
    if token.revoked_at is not None or token.expires_at <= clock.now() or not user.is_active:
        return None
    now = clock.now()
    # Recorded to the minute: a write on every request would serialise all API reads behind the writer.
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return user


def get_user_by_username(username: str) -> User | None:
    return User.objects.filter(username=username).first()


def memberships_of(user: User) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user).select_related("organisation")


def organisation_id_for_slug(slug: str) -> int | None:
    from django.apps import apps

    organisation = apps.get_model("registry", "Organisation")
    found = organisation.objects.filter(slug=slug).values_list("pk", flat=True).first()
    return int(found) if found is not None else None
