"""Benchmark of the feed pipeline on a Shadowserver report, comparable with the IntelMQ baseline.

Run from the repository root (the inputs are what /work/shared/bench/intelmq/gen_feed.py writes)::

    .venv/bin/python bench/pipeline.py --feed DIR/2024-05-01-scan_rdp-benchcert-geo.csv \\
        --ipasn DIR/ipasn.dat --constituents DIR/constituents.csv [--repeat 3] [--workdir DIR] \\
        [--intelmq-events-per-s N]

Sets up a throwaway certnet (own CERTNET_VAR_DIR, SQLite, the framework as `certnet setup` loads it
without --demo), registers one constituent organisation per constituent of constituents.csv, reporting
to the national CERT, and every prefix of ipasn.dat as a netblock of the constituent its AS belongs to,
through the registry's services (not timed). Then runs `run_file` on the feed `--repeat` times, each
with a fresh events store and deduplication window, and `pyarrow.csv.read_csv` as many times (the
median of each is reported), and reads the last run's store back through DuckDB for the routed
(address, constituent) pairs, hashed the way run_intelmq_bench.sh hashes IntelMQ's output.

Prints ``name=value`` figures, one per line, arrow_copy_rows_per_s among them (reading the file as text
and writing it as Parquet as the store does, nothing else: the ceiling of any pipeline that keeps what
it reads); the last lines are certnet_events_per_s (rows read per
second of run_file), certnet_peak_rss_mib, arrow_read_rows_per_s, routed_pairs_sha256, rows, wall_s
and, with --intelmq-events-per-s, speedup_vs_intelmq. IntelMQ's figure counts the events it outputs
(meta.json's unique_rows over its wall time), so the speedup compares events written per second with
it, like for like. Exits non-zero if a run fails, the runs disagree, or the store does not hold
exactly meta.json's unique_rows events.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import importlib
import json
import os
import resource
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from _common import machine_note, migrate_and_load_framework, print_figure, start_django

SOURCE_CODE = "shadowserver-bench"
# Registry facts hold from this day on, so events are routed as the registry stood on their own day
# (the synthetic report is dated 2024-05-01).
REGISTRY_SINCE = dt.date(2000, 1, 1)


# --------------------------------------------------------------------------- inputs


def read_ipasn(path: Path) -> list[tuple[str, int]]:
    """(prefix, AS number) pairs of a pyasn IPASN text file (`prefix<TAB>asn`, ';' comments)."""
    pairs = []
    with path.open() as handle:
        for line in handle:
            line = line.strip()
            if not line or line.startswith(";"):
                continue
            prefix, asn = line.split()[:2]
            pairs.append((prefix, int(asn)))
    return pairs


def read_constituents(path: Path) -> dict[int, str]:
    """AS number → constituent slug, from constituents.csv (asn, constituent, contact)."""
    with path.open(newline="") as handle:
        return {int(row["asn"]): row["constituent"].strip() for row in csv.DictReader(handle)}


def feed_day(name: str) -> dt.date | None:
    """The day a Shadowserver report's name carries (`2024-05-01-scan_rdp-….csv`), if any."""
    try:
        return dt.date.fromisoformat(name[:10])
    except ValueError:
        return None


# --------------------------------------------------------------------------- registry


def load_registry(prefixes: list[tuple[str, int]], constituents: dict[int, str]) -> dict[str, object]:
    """One organisation per constituent, reporting to the national CERT, and a netblock per prefix,
    all through the registry's (audited) services, in one transaction."""
    from django.db import transaction

    from certnet.core.audit import SystemActor
    from certnet.registry.models import Organisation, OrganisationKind
    from certnet.registry.services.organisations import OrganisationInput, create_organisation
    from certnet.registry.services.resources import add_netblock

    actor = SystemActor("bench")
    national = Organisation.objects.filter(kind=OrganisationKind.NATIONAL_CERT).order_by("pk").first()
    if national is None:
        sys.exit("the framework has no national CERT")
    organisations: dict[str, Organisation] = {}
    unassigned = 0
    with transaction.atomic():
        for slug in sorted(set(constituents.values())):
            organisations[slug] = create_organisation(
                actor=actor,
                data=OrganisationInput(
                    slug=slug,
                    name=slug.replace("-", " ").capitalize(),
                    kind=OrganisationKind.CONSTITUENT,
                    reports_to=national.slug,
                    reports_since=REGISTRY_SINCE,
                ),
            )
        for prefix, asn in prefixes:
            owner = constituents.get(asn)
            if owner is None:
                unassigned += 1
                continue
            add_netblock(
                actor=actor,
                organisation=organisations[owner],
                cidr=prefix,
                valid_from=REGISTRY_SINCE,
                description=f"AS{asn}",
            )
    return {
        "organisations": len(organisations),
        "netblocks": len(prefixes) - unassigned,
        "prefixes_without_constituent": unassigned,
        "national_cert": national.slug,
    }


