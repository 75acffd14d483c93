"""Shared fixtures: one real Redis server for the whole run (embedded, or REDIS_URL).

Each test gets its own logical database, flushed before use, so tests never see each other's
keys. Nothing here is a fake: the embedded server is the same redis-server Vigil runs.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from bot.storage.connection import EmbeddedRedis, client_name


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A URL of a real Redis server, without db number."""
    external = os.environ.get("REDIS_URL")
    if external:
        yield external.rsplit("/", 1)[0] if external.count("/") > 2 else external
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis") / "data")
    server.start_sync()
    try:
        yield f"unix://{server.socket_path}"
    finally:
        server.stop_if_last_sync()


_db_counter = iter(range(1, 10_000))


@pytest.fixture
async def redis(redis_server: str) -> AsyncIterator[aioredis.Redis]:
    """A flushed database for this test (db 1..15 in rotation; tests run one at a time)."""
    db = next(_db_counter) % 15 + 1
    sep = "&" if "?" in redis_server else "?"
    url = (
        f"{redis_server}{sep}db={db}"
        if redis_server.startswith("unix://")
        else (f"{redis_server}/{db}")
    )
    client = aioredis.Redis.from_url(url, decode_responses=True, client_name=client_name())
    await client.flushdb()
    try:
        yield client
    finally:
        await client.flushdb()
        await client.aclose()


@pytest.fixture
def redis_url(redis_server: str, redis: aioredis.Redis) -> str:
    """The URL of the same flushed database the `redis` fixture gives (for code under test)."""
    kwargs = redis.connection_pool.connection_kwargs
    db = kwargs.get("db", 0)
    if redis_server.startswith("unix://"):
        return f"{redis_server}?db={db}"
    return f"{redis_server}/{db}"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


pytest_plugins = ["tests.support.fixtures", "tests.support.mtproto.fixtures"]
