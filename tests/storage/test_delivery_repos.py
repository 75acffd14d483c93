"""The delivery-side repositories and the idempotency record, bounded by age or size."""

from __future__ import annotations

from datetime import UTC, datetime

import redis.asyncio as aioredis

from bot.models import Post
from bot.storage import keys
from bot.storage.deadletters import DeadLetters
from bot.storage.health import STALE_BEAT_S, AccountState, HealthRepository
from bot.storage.held import HeldRepository
from bot.storage.posts import DAY_S, PostQueue
from bot.storage.streams import StreamConsumer, StreamEntry


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _post(msg: int, channel: int = 100) -> Post:
    return Post(channel, msg, datetime(2026, 1, 1, tzinfo=UTC), text=f"post {msg}")


async def test_seen_posts_are_remembered_for_the_window_then_expire(
    redis: aioredis.Redis,
) -> None:
    clock = Clock(20_000 * DAY_S + 3600)
    queue = PostQueue(redis, seen_days=2, clock=clock)
    assert await queue.enqueue(_post(1))
    clock.now += DAY_S  # the next day: yesterday's record still counts
    assert not await queue.enqueue(_post(1))
    assert await queue.seen_versions(100, [1, 2]) == [0, None]
    assert await queue.last_seen_id(100) == 1
    clock.now += 2 * DAY_S  # past the window: a re-ingest enqueues it again
    assert await queue.seen_versions(100, [1]) == [None]
    assert await queue.enqueue(_post(1))
    for key in [k async for k in redis.scan_iter(match="vigil:{posts}:seen:*")]:
        ttl = await redis.ttl(key)
        assert 0 < ttl <= 3 * DAY_S  # every record expires on its own


async def test_held_alerts_are_capped_and_expire(redis: aioredis.Redis) -> None:
    held = HeldRepository(redis, ttl_s=3600, cap=3)
    for i in range(5):
        await held.hold(7, "blocked", {"n": str(i)}, None)
    assert [h.fields["n"] for h in await held.held(7)] == ["2", "3", "4"]  # newest kept
    assert 0 < await redis.ttl(keys.user_held(7)) <= 3600
    await held.hold(7, "quiet", {"n": "q"}, release_at=100.0)
    assert await held.lease_due(200.0) == [7]
    assert await held.lease_due(200.0) == []  # leased to the first caller
    items = [h for h in await held.held(7) if h.why == "quiet"]
    await held.forget(7, items)
    assert await redis.zscore(keys.HELD_DUE, "7") is not None  # blocked ones remain
    assert await held.claim_digest(7, 1000.0) and not await held.claim_digest(7, 1000.0)


async def test_health_drops_stale_beats_and_past_flood_waits(redis: aioredis.Redis) -> None:
    health = HealthRepository(redis)
    await health.beat(["triage@a"], now=1000.0)
    await health.beat(["bot@b"], now=1000.0 + STALE_BEAT_S + 10)
    assert await health.beats(now=1000.0 + STALE_BEAT_S + 20) == {
        "bot@b": 1000.0 + STALE_BEAT_S + 10
    }
    assert await redis.hkeys(keys.HEALTH_ROLES) == ["bot@b"]
    await health.record_flood_wait("acc", 500.0)
    await health.record_flood_wait("acc", 400.0)  # the later wait wins
    assert await health.flood_waits(now=450.0) == {"acc": 500.0}
    assert await health.flood_waits(now=600.0) == {}
    assert await redis.hlen(keys.FLOOD_WAITS) == 0
    state = AccountState("acc", True, True, 500, 3, 1.0)
    await health.publish_account(state)
    assert await health.accounts() == [state]
    assert await health.claim_notice("x", 60) and not await health.claim_notice("x", 60)


async def test_dead_letters_page_and_retry(redis: aioredis.Redis) -> None:
    consumer = StreamConsumer(
        redis, keys.ALERTS_STREAM, keys.DELIVERY_GROUP, "c", keys.ALERTS_DEAD
    )
    await consumer.ensure_group()
    for i in range(3):
        await consumer.dead_letter(StreamEntry(f"{i + 1}-0", {"n": str(i)}), f"bad {i}")
    dead = DeadLetters(redis)
    page, total = await dead.page(0, 2)
    assert total == 3 and [d.reason for d in page] == ["bad 2", "bad 1"]
    assert page[0].stream == "alerts"
    assert await dead.retry(page[0].index, page[0].id)
    assert not await dead.retry(page[0].index, page[0].id)
    assert not await dead.retry(99, page[0].id)
    counts = await dead.counts()
    assert counts[page[0].index] == 2 and sum(counts) == 2


async def test_legacy_seen_hashes_are_dropped_once(redis: aioredis.Redis) -> None:
    await redis.hset(keys.post_seen(100), "1", "0")
    queue = PostQueue(redis)
    assert await queue.enqueue(_post(1))  # into today's bucket
    assert await queue.drop_legacy_seen() == 1
    assert not await redis.exists(keys.post_seen(100))
    assert await queue.seen_versions(100, [1]) == [0]
    assert await queue.drop_legacy_seen() == 0
