"""The triage worker end to end through the embedded Redis, beside its pure engine.

`bench/triage.py` times the engine alone; this times what a user runs: posts enqueued on the
posts stream (through `PostQueue`, as the watcher and `vigil ingest` do), the real
`TriageWorker` reading them through its consumer group, archiving, deduplicating, checking the
(post, analyst, version) ledger and appending alerts, acknowledging each batch; alerts counted
on the alerts stream. Watches and posts are built exactly as `bench/triage.py` builds them
(real NTREX text from `../shared/data/ntrex/`). In the same run and on the same posts, the pure
engine is timed with the same warm caches, so `ratio_to_engine` is the share of the engine's
speed that the worker keeps after its Redis work.

The worker is timed in its steady state: one pass over the window first (it warms the word
cache, and its posts are archived), then the same window again under new message ids, so every
post is new to Redis and alerts again. The surge check, which the running worker makes once
every `SURGE_CHECK_S` whatever the rate (its cost grows with the watches touched, not the
posts), is timed apart after the pass: `surge_check_s` is what it holds the loop, `surge_tell_s`
until its notices are out (charts are drawn beside the loop). `round_trips_per_post` counts the
worker's own Redis calls on the timed pass (stream reads, watch-change polls, batch lookups,
writes with the alert appends, acks) divided by the posts. The timed pass is run `--repeat`
times (new ids each) and the fastest counts, as does the fastest of as many engine runs;
`worker_cpu_s`, `redis_cpu_s` and `engine_cpu_s` (CPU seconds) say the same more steadily on
shared CPUs.

Prints one JSON line per watch count (`posts_per_s` is the figure at that count; the bar is
taken at 10,000). Run: `.venv/bin/python bench/worker.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from triage import load_sentences, make_posts, make_watches, run_engine  # noqa: E402

from bot.app import build_triage_worker  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.models import Post  # noqa: E402
from bot.storage import keys  # noqa: E402
from bot.storage.connection import EmbeddedRedis  # noqa: E402
from bot.storage.repos import Repositories  # noqa: E402
from bot.triage_worker import SURGE_CHECK_S, settle_heap  # noqa: E402


class CountingConsumer:
    """Counts the consumer's Redis calls (read, ack) without changing them."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.calls = 0

    def __getattr__(self, name: str) -> object:
        attr = getattr(self.inner, name)
        if name in {"read", "ack", "ensure_group"}:

            async def counted(*args: object, **kwargs: object) -> object:
                self.calls += 1
                return await attr(*args, **kwargs)  # type: ignore[operator, no-any-return]

            return counted
        return attr


