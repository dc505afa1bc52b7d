"""`certnet worker`: process feed batches from the Redis stream until stopped (distributed mode)."""

from __future__ import annotations

import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from certnet.feeds.distributed import make_worker, redis_client
from certnet.feeds.streams import RECLAIM_IDLE_MS


class Command(BaseCommand):
    help = (
        "Claim feed batches from the Redis stream (REDIS_URL), run them through the pipeline and acknowledge "
        "them once their events are stored. Start as many as you like, on any machine that reaches Redis, "
        "the database and the events store."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", help="consumer name (default: host-pid)")
        parser.add_argument("--until-idle", action="store_true", help="stop when the stream is empty")
        parser.add_argument(
            "--reclaim-seconds",
            type=float,
            default=RECLAIM_IDLE_MS / 1000,
            help="take over a batch another worker has held unacknowledged this long (it died)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        client = redis_client()
        worker, pipelines = make_worker(
            client, name=options.get("name"), reclaim_idle_ms=int(options["reclaim_seconds"] * 1000)
        )
        stopping = {"now": False}

        def stop(_signum: int, _frame: object) -> None:
            # Finish the batch in hand, then leave: an acknowledged batch is never half done.
            stopping["now"] = True
            worker.stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            processed = worker.run(stop_when_idle=options["until_idle"])
        finally:
            pipelines.close()
        self.stdout.write(f"worker {worker.name}: {processed} batch(es) processed")
