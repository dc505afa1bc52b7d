"""API authentication and the caller's own account."""

from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema
from ninja.security import HttpBearer, SessionAuth

from certnet.accounts.models import User
from certnet.accounts.selectors import memberships_of, user_for_token


class BearerTokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> User | None:
        user = user_for_token(token)
        if user is not None:
            request.user = user
        return user


class BrowserSessionAuth(SessionAuth):
    """The session of a logged-in browser, with CSRF on unsafe methods. A caller with no session is
    simply unauthenticated (401), not a failed CSRF check (403)."""

    def __call__(self, request: HttpRequest) -> Any:
        if not request.user.is_authenticated:
            return None
        return super().__call__(request)


def api_auth() -> list[Any]:
    """Bearer token first, then the browser session."""
    return [BearerTokenAuth(), BrowserSessionAuth()]


router = Router(tags=["accounts"])


class MembershipOut(Schema):
    organisation: str
    organisation_name: str
    role: str


class MeOut(Schema):
    username: str
    full_name: str
    email: str
    is_platform_admin: bool
    memberships: list[MembershipOut]


@router.get("/me", response=MeOut, summary="The calling user and their memberships")
def me(request: HttpRequest) -> dict[str, Any]:
    user: User = request.user  # type: ignore[assignment]
    return {
        "username": user.username,
        "full_name": user.get_full_name(),
        "email": user.email,
        "is_platform_admin": user.is_platform_admin,
        "memberships": [
            {"organisation": m.organisation.slug, "organisation_name": m.organisation.name, "role": m.role}
            for m in memberships_of(user)
        ],
    }
