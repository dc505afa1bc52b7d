"""Reports through the API under load: gunicorn on loopback, POST /api/v1/reports from many threads.

Run against PostgreSQL, from the repository root::

    CERTNET_PG_FSYNC=on scripts/with-postgres.sh .venv/bin/python bench/report_api.py
        [--requests 5000] [--duration 60] [--concurrency 16] [--workers 5]
    .venv/bin/python bench/report_api.py --allow-sqlite          # the same on a throwaway SQLite file

Starts gunicorn the way `certnet serve` does (``python -m gunicorn certnet.wsgi:application``, sync
workers, default 2 x cores + 1 of them) with the job consumer beside it, on a free port of
127.0.0.1; creates an analyst of the CII operator nadra with an API token, and ``--handlers``
handlers at ncert whom each report notifies. Then runs a closed-loop load generator:
``--concurrency`` threads, each with its own keep-alive ``http.client`` connection (reopened when
the server closes it), until ``--requests`` requests were sent or ``--duration`` seconds passed,
whichever comes first. Every report is valid; any answer other than 201 counts as an error and is
printed. Afterwards it lets the consumer finish the jobs the load queued. Prints ``name=value``
figures: requests/s achieved, latency p50/p95/p99/max, errors, CPU milliseconds per request of each
party, and per report with its jobs. The issue's goal: ≥ 200 requests/s with p99 < 250 ms. The load
generator runs on the same cores as the server and the database.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import http.client
import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from _common import (
    BENCH_PASSWORD,
    ROOT,
    database_label,
    database_server_pid,
    machine_note,
    migrate_and_load_framework,
    print_figure,
    print_latencies,
    start_django,
    tree_cpu_seconds,
)

GOAL_RPS = 200.0
GOAL_P99_MS = 250.0
PATH = "/api/v1/reports"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def analyst_token(handlers: int) -> str:
    """An analyst of nadra (a CII operator, so the report is routed like real CII work) and its token;
    `handlers` handlers at ncert, the CERT that triages nadra's reports, whom each report notifies."""
    from certnet.accounts import services as accounts
    from certnet.core.audit import SystemActor
    from certnet.core.roles import Role
    from certnet.registry.models import Organisation

    actor = SystemActor("bench")
    ncert = Organisation.objects.get(slug="ncert")
    for n in range(handlers):
        handler = accounts.create_user(
            actor=actor,
            username=f"bench.ncert.handler{n}",
            password=BENCH_PASSWORD,
            email=f"handler{n}@ncert.example",
            check_password_strength=False,
        )
        accounts.set_membership(actor=actor, user=handler, organisation_id=ncert.pk, role=Role.HANDLER)
    user = accounts.create_user(
        actor=actor, username="bench.load.analyst", password=BENCH_PASSWORD, check_password_strength=False
    )
    nadra = Organisation.objects.get(slug="nadra")
    accounts.set_membership(actor=actor, user=user, organisation_id=nadra.pk, role=Role.ANALYST)
    return accounts.create_token(actor=actor, user=user, days=1).secret


def start_server(port: int, args: argparse.Namespace) -> subprocess.Popen[bytes]:
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "certnet.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(args.workers),
        "--worker-class",
        args.worker_class,
        "--log-level",
        "warning",
    ]
    if args.worker_class == "gthread":
        argv += ["--threads", str(args.threads)]
    if args.access_log:
        argv += ["--access-logfile", "-"]
    # The environment carries DATABASE_URL and CERTNET_VAR_DIR chosen by start_django.
    server = subprocess.Popen(argv, cwd=ROOT, stdout=sys.stderr if args.access_log else subprocess.DEVNULL)  # noqa: S603
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"bench: gunicorn exited with status {server.returncode} before it served")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/login/")
            connection.getresponse().read()
            connection.close()
            return server
        except OSError:
            time.sleep(0.2)
    server.terminate()
    sys.exit("bench: gunicorn did not answer within 60 s")


def start_jobs() -> subprocess.Popen[bytes]:
    """The job consumer `certnet serve` runs beside gunicorn: it sends the notification mail that each
    report queues (to the file outbox under the scratch CERTNET_VAR_DIR unless SMTP is configured)."""
    argv = [sys.executable, "-m", "certnet.cli", "run_huey", "--quiet"]
    return subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL)  # noqa: S603


def jobs_waiting() -> int:
    """Jobs queued or scheduled and not yet taken by the consumer, and reports not yet announced:
    what the load left it to do afterwards."""
    from huey.contrib.djhuey import HUEY

    from certnet.incidents.models import Report

    unannounced = Report.objects.filter(announced_at__isnull=True).count()
    return int(HUEY.pending_count()) + int(HUEY.scheduled_count()) + unannounced


