"""Two triage workers at once on one Redis: `vigil run --role triage,bot` and a second `vigil
run --role triage` on the same embedded server, with a claim timeout of one second so each
takes over entries the other holds while it is still working on them: the second worker is
frozen (SIGSTOP) for two seconds at a time while posts arrive, as a loaded machine or a long
pause freezes a process, and carries on (SIGCONT) with the batch the first has meanwhile
reclaimed and triaged. Every alert arrives exactly once: the outbox records (post, analyst,
version) with each append, so a post triaged twice adds nothing the second time."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path
from typing import Any

import pytest
from redis.exceptions import ResponseError

from bot.storage import keys
from bot.storage.connection import EmbeddedRedis
from bot.storage.posts import PostQueue
from tests.faults.harness import Load
from tests.support.botapi import BotApiServer, Limits
from tests.support.service import start_service, stop_service, vigil_env

TOKEN = "123456:FAULT-TWO"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(170)]


async def test_two_triage_workers_deliver_each_alert_once(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = EmbeddedRedis(data_dir)
    server.start_sync()
    client = server.client()
    api = BotApiServer(TOKEN, limits=Limits())
    await api.start()
    env = vigil_env(
        data_dir,
        BOT_TOKEN=TOKEN,
        BOT_API_URL=api.base_url,
        ADMIN_IDS="9000",
        STREAM_CLAIM_IDLE_S="1",
    )
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    services = []
    try:
        load = Load(api)
        await load.setup(client)
        services.append(start_service("triage,bot", env, tmp_path, logs[0]))
        services.append(start_service("triage", env, tmp_path, logs[1]))
        queue = PostQueue(client)

        async def both_reading() -> bool:
            groups: Any = await client.xinfo_consumers(keys.POSTS_STREAM, keys.TRIAGE_GROUP)
            return sum(1 for g in groups if str(g["name"]).startswith("triage-")) >= 2

        for _ in range(600):  # the second worker's consumer appears once it has read
            with contextlib.suppress(ResponseError):  # no stream or group yet
                if await both_reading():
                    break
            await asyncio.sleep(0.1)
        assert await both_reading()
        feeding = asyncio.create_task(load.feed(queue, 80, rate=20))
        while not feeding.done():
            await asyncio.sleep(0.3)
            services[1].send_signal(signal.SIGSTOP)
            await asyncio.sleep(2.0)
            services[1].send_signal(signal.SIGCONT)
        await feeding
        await load.settle(90)
        assert all(s.poll() is None for s in services)
    finally:
        for service in services:
            await asyncio.to_thread(stop_service, service)
        await api.stop()
        await client.aclose()
        server.stop_if_last_sync()
    text = "".join(log.read_text() for log in logs)
    assert load.lost == 0, sorted(load.expected - set(load.delivered()))[:10]
    assert load.duplicates == 0, load.duplicates
    assert "Traceback" not in text, text[-3000:]
    assert "reclaimed" in logs[0].read_text()  # the race did happen
