"""An edited post's follow-up shows what changed, end to end: triage keeps the text before the
edit on the job, delivery renders the difference, the analyst sees words struck and added."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

from bot.models import Post
from bot.storage.posts import PostQueue
from bot.storage.repos import Repositories
from bot.triage.engine import TriageEngine
from bot.triage.language import make_detector
from bot.triage_worker import TriageWorker
from tests.bot.harness import BotApp, running

ANN = 930


async def test_edit_follow_up_strikes_removed_and_bolds_added_words(app: BotApp) -> None:
    await app.make_analyst(ANN)
    await app.watches.add(ANN, "мигрант*")
    triage = TriageWorker.over(
        Repositories.build(app.redis), TriageEngine(make_detector()), consumer="t1"
    )
    queue = PostQueue(app.redis)
    now = datetime.now(UTC)
    first = Post(channel_id=77, message_id=1, date=now, text="Власти выслали мигрантов <вчера>")
    edited = Post(
        channel_id=77,
        message_id=1,
        date=now,
        text="Власти депортировали мигрантов <вчера> & сегодня",
        edit_date=now + timedelta(minutes=5),
        event="edit",
    )
    stop = asyncio.Event()
    task = asyncio.create_task(triage.run(stop, block_ms=50))
    try:
        async with running(app.worker(chat_rate=100, global_rate=100)):
            await queue.enqueue(first)
            await app.server.wait_for(lambda m: m.chat_id == ANN)
            await queue.enqueue(edited)
            follow = await app.server.wait_for(
                lambda m: m.chat_id == ANN and "edited" in m.text, timeout=20
            )
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
    assert "выслали" in follow.spans("strikethrough")
    bold = " ".join(follow.spans("bold"))
    assert "депортировали" in bold and "сегодня" in bold
    assert "<вчера>" in follow.text
