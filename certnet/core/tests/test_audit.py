import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction

from certnet.core import audit
from certnet.core.audit import GENESIS_HASH, SystemActor
from certnet.core.models import AuditEntry, AuditHead
from certnet.registry.models import Function

ACTOR = SystemActor("test")


def _write(n: int) -> list[AuditEntry]:
    target = Function.objects.create(slug="probe", name="Probe")
    entries = []
    for i in range(n):
        with transaction.atomic():
            entries.append(audit.record(actor=ACTOR, action="test.step", target=target, data={"i": i}))
    return entries


def _raw(sql: str, *params: str) -> None:
    # Tampering happens beneath the ORM, as an attacker with database access would do it.
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


@pytest.mark.django_db
def test_entries_chain_from_genesis():
    entries = _write(3)
    assert [e.seq for e in entries] == [1, 2, 3]
    assert entries[0].prev_hash == GENESIS_HASH
    assert entries[1].prev_hash == entries[0].hash
    assert entries[2].prev_hash == entries[1].hash
    assert AuditHead.objects.get().seq == 3
    assert audit.verify() == audit.VerifyResult(True, 3)


@pytest.mark.django_db(transaction=True)  # no test-wide transaction around this one
def test_record_outside_a_transaction_is_refused():
    target = Function.objects.create(slug="probe", name="Probe")
    with pytest.raises(RuntimeError, match="inside the service's transaction"):
        audit.record(actor=ACTOR, action="test.step", target=target)


@pytest.mark.django_db
def test_altered_entry_is_named():
    _write(4)
    _raw("UPDATE core_auditentry SET data = %s WHERE seq = 2", '{"i": 99}')
    result = audit.verify()
    assert (result.ok, result.first_bad_seq, result.checked) == (False, 2, 1)
    assert "altered" in result.reason


@pytest.mark.django_db
def test_altered_actor_is_named():
    _write(3)
    _raw("UPDATE core_auditentry SET actor_label = 'someone-else' WHERE seq = 3")
    assert audit.verify().first_bad_seq == 3


@pytest.mark.django_db
def test_removed_middle_entry_is_named():
    _write(5)
    _raw("DELETE FROM core_auditentry WHERE seq = 3")
    result = audit.verify()
    assert (result.ok, result.first_bad_seq) == (False, 3)
    assert "missing" in result.reason


@pytest.mark.django_db
def test_removed_last_entry_is_detected_through_the_head():
    _write(3)
    _raw("DELETE FROM core_auditentry WHERE seq = 3")
    result = audit.verify()
    assert (result.ok, result.first_bad_seq) == (False, 3)
    assert "removed" in result.reason


@pytest.mark.django_db
def test_rehashed_entry_breaks_the_link_to_the_next():
    entries = _write(3)
    # An attacker who rewrites entry 2 and recomputes its hash still breaks entry 3's link.
    fake_hash = "f" * 64
    _raw("UPDATE core_auditentry SET hash = %s WHERE seq = 2", fake_hash)
    result = audit.verify()
    assert result.first_bad_seq == 2
    assert entries[2].prev_hash != fake_hash


@pytest.mark.django_db
def test_audit_verify_command_exit_codes(capsys):
    _write(2)
    call_command("audit", "verify")
    assert "2 entries verified" in capsys.readouterr().out
    _raw("UPDATE core_auditentry SET action = 'x' WHERE seq = 1")
    with pytest.raises(CommandError, match="#1") as excinfo:
        call_command("audit", "verify")
    assert excinfo.value.returncode == 1


@pytest.mark.django_db
def test_floats_are_recorded_as_text_so_the_chain_verifies_everywhere():
    target = Function.objects.create(slug="probe", name="Probe")
    with transaction.atomic():
        entry = audit.record(
            actor=ACTOR,
            action="test.float",
            target=target,
            data={"score": 1e16, "nested": [0.1, {"x": float("nan")}]},
        )
    entry.refresh_from_db()
    assert entry.data == {"score": "1e+16", "nested": ["0.1", {"x": "nan"}]}
    assert audit.verify().ok
