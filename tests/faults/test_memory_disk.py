"""Redis refuses writes under a running service (embedded Redis, `vigil run --role triage,bot`
as a child process, posts fed the whole time): first out of memory (`maxmemory` below what it
holds, noeviction: every write answered OOM), then a full disk under it (the AOF cannot grow:
MISCONF; see tests/faults/harness.py for how the disk is filled without root). Each lasts a
few seconds and is then lifted. Nothing may be dropped: every alert arrives (at most one
duplicate per fault), the service never stops, it says in its log what it waited for, and
`vigil status` during each says that Redis refuses writes, and why."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from bot.storage.connection import EmbeddedRedis
from bot.storage.posts import PostQueue
from tests.faults.harness import Load, aof_size, limit_file_size
from tests.support.botapi import BotApiServer, Limits
from tests.support.service import start_service, stop_service, vigil, vigil_env

TOKEN = "123456:FAULT-MEMORY"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(170)]


async def test_writes_refused_for_memory_or_disk_are_retried(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = EmbeddedRedis(data_dir)
    server.start_sync()
    assert server._process is not None
    redis_pid = server._process.pid
    client = server.client()
    control = server.client(ride_out_s=0)
    api = BotApiServer(TOKEN, limits=Limits())
    await api.start()
    env = vigil_env(data_dir, BOT_TOKEN=TOKEN, BOT_API_URL=api.base_url, ADMIN_IDS="9000")
    log_path = tmp_path / "service.log"
    service = None
    try:
        load = Load(api)
        await load.setup(client)
        service = start_service("triage,bot", env, tmp_path, log_path)
        queue = PostQueue(client)
        await load.feed(queue, 5, rate=10)
        await api.wait_until(lambda: bool(load.delivered()), timeout=60)

        # Out of memory while posts arrive and alerts go out.
        feeding = asyncio.create_task(load.feed(queue, 30, rate=15))
        await asyncio.sleep(0.5)
        await control.config_set("maxmemory-policy", "noeviction")
        await control.config_set("maxmemory", "1mb")
        assert int((await control.info("memory"))["used_memory"]) > 1024 * 1024
        held = asyncio.create_task(asyncio.sleep(3.0))
        said_full = await asyncio.to_thread(vigil, "status", env=env, cwd=tmp_path, timeout=60)
        await held
        await control.config_set("maxmemory", "0")
        oom_cleared = time.monotonic()
        await feeding

        # The disk fills: the AOF may not grow past a few bytes more than it has.
        feeding = asyncio.create_task(load.feed(queue, 30, rate=15))
        await asyncio.sleep(0.5)
        limit_file_size(redis_pid, aof_size(data_dir) + 512)
        held = asyncio.create_task(asyncio.sleep(3.0))
        await asyncio.sleep(1.5)  # Redis notices at its next AOF write (within a second)
        said_disk = await asyncio.to_thread(vigil, "status", env=env, cwd=tmp_path, timeout=60)
        await held
        limit_file_size(redis_pid, None)
        disk_cleared = time.monotonic()
        await feeding
        await load.settle(90)
        assert service.poll() is None, log_path.read_text()[-3000:]
    finally:
        if service is not None:
            await asyncio.to_thread(stop_service, service)
        await api.stop()
        await client.aclose()
        await control.aclose()
        server.stop_if_last_sync()
    log = log_path.read_text()
    redis_log = (data_dir / "redis.log").read_text()
    assert load.lost == 0, (sorted(load.expected - set(load.delivered()))[:10], log[-3000:])
    assert load.duplicates <= 2, load.duplicates
    assert "redis: Redis is out of memory (maxmemory reached" in log, log[-3000:]
    assert "redis: Redis cannot write its data to disk (MISCONF" in log, log[-3000:]
    assert "Short write while writing to the AOF file" in redis_log  # the disk refused it
    assert "Redis can write again" in redis_log
    assert "Traceback" not in log, log[-3000:]
    # `vigil status` told the truth while each lasted.
    assert said_full.returncode == 0, said_full.stderr
    assert "Redis REFUSES WRITES: out of memory" in said_full.stdout, said_full.stdout
    # A failing disk makes Redis refuse even PING (MISCONF): status says that, not "down".
    assert said_disk.returncode == 1, said_disk.stderr
    assert "REFUSES COMMANDS: Redis cannot write its data to disk" in said_disk.stdout
    assert "UNREACHABLE" not in said_disk.stdout and "Traceback" not in said_disk.stderr
    for cleared in (oom_cleared, disk_cleared):
        recovery = load.recovery_s(cleared)
        assert recovery is not None and recovery < 10, recovery
