from __future__ import annotations

import asyncio
import itertools
from collections import Counter

import redis.asyncio as aioredis
from aiogram import Bot

from bot import texts
from bot.delivery.ratelimit import RateLimiter, RateLimits
from bot.storage import keys
from bot.storage.held import HeldRepository
from bot.storage.mutes import MuteRepository, channel_target
from bot.storage.outbox import Emission, EmitMode
from bot.storage.ratelimit import RateStore
from bot.storage.repos import Repositories
from bot.storage.users import QuietHours
from tests.delivery.util import enqueue, job, make_analysts, make_worker, running, settled
from tests.support.botapi import BotApiServer

HARD_TEXTS = [
    "a < b && c > d <b>not bold</b> &amp; &lt;",
    "😀🇺🇦👨‍👩‍👧 emoji " * 40,
    "مرحبا بالعالم עברית שלום mixed RTL \u202e reversed \u202c",
    "zero\u200bwidth\u200c\u200djoin\ufeff and \u2060 word joiner",
    ("Длинный пост мигрант " * 600)[:10_000],
    ("😀" * 5000),
]


def _posts(server: BotApiServer, chat: int) -> Counter[int]:
    """How many alerts each post (message id of the source post) got in this chat."""
    return Counter(
        int(e.url.rsplit("/", 1)[-1])
        for m in server.messages_to(chat)
        for e in m.entities
        if e.type == "text_link" and e.url
    )


async def test_alert_reaches_exactly_its_analyst(
    redis: aioredis.Redis, bot_api: BotApiServer, api_bot: Bot
) -> None:
    for uid in (11, 12):
        bot_api.add_user(uid)
    users = await make_analysts(redis, [11, 12])
    worker = make_worker(redis, api_bot, users)
    await enqueue(redis, job(11, 1, spans=((15, 24),)))
    async with running(worker):
        msg = await bot_api.wait_for(lambda m: m.chat_id == 11)
        await settled(redis)
    assert msg.spans("bold")[-1] == "мигрантов" or "мигрантов" in msg.spans("bold")
    assert [b[0] for b in msg.buttons()] == ["👍 Relevant", "👎 Noise", "🔕 Mute channel", "Open"]
    assert bot_api.messages_to(12) == []
    ledger = await redis.hgetall(keys.alert_sent(11, 500, 1))
    assert ledger["new:0"] == f"sent:{msg.message_id}"
    assert set(ledger) == {"new:0", "meta"}  # meta: what an "also in N channels" edit re-renders
    assert await redis.xlen(keys.user_alerts(11)) == 1


async def test_hostile_texts_are_delivered_and_accepted(
    redis: aioredis.Redis, bot_api: BotApiServer, api_bot: Bot
) -> None:
    bot_api.add_user(21)
    bot_api.configure(enabled=False)
    users = await make_analysts(redis, [21])
    worker = make_worker(redis, api_bot, users, chat_rate=1000, global_rate=1000)
    await enqueue(
        redis, *[job(21, i, text, spans=((0, 5), (3, 30))) for i, text in enumerate(HARD_TEXTS)]
    )
    async with running(worker):
        await settled(redis)
    sent = bot_api.messages_to(21)
    assert len(sent) == len(HARD_TEXTS)
    assert not [c for c in bot_api.calls if c.status != 200]
    assert await redis.xlen(keys.ALERTS_DEAD) == 0
    assert "a < b && c > d <b>not bold</b> &amp; &lt;" in sent[0].text
    assert sent[4].text.rstrip().endswith("~~") is False and "…" in sent[4].text


async def test_duplicate_entries_send_once_and_edits_send_again(
    redis: aioredis.Redis, bot_api: BotApiServer, api_bot: Bot
) -> None:
    bot_api.add_user(31)
    bot_api.configure(enabled=False)
    users = await make_analysts(redis, [31])
    worker = make_worker(redis, api_bot, users, chat_rate=1000, global_rate=1000)
    await enqueue(
        redis, job(31, 7), job(31, 7), job(31, 7, kind="edit"), job(31, 7, kind="delete")
    )
    async with running(worker):
        await settled(redis)
    texts = [m.text for m in bot_api.messages_to(31)]
    assert len(texts) == 3
    assert "✏️ edited" in texts[1] and "🗑 deleted" in texts[2]
    assert worker.stats.duplicates == 1


async def test_storm_of_429s_loses_nothing(
    redis: aioredis.Redis, bot_api: BotApiServer, api_bot: Bot
) -> None:
    chats = [41, 42, 43, 44, 45]
    for uid in chats:
        bot_api.add_user(uid)
    bot_api.configure(flood_fraction=0.3, per_chat_rate=100, per_chat_burst=100, seed=4)
    users = await make_analysts(redis, chats)
    worker = make_worker(redis, api_bot, users, chat_rate=20, global_rate=200)
    await enqueue(redis, *[job(uid, i) for i in range(8) for uid in chats])
    async with running(worker):
        await settled(redis, timeout=30)
    assert bot_api.too_many_requests > 0
    for uid in chats:
        assert _posts(bot_api, uid) == Counter(range(8)), uid
        ledgers = [await redis.hget(keys.alert_sent(uid, 500, i), "new:0") for i in range(8)]
        assert all(v and v.startswith("sent:") for v in ledgers)
    assert worker.stats.retry_after == bot_api.too_many_requests
    assert await redis.xlen(keys.ALERTS_DEAD) == 0


