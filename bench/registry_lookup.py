"""Lookup through the whole stack: 100,000 netblocks in the registry database, the routing index built
from it, and single lookups through the HTTP API in-process (Django test client, bearer token).

    .venv/bin/python bench/registry_lookup.py [--netblocks 100000] [--requests 2000]

Prints name=value lines: index_build_seconds (from the database), index_refresh_seconds (after one
change through a service), api_lookup_p50_ms / p99_ms, batch_ipv4_lookups_per_s against that index.
Runs on a throwaway SQLite database (or DATABASE_URL if set to a scratch PostgreSQL database).
"""

from __future__ import annotations

import argparse
import gc
import ipaddress
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--netblocks", type=int, default=100_000)
    parser.add_argument("--organisations", type=int, default=2_000)
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    scratch = tempfile.mkdtemp(prefix="certnet-bench-")
    os.environ.setdefault("CERTNET_VAR_DIR", scratch)
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{scratch}/bench.sqlite3")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "certnet.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client

    from certnet.accounts import services as accounts
    from certnet.core.audit import SystemActor
    from certnet.registry import index as registry_index
    from certnet.registry import services
    from certnet.registry.models import Netblock, Organisation, ReportingLine
    from certnet.registry.resources import parse_network

    rng = random.Random(args.seed)
    actor = SystemActor("bench")
    call_command("migrate", verbosity=0)
    call_command(
        "load_framework",
        str(Path(__file__).resolve().parent.parent / "certnet/registry/framework/pakistan.yaml"),
    )
    ncert = Organisation.objects.get(slug="ncert")
    provinces = list(Organisation.objects.filter(kind="provincial-cert"))

    # Bulk data set-up bypasses the services (and the audit log) on purpose: it is fixture, not use.
    orgs = Organisation.objects.bulk_create(
        Organisation(slug=f"bench-org-{i}", name=f"Bench organisation {i}", kind="constituent")
        for i in range(args.organisations)
    )
    ReportingLine.objects.bulk_create(
        ReportingLine(organisation=o, parent=rng.choice(provinces), valid_from="2020-01-01") for o in orgs
    )
    networks: list[str] = []
    seen: set[str] = set()
    while len(networks) < args.netblocks:
        if rng.random() < 0.7:
            net = ipaddress.ip_network(
                (rng.getrandbits(32), rng.choice([16, 20, 22, 24, 26, 28])), strict=False
            )
        else:
            net = ipaddress.ip_network(
                ((0x2001 << 112) | rng.getrandbits(112), rng.choice([32, 40, 48, 56, 64])), strict=False
            )
        if str(net) not in seen:
            seen.add(str(net))
            networks.append(str(net))
    blocks = []
    for cidr in networks:
        parsed = parse_network(cidr)
        blocks.append(
            Netblock(
                organisation=rng.choice(orgs),
                cidr=parsed.cidr,
                family=parsed.family,
                prefix_length=parsed.prefix_length,
                start=parsed.start,
                end=parsed.end,
                valid_from="2020-01-01",
                tlp="green",
            )
        )
    Netblock.objects.bulk_create(blocks, batch_size=5_000)
    user = accounts.create_user(
        actor=actor,
        username="bench",
        password="bench-password-123",
        is_platform_admin=True,
        check_password_strength=False,
    )
    token = accounts.create_token(actor=actor, user=user).secret

    from certnet.core import clock

    today = clock.today()
    registry_index.clear_cache()
    started = time.perf_counter()
    built = registry_index.registry_index(today)
    print(f"netblocks={built.prefixes.size}")
    print(f"index_build_seconds={time.perf_counter() - started:.3f}")

    services.add_netblock(actor=actor, organisation=ncert, cidr="198.18.0.0/15")  # one audited change
    started = time.perf_counter()
    registry_index.registry_index(today)
    print(f"index_refresh_seconds={time.perf_counter() - started:.3f}")

    queries = np.array([rng.getrandbits(32) for _ in range(1_000_000)], dtype=np.uint32)
    started = time.perf_counter()
    registry_index.registry_index(today).prefixes.lookup_ipv4(queries)
    print(f"batch_ipv4_lookups_per_s={len(queries) / (time.perf_counter() - started):.0f}")

    client = Client(HTTP_HOST="127.0.0.1")
    headers = {"Authorization": f"Bearer {token}"}
    sample = [str(ipaddress.ip_network(rng.choice(networks))[1]) for _ in range(args.requests)]
    for address in sample[:50]:  # warm up: first requests build the index and fill caches
        client.get("/api/v1/lookup", {"ip": address}, headers=headers)
    gc.collect()
    gc.freeze()  # as a preloaded server does after start-up: long-lived objects leave the collector's scans
    timings = []
    found = 0
    for address in sample:
        started = time.perf_counter()
        response = client.get("/api/v1/lookup", {"ip": address}, headers=headers)
        timings.append((time.perf_counter() - started) * 1000)
        found += response.status_code == 200
    timings.sort()
    print(f"api_requests={len(timings)}")
    print(f"api_found_share={found / len(timings):.3f}")
    print(f"api_lookup_p50_ms={statistics.median(timings):.2f}")
    print(f"api_lookup_p99_ms={timings[int(len(timings) * 0.99) - 1]:.2f}")

    # The same lookups as the selector the endpoint calls, for a National CERT handler (whose
    # visibility reaches every constituent: the widest filter there is).
    from certnet.core.roles import Role
    from certnet.registry.selectors import lookup

    handler = accounts.create_user(
        actor=actor, username="bench-handler", password="x" * 12, check_password_strength=False
    )
    accounts.set_membership(actor=actor, user=handler, organisation_id=ncert.pk, role=Role.HANDLER)
    registry_index.registry_index(today)
    selector_timings = []
    for address in sample:
        started = time.perf_counter()
        lookup(handler, address, "ip")
        selector_timings.append((time.perf_counter() - started) * 1000)
    selector_timings.sort()
    print(f"selector_lookup_p50_ms={statistics.median(selector_timings):.2f}")
    print(f"selector_lookup_p99_ms={selector_timings[int(len(selector_timings) * 0.99) - 1]:.2f}")
    return

    print(f"api_found_share={found / len(timings):.3f}")
    print(f"api_lookup_p50_ms={statistics.median(timings):.2f}")
    print(f"api_lookup_p99_ms={timings[int(len(timings) * 0.99) - 1]:.2f}")


if __name__ == "__main__":
    main()
