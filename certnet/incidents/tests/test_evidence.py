"""Evidence through the services: receipt (hash, size limit, bytes outside the database), downloads and
who gets the bytes, report files showing on the incident, referrals, evidence packages and their
verification with the real `certnet evidence verify` command, tampering and an altered stored file.

Evidence is stored in a fresh directory per test (the "evidence" storage pointed at tmp_path)."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import IO, Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction

from certnet.core import clock
from certnet.core.audit import SystemActor
from certnet.core.errors import Conflict, Forbidden, InvalidInput, NotFound, TooLarge
from certnet.core.models import AuditEntry
from certnet.core.roles import Role
from certnet.incidents import packages, services, storage
from certnet.incidents.models import (
    CustodyEntry,
    Evidence,
    EvidencePackage,
    Incident,
    Referral,
    Report,
    TimelineEvent,
)
from certnet.incidents.models_handling import EvidenceSource
from certnet.incidents.selectors_evidence import evidence_of_incident
from certnet.incidents.services import evidence as ev
from certnet.registry import services as registry

SYSTEM = SystemActor("test")
AWARE = dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.UTC)
NOW = AWARE + dt.timedelta(hours=1)


@pytest.fixture(autouse=True)
def evidence_dir(settings: Any, tmp_path: Path) -> Path:
    """Evidence bytes go to a directory of this test's own (setting STORAGES resets Django's cache)."""
    directory = tmp_path / "evidence"
    settings.CERTNET_EVIDENCE_DIR = directory
    settings.STORAGES = {
        **settings.STORAGES,
        "evidence": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(directory), "file_permissions_mode": 0o600},
        },
    }
    return directory


@pytest.fixture(autouse=True)
def _frozen() -> Any:
    with clock.frozen_at(NOW):
        yield


def stored_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file()) if directory.exists() else []


@pytest.fixture
def people(framework: Any, make_user: Any) -> dict[str, Any]:
    registry.create_organisation(
        actor=SYSTEM,
        data=registry.OrganisationInput(
            slug="lahore",
            name="Lahore",
            kind="constituent",
            reports_to="punjab-cert",
            reports_since=dt.date(2024, 1, 1),
            tlp="amber",
        ),
    )
    orgs = {o.slug: o for o in type(framework["ncert"]).objects.all()}
    return {
        "lahore": make_user(orgs["lahore"], Role.ANALYST, username="lahore.analyst"),
        "lahore.viewer": make_user(orgs["lahore"], Role.VIEWER, username="lahore.viewer"),
        "punjab": make_user(orgs["punjab-cert"], Role.HANDLER, username="punjab.handler"),
        "punjab.other": make_user(orgs["punjab-cert"], Role.HANDLER, username="punjab.other"),
        "sindh": make_user(orgs["sindh-cert"], Role.HANDLER, username="sindh.handler"),
        "ncert": make_user(orgs["ncert"], Role.HANDLER, username="ncert.handler"),
    }


def file_report(people: dict[str, Any], **extra: Any) -> Report:
    return services.submit_report(
        actor=people["lahore"],
        data=services.ReportInput(
            reporting_organisation="lahore",
            title="Ransomware at Lahore",
            description="Files encrypted",
            aware_at=AWARE,
            **extra,
        ),
    )


def open_incident(people: dict[str, Any], report: Report | None = None, **extra: Any) -> Incident:
    return services.triage_report(
        actor=people["punjab"],
        report=report or file_report(people, **extra),
        data=services.TriageInput(
            classification_taxonomy="malicious-code", classification_type="infected-system", severity=2
        ),
    )


def upload(name: str, content: bytes | IO[bytes], **extra: Any) -> ev.Upload:
    return ev.Upload(filename=name, content=content, content_type="text/plain", **extra)


# --- receipt --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_receipt_hashes_the_bytes_and_keeps_them_outside_the_database(people, evidence_dir) -> None:
    incident = open_incident(people)
    content = b"GET /wp-login.php 200\n" * 50
    evidence = ev.add_evidence(
        actor=people["lahore"],
        incident=incident,
        upload=upload("../../logs/access.log", content, description="web server log"),
    )
    assert (evidence.filename, evidence.size, evidence.sha256) == (
        "access.log",
        len(content),
        hashlib.sha256(content).hexdigest(),
    )
    assert (evidence.source, evidence.description, evidence.received_by) == (
        EvidenceSource.UPLOAD,
        "web server log",
        people["lahore"],
    )
    [on_disk] = stored_files(evidence_dir)
    assert on_disk.read_bytes() == content
    assert on_disk.relative_to(evidence_dir).as_posix() == evidence.storage_key
    assert storage.hash_of(evidence.storage_key) == evidence.sha256
    [entry] = CustodyEntry.objects.filter(evidence=evidence)
    assert (entry.action, entry.actor_label, entry.at) == ("received", "lahore.analyst", NOW)
    assert entry.detail == f"{len(content)} bytes, sha256 {evidence.sha256}"
    audit = AuditEntry.objects.filter(action="incidents.evidence.received", object_id=str(evidence.pk)).get()
    assert audit.data == {"sha256": evidence.sha256, "detail": entry.detail}
    event = TimelineEvent.objects.filter(incident=incident, kind="evidence").get()
    assert event.summary.startswith(
        f"evidence access.log added ({len(content)} bytes, sha256 {evidence.sha256[:16]}"
    )


@pytest.mark.django_db
def test_an_oversized_file_is_refused_with_its_size_and_the_limit_and_nothing_is_stored(
    people, evidence_dir, settings
) -> None:
    incident = open_incident(people)
    settings.CERTNET_EVIDENCE_MAX_BYTES = 100
    before = (Evidence.objects.count(), CustodyEntry.objects.count(), AuditEntry.objects.count())
    with pytest.raises(TooLarge) as known:
        ev.add_evidence(actor=people["punjab"], incident=incident, upload=upload("dump.bin", b"x" * 101))
    assert (
        known.value.detail == "the file 'dump.bin' is 101 bytes; the limit for an evidence file is 100 bytes"
    )
    assert known.value.status == 413
    # A stream of unknown length is measured while it is stored, and refused just the same.
    with pytest.raises(
        TooLarge, match=re.escape("the file 'stream.bin' is larger than the limit of 100 bytes")
    ):
        ev.add_evidence(
            actor=people["punjab"], incident=incident, upload=upload("stream.bin", io.BytesIO(b"y" * 500))
        )
    with pytest.raises(InvalidInput, match=re.escape("the file 'empty.txt' is empty")):
        ev.add_evidence(actor=people["punjab"], incident=incident, upload=upload("empty.txt", b""))
    assert (Evidence.objects.count(), CustodyEntry.objects.count(), AuditEntry.objects.count()) == before
    assert stored_files(evidence_dir) == []
    # Exactly at the limit is accepted.
    ev.add_evidence(actor=people["punjab"], incident=incident, upload=upload("ok.bin", b"z" * 100))
    assert len(stored_files(evidence_dir)) == 1


def _store_then_fail(actor: Any, report: Report, evidence_dir: Path) -> None:
    with ev.bytes_kept_only_if_committed(), transaction.atomic():
        ev.receive_evidence(
            actor=actor,
            content=b"first",
            filename="a.txt",
            content_type="text/plain",
            source=EvidenceSource.API,
            report=report,
        )
        assert len(stored_files(evidence_dir)) == 1
        raise RuntimeError("a later step failed")


@pytest.mark.django_db
def test_bytes_stored_by_a_transaction_that_fails_are_deleted_again(people, evidence_dir) -> None:
    report = file_report(people)
    with pytest.raises(RuntimeError, match="a later step failed"):
        _store_then_fail(people["lahore"], report, evidence_dir)
    assert stored_files(evidence_dir) == []
    assert Evidence.objects.count() == 0


@pytest.mark.django_db
def test_who_may_add_evidence(people) -> None:
    incident = open_incident(people)
    report = file_report(people)
    for who in ("lahore.viewer",):
        with pytest.raises(Forbidden):
            ev.add_evidence(actor=people[who], incident=incident, upload=upload("a.txt", b"a"))
        with pytest.raises(Forbidden):
            ev.add_evidence(actor=people[who], report=report, upload=upload("a.txt", b"a"))
    with pytest.raises(NotFound, match=f"no incident {incident.pk}"):
        ev.add_evidence(actor=people["sindh"], incident=incident, upload=upload("a.txt", b"a"))
    for who in ("lahore", "punjab", "ncert"):
        ev.add_evidence(actor=people[who], incident=incident, upload=upload(f"{who}.txt", who.encode()))
        ev.add_evidence(actor=people[who], report=report, upload=upload(f"{who}.txt", who.encode()))
    assert Evidence.objects.filter(incident=incident).count() == 3
    assert Evidence.objects.filter(report=report).count() == 3


# --- downloads ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_downloads_are_in_the_custody_log_and_red_stub_viewers_never_get_the_bytes(people) -> None:
    red = open_incident(people, tlp="red", named_users=["punjab.handler"])
    evidence = ev.add_evidence(
        actor=people["punjab"], incident=red, upload=upload("memory.img", b"\x00\x01secret")
    )
    got = ev.open_evidence_for_download(actor=people["punjab"], evidence_id=evidence.pk, via="in a test")
    with got.file:
        assert got.file.read() == b"\x00\x01secret"
    entries = list(
        CustodyEntry.objects.filter(evidence=evidence).values_list("action", "actor_label", "detail")
    )
    assert entries == [
        ("received", "punjab.handler", f"8 bytes, sha256 {evidence.sha256}"),
        ("downloaded", "punjab.handler", "downloaded in a test"),
    ]
    assert (
        AuditEntry.objects.filter(action="incidents.evidence.downloaded", object_id=str(evidence.pk)).count()
        == 1
    )
    # The same CERT's other handler, the affected organisation's viewer and the National CERT see the
    # incident as a stub only: refused, and the refusal is not an access.
    for who in ("punjab.other", "lahore.viewer", "ncert"):
        with pytest.raises(Forbidden, match=f"you may not see evidence {evidence.pk}"):
            ev.open_evidence_for_download(actor=people[who], evidence_id=evidence.pk)
    with pytest.raises(NotFound, match=f"no evidence {evidence.pk}"):
        ev.open_evidence_for_download(actor=people["sindh"], evidence_id=evidence.pk)
    with pytest.raises(NotFound, match="no evidence 98765"):
        ev.open_evidence_for_download(actor=people["punjab"], evidence_id=98765)
    assert CustodyEntry.objects.filter(evidence=evidence).count() == 2


@pytest.mark.django_db
def test_a_reports_files_show_on_the_incident_it_became_part_of(people) -> None:
    report = file_report(people)
    first = ev.add_evidence(actor=people["lahore"], report=report, upload=upload("phish.eml", b"From: x"))
    incident = open_incident(people, report=report)
    own = ev.add_evidence(actor=people["punjab"], incident=incident, upload=upload("notes.txt", b"n"))
    other = open_incident(people)
    ev.add_evidence(actor=people["punjab"], incident=other, upload=upload("elsewhere.txt", b"e"))
    listed = list(evidence_of_incident(incident, people["ncert"]))
    # The report's file was received, then attached to the incident at triage.
    assert [(e.pk, e.custody_count) for e in listed] == [(first.pk, 2), (own.pk, 1)]  # type: ignore[attr-defined]
    assert [c.action for c in first.custody.all()] == ["received", "attached"]
    # The National CERT never saw the report as such, but reads the incident, so it reads its files.
    got = ev.open_evidence_for_download(actor=people["ncert"], evidence_id=first.pk)
    got.file.close()
    # A file added to the report after triage goes on the incident's timeline too.
    ev.add_evidence(actor=people["lahore"], report=report, upload=upload("later.pcap", b"pcap"))
    summaries = list(
        TimelineEvent.objects.filter(incident=incident, kind="evidence").values_list("summary", flat=True)
    )
    assert [s.split(" (")[0] for s in summaries] == [
        "evidence notes.txt added",
        f"evidence later.pcap added to report R-{report.pk}",
    ]


@pytest.mark.django_db
def test_a_red_reports_files_stay_with_its_readers_when_merged_into_a_wider_incident(people) -> None:
    incident = open_incident(people)  # AMBER: the whole chain reads it
    red = file_report(people, tlp="red", named_users=["punjab.handler"])
    secret = ev.add_evidence(actor=people["lahore"], report=red, upload=upload("keys.txt", b"k"))
    services.merge_report(actor=people["punjab"], report=red, incident_id=incident.pk)
    assert [e.pk for e in evidence_of_incident(incident, people["punjab"])] == [secret.pk]
    for who in ("ncert", "punjab.other", "lahore.viewer"):
        assert list(evidence_of_incident(incident, people[who])) == []
        with pytest.raises(Forbidden):
            ev.open_evidence_for_download(actor=people[who], evidence_id=secret.pk)
    ev.open_evidence_for_download(actor=people["punjab"], evidence_id=secret.pk).file.close()
    # The package is what its exporter may read.
    with ev.export_package(actor=people["ncert"], incident=incident).file as package:
        assert [
            f["evidence_id"] for f in json.loads(zipfile.ZipFile(package).read("manifest.json"))["files"]
        ] == []


# --- referral -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_referral_to_the_investigating_agency(people) -> None:
    incident = open_incident(people)
    referral = ev.create_referral(
        actor=people["punjab"],
        incident=incident,
        agency="nccia",
        sections=["s.3", "S. 4", "section 26a", "s. 3"],
        case_number=" NCCIA/LHR/2026/117 ",
        note="Ransom note attached",
    )
    assert (referral.agency.slug, referral.case_number, referral.sections, referral.referred_at) == (
        "nccia",
        "NCCIA/LHR/2026/117",
        ["s. 3", "s. 4", "s. 26A"],
        NOW,
    )
    audit = AuditEntry.objects.get(action="incidents.referral.create", object_id=str(referral.pk))
    assert audit.data == {
        "incident": incident.pk,
        "agency": "nccia",
        "case_number": "NCCIA/LHR/2026/117",
        "sections": ["s. 3", "s. 4", "s. 26A"],
    }
    event = TimelineEvent.objects.get(incident=incident, kind="referred")
    assert event.summary == "referred to NCCIA, case NCCIA/LHR/2026/117 under PECA-2016 s. 3, s. 4, s. 26A"


@pytest.mark.django_db
def test_a_referral_names_what_is_wrong_and_writes_nothing(people) -> None:
    incident = open_incident(people)
    before = (Referral.objects.count(), AuditEntry.objects.count(), TimelineEvent.objects.count())
    with pytest.raises(InvalidInput) as known:
        ev.create_referral(
            actor=people["punjab"],
            incident=incident,
            agency="punjab-police",
            sections=["s. 3", "s. 99", "article 5"],
            case_number="x" * 81,
        )
    assert [(e.loc, e.msg) for e in known.value.errors] == [
        ("agency", "'punjab-police' is not an investigating agency; valid agencies: fia-ccw, nccia"),
        ("case_number", "is 81 characters long; the limit is 80"),
        ("sections[1]", "'s. 99' is not a PECA-2016 section: write 's. N' with N from 1 to 55 (e.g. 's. 3')"),
        (
            "sections[2]",
            "'article 5' is not a PECA-2016 section: write 's. N' with N from 1 to 55 (e.g. 's. 3')",
        ),
    ]
    with pytest.raises(InvalidInput, match="sections: name the PECA-2016 sections"):
        ev.create_referral(actor=people["punjab"], incident=incident, agency="nccia", sections=[])
    # A registry organisation that is no law-enforcement body is no agency either.
    with pytest.raises(InvalidInput, match="'ncert' is not an investigating agency"):
        ev.create_referral(actor=people["punjab"], incident=incident, agency="ncert", sections=["s. 3"])
    with pytest.raises(Forbidden):
        ev.create_referral(actor=people["lahore"], incident=incident, agency="nccia", sections=["s. 3"])
    with pytest.raises(NotFound):
        ev.create_referral(actor=people["sindh"], incident=incident, agency="nccia", sections=["s. 3"])
    assert (Referral.objects.count(), AuditEntry.objects.count(), TimelineEvent.objects.count()) == before


# --- packages -------------------------------------------------------------------------------------


def exported(people: dict[str, Any], tmp_path: Path) -> tuple[Incident, Path, ev.ExportedPackage]:
    report = file_report(people)
    ev.add_evidence(actor=people["lahore"], report=report, upload=upload("ransom-note.txt", b"pay 5 BTC"))
    incident = open_incident(people, report=report)
    ev.add_evidence(
        actor=people["punjab"], incident=incident, upload=upload("ransom-note.txt", b"second copy")
    )
    referral = ev.create_referral(
        actor=people["punjab"], incident=incident, agency="nccia", sections=["s. 3", "s. 4"]
    )
    package = ev.export_package(actor=people["punjab"], incident=incident, referral_id=referral.pk)
    path = tmp_path / package.filename
    with package.file:
        path.write_bytes(package.file.read())
    return incident, path, package


def verify_command(path: Path, *extra: str) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("evidence", "verify", str(path), *extra, stdout=out)
    except CommandError as exc:
        return exc.returncode, out.getvalue() + f"\nCommandError: {exc}"
    return 0, out.getvalue()


@pytest.mark.django_db
def test_export_packs_files_manifest_custody_and_timeline_and_records_the_manifest_hash(
    people, tmp_path
) -> None:
    incident, path, package = exported(people, tmp_path)
    files = list(Evidence.objects.order_by("pk"))
    with zipfile.ZipFile(path) as archive:
        names = sorted(archive.namelist())
        manifest_bytes = archive.read("manifest.json")
        manifest = json.loads(manifest_bytes)
        custody = json.loads(archive.read("custody.json"))
        timeline = json.loads(archive.read("timeline.json"))
        assert archive.read(f"evidence/{files[0].pk}-ransom-note.txt") == b"pay 5 BTC"
    assert names == sorted(
        [
            "custody.json",
            f"evidence/{files[0].pk}-ransom-note.txt",
            f"evidence/{files[1].pk}-ransom-note.txt",
            "manifest.json",
            "timeline.json",
        ]
    )
    assert package.manifest_sha256 == hashlib.sha256(manifest_bytes).hexdigest()
    assert package.filename == f"{incident.reference}-evidence-20261101T090000Z.zip"
    assert manifest["incident"]["reference"] == incident.reference
    assert (manifest["exported_at"], manifest["exported_by"]) == ("2026-11-01T09:00:00Z", "punjab.handler")
    assert (manifest["referral"]["agency"], manifest["referral"]["sections"]) == ("nccia", ["s. 3", "s. 4"])
    assert [(f["evidence_id"], f["sha256"], f["size"], f["received_at"]) for f in manifest["files"]] == [
        (e.pk, e.sha256, e.size, "2026-11-01T09:00:00Z") for e in files
    ]
    # The custody log in the package includes this very export, and the manifest vouches for it.
    assert [(c["evidence_id"], c["action"]) for c in custody] == [
        (files[0].pk, "received"),
        (files[0].pk, "attached"),  # it came with the report, attached when the report was triaged
        (files[1].pk, "received"),
        (files[0].pk, "exported"),
        (files[1].pk, "exported"),
    ]
    assert (
        manifest["custody"]["sha256"]
        == hashlib.sha256(
            json.dumps(custody, indent=2, sort_keys=True, ensure_ascii=False).encode() + b"\n"
        ).hexdigest()
    )
    assert [t["kind"] for t in timeline] == ["opened", "evidence", "referred"]
    row = EvidencePackage.objects.get()
    assert (row.manifest_sha256, row.file_count, row.total_bytes, row.referral_id, row.incident_id) == (
        package.manifest_sha256,
        2,
        len(b"pay 5 BTC") + len(b"second copy"),
        manifest["referral"]["id"],
        incident.pk,
    )
    audit = AuditEntry.objects.get(action="incidents.evidence.package")
    assert audit.data["manifest_sha256"] == package.manifest_sha256
    assert CustodyEntry.objects.filter(action="exported").count() == 2
    assert (
        TimelineEvent.objects.filter(incident=incident, kind="evidence-package")
        .get()
        .summary.endswith(package.manifest_sha256)
    )
    assert packages.verify(path).ok


@pytest.mark.django_db
def test_verify_command_passes_an_intact_package_and_finds_it_in_the_audit_log(people, tmp_path) -> None:
    _, path, package = exported(people, tmp_path)
    code, out = verify_command(path)
    assert code == 0, out
    assert f"ok    manifest sha256 recorded here: evidence package #{EvidencePackage.objects.get().pk}" in out
    seq = AuditEntry.objects.get(action="incidents.evidence.package").seq
    assert f"audit log entry #{seq}" in out
    assert "evidence package intact: every hash matches its manifest" in out
    assert out.count("\nok  ") >= 5  # the manifest, two files, custody, timeline
    assert verify_command(path, "--manifest-sha256", package.manifest_sha256)[0] == 0
    code, out = verify_command(path, "--manifest-sha256", "0" * 64)
    assert code == 1
    assert f"manifest sha256 is {package.manifest_sha256}, not {'0' * 64}" in out


def rewrite(
    source: Path,
    target: Path,
    *,
    change: dict[str, bytes] | None = None,
    drop: str = "",
    add: dict[str, bytes] | None = None,
) -> Path:
    """A copy of the zip with members replaced, dropped or added (CRCs correct: the zip itself is fine)."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            if info.filename == drop:
                continue
            data = (change or {}).get(info.filename, old.read(info.filename))
            new.writestr(info.filename, data)
        for name, data in (add or {}).items():
            new.writestr(name, data)
    return target