def drain(pids: dict[str, int | None], timeout: float) -> tuple[float, int, dict[str, float]]:
    """After the load, let the job consumer finish what the load left it: the seconds that took, the
    jobs still waiting after `timeout`, and the CPU seconds the consumer and the database used."""
    parties = {k: p for k, p in pids.items() if k in {"jobs", "database"}}
    before = {k: tree_cpu_seconds(p) for k, p in parties.items()}
    started = time.perf_counter()
    while (left := jobs_waiting()) and time.perf_counter() - started < timeout:
        time.sleep(0.5)
    seconds = time.perf_counter() - started
    time.sleep(1.0)  # the last job taken is still running
    return seconds, left, {k: tree_cpu_seconds(p) - before[k] for k, p in parties.items()}


def stop_server(server: subprocess.Popen[bytes]) -> None:
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


class Load:
    """Tickets for a bounded number of requests within a bounded time, shared by the threads."""

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit = limit
        self.seconds = seconds
        self.issued = 0
        self.lock = threading.Lock()
        self.started = 0.0
        self.latencies: list[float] = []
        self.statuses: collections.Counter[str] = collections.Counter()
        self.samples: dict[str, str] = {}  # one response body per kind of error

    def start(self) -> None:
        self.started = time.perf_counter()

    def ticket(self) -> int | None:
        with self.lock:
            if self.issued >= self.limit or time.perf_counter() - self.started >= self.seconds:
                return None
            self.issued += 1
            return self.issued

    def done(self, latency_ms: float, outcome: str, body: str = "") -> None:
        with self.lock:
            self.latencies.append(latency_ms)
            self.statuses[outcome] += 1
            if outcome != "201" and outcome not in self.samples:
                self.samples[outcome] = body[:300]


def report_body(n: int, aware_at: str) -> bytes:
    tlp = "green" if n % 5 == 0 else "amber"
    return json.dumps(
        {
            "reporting_organisation": "nadra",
            "title": f"Load test report {n}: unusual outbound traffic",
            "description": "Hosts in the data centre contact an unknown address every minute since 09:00.",
            "aware_at": aware_at,
            "classification_taxonomy": "malicious-code",
            "classification_type": "infected-system",
            "severity": n % 4,
            "tlp": tlp,
        }
    ).encode()


def worker(load: Load, port: int, token: str, aware_at: str) -> None:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    while (n := load.ticket()) is not None:
        body = report_body(n, aware_at)
        started = time.perf_counter()
        try:
            connection.request("POST", PATH, body=body, headers=headers)
            response = connection.getresponse()
            text = response.read().decode(errors="replace")
            load.done((time.perf_counter() - started) * 1000, str(response.status), text)
        except (OSError, http.client.HTTPException) as exc:
            load.done((time.perf_counter() - started) * 1000, type(exc).__name__, str(exc))
            connection.close()  # the next request opens a fresh connection


