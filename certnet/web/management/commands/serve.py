from __future__ import annotations

import os
import signal
import subprocess
import sys
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

STOP_GRACE_SECONDS = 20  # how long each child may take to finish its requests and jobs on stop


def _die_with_parent() -> None:
    """Ask Linux to send the child SIGTERM if this supervisor dies without stopping it (even by
    SIGKILL), so no web server or job consumer is ever left behind. Elsewhere, a no-op."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    try:
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):  # not glibc/musl with prctl: run without the safety net
        return


class Command(BaseCommand):
    help = (
        "Serve the web UI and API with gunicorn on 127.0.0.1 (PORT, default 8000), with the background "
        "job consumer (clock sweeps, notification mail) beside it; Ctrl-C or SIGTERM stops both."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "2")))
        parser.add_argument(
            "--no-jobs",
            action="store_true",
            help="do not start the job consumer (when separate `certnet run_huey` workers run the jobs)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        bind = f"{options['host']}:{options['port']}"
        web = [
            sys.executable,
            "-m",
            "gunicorn",
            "certnet.wsgi:application",
            "--bind",
            bind,
            "--workers",
            str(options["workers"]),
            "--access-logfile",
            "-",
        ]
        commands = {"web server": web}
        # In immediate mode the jobs run inside the request, so a consumer would have nothing to do.
        if not options["no_jobs"] and not settings.HUEY.get("immediate"):
            # Quiet: warnings and failures only, not a line for every job every minute.
            commands["job consumer"] = [sys.executable, "-m", "certnet.cli", "run_huey", "--quiet"]
        self.stdout.write(f"certnet serving on http://{bind}/ with {' and '.join(commands)} (Ctrl-C to stop)")
        self.stdout.flush()
        code = self._supervise(commands)
        if code:
            sys.exit(code)

    def _supervise(self, commands: dict[str, list[str]]) -> int:
        """Run every command as a child; when one ends, or a stop signal comes, stop the others and
        wait for them. Returns the exit status of the child that ended first (0 on a requested stop)."""
        children: dict[int, tuple[str, subprocess.Popen[bytes]]] = {}
        stopping = False

        def stop(signum: int, _frame: FrameType | None) -> None:
            nonlocal stopping
            stopping = True
            for _name, child in children.values():
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)

        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, stop)
        for name, argv in commands.items():
            child = subprocess.Popen(argv, preexec_fn=_die_with_parent)  # noqa: S603 - our own commands, no shell
            children[child.pid] = (name, child)
        if stopping:  # a stop signal came while the children were starting
            stop(signal.SIGTERM, None)

        first_name, first_code = "", 0
        while True:
            try:
                pid, status = os.wait()  # any child; a signal handler runs meanwhile and the wait goes on
            except ChildProcessError:  # the stop handler's Popen.poll already reaped every child
                first_name, first_code = next(
                    (name, child.returncode)
                    for name, child in children.values()
                    if child.returncode is not None
                )
                break
            if pid in children:
                first_name, first_code = children[pid][0], os.waitstatus_to_exitcode(status)
                children[pid][1].returncode = first_code
                break
        if first_code < 0:  # killed by a signal: report it as a shell would, 128 + its number
            first_code = 128 - first_code
        requested = stopping
        if not requested:
            self.stderr.write(f"the {first_name} stopped (exit status {first_code}); stopping the rest")
        stop(signal.SIGTERM, None)
        for name, child in children.values():
            try:
                child.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                self.stderr.write(f"the {name} did not stop in {STOP_GRACE_SECONDS} s; killing it")
                child.kill()
                child.wait()
        return 0 if requested else (first_code or 1)
