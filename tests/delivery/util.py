"""Helpers for delivery tests: alert jobs, a worker on the loopback server, waiting."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import redis.asyncio as aioredis
from aiogram import Bot

from bot.alerts import AlertJob
from bot.delivery.ratelimit import RateLimiter, RateLimits
from bot.delivery.worker import DeliveryConfig, DeliveryWorker
from bot.models import Post
from bot.storage import keys
from bot.storage.repos import Repositories
from bot.storage.streams import append
from bot.storage.users import UserRepository


def job(
    analyst: int,
    message_id: int,
    text: str = "Призыв выслать мигрантов",
    *,
    channel_id: int = 500,
    watch_id: int = 1,
    priority: str = "normal",
    kind: str = "new",
    spans: tuple[tuple[int, int], ...] = (),
    held: bool = False,
    reasons: tuple[str, ...] = ("watch priority normal",),
) -> AlertJob:
    post = Post(
        channel_id=channel_id,
        message_id=message_id,
        date=datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
        text=text,
        username="source_chan",
        title="Source channel",
        edit_date=datetime(2026, 3, 1, 13, 0, tzinfo=UTC) if kind == "edit" else None,
        event="delete" if kind == "delete" else ("edit" if kind == "edit" else "new"),
    )
    return AlertJob(
        analyst_id=analyst,
        post=post,
        watch_id=watch_id,
        watch_query="мигрант*",
        priority=priority,
        reasons=reasons,
        spans=spans,
        language="ru",
        language_confidence=0.99,
        kind=kind,
        held=held,
    )


async def enqueue(redis: aioredis.Redis, *jobs: AlertJob) -> None:
    for j in jobs:
        await append(redis, keys.ALERTS_STREAM, j.to_fields())


async def make_analysts(
    redis: aioredis.Redis, ids: list[int], admins: frozenset[int] = frozenset()
) -> UserRepository:
    users = UserRepository(redis, admins)
    await users.ensure_admins()
    for uid in ids:
        await users.request_access(uid, f"Analyst {uid}", None)
        assert await users.approve(uid)
    return users


def make_worker(
    redis: aioredis.Redis,
    bot: Bot,
    users: UserRepository,
    *,
    consumer: str = "d1",
    chat_rate: float = 1.0,
    global_rate: float = 25.0,
    **config: object,
) -> DeliveryWorker:
    defaults: dict[str, object] = {
        "consumer": consumer,
        "read_block_ms": 50,
        "held_check_s": 0.05,
        "backoff_s": 0.05,
    }
    defaults.update(config)
    repos = Repositories.build(redis, admins=users.admins)
    return DeliveryWorker(
        bot,
        RateLimiter(repos.rates, RateLimits(chat_per_s=chat_rate, global_per_s=global_rate)),
        repos,
        DeliveryConfig(**defaults),  # type: ignore[arg-type]
    )


@contextlib.asynccontextmanager
async def running(worker: DeliveryWorker) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(worker.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def settled(redis: aioredis.Redis, timeout: float = 10.0) -> None:  # noqa: ASYNC109
    """Wait until every alerts-stream entry is acknowledged (or dead-lettered)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        groups = await redis.xinfo_groups(keys.ALERTS_STREAM)
        group = next((g for g in groups if g["name"] == keys.DELIVERY_GROUP), None)
        if group and int(group["pending"]) == 0 and int(group.get("lag") or 0) == 0:
            return
        if loop.time() > deadline:
            raise AssertionError(f"alerts not settled: {group}")
        await asyncio.sleep(0.02)
