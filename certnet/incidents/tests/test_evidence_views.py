"""The evidence section of the incident page through Django's test client: the section (as a page and
as the HTMX fragment the incident page loads), uploads, downloads, referrals and package exports, with
errors shown beside their forms, and 403/404 for TLP:RED stubs and invisible incidents."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from certnet.core import clock
from certnet.core.audit import SystemActor
from certnet.core.roles import Role
from certnet.incidents import packages, services
from certnet.incidents.models import CustodyEntry, Evidence, EvidencePackage, Incident, Referral
from certnet.incidents.services import evidence as ev
from certnet.registry import services as registry

SYSTEM = SystemActor("test")
AWARE = dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.UTC)
NOW = AWARE + dt.timedelta(hours=1)


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
def _frozen() -> Any:
    with clock.frozen_at(NOW):
        yield


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
    }


def open_incident(people: dict[str, Any], **extra: Any) -> Incident:
    report = services.submit_report(
        actor=people["lahore"],
        data=services.ReportInput(
            reporting_organisation="lahore",
            title="Ransomware at Lahore",
            description="Files encrypted",
            aware_at=AWARE,
            **extra,
        ),
    )
    return services.triage_report(
        actor=people["punjab"],
        report=report,
        data=services.TriageInput(
            classification_taxonomy="malicious-code", classification_type="infected-system", severity=2
        ),
    )


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def streamed(response: Any) -> bytes:
    # Reading the stream to its end closes the response. Closing it by hand would also fire
    # request_finished, which closes the test's database connection (fatal on PostgreSQL).
    return b"".join(response.streaming_content)


def add(people: dict[str, Any], incident: Incident, name: str, content: bytes) -> Evidence:
    return ev.add_evidence(
        actor=people["punjab"],
        incident=incident,
        upload=ev.Upload(filename=name, content=content, content_type="text/plain"),
    )


@pytest.mark.django_db
def test_the_incident_page_loads_the_section_and_the_section_shows_files_and_forms(people) -> None:
    incident = open_incident(people)
    evidence = add(people, incident, "firewall.log", b"DROP 203.0.113.7")
    section_url = f"/incidents/{incident.pk}/evidence/"
    page = signed_in(people["punjab"]).get(f"/incidents/{incident.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="evidence-placeholder"' in html
    assert f'hx-get="{section_url}"' in html

    handler = signed_in(people["punjab"]).get(section_url).content.decode()
    assert "<html" in handler
    assert "firewall.log" in handler
    assert evidence.sha256[:16] in handler
    assert f'href="/incidents/evidence/{evidence.pk}/download/"' in handler
    for form in ("evidence-upload", "referral-form", "package-form"):
        assert f'data-testid="{form}"' in handler
    assert '<option value="nccia"' in handler
    assert 'name="sections" value="s. 3, s. 4, s. 5"' in handler  # the incident's PECA hint

    fragment = signed_in(people["lahore.viewer"]).get(section_url, headers={"HX-Request": "true"})
    text = fragment.content.decode()
    assert fragment.status_code == 200
    assert "<html" not in text
    assert "firewall.log" in text
    for form in ("evidence-upload", "referral-form", "package-form"):
        assert f'data-testid="{form}"' not in text
    analyst = signed_in(people["lahore"]).get(section_url).content.decode()
    assert 'data-testid="evidence-upload"' in analyst
    assert 'data-testid="referral-form"' not in analyst


@pytest.mark.django_db
def test_stub_viewers_and_outsiders_get_no_section_and_no_bytes(people) -> None:
    red = open_incident(people, tlp="red", named_users=["punjab.handler"])
    evidence = add(people, red, "secret.txt", b"secret")
    stub = signed_in(people["punjab.other"])
    assert 'data-testid="evidence-placeholder"' not in stub.get(f"/incidents/{red.pk}/").content.decode()
    assert stub.get(f"/incidents/{red.pk}/evidence/").status_code == 403
    download = stub.get(f"/incidents/evidence/{evidence.pk}/download/")
    assert download.status_code == 403
    assert b"secret" not in download.content
    outsider = signed_in(people["sindh"])
    assert outsider.get(f"/incidents/{red.pk}/evidence/").status_code == 404
    assert outsider.get(f"/incidents/evidence/{evidence.pk}/download/").status_code == 404
    upload = SimpleUploadedFile("x.txt", b"x")
    assert stub.post(f"/incidents/{red.pk}/evidence/upload/", {"file": upload}).status_code == 403
    assert Evidence.objects.count() == 1
    assert list(CustodyEntry.objects.values_list("action", flat=True)) == ["received"]


@pytest.mark.django_db
def test_upload_and_download_through_the_page(people, settings) -> None:
    incident = open_incident(people)
    client = signed_in(people["lahore"])
    upload_url = f"/incidents/{incident.pk}/evidence/upload/"
    sent = client.post(
        upload_url, {"file": SimpleUploadedFile("a.pcap", b"\xd4\xc3\xb2\xa1"), "description": "capture"}
    )
    assert sent.status_code == 302
    assert sent["Location"] == f"/incidents/{incident.pk}/#evidence"
    evidence = Evidence.objects.get()
    assert (evidence.filename, evidence.source, evidence.description) == ("a.pcap", "upload", "capture")
    got = signed_in(people["punjab"]).get(f"/incidents/evidence/{evidence.pk}/download/")
    assert got.status_code == 200
    assert streamed(got) == b"\xd4\xc3\xb2\xa1"
    assert got["X-Evidence-SHA256"] == hashlib.sha256(b"\xd4\xc3\xb2\xa1").hexdigest()
    assert got["X-Content-Type-Options"] == "nosniff"
    assert got["Content-Disposition"] == 'attachment; filename="a.pcap"'
    assert CustodyEntry.objects.filter(action="downloaded").get().detail == "downloaded from the web page"

    settings.CERTNET_EVIDENCE_MAX_BYTES = 3
    too_big = client.post(upload_url, {"file": SimpleUploadedFile("b.bin", b"four"), "description": "kept"})
    assert too_big.status_code == 413
    html = too_big.content.decode()
    assert "The file was not added." in html
    assert "is 4 bytes; the limit for an evidence file is 3 bytes" in html
    assert 'value="kept"' in html  # what was typed is kept
    missing = client.post(upload_url, {"description": "no file"})
    assert missing.status_code == 422
    assert "choose a file to add as evidence" in missing.content.decode()
    assert Evidence.objects.count() == 1


@pytest.mark.django_db
def test_referral_and_package_through_the_page(people) -> None:
    incident = open_incident(people)
    add(people, incident, "note.txt", b"pay up")
    client = signed_in(people["punjab"])
    bad = client.post(f"/incidents/{incident.pk}/referrals/", {"agency": "nccia", "sections": "s. 3, s. 77"})
    assert bad.status_code == 422
    html = bad.content.decode()
    assert "Not referred." in html
    assert "&#x27;s. 77&#x27; is not a PECA-2016 section" in html
    assert 'value="s. 3, s. 77"' in html
    assert Referral.objects.count() == 0
    refused = signed_in(people["lahore"]).post(
        f"/incidents/{incident.pk}/referrals/", {"agency": "nccia", "sections": "s. 3"}
    )
    assert refused.status_code == 403
    made = client.post(
        f"/incidents/{incident.pk}/referrals/",
        {"agency": "nccia", "sections": "s. 3; s.4", "case_number": "C-1"},
    )
    assert made.status_code == 302
    referral = Referral.objects.get()
    assert (referral.sections, referral.case_number) == (["s. 3", "s. 4"], "C-1")

    exported = client.post(f"/incidents/{incident.pk}/evidence-package/", {"referral_id": str(referral.pk)})
    assert exported.status_code == 200
    assert exported["Content-Type"] == "application/zip"
    data = streamed(exported)
    result = packages.verify(io.BytesIO(data))
    assert result.ok
    assert (
        result.manifest_sha256
        == exported["X-Manifest-SHA256"]
        == EvidencePackage.objects.get().manifest_sha256
    )
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert "evidence/" + str(Evidence.objects.get().pk) + "-note.txt" in archive.namelist()
    section = client.get(f"/incidents/{incident.pk}/evidence/").content.decode()
    assert exported["X-Manifest-SHA256"] in section
    assert "for NCCIA" in section
    wrong = client.post(f"/incidents/{incident.pk}/evidence-package/", {"referral_id": "abc"})
    assert wrong.status_code == 422
    assert "No package was exported." in wrong.content.decode()
