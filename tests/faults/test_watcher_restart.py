"""Redis killed under the watcher: `vigil run` with every role (the watcher on the loopback
MTProto server, the real Telethon client) on an external `REDIS_URL`. Redis is killed
(SIGKILL) and live posts are pushed to the watcher while it is down; Redis comes back on the
same data. The watcher's enqueues wait the outage out, so the posts made during it are
alerted, once each, and the service (its session lock in Redis included) carries on: a post
after the outage is alerted too."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from tests.faults.harness import RedisProcess, login_watcher
from tests.support.botapi import BotApiServer
from tests.support.mtproto import MTProtoServer
from tests.support.mtproto.fixtures import TEST_API_HASH, TEST_API_ID, eventually
from tests.support.service import approve_analyst, start_service, stop_service, vigil, vigil_env

ADMIN, ANALYST = 7401, 7402
TOKEN = "123456:TEST-TOKEN"
PHONE = "+44 7700 900111"
PASSWORD = "watcher restart password"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(170)]


async def test_watcher_posts_during_a_redis_kill_are_alerted_once(
    bot_api: BotApiServer, telegram: MTProtoServer, tmp_path: Path
) -> None:
    server = RedisProcess(tmp_path / "redis")
    server.start()
    bot_api.add_user(ADMIN, "Boss")
    bot_api.add_user(ANALYST, "Ann")
    account = telegram.add_account(PHONE, password=PASSWORD, first_name="Vigil", username="vr")
    channel = telegram.add_channel("border_news", title="Border news")
    assert telegram.key_path is not None
    env = vigil_env(
        tmp_path / "data",
        BOT_TOKEN=TOKEN,
        BOT_API_URL=bot_api.base_url,
        ADMIN_IDS=str(ADMIN),
        TG_API_ID=str(TEST_API_ID),
        TG_API_HASH=TEST_API_HASH,
        TG_SERVER=telegram.address,
        TG_SERVER_KEY=str(telegram.key_path),
        REDIS_URL=server.url,
    )
    log_path = tmp_path / "service.log"
    await login_watcher(telegram, env, tmp_path, PHONE, PASSWORD)
    added = await asyncio.to_thread(
        vigil, "channel", "add", "https://t.me/border_news", env=env, cwd=tmp_path, timeout=60
    )
    assert added.returncode == 0, added.stderr

    def alerts(needle: str) -> int:
        return sum(1 for m in bot_api.messages_to(ANALYST) if needle in m.text)

    service = start_service("watcher,triage,bot", env, tmp_path, log_path)
    try:
        await approve_analyst(bot_api, ADMIN, ANALYST)
        after = len(bot_api.sent)
        await bot_api.send_text(ANALYST, "/watch мигрант")
        await bot_api.wait_for(lambda m: m.chat_id == ANALYST, after=after)
        await eventually(lambda: account.user_id in channel.participants, 30, "the join")
        await telegram.post(channel, "до: мигранты у границы")
        await bot_api.wait_for(lambda m: m.chat_id == ANALYST and "до:" in m.text, timeout=30)

        server.stop(signal.SIGKILL)
        await telegram.post(channel, "во время: мигранты <сейчас> & 🚨")
        await asyncio.sleep(0.5)
        await telegram.post(channel, "также во время: мигрантов выслать")
        await asyncio.sleep(1.5)
        server.start()

        for needle in ("во время:", "также во время:"):
            await bot_api.wait_for(
                lambda m, n=needle: m.chat_id == ANALYST and n in m.text, timeout=60
            )
        await telegram.post(channel, "после: мигранты снова")
        await bot_api.wait_for(lambda m: m.chat_id == ANALYST and "после:" in m.text, timeout=60)
        await asyncio.sleep(2.0)  # a duplicate would show up now
        assert service.poll() is None, log_path.read_text()[-3000:]
    finally:
        code = await asyncio.to_thread(stop_service, service)
        if server.process is not None and server.process.poll() is None:
            server.stop()
    log = log_path.read_text()
    assert code == 0, log[-3000:]
    assert alerts("во время: мигранты <сейчас> & 🚨") == 1
    assert alerts("также во время:") == 1 and alerts("после:") == 1 and alerts("до:") == 1
    assert "redis: Redis unreachable; retrying" in log
    assert "Traceback" not in log, log[-3000:]
    assert not telegram.unimplemented, telegram.unimplemented
