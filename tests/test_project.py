"""Project-wide checks: migrations match the models; docs/openapi.json matches the API; what ships is
configured as intended."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from certnet.web.management.commands.export_openapi import openapi_document

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.django_db
def test_no_missing_migrations():
    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


def test_openapi_document_is_current():
    committed = (ROOT / "docs" / "openapi.json").read_text(encoding="utf-8")
    assert committed == openapi_document(), "the API changed: run `make openapi` and commit docs/openapi.json"


def test_the_shipped_settings_hash_passwords_with_argon2():
    # The suite swaps in a fast hasher (conftest.py); what ships must not.
    shipped = (ROOT / "certnet" / "settings.py").read_text()
    hashers = shipped.split("PASSWORD_HASHERS = [", 1)[1].split("]", 1)[0]
    assert hashers.split(",")[0].strip().strip('"') == "django.contrib.auth.hashers.Argon2PasswordHasher"
