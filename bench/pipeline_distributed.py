"""Benchmark of the feed pipeline in distributed mode: `certnet worker` processes on a Redis stream.

Run from the repository root (the inputs are what /work/shared/bench/intelmq/gen_feed.py writes)::

    .venv/bin/python bench/pipeline_distributed.py --feed DIR/2024-05-01-scan_rdp-benchcert-geo.csv \\
        --ipasn DIR/ipasn.dat --constituents DIR/constituents.csv --workers 1,2,4 [--repeat 1] \\
        [--workdir DIR] [--block-bytes N]

Sets up the same throwaway certnet and registry as bench/pipeline.py (its functions, imported), on a
SQLite file in the work directory (DATABASE_URL=sqlite:///<workdir>/bench.sqlite3) so that the worker
processes share it, a feed source 'shadowserver-bench' owned by the national CERT, and its own
redis-server on a free loopback port (no persistence), stopped at the end, on error too.

For each worker count N, --repeat times: empty the events store, FLUSHALL, put every batch of the feed
on the stream with `enqueue_source_file` in this process while no worker runs (timed: enqueue_s), then
start N `certnet worker --until-idle` processes and time from their start until the run's FeedRun is
'done' (wall_s, polled every 50 ms; worker start-up, Django and the routing table included). The
median of the repeats is reported. events_per_s is rows read per second of wall_s, as
certnet_events_per_s in bench/pipeline.py.

After each run the store must hold exactly meta.json's unique_rows events, and its routed
(address, constituent) pairs and the run's counts must be what an embedded run of bench/pipeline.py
gives (one reference run on the same file, reported as embedded_wall_s); otherwise it exits non-zero.

Prints ``name=value`` figures: per N one line ``workers=N events_per_s=… wall_s=… enqueue_s=…
worker_cpu_s=… redis_cpu_s=… cores_busy=…`` (the workers' CPU, start-up included, and redis-server's,
over wall_s: how many cores the run kept busy, which bounds the speed-up on a small machine), then one
figure per line: speedup_2, speedup_4 (events_per_s relative to one worker, where measured), cpus.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
POLL_SECONDS = 0.05
COMPARED_COUNTS = ("read", "parsed", "duplicates", "routed", "unrouted", "quarantined", "written")
STREAM_MAX_BATCHES = 100_000  # the whole file may wait on the stream: the producer is not the limit


def load_embedded_bench() -> ModuleType:
    """bench/pipeline.py as a module (its registry loading, embedded run and store reading)."""
    spec = importlib.util.spec_from_file_location("bench_pipeline", BENCH / "pipeline.py")
    if spec is None or spec.loader is None:
        sys.exit("cannot load bench/pipeline.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------- redis


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A throwaway redis-server on loopback, without persistence, in its own directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("redis-server is not running")
        return self.process.pid

    def start(self) -> None:
        import redis

        binary = shutil.which("redis-server")
        if binary is None:
            sys.exit("redis-server is not installed")
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.directory),
        ]
        self.process = subprocess.Popen(  # noqa: S603 - redis-server, our arguments
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        client = redis.Redis(port=self.port)
        try:
            for _ in range(200):
                if self.process.poll() is not None:
                    break
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    time.sleep(0.05)
        finally:
            client.close()
        self.stop()
        sys.exit("redis-server did not start")

    def stop(self) -> None:
        if self.process is None:
            return
        process, self.process = self.process, None
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


# --------------------------------------------------------------------------- certnet


def start_django(workdir: Path, redis_url: str, block_bytes: int | None) -> dict[str, str]:
    """A throwaway certnet on a SQLite file the workers share; returns the workers' environment."""
    # Never the developer's var/ or database (as bench/pipeline.py).
    for name in ("DATABASE_URL", "CERTNET_EVENTS_DIR", "CERTNET_FEEDS_STATE_DIR"):
        os.environ.pop(name, None)
    os.environ["CERTNET_VAR_DIR"] = str(workdir)
    os.environ["DATABASE_URL"] = f"sqlite:///{workdir / 'bench.sqlite3'}"
    os.environ["REDIS_URL"] = redis_url
    os.environ["CERTNET_FEED_STREAM_MAX_BATCHES"] = str(STREAM_MAX_BATCHES)
    if block_bytes:
        os.environ["CERTNET_FEED_BLOCK_BYTES"] = str(block_bytes)
    os.environ["DJANGO_SETTINGS_MODULE"] = "certnet.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def create_bench_source(code: str) -> Any:
    from certnet.core.audit import SystemActor
    from certnet.feeds.services import SourceInput, create_source

    return create_source(
        SystemActor("bench"),
        SourceInput(code=code, name="Shadowserver (bench)", provider="Shadowserver", owner="ncert"),
    )


