from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import Settings
from bot.storage.connection import EmbeddedRedis, open_redis, raise_if_cancelled


def settings_for(data_dir: Path) -> Settings:
    return Settings(_env_file=None, VIGIL_DATA_DIR=data_dir)  # type: ignore[call-arg]


async def test_embedded_server_persists_across_restart(data_dir: Path) -> None:
    async with open_redis(settings_for(data_dir)) as redis:
        await redis.set("k", "kept")
        await redis.xadd("s", {"a": "1"})
    assert not EmbeddedRedis(data_dir).socket_path.exists()  # the last process stopped it
    assert (data_dir / "appendonly.aof").exists()
    async with open_redis(settings_for(data_dir)) as redis:
        assert await redis.get("k") == "kept"
        assert await redis.xlen("s") == 1


async def test_socket_is_private_and_data_dir_not_world_readable(data_dir: Path) -> None:
    async with open_redis(settings_for(data_dir)):
        sock = EmbeddedRedis(data_dir).socket_path
        assert sock.stat().st_mode & 0o077 == 0


async def test_second_process_reuses_the_running_server(data_dir: Path) -> None:
    script = (
        "import asyncio, sys\n"
        "from bot.config import Settings\n"
        "from bot.storage.connection import open_redis\n"
        "async def main():\n"
        "    async with open_redis(Settings(_env_file=None, VIGIL_DATA_DIR=sys.argv[1])) as r:\n"
        "        await r.set('from-child', str(await r.get('from-parent')))\n"
        "        print((await r.info('server'))['process_id'])\n"
        "asyncio.run(main())\n"
    )
    async with open_redis(settings_for(data_dir)) as redis:
        await redis.set("from-parent", "hello")
        parent_server_pid = (await redis.info("server"))["process_id"]
        child = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", script, str(data_dir)],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": str(Path.cwd())},
        )
        assert child.returncode == 0, child.stderr
        assert int(child.stdout.strip()) == parent_server_pid  # same server, not a second one
        # the child left, but this process still uses the server: it must still be up
        assert await redis.get("from-child") == "hello"
        assert await redis.ping()


async def test_stale_socket_of_a_killed_server_is_replaced(data_dir: Path) -> None:
    server = EmbeddedRedis(data_dir)
    server.start_sync()
    assert server._process is not None
    server._process.kill()  # kill -9: the socket file stays behind
    server._process.wait()
    async with open_redis(settings_for(data_dir)) as redis:
        assert await redis.ping()


def test_unstartable_server_reports_the_log(tmp_path: Path) -> None:
    target = tmp_path / "file-not-dir"
    target.write_text("x")
    with pytest.raises(OSError):
        EmbeddedRedis(target / "data").start_sync()


async def test_a_cancellation_a_call_swallowed_is_raised_again() -> None:
    """The delivery loops stop even when redis-py loses the CancelledError of their task."""

    async def swallowing_call() -> None:
        with contextlib.suppress(asyncio.CancelledError):  # what redis-py sometimes does
            await asyncio.sleep(10)

    async def loop() -> None:
        while True:
            await swallowing_call()
            raise_if_cancelled()

    task = asyncio.create_task(loop())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2)
