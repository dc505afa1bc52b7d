"""Benchmark of the STIX 2.1 import: a 100,000-object bundle into a fresh SQLite database.

Run from the repository root::

    .venv/bin/python bench/stix_import.py [--objects 100000] [--seed 1]

The bundle is written to a file first, shaped like a partner's feed: mostly indicators of the common
kinds (with labels and TLP markings), then sightings of them, malware with relationships to them, and
the identities behind them. The import reads the file as a stream. Prints ``name=value`` figures: the
bundle's size, the import's wall time and rate, and the process's peak resident memory before and
after the import (bounded memory: the growth does not follow the bundle's size; compare two sizes).
Exits non-zero if anything was refused or the counts disagree.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import time
import uuid
from pathlib import Path

from _common import machine_note, migrate_and_load_framework, start_django

STAMP = "2026-10-01T08:00:00.000Z"
MARKINGS = [
    "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
]


def pattern(rng: random.Random, number: int) -> str:
    kind = number % 4
    if kind == 0:
        address = f"{rng.randrange(1, 223)}.{rng.randrange(256)}.{rng.randrange(256)}.{number % 250 + 1}"
        return f"[ipv4-addr:value = '{address}']"
    if kind == 1:
        return f"[domain-name:value = 'h{number:x}.{rng.getrandbits(32):x}.example.net']"
    if kind == 2:
        return f"[url:value = 'http://u{number:x}.example.org/{rng.getrandbits(40):x}/login.php']"
    return f"[file:hashes.'SHA-256' = '{rng.getrandbits(256):064x}']"


def write_bundle(path: Path, objects: int, seed: int) -> dict[str, int]:
    """Stream a bundle to disk; returns how many objects of each type it holds."""
    rng = random.Random(seed)
    identities = [
        f"identity--{uuid.UUID(int=rng.getrandbits(128), version=4)}" for _ in range(max(objects // 1000, 1))
    ]
    counts = {"identity": len(identities), "malware": objects // 50, "relationship": objects // 50}
    counts["sighting"] = objects // 25
    counts["indicator"] = objects - sum(counts.values())
    indicator_ids: list[str] = []
    with path.open("w") as out:
        out.write(f'{{"type": "bundle", "id": "bundle--{uuid.uuid4()}", "objects": [\n')
        first = True

        def put(body: dict[str, object]) -> None:
            nonlocal first
            out.write(("" if first else ",\n") + json.dumps(body))
            first = False

        for number, identity in enumerate(identities):
            put(
                {
                    "type": "identity",
                    "spec_version": "2.1",
                    "id": identity,
                    "created": STAMP,
                    "modified": STAMP,
                    "name": f"Partner {number}",
                    "identity_class": "organization",
                }
            )
        for number in range(counts["indicator"]):
            stix_id = f"indicator--{uuid.UUID(int=rng.getrandbits(128), version=4)}"
            indicator_ids.append(stix_id)
            put(
                {
                    "type": "indicator",
                    "spec_version": "2.1",
                    "id": stix_id,
                    "created": STAMP,
                    "modified": STAMP,
                    "created_by_ref": rng.choice(identities),
                    "pattern": pattern(rng, number),
                    "pattern_type": "stix",
                    "valid_from": STAMP,
                    "confidence": rng.randrange(30, 100),
                    "labels": ["feed", rng.choice(["phishing", "c2", "malware"])],
                    "indicator_types": ["malicious-activity"],
                    "object_marking_refs": [rng.choice(MARKINGS)],
                }
            )
        malware_ids = []
        for number in range(counts["malware"]):
            malware_id = f"malware--{uuid.UUID(int=rng.getrandbits(128), version=4)}"
            malware_ids.append(malware_id)
            put(
                {
                    "type": "malware",
                    "spec_version": "2.1",
                    "id": malware_id,
                    "created": STAMP,
                    "modified": STAMP,
                    "name": f"family-{number}",
                    "is_family": True,
                }
            )
        for number in range(counts["relationship"]):
            put(
                {
                    "type": "relationship",
                    "spec_version": "2.1",
                    "id": f"relationship--{uuid.UUID(int=rng.getrandbits(128), version=4)}",
                    "created": STAMP,
                    "modified": STAMP,
                    "relationship_type": "indicates",
                    "source_ref": rng.choice(indicator_ids),
                    "target_ref": malware_ids[number % len(malware_ids)],
                }
            )
        for _ in range(counts["sighting"]):
            put(
                {
                    "type": "sighting",
                    "spec_version": "2.1",
                    "id": f"sighting--{uuid.UUID(int=rng.getrandbits(128), version=4)}",
                    "created": STAMP,
                    "modified": STAMP,
                    "sighting_of_ref": rng.choice(indicator_ids),
                    "count": rng.randrange(1, 20),
                }
            )
        out.write("\n]}\n")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    vendor = start_django(allow_sqlite=True, script="stix_import.py")
    migrate_and_load_framework()
    import os

    from certnet.accounts.models import Membership, User
    from certnet.core.roles import Role
    from certnet.intel.services.stix_import import import_bundle
    from certnet.registry.models import Organisation

    organisation = Organisation.objects.get(slug="ncert")
    user = User.objects.create_user(username="bench.analyst", password="bench-password-123")
    Membership.objects.create(user=user, organisation=organisation, role=Role.ANALYST)
    path = Path(os.environ["CERTNET_VAR_DIR"]) / "bundle.json"
    started = time.perf_counter()
    counts = write_bundle(path, args.objects, args.seed)
    print(f"machine={machine_note()}")
    print(f"database={vendor}")
    print(f"objects={args.objects}")
    print(f"bundle_mb={path.stat().st_size / 1e6:.1f}")
    print(f"bundle_written_s={time.perf_counter() - started:.1f}")
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    outcome = import_bundle(actor=user, owner="ncert", source=path, source_name=path.name)
    elapsed = time.perf_counter() - started
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"import_s={elapsed:.1f}")
    print(f"import_objects_per_s={args.objects / elapsed:.0f}")
    print(f"peak_rss_before_mb={rss_before:.0f}")
    print(f"peak_rss_after_mb={rss_after:.0f}")
    for key, value in outcome.counts.items():
        print(f"{key}={value}")
    expected_kept = counts["identity"] + counts["malware"] + counts["relationship"] + counts["sighting"]
    if outcome.refused or outcome.counts["kept"] != expected_kept:
        sys.exit(f"unexpected outcome: refused={outcome.refused[:3]} counts={outcome.counts}")


if __name__ == "__main__":
    main()
