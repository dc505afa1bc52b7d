"""Benchmark of the TAXII server's paging: a member pages through a 100,000-object collection.

Run from the repository root::

    .venv/bin/python bench/taxii_paging.py [--objects 100000] [--limit 1000] [--no-client]
    scripts/with-postgres.sh .venv/bin/python bench/taxii_paging.py     # the same on PostgreSQL

Sets up a throwaway database (SQLite unless DATABASE_URL names PostgreSQL), loads the framework, adds two
banks of one sector under two provincial CERTs and a viewer of one of them with an API token, then
inserts ``--objects`` indicator objects into the sector's collection with bulk inserts: 70% GREEN, 20%
AMBER of the viewer's bank, 5% AMBER of the other bank shared with the viewer's, 5% RED of the other
bank (which the viewer may not see, so visibility filters real rows). Then it pages through the
collection as the viewer, ``--limit`` objects a page, following ``next``:

- through Django's test client (the whole view: credentials, visibility in SQL, keyset paging, the
  envelope), and
- unless ``--no-client``, with taxii2-client's ``as_pages`` over HTTP against a threaded WSGI server on
  127.0.0.1 (adds HTTP, JSON parsing in the client).

Prints ``name=value`` figures: objects seen, pages, seconds, objects/s and page latency percentiles,
and whether the goal (≥ 5,000 objects/s through the test client) was met. Exits non-zero when the
objects seen differ from what the viewer may see.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import threading
import time
import uuid
from typing import Any

from _common import (
    BENCH_PASSWORD,
    database_label,
    machine_note,
    migrate_and_load_framework,
    print_figure,
    print_latencies,
    start_django,
)

GOAL_OBJECTS_PER_S = 5000.0
TAXII = "application/taxii+json;version=2.1"


def stamp(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def indicator_body(rng: random.Random, created: dt.datetime, marking: str) -> dict[str, Any]:
    """An indicator as a feed would publish it: a single-value pattern, a name, types, a kill chain."""
    kind = rng.choice(("ipv4-addr", "domain-name", "url", "file"))
    if kind == "ipv4-addr":
        pattern = f"[ipv4-addr:value = '{'.'.join(str(rng.randrange(1, 255)) for _ in range(4))}']"
    elif kind == "domain-name":
        pattern = f"[domain-name:value = '{rng.getrandbits(40):x}.example']"
    elif kind == "url":
        pattern = f"[url:value = 'http://{rng.getrandbits(32):x}.example/{rng.getrandbits(48):x}.php']"
    else:
        pattern = f"[file:hashes.'SHA-256' = '{rng.getrandbits(256):064x}']"
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--{uuid.UUID(int=rng.getrandbits(128), version=4)}",
        "created": stamp(created),
        "modified": stamp(created),
        "name": f"Malicious {kind} seen in phishing campaign",
        "description": "Observed by the sector's monitoring; block and hunt for earlier contact.",
        "indicator_types": ["malicious-activity"],
        "pattern": pattern,
        "pattern_type": "stix",
        "pattern_version": "2.1",
        "valid_from": stamp(created),
        "kill_chain_phases": [{"kill_chain_name": "mitre-attack", "phase_name": "initial-access"}],
        "labels": ["phishing"],
        "confidence": rng.randrange(30, 100),
        "object_marking_refs": [marking],
    }


def prepare(objects: int, seed: int, *, analyze: bool) -> dict[str, Any]:
    from django.db import connection

    from certnet.accounts import services as accounts
    from certnet.core.audit import SystemActor
    from certnet.core.roles import Role
    from certnet.core.tlp import TLP
    from certnet.registry import services as registry
    from certnet.registry.models import Organisation
    from certnet.taxii import services as taxii
    from certnet.taxii.models import Audience, TaxiiCollection, TaxiiObject

    actor = SystemActor("bench")
    for slug, parent in (("bench-bank", "punjab-cert"), ("bench-other-bank", "sindh-cert")):
        registry.create_organisation(
            actor=actor,
            data=registry.OrganisationInput(
                slug=slug,
                name=slug.replace("-", " ").title(),
                kind="constituent",
                sector="bench-finance",
                reports_to=parent,
                reports_since=dt.date(2024, 1, 1),
            ),
        )
    bank = Organisation.objects.get(slug="bench-bank")
    other = Organisation.objects.get(slug="bench-other-bank")
    viewer = accounts.create_user(
        actor=actor, username="bench.viewer", password=BENCH_PASSWORD, check_password_strength=False
    )
    accounts.set_membership(actor=actor, user=viewer, organisation_id=bank.pk, role=Role.VIEWER)
    author = accounts.create_user(
        actor=actor, username="bench.author", password=BENCH_PASSWORD, check_password_strength=False
    )
    accounts.set_membership(actor=actor, user=author, organisation_id=other.pk, role=Role.ANALYST)
    token = accounts.create_token(actor=actor, user=viewer).secret
    taxii.ensure_collections()
    collection = TaxiiCollection.objects.get(audience=Audience.SECTOR, target="bench-finance")

    rng = random.Random(seed)
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    # (cumulative share of objects, TLP, owner, visible to the viewer); the other bank's AMBER is shared
    # with the viewer's bank
    mix = [
        (0.70, TLP.GREEN, bank, True),
        (0.90, TLP.AMBER, bank, True),
        (0.95, TLP.AMBER, other, True),
        (1.00, TLP.RED, other, False),
    ]
    began = time.perf_counter()
    visible = 0
    batch: list[Any] = []
    through = TaxiiObject.shared_with.through

    def insert() -> None:
        TaxiiObject.objects.bulk_create(batch)
        links = [
            through(taxiiobject_id=row.pk, organisation_id=bank.pk)
            for row in batch
            if row.tlp == TLP.AMBER and row.owner_id == other.pk
        ]
        through.objects.bulk_create(links)
        batch.clear()

    for number in range(objects):
        pick = rng.random()
        _, tlp, owner, seen = next((entry for entry in mix if pick < entry[0]), mix[-1])
        created = start + dt.timedelta(seconds=number)
        body = indicator_body(rng, created, tlp.stix_marking_id)
        batch.append(
            TaxiiObject(
                collection=collection,
                stix_id=body["id"],
                type="indicator",
                spec_version="2.1",
                version=body["modified"],
                version_at=created,
                added_at=start + dt.timedelta(milliseconds=number),
                body=body,
                owner=owner,
                created_by=author if owner == other else None,
                tlp=tlp,
            )
        )
        visible += int(seen)
        if len(batch) >= 5000:
            insert()
    if batch:
        insert()
    print_figure("insert_seconds", f"{time.perf_counter() - began:.1f}")
    if analyze and connection.vendor == "postgresql":
        # What autovacuum does within a minute of a bulk load: without statistics the planner reads
        # the rest of the collection and sorts it for each page instead of walking the index.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    print_figure("analyzed", "yes" if analyze and connection.vendor == "postgresql" else "no")
    print_figure("objects_inserted", objects)
    print_figure("objects_visible_to_viewer", visible)
    return {"collection": collection, "token": token, "username": viewer.username, "visible": visible}


def page_with_test_client(world: dict[str, Any], limit: int) -> tuple[int, set[str], float, list[float]]:
    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1")
    headers = {"Authorization": f"Bearer {world['token']}", "Accept": TAXII}
    url = f"/taxii2/api/collections/{world['collection'].pk}/objects/"
    params: dict[str, Any] = {"limit": limit}
    seen: set[str] = set()
    count = 0
    timings: list[float] = []
    began = time.perf_counter()
    while True:
        tick = time.perf_counter()
        response = client.get(url, params, headers=headers)
        body = response.json()
        timings.append((time.perf_counter() - tick) * 1000)
        if response.status_code != 200:
            sys.exit(f"page {len(timings)} answered {response.status_code}: {body}")
        page = body.get("objects", [])
        count += len(page)
        seen.update(obj["id"] for obj in page)
        if not body["more"]:
            break
        params = {"limit": limit, "next": body["next"]}
    return count, seen, time.perf_counter() - began, timings


def page_with_taxii_client(world: dict[str, Any], limit: int) -> tuple[int, float]:
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
    from django.core.wsgi import get_wsgi_application
    from taxii2client.v21 import Collection, as_pages

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            pass

    server = ThreadedWSGIServer(("127.0.0.1", 0), Quiet)
    server.set_app(get_wsgi_application())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        url = f"http://127.0.0.1:{port}/taxii2/api/collections/{world['collection'].pk}/"
        count = 0
        began = time.perf_counter()
        with Collection(url, user=world["username"], password=world["token"]) as collection:
            for envelope in as_pages(collection.get_objects, per_request=limit):
                count += len(envelope.get("objects", []))
        return count, time.perf_counter() - began
    finally:
        server.shutdown()
        server.server_close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-client", action="store_true", help="skip the taxii2-client pass over HTTP")
    parser.add_argument("--no-analyze", action="store_true", help="PostgreSQL: page before statistics exist")
    args = parser.parse_args()

    start_django(allow_sqlite=True, script="taxii_paging.py")
    migrate_and_load_framework()
    print_figure("database", database_label())
    print_figure("machine", machine_note())
    world = prepare(args.objects, args.seed, analyze=not args.no_analyze)

    count, seen, seconds, timings = page_with_test_client(world, args.limit)
    rate = count / seconds
    print_figure("test_client_objects", count)
    print_figure("test_client_pages", len(timings))
    print_figure("test_client_seconds", f"{seconds:.2f}")
    print_figure("test_client_objects_per_s", f"{rate:.0f}")
    print_latencies("test_client_page", timings)
    print_figure("goal_objects_per_s", f"{GOAL_OBJECTS_PER_S:.0f}")
    print_figure("goal_met", "yes" if rate >= GOAL_OBJECTS_PER_S else "no")
    ok = count == len(seen) == world["visible"]
    if not ok:
        print_figure(
            "error", f"saw {count} objects ({len(seen)} distinct); the viewer may see {world['visible']}"
        )

    if not args.no_client:
        client_count, client_seconds = page_with_taxii_client(world, args.limit)
        print_figure("taxii2_client_objects", client_count)
        print_figure("taxii2_client_seconds", f"{client_seconds:.2f}")
        print_figure("taxii2_client_objects_per_s", f"{client_count / client_seconds:.0f}")
        ok = ok and client_count == world["visible"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
