"""Every evidence and referral endpoint walked with people of every tier, and files attached to reports.

Organisations: the real Pakistan framework plus lahore (AMBER) under punjab-cert. People: anonymous;
lahore's viewer and analyst (the affected organisation); punjab-cert's viewer and two handlers (the
handling CERT; only one of them is named on TLP:RED incidents); sindh-cert's handler (another
province); ncert's viewer and handler (the National CERT); nadra's analyst (an unrelated CII operator);
a platform administrator.

Expected: 401 anonymous; 404 for whoever may not see the incident at all (answered like a missing
record); 403 for whoever sees it but may not act, and for whoever sees a TLP:RED incident as a stub
only (never a byte of its files); 200/201 otherwise. A refused request changes nothing: no row, no
custody entry, no audit entry, no stored file. Evidence is stored in a directory of each test's own.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from certnet.accounts.models import User
from certnet.core import clock
from certnet.core.audit import SystemActor
from certnet.core.models import AuditEntry
from certnet.core.roles import Role
from certnet.incidents import packages
from certnet.incidents.models import CustodyEntry, Evidence, EvidencePackage, Referral, Report
from certnet.registry import services as registry

SYSTEM = SystemActor("test")
PROBLEM = "application/problem+json"
AWARE = dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.UTC)
NOW = AWARE + dt.timedelta(hours=1)
MISSING = 987_654

ANON = "anonymous"
L_VIEWER, L_ANALYST = "lahore.viewer", "lahore.analyst"
P_VIEWER, P_HANDLER, P_OTHER = "punjab.viewer", "punjab.handler", "punjab.other"
S_HANDLER = "sindh.handler"
N_VIEWER, N_HANDLER = "ncert.viewer", "ncert.handler"
NADRA = "nadra.analyst"
ADMIN = "platform.admin"

PEOPLE: dict[str, tuple[str, Role] | None] = {
    L_VIEWER: ("lahore", Role.VIEWER),
    L_ANALYST: ("lahore", Role.ANALYST),
    P_VIEWER: ("punjab-cert", Role.VIEWER),
    P_HANDLER: ("punjab-cert", Role.HANDLER),
    P_OTHER: ("punjab-cert", Role.HANDLER),
    S_HANDLER: ("sindh-cert", Role.HANDLER),
    N_VIEWER: ("ncert", Role.VIEWER),
    N_HANDLER: ("ncert", Role.HANDLER),
    NADRA: ("nadra", Role.ANALYST),
    ADMIN: None,
}

# Reading an AMBER incident's evidence and referrals: everyone who sees the incident.
READ = {
    ANON: 401,
    L_VIEWER: 200,
    L_ANALYST: 200,
    P_VIEWER: 200,
    P_HANDLER: 200,
    P_OTHER: 200,
    S_HANDLER: 404,
    N_VIEWER: 200,
    N_HANDLER: 200,
    NADRA: 404,
    ADMIN: 200,
}
# Adding evidence: the affected organisation's analysts, the handlers above it, platform admins.
ADD = {
    **READ,
    L_VIEWER: 403,
    P_VIEWER: 403,
    N_VIEWER: 403,
    **dict.fromkeys((L_ANALYST, P_HANDLER, P_OTHER, N_HANDLER, ADMIN), 201),
}
# Referral and packages: the handlers above (and platform admins); never the affected organisation.
HANDLE = {**ADD, L_ANALYST: 403}
# A TLP:RED incident naming punjab.handler (and its reporter, lahore.analyst): the rest of the chain
# sees a stub and is refused everything about its files; the others do not see it at all.
RED_STUB = {
    ANON: 401,
    L_VIEWER: 403,
    P_VIEWER: 403,
    P_OTHER: 403,
    S_HANDLER: 404,
    N_VIEWER: 403,
    N_HANDLER: 403,
    NADRA: 404,
    ADMIN: 403,
}


@pytest.fixture(autouse=True)
def evidence_dir(settings: Any, tmp_path: Path) -> Path:
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
def _frozen_now() -> Iterator[None]:
    with clock.frozen_at(NOW):
        yield


@dataclass
class World:
    users: dict[str, User]
    clients: dict[str, Any]
    evidence_dir: Path

    def __call__(self, person: str) -> Any:
        return self.clients[person]

    def report(self, person: str = L_ANALYST, **extra: Any) -> int:
        response = self(person).post("/reports", report_body(**extra))
        assert response.status_code == 201, response.content
        return int(response.json()["id"])

    def incident(self, person: str = L_ANALYST, **extra: Any) -> int:
        report_id = self.report(person, **extra)
        body = {
            "decision": "open",
            "classification_taxonomy": "malicious-code",
            "classification_type": "infected-system",
            "severity": 2,
        }
        response = self(P_HANDLER).post(f"/reports/{report_id}/triage", body)
        assert response.status_code == 200, response.content
        return int(response.json()["incident"])

    def evidence(self, incident_id: int, name: str = "log.txt", content: bytes = b"evidence") -> int:
        response = upload(self(P_HANDLER), f"/incidents/{incident_id}/evidence", name, content)
        assert response.status_code == 201, response.content
        return int(response.json()["id"])

    def stored(self) -> list[Path]:
        root = self.evidence_dir
        return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.fixture
def world(framework: Any, make_user: Any, api_as: Any, evidence_dir: Path) -> World:
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
    users = {
        person: make_user(username=person, platform_admin=True)
        if membership is None
        else make_user(orgs[membership[0]], membership[1], username=person)
        for person, membership in PEOPLE.items()
    }
    clients = {person: api_as(user) for person, user in users.items()}
    clients[ANON] = api_as(None)
    return World(users, clients, evidence_dir)


def report_body(**extra: Any) -> dict[str, Any]:
    return {
        "reporting_organisation": "lahore",
        "title": "Ransomware at Lahore",
        "description": "Files encrypted",
        "aware_at": AWARE.isoformat(),
        **extra,
    }


def upload(client: Any, path: str, name: str, content: bytes, description: str = "") -> Any:
    data = {"file": SimpleUploadedFile(name, content, content_type="text/plain"), "description": description}
    return client.client.post("/api/v1" + path, data, headers=client.headers)


def body_of(response: Any) -> bytes:
    # Reading the stream to its end closes the response. Closing it by hand would also fire
    # request_finished, which closes the test's database connection (fatal on PostgreSQL).
    return b"".join(response.streaming_content)


def snapshot(world: World) -> tuple[Any, ...]:
    return (
        Evidence.objects.count(),
        CustodyEntry.objects.count(),
        Referral.objects.count(),
        EvidencePackage.objects.count(),
        Report.objects.count(),
        AuditEntry.objects.count(),
        world.stored(),
    )


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def walk(world: World, table: dict[str, int], send: Callable[[Any], Any]) -> dict[str, Any]:
    """Send as every person in `table`; refusals must be problems that change nothing."""
    got: dict[str, int] = {}
    answers: dict[str, Any] = {}
    for person, expected in table.items():
        before = snapshot(world)
        response = send(world(person))
        got[person] = response.status_code
        answers[person] = response
        if expected >= 400 and response.status_code == expected:
            problem(response, expected)
            assert snapshot(world) == before, person
    assert got == table
    return answers


def same_as_missing(world: World, person: str, path: str, visible_id: int) -> None:
    invisible = problem(world(person).get(path.format(id=visible_id)), 404)
    missing = problem(world(person).get(path.format(id=MISSING)), 404)
    assert re.sub(r"\d+", "N", invisible["detail"]) == re.sub(r"\d+", "N", missing["detail"])


# --- the walk -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_evidence_endpoints_on_an_amber_incident(world: World) -> None:
    incident = world.incident()
    walk(world, ADD, lambda c: upload(c, f"/incidents/{incident}/evidence", "a.txt", b"from the walk"))
    evidence_id = world.evidence(incident, "memory.txt", b"strings of memory")
    listed = walk(world, READ, lambda c: c.get(f"/incidents/{incident}/evidence"))
    assert [e["filename"] for e in listed[N_VIEWER].json()][-1] == "memory.txt"
    walk(world, READ, lambda c: c.get(f"/evidence/{evidence_id}"))
    custody_before = CustodyEntry.objects.filter(evidence_id=evidence_id).count()
    answers = walk(world, READ, lambda c: c.get(f"/evidence/{evidence_id}/download"))
    readers = [p for p, s in READ.items() if s == 200]
    for person in readers:
        response = answers[person]
        assert body_of(response) == b"strings of memory"
        assert response["Content-Type"] == "application/octet-stream"
        assert response["Content-Disposition"] == 'attachment; filename="memory.txt"'
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["X-Evidence-SHA256"] == hashlib.sha256(b"strings of memory").hexdigest()
    downloads = CustodyEntry.objects.filter(evidence_id=evidence_id, action="downloaded")
    assert sorted(downloads.values_list("actor_label", flat=True)) == sorted(readers)
    assert CustodyEntry.objects.filter(evidence_id=evidence_id).count() == custody_before + len(readers)
    for person in (S_HANDLER, NADRA):
        same_as_missing(world, person, "/evidence/{id}", evidence_id)
        same_as_missing(world, person, "/evidence/{id}/download", evidence_id)
        same_as_missing(world, person, "/incidents/{id}/evidence", incident)
    detail = world(P_HANDLER).get(f"/evidence/{evidence_id}").json()
    assert [c["action"] for c in detail["custody"]] == ["received", *["downloaded"] * len(readers)]
    assert detail["custody_entries"] == len(readers) + 1


@pytest.mark.django_db
def test_evidence_on_a_report_and_on_the_incident_it_became(world: World) -> None:
    report = world.report()
    walk(world, ADD, lambda c: upload(c, f"/reports/{report}/evidence", "phish.eml", b"From: attacker"))
    # Through the API a report is read in full or not at all: its files likewise.
    red_report = world.report(tlp="red", named_users=[P_HANDLER])
    table = {**ADD, L_VIEWER: 404, P_VIEWER: 404, P_OTHER: 404, N_VIEWER: 404, N_HANDLER: 404, ADMIN: 404}
    walk(world, table, lambda c: upload(c, f"/reports/{red_report}/evidence", "x.txt", b"x"))
    triage = {
        "decision": "open",
        "classification_taxonomy": "fraud",
        "classification_type": "phishing",
        "severity": 1,
    }
    incident = world(P_HANDLER).post(f"/reports/{report}/triage", triage).json()["incident"]
    listed = world(N_HANDLER).get(f"/incidents/{incident}/evidence").json()
    assert [(e["filename"], e["report"], e["incident"]) for e in listed] == [("phish.eml", report, None)] * 5
    assert all(e["custody_entries"] == 2 for e in listed)  # received with the report, attached at triage


@pytest.mark.django_db
def test_a_red_incidents_files_never_reach_those_who_see_its_stub(world: World) -> None:
    red = world.incident(tlp="red", named_users=[P_HANDLER])
    evidence_id = world.evidence(red, "keys.txt", b"private key material")
    walk(world, RED_STUB, lambda c: c.get(f"/incidents/{red}/evidence"))
    walk(world, RED_STUB, lambda c: c.get(f"/evidence/{evidence_id}"))
    answers = walk(world, RED_STUB, lambda c: c.get(f"/evidence/{evidence_id}/download"))
    for response in answers.values():
        assert b"private key material" not in response.content
    walk(world, RED_STUB, lambda c: upload(c, f"/incidents/{red}/evidence", "y.txt", b"y"))
    walk(world, RED_STUB, lambda c: c.get(f"/incidents/{red}/referrals"))
    walk(
        world,
        RED_STUB,
        lambda c: c.post(f"/incidents/{red}/referrals", {"agency": "nccia", "sections": ["s. 3"]}),
    )
    walk(world, RED_STUB, lambda c: c.post(f"/incidents/{red}/evidence-package", {}))
    assert not CustodyEntry.objects.filter(evidence_id=evidence_id).exclude(action="received").exists()
    # The people named read it: the handler named, and the reporter.
    for person in (P_HANDLER, L_ANALYST):
        assert body_of(world(person).get(f"/evidence/{evidence_id}/download")) == b"private key material"


@pytest.mark.django_db
def test_referrals_are_made_by_the_handlers_above(world: World) -> None:
    incident = world.incident()
    body = {"agency": "nccia", "sections": ["s. 3", "s.4"], "case_number": "NCCIA-2026-17", "note": "urgent"}
    answers = walk(world, HANDLE, lambda c: c.post(f"/incidents/{incident}/referrals", body))
    made = answers[P_HANDLER].json()
    assert (made["agency"], made["sections"], made["case_number"], made["referred_by"]) == (
        {"slug": "nccia", "name": "National Cyber Crime Investigation Agency"},
        ["s. 3", "s. 4"],
        "NCCIA-2026-17",
        P_HANDLER,
    )
    listed = walk(world, READ, lambda c: c.get(f"/incidents/{incident}/referrals"))
    assert len(listed[L_VIEWER].json()) == 4
    bad = problem(
        world(P_HANDLER).post(
            f"/incidents/{incident}/referrals", {"agency": "fia", "sections": ["3", "s. 0"]}
        ),
        422,
    )
    assert [(e["loc"], e["msg"]) for e in bad["errors"]] == [
        ("agency", "'fia' is not an investigating agency; valid agencies: fia-ccw, nccia"),
        ("sections[1]", "'s. 0' is not a PECA-2016 section: write 's. N' with N from 1 to 55 (e.g. 's. 3')"),
    ]


@pytest.mark.django_db
def test_evidence_packages_for_the_handlers_verify_and_carry_their_hash(world: World) -> None:
    incident = world.incident()
    first = world.evidence(incident, "a.log", b"first file")
    second = world.evidence(incident, "b.log", b"second file")
    referral = world(P_HANDLER).post(
        f"/incidents/{incident}/referrals", {"agency": "nccia", "sections": ["s. 4"]}
    )
    answers = walk(
        world,
        {**HANDLE, **dict.fromkeys((P_HANDLER, P_OTHER, N_HANDLER, ADMIN), 200)},
        lambda c: c.post(f"/incidents/{incident}/evidence-package", {"referral_id": referral.json()["id"]}),
    )
    response = answers[P_HANDLER]
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].startswith(f'attachment; filename="INC-{incident}-evidence-')
    data = body_of(response)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        manifest_bytes = archive.read("manifest.json")
    assert response["X-Manifest-SHA256"] == hashlib.sha256(manifest_bytes).hexdigest()
    manifest = json.loads(manifest_bytes)
    assert [f["evidence_id"] for f in manifest["files"]] == [first, second]
    assert manifest["referral"]["agency"] == "nccia"
    result = packages.verify(io.BytesIO(data))
    assert (result.ok, result.manifest_sha256) == (True, response["X-Manifest-SHA256"])
    package = EvidencePackage.objects.get(manifest_sha256=response["X-Manifest-SHA256"])
    assert (
        AuditEntry.objects.filter(action="incidents.evidence.package", object_id=str(package.pk))
        .get()
        .data["manifest_sha256"]
        == package.manifest_sha256
    )
    assert EvidencePackage.objects.count() == 4  # one per handler who exported
    # Each export is in each file's custody: 4 exports of 2 files.
    assert CustodyEntry.objects.filter(action="exported").count() == 8
    # Without a referral: an empty object, or no body at all.
    client = world(P_HANDLER)
    for plain in (
        client.post(f"/incidents/{incident}/evidence-package", {}),
        client.client.generic(
            "POST", f"/api/v1/incidents/{incident}/evidence-package", headers=client.headers
        ),
    ):
        assert (
            json.loads(zipfile.ZipFile(io.BytesIO(body_of(plain))).read("manifest.json"))["referral"] is None
        )
    # A referral of another incident, named by mistake.
    other = world.incident()
    wrong = problem(
        world(P_HANDLER).post(f"/incidents/{other}/evidence-package", {"referral_id": referral.json()["id"]}),
        422,
    )
    assert wrong["errors"] == [
        {"loc": "referral_id", "msg": f"incident {other} has no referral {referral.json()['id']}"}
    ]


@pytest.mark.django_db
def test_a_stored_file_changed_on_disk_is_named_and_nothing_is_exported(world: World) -> None:
    incident = world.incident()
    evidence_id = world.evidence(incident, "disk.img", b"original image")
    evidence = Evidence.objects.get(pk=evidence_id)
    (world.evidence_dir / evidence.storage_key).write_bytes(b"tampered image")
    refused = problem(world(P_HANDLER).post(f"/incidents/{incident}/evidence-package", {}), 409)
    assert refused["detail"].startswith(
        f"evidence {evidence_id} ('disk.img') no longer matches the hash recorded"
    )
    assert (EvidencePackage.objects.count(), CustodyEntry.objects.filter(action="exported").count()) == (0, 0)


# --- sizes ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_oversized_evidence_gets_413_with_the_size_and_the_limit_and_nothing_is_stored(
    world: World, settings: Any
) -> None:
    incident = world.incident()
    settings.CERTNET_EVIDENCE_MAX_BYTES = 1000
    before = snapshot(world)
    over = problem(upload(world(P_HANDLER), f"/incidents/{incident}/evidence", "big.bin", b"x" * 1001), 413)
    assert over["detail"] == "the file 'big.bin' is 1001 bytes; the limit for an evidence file is 1000 bytes"
    assert over["errors"] == [{"loc": "file", "msg": over["detail"]}]
    # Past the body limit of the upload paths, the request is refused before anything reads it.
    settings.CERTNET_UPLOAD_LIMITS = [(r"/api/v1/(incidents|reports)/\d+/evidence$", 4000)]
    refused = upload(world(P_HANDLER), f"/incidents/{incident}/evidence", "huge.bin", b"y" * 5000)
    body = problem(refused, 413)
    assert re.fullmatch(r"the request body is \d+ bytes; the limit is 4000 bytes", body["detail"])
    assert snapshot(world) == before
    # Elsewhere the general limit holds; an upload path admits files larger than it.
    settings.CERTNET_UPLOAD_LIMITS = [(r"/api/v1/(incidents|reports)/\d+/evidence$", 3 * 1024 * 1024)]
    settings.CERTNET_MAX_REQUEST_BYTES = 64 * 1024
    settings.CERTNET_EVIDENCE_MAX_BYTES = 2 * 1024 * 1024
    assert (
        upload(world(P_HANDLER), f"/incidents/{incident}/evidence", "ok.bin", b"z" * 1024 * 1024).status_code
        == 201
    )
    big_comment = world(P_HANDLER).post(
        f"/incidents/{incident}/status", {"status": "in-progress", "note": "n" * 70_000}
    )
    assert problem(big_comment, 413)["detail"].endswith("the limit is 65536 bytes")


# --- attachments on POST /reports -----------------------------------------------------------------


def attachment(name: str, content: bytes) -> dict[str, str]:
    return {
        "filename": name,
        "content_type": "text/plain",
        "content_base64": base64.b64encode(content).decode(),
    }


@pytest.mark.django_db
def test_a_report_with_attachments_is_kept_with_its_files(world: World) -> None:
    files = [attachment("headers.txt", b"Received: from evil"), attachment("../../etc/passwd", b"root:x:0:0")]
    response = world(L_ANALYST).post("/reports", report_body(attachments=files))
    assert response.status_code == 201, response.content
    report_id = response.json()["id"]
    kept = list(Evidence.objects.filter(report_id=report_id).order_by("pk"))
    assert [(e.filename, e.size, e.source, e.sha256) for e in kept] == [
        ("headers.txt", 19, "api", hashlib.sha256(b"Received: from evil").hexdigest()),
        ("passwd", 10, "api", hashlib.sha256(b"root:x:0:0").hexdigest()),
    ]
    assert sorted(p.read_bytes() for p in world.stored()) == sorted([b"Received: from evil", b"root:x:0:0"])
    assert body_of(world(P_HANDLER).get(f"/evidence/{kept[1].pk}/download")) == b"root:x:0:0"


@pytest.mark.django_db
def test_bad_attachments_leave_nothing_behind(world: World, settings: Any) -> None:
    before = snapshot(world)
    files = [attachment("ok.txt", b"fine"), {"filename": "b.bin", "content_base64": "not base64!!"}]
    bad = problem(world(L_ANALYST).post("/reports", report_body(attachments=files)), 422)
    assert bad["errors"] == [{"loc": "attachments[1].content_base64", "msg": "is not valid base64"}]
    # The report's own problems and the attachments' come back together.
    both = problem(world(L_ANALYST).post("/reports", report_body(title="", attachments=files)), 422)
    assert [e["loc"] for e in both["errors"]] == ["title", "attachments[1].content_base64"]
    settings.CERTNET_EVIDENCE_MAX_BYTES = 10
    big = problem(
        world(L_ANALYST).post(
            "/reports",
            report_body(attachments=[attachment("ok.txt", b"fine"), attachment("big.txt", b"x" * 11)]),
        ),
        413,
    )
    assert big["detail"] == "the file 'big.txt' is 11 bytes; the limit for an evidence file is 10 bytes"
    assert big["errors"] == [{"loc": "attachments[1]", "msg": big["detail"]}]
    # Rights first: someone who may not report learns nothing about their files.
    assert problem(world(NADRA).post("/reports", report_body(attachments=files)), 403)
    assert snapshot(world) == before
