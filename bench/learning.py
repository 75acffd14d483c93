"""From a 👍 / 👎 to the model in use, through Redis, as the service runs it.

`bench/relevance.py` measures the model offline (and `verdict_to_model_ms` in-process). This
times the whole path on the embedded Redis: the bot's `FeedbackRepository.set` (feedback hash
and feedback-stream event in one transaction) → the learner (consumer group `learners`, block
1 s, re-read the verdict, keep the example, retrain, publish, bump the version) → a triage
worker's `ModelSync` polling every `SYNC_S` until the analyst's model has the new verdict. The
posts are real NTREX sentences (`../shared/data/ntrex/`); the analyst already has `--examples`
verdicts, so each retrain is a retrain of that many.

Fields: `verdict_to_model_s` (median and max over `--verdicts` verdicts), `retrain_ms` (the
learner's rebuild of one analyst's model from Redis, median), `model_bytes` (the published
model's size).

Run: `.venv/bin/python bench/learning.py` (one JSON line).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.triage import load_sentences, make_posts  # noqa: E402
from bot.app import build_learner  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.learner import SYNC_S, ModelSync  # noqa: E402
from bot.storage import keys  # noqa: E402
from bot.storage.connection import EmbeddedRedis  # noqa: E402
from bot.storage.repos import Repositories  # noqa: E402
from bot.triage.language import make_detector  # noqa: E402
from bot.triage.relevance import LearnedRelevance  # noqa: E402

ANALYST = 4242


async def main(args: argparse.Namespace) -> dict[str, object]:
    rng = random.Random(args.seed)
    posts = [p for p in make_posts(load_sentences(), rng) if p.text]
    posts = [replace(p, message_id=i + 1) for i, p in enumerate(posts)]
    posts = posts[: args.examples + args.verdicts]
    data_dir = Path(tempfile.mkdtemp(prefix="vigil-learning-")) / "data"
    server = EmbeddedRedis(data_dir)
    server.start_sync()
    redis = server.client()
    try:
        repos = Repositories.build(redis)
        await repos.users.request_access(ANALYST, "Ann", None)
        await repos.users.approve(ANALYST)
        await repos.archive.put_many(posts)
        detector = make_detector()
        learner = build_learner(
            Settings(_env_file=None),  # type: ignore[call-arg]
            repos,
            lambda text: detector.detect(text).code,
            "bench",
        )
        for i, p in enumerate(posts[: args.examples]):
            verdict = "relevant" if i % 2 == 0 else "noise"
            await repos.feedback.set(ANALYST, p.channel_id, p.message_id, 0, verdict)
        await learner.drain()
        sync = ModelSync(repos.learning, repos.users, LearnedRelevance())
        await sync.refresh(force=True)
        stop = asyncio.Event()
        learning = asyncio.create_task(learner.run(stop))

        async def follow() -> None:
            while not stop.is_set():
                await sync.refresh()
                await asyncio.sleep(SYNC_S)

        follower = asyncio.create_task(follow())
        latencies = []
        for i, p in enumerate(posts[args.examples :]):
            before = sum(sync.relevance.models[ANALYST].counts)
            start = time.perf_counter()
            verdict = "relevant" if i % 2 == 0 else "noise"
            await repos.feedback.set(ANALYST, p.channel_id, p.message_id, 0, verdict)
            # Polled: the model changes in ModelSync's own task, which has no event to await.
            while sum(sync.relevance.models[ANALYST].counts) == before:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            latencies.append(time.perf_counter() - start)
        stop.set()
        await asyncio.gather(learning, follower)
        retrains = []
        for _ in range(5):
            start = time.perf_counter()
            await learner.retrain(ANALYST)
            retrains.append((time.perf_counter() - start) * 1000)
        model = await redis.hget(keys.MODELS, str(ANALYST))
        return {
            "bench": "learning",
            "examples": args.examples,
            "verdicts": len(latencies),
            "verdict_to_model_s": round(statistics.median(latencies), 2),
            "verdict_to_model_max_s": round(max(latencies), 2),
            "retrain_ms": round(statistics.median(retrains), 1),
            "model_bytes": len(model or "") * 3 // 4,  # base64 in Redis
            "sync_every_s": SYNC_S,
        }
    finally:
        await redis.aclose()
        server.stop_if_last_sync()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=200, help="verdicts already given")
    parser.add_argument("--verdicts", type=int, default=10, help="verdicts timed")
    parser.add_argument("--seed", type=int, default=7)
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
