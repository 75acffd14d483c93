"""Redis restarted under a running service, on an external `REDIS_URL`: `vigil run --role
triage,bot` as a child process, a real redis-server on a TCP port, posts fed the whole time.
Redis is stopped with SIGTERM while posts are being ingested and triaged, and killed with
SIGKILL while alerts are being delivered, each time started again on the same data a moment
later. The service must ride both out by itself (no restart of it), deliver every alert (at
most one duplicate per fault: the send in flight), and `vigil status` during the outage must
say Redis is unreachable, in a sentence, not a traceback."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from pathlib import Path

import pytest

from bot.config import Settings
from bot.storage import keys
from bot.storage.connection import open_redis
from bot.storage.posts import PostQueue
from tests.faults.harness import Load, RedisProcess
from tests.support.botapi import BotApiServer, Limits
from tests.support.service import start_service, stop_service, vigil, vigil_env

TOKEN = "123456:FAULT-RESTART"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(170)]


async def _status(env: dict[str, str], cwd: Path, *args: str) -> tuple[int, str, str]:
    done = await asyncio.to_thread(vigil, "status", *args, env=env, cwd=cwd, timeout=60)
    return done.returncode, done.stdout, done.stderr


async def test_service_rides_out_redis_restarts(tmp_path: Path) -> None:
    server = RedisProcess(tmp_path / "redis")
    server.start()
    api = BotApiServer(TOKEN, limits=Limits())
    await api.start()
    data_dir = tmp_path / "data"
    env = vigil_env(
        data_dir,
        BOT_TOKEN=TOKEN,
        BOT_API_URL=api.base_url,
        ADMIN_IDS="9000",
        REDIS_URL=server.url,
        LOG_LEVEL="INFO",
    )
    log_path = tmp_path / "service.log"
    settings = Settings(_env_file=None, REDIS_URL=server.url, VIGIL_DATA_DIR=str(data_dir))
    service = None
    try:
        async with open_redis(settings) as client:
            load = Load(api)
            await load.setup(client)
            service = start_service("triage,bot", env, tmp_path, log_path)
            queue = PostQueue(client)
            await load.feed(queue, 5, rate=10)
            await api.wait_until(lambda: bool(load.delivered()), timeout=60)

            # 1. SIGTERM in the middle of ingest and triage: the feed keeps going (its
            # enqueues wait the outage out like the service's commands).
            feeding = asyncio.create_task(load.feed(queue, 40, rate=20))
            await asyncio.sleep(0.7)
            server.stop(signal.SIGTERM)
            code, out, err = await _status(env, tmp_path)
            assert code == 1, out + err
            assert "UNREACHABLE" in out and server.url.split("//")[1].split("/")[0] in out
            assert "Traceback" not in out + err
            code, out, _err = await _status(env, tmp_path, "--json")
            assert json.loads(out)["redis"]["reachable"] is False
            await asyncio.sleep(1.0)
            server.start()
            await feeding
            assert service.poll() is None, log_path.read_text()

            # 2. SIGKILL in the middle of delivery: 40 alerts over 12 chats at 1/s a chat are
            # still on their way.
            await asyncio.sleep(0.5)
            before = len(load.delivered())
            assert before < len(load.expected)
            server.stop(signal.SIGKILL)
            await asyncio.sleep(1.5)
            server.start()
            cleared = time.monotonic()
            await load.feed(queue, 5, rate=10)
            await load.settle(90)
            assert service.poll() is None, log_path.read_text()
            recovery = load.recovery_s(cleared)
            code, out, _err = await _status(env, tmp_path)
            assert code == 0 and "Redis:" in out and "UNREACHABLE" not in out
    finally:
        if service is not None:
            await asyncio.to_thread(stop_service, service)
        await api.stop()
        if server.process is not None and server.process.poll() is None:
            server.stop()
    log = log_path.read_text()
    assert load.lost == 0, (sorted(load.expected - set(load.delivered()))[:10], log[-3000:])
    assert load.duplicates <= 2, load.duplicates
    assert recovery is not None and recovery < 10, recovery
    assert "Traceback" not in log, log[-3000:]
    assert "retrying for up to" in log and "commands go through again" in log
    assert TOKEN.split(":")[1] not in log


async def test_an_outage_longer_than_the_ride_out_stops_in_a_sentence(tmp_path: Path) -> None:
    """Redis gone for good: after REDIS_RIDE_OUT_S the service stops (for its supervisor to
    start it again), saying why in one line, with no traceback."""
    server = RedisProcess(tmp_path / "redis")
    server.start()
    api = BotApiServer(TOKEN, limits=Limits())
    await api.start()
    env = vigil_env(
        tmp_path / "data",
        BOT_TOKEN=TOKEN,
        BOT_API_URL=api.base_url,
        ADMIN_IDS="9000",
        REDIS_URL=server.url,
        REDIS_RIDE_OUT_S="2",
    )
    log_path = tmp_path / "service.log"
    service = start_service("triage,bot", env, tmp_path, log_path)
    try:
        await api.wait_until(lambda: api.stats["getUpdates"] > 0, timeout=60)
        await asyncio.sleep(1.0)
        server.stop(signal.SIGKILL)
        gone = time.monotonic()
        code = await asyncio.to_thread(service.wait, 60)
        took = time.monotonic() - gone
    finally:
        if service.poll() is None:
            service.kill()
        await api.stop()
    log = log_path.read_text()
    assert code == 1, log[-3000:]
    assert took < 30, took
    assert "Redis unreachable" in log and "for longer than REDIS_RIDE_OUT_S=2s" in log
    assert "Traceback" not in log, log[-3000:]


async def test_vigil_ingest_rides_out_a_redis_kill(tmp_path: Path) -> None:
    """`vigil ingest` of a 30,000-post export while Redis is killed (SIGKILL) in the middle of
    its enqueueing and started again: it finishes by itself, every post is on the stream
    once, and it says that it waited."""
    server = RedisProcess(tmp_path / "redis")
    server.start()
    count = 30_000
    export = tmp_path / "result.json"
    export.write_text(
        json.dumps(
            {
                "name": "Fault news",
                "type": "public_channel",
                "id": 4243,
                "messages": [
                    {
                        "id": n,
                        "type": "message",
                        "date": "2026-11-20T10:00:00",
                        "date_unixtime": "1795168800",
                        "text": f"пост {n}: <b>не тег</b> & 🚨 ‏שלום‏ {'x' * (n % 300)}",
                    }
                    for n in range(1, count + 1)
                ],
            },
            ensure_ascii=False,
        )
    )
    env = vigil_env(tmp_path / "data", REDIS_URL=server.url, LOG_LEVEL="WARNING")
    ingest = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "bot", "ingest", str(export), "--channel", "@fault_news"),
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stream = keys.POSTS_STREAM
    try:
        deadline = time.monotonic() + 120
        while True:  # into the second pass: posts are going onto the stream
            with server.sync() as control:
                if int(control.xlen(stream)) > 0:
                    break
            assert ingest.returncode is None and time.monotonic() < deadline
            await asyncio.sleep(0.02)
        server.stop(signal.SIGKILL)
        await asyncio.sleep(1.5)
        server.start()
        raw_out, raw_err = await asyncio.wait_for(ingest.communicate(), 120)
        out, err = raw_out.decode(), raw_err.decode()
        with server.sync() as control:
            on_stream = int(control.xlen(stream))
    finally:
        if ingest.returncode is None:
            ingest.kill()
            await ingest.wait()
        server.stop()
    assert ingest.returncode == 0, err
    assert f"read {count}, enqueued" in out
    assert on_stream == count, (on_stream, out)
    assert "retrying for up to" in err and "Traceback" not in err
