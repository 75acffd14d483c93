"""Digests: alerts held below the instant threshold arrive together, hourly or daily."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis
from aiogram import Bot

from bot.delivery.digest import period_start, render_digest, send_due_digests
from bot.storage.held import HeldRepository
from bot.storage.notices import NoticeBox
from tests.delivery.test_worker import HARD_TEXTS
from tests.delivery.util import enqueue, job, make_analysts, make_worker, running, settled
from tests.support.botapi import BotApiServer
from tests.support.html_check import parse_html, utf16_len

KYIV = ZoneInfo("Europe/Kyiv")


def test_period_start_hourly_and_daily_in_the_analysts_zone() -> None:
    now = datetime(2026, 11, 25, 5, 47, tzinfo=UTC)  # 07:47 in Kyiv
    assert period_start(now, KYIV, "hourly") == datetime(2026, 11, 25, 7, 0, tzinfo=KYIV)
    # before 08:00 local the daily period began yesterday at 08:00
    assert period_start(now, KYIV, "daily") == datetime(2026, 11, 24, 8, 0, tzinfo=KYIV)
    later = now + timedelta(minutes=20)  # 08:07 local
    assert period_start(later, KYIV, "daily") == datetime(2026, 11, 25, 8, 0, tzinfo=KYIV)
    assert period_start(now, KYIV, "off") is None


def test_digest_of_hostile_and_many_posts_is_valid_html_within_the_limit() -> None:
    jobs = [job(1, i, text=HARD_TEXTS[i % len(HARD_TEXTS)]) for i in range(1, 301)]
    html = render_digest(jobs, KYIV, "hourly")
    parsed = parse_html(html)  # raises like Telegram on anything it would refuse
    assert utf16_len(parsed.text) <= 4096
    assert "300 alerts" in parsed.text and "more: /export lists them all" in parsed.text
    one = render_digest([job(1, 1, text="a < b & c")], KYIV, "daily")
    assert "a &lt; b &amp; c" in one and "Daily digest" in one


async def test_held_alerts_arrive_as_one_digest_once(
    redis: aioredis.Redis, bot_api: BotApiServer, api_bot: Bot
) -> None:
    bot_api.add_user(71)
    bot_api.configure(enabled=False)
    users = await make_analysts(redis, [71])
    await users.set_threshold(71, "high")
    await users.set_digest(71, "hourly")
    worker = make_worker(redis, api_bot, users, chat_rate=1000, global_rate=1000)
    await enqueue(
        redis,
        job(71, 1, text="Первый пост <про> мигрантов & границу", priority="normal"),
        job(71, 2, text="Второй пост", priority="low"),
    )
    async with running(worker):
        await settled(redis)
        assert bot_api.messages_to(71) == []  # below the threshold: held, not sent
        assert len(await HeldRepository(redis).held(71)) == 2
        now = datetime.now(UTC)
        assert (
            await send_due_digests(HeldRepository(redis), users, NoticeBox(redis), now) == 0
        )  # held during this period
        next_hour = now + timedelta(hours=1)
        assert (
            await send_due_digests(HeldRepository(redis), users, NoticeBox(redis), next_hour) == 1
        )
        assert (
            await send_due_digests(HeldRepository(redis), users, NoticeBox(redis), next_hour) == 0
        )  # once per period
        digest = await bot_api.wait_for(lambda m: m.chat_id == 71)
        await settled(redis)
    assert "Hourly digest: 2 alerts" in digest.text
    assert "Первый пост <про> мигрантов & границу" in digest.text
    assert [e.url for e in digest.entities if e.type == "text_link"] == [
        "https://t.me/source_chan/1",
        "https://t.me/source_chan/2",
    ]
    assert await HeldRepository(redis).held(71) == []
    assert len(bot_api.messages_to(71)) == 1


async def test_with_digests_off_what_was_held_still_arrives_daily(
    redis: aioredis.Redis, bot_api: BotApiServer, api_bot: Bot
) -> None:
    """An analyst who never chose a digest still gets what the learned model held for it."""
    from dataclasses import replace

    bot_api.add_user(72)
    bot_api.configure(enabled=False)
    users = await make_analysts(redis, [72])  # digest off, threshold low: the defaults
    worker = make_worker(redis, api_bot, users, chat_rate=1000, global_rate=1000)
    await enqueue(redis, replace(job(72, 1, text="Погода <завтра>"), held=True))
    async with running(worker):
        await settled(redis)
        assert bot_api.messages_to(72) == []
        tomorrow = datetime.now(UTC) + timedelta(days=1, hours=1)
        sent = await send_due_digests(HeldRepository(redis), users, NoticeBox(redis), tomorrow)
        assert sent == 1
        digest = await bot_api.wait_for(lambda m: m.chat_id == 72)
    assert "Daily digest: 1 alert" in digest.text and "Погода <завтра>" in digest.text
    assert await HeldRepository(redis).held(72) == []