@pytest.mark.django_db
def test_tampered_packages_fail_with_every_problem_named(people, tmp_path) -> None:
    _, path, _ = exported(people, tmp_path)
    first, second = list(Evidence.objects.order_by("pk"))
    one = f"evidence/{first.pk}-ransom-note.txt"
    two = f"evidence/{second.pk}-ransom-note.txt"
    altered = hashlib.sha256(b"pay 50 BTC").hexdigest()

    code, out = verify_command(rewrite(path, tmp_path / "bytes.zip", change={one: b"pay 50 BTC"}))
    assert code == 1
    assert (
        f"FAIL  {one}: HASH MISMATCH, the file hashes to sha256 {altered} "
        f"but the manifest records {first.sha256}" in out
    )
    assert f"ok    {two}: sha256 {second.sha256} matches" in out
    assert "CommandError: evidence package FAILED verification: 1 problem; first: " in out

    manifest = json.loads(zipfile.ZipFile(path).read("manifest.json"))
    manifest["files"][1]["sha256"] = "f" * 64
    code, out = verify_command(
        rewrite(path, tmp_path / "manifest.zip", change={"manifest.json": json.dumps(manifest).encode()})
    )
    assert code == 1
    assert (
        f"{two}: HASH MISMATCH, the file hashes to sha256 {second.sha256} but the manifest records {'f' * 64}"
        in out
    )
    assert "is NOT recorded in this database" in out

    code, out = verify_command(rewrite(path, tmp_path / "dropped.zip", drop=two))
    assert (code, f"FAIL  {two} is listed in the manifest but missing from the package" in out) == (1, True)

    code, out = verify_command(rewrite(path, tmp_path / "added.zip", add={"evidence/99-extra.exe": b"MZ"}))
    assert (code, "FAIL  evidence/99-extra.exe is in the package but not in the manifest" in out) == (1, True)

    code, out = verify_command(rewrite(path, tmp_path / "custody.zip", change={"custody.json": b"[]\n"}))
    assert (code, "FAIL  custody.json: HASH MISMATCH" in out) == (1, True)

    code, out = verify_command(rewrite(path, tmp_path / "no-manifest.zip", drop="manifest.json"))
    assert code == 1
    assert "FAIL  manifest.json is missing: nothing in the package can be checked against it" in out
    assert f"FAIL  {one} cannot be checked: there is no usable manifest" in out

    code, out = verify_command(
        rewrite(path, tmp_path / "garbled.zip", change={"manifest.json": b"{not json"})
    )
    assert (code, "FAIL  manifest.json is not valid JSON (line 1, column 2" in out) == (1, True)

    # Altered consistently (the file and its hash in the manifest): every hash matches, but this
    # database never recorded that manifest, which the command says, and --require-recorded fails.
    manifest = json.loads(zipfile.ZipFile(path).read("manifest.json"))
    manifest["files"][0].update(sha256=altered, size=len(b"pay 50 BTC"))
    forged = rewrite(
        path,
        tmp_path / "forged.zip",
        change={one: b"pay 50 BTC", "manifest.json": json.dumps(manifest).encode()},
    )
    code, out = verify_command(forged)
    assert code == 0, out
    assert "NOTE  manifest sha256" in out
    assert "is NOT recorded in this database" in out
    assert verify_command(forged, "--require-recorded")[0] == 1
    assert verify_command(path, "--require-recorded")[0] == 0


