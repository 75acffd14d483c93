from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

from bot import texts
from bot.models import Forward, Post
from bot.storage.mutes import channel_target
from bot.storage.posts import PostQueue
from bot.storage.repos import Repositories
from bot.triage.engine import TriageEngine
from bot.triage.language import make_detector
from bot.triage_worker import TriageWorker
from tests.bot.harness import ADMIN, BotApp, running
from tests.delivery.util import enqueue, job

ANN, BOB, CAT = 900, 901, 902


async def test_feedback_buttons_store_and_show_the_choice(app: BotApp) -> None:
    await app.make_analyst(ANN)
    await enqueue(app.redis, job(ANN, 5, channel_id=321, watch_id=4))
    async with running(app.worker(chat_rate=100, global_rate=100)):
        alert = await app.server.wait_for(lambda m: m.chat_id == ANN)
        answer, after = await app.press(ANN, alert, "Relevant")
        assert answer == texts.FEEDBACK_THANKS
        assert after is not None and after.buttons()[0][0] == "✅ 👍 Relevant"
        assert await app.feedback.get(ANN, 321, 5, 4) == "relevant"
        _a, after = await app.press(ANN, alert, "Noise")
        assert after is not None and [b[0] for b in after.buttons()[:2]] == [
            "👍 Relevant",
            "✅ 👎 Noise",
        ]
        assert await app.feedback.get(ANN, 321, 5, 4) == "noise"
        answer, after = await app.press(ANN, alert, "Mute channel")
        assert answer == texts.MUTE_DONE
        assert channel_target(321) in await app.mutes.active(ANN)
        assert after is not None and "🔔 Undo mute" in [b[0] for b in after.buttons()]
        assert after.buttons()[1][0] == "✅ 👎 Noise"  # the choice survives the mute
        assert after.buttons()[3] == ("Open", "https://t.me/source_chan/5")
        _a, after = await app.press(ANN, alert, "Undo mute")
        assert channel_target(321) not in await app.mutes.active(ANN)


async def test_blocked_analyst_gets_alerts_after_start(app: BotApp) -> None:
    await app.make_analyst(ANN, "Ann")
    app.server.block(ANN)
    await enqueue(app.redis, job(ANN, 1))
    async with running(app.worker(chat_rate=100, global_rate=100)):
        notice = await app.server.wait_for(lambda m: m.chat_id == ADMIN and "blocked" in m.text)
        assert "Ann" in notice.text
        person = await app.users.get(ANN)
        assert person is not None and not person.active
        app.server.unblock(ANN, notify=False)
        welcome = await app.say(ANN, "/start")
        assert welcome.text == texts.START_REACTIVATED
        alert = await app.server.wait_for(
            lambda m: m.chat_id == ANN and "Source channel" in m.text
        )
        assert "Призыв" in alert.text


async def test_ingested_post_reaches_exactly_the_matching_analysts(app: BotApp) -> None:
    for uid in (ANN, BOB, CAT):
        await app.make_analyst(uid)
    await app.watches.add(ANN, "мигрант*")
    await app.watches.add(BOB, "погода")
    await app.watches.add(CAT, "=Дугин")
    triage = TriageWorker.over(
        Repositories.build(app.redis), TriageEngine(make_detector()), consumer="t1"
    )
    queue = PostQueue(app.redis)

    def post(msg: int, text: str) -> Post:
        return Post(
            channel_id=4242,
            message_id=msg,
            date=datetime(2026, 3, 1, tzinfo=UTC),
            text=text,
            username="news_ru",
            title="News",
        )

    stop = asyncio.Event()
    triage_task = asyncio.create_task(triage.run(stop, block_ms=50))
    try:
        async with running(app.worker(chat_rate=100, global_rate=100)):
            await queue.enqueue(post(1, "Мигрантов & <беженцев> выслали"))
            await queue.enqueue(post(2, "Сегодня погода и мигранты"))
            await queue.enqueue(post(3, "Ничего интересного"))
            await queue.enqueue(post(1, "Мигрантов & <беженцев> выслали"))  # seen again
            await app.server.wait_until(lambda: len(app.server.sent) >= 3, timeout=20)
            await asyncio.sleep(0.5)
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(triage_task, 10)
    by_chat = {uid: app.server.messages_to(uid) for uid in (ANN, BOB, CAT)}
    assert len(by_chat[ANN]) == 2 and len(by_chat[BOB]) == 1 and by_chat[CAT] == []
    assert "Мигрантов & <беженцев> выслали" in by_chat[ANN][0].text
    assert "Мигрантов" in by_chat[ANN][0].spans("bold")
    assert "погода" in by_chat[BOB][0].spans("bold")


async def test_copies_in_other_channels_join_the_first_alert(app: BotApp) -> None:
    """A forward and a near-duplicate elsewhere edit the first alert ("also in N channels")
    instead of alerting again."""
    await app.make_analyst(ANN)
    await app.watches.add(ANN, "выслать мигрант")
    triage = TriageWorker.over(
        Repositories.build(app.redis), TriageEngine(make_detector()), consumer="t1"
    )
    queue = PostQueue(app.redis)
    story = (
        "Губернатор заявил сегодня утром, что область должна выслать всех нелегальных "
        "мигрантов до конца месяца, а работодатели получат штрафы за их найм"
    )

    def post(channel: int, msg: int, text: str, **kw: object) -> Post:
        return Post(
            channel_id=channel,
            message_id=msg,
            date=datetime(2026, 3, 1, tzinfo=UTC),
            text=text,
            username=f"chan{channel}",
            title=f"Channel {channel}",
            **kw,  # type: ignore[arg-type]
        )

    stop = asyncio.Event()
    triage_task = asyncio.create_task(triage.run(stop, block_ms=50))
    try:
        async with running(app.worker(chat_rate=100, global_rate=100)):
            await queue.enqueue(post(500, 1, story))
            first = await app.server.wait_for(lambda m: m.chat_id == ANN)
            await queue.enqueue(post(600, 7, story, forward=Forward(channel_id=500, message_id=1)))
            await app.server.wait_for(
                lambda m: m.message_id == first.message_id and "also in 1 channel" in m.text,
                edits=True,
            )
            await queue.enqueue(post(700, 9, "⚡️ Срочно! " + story + " Подписывайтесь!"))
            edited = await app.server.wait_for(
                lambda m: m.message_id == first.message_id and "also in 2 channels" in m.text,
                edits=True,
            )
            await asyncio.sleep(0.3)
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(triage_task, 10)
    assert len(app.server.messages_to(ANN)) == 1  # one alert, edited twice
    assert "выслать" in edited.spans("bold")  # the edit keeps the highlights
