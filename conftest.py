"""Fixtures shared by every test: the framework, users in organisations, API clients with tokens."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from certnet.accounts import services as accounts
from certnet.accounts.models import User
from certnet.core.audit import SystemActor
from certnet.core.roles import Role
from certnet.registry import index
from certnet.registry.framework import load_framework_file
from certnet.registry.models import Organisation

TEST_ACTOR = SystemActor("test")
PASSWORD = "a-long-test-password-1"


@pytest.fixture(autouse=True)
def _fresh_registry_index() -> None:
    index.clear_cache()


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    # Argon2 is slow on purpose (tens of ms a user); the tests' users' passwords are never the point.
    # tests/test_project.py checks that the shipped settings hash with Argon2.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def framework(db: Any) -> dict[str, Organisation]:
    """The real Pakistan framework file, loaded; organisations by slug."""
    load_framework_file(settings.CERTNET_FRAMEWORK_FILE)
    return {org.slug: org for org in Organisation.objects.all()}


@pytest.fixture
def make_user(db: Any) -> Callable[..., User]:
    counter = iter(range(1, 10_000))

    def make(
        org: Organisation | None = None,
        role: Role | str = Role.VIEWER,
        *,
        username: str | None = None,
        platform_admin: bool = False,
    ) -> User:
        name = username or f"user{next(counter)}"
        user = accounts.create_user(
            actor=TEST_ACTOR,
            username=name,
            password=PASSWORD,
            is_platform_admin=platform_admin,
            check_password_strength=False,
        )
        if org is not None:
            accounts.set_membership(actor=TEST_ACTOR, user=user, organisation_id=org.pk, role=Role(role))
        return user

    return make


class ApiClient:
    """The Django test client speaking JSON to /api/v1 with a bearer token (or none)."""

    def __init__(self, token: str | None) -> None:
        self.client = Client()
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def _url(self, path: str) -> str:
        return "/api/v1" + path

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(self._url(path), params, headers=self.headers)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.client.post(
            self._url(path),
            body if body is not None else {},
            content_type="application/json",
            headers=self.headers,
            **kwargs,
        )

    def patch(self, path: str, body: Any) -> Any:
        return self.client.patch(self._url(path), body, content_type="application/json", headers=self.headers)


@pytest.fixture
def api_as(db: Any) -> Callable[[User | None], ApiClient]:
    def make(user: User | None) -> ApiClient:
        if user is None:
            return ApiClient(None)
        return ApiClient(accounts.create_token(actor=TEST_ACTOR, user=user).secret)

    return make