@pytest.mark.django_db
def test_a_corrupted_member_and_files_that_are_no_zip(people, tmp_path) -> None:
    _, path, _ = exported(people, tmp_path)
    # Flip bytes inside a stored member without fixing the zip's CRC: reported, not a crash.
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("timeline.json")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    raw[start + 5] ^= 0xFF
    damaged = tmp_path / "damaged.zip"
    damaged.write_bytes(bytes(raw))
    code, out = verify_command(damaged)
    assert code == 1
    assert "FAIL  timeline.json is damaged inside the zip" in out

    not_zip = tmp_path / "package.zip"
    not_zip.write_bytes(b"%PDF-1.7 not a zip")
    with pytest.raises(CommandError) as known:
        call_command("evidence", "verify", str(not_zip), stdout=io.StringIO())
    assert known.value.returncode == 2
    assert str(known.value) == f"cannot verify: {not_zip} is not a zip file (an evidence package is a .zip)"
    with pytest.raises(CommandError) as known:
        call_command("evidence", "verify", str(tmp_path / "missing.zip"), stdout=io.StringIO())
    assert known.value.returncode == 2
    assert "cannot be read: No such file or directory" in str(known.value)


def certnet_command() -> list[str]:
    """The installed `certnet` script beside this Python (the .venv's), else the module."""
    script = Path(sys.executable).parent / "certnet"
    return [str(script)] if script.exists() else [sys.executable, "-m", "certnet.cli"]