async def test_limits_respected_without_429(
    redis: aioredis.Redis, bot_api: BotApiServer, api_bot: Bot
) -> None:
    chats = [51, 52]
    for uid in chats:
        bot_api.add_user(uid)
    # The server's defaults: Telegram's 1/s per chat (burst 3) and 30/s overall.
    users = await make_analysts(redis, chats)
    worker = make_worker(redis, api_bot, users)
    await enqueue(redis, *[job(uid, i) for i in range(3) for uid in chats])
    async with running(worker):
        await settled(redis, timeout=10)
    assert bot_api.too_many_requests == 0
    for uid in chats:
        times = [m.received_at for m in bot_api.messages_to(uid)]
        assert len(times) == 3
        assert all(b - a >= 0.95 for a, b in itertools.pairwise(times))


async def test_blocked_analyst_is_deactivated_held_and_admins_told(
    redis: aioredis.Redis, bot_api: BotApiServer, api_bot: Bot
) -> None:
    bot_api.add_user(1)  # admin
    bot_api.add_user(61)
    bot_api.configure(enabled=False)
    users = await make_analysts(redis, [61], admins=frozenset({1}))
    worker = make_worker(redis, api_bot, users, chat_rate=1000, global_rate=1000)
    bot_api.block(61)
    await enqueue(redis, job(61, 1), job(61, 2))
    async with running(worker):
        notice = await bot_api.wait_for(lambda m: m.chat_id == 1)
        await settled(redis)
        assert "61" in notice.text and "blocked" in notice.text
        person = await users.get(61)
        assert person is not None and not person.active
        held = await HeldRepository(redis).held(61)
        assert [h.why for h in held] == ["blocked", "blocked"]
        assert await redis.xlen(keys.ALERTS_DEAD) == 0
        # The analyst comes back (/start does exactly this).
        bot_api.unblock(61)
        await users.set_active(61, True)
        await HeldRepository(redis).release_soon(61)
        await bot_api.wait_until(lambda: len(bot_api.messages_to(61)) == 2)
        await settled(redis)
    assert len(bot_api.messages_to(1)) == 1  # admins told once
    assert await HeldRepository(redis).held(61) == []


async def test_quiet_hours_hold_then_release(
    redis: aioredis.Redis, bot_api: BotApiServer, api_bot: Bot
) -> None:
    bot_api.add_user(71)
    bot_api.configure(enabled=False)
    users = await make_analysts(redis, [71])
    await users.set_quiet(71, QuietHours.parse("00:00-23:59"))
    await users.set_tz(71, "UTC")
    worker = make_worker(redis, api_bot, users, chat_rate=1000, global_rate=1000)
    await enqueue(redis, job(71, 1))
    async with running(worker):
        await settled(redis)
        await asyncio.sleep(0.2)
        assert bot_api.messages_to(71) == []
        assert [h.why for h in await HeldRepository(redis).held(71)] == ["quiet"]
        await users.set_quiet(71, None)  # quiet hours end (as /quiet off does)
        await bot_api.wait_until(lambda: len(bot_api.messages_to(71)) == 1)


async def test_muted_and_below_threshold_are_not_sent_now(
    redis: aioredis.Redis, bot_api: BotApiServer, api_bot: Bot
) -> None:
    bot_api.add_user(81)
    bot_api.configure(enabled=False)
    users = await make_analysts(redis, [81])
    await users.set_threshold(81, "high")
    await MuteRepository(redis).mute(81, channel_target(999))
    worker = make_worker(redis, api_bot, users, chat_rate=1000, global_rate=1000)
    await enqueue(
        redis,
        job(81, 1, channel_id=999, priority="urgent"),  # muted channel
        job(81, 2, priority="normal"),  # below threshold: digest
        job(81, 3, priority="high"),  # sent
    )
    async with running(worker):
        await settled(redis)
    assert len(bot_api.messages_to(81)) == 1
    assert [h.why for h in await HeldRepository(redis).held(81)] == ["digest"]
    assert worker.stats.muted == 1


async def test_malformed_entry_and_refused_send_are_dead_lettered(
    redis: aioredis.Redis, bot_api: BotApiServer, api_bot: Bot
) -> None:
    bot_api.configure(enabled=False)
    users = await make_analysts(redis, [91])  # 91 unknown to the server: chat not found
    worker = make_worker(redis, api_bot, users, chat_rate=1000, global_rate=1000)
    await redis.xadd(keys.ALERTS_STREAM, {"analyst": "x", "post": "{"})
    await enqueue(redis, job(91, 1))
    async with running(worker):
        await settled(redis)
    dead = await redis.xrange(keys.ALERTS_DEAD)
    assert len(dead) == 2
    reasons = sorted(f["_reason"] for _i, f in dead)
    assert reasons[0].startswith("malformed") and "chat not found" in reasons[1]
    assert await redis.hgetall(keys.alert_sent(91, 500, 1)) == {}


