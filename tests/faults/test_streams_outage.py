"""A stream consumer across a Redis restart: entries delivered to it by a read whose reply the
outage swallowed are read again at once after it (not after `claim_idle_ms`), and a command
in flight when Redis went down is retried until it is back, on a real redis-server."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from unittest.mock import ANY

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from bot.storage.connection import RideOut, outages
from bot.storage.streams import StreamConsumer, append
from tests.faults.harness import RedisProcess, aof_size, limit_file_size


def _client(server: RedisProcess) -> aioredis.Redis:
    pool = aioredis.BlockingConnectionPool.from_url(
        server.url, decode_responses=True, retry=RideOut(20)
    )
    return aioredis.Redis.from_pool(pool)


async def test_entries_of_a_lost_read_come_back_after_an_outage(tmp_path: Path) -> None:
    server = RedisProcess(tmp_path / "redis")
    server.start()
    client = _client(server)
    try:
        consumer = StreamConsumer(client, "s", "g", "me", "s:dead", claim_idle_ms=60_000)
        await consumer.ensure_group()
        assert await consumer.read(block_ms=None) == []  # its own backlog: none
        for n in range(3):
            await append(client, "s", {"n": n})
        # Delivered to "me" by a read whose reply never reached the consumer.
        lost = await client.xreadgroup("g", "me", {"s": ">"}, count=10)
        assert len(lost[0][1]) == 3
        assert await consumer.read(block_ms=None) == []  # no outage: nothing new to read

        before = outages(client)
        server.stop(signal.SIGKILL)
        later = asyncio.get_running_loop().call_later(1.0, server.start)
        try:
            await append(client, "s", {"n": 3})  # waits for the server, then goes through
        finally:
            later.cancel()
        assert outages(client) > before

        again = await consumer.read(block_ms=None)
        assert [e.fields["n"] for e in again] == ["0", "1", "2"]
        assert all(e.deliveries == 2 for e in again)
        await consumer.ack(*(e.id for e in again))
        fresh = await consumer.read(block_ms=None)
        assert [e.fields["n"] for e in fresh] == ["3"]
    finally:
        await client.aclose()
        server.stop()


async def test_a_wrong_command_is_not_retried(tmp_path: Path) -> None:
    """Only transient faults are ridden out: a type error answers at once."""
    server = RedisProcess(tmp_path / "redis")
    server.start()
    client = _client(server)
    try:
        await client.set("k", "v")
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(ResponseError, match="WRONGTYPE"):
            await client.xadd("k", {"a": "b"})
        assert loop.time() - started < 1.0
    finally:
        await client.aclose()
        server.stop()


async def test_a_pipeline_refused_by_a_full_disk_is_ridden_out(tmp_path: Path) -> None:
    """redis-py names a pipeline's failed command before Redis's reply ("Command # 1 (HSET ...)
    of pipeline caused error: ('MISCONF ...',)"): the refusal is still a passing one, so the
    pipeline is sent again once the disk takes writes, not raised at once."""
    server = RedisProcess(tmp_path / "redis")
    server.start()
    client = _client(server)
    try:
        await client.set("before", "1")
        limit_file_size(server.pid, aof_size(server.data_dir) + 64)
        await client.set("filler", "x" * 4096)  # accepted; the AOF write behind it is refused
        await asyncio.sleep(1.5)  # Redis notices at its next AOF write (within a second)
        plain = aioredis.Redis.from_url(server.url, decode_responses=True)  # no ride-out
        refused = ""
        for _ in range(50):  # until Redis refuses writes (MISCONF)
            try:
                await plain.hset("probe", "a", "b")
            except ResponseError as exc:
                refused = str(exc)
                break
            await asyncio.sleep(0.1)
        await plain.aclose()
        assert refused.startswith("MISCONF"), refused
        lift = asyncio.get_running_loop().call_later(1.0, limit_file_size, server.pid, None)
        async with client.pipeline(transaction=False) as pipe:
            pipe.hset("h", "mark", "sent:1")
            pipe.xadd("log", {"n": "1"})
            assert await pipe.execute() == [1, ANY]
        lift.cancel()
        assert await client.hget("h", "mark") == "sent:1"
        assert await client.xlen("log") == 1
    finally:
        limit_file_size(server.pid, None)
        await client.aclose()
        server.stop()