@pytest.mark.django_db
def test_the_certnet_command_verifies_a_package_on_a_machine_that_never_saw_it(people, tmp_path) -> None:
    _, path, _ = exported(people, tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {
        **os.environ,
        "CERTNET_VAR_DIR": str(elsewhere),
        "DATABASE_URL": f"sqlite:///{elsewhere / 'empty.sqlite3'}",
    }

    def verify(package: Path) -> subprocess.CompletedProcess[str]:
        command = [*certnet_command(), "evidence", "verify", str(package)]
        return subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603

    intact = verify(path)
    assert intact.returncode == 0, intact.stdout + intact.stderr
    assert "evidence package intact" in intact.stdout
    assert "could not consult this database" in intact.stdout
    tampered = verify(rewrite(path, tmp_path / "t.zip", change={"timeline.json": b"[]"}))
    assert tampered.returncode == 1
    assert "FAIL  timeline.json: HASH MISMATCH" in tampered.stdout
    assert "evidence package FAILED verification" in tampered.stderr
    garbage = tmp_path / "garbage.zip"
    garbage.write_text("hello")
    unreadable = verify(garbage)
    assert unreadable.returncode == 2
    assert f"{garbage} is not a zip file" in unreadable.stderr


@pytest.mark.django_db
def test_a_stored_file_altered_on_disk_stops_the_export(people, tmp_path, evidence_dir) -> None:
    report = file_report(people)
    incident = open_incident(people, report=report)
    good = ev.add_evidence(actor=people["punjab"], incident=incident, upload=upload("a.txt", b"original"))
    bad = ev.add_evidence(actor=people["punjab"], incident=incident, upload=upload("b.txt", b"original too"))
    (evidence_dir / bad.storage_key).write_bytes(b"rewritten")
    before = (CustodyEntry.objects.count(), TimelineEvent.objects.count(), EvidencePackage.objects.count())
    with pytest.raises(Conflict) as known:
        ev.export_package(actor=people["punjab"], incident=incident)
    actual = hashlib.sha256(b"rewritten").hexdigest()
    assert known.value.detail == (
        f"evidence {bad.pk} ('b.txt') no longer matches the hash recorded on receipt (recorded sha256 "
        f"{bad.sha256}, the stored bytes now hash to {actual}); nothing was exported"
    )
    assert (
        CustodyEntry.objects.count(),
        TimelineEvent.objects.count(),
        EvidencePackage.objects.count(),
    ) == before
    failure = AuditEntry.objects.get(action="incidents.evidence.integrity_failure")
    assert (failure.data["recorded"], failure.data["actual"]) == (bad.sha256, actual)
    assert good.pk  # the intact file was not the problem
    # A file missing from the store altogether is refused as plainly.
    (evidence_dir / bad.storage_key).unlink()
    with pytest.raises(Conflict, match=f"the stored bytes of evidence {bad.pk} \\('b.txt'\\) are missing"):
        ev.export_package(actor=people["punjab"], incident=incident)


@pytest.mark.django_db
def test_who_may_export_and_which_referral(people) -> None:
    incident = open_incident(people)
    for who, error in (("lahore", Forbidden), ("lahore.viewer", Forbidden), ("sindh", NotFound)):
        with pytest.raises(error):
            ev.export_package(actor=people[who], incident=incident)
    other = open_incident(people)
    foreign = ev.create_referral(actor=people["punjab"], incident=other, agency="nccia", sections=["s. 3"])
    with pytest.raises(
        InvalidInput, match=f"referral_id: incident {incident.pk} has no referral {foreign.pk}"
    ):
        ev.export_package(actor=people["punjab"], incident=incident, referral_id=foreign.pk)
    assert EvidencePackage.objects.count() == 0
    # An incident without files still exports its timeline; the National CERT handles it too.
    package = ev.export_package(actor=people["ncert"], incident=incident)
    package.file.close()
    assert EvidencePackage.objects.get().file_count == 0