async def test_crash_between_send_and_ack(
    redis: aioredis.Redis, bot_api: BotApiServer, api_bot: Bot
) -> None:
    """A pending entry whose ledger says 'sent' is acked without a send; one whose ledger says
    'sending' by a dead process is sent (never lost)."""
    bot_api.add_user(95)
    bot_api.configure(enabled=False)
    users = await make_analysts(redis, [95])
    await enqueue(redis, job(95, 1), job(95, 2))
    await redis.xgroup_create(keys.ALERTS_STREAM, keys.DELIVERY_GROUP, id="0", mkstream=True)
    await redis.xreadgroup(keys.DELIVERY_GROUP, "d1", {keys.ALERTS_STREAM: ">"}, count=10)
    await redis.hset(keys.alert_sent(95, 500, 1), "new:0", "sent:1")
    await redis.hset(keys.alert_sent(95, 500, 2), "new:0", "sending:deadbeef")
    worker = make_worker(redis, api_bot, users, chat_rate=1000, global_rate=1000)
    async with running(worker):
        await settled(redis)
    assert _posts(bot_api, 95) == Counter([2])


async def test_cancelled_mid_burst_and_restarted_loses_and_duplicates_nothing(
    redis: aioredis.Redis, bot_api: BotApiServer, api_bot: Bot
) -> None:
    chats = list(range(201, 211))
    for uid in chats:
        bot_api.add_user(uid)
    bot_api.configure(enabled=False)
    users = await make_analysts(redis, chats)
    await enqueue(redis, *[job(uid, i) for i in range(6) for uid in chats])
    first = make_worker(redis, api_bot, users, chat_rate=10, global_rate=100)
    async with running(first):
        await bot_api.wait_until(lambda: len(bot_api.sent) >= 15)
    assert len(bot_api.sent) < 60
    second = make_worker(redis, api_bot, users, chat_rate=10, global_rate=100)
    async with running(second):
        await settled(redis, timeout=20)
    for uid in chats:
        assert _posts(bot_api, uid) == Counter(range(6)), uid  # each exactly once
    assert len(bot_api.sent) == 60
    assert await redis.xlen(keys.ALERTS_DEAD) == 0


async def test_rate_limiter_paces_one_chat_and_shares_the_global_cap(
    redis: aioredis.Redis,
) -> None:
    limiter = RateLimiter(RateStore(redis), RateLimits(chat_per_s=1, global_per_s=10))
    assert await limiter.try_acquire(1) == (True, 0.0)
    granted, wait = await limiter.try_acquire(1)
    assert not granted and 0.9 < wait <= 1.0
    granted, delay = await limiter.try_acquire(2)  # another chat: next global slot
    assert granted and 0.05 < delay <= 0.1
    other_process = RateLimiter(RateStore(redis), RateLimits(chat_per_s=1, global_per_s=10))
    granted, delay = await other_process.try_acquire(3)
    assert granted and 0.15 < delay <= 0.2
    await limiter.penalise(4, 5)
    granted, wait = await limiter.try_acquire(4)
    assert not granted and 4.9 < wait <= 5.0


async def test_referenced_alerts_are_hydrated_and_one_whose_post_expired_still_arrives(
    redis: aioredis.Redis, bot_api: BotApiServer, api_bot: Bot
) -> None:
    """Triage's alerts reference the archived post: delivery sends its text; an alert whose post
    left the archive before delivery is sent with the post's link and a line saying why."""
    bot_api.add_user(61)
    users = await make_analysts(redis, [61])
    repos = Repositories.build(redis)
    kept, gone = job(61, 1, HARD_TEXTS[0]), job(61, 2, "Призыв выслать мигрантов <i>")
    await repos.archive.put_many([kept.post, gone.post])
    emissions = [Emission(j, EmitMode.FIRST, j.post.key) for j in (kept, gone)]
    assert await repos.outbox.emit_many(emissions) == [True, True]
    await redis.delete(keys.archive_post(500, 2))  # expired before delivery
    worker = make_worker(redis, api_bot, users, chat_rate=1000, global_rate=1000)
    async with running(worker):
        await settled(redis)
    first, second = bot_api.messages_to(61)
    assert HARD_TEXTS[0] in first.text
    assert texts.ALERT_POST_GONE in second.text and "Призыв" not in second.text
    assert _posts(bot_api, 61) == Counter([1, 2])  # each with its link to the source post
    assert (await redis.hgetall(keys.alert_sent(61, 500, 2)))["new:0"].startswith("sent:")
    assert worker.stats.sent == 2 and worker.stats.dead == 0