async def bench(
    count: int, posts: list[Post], sentences: dict[str, list[str]], batch: int, repeat: int = 3
) -> dict[str, object]:
    rng = random.Random(count)
    specs = [spec for spec, _ in make_watches(sentences, count, rng)]
    data_dir = Path(tempfile.mkdtemp(prefix="vigil-worker-")) / "data"
    server = EmbeddedRedis(data_dir)
    server.start_sync()
    redis = server.client()
    try:
        repos = Repositories.build(redis)
        for start in range(0, len(specs), 200):  # through the repository, as /watch does
            await asyncio.gather(
                *(
                    repos.watches.add(s.owner_id, s.query, s.priority)
                    for s in specs[start : start + 200]
                )
            )
        if hasattr(os, "sched_setaffinity"):
            # The worker on one core, as bench/triage.py times the engine; redis-server was
            # started before and keeps the other.
            os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        # Built as the triage role builds it (bot/app.py): learned relevance on, the model
        # sync polling Redis, the learner's consumer ready (no analyst has a model here:
        # bench/relevance.py measures what models cost).
        worker, _run = await build_triage_worker(Settings(_env_file=None), repos, consumer="bench")
        engine = worker._engine
        counter = CountingConsumer(worker._stream)
        worker._stream = counter  # type: ignore[assignment]
        loaded = await worker.load_watches()
        settle_heap()  # as TriageWorker.run does once its index is loaded

        async def redis_cpu() -> float:
            info = await redis.info("cpu")
            return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

        async def one_pass(shift: int) -> tuple[float, float, float, int]:
            # Dated now: live posts (older ones would be archived as a backfill, not alerted).
            now = datetime.now(UTC)
            batch_posts = [replace(p, message_id=p.message_id + shift, date=now) for p in posts]
            await repos.posts.enqueue_many(batch_posts)
            before = int(await redis.xlen(keys.ALERTS_STREAM))
            redis_before = await redis_cpu()
            cpu = time.process_time()
            start = time.perf_counter()
            done = await worker.drain(batch=batch, surges=False)
            elapsed = time.perf_counter() - start
            cpu = time.process_time() - cpu
            assert done == len(posts), (done, len(posts))
            alerted = int(await redis.xlen(keys.ALERTS_STREAM)) - before
            return elapsed, cpu, await redis_cpu() - redis_before, alerted

        await one_pass(0)  # warm: word cache, archive
        await worker.check_surges()
        await worker.surges_told()  # no chart drawn beside the timed passes
        trips_before = worker.round_trips + counter.calls
        syncs_before = worker.stats.batches
        # The best of `repeat` passes (each under new message ids): on a shared machine the
        # slowest passes measure the neighbours.
        passes = [await one_pass(10_000_000 * (i + 1)) for i in range(repeat)]
        elapsed, cpu, redis_cpu_s, alerts = min(passes)
        # drain() polls the watch-change feed once per batch: one call each.
        trips = worker.round_trips + counter.calls - trips_before
        trips += worker.stats.batches - syncs_before
        # The surge check `run` makes once every SURGE_CHECK_S (60 s), whatever the rate: it
        # costs per watch the batches touched, not per post, so it is timed apart.
        checked = time.perf_counter()
        surges = await worker.check_surges()
        surge_check_s = time.perf_counter() - checked
        await worker.surges_told()  # the notices are made beside the loop: not in its way
        surge_tell_s = time.perf_counter() - checked
        run_engine(engine, posts)
        engine_runs = []
        for _ in range(repeat):
            engine_cpu = time.process_time()
            engine_elapsed, matched = run_engine(engine, posts)
            engine_runs.append((engine_elapsed, time.process_time() - engine_cpu))
        engine_elapsed, engine_cpu = min(engine_runs)
        posts_per_s = len(posts) / elapsed
        engine_per_s = len(posts) / engine_elapsed
        return {
            "bench": "worker",
            "watches": loaded,
            "posts": len(posts),
            "batch": batch,
            "posts_per_s": round(posts_per_s, 1),
            "engine_posts_per_s": round(engine_per_s, 1),
            "ratio_to_engine": round(posts_per_s / engine_per_s, 3),
            "round_trips_per_post": round(trips / repeat / len(posts), 3),
            # CPU seconds of the timed pass (the worker's process, and Redis's) and of the
            # engine on the same posts: steadier than wall time when the CPUs are shared.
            "worker_cpu_s": round(cpu, 3),
            "redis_cpu_s": round(redis_cpu_s, 3),
            "engine_cpu_s": round(engine_cpu, 3),
            "surge_check_s": round(surge_check_s, 3),
            "surges": surges,
            "surge_tell_s": round(surge_tell_s, 3),
            "surge_check_every_s": SURGE_CHECK_S,
            "alerts": alerts,
            "matches": matched,
        }
    finally:
        await redis.aclose()
        server.stop_if_last_sync()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--watches", type=int, nargs="*", default=[100, 10_000])
    parser.add_argument("--posts", type=int, default=1000, help="the steady-state window")
    parser.add_argument("--batch", type=int, default=100, help="the worker's read count")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes; the best counts")
    args = parser.parse_args()
    sentences = load_sentences()
    posts = make_posts(sentences, random.Random(7))[: args.posts]
    for count in args.watches:
        print(
            json.dumps(asyncio.run(bench(count, posts, sentences, args.batch, args.repeat))),
            flush=True,
        )


if __name__ == "__main__":
    main()