def run_load(
    port: int, token: str, args: argparse.Namespace, pids: dict[str, int | None]
) -> tuple[Load, Load, float, dict[str, float], int]:
    """Warm up, then load; return both tallies, the seconds under load, the CPU seconds each party
    (`pids`: gunicorn, the job consumer, the database server; and this process) used meanwhile, and
    the jobs still waiting at the end (work the load left for later, not counted in the CPU)."""
    from certnet.core import clock

    aware_at = (clock.now().replace(microsecond=0) - dt.timedelta(hours=1)).isoformat()
    # Warm-up: every worker imports, connects to the database and fills its caches on first use.
    warm = Load(limit=args.warmup, seconds=60)
    warm.start()
    threads = [threading.Thread(target=worker, args=(warm, port, token, aware_at)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # The warm-up's jobs done first, so what the consumer does from here on is the load's.
    if pids.get("jobs"):
        drain(pids, timeout=120)
    load = Load(limit=args.requests, seconds=args.duration)
    before = {"load_generator": time.process_time()} | {k: tree_cpu_seconds(p) for k, p in pids.items()}
    load.start()
    threads = [
        threading.Thread(target=worker, args=(load, port, token, aware_at)) for _ in range(args.concurrency)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - load.started
    backlog = jobs_waiting()
    after = {"load_generator": time.process_time()} | {k: tree_cpu_seconds(p) for k, p in pids.items()}
    cpu = {party: after[party] - before[party] for party in before}
    return warm, load, elapsed, cpu, backlog


def main() -> int:
    cores = os.cpu_count() or 1
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5_000, help="stop after this many requests")
    parser.add_argument("--duration", type=float, default=60.0, help="or after this many seconds")
    parser.add_argument("--concurrency", type=int, default=16, help="client threads, one connection each")
    parser.add_argument("--workers", type=int, default=2 * cores + 1, help="gunicorn worker processes")
    parser.add_argument("--worker-class", default="sync", choices=["sync", "gthread"])
    parser.add_argument(
        "--threads", type=int, default=4, help="threads per worker with --worker-class gthread"
    )
    parser.add_argument("--warmup", type=int, default=100, help="untimed requests first")
    parser.add_argument("--handlers", type=int, default=3, help="ncert handlers each report notifies")
    parser.add_argument("--no-jobs", action="store_true", help="without the job consumer beside gunicorn")
    parser.add_argument("--drain-timeout", type=float, default=300.0, help="seconds to let the jobs finish")
    parser.add_argument(
        "--access-log", action="store_true", help="log every request, as `certnet serve` does"
    )
    parser.add_argument("--allow-sqlite", action="store_true", help="run on a throwaway SQLite file")
    args = parser.parse_args()

    start_django(allow_sqlite=args.allow_sqlite, script="report_api.py")
    from django.db import connection

    from certnet.incidents.models import Report

    print_figure("database", database_label())
    print_figure("machine", machine_note())
    migrate_and_load_framework()
    token = analyst_token(args.handlers)
    before = Report.objects.count()
    db_pid = database_server_pid()
    connection.close()  # the server's workers are the database's clients from here on

    port = free_port()
    server = start_server(port, args)
    jobs = None if args.no_jobs else start_jobs()
    try:
        pids = {"server": server.pid, "jobs": jobs.pid if jobs else None, "database": db_pid}
        warm, load, elapsed, cpu, backlog = run_load(port, token, args, pids)
        drained = drain(pids, args.drain_timeout) if jobs is not None else None
    finally:
        for process in (server, jobs):
            if process is not None:
                stop_server(process)

    created = Report.objects.count() - before - warm.statuses["201"]
    ok = load.statuses["201"]
    rps = len(load.latencies) / elapsed if elapsed else 0.0
    jobs_note = "" if args.no_jobs else ", beside the job consumer (`certnet run_huey`)"
    print_figure(
        "server", f"gunicorn {args.worker_class}, {args.workers} workers, 127.0.0.1:{port}{jobs_note}"
    )
    print_figure(
        "load_generator",
        f"{args.concurrency} threads, http.client keep-alive where the server keeps connections open "
        "(gunicorn's sync workers close each one), on the same cores as server and database",
    )
    print_figure("requests", len(load.latencies))
    print_figure("requests_ok_201", ok)
    print_figure("errors", len(load.latencies) - ok)
    for outcome, count in sorted(load.statuses.items()):
        if outcome != "201":
            print_figure(f"errors_{outcome}", count)
            print(f"# {outcome}: {load.samples.get(outcome, '')}", file=sys.stderr)
    print_figure("reports_written", created)
    print_figure("seconds", f"{elapsed:.2f}")
    print_figure("requests_per_s", f"{rps:.1f}")
    figures = print_latencies("latency", load.latencies)
    # Where the cores went while under load, per request: what the generator takes is not available
    # to the server, and the sum bounds the throughput of a machine with nothing else running.
    served = max(1, len(load.latencies))
    for party, seconds in cpu.items():
        if party == "jobs" and args.no_jobs:
            continue
        print_figure(f"cpu_ms_per_request_{party}", f"{seconds * 1000 / served:.2f}")
    total_ms = sum(v for v in cpu.values() if not math.isnan(v)) * 1000 / served
    print_figure("cpu_ms_per_request_total", f"{total_ms:.2f}")
    print_figure(
        "requests_per_s_cpu_bound", f"{cores * 1000 / total_ms:.0f} ({cores} cores, nothing else running)"
    )
    print_figure("jobs_waiting_at_end", backlog)
    if drained is not None:
        # The work a report leaves to the consumer counts as much as the request's own: sustained
        # load has to pay for both on the same cores.
        seconds, left, later = drained
        print_figure("jobs_drain_seconds", f"{seconds:.1f}")
        print_figure("jobs_left_after_drain", left)
        all_work = cpu["server"] + sum(cpu[k] + later[k] for k in later if not math.isnan(cpu[k]))
        all_ms = all_work * 1000 / served
        print_figure("cpu_ms_per_report_with_its_jobs", f"{all_ms:.2f} (server, consumer, database)")
        print_figure("requests_per_s_sustainable_cpu_bound", f"{cores * 1000 / all_ms:.0f}")
    met = rps >= GOAL_RPS and figures["p99_ms"] < GOAL_P99_MS and ok == len(load.latencies)
    print_figure("goal_200_rps_p99_below_250ms", "met" if met else "NOT met")
    if created != ok:
        print(f"bench: {ok} answers 201 but {created} reports were written", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
