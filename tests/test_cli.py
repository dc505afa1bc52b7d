"""The `certnet` command, run as a user runs it: a real subprocess against a real database file."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

CERTNET = [sys.executable, "-m", "certnet.cli"]


@pytest.fixture(scope="module")
def instance(tmp_path_factory) -> dict[str, str]:
    """A set-up demo instance in its own directory, shared by the tests of this module."""
    var = tmp_path_factory.mktemp("var")
    env = {**os.environ, "CERTNET_VAR_DIR": str(var), "DATABASE_URL": f"sqlite:///{var / 'cli.sqlite3'}"}
    result = subprocess.run(
        [*CERTNET, "setup", "--demo"], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return env


def run(env, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CERTNET, *args], env=env, capture_output=True, text=True, check=False)


def test_setup_is_idempotent(instance):
    again = run(instance, "setup", "--demo")
    assert again.returncode == 0, again.stderr
    assert "0 created, 0 updated, 24 unchanged" in again.stdout
    assert "demo: 0 registry records added; accounts created: none" in again.stdout
    assert "demo feeds: already loaded" in again.stdout


def test_lookup_as_of_dates(instance):
    now = run(instance, "lookup", "203.0.113.140", "--json")
    assert now.returncode == 0, now.stderr
    answer = json.loads(now.stdout)
    assert (answer["organisation"]["slug"], answer["matched"]) == ("pitb-services", "203.0.113.128/26")
    assert [o["slug"] for o in answer["chain"]] == ["punjab-cert", "ncert"]
    before = json.loads(run(instance, "lookup", "203.0.113.140", "--at", "2025-01-01", "--json").stdout)
    assert before["organisation"]["slug"] == "lahore-university"
    text = run(instance, "lookup", "AS64500")
    assert "National Database & Registration Authority (nadra)" in text.stdout
    assert "CERT chain: NCERT" in text.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("lookup", "198.19.255.255", "--at", "2025-13-01"),
            "--at: '2025-13-01' is not a date in the form YYYY-MM-DD",
        ),
        (("lookup", "100.64.0.1"), "no organisation you may see held '100.64.0.1'"),
        (("token", "create", "nobody"), "no user 'nobody'"),
        (("load-framework", "/nonexistent.yaml"), "/nonexistent.yaml: no such file"),
    ],
)
def test_errors_are_clear_and_exit_non_zero(instance, args, message):
    result = run(instance, *args)
    assert result.returncode != 0
    assert message in result.stderr


def test_load_framework_reports_every_error(instance, tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "framework: {name: x, version: '1', country: pk, as_of: 2025-01-01}\norganisations:\n"
        "  - {slug: a, name: A, kind: spaceship}\n",
        encoding="utf-8",
    )
    result = run(instance, "load-framework", str(broken))
    assert result.returncode == 1
    assert "has 2 error(s)" in result.stderr
    assert "framework.country: String should match pattern" in result.stderr
    assert "organisations[0].kind: Input should be 'national-cert'" in result.stderr
    # References are checked once the structure is sound, again listing every problem.
    broken.write_text(
        "framework: {name: x, version: '1', country: PK, as_of: 2025-01-01}\norganisations:\n"
        "  - {slug: a, name: A, kind: national-cert, reports_to: b, via_function: f}\n",
        encoding="utf-8",
    )
    result = run(instance, "load-framework", str(broken))
    assert "has 2 error(s)" in result.stderr
    assert "organisations[0].reports_to: no organisation 'b' in this file" in result.stderr
    assert "organisations[0].via_function: no function 'f' in this file" in result.stderr


def test_token_then_api_then_audit(instance):
    created = run(instance, "token", "create", "ncert.handler", "--days", "7")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("cnt_")
    assert len(token) > 40
    database = Path(instance["DATABASE_URL"].removeprefix("sqlite:///"))
    with sqlite3.connect(database) as db:
        stored = db.execute("SELECT digest FROM accounts_apitoken").fetchall()
    assert all(token not in row[0] for row in stored)  # only the digest is stored
    assert run(instance, "audit", "verify").returncode == 0
    with sqlite3.connect(database) as db:
        db.execute("UPDATE core_auditentry SET data = '{}' WHERE seq = 5")
    broken = run(instance, "audit", "verify")
    assert broken.returncode == 1
    assert "audit log BROKEN at entry #5" in broken.stderr


def test_user_create_and_grant(instance):
    env = {**instance, "CERTNET_PASSWORD": "correct horse battery staple"}
    created = run(env, "user", "create", "kp.analyst", "--org", "kp-cert", "--role", "analyst")
    assert created.returncode == 0, created.stderr
    weak = run({**instance, "CERTNET_PASSWORD": "short"}, "user", "create", "weak.user")
    assert weak.returncode == 1
    assert "the password is too weak" in weak.stderr
    unknown = run(env, "user", "grant", "kp.analyst", "--org", "atlantis-cert", "--role", "viewer")
    assert "no organisation 'atlantis-cert'" in unknown.stderr
    token = run(env, "token", "create", "kp.analyst").stdout.strip()
    assert token.startswith("cnt_")


def test_setup_loads_the_warninglists_once(instance):
    again = run(instance, "setup")
    assert again.returncode == 0, again.stderr
    assert "warninglists: 6 lists, 0 entries added, 0 removed" in again.stdout


def test_intel_import_and_export_csv(instance, tmp_path):
    good = tmp_path / "good.csv"
    good.write_text(
        "kind,value,tlp,tags,first_seen\n"
        "ipv4,45.9.152.1,green,rsit:malicious-code/c2-server|botnet,2026-11-01T08:00:00\n"
        "domain,Evil.Example.,amber,,\n",
        encoding="utf-8",
    )
    imported = run(
        instance, "intel", "import", str(good), "--owner", "punjab-cert", "--user", "punjab.analyst"
    )
    assert imported.returncode == 0, imported.stderr
    assert "2 indicators recorded, 0 brought up to date" in imported.stdout
    exported = run(instance, "intel", "export", "--format", "csv", "--user", "sindh.analyst")
    assert exported.returncode == 0, exported.stderr
    lines = exported.stdout.splitlines()
    assert lines[0] == "kind,value,tlp,confidence,first_seen,last_seen,expires_at,tags,description,source"
    # Sindh sees Punjab's GREEN indicator, not its AMBER one (the demo's GREEN ones are there too).
    imported_line = next(line for line in lines if line.startswith("ipv4,45.9.152.1,"))
    assert imported_line.startswith("ipv4,45.9.152.1,green,50,2026-11-01T08:00:00+00:00,")
    assert imported_line.endswith(',"botnet|rsit:malicious-code=""c2-server""",,')
    assert not any("evil.example" in line for line in lines)