# --------------------------------------------------------------------------- memory


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak_rss() -> bool:
    """Reset the kernel's high-water mark of resident memory (Linux: '5' to clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return _status_kib("VmHWM") is not None


def peak_rss_mib(reset: bool) -> tuple[float, str]:
    if reset and (hwm := _status_kib("VmHWM")) is not None:
        return hwm / 1024, "VmHWM of /proc/self/status, reset through /proc/self/clear_refs before the runs"
    return (
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "resource.getrusage ru_maxrss (the process's lifetime peak, set-up included)",
    )


# --------------------------------------------------------------------------- runs


def run_pipeline(feed: Path, run_dir: Path) -> tuple[float, Any]:
    from certnet.feeds.dedup import SqliteSeenKeys
    from certnet.feeds.engine import Pipeline, SourceSettings, run_file
    from certnet.feeds.store import EventStore

    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    seen = SqliteSeenKeys(run_dir / "seen.sqlite3")
    pipeline = Pipeline(store=EventStore(run_dir / "events"), seen=seen)
    source = SourceSettings(code=SOURCE_CODE, provider="Shadowserver", tlp="AMBER")
    started = time.perf_counter()
    summary = run_file(feed, source, pipeline, on_quarantine=lambda rows: None)
    elapsed = time.perf_counter() - started
    seen.close()
    return elapsed, summary


def copy_to_parquet(feed: Path, target: Path) -> float:
    """Seconds to read the file as text and write it as Parquet the way the store does (zstd level 1),
    with no processing at all: the ceiling of any pipeline that keeps what it reads."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from certnet.feeds.store import COMPRESSION, COMPRESSION_LEVEL

    with feed.open() as handle:
        header = next(csv.reader(handle))
    started = time.perf_counter()
    text = pacsv.read_csv(
        feed, convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(header, pa.string()))
    )
    pq.write_table(text, target, compression=COMPRESSION, compression_level=COMPRESSION_LEVEL)
    elapsed = time.perf_counter() - started
    target.unlink()
    return elapsed


def counts_of(summary: Any) -> dict[str, int]:
    return {key: value for key, value in summary.as_dict().items() if isinstance(value, int)}


