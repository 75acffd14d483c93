"""What the worker sends now and what waits: urgent alerts through quiet hours (per analyst),
alerts the learned model held to the digest whatever the threshold, with their reasons."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import redis.asyncio as aioredis
from aiogram import Bot

from bot.delivery.digest import send_due_digests
from bot.storage.held import HeldRepository
from bot.storage.notices import NoticeBox
from bot.storage.users import QuietHours
from tests.delivery.util import enqueue, job, make_analysts, make_worker, running, settled
from tests.support.botapi import BotApiServer

ALWAYS_QUIET = QuietHours((0, 0), (23, 59))


def _links(server: BotApiServer, chat: int) -> list[str]:
    return [
        e.url
        for m in server.messages_to(chat)
        for e in m.entities
        if e.type == "text_link" and e.url and "source_chan" in e.url
    ]


async def test_urgent_breaks_quiet_hours_and_a_normal_alert_waits(
    redis: aioredis.Redis, bot_api: BotApiServer, api_bot: Bot
) -> None:
    bot_api.add_user(91)
    bot_api.configure(enabled=False)
    users = await make_analysts(redis, [91])
    await users.set_quiet(91, ALWAYS_QUIET)
    person = await users.get(91)
    assert person is not None and person.urgent_quiet  # on by default
    worker = make_worker(redis, api_bot, users, chat_rate=1000, global_rate=1000)
    await enqueue(
        redis,
        job(91, 1, priority="urgent"),
        job(91, 2, priority="normal"),
        job(91, 3, priority="urgent", kind="edit"),  # a follow-up notifies: it waits
    )
    async with running(worker):
        await settled(redis)
        await asyncio.sleep(0.2)
        assert _links(bot_api, 91) == ["https://t.me/source_chan/1"]
        held = await HeldRepository(redis).held(91)
        assert sorted((h.why, h.fields["kind"]) for h in held) == [
            ("quiet", "edit"),
            ("quiet", "new"),
        ]
        await users.set_quiet(91, None)  # the night is over: the rest goes out
        await bot_api.wait_until(lambda: len(bot_api.messages_to(91)) == 3)
        await settled(redis)
    assert await HeldRepository(redis).held(91) == []


async def test_urgent_waits_when_the_analyst_keeps_quiet_hours_for_everything(
    redis: aioredis.Redis, bot_api: BotApiServer, api_bot: Bot
) -> None:
    bot_api.add_user(92)
    bot_api.configure(enabled=False)
    users = await make_analysts(redis, [92])
    await users.set_quiet(92, ALWAYS_QUIET)
    await users.set_flag(92, "urgent_quiet", False)
    worker = make_worker(redis, api_bot, users, chat_rate=1000, global_rate=1000)
    await enqueue(redis, job(92, 1, priority="urgent"))
    async with running(worker):
        await settled(redis)
        await asyncio.sleep(0.2)
    assert bot_api.messages_to(92) == []
    assert [h.why for h in await HeldRepository(redis).held(92)] == ["quiet"]


async def test_an_alert_the_model_held_goes_to_the_digest_with_its_reasons(
    redis: aioredis.Redis, bot_api: BotApiServer, api_bot: Bot
) -> None:
    bot_api.add_user(93)
    bot_api.configure(enabled=False)
    users = await make_analysts(redis, [93])
    await users.set_digest(93, "hourly")  # threshold stays "low": everything is instant...
    worker = make_worker(redis, api_bot, users, chat_rate=1000, global_rate=1000)
    reasons = ("watch priority urgent", "your model: noise (p=0.08), words <спорт>, футбол")
    await enqueue(
        redis,
        job(93, 1, priority="urgent", held=True, reasons=reasons),  # ...but not this one
        job(93, 2, priority="normal"),
    )
    held = HeldRepository(redis)
    async with running(worker):
        await settled(redis)
        await asyncio.sleep(0.2)
        assert _links(bot_api, 93) == ["https://t.me/source_chan/2"]
        assert [h.why for h in await held.held(93)] == ["digest"]
        next_hour = datetime.now(UTC) + timedelta(hours=1)
        assert await send_due_digests(held, users, NoticeBox(redis), next_hour) == 1
        digest = await bot_api.wait_for(lambda m: m.chat_id == 93 and "digest" in m.text)
        await settled(redis)
    assert "Hourly digest: 1 alert" in digest.text
    assert "held by your learned model" in digest.text
    assert "your model: noise (p=0.08), words <спорт>, футбол" in digest.text
    assert "https://t.me/source_chan/1" in [e.url for e in digest.entities if e.url]
    assert await held.held(93) == []