def test_intel_import_refuses_a_bad_file_whole_and_says_where(instance, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("kind,value\nipv4,45.9.152.2\nmd5,xyz\nipv4,999.1.1.1\n", encoding="utf-8")
    result = run(instance, "intel", "import", str(bad), "--owner", "punjab-cert", "--user", "punjab.analyst")
    assert result.returncode == 1
    assert "line 3.value: 'xyz' is not an MD5 hash" in result.stderr
    assert "line 4.value" in result.stderr
    exported = run(instance, "intel", "export", "--user", "punjab.analyst", "--kind", "ipv4")
    assert "45.9.152.2" not in exported.stdout
    refused = run(instance, "intel", "import", str(bad), "--owner", "ncert", "--user", "punjab.analyst")
    assert refused.returncode == 1
    assert "you may only record indicators for an organisation you belong to" in refused.stderr


def test_intel_import_and_export_stix(instance, tmp_path):
    from tests.test_intel_stix import INDICATOR, feed_bundle

    bundle = feed_bundle()
    bundle["objects"][1]["labels"] = ["october"]
    path = tmp_path / "feed.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    imported = run(
        instance, "intel", "import", str(path), "--owner", "punjab-cert", "--user", "punjab.analyst"
    )
    assert imported.returncode == 0, imported.stderr
    assert (
        "11 objects; 6 indicators recorded, 0 brought up to date, 5 kept as STIX, 1 sightings"
        in imported.stdout
    )
    exported = run(instance, "intel", "export", "--format", "stix", "--user", "punjab.analyst")
    assert exported.returncode == 0, exported.stderr
    objects = {body["id"]: body for body in json.loads(exported.stdout)["objects"]}
    assert objects[INDICATOR]["pattern"] == "[ipv4-addr:value = '45.9.148.10']"
    bundle["objects"].append({"type": "campaign", "id": "campaign--not-a-uuid", "spec_version": "2.1"})
    path.write_text(json.dumps(bundle), encoding="utf-8")
    refused = run(
        instance, "intel", "import", str(path), "--owner", "punjab-cert", "--user", "punjab.analyst"
    )
    assert refused.returncode == 1
    assert "objects[11]" in refused.stderr
    assert "nothing imported" in refused.stderr


def test_intel_import_misp_event_and_feed_and_export_misp(instance):
    fixtures = Path(__file__).parent / "fixtures" / "misp"
    event = run(
        instance,
        "intel",
        "import",
        str(fixtures / "event.json"),
        "--owner",
        "punjab-cert",
        "--user",
        "punjab.analyst",
    )
    assert event.returncode == 0, event.stderr
    assert "intel report" in event.stdout
    assert "unsupported, kept with the import" in event.stderr
    feed = run(
        instance,
        "intel",
        "import",
        str(fixtures / "feed"),
        "--owner",
        "punjab-cert",
        "--user",
        "punjab.analyst",
    )
    assert feed.returncode == 0, feed.stderr
    assert "2 events" in feed.stdout
    exported = run(instance, "intel", "export", "--format", "misp", "--user", "punjab.analyst")
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout)["Event"]["Attribute"]
