from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from bot.storage.streams import (
    RECOVERY_READ,
    StreamConsumer,
    append,
    ensure_group,
    retry_dead_letter,
    stream_stats,
)

STREAM, GROUP, DEAD = "t:{s}:stream", "workers", "t:{s}:dead"


def consumer(redis: aioredis.Redis, name: str, **kw: int) -> StreamConsumer:
    return StreamConsumer(redis, STREAM, GROUP, name, DEAD, **kw)


async def test_ack_removes_from_pending(redis: aioredis.Redis) -> None:
    c = consumer(redis, "a")
    await c.ensure_group()
    for i in range(3):
        await append(redis, STREAM, {"n": str(i)})
    batch = await c.read(count=10, block_ms=100)
    assert [e.fields["n"] for e in batch] == ["0", "1", "2"]
    await c.ack(*(e.id for e in batch))
    stats = await stream_stats(redis, STREAM, GROUP, DEAD)
    assert (stats.length, stats.pending, stats.lag) == (3, 0, 0)


async def test_restarted_consumer_reads_its_own_pending_first(redis: aioredis.Redis) -> None:
    first = consumer(redis, "a")
    await first.ensure_group()
    for i in range(5):
        await append(redis, STREAM, {"n": str(i)})
    got = await first.read(count=2, block_ms=100)  # read, then "crash" before ack
    assert [e.fields["n"] for e in got] == ["0", "1"]
    again = consumer(redis, "a")  # same consumer name after restart
    pending = await again.read(count=10, block_ms=100)
    assert [e.fields["n"] for e in pending] == ["0", "1"]
    assert all(e.deliveries == 2 for e in pending)
    await again.ack(*(e.id for e in pending))
    fresh = await again.read(count=10, block_ms=100)
    assert [e.fields["n"] for e in fresh] == ["2", "3", "4"]


async def test_dead_consumer_entries_are_reclaimed_after_idle(redis: aioredis.Redis) -> None:
    dead = consumer(redis, "dead", claim_idle_ms=200)
    await dead.ensure_group()
    for i in range(4):
        await append(redis, STREAM, {"n": str(i)})
    taken = await dead.read(count=4, block_ms=100)
    assert len(taken) == 4  # the consumer dies holding all four
    alive = consumer(redis, "alive", claim_idle_ms=200)
    assert await alive.read(count=10, block_ms=50) == []  # not idle long enough yet
    await asyncio.sleep(0.25)
    reclaimed = await alive.read(count=10, block_ms=50)
    assert sorted(e.fields["n"] for e in reclaimed) == ["0", "1", "2", "3"]
    await alive.ack(*(e.id for e in reclaimed))
    stats = await stream_stats(redis, STREAM, GROUP, DEAD)
    assert stats.pending == 0


async def test_poison_entry_goes_to_dead_letters_and_can_be_retried(
    redis: aioredis.Redis,
) -> None:
    await ensure_group(redis, STREAM, GROUP)
    await append(redis, STREAM, {"n": "poison"})
    for _attempt in range(3):  # each restart redelivers the pending entry
        c = consumer(redis, "a", max_deliveries=3)
        batch = await c.read(count=10, block_ms=50)
        assert [e.fields["n"] for e in batch] == ["poison"]
    c = consumer(redis, "a", max_deliveries=3)
    assert await c.read(count=10, block_ms=50) == []  # 4th delivery: dead-lettered instead
    dead = await redis.xrange(DEAD)
    assert len(dead) == 1
    dead_id, fields = dead[0]
    assert fields["n"] == "poison" and fields["_deliveries"] == "4"
    stats = await stream_stats(redis, STREAM, GROUP, DEAD)
    assert (stats.pending, stats.dead_letters) == (0, 1)
    assert await retry_dead_letter(redis, DEAD, dead_id)
    assert await redis.xlen(DEAD) == 0
    again = await consumer(redis, "b").read(count=10, block_ms=50)
    assert [e.fields["n"] for e in again] == ["poison"]
    assert not await retry_dead_letter(redis, DEAD, dead_id)


async def test_a_crash_loop_counts_only_the_entries_it_was_handling(
    redis: aioredis.Redis,
) -> None:
    """A backlog of 50 own pending entries and a worker killed six times while handling the
    first entries it reads back: the entries it never reached are not dead-lettered."""
    await ensure_group(redis, STREAM, GROUP)
    for i in range(50):
        await append(redis, STREAM, {"n": str(i)})
    assert len(await consumer(redis, "a").read(count=50, block_ms=50)) == 50  # then killed
    for _restart in range(6):
        c = consumer(redis, "a", max_deliveries=5)
        batch = await c.read(count=50, block_ms=50)
        assert 0 < len(batch) <= RECOVERY_READ  # it dies handling these
    c = consumer(redis, "a", max_deliveries=5)
    survivors = []
    while batch := await c.read(count=50, block_ms=50):
        survivors += [e.fields["n"] for e in batch]
        await c.ack(*(e.id for e in batch))
    dead = [fields["n"] for _id, fields in await redis.xrange(DEAD)]
    assert sorted(dead + survivors, key=int) == [str(i) for i in range(50)]  # none lost
    assert len(dead) == RECOVERY_READ  # only the entries the loop kept dying on
    assert len(survivors) == 50 - RECOVERY_READ


async def test_stream_length_is_bounded(redis: aioredis.Redis) -> None:
    async with redis.pipeline(transaction=False) as pipe:
        for i in range(5000):
            pipe.xadd(STREAM, {"n": str(i)}, maxlen=1000, approximate=True)
        await pipe.execute()
    await append(redis, STREAM, {"n": "last"}, maxlen=1000)
    length = await redis.xlen(STREAM)
    assert 1000 <= length < 1500  # approximate trimming works in whole nodes


async def test_trim_by_age_keeps_what_a_group_still_holds_or_has_not_read(
    redis: aioredis.Redis,
) -> None:
    """Old acknowledged entries go; the oldest pending entry, and everything after it, stay;
    so do entries the group has not read yet, however old."""
    c = consumer(redis, "a")
    await c.ensure_group()
    old_ms = 1_000_000_000_000  # 2001: far older than any window
    for i in range(6):
        await redis.xadd(STREAM, {"n": str(i)}, id=f"{old_ms + i}-0")
    batch = await c.read(count=4, block_ms=100)  # reads 0..3; 4 and 5 stay unread
    await c.ack(*(e.id for e in batch[:2]))  # 2 and 3 stay pending
    removed = await c.trim_acknowledged(3600)
    left = [f["n"] for _i, f in await redis.xrange(STREAM)]
    assert (removed, left) == (2, ["2", "3", "4", "5"])
    await c.ack(*(e.id for e in batch[2:]))
    await c.trim_acknowledged(3600)
    assert [f["n"] for _i, f in await redis.xrange(STREAM)] == ["4", "5"]  # unread stays
    rest = await c.read(count=10, block_ms=100)
    await c.ack(*(e.id for e in rest))
    await c.trim_acknowledged(3600)
    assert await redis.xlen(STREAM) == 0
    await append(redis, STREAM, {"n": "new"})  # a fresh entry is inside the window
    got = await c.read(count=10, block_ms=100)
    await c.ack(*(e.id for e in got))
    assert await c.trim_acknowledged(3600) == 0
    assert await redis.xlen(STREAM) == 1
