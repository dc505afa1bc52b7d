"""The handling CERT's incident queue over a national data set (default 1,000,000 incidents).

Run against PostgreSQL, from the repository root::

    scripts/with-postgres.sh .venv/bin/python bench/incident_queue.py [--incidents 1000000]
        [--organisations 400] [--repeat 200] [--web-repeat 20] [--variants queue,overdue,open]
    .venv/bin/python bench/incident_queue.py --allow-sqlite --incidents 10000   # smoke run

Builds the framework plus some hundreds of constituents and CII operators under the provincial and
sectoral CERTs, users with memberships (a handler of ncert, a handler of punjab-cert, an analyst of
the CII operator nadra), and bulk-loads the incidents (PostgreSQL COPY) with one report each. Then,
for each user, times the queue as the API serves it — ``GET /api/v1/incidents?limit=50`` in process
(Django test client, bearer token: authentication, visibility, the count, the page, the stub check,
serialisation) — and the queue web page ``/incidents/`` (its counters included), each up to
``--repeat`` / ``--web-repeat`` times or ``--budget`` seconds per case. Prints ``name=value`` figures
(latency percentiles, and CPU milliseconds per request of this process plus the database server,
which waiting behind other work on the machine does not inflate), a summary table, the queries of
the slowest request with their times, and the EXPLAIN ANALYZE plan of its slowest query. The
issue's goal: queue p95 < 150 ms at 1,000,000 incidents.

``--reuse`` keeps an already loaded data set (a DATABASE_URL that outlives the run).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import random
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from _common import (
    BENCH_PASSWORD,
    database_label,
    database_server_pid,
    machine_note,
    migrate_and_load_framework,
    print_figure,
    print_latencies,
    start_django,
    tree_cpu_seconds,
)

GOAL_P95_MS = 150.0
MIN_SAMPLES = 20
MARKER_SLUG = "bench-org-0000"  # present once this benchmark has loaded its data set
CHUNK = 50_000

# (share, taxonomy, type): what CERT queues are mostly made of.
CLASSIFICATIONS = [
    (30, "malicious-code", "infected-system"),
    (15, "fraud", "phishing"),
    (12, "information-gathering", "scanner"),
    (10, "vulnerable", "vulnerable-system"),
    (8, "intrusion-attempts", "brute-force"),
    (7, "intrusions", "system-compromise"),
    (6, "availability", "ddos"),
    (5, "information-content-security", "data-leak"),
    (4, "abusive-content", "spam"),
    (3, "other", "undetermined"),
]
SEVERITY_WEIGHTS = [15, 30, 30, 15, 8, 2]  # 0 Baseline … 5 Emergency
TLP_WEIGHTS = {"amber": 55, "green": 35, "amber+strict": 4, "clear": 3, "red": 3}
# Incidents of the last month are often still open; older ones mostly closed.
STATUS_RECENT = {
    "triaged": 20,
    "in-progress": 25,
    "contained": 10,
    "resolved": 15,
    "closed": 20,
    "merged": 5,
    "rejected": 5,
}
STATUS_OLDER = {
    "triaged": 1,
    "in-progress": 2,
    "contained": 1,
    "resolved": 5,
    "closed": 83,
    "merged": 4,
    "rejected": 4,
}
OPEN = {"triaged", "in-progress", "contained"}
PROVINCE_WEIGHTS = {
    "punjab-cert": 35,
    "sindh-cert": 25,
    "kp-cert": 15,
    "balochistan-cert": 10,
    "ajk-cert": 8,
    "gb-cert": 7,
}
SECTOR_CERTS = ["telecom-cert", "defence-cert", "community-cert"]

INCIDENT_COLUMNS = [
    "id",
    "title",
    "description",
    "classification_taxonomy",
    "classification_type",
    "severity",
    "tlp",
    "status",
    "affected_organisation_id",
    "handling_cert_id",
    "escalated_to_id",
    "assignee_id",
    "created_by_id",
    "reporting_profile",
    "peca_sections",
    "aware_at",
    "detected_at",
    "classified_at",
    "created_at",
    "merged_into_id",
    "next_deadline_at",
]
REPORT_COLUMNS = [
    "id",
    "channel",
    "reporting_organisation_id",
    "affected_organisation_id",
    "submitted_by_id",
    "title",
    "description",
    "classification_taxonomy",
    "classification_type",
    "severity",
    "aware_at",
    "detected_at",
    "received_at",
    "tlp",
    "status",
    "incident_id",
    "acknowledged_at",
]


@dataclass
class World:
    """The organisations and people the data set is spread over."""

    affected: list[int]  # organisation ids that incidents affect
    affected_weights: list[float]
    handling: dict[int, int]  # organisation id → its handling CERT's id
    above: dict[int, int | None]  # CERT id → the CERT one tier up
    cii: set[int]
    handler_of: dict[int, int]  # CERT id → the user id of its bench handler
    reporter_of: dict[int, int]  # organisation id → a user id of an analyst there (some organisations)
    users: dict[str, Any]  # measured users by label
    national: int  # the National CERT's id: where cross-CERT incidents go


# --------------------------------------------------------------------------- the data set


def build_registry(count: int, rng: random.Random) -> None:
    """Constituents under the provincial and sectoral CERTs, and CII operators under the CII-CERT
    function, created in bulk: fixture, not use, so the services (and the audit log) are bypassed."""
    from certnet.core import clock
    from certnet.registry import index
    from certnet.registry.models import Organisation, ReportingLine

    by_slug = {o.slug: o for o in Organisation.objects.all()}
    cii_line = ReportingLine.objects.filter(
        ReportingLine.in_force_on(clock.today()), organisation=by_slug["nadra"]
    ).get()
    provinces = list(PROVINCE_WEIGHTS)
    province_weights = list(PROVINCE_WEIGHTS.values())
    orgs, lines = [], []
    for i in range(count):
        draw = rng.random()
        slug = f"bench-org-{i:04d}"
        if draw < 0.7:
            cert = by_slug[rng.choices(provinces, province_weights)[0]]
            org = Organisation(
                slug=slug, name=f"Bench department {i}", kind="constituent", province=cert.province
            )
            lines.append((org, cert, None))
        elif draw < 0.9:
            cert = by_slug[rng.choice(SECTOR_CERTS)]
            org = Organisation(slug=slug, name=f"Bench company {i}", kind="constituent", sector=cert.sector)
            lines.append((org, cert, None))
        else:
            org = Organisation(slug=slug, name=f"Bench CII operator {i}", kind="cii-operator", sector="power")
            lines.append((org, cii_line.parent, cii_line.via_function))
        orgs.append(org)
    Organisation.objects.bulk_create(orgs)
    ReportingLine.objects.bulk_create(
        ReportingLine(organisation=org, parent=parent, via_function=via, valid_from=dt.date(2020, 1, 1))
        for org, parent, via in lines
    )
    index.clear_cache()


def make_users() -> None:
    """A handler for every CERT, analysts at a few organisations, and the three measured users."""
    from certnet.accounts import services as accounts
    from certnet.core.audit import SystemActor
    from certnet.core.roles import Role
    from certnet.registry.models import CERT_KINDS, Organisation

    actor = SystemActor("bench")

    def user(username: str, org: Organisation, role: Role) -> None:
        created = accounts.create_user(
            actor=actor, username=username, password=BENCH_PASSWORD, check_password_strength=False
        )
        accounts.set_membership(actor=actor, user=created, organisation_id=org.pk, role=role)

    for cert in Organisation.objects.filter(kind__in=list(CERT_KINDS)):
        user(f"bench.{cert.slug}.handler", cert, Role.HANDLER)
    user("bench.nadra.analyst", Organisation.objects.get(slug="nadra"), Role.ANALYST)
    for org in Organisation.objects.filter(slug__startswith="bench-org-").order_by("slug")[::20]:
        user(f"bench.{org.slug}.analyst", org, Role.ANALYST)


def load_world(rng: random.Random) -> World:
    from certnet.accounts.models import User
    from certnet.core import clock
    from certnet.incidents.selectors import certs_above, handling_cert_for
    from certnet.registry.models import Organisation
    from certnet.registry.selectors import is_cii_operator

    today = clock.today()
    handling: dict[int, int] = {}
    above: dict[int, int | None] = {}
    affected, weights = [], []
    cii: set[int] = set()
    for org in Organisation.objects.all():
        cert = handling_cert_for(org, today)
        if cert is None:
            continue  # ministries, the council, law enforcement: not reporting constituents
        handling[org.pk] = cert.pk
        if cert.pk not in above:
            chain = certs_above(cert, today)
            above[cert.pk] = chain[0].pk if chain else None
        affected.append(org.pk)
        if org.slug.startswith("bench-org-"):
            weights.append(rng.uniform(0.2, 3.0))
        elif org.kind == "cii-operator":
            weights.append(20.0)
        else:
            weights.append(5.0)
        if org.kind == "cii-operator" or is_cii_operator(org):
            cii.add(org.pk)
    handler_of, reporter_of = {}, {}
    for username, org_id, pk in User.objects.filter(username__startswith="bench.").values_list(
        "username", "memberships__organisation_id", "pk"
    ):
        (handler_of if username.endswith(".handler") else reporter_of)[org_id] = pk
    users = {
        "ncert_handler": User.objects.get(username="bench.ncert.handler"),
        "punjab_handler": User.objects.get(username="bench.punjab-cert.handler"),
        "nadra_analyst": User.objects.get(username="bench.nadra.analyst"),
    }
    national = Organisation.objects.get(slug="ncert").pk
    return World(affected, weights, handling, above, cii, handler_of, reporter_of, users, national)


def check_columns() -> None:
    """Stop with a clear message if the models gained a column this loader does not fill."""
    from certnet.incidents.models import Incident, Report

    for model, columns in ((Incident, INCIDENT_COLUMNS), (Report, REPORT_COLUMNS)):
        for f in model._meta.concrete_fields:
            if f.column not in columns and not f.null:
                sys.exit(f"bench: {model.__name__}.{f.name} is new and NOT NULL; teach the loader to fill it")


Rows = list[tuple[Any, ...]]


def generate(world: World, count: int, first_id: int, rng: random.Random) -> Iterator[tuple[Rows, ...]]:
    """Chunks of (incident rows, report rows, named-user rows, involved-organisation rows)."""
    from certnet.core import clock

    now = clock.now()
    year = 365 * 86400.0
    kinds = [(t, k) for _, t, k in CLASSIFICATIONS]
    kind_weights = [w for w, _, _ in CLASSIFICATIONS]
    tlps, tlp_weights = list(TLP_WEIGHTS), list(TLP_WEIGHTS.values())
    recent, recent_w = list(STATUS_RECENT), list(STATUS_RECENT.values())
    older, older_w = list(STATUS_OLDER), list(STATUS_OLDER.values())
    ordinary = json.dumps(["s. 3", "s. 4", "s. 5"])
    critical = json.dumps(["s. 6", "s. 7", "s. 8"])
    # Draw the organisations in one go: random.choices is much faster over many picks.
    org_draws = rng.choices(world.affected, world.affected_weights, k=count)
    ncert = world.national
    incidents, reports, named, involved = [], [], [], []
    for n in range(count):
        pk = first_id + n
        org = org_draws[n]
        cert = world.handling[org]
        age = rng.random() * year
        created = now - dt.timedelta(seconds=age)
        received = created - dt.timedelta(minutes=rng.uniform(5, 2880))
        aware = received - dt.timedelta(minutes=rng.uniform(0, 4320))
        detected = aware - dt.timedelta(minutes=rng.uniform(0, 600)) if rng.random() < 0.6 else None
        status = rng.choices(recent, recent_w)[0] if age < 30 * 86400 else rng.choices(older, older_w)[0]
        severity = rng.choices(range(6), SEVERITY_WEIGHTS)[0]
        tlp = rng.choices(tlps, tlp_weights)[0]
        taxonomy, kind = rng.choices(kinds, kind_weights)[0]
        handler = world.handler_of[cert]
        escalated = None
        if cert != ncert and (severity >= 3 or org in world.cii):
            escalated = world.above[cert]
        if rng.random() < 0.01:  # another organisation under a different CERT is involved
            other = rng.choice(world.affected)
            if world.handling[other] != cert:
                involved.extend((pk, org_id) for org_id in {other, world.handling[other]})
                escalated = ncert if cert != ncert else escalated
        deadline = None
        if status in OPEN and rng.random() < 0.85:
            deadline = created + dt.timedelta(hours=rng.uniform(2, 60 * 24))
        assignee = handler if status in OPEN and rng.random() < 0.6 else None
        merged_into = rng.randrange(first_id, pk) if status == "merged" and pk > first_id else None
        reporter = world.reporter_of.get(org)
        if tlp == "red":
            named.append((pk, handler))
            if reporter:
                named.append((pk, reporter))
        incidents.append(
            (
                pk,
                f"{kind.replace('-', ' ').capitalize()} at organisation {org} (#{pk})",
                "Bench incident: what was seen, where, and what was done so far.",
                taxonomy,
                kind,
                severity,
                tlp,
                status,
                org,
                cert,
                escalated,
                assignee,
                handler,
                "pk-provisional",
                critical if org in world.cii else ordinary,
                aware,
                detected,
                created,
                created,
                merged_into,
                deadline,
            )
        )
        reports.append(
            (
                pk,
                rng.choice(("api", "api", "web", "email")),
                org,
                org,
                reporter,
                f"Report of {kind.replace('-', ' ')} (#{pk})",
                "Bench report as the constituent wrote it.",
                taxonomy,
                kind,
                severity,
                aware,
                detected,
                received,
                tlp,
                "merged" if status == "merged" else "triaged",
                pk,
                received + dt.timedelta(minutes=rng.uniform(1, 240)),
            )
        )
        if len(incidents) >= CHUNK:
            yield incidents, reports, named, involved
            incidents, reports, named, involved = [], [], [], []
    if incidents:
        yield incidents, reports, named, involved


def new_reports(world: World, count: int, first_id: int, rng: random.Random) -> list[tuple[Any, ...]]:
    """Reports not yet triaged: the top of the queue page."""
    from certnet.core import clock

    now = clock.now()
    rows = []
    for n in range(count):
        org = rng.choices(world.affected, world.affected_weights)[0]
        received = now - dt.timedelta(minutes=rng.uniform(1, 4 * 1440))
        aware = received - dt.timedelta(minutes=rng.uniform(0, 600))
        tlp = rng.choice(("amber", "green"))
        reporter = world.reporter_of.get(org)
        rows.append(
            (
                *(first_id + n, "api", org, org, reporter, f"New report {n}", "Not yet triaged."),
                *("", "", None, aware, None, received, tlp, "new", None, None),
            )
        )
    return rows


def bulk_insert(table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
    from django.db import connection

    if not rows:
        return
    names = ", ".join(columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join(["%s"] * len(columns))
            cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)  # noqa: S608


def load_incidents(world: World, count: int, new_count: int, rng: random.Random) -> None:
    from django.db import connection, transaction

    from certnet.incidents.models import Incident, Report

    incident_table, report_table = Incident._meta.db_table, Report._meta.db_table
    named_table = Incident.named_users.through._meta.db_table
    involved_table = Incident.involved_organisations.through._meta.db_table
    report_named_table = Report.named_users.through._meta.db_table
    started = time.perf_counter()
    loaded = 0
    for incidents, reports, named, involved in generate(world, count, 1, rng):
        with transaction.atomic():
            bulk_insert(incident_table, INCIDENT_COLUMNS, incidents)
            bulk_insert(report_table, REPORT_COLUMNS, reports)
            bulk_insert(named_table, ["incident_id", "user_id"], named)
            bulk_insert(report_named_table, ["report_id", "user_id"], named)
            bulk_insert(involved_table, ["incident_id", "organisation_id"], involved)
        loaded += len(incidents)
        print(f"  loaded {loaded:,} incidents ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    with transaction.atomic():
        bulk_insert(report_table, REPORT_COLUMNS, new_reports(world, new_count, count + 1, rng))
    print_figure("load_seconds", f"{time.perf_counter() - started:.1f}")
    started = time.perf_counter()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for table in (incident_table, report_table):
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"  # noqa: S608
                )
            # What autovacuum does soon after a bulk load: statistics, and the visibility map that
            # index-only scans rely on.
            for table in (incident_table, report_table, named_table, involved_table, report_named_table):
                cursor.execute(f"VACUUM (ANALYZE) {table}")
        else:
            cursor.execute("ANALYZE")
    print_figure("analyze_seconds", f"{time.perf_counter() - started:.1f}")


def prepare(args: argparse.Namespace) -> World:
    from certnet.incidents.models import Incident
    from certnet.registry.models import Organisation

    rng = random.Random(args.seed)
    migrate_and_load_framework()
    loaded = Organisation.objects.filter(slug=MARKER_SLUG).exists()
    if loaded and not args.reuse:
        sys.exit("bench: this database already holds a bench data set; pass --reuse to measure it again")
    if not loaded and Incident.objects.exists():
        sys.exit("bench: this database holds incidents that are not this benchmark's; use a scratch database")
    if not loaded:
        check_columns()
        build_registry(args.organisations, rng)
        make_users()
        world = load_world(rng)
        load_incidents(world, args.incidents, args.new_reports, rng)
        return world
    print_figure("reused_data_set", "true")
    return load_world(rng)


# --------------------------------------------------------------------------- measuring


def time_requests(
    call: Callable[[], Any], repeat: int, warmup: int, budget_s: float, db_pid: int | None
) -> tuple[list[float], float]:
    """Wall-clock milliseconds of each call (stopping early once `budget_s` is spent, after at least
    MIN_SAMPLES calls), and the CPU milliseconds per call of this process plus the database server:
    a figure that waiting behind other work on the machine does not inflate."""
    for _ in range(warmup):
        call()
    gc.collect()
    timings: list[float] = []

    # SQLite runs inside this process: its share is already in process_time().
    def db_cpu() -> float:
        return tree_cpu_seconds(db_pid) if db_pid is not None else 0.0

    cpu_before, db_before = time.process_time(), db_cpu()
    case_started = time.perf_counter()
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        timings.append((time.perf_counter() - started) * 1000)
        if time.perf_counter() - case_started > budget_s and len(timings) >= MIN_SAMPLES:
            break
    cpu = time.process_time() - cpu_before + db_cpu() - db_before
    return timings, cpu * 1000 / len(timings)


def api_getter(client: Any, token: str, params: dict[str, str]) -> Callable[[], Any]:
    headers = {"Authorization": f"Bearer {token}"}

    def call() -> Any:
        response = client.get("/api/v1/incidents", params, headers=headers)
        if response.status_code != 200:
            sys.exit(f"bench: GET /api/v1/incidents {params} answered {response.status_code}")
        return response

    return call


def web_getter(client: Any, params: dict[str, str]) -> Callable[[], Any]:
    def call() -> Any:
        response = client.get("/incidents/", params)
        if response.status_code != 200:
            sys.exit(f"bench: GET /incidents/ {params} answered {response.status_code}")
        return response

    return call


VARIANTS = {
    # name: (API query, web page query)
    "queue": ({}, {}),
    "overdue": ({"overdue": "true"}, {"overdue": "1"}),
    "open": ({"open_only": "true"}, {"open": "1"}),
}


def slowest_queries(call: Callable[[], Any]) -> list[dict[str, Any]]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        call()
    return sorted(captured.captured_queries, key=lambda q: float(q["time"]), reverse=True)


def explain(sql: str) -> str:
    from django.db import connection

    prefix = "EXPLAIN (ANALYZE, BUFFERS) " if connection.vendor == "postgresql" else "EXPLAIN QUERY PLAN "
    with connection.cursor() as cursor:
        cursor.execute(prefix + sql)
        return "\n".join(" ".join(str(c) for c in row) for row in cursor.fetchall())


def measure(world: World, args: argparse.Namespace) -> bool:
    from django.db import connection
    from django.test import Client

    from certnet.accounts import services as accounts
    from certnet.core.audit import SystemActor
    from certnet.incidents import selectors
    from certnet.incidents.models import Incident

    print_figure("incidents", Incident.objects.count())
    print_figure("incidents_open", Incident.objects.filter(status__in=selectors.OPEN_STATUSES).count())
    print_figure("incidents_with_deadline", Incident.objects.filter(next_deadline_at__isnull=False).count())
    variants = [v for v in args.variants.split(",") if v]
    for name in variants:
        if name not in VARIANTS:
            sys.exit(f"bench: unknown variant {name!r}; choose from {', '.join(VARIANTS)}")
    actor = SystemActor("bench")
    db_pid = database_server_pid()
    results: dict[tuple[str, str, str], dict[str, float]] = {}
    calls: dict[tuple[str, str, str], Callable[[], Any]] = {}
    for label, user in world.users.items():
        print_figure(f"{label}_visible", selectors.incidents_for(user).count())
        token = accounts.create_token(actor=actor, user=user, days=1).secret
        api_client = Client(HTTP_HOST="127.0.0.1")
        web_client = Client(HTTP_HOST="127.0.0.1")
        web_client.force_login(user)
        for variant in variants:
            api_params, web_params = VARIANTS[variant]
            api = api_getter(api_client, token, {"limit": str(args.page), **api_params})
            calls[("api", label, variant)] = api
            timings, cpu = time_requests(api, args.repeat, args.warmup, args.budget, db_pid)
            results[("api", label, variant)] = print_latencies(f"api_{label}_{variant}", timings)
            results[("api", label, variant)]["cpu_ms"] = cpu
            print_figure(f"api_{label}_{variant}_cpu_ms", f"{cpu:.2f}")
            if args.web_repeat:
                web = web_getter(web_client, web_params)
                calls[("web", label, variant)] = web
                timings, cpu = time_requests(web, args.web_repeat, min(args.warmup, 3), args.budget, db_pid)
                results[("web", label, variant)] = print_latencies(f"web_{label}_{variant}", timings)
                results[("web", label, variant)]["cpu_ms"] = cpu
                print_figure(f"web_{label}_{variant}_cpu_ms", f"{cpu:.2f}")

    print("\n# surface user           variant        n   p50 ms   p95 ms   p99 ms   max ms   cpu ms")
    for (surface, label, variant), r in results.items():
        print(
            f"# {surface:7} {label:15} {variant:8} {int(r['n']):6} {r['p50_ms']:8.1f} {r['p95_ms']:8.1f}"
            f" {r['p99_ms']:8.1f} {r['max_ms']:8.1f} {r['cpu_ms']:8.1f}"
        )
    print("# cpu ms: CPU per request of this process (client and Django) plus the database server\n")
    worst_api = max((k for k in results if k[0] == "api"), key=lambda k: results[k]["p95_ms"])
    worst_any = max(results, key=lambda k: results[k]["p95_ms"])
    print_figure("api_worst", "/".join(worst_api[1:]))
    print_figure("api_worst_p95_ms", f"{results[worst_api]['p95_ms']:.2f}")
    met = results[worst_api]["p95_ms"] < GOAL_P95_MS
    print_figure("goal_api_queue_p95_below_150ms", "met" if met else "NOT met")
    if args.web_repeat:
        worst_web = max((k for k in results if k[0] == "web"), key=lambda k: results[k]["p95_ms"])
        print_figure("web_worst", "/".join(worst_web[1:]))
        print_figure("web_worst_p95_ms", f"{results[worst_web]['p95_ms']:.2f}")

    # Where the time of the slowest request goes, and how the database runs its slowest query.
    for key in dict.fromkeys([worst_api, worst_any]):
        queries = slowest_queries(calls[key])
        total = sum(float(q["time"]) for q in queries) * 1000
        print(f"\n# queries of {'/'.join(key)}: {len(queries)}, {total:.1f} ms in the database")
        for q in queries[:8]:
            print(f"#   {float(q['time']) * 1000:8.1f} ms  {' '.join(q['sql'].split())[:160]}")
        slowest = queries[0]["sql"]
        print(f"\n# EXPLAIN of the slowest query of {'/'.join(key)} ({connection.vendor}):")
        print(f"# {' '.join(slowest.split())[:2000]}")
        for line in explain(slowest).splitlines():
            print(f"#   {line}")
    return met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=1_000_000)
    parser.add_argument("--organisations", type=int, default=400, help="bench constituents and CII operators")
    parser.add_argument("--new-reports", type=int, default=300, help="untriaged reports, besides")
    parser.add_argument("--repeat", type=int, default=200, help="timed API requests per user and variant")
    parser.add_argument("--web-repeat", type=int, default=20, help="timed page loads (0: none)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--budget", type=float, default=30.0, help="seconds at most per user and variant")
    parser.add_argument("--page", type=int, default=50, help="rows per page (the web queue shows 50)")
    parser.add_argument("--variants", default="queue,overdue,open", help=f"of: {', '.join(VARIANTS)}")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--reuse", action="store_true", help="measure a data set loaded by an earlier run")
    parser.add_argument("--allow-sqlite", action="store_true", help="smoke run on a throwaway SQLite file")
    args = parser.parse_args()

    start_django(allow_sqlite=args.allow_sqlite, script="incident_queue.py")
    print_figure("database", database_label())
    print_figure("machine", machine_note())
    world = prepare(args)
    gc.collect()
    gc.freeze()  # as a preloaded server does after start-up
    measure(world, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
