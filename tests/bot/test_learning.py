"""Learned relevance end to end, as an analyst uses it: alerts arrive through the real triage
worker (with its learner) and delivery over the loopback Bot API server; the analyst presses
👍 / 👎; the next similar alert's priority and reason change; /learning shows it; reset clears
it. The learner and the model sync run as the triage role runs them (bot/app.py)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest

from bot import texts
from bot.alerts import AlertJob
from bot.callback_data import FeedbackAction, FeedbackCB
from bot.config import Settings
from bot.learner import ModelSync
from bot.models import Post
from bot.storage.held import HeldRepository
from bot.storage.learning import LearningRepository
from bot.storage.posts import PostQueue
from bot.storage.repos import Repositories
from bot.triage.relevance import LearnedRelevance
from tests.bot.harness import BotApp, running
from tests.support.botapi import SentMessage

ANN, BOB = 910, 911

RELEVANT = (
    "Правительство решило депортировать мигрантов без документов и выслать их из страны",
    "Суд постановил выслать мигрантов, задержанных на границе; депортация начнётся завтра",
    "Депутаты требуют депортировать мигрантов и ужесточить высылку нарушителей",
    "МВД готовит депортацию мигрантов: высылать будут через аэропорт под конвоем",
)
NOISE = (
    "Прогноз погоды на выходные: мигранты с рынка жалуются на дождь и холод, погода испортится",
    "Погода в Москве: снег и ветер, мигранты-дворники расчищают дворы от сугробов",
    "Синоптики обещают тёплую погоду, мигранты-садовники начали сезон в парках",
    "Погода на неделю: мигранты и туристы ждут солнца, дожди и ветер закончатся",
)
LATER_NOISE = "Синоптики: погода испортится, снег и ветер, мигранты-дворники расчищают дворы"
LATER_RELEVANT = "Власти намерены депортировать мигрантов и выслать нарушителей из страны"


def post(msg: int, text: str, channel: int = 777) -> Post:
    return Post(
        channel_id=channel,
        message_id=msg,
        date=datetime.now(UTC),
        text=text,
        username=f"chan{channel}",
        title=f"Channel {channel}",
    )


@contextlib.asynccontextmanager
async def triage_role(app: BotApp) -> AsyncIterator[Repositories]:
    """The triage role as bot/app.py runs it: the worker and the learner, one Redis."""
    from bot.app import build_triage_worker

    repos = Repositories.build(app.redis)
    _worker, run = await build_triage_worker(Settings(_env_file=None), repos, consumer="t1")  # type: ignore[call-arg]
    stop = asyncio.Event()
    task = asyncio.create_task(run(stop))
    try:
        yield repos
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 15)


async def wait_until(check: Callable[[], object], timeout: float = 20.0) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not met in time")


async def alert_for(app: BotApp, user: int, fragment: str) -> SentMessage:
    return await app.server.wait_for(
        lambda m: m.chat_id == user and fragment in m.text, timeout=30
    )


@pytest.fixture
async def ann(app: BotApp) -> BotApp:
    await app.make_analyst(ANN, "Ann")
    await app.watches.add(ANN, "мигрант*")
    return app


async def test_verdicts_move_the_next_similar_alert_and_learning_shows_it(ann: BotApp) -> None:
    app = ann
    learning = LearningRepository(app.redis)
    queue = PostQueue(app.redis)
    async with triage_role(app), running(app.worker(chat_rate=100, global_rate=100)):
        alerts: list[tuple[SentMessage, str]] = []
        for i, text in enumerate(RELEVANT + NOISE, start=1):
            await queue.enqueue(post(i, text))
        for i, text in enumerate(RELEVANT + NOISE, start=1):
            message = await alert_for(app, ANN, text[:30])
            assert "learned" not in message.text  # no verdicts yet: nothing moves
            alerts.append((message, "Relevant" if i <= len(RELEVANT) else "Noise"))
        for message, label in alerts:
            answer, _after = await app.press(ANN, message, label)
            assert answer == texts.FEEDBACK_THANKS
        # Pressing the same verdict twice counts once.
        await app.press(ANN, alerts[0][0], "Relevant")

        async def trained() -> bool:
            summary = await learning.summary(ANN)
            return summary is not None and (summary.relevant, summary.noise) == (4, 4)

        await wait_until(trained)
        await asyncio.sleep(2.5)  # one model sync period (bot/learner.py SYNC_S)
        await queue.enqueue(post(50, LATER_NOISE))
        await queue.enqueue(post(51, LATER_RELEVANT))
        relevant = await alert_for(app, ANN, LATER_RELEVANT[:30])
        assert "learned ↑" in relevant.text and "relevant" in relevant.text
        # The noise-like one is confident noise: it waits for the digest, with its reason.
        held = HeldRepository(app.redis)

        async def noise_held() -> bool:
            return any(h.why == "digest" for h in await held.held(ANN))

        await wait_until(noise_held)
        jobs = [AlertJob.from_fields(h.fields) for h in await held.held(ANN)]
        assert [j.post.message_id for j in jobs] == [50]
        assert jobs[0].held and any(r.startswith("learned ↓") for r in jobs[0].reasons)
        assert not [m for m in app.server.sent if m.chat_id == ANN and LATER_NOISE[:30] in m.text]

        view = await app.say(ANN, "/learning")
        assert "Verdicts: 4 relevant, 4 noise" in view.text
        assert "Alerts it moved in the last 7 days: " in view.text
        moved = int(view.text.rsplit(": ", 1)[1])
        assert moved >= 1
        assert "погод" in view.text  # the strongest noise word, as the analyst wrote it

        # Reset, with a confirmation.
        _answer, _after = await app.press(ANN, view, "Reset")
        ask = await app.server.wait_for(
            lambda m: m.chat_id == ANN and m.text == texts.LEARNING_RESET_ASK
        )
        answer, _after = await app.press(ANN, ask, "Yes, forget them")
        assert answer == texts.LEARNING_RESET_DONE
        await wait_until(lambda: _is_none(learning))
        assert await app.feedback.all_for(ANN) == {}
        view = await app.say(ANN, "/learning")
        assert "Verdicts: 0 relevant, 0 noise" in view.text


async def judge_all(app: BotApp, queue: PostQueue, learning: LearningRepository) -> None:
    """Alerts on every example post arrive; Ann marks each as she sees it; the model has them."""
    for i, text in enumerate(RELEVANT + NOISE, start=1):
        await queue.enqueue(post(i, text))
    for i, text in enumerate(RELEVANT + NOISE, start=1):
        message = await alert_for(app, ANN, text[:30])
        await app.press(ANN, message, "Relevant" if i <= len(RELEVANT) else "Noise")
    await wait_until(lambda: _counts(learning, (4, 4)))


async def _is_none(learning: LearningRepository) -> bool:
    return await learning.summary(ANN) is None


async def test_model_is_shared_by_every_triage_worker_and_survives_a_restart(
    ann: BotApp,
) -> None:
    app = ann
    learning = LearningRepository(app.redis)
    queue = PostQueue(app.redis)
    async with triage_role(app), running(app.worker(chat_rate=100, global_rate=100)):
        await judge_all(app, queue, learning)
    # Another process (or this one restarted) loads the same model from Redis.
    users = Repositories.build(app.redis).users
    other = ModelSync(learning, users, LearnedRelevance())
    assert await other.refresh(force=True)
    model = other.relevance.models[ANN]
    assert model.verdict_count == (4, 4)
    assert other.relevance.active(ANN) is model  # past the cold start (3 of each)


async def _counts(learning: LearningRepository, want: tuple[int, int]) -> bool:
    summary = await learning.summary(ANN)
    return summary is not None and (summary.relevant, summary.noise) == want


async def test_buttons_on_an_alert_that_is_not_yours_change_nothing(ann: BotApp) -> None:
    app = ann
    await app.make_analyst(BOB, "Bob")
    await app.watches.add(BOB, "погода")
    queue = PostQueue(app.redis)
    async with triage_role(app), running(app.worker(chat_rate=100, global_rate=100)):
        await queue.enqueue(post(1, RELEVANT[0]))
        await queue.enqueue(post(2, "Погода: солнечно и тепло"))
        await alert_for(app, ANN, RELEVANT[0][:30])
        bobs = await alert_for(app, BOB, "Погода")
        # Bob forges Ann's alert's buttons on his own message.
        forged = FeedbackCB(
            action=FeedbackAction.NOISE, channel_id=777, message_id=1, watch_id=1
        ).pack()
        answer = await app.press_data(BOB, bobs, forged)
        assert answer == texts.FEEDBACK_NOT_YOURS
        mute = FeedbackCB(
            action=FeedbackAction.MUTE, channel_id=777, message_id=1, watch_id=1
        ).pack()
        assert await app.press_data(BOB, bobs, mute) == texts.FEEDBACK_NOT_YOURS
    assert await app.feedback.all_for(BOB) == {}
    assert await app.feedback.all_for(ANN) == {}
    assert await app.mutes.active(BOB) == {}


async def test_learning_off_stops_moving_alerts_and_on_resumes(ann: BotApp) -> None:
    app = ann
    learning = LearningRepository(app.redis)
    queue = PostQueue(app.redis)
    async with triage_role(app), running(app.worker(chat_rate=100, global_rate=100)):
        await judge_all(app, queue, learning)
        reply = await app.say(ANN, "/settings learning off")
        assert reply.text == texts.learning_set(False)

        async def off() -> bool:
            summary = await learning.summary(ANN)
            return summary is not None and not summary.learning

        await wait_until(off)
        await asyncio.sleep(2.5)
        await queue.enqueue(post(60, LATER_NOISE))
        not_moved = await alert_for(app, ANN, LATER_NOISE[:30])  # sent at once, unmoved
        assert "learned" not in not_moved.text
        view = await app.say(ANN, "/learning")
        assert "Learning: off" in view.text and "Verdicts: 4 relevant, 4 noise" in view.text
        bad = await app.say(ANN, "/settings learning maybe")
        assert bad.text.startswith("Usage: /learning")


async def test_suggest_command_and_bad_input(ann: BotApp) -> None:
    app = ann
    reply = await app.say(ANN, "/suggest on")
    assert reply.text == texts.suggest_set(True, 3)
    person = await app.users.get(ANN)
    assert person is not None and person.suggest
    reply = await app.say(ANN, "/suggest <b>&")
    assert reply.text == "Usage: /suggest on|off"
    reply = await app.say(ANN, "/suggest off")
    assert reply.text == texts.suggest_set(False, 3)
    reply = await app.say(ANN, "/learning extra words")
    assert reply.text.startswith("Usage: /learning")
    view = await app.say(ANN, "/learning")
    assert "No model yet" in view.text
