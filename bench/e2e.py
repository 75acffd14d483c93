"""End to end: post enqueued on the posts stream -> sendMessage received by a Bot API server.

Posts are enqueued (through `PostQueue`, as ingest and the watcher do) at 20/s for 60 s. 50
analysts each have one watch on a word of their own; post i carries analyst i % 50's word, so
each post has one recipient and each analyst gets an alert every 2.5 s (under Telegram's
per-chat limit, so this measures Vigil, not the caps). The triage worker (language detection
included) and the delivery worker run in this process against an embedded Redis and the
loopback Bot API server (with Telegram's limits). Latency: from just before the enqueue to
the server receiving the sendMessage for that post. Bar: p99 <= 300 ms.

Usage: .venv/bin/python bench/e2e.py [--rate 20] [--seconds 60] [--analysts 50]
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import redis.asyncio as aioredis  # noqa: E402

from bot.delivery.ratelimit import RateLimiter, RateLimits  # noqa: E402
from bot.delivery.worker import DeliveryConfig, DeliveryWorker  # noqa: E402
from bot.models import Post  # noqa: E402
from bot.storage.connection import EmbeddedRedis  # noqa: E402
from bot.storage.posts import PostQueue  # noqa: E402
from bot.storage.repos import Repositories  # noqa: E402
from bot.storage.users import UserRepository  # noqa: E402
from bot.storage.watches import WatchRepository  # noqa: E402
from bot.triage.engine import TriageEngine  # noqa: E402
from bot.triage.language import make_detector  # noqa: E402
from bot.triage_worker import TriageWorker  # noqa: E402
from tests.support.botapi import BotApiServer, WaitTimeoutError  # noqa: E402
from tests.support.fixtures import make_bot  # noqa: E402

SENTENCES = [
    "Власти региона заявили о новых мерах в отношении приезжих рабочих.",
    "Міністерство оголосило про зміни у правилах перетину кордону.",
    "Parliament debated the transit corridor agreement late into the night.",
    "Milli Məclisdə dəhliz məsələsi ilə bağlı yeni müzakirələr keçirildi.",
]


def _word(i: int) -> str:
    return "vigilkw" + chr(97 + i // 26) + chr(97 + i % 26)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


async def run(
    rate: float, seconds: float, n_analysts: int, redis: aioredis.Redis
) -> dict[str, object]:
    server = BotApiServer()
    await server.start()
    bot = make_bot(server)
    users = UserRepository(redis)
    watches = WatchRepository(redis)
    analysts = list(range(20_001, 20_001 + n_analysts))
    for i, uid in enumerate(analysts):
        server.add_user(uid)
        await users.request_access(uid, str(uid), None)
        await users.approve(uid)
        await watches.add(uid, f"={_word(i)}")
    repos = Repositories.build(redis)
    triage = TriageWorker.over(repos, TriageEngine(make_detector()), consumer="bench-t")
    delivery = DeliveryWorker(
        bot,
        RateLimiter(repos.rates, RateLimits(1.0, 25.0)),
        repos,
        DeliveryConfig(consumer="bench-d"),
    )
    queue = PostQueue(redis)
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(triage.run(stop, block_ms=500)),
        asyncio.create_task(delivery.run()),
    ]
    enqueued_at: dict[int, float] = {}
    total = int(rate * seconds)
    await asyncio.sleep(1.0)  # workers up, index loaded
    start = time.monotonic()
    try:
        for i in range(total):
            due = start + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            message_id = i + 1
            post = Post(
                channel_id=777,
                message_id=message_id,
                date=datetime.now(UTC),
                text=f"{SENTENCES[i % len(SENTENCES)]} #{message_id} {_word(i % n_analysts)}",
                username="bench_news",
                title="Bench news",
            )
            enqueued_at[message_id] = time.monotonic()
            await queue.enqueue(post)
        with contextlib.suppress(WaitTimeoutError):
            await server.wait_until(lambda: len(server.sent) >= total, timeout=10)
    finally:
        stop.set()
        tasks[1].cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await bot.session.close()
        await server.stop()
    latencies = []
    for message in server.sent:
        link = next((e.url for e in message.entities if e.type == "text_link"), None)
        if link is None:
            continue
        message_id = int(link.rsplit("/", 1)[-1])
        latencies.append((message.received_at - enqueued_at[message_id]) * 1000)
    return {
        "bench": "e2e",
        "posts": total,
        "rate_per_s": rate,
        "analysts": n_analysts,
        "alerts_received": len(latencies),
        "p50_ms": round(_percentile(latencies, 0.50), 2) if latencies else None,
        "p90_ms": round(_percentile(latencies, 0.90), 2) if latencies else None,
        "p99_ms": round(_percentile(latencies, 0.99), 2) if latencies else None,
        "max_ms": round(max(latencies), 2) if latencies else None,
        "http_429": server.too_many_requests,
        "bar_p99_ms": 300,
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--analysts", type=int, default=50)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        embedded = EmbeddedRedis(Path(tmp) / "data")
        await asyncio.to_thread(embedded.start_sync)
        client = embedded.client()
        try:
            result = await run(args.rate, args.seconds, args.analysts, client)
        finally:
            await client.aclose()
            await asyncio.to_thread(embedded.stop_if_last_sync)
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
