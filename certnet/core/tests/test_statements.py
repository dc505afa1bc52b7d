"""The prepared-once statements store and read rows exactly as the ORM does, on either database."""

import datetime as dt

import pytest
from django.db import connection

from certnet.accounts.models import ApiToken, User
from certnet.core import statements
from certnet.core.models import AuditEntry, AuditMark
from certnet.registry.models import Organisation

AT = dt.datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=dt.UTC)


def _entry(seq: int, **changes: object) -> AuditEntry:
    fields: dict[str, object] = {
        "seq": seq,
        "at": AT,
        "actor_id": None,
        "actor_label": "probe",
        "action": "test.statement",
        "object_type": "core.probe",
        "object_id": "7",
        "organisation_id": 12,
        "data": {"list": [1, "two", None], "nested": {"ok": True}, "text": "Lahore — لاہور"},
        "prev_hash": "0" * 64,
        "hash": f"{seq:064d}",
    }
    fields.update(changes)
    return AuditEntry(**fields)


def _as_stored(instance: object) -> dict[str, object]:
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}  # type: ignore[attr-defined]


@pytest.mark.django_db
def test_an_inserted_row_reads_back_through_the_orm_as_it_was_given():
    entry = statements.insert(_entry(10_001))
    assert entry.pk is not None
    assert not entry._state.adding
    assert _as_stored(AuditEntry.objects.get(pk=entry.pk)) == _as_stored(entry)


@pytest.mark.django_db
def test_a_row_read_by_key_equals_the_one_the_orm_reads():
    AuditEntry.objects.create(**_as_stored(_entry(10_002, actor_id=None, organisation_id=None)))
    through_orm = AuditEntry.objects.get(seq=10_002)
    read = statements.get_by(AuditEntry, seq=10_002)
    assert read is not None
    assert _as_stored(read) == _as_stored(through_orm)
    assert read.at == AT
    assert read.at.tzinfo is not None
    assert read._state.db == connection.alias
    assert not read._state.adding


@pytest.mark.django_db
def test_booleans_and_empty_dates_convert_as_the_orm_converts_them():
    user = User.objects.create_user(username="probe.statements", password="x" * 12, is_active=False)
    read = statements.get_by(User, pk=user.pk)
    assert read is not None
    assert read.is_active is False
    assert read.last_login is None
    assert _as_stored(read) == _as_stored(User.objects.get(pk=user.pk))


@pytest.mark.django_db
def test_a_missing_row_is_none():
    assert statements.get_by(AuditEntry, seq=987_654) is None
    assert statements.get_by(Organisation, slug="no-such-organisation") is None


@pytest.mark.django_db
def test_auto_now_add_is_filled_in_on_insert_as_save_would():
    organisation = statements.insert(Organisation(slug="probe-org", name="Probe", kind="constituent"))
    assert organisation.created_at is not None
    assert Organisation.objects.get(pk=organisation.pk).created_at == organisation.created_at


@pytest.mark.django_db
def test_a_stored_instance_is_not_inserted_again():
    entry = statements.insert(_entry(10_003))
    with pytest.raises(ValueError, match="already stored"):
        statements.insert(entry)
    assert AuditEntry.objects.filter(seq=10_003).count() == 1


def test_only_stored_fields_can_be_keys():
    with pytest.raises(TypeError, match="not a stored field"):
        statements.get_by(User, memberships=1)


def test_models_without_an_automatic_key_are_left_to_the_orm():
    with pytest.raises(TypeError, match="no automatic primary key"):
        statements.insert(AuditMark(seq=0, hash="0" * 64))


@pytest.mark.django_db
def test_columns_and_from_row_read_a_joined_row():
    user = User.objects.create_user(username="probe.join", password="x" * 12)
    token = ApiToken.objects.create(
        user=user,
        name="probe",
        prefix="cnt_abc",
        digest="d" * 64,
        created_at=AT,
        expires_at=AT + dt.timedelta(days=400),
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {statements.columns(ApiToken, 't')}, {statements.columns(User, 'u')} "  # noqa: S608
            "FROM accounts_apitoken t JOIN accounts_user u ON u.id = t.user_id WHERE t.id = %s",
            [token.pk],
        )
        row = cursor.fetchone()
    assert _as_stored(statements.from_row(ApiToken, row)) == _as_stored(ApiToken.objects.get(pk=token.pk))
    start = len(ApiToken._meta.concrete_fields)
    assert _as_stored(statements.from_row(User, row, start=start)) == _as_stored(User.objects.get(pk=user.pk))
