"""`certnet serve` runs the job consumer (which sends the notification mail and sweeps the clocks) beside
gunicorn, and never leaves either behind: a stop signal stops both, and when one of them dies the other
is stopped too. Real processes; the test waits on their output, never on a timer."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from certnet.notifications.tests.smtp import free_port

READY_WITHIN_SECONDS = 120  # a bound for a broken start, not a measurement


def _children(pid: int) -> dict[int, str]:
    """The live child processes of `pid` and their command lines (from /proc)."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue
        # The fields after the command name (in parentheses): state, ppid, ...
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == pid and state != "Z":
            found[int(entry.name)] = cmdline
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _serve(tmp_path: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "CERTNET_VAR_DIR": str(tmp_path), "PORT": str(free_port()), "WEB_CONCURRENCY": "1"}
    env.pop("CERTNET_JOBS_IMMEDIATE", None)
    return subprocess.Popen(
        [sys.executable, "-m", "certnet.cli", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_for_line(process: subprocess.Popen[str], needle: str) -> list[str]:
    """Read the merged output until a line contains `needle`; the lines read so far."""
    assert process.stdout is not None
    lines: list[str] = []
    with selectors.DefaultSelector() as waiting:
        waiting.register(process.stdout, selectors.EVENT_READ)
        while True:
            if not waiting.select(timeout=READY_WITHIN_SECONDS):
                process.kill()
                pytest.fail(f"no {needle!r} from certnet serve; it said:\n" + "".join(lines))
            line = process.stdout.readline()
            if not line:
                pytest.fail(f"certnet serve ended before {needle!r}:\n" + "".join(lines))
            lines.append(line)
            if needle in line:
                return lines


@pytest.fixture
def served(tmp_path: Path) -> subprocess.Popen[str]:
    process = _serve(tmp_path)
    try:
        _wait_for_line(process, "Listening at: http://127.0.0.1:")
        yield process  # type: ignore[misc]
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


def _web_and_jobs(process: subprocess.Popen[str]) -> tuple[int, int]:
    children = _children(process.pid)
    web = [pid for pid, cmd in children.items() if "gunicorn certnet.wsgi:application" in cmd]
    jobs = [pid for pid, cmd in children.items() if "certnet.cli run_huey" in cmd]
    assert (len(web), len(jobs), len(children)) == (1, 1, 2), children
    return web[0], jobs[0]


def test_sigterm_stops_the_web_server_and_the_job_consumer(served: subprocess.Popen[str]) -> None:
    web, jobs = _web_and_jobs(served)
    served.send_signal(signal.SIGTERM)
    assert served.wait(timeout=READY_WITHIN_SECONDS) == 0
    assert not _alive(web)
    assert not _alive(jobs)


def test_ctrl_c_stops_both_too(served: subprocess.Popen[str]) -> None:
    web, jobs = _web_and_jobs(served)
    served.send_signal(signal.SIGINT)
    assert served.wait(timeout=READY_WITHIN_SECONDS) == 0
    assert not _alive(web)
    assert not _alive(jobs)


def test_when_the_job_consumer_dies_the_web_server_is_stopped_and_serve_fails(
    served: subprocess.Popen[str],
) -> None:
    web, jobs = _web_and_jobs(served)
    os.kill(jobs, signal.SIGKILL)
    output, _ = served.communicate(timeout=READY_WITHIN_SECONDS)
    assert served.returncode == 128 + signal.SIGKILL
    assert not _alive(web)
    assert "the job consumer stopped (exit status 137); stopping the rest" in output
