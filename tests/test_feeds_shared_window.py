"""The deduplication window workers share through a log in Redis (a real redis-server on loopback):
it answers as the embedded window does, a key belongs to exactly one batch however the workers'
claims interleave, and a restarted worker, a lost reply, an expired window, a lost end key or a Redis
that lost its data leave it answering right."""

from __future__ import annotations

import datetime as dt
import threading
import time

import numpy as np

from certnet.feeds import shared_window
from certnet.feeds.dedup import SqliteSeenKeys
from certnet.feeds.shared_window import RedisSeenKeys

DAY = dt.timedelta(hours=24)


def keys(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.uint64)


def random_batches(seed: int, count: int, size: int, universe: int) -> list[tuple[str, np.ndarray]]:
    """Batches of distinct keys drawn from a small universe, some of them processed again later."""
    rng = np.random.default_rng(seed)
    batches: list[tuple[str, np.ndarray]] = []
    for number in range(count):
        if batches and rng.random() < 0.2:
            batches.append(batches[int(rng.integers(len(batches)))])  # redelivered: same id, same keys
            continue
        drawn = np.unique(rng.integers(0, universe, size=size).astype(np.uint64))
        batches.append((f"batch-{number}", rng.permutation(drawn)))
    return batches


def test_the_shared_window_answers_as_the_embedded_window_does(redis_server, tmp_path):
    embedded = SqliteSeenKeys(tmp_path / "seen.sqlite3")
    shared = RedisSeenKeys(redis_server.client(), DAY, namespace="feed")
    for batch_id, batch_keys in random_batches(seed=7, count=60, size=300, universe=4000):
        expected = embedded.claim(batch_id, batch_keys)
        embedded.commit(batch_id)
        assert shared.claim(batch_id, batch_keys).tolist() == expected.tolist(), batch_id
    assert len(shared) == len(embedded)


def test_workers_taking_turns_answer_as_one_window(redis_server, tmp_path):
    embedded = SqliteSeenKeys(tmp_path / "seen.sqlite3")
    workers = [RedisSeenKeys(redis_server.client(), DAY, namespace="feed") for _ in range(3)]
    batches = random_batches(seed=11, count=45, size=200, universe=2500)
    for number, (batch_id, batch_keys) in enumerate(batches):
        expected = embedded.claim(batch_id, batch_keys)
        embedded.commit(batch_id)
        assert workers[number % 3].claim(batch_id, batch_keys).tolist() == expected.tolist(), batch_id


def test_a_claim_appended_first_by_another_worker_is_read_and_the_claim_decided_again(redis_server):
    first = RedisSeenKeys(redis_server.client(), DAY, namespace="feed")
    second = RedisSeenKeys(redis_server.client(), DAY, namespace="feed")
    second.claim("warm-up", keys(100))
    script = first._append
    raced = []

    def append_after_the_other(*args, **kwargs):
        if not raced:  # between first's read of the log and its append, second claims key 2
            raced.append(second.claim("other", keys(2, 3)).tolist())
        return script(*args, **kwargs)

    first._append = append_after_the_other
    assert first.claim("mine", keys(1, 2)).tolist() == [True, False]
    assert raced == [[True, True]]
    assert redis_server.client().xlen(first.stream) == 3  # warm-up, other, mine: the refused try left nothing


def test_every_key_belongs_to_exactly_one_batch_when_workers_claim_at_once(redis_server):
    batches = random_batches(seed=3, count=120, size=400, universe=6000)
    answers: dict[str, list[np.ndarray]] = {}
    lock = threading.Lock()
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        window = RedisSeenKeys(redis_server.client(), DAY, namespace="feed")
        try:
            for batch_id, batch_keys in batches[offset::4]:
                new = window.claim(batch_id, batch_keys)
                with lock:
                    answers.setdefault(batch_id, []).append(batch_keys[new])
        except BaseException as error:  # reported below, not lost in the thread
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    owners: dict[int, str] = {}
    for batch_id, claimed in answers.items():
        # A batch processed more than once got the same keys each time, so its output replaces itself.
        assert all(sorted(c.tolist()) == sorted(claimed[0].tolist()) for c in claimed), batch_id
        for key in claimed[0].tolist():
            assert key not in owners, f"key {key} new for {owners.get(key)} and {batch_id}"
            owners[key] = batch_id
    every_key = set(np.concatenate([k for _, k in batches]).tolist())
    assert set(owners) == every_key


