"""Delivery of a burst: 1,000 alerts to 100 analysts through the loopback Bot API server.

The server enforces Telegram's limits (1 message/s per chat with a small burst, 30/s overall)
and answers 429 when they are exceeded. The delivery worker runs with Vigil's default limits
(1/s per chat, 25/s overall). The limit-bound minimum is the time the configured limits
require: max((alerts - 1) / global rate, (alerts per chat - 1) / chat rate). Reported: the
ratio of the elapsed time to it (bar <= 1.10), 429s received, alerts lost and duplicated (bar 0).

Usage: .venv/bin/python bench/delivery.py [--alerts 1000] [--analysts 100]
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
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import redis.asyncio as aioredis  # noqa: E402

from bot.alerts import AlertJob  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.delivery.ratelimit import RateLimiter, RateLimits  # noqa: E402
from bot.delivery.worker import DeliveryConfig, DeliveryWorker  # noqa: E402
from bot.models import Post  # noqa: E402
from bot.storage import keys  # noqa: E402
from bot.storage.connection import EmbeddedRedis  # noqa: E402
from bot.storage.repos import Repositories  # noqa: E402
from bot.storage.users import UserRepository  # noqa: E402
from tests.support.botapi import BotApiServer  # noqa: E402
from tests.support.fixtures import make_bot  # noqa: E402


def _job(analyst: int, message_id: int) -> AlertJob:
    post = Post(
        channel_id=1000 + message_id % 7,
        message_id=message_id,
        date=datetime.now(UTC),
        text=f"Пост {message_id}: мигранты <и> & беженцы 😀",
        username="bench_channel",
        title="Bench",
    )
    return AlertJob(analyst, post, 1, "мигрант*", "normal", (), ((10, 18),), "ru", 0.9)


async def run(n_alerts: int, n_analysts: int, redis: aioredis.Redis) -> dict[str, object]:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    server = BotApiServer()
    await server.start()
    bot = make_bot(server)
    analysts = list(range(10_001, 10_001 + n_analysts))
    users = UserRepository(redis)
    for uid in analysts:
        server.add_user(uid)
        await users.request_access(uid, str(uid), None)
        await users.approve(uid)
    jobs = [_job(analysts[i % n_analysts], i + 1) for i in range(n_alerts)]
    async with redis.pipeline(transaction=False) as pipe:
        for j in jobs:
            pipe.xadd(keys.ALERTS_STREAM, j.to_fields())  # type: ignore[arg-type]
        await pipe.execute()
    limits = RateLimits(settings.chat_rate_per_s, settings.global_rate_per_s)
    repos = Repositories.build(redis)
    worker = DeliveryWorker(
        bot,
        RateLimiter(repos.rates, limits),
        repos,
        DeliveryConfig(consumer="bench", read_block_ms=50),
    )
    started = time.monotonic()
    task = asyncio.create_task(worker.run())
    try:
        while len(server.sent) < n_alerts:
            await asyncio.sleep(0.01)
            if time.monotonic() - started > n_alerts / limits.global_per_s * 3 + 30:
                break
        elapsed = server.sent[-1].received_at - server.sent[0].received_at if server.sent else 0
        await asyncio.sleep(0.5)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await bot.session.close()
        await server.stop()
    per_chat = Counter(m.chat_id for m in server.sent)
    delivered = Counter((m.chat_id, m.params.get("text", "")) for m in server.sent)
    bound = max(
        (n_alerts - 1) / limits.global_per_s,
        (max(per_chat.values(), default=1) - 1) / limits.chat_per_s,
    )
    return {
        "bench": "delivery",
        "alerts": n_alerts,
        "analysts": n_analysts,
        "chat_rate_per_s": limits.chat_per_s,
        "global_rate_per_s": limits.global_per_s,
        "elapsed_s": round(elapsed, 3),
        "limit_bound_s": round(bound, 3),
        "ratio": round(elapsed / bound, 4) if bound else None,
        "http_429": server.too_many_requests,
        "lost": n_alerts - len(delivered),
        "duplicates": sum(c - 1 for c in delivered.values()),
        "dead_letters": await redis.xlen(keys.ALERTS_DEAD),
        "bar_ratio": 1.10,
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--alerts", type=int, default=1000)
    parser.add_argument("--analysts", type=int, default=100)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp) / "data")
        await asyncio.to_thread(server.start_sync)
        client = server.client()
        try:
            result = await run(args.alerts, args.analysts, client)
        finally:
            await client.aclose()
            await asyncio.to_thread(server.stop_if_last_sync)
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
