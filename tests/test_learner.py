"""The learner and the model sync on a real Redis: idempotent under redelivery and reordering,
bad events dead-lettered, held alerts and moved counts from the triage worker, and desk-model
suggestions within the daily cap."""

from __future__ import annotations

import redis.asyncio as aioredis

from bot.alerts import AlertJob
from bot.app import build_learner, build_triage_worker
from bot.config import Settings
from bot.models import Post
from bot.storage import keys
from bot.storage.repos import Repositories
from bot.storage.streams import append
from bot.triage.language import make_detector
from tests.bot.test_learning import LATER_NOISE, LATER_RELEVANT, NOISE, RELEVANT
from tests.bot.test_learning import post as live_post

ANN, BOB = 3001, 3002
SETTINGS = Settings(_env_file=None, SUGGEST_PER_DAY=2)  # type: ignore[call-arg]


def post(msg: int, text: str, channel: int = 808) -> Post:
    return live_post(msg, text, channel)


async def analysts(repos: Repositories, *ids: int) -> None:
    for uid in ids:
        await repos.users.request_access(uid, f"A{uid}", None)
        assert await repos.users.approve(uid)


def learner(repos: Repositories, name: str = "l1"):  # type: ignore[no-untyped-def]
    detector = make_detector()
    return build_learner(SETTINGS, repos, lambda t: detector.detect(t).code, name)


async def judge(repos: Repositories, analyst: int, start: int = 1) -> list[Post]:
    """Archive the example posts and record the analyst's verdicts on them."""
    posts = [post(start + i, t) for i, t in enumerate(RELEVANT + NOISE)]
    await repos.archive.put_many(posts)
    for i, p in enumerate(posts):
        verdict = "relevant" if i < len(RELEVANT) else "noise"
        await repos.feedback.set(analyst, p.channel_id, p.message_id, 1, verdict)  # type: ignore[arg-type]
    return posts


async def test_redelivered_and_reordered_events_count_once(redis: aioredis.Redis) -> None:
    repos = Repositories.build(redis)
    await analysts(repos, ANN)
    posts = await judge(repos, ANN)
    first = posts[0]
    # A change of mind after the first verdict: noise.
    await repos.feedback.set(ANN, first.channel_id, first.message_id, 1, "noise")
    one = learner(repos)
    consumer = repos.feedback_consumer("l1")
    await consumer.ensure_group()
    entries = await consumer.read(count=100, block_ms=None)
    assert len(entries) == 9
    # Handled newest first, then all again (a crash before the ack, redelivery): the verdict
    # is re-read from the durable record, so the order and the repeats change nothing.
    await one.process(list(reversed(entries)))
    await one.process(entries)
    summary = await repos.learning.summary(ANN)
    assert summary is not None and (summary.relevant, summary.noise) == (3, 5)
    examples = await repos.learning.examples(ANN)
    assert len(examples) == 8
    assert {e.verdict for e in examples if e.message_id == first.message_id} == {"noise"}
    stats = await consumer.redis.xpending(keys.FEEDBACK_STREAM, keys.LEARN_GROUP)
    assert stats["pending"] == 0


async def test_bad_events_go_to_dead_letters_and_missing_posts_are_survived(
    redis: aioredis.Redis,
) -> None:
    repos = Repositories.build(redis)
    await analysts(repos, ANN)
    await append(redis, keys.FEEDBACK_STREAM, {"kind": "verdict", "analyst": "x"})
    await append(redis, keys.FEEDBACK_STREAM, {"kind": "launch", "analyst": str(ANN)})
    await append(
        redis, keys.FEEDBACK_STREAM, {"kind": "verdict", "analyst": str(ANN), "channel": "<b>"}
    )
    # A verdict on a post that is no longer archived: kept in the feedback hash, not learned.
    await repos.feedback.set(ANN, 808, 99, 1, "relevant")
    one = learner(repos)
    assert await one.drain() == 4
    assert one.stats.malformed == 3 and one.stats.missing_posts == 1
    assert await redis.xlen(keys.FEEDBACK_DEAD) == 3
    assert await repos.learning.examples(ANN) == []


async def test_triage_moves_alerts_by_the_model_and_counts_them(
    redis: aioredis.Redis,
) -> None:
    repos = Repositories.build(redis)
    await analysts(repos, ANN)
    await repos.watches.add(ANN, "мигрант*")
    await judge(repos, ANN)
    assert await learner(repos).drain() == 8
    worker, _run = await build_triage_worker(SETTINGS, repos, consumer="t1")
    await repos.posts.enqueue(post(100, LATER_NOISE))
    await repos.posts.enqueue(post(101, LATER_RELEVANT))
    await worker.drain()
    jobs = {
        j.post.message_id: j
        for j in (AlertJob.from_fields(f) for _i, f in await redis.xrange(keys.ALERTS_STREAM))
    }
    assert any(r.startswith("learned ↓") for r in jobs[100].reasons)
    assert any(r.startswith("learned ↑") for r in jobs[101].reasons)
    assert jobs[100].held is True  # confident noise: to the digest
    assert jobs[101].held is False
    assert await repos.learning.moved_since(ANN, 7) == 2


async def test_desk_model_suggests_unmatched_posts_within_the_daily_cap(
    redis: aioredis.Redis,
) -> None:
    repos = Repositories.build(redis)
    await analysts(repos, ANN, BOB)
    await repos.watches.add(ANN, "=выслать")  # narrow: the later posts match no watch
    await judge(repos, ANN)
    await repos.users.set_flag(BOB, "suggest", True)
    background = [
        post(200 + i, f"Новости дня номер {i}: открыт новый мост и школа") for i in range(20)
    ]
    await repos.archive.put_many(background)
    one = learner(repos)
    await one.drain()
    desk = await one.train_desk()
    assert desk is not None
    meta = await repos.learning.desk_summary()
    assert meta["relevant"] == 4 and meta["noise"] == 4
    worker, _run = await build_triage_worker(SETTINGS, repos, consumer="t1")
    texts = [
        "Власти намерены депортировать мигрантов без документов",
        "МВД: депортация мигрантов начнётся на следующей неделе",
        "Депортировать мигрантов-нарушителей предложили в Думе",
        "Суд постановил депортировать мигрантов после проверки",
    ]
    for i, text in enumerate(texts):
        await repos.posts.enqueue(post(300 + i, text, channel=909))
    await worker.drain()
    jobs = [AlertJob.from_fields(f) for _i, f in await redis.xrange(keys.ALERTS_STREAM)]
    suggested = [j for j in jobs if j.origin == "suggested"]
    assert {j.analyst_id for j in suggested} == {BOB}  # only who opted in
    assert len(suggested) == 2  # SUGGEST_PER_DAY
    assert all(j.watch_id == 0 and j.reasons[0].startswith("🧭 Suggested") for j in suggested)
    assert await repos.learning.suggested_today() == {BOB: 2}