# --------------------------------------------------------------------------- runs


@dataclass
class Measure:
    workers: int
    enqueue_s: float
    wall_s: float
    first_batch_s: float
    counts: dict[str, int]
    per_worker: list[str]
    stored: int
    pairs_sha256: str
    worker_cpu_s: float  # user + system, the workers together, start-up included
    redis_cpu_s: float


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a running process (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def pairs_sha256(pairs: list[str]) -> str:
    return hashlib.sha256("\n".join(pairs).encode()).hexdigest()


def start_workers(count: int, env: dict[str, str], logs: Path) -> list[tuple[subprocess.Popen[bytes], Path]]:
    logs.mkdir(parents=True, exist_ok=True)
    started = []
    for number in range(count):
        out = logs / f"w{number}.log"
        with out.open("wb") as handle:
            process = subprocess.Popen(  # noqa: S603 - our own `certnet worker`
                [sys.executable, "-m", "certnet.cli", "worker", "--until-idle", "--name", f"w{number}"],
                env=env,
                cwd=ROOT,
                stdout=handle,
                stderr=subprocess.STDOUT,
            )
        started.append((process, out))
    return started


def stop_workers(workers: list[tuple[subprocess.Popen[bytes], Path]]) -> None:
    for process, _ in workers:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def measure(
    bench: ModuleType,
    count: int,
    feed: Path,
    source: Any,
    env: dict[str, str],
    workdir: Path,
    timeout: float,
    redis_pid: int,
) -> Measure:
    from django.conf import settings

    from certnet.core.audit import SystemActor
    from certnet.feeds import streams
    from certnet.feeds.distributed import enqueue_source_file, redis_client
    from certnet.feeds.models import FeedRun, RunStatus

    events = Path(settings.CERTNET_EVENTS_DIR)
    shutil.rmtree(events, ignore_errors=True)
    client = redis_client()
    client.flushall()

    started = time.perf_counter()
    outcome = enqueue_source_file(
        SystemActor("bench"), source, feed, client, again=True, in_flight=STREAM_MAX_BATCHES
    )
    enqueue_s = time.perf_counter() - started
    run_id = outcome.run.pk
    if outcome.run.status != RunStatus.RUNNING:
        sys.exit(f"the run is {outcome.run.status} after enqueueing: {outcome.run.error}")

    cpu_before, redis_before = children_cpu_s(), process_cpu_s(redis_pid)
    workers = start_workers(count, env, workdir / "worker-logs" / f"n{count}")
    try:
        started = time.perf_counter()
        deadline = started + timeout
        first_batch_s = float("nan")
        while True:
            time.sleep(POLL_SECONDS)
            now = time.perf_counter()
            if first_batch_s != first_batch_s and client.hlen(streams.run_key(run_id)):
                first_batch_s = now - started
            status = FeedRun.objects.filter(pk=run_id).values_list("status", flat=True).first()
            if status != RunStatus.RUNNING:
                break
            if all(process.poll() is not None for process, _ in workers):
                break  # every worker has left and the run is not finished
            if now > deadline:
                sys.exit(f"{count} worker(s): the run was not done after {timeout:.0f} s")
        wall_s = time.perf_counter() - started
        for process, _ in workers:
            process.wait(timeout=120)  # each leaves once the stream is idle (its 2 s block included)
    finally:
        stop_workers(workers)
    worker_cpu_s, redis_cpu_s = children_cpu_s() - cpu_before, process_cpu_s(redis_pid) - redis_before
    client.close()

    per_worker = []
    for process, log in workers:
        text = log.read_text(errors="replace")
        if process.returncode != 0:
            sys.exit(f"worker {log.stem} exited with {process.returncode}:\n{text[-4000:]}")
        done = [line for line in text.splitlines() if line.startswith(f"worker {log.stem}:")]
        per_worker.append(done[-1].split(": ", 1)[1].split()[0] if done else "?")
    run = FeedRun.objects.get(pk=run_id)
    if run.status != RunStatus.DONE:
        sys.exit(f"{count} worker(s): the run is {run.status}: {run.error or 'no error recorded'}")
    stored, pairs = bench.read_store(events)
    return Measure(
        workers=count,
        enqueue_s=enqueue_s,
        wall_s=wall_s,
        first_batch_s=first_batch_s,
        counts={k: int(v) for k, v in run.counts.items()},
        per_worker=per_worker,
        stored=stored,
        pairs_sha256=pairs_sha256(pairs),
        worker_cpu_s=worker_cpu_s,
        redis_cpu_s=redis_cpu_s,
    )


def parse_workers(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("a comma-separated list of positive worker counts, e.g. 1,2,4")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--feed", type=Path, required=True, help="the Shadowserver CSV report")
    parser.add_argument("--ipasn", type=Path, required=True, help="pyasn text file: prefix<TAB>asn")
    parser.add_argument("--constituents", type=Path, required=True, help="CSV: asn,constituent,contact")
    parser.add_argument("--workers", type=parse_workers, default=[1, 2, 4], help="worker counts (1,2,4)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--workdir",
        type=Path,
        help="CERTNET_VAR_DIR with the SQLite database, events store, Redis dir and worker logs; kept"
        " afterwards (default: a temporary directory, removed)",
    )
    parser.add_argument(
        "--block-bytes",
        type=int,
        help="CERTNET_FEED_BLOCK_BYTES for the producer: bytes of CSV per batch (default: certnet's)",
    )
    parser.add_argument("--timeout", type=float, default=3600, help="seconds a run may take")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    feed = args.feed.resolve()
    meta_path = feed.parent / "meta.json"
    if not meta_path.is_file():
        parser.error(f"{meta_path} is missing (the expected event count)")
    unique = int(json.loads(meta_path.read_text())["unique_rows"])

    bench = load_embedded_bench()
    prefixes = bench.read_ipasn(args.ipasn)
    constituents = bench.read_constituents(args.constituents)
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        workdir = args.workdir.resolve()
    else:
        workdir = Path(tempfile.mkdtemp(prefix="certnet-bench-dist-"))
    # SIGTERM unwinds like an error: Redis and the workers are stopped in the finally blocks.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))
    redis_server = RedisServer(workdir / "redis")
    try:
        redis_server.start()
        setup_started = time.perf_counter()
        env = start_django(workdir, redis_server.url, args.block_bytes)
        from _common import machine_note, migrate_and_load_framework
        from django.conf import settings

        print(f"machine={machine_note()}")
        print("database=sqlite (file, shared with the workers)")
        print(f"workdir={workdir}")
        print(f"redis={redis_server.url}")
        print(f"feed={feed}")
        print(f"feed_mb={feed.stat().st_size / 1e6:.1f}")
        print(f"block_bytes={settings.CERTNET_FEED_BLOCK_BYTES}")

        started = time.perf_counter()
        migrate_and_load_framework()
        print(f"framework_setup_s={time.perf_counter() - started:.1f}")
        started = time.perf_counter()
        loaded = bench.load_registry(prefixes, constituents)
        print(f"registry_setup_s={time.perf_counter() - started:.1f}")
        for key, value in loaded.items():
            print(f"registry_{key}={value}")
        source = create_bench_source(bench.SOURCE_CODE)

        # The reference: an embedded run of the same file, as bench/pipeline.py runs it.
        reference_dir = workdir / "embedded-reference"
        elapsed, summary = bench.run_pipeline(feed, reference_dir)
        if summary.error:
            sys.exit(f"the embedded reference run failed: {summary.error}")
        _, reference_pairs = bench.read_store(reference_dir / "events")
        reference_sha = pairs_sha256(reference_pairs)
        reference_counts = {k: summary.as_dict()[k] for k in COMPARED_COUNTS}
        shutil.rmtree(reference_dir, ignore_errors=True)
        print(f"embedded_wall_s={elapsed:.3f}")
        print(f"embedded_events_per_s={summary.read / elapsed:.1f}")
        print(f"setup_s={time.perf_counter() - setup_started:.1f}", flush=True)

        problems: list[str] = []
        per_count: dict[int, tuple[float, float, float]] = {}
        for count in args.workers:
            measures = []
            for number in range(1, args.repeat + 1):
                got = measure(bench, count, feed, source, env, workdir, args.timeout, redis_server.pid)
                measures.append(got)
                label = f"workers_{count}_run_{number}"
                print(f"{label}_wall_s={got.wall_s:.3f}")
                print(f"{label}_first_batch_s={got.first_batch_s:.3f}")
                print(f"{label}_batches_per_worker={','.join(got.per_worker)}")
                print(f"{label}_worker_cpu_s={got.worker_cpu_s:.2f}")
                print(f"{label}_redis_cpu_s={got.redis_cpu_s:.2f}", flush=True)
                if got.stored != unique:
                    problems.append(
                        f"{label}: the store holds {got.stored} events, meta.json expects {unique}"
                    )
                if got.counts.get("written") != got.stored:
                    problems.append(
                        f"{label}: the run wrote {got.counts.get('written')}, the store holds {got.stored}"
                    )
                counts = {k: got.counts.get(k) for k in COMPARED_COUNTS}
                if counts != reference_counts:
                    problems.append(f"{label}: counts {counts}, the embedded run's {reference_counts}")
                if got.pairs_sha256 != reference_sha:
                    problems.append(f"{label}: routed pairs differ from the embedded run's")
            wall = statistics.median(m.wall_s for m in measures)
            enqueue = statistics.median(m.enqueue_s for m in measures)
            rows = measures[-1].counts["read"]
            per_count[count] = (rows / wall, wall, enqueue)
            worker_cpu = statistics.median(m.worker_cpu_s for m in measures)
            redis_cpu = statistics.median(m.redis_cpu_s for m in measures)
            busy = statistics.median((m.worker_cpu_s + m.redis_cpu_s) / m.wall_s for m in measures)
            print(
                f"workers={count} events_per_s={rows / wall:.1f} wall_s={wall:.3f} enqueue_s={enqueue:.3f}"
                f" worker_cpu_s={worker_cpu:.2f} redis_cpu_s={redis_cpu:.2f} cores_busy={busy:.2f}",
                flush=True,
            )
        last = measures[-1]
        print(f"rows={last.counts['read']}")
        print(f"batches={last.counts['batches']}")
        print(f"events_stored={last.stored}")
        print(f"meta_unique_rows={unique}")
        print(f"routed_pairs_sha256={last.pairs_sha256}")
        for count in (2, 4):
            if 1 in per_count and count in per_count:
                print(f"speedup_{count}={per_count[count][0] / per_count[1][0]:.2f}")
        print(f"cpus={os.cpu_count()}", flush=True)
        if problems:
            sys.exit("; ".join(problems))
    finally:
        redis_server.stop()
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