def read_store(events: Path) -> tuple[int, list[str]]:
    """(events stored, sorted distinct 'source.ip,route.organisation' pairs), through DuckDB."""
    import duckdb

    glob = str(events / "day=*" / "feed=*" / "*.parquet").replace("'", "''")
    dataset = f"read_parquet('{glob}', hive_partitioning=true, union_by_name=true)"
    connection = duckdb.connect()
    try:
        stored = connection.sql(f"SELECT count(*) FROM {dataset}").fetchall()  # noqa: S608
        rows = connection.sql(
            f'SELECT DISTINCT "source.ip", "route.organisation" FROM {dataset}'  # noqa: S608
        ).fetchall()
    finally:
        connection.close()
    pairs = sorted({f"{ip},{organisation}" for ip, organisation in rows})
    return int(stored[0][0]), pairs


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--feed", type=Path, required=True, help="the Shadowserver CSV report")
    parser.add_argument("--ipasn", type=Path, required=True, help="pyasn text file: prefix<TAB>asn")
    parser.add_argument("--constituents", type=Path, required=True, help="CSV: asn,constituent,contact")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--workdir",
        type=Path,
        help="CERTNET_VAR_DIR, with the last run's events store and dedup window; kept afterwards"
        " (default: a temporary directory, removed; the SQLite database is always temporary)",
    )
    parser.add_argument("--intelmq-events-per-s", type=float, help="IntelMQ's figure, for the speedup")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    feed = args.feed.resolve()
    prefixes = read_ipasn(args.ipasn)
    constituents = read_constituents(args.constituents)

    # A throwaway certnet: never the developer's var/ or database.
    for name in ("DATABASE_URL", "CERTNET_EVENTS_DIR", "CERTNET_FEEDS_STATE_DIR"):
        os.environ.pop(name, None)
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        os.environ["CERTNET_VAR_DIR"] = str(args.workdir.resolve())
    else:
        os.environ.pop("CERTNET_VAR_DIR", None)
    vendor = start_django(allow_sqlite=True, script="pipeline.py")
    workdir = Path(os.environ["CERTNET_VAR_DIR"])
    print(f"machine={machine_note()}")
    print(f"database={vendor}")
    print(f"workdir={workdir}")
    print(f"feed={feed}")
    print(f"feed_mb={feed.stat().st_size / 1e6:.1f}")

    started = time.perf_counter()
    migrate_and_load_framework()
    print(f"framework_setup_s={time.perf_counter() - started:.1f}")
    started = time.perf_counter()
    loaded = load_registry(prefixes, constituents)
    print(f"registry_setup_s={time.perf_counter() - started:.1f}")
    for key, value in loaded.items():
        print(f"registry_{key}={value}")

    # What a running worker has loaded once and keeps: the shipped mappings, and the routing table
    # (per day and registry revision). IntelMQ's bots, too, load theirs before its clock starts.
    from certnet.core import clock
    from certnet.feeds.mapping import shipped_mappings
    from certnet.feeds.routing import routing_table

    started = time.perf_counter()
    for module in ("certnet.feeds.engine", "certnet.feeds.dedup", "certnet.feeds.store"):
        importlib.import_module(module)
    shipped_mappings()
    print(f"mappings_load_s={time.perf_counter() - started:.2f}")
    started = time.perf_counter()
    for day in {clock.today(), feed_day(feed.name) or clock.today()}:
        routing_table(day)
    print(f"routing_table_build_s={time.perf_counter() - started:.2f}")

    rss_before = _status_kib("VmRSS")
    reset = reset_peak_rss()
    walls, summaries = [], []
    for number in range(1, args.repeat + 1):
        run_dir = workdir / f"run-{number}"
        elapsed, summary = run_pipeline(feed, run_dir)
        if summary.error:
            sys.exit(f"run {number} failed: {summary.error}")
        walls.append(elapsed)
        summaries.append(summary)
        print(f"run_{number}_wall_s={elapsed:.3f}", flush=True)
        if number < args.repeat:
            shutil.rmtree(run_dir, ignore_errors=True)
    peak_mib, peak_source = peak_rss_mib(reset)
    if rss_before is not None:
        print(f"rss_before_runs_mib={rss_before / 1024:.0f}")
    print(f"certnet_peak_rss_source={peak_source}")

    import pyarrow.csv as pacsv

    arrow_walls = []
    arrow_rows = 0
    for _ in range(args.repeat):
        started = time.perf_counter()
        arrow_rows = pacsv.read_csv(feed).num_rows
        arrow_walls.append(time.perf_counter() - started)
    copy_walls = [copy_to_parquet(feed, workdir / "copy.parquet") for _ in range(args.repeat)]

    summary = summaries[-1]
    counts = counts_of(summary)
    disagreeing = [other for other in summaries if counts_of(other) != counts]
    for key in ("read", "parsed", "duplicates", "quarantined", "routed", "unrouted", "written", "batches"):
        print(f"certnet_{key}={counts[key]}")
    print(f"certnet_mapping={summary.mapping}")
    print(f"certnet_run_walls_s={','.join(f'{w:.3f}' for w in walls)}")

    stored, pairs = read_store(workdir / f"run-{args.repeat}" / "events")
    print(f"certnet_events_stored={stored}")
    print(f"routed_pairs={len(pairs)}")
    problems = []
    if disagreeing:
        problems.append("the runs' counts disagree")
    if stored != summary.written:
        problems.append(f"the store holds {stored} events, the run wrote {summary.written}")
    meta_path = feed.parent / "meta.json"
    if meta_path.is_file():
        unique = int(json.loads(meta_path.read_text())["unique_rows"])
        print(f"meta_unique_rows={unique}")
        if stored != unique:
            problems.append(f"the store holds {stored} events, meta.json expects {unique}")

    wall = statistics.median(walls)
    written_per_s = summary.written / wall
    print(f"certnet_events_written_per_s={written_per_s:.1f}")
    print_figure("certnet_events_per_s", f"{summary.read / wall:.1f}")
    print_figure("certnet_peak_rss_mib", f"{peak_mib:.0f}")
    print(f"arrow_copy_rows_per_s={arrow_rows / statistics.median(copy_walls):.1f}")
    print_figure("arrow_read_rows_per_s", f"{arrow_rows / statistics.median(arrow_walls):.1f}")
    print_figure("routed_pairs_sha256", hashlib.sha256("\n".join(pairs).encode()).hexdigest())
    print_figure("rows", summary.read)
    print_figure("wall_s", f"{wall:.3f}")
    if args.intelmq_events_per_s:
        print_figure("speedup_vs_intelmq", f"{written_per_s / args.intelmq_events_per_s:.1f}")
    if problems:
        sys.exit("; ".join(problems))


if __name__ == "__main__":
    main()
