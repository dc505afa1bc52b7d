"""What the incident benchmarks share: choosing the database, Django start-up, the framework, and the
way figures are printed (``name=value``, one per line, like the other benchmarks)."""

from __future__ import annotations

import atexit
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BENCH_PASSWORD = "bench-password-123"  # noqa: S105 - throwaway bench accounts


def start_django(*, allow_sqlite: bool, script: str) -> str:
    """Set Django up against DATABASE_URL (PostgreSQL) and return the database vendor.

    The figures the issue asks for are PostgreSQL's, so without a PostgreSQL DATABASE_URL the
    benchmark stops, unless ``allow_sqlite`` (a quick smoke run): then it uses a throwaway SQLite file,
    never the developer's own database."""
    scratch = tempfile.mkdtemp(prefix="certnet-bench-")
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    os.environ.setdefault("CERTNET_VAR_DIR", scratch)
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        if not allow_sqlite:
            sys.exit(
                f"{script} measures PostgreSQL: run it as `scripts/with-postgres.sh .venv/bin/python "
                f"bench/{script} …` (DATABASE_URL is {'unset' if not url else 'not PostgreSQL'}), "
                "or pass --allow-sqlite for a smoke run on a throwaway SQLite file"
            )
        os.environ["DATABASE_URL"] = f"sqlite:///{scratch}/bench.sqlite3"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "certnet.settings")
    import django

    django.setup()
    from django.db import connection

    return str(connection.vendor)


def database_label() -> str:
    """'PostgreSQL 15.8 (fsync=off)' or 'SQLite 3.40.1': printed with the figures they belong to."""
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT current_setting('server_version'), current_setting('fsync')")
            version, fsync = cursor.fetchone()
            return f"PostgreSQL {version} (fsync={fsync})"
        cursor.execute("SELECT sqlite_version()")
        return f"SQLite {cursor.fetchone()[0]}"


def migrate_and_load_framework() -> None:
    """What `certnet setup` does without --demo: migrate, then load the framework file."""
    from django.conf import settings
    from django.core.management import call_command

    from certnet.registry import index
    from certnet.registry.framework import load_framework_file

    call_command("migrate", interactive=False, verbosity=0)
    load_framework_file(settings.CERTNET_FRAMEWORK_FILE)
    index.clear_cache()


def machine_note() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{os.cpu_count()} cores, load average {load:.2f} at start"


def _proc_stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds of the process and of its children it has waited for), from /proc."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[1]), sum(int(f) for f in fields[11:15]) / ticks  # utime stime cutime cstime


def tree_cpu_seconds(root: int | None) -> float:
    """CPU seconds used so far by a process and everything below it (live or already reaped)."""
    if root is None or not Path("/proc").is_dir():
        return float("nan")
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _proc_stat(int(entry.name))) is not None:
            parents[int(entry.name)], cpu[int(entry.name)] = stat
    total = 0.0
    for pid in cpu:
        current: int | None = pid
        while current is not None and current != root:
            current = parents.get(current) if current > 1 else None
        if current == root:
            total += cpu[pid]
    return total


def database_server_pid() -> int | None:
    """The PostgreSQL postmaster's pid when it runs on this machine (for its CPU time), else None."""
    from django.db import connection

    local = connection.settings_dict.get("HOST") in {"127.0.0.1", "localhost", "::1"}
    if connection.vendor != "postgresql" or not local:
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = int(cursor.fetchone()[0])
    stat = _proc_stat(backend)
    return stat[0] if stat else None


def percentile(sorted_values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile of already sorted values (share 0.95 → p95)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, math.ceil(share * len(sorted_values)))
    return sorted_values[rank - 1]


def print_latencies(prefix: str, timings_ms: Iterable[float]) -> dict[str, float]:
    """Print and return n, p50, p95, p99 and max of timings in milliseconds."""
    values = sorted(timings_ms)
    figures = {
        "p50_ms": percentile(values, 0.50),
        "p95_ms": percentile(values, 0.95),
        "p99_ms": percentile(values, 0.99),
        "max_ms": values[-1] if values else float("nan"),
    }
    figures["n"] = len(values)
    print(f"{prefix}_n={len(values)}")
    for name, value in figures.items():
        if name != "n":
            print(f"{prefix}_{name}={value:.2f}")
    return figures


def print_figure(name: str, value: Any) -> None:
    print(f"{name}={value}", flush=True)
