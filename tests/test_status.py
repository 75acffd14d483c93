"""`vigil status` / the admin System view: what an operator needs to see about the watcher."""

from __future__ import annotations

import time
from pathlib import Path

import redis.asyncio as aioredis

from bot.config import Settings
from bot.status import collect_status, format_status
from bot.storage.channels import ChannelRepository
from bot.storage.health import HealthRepository
from bot.storage.repos import Repositories
from watchers.health import AccountState, publish_account, record_flood_wait


def settings(data_dir: Path) -> Settings:
    return Settings(_env_file=None, VIGIL_DATA_DIR=str(data_dir))  # type: ignore[call-arg]


async def test_accounts_flood_waits_and_their_states_are_shown(
    redis: aioredis.Redis, data_dir: Path
) -> None:
    now = time.time()
    health = HealthRepository(redis)
    await publish_account(health, AccountState("main", True, True, 500, 120, now))
    await publish_account(health, AccountState("spare", True, False, 500, 3, now))
    await publish_account(health, AccountState("old", False, False, 500, 0, now, "stopped"))
    await publish_account(health, AccountState("gone", True, True, 500, 7, now - 3600))
    await record_flood_wait(health, "main", 420, now=now)
    await record_flood_wait(health, "spare", 5, now=now - 60)  # over already

    status = await collect_status(Repositories.build(redis), settings(data_dir))
    text = format_status(status)

    assert "account main: connected, 120/500 channels" in text
    assert "account spare: DISCONNECTED, 3/500 channels" in text
    assert "account old: STOPPED (stopped)" in text
    assert "account gone: STOPPED (not heard of)" in text  # its process died without a word
    assert "flood wait: session main waits 4" in text  # 419 or 420 s
    assert "session spare" not in text
    assert {a["session"]: a["alive"] for a in status["accounts"]} == {
        "gone": False,
        "main": True,
        "old": False,
        "spare": True,
    }


async def test_a_channel_silent_far_beyond_its_rhythm_is_listed(
    redis: aioredis.Redis, data_dir: Path
) -> None:
    channels = ChannelRepository(redis)
    now = time.time()
    for ref, cid, last in (("@hourly", 1001, now - 2 * 86400), ("@busy", 1002, now - 600)):
        entry = await channels.add(ref, 1)
        await channels.mark_resolved(
            entry.key, channel_id=cid, access_hash=1, username=ref[1:], title=ref[1:].title()
        )
        await channels.mark_joined(f"id:{cid}", "main")
        await channels.touch_last_post(cid, last - 3600)
        await channels.touch_last_post(cid, last)  # a post an hour, until `last`

    status = await collect_status(Repositories.build(redis), settings(data_dir))

    assert status["channels"] == {"joined": 2}
    assert len(status["silent_channels"]) == 1
    assert "Hourly" in status["silent_channels"][0]
    assert "silent for too long: " in format_status(status)