def test_a_restarted_worker_reads_the_window_back_from_the_log(redis_server):
    before = RedisSeenKeys(redis_server.client(), DAY, namespace="feed")
    assert before.claim("b1", keys(5, 3, 9)).all()
    assert before.claim("b2", keys(9, 10)).tolist() == [False, True]
    restarted = RedisSeenKeys(redis_server.client(), DAY, namespace="feed")
    assert restarted.claim("b1", keys(5, 3, 9)).all()  # a batch processed again finds its own keys new
    assert restarted.claim("b3", keys(3, 10, 11)).tolist() == [False, False, True]
    other_source = RedisSeenKeys(redis_server.client(), DAY, namespace="other")
    assert other_source.claim("b9", keys(3, 10)).all()


def test_a_claim_whose_reply_was_lost_is_found_in_the_log(redis_server):
    window = RedisSeenKeys(redis_server.client(), DAY, namespace="feed")
    window.claim("b0", keys(1))
    # The script ran (the claim is in the log) but its answer never reached the worker.
    ok, _ = window._append(
        keys=[window.stream, window.end_key], args=[window._end, "b1", keys(7, 8).tobytes(), "unused"]
    )
    assert ok == 1
    assert window.claim("b1", keys(7, 8, 1)).tolist() == [True, True, False]
    assert redis_server.client().xlen(window.stream) == 2


def test_keys_are_forgotten_after_the_window_and_the_log_is_trimmed(redis_server, monkeypatch):
    monkeypatch.setattr(shared_window, "PRUNE_EVERY_SECONDS", 0.0)
    client = redis_server.client()
    short = dt.timedelta(milliseconds=400)
    window = RedisSeenKeys(client, short, namespace="feed")
    assert window.claim("a", keys(1, 2, 3)).all()
    assert not window.claim("b", keys(1, 2, 3)).any()
    time.sleep(0.5)  # past a's window (Redis's clock): its keys are free, and b never held them
    assert window.claim("c", keys(1, 2, 3)).all()
    assert window.claim("d", keys(1)).tolist() == [False]
    assert len(window) == 3
    assert client.xlen(window.stream) == 1  # a's entry trimmed; b and d appended none
    time.sleep(0.5)
    fresh = RedisSeenKeys(client, short, namespace="feed")
    assert fresh.claim("e", keys(3, 4)).all()  # the log ends at an entry it never read: it appends on
    assert client.xlen(window.stream) == 1
    assert window.claim("f", keys(4)).tolist() == [False]


def test_a_redis_that_lost_its_data_is_a_window_that_starts_again(redis_server):
    client = redis_server.client()
    window = RedisSeenKeys(client, DAY, namespace="feed")
    assert window.claim("a", keys(1, 2)).all()
    client.flushall()
    assert window.claim("b", keys(2, 3)).all()  # the window is the log: a's claim went with it
    restarted = RedisSeenKeys(client, DAY, namespace="feed")
    assert restarted.claim("c", keys(1, 3, 4)).tolist() == [True, False, True]
    assert window.claim("d", keys(4)).tolist() == [False]


def test_a_new_log_whose_first_id_is_the_end_a_worker_read_is_still_read(redis_server):
    client = redis_server.client()
    window = RedisSeenKeys(client, DAY, namespace="feed")
    window.claim("x", keys(1))
    read_to = window._read_to
    client.flushall()
    # Another worker starts the log again within the same millisecond: its first entry has that id.
    client.xadd(window.stream, {"batch": "y", "keys": keys(5).tobytes()}, id=read_to)
    client.set(window.end_key, f"another/{read_to}")
    assert window.claim("z", keys(5)).tolist() == [False]


def test_a_lost_end_key_with_the_log_still_there_is_a_log_read_again(redis_server):
    client = redis_server.client()
    window = RedisSeenKeys(client, DAY, namespace="feed")
    window.claim("a", keys(1, 2))
    client.delete(window.end_key)
    assert window.claim("b", keys(2, 3)).tolist() == [False, True]
    other = RedisSeenKeys(client, DAY, namespace="feed")
    assert other.claim("c", keys(3)).tolist() == [False]
    assert client.xlen(window.stream) == 2
