"""The triage worker on a real Redis: archive, route, idempotency, edits, deletions, copies."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
import redis.asyncio as aioredis

from bot.alerts import AlertJob
from bot.config import Settings
from bot.delivery.render import render_alert
from bot.models import Forward, Post
from bot.storage import keys
from bot.storage.outbox import AlertOutbox
from bot.storage.posts import PostQueue
from bot.storage.streams import StreamConsumer, StreamEntry, append, stream_stats
from bot.storage.watches import WatchRepository

ALICE, BOHDAN = 1001, 1002
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def post(msg: int, text: str, *, channel: int = 500, **kw: object) -> Post:
    return Post(
        channel_id=channel,
        message_id=msg,
        date=T0,
        text=text,
        username=f"chan{channel}",
        title=f"Channel {channel}",
        **kw,  # type: ignore[arg-type]
    )


async def make_worker(redis: aioredis.Redis, consumer: str = "w1"):  # type: ignore[no-untyped-def]
    from bot.app import build_triage_worker

    # These posts are dated T0 (weeks ago): no backfill cutoff here, tests of it set their own.
    settings = Settings(_env_file=None, BACKFILL_CUTOFF_H=0)  # type: ignore[call-arg]
    worker, _run = await build_triage_worker(settings, redis, consumer=consumer)
    return worker


async def alerts(redis: aioredis.Redis) -> list[AlertJob]:
    """Every alert on the stream, hydrated from the archive as delivery reads them."""
    entries = [StreamEntry(i, f) for i, f in await redis.xrange(keys.ALERTS_STREAM)]
    hydrated = await AlertOutbox(redis).hydrate(entries)
    return [AlertJob.from_fields(e.fields) for e in hydrated]


@pytest.fixture
async def watched(redis: aioredis.Redis) -> WatchRepository:
    repo = WatchRepository(redis)
    await repo.add(ALICE, "мигрант выслать", "high")
    await repo.add(BOHDAN, "біженець")
    return repo


async def test_matching_post_alerts_its_analyst_once_and_is_archived(
    redis: aioredis.Redis, watched: WatchRepository
) -> None:
    queue = PostQueue(redis)
    text = "Депутат предложил выслать всех мигрантов из региона & <закрыть> границу 🚧"
    await queue.enqueue(post(1, text))
    await queue.enqueue(post(2, "Погода хорошая, мигрантов нет"))
    worker = await make_worker(redis)
    assert await worker.drain() == 2
    jobs = await alerts(redis)
    assert [(j.analyst_id, j.post.message_id, j.kind) for j in jobs] == [(ALICE, 1, "new")]
    job = jobs[0]
    assert job.language == "ru"
    assert [text[s:e] for s, e in job.spans] == ["выслать", "мигрантов"]
    assert job.priority in ("urgent", "high")
    assert await redis.get(keys.archive_post(500, 2)) is not None  # every post is archived
    stats = await stream_stats(redis, keys.POSTS_STREAM, keys.TRIAGE_GROUP, keys.POSTS_DEAD)
    assert stats.pending == 0 and stats.lag == 0


async def test_redelivered_post_does_not_alert_twice(
    redis: aioredis.Redis, watched: WatchRepository
) -> None:
    raw = post(1, "Біженців із зони бойових дій евакуювали").to_json()
    await append(redis, keys.POSTS_STREAM, {"post": raw})
    await append(redis, keys.POSTS_STREAM, {"post": raw})  # the same post, twice on the stream
    worker = await make_worker(redis)
    await worker.drain()
    jobs = await alerts(redis)
    assert [(j.analyst_id, j.post.message_id) for j in jobs] == [(BOHDAN, 1)]


async def test_worker_killed_mid_batch_loses_nothing_and_duplicates_nothing(
    redis: aioredis.Redis, watched: WatchRepository
) -> None:
    queue = PostQueue(redis)
    for i in range(1, 21):
        await queue.enqueue(post(i, f"Сообщение {i}: выслать мигрантов"))
    doomed = StreamConsumer(redis, keys.POSTS_STREAM, keys.TRIAGE_GROUP, "w1", keys.POSTS_DEAD)
    await doomed.ensure_group()
    taken = await doomed.read(count=8, block_ms=None)
    assert len(taken) == 8  # read, then the process dies before acknowledging
    half = await make_worker(redis, "w1")
    await half.process(taken[:3])  # and another run got through part of them before dying
    restarted = await make_worker(redis, "w1")
    await restarted.drain()
    jobs = await alerts(redis)
    assert sorted(j.post.message_id for j in jobs) == list(range(1, 21))
    stats = await stream_stats(redis, keys.POSTS_STREAM, keys.TRIAGE_GROUP, keys.POSTS_DEAD)
    assert stats.pending == 0


async def test_edit_follows_up_and_edit_into_match_alerts_as_edit(
    redis: aioredis.Redis, watched: WatchRepository
) -> None:
    queue = PostQueue(redis)
    await queue.enqueue(post(1, "Надо выслать мигрантов"))
    await queue.enqueue(post(2, "Новости дня"))
    worker = await make_worker(redis)
    await worker.drain()
    edited = datetime(2026, 11, 1, 13, 0, tzinfo=UTC)
    await queue.enqueue(
        post(1, "Надо выслать мигрантов немедленно", edit_date=edited, event="edit")
    )
    await queue.enqueue(post(2, "Біженці прибули", edit_date=edited, event="edit"))
    await worker.drain()
    jobs = await alerts(redis)
    assert [(j.analyst_id, j.post.message_id, j.kind) for j in jobs] == [
        (ALICE, 1, "new"),
        (ALICE, 1, "edit"),
        (BOHDAN, 2, "edit"),
    ]
    assert "немедленно" in jobs[1].post.text
    assert jobs[1].previous == "Надо выслать мигрантов"  # for the follow-up's difference
    assert jobs[2].previous == "Новости дня"
    assert jobs[0].previous is None


async def test_edit_that_no_longer_matches_tells_those_alerted(
    redis: aioredis.Redis, watched: WatchRepository
) -> None:
    queue = PostQueue(redis)
    await queue.enqueue(post(1, "Надо выслать мигрантов"))
    worker = await make_worker(redis)
    await worker.drain()
    edited = datetime(2026, 11, 1, 13, 0, tzinfo=UTC)
    await queue.enqueue(post(1, "Новости дня", edit_date=edited, event="edit"))
    await worker.drain()
    jobs = await alerts(redis)
    assert [(j.analyst_id, j.kind, j.watch_id, j.spans) for j in jobs[1:]] == [
        (ALICE, "edit", 0, ())
    ]
    text, _keyboard = render_alert(jobs[1], ZoneInfo("UTC"))
    assert "no longer matches any of your watches" in text and "Watch #0" not in text


async def test_deleted_alerted_post_is_reported_with_its_text(
    redis: aioredis.Redis, watched: WatchRepository
) -> None:
    queue = PostQueue(redis)
    await queue.enqueue(post(1, "Надо выслать мигрантов"))
    await queue.enqueue(post(2, "Ничего интересного"))
    worker = await make_worker(redis)
    await worker.drain()
    for msg in (1, 2, 3):  # 3 was never seen
        await queue.enqueue(Post(channel_id=500, message_id=msg, date=T0, event="delete"))
    await worker.drain()
    jobs = await alerts(redis)
    assert [(j.analyst_id, j.post.message_id, j.kind) for j in jobs] == [
        (ALICE, 1, "new"),
        (ALICE, 1, "delete"),
    ]
    assert jobs[1].post.text == "Надо выслать мигрантов"  # kept from the archive
    # the notice says what the alert said: the watch, the language, the words in bold
    assert (jobs[1].watch_id, jobs[1].language) == (jobs[0].watch_id, "ru")
    assert jobs[1].spans == jobs[0].spans
    kept = Post.from_json(await redis.get(keys.archive_post(500, 1)) or "")
    assert kept.event == "delete" and kept.text == "Надо выслать мигрантов"


async def test_forward_and_near_duplicate_join_the_first_alert(
    redis: aioredis.Redis, watched: WatchRepository
) -> None:
    story = (
        "Губернатор заявил сегодня утром, что область должна выслать всех нелегальных "
        "мигрантов до конца месяца, а работодатели получат штрафы за их найм"
    )
    queue = PostQueue(redis)
    await queue.enqueue(post(1, story, channel=500))
    await queue.enqueue(post(7, story, channel=600, forward=Forward(channel_id=500, message_id=1)))
    await queue.enqueue(post(9, "⚡️ Срочно! " + story + " Подписывайтесь!", channel=700))
    await queue.enqueue(post(10, "Совсем другая история: выслать мигрантов? Нет.", channel=700))
    worker = await make_worker(redis)
    await worker.drain()
    jobs = await alerts(redis)
    fresh = [(j.post.channel_id, j.post.message_id) for j in jobs if j.kind == "new"]
    assert fresh == [(500, 1), (700, 10)]  # the copies raised no new alert
    joins = [j for j in jobs if j.kind == "also"]
    assert [(j.analyst_id, j.post.channel_id, j.post.message_id) for j in joins] == [
        (ALICE, 500, 1),
        (ALICE, 500, 1),
    ]
    assert joins[-1].also_in == ("https://t.me/chan600/7", "https://t.me/chan700/9")
    also = await redis.smembers(keys.story_also(500, 1))
    assert also == {"https://t.me/chan600/7", "https://t.me/chan700/9"}
    assert worker.stats.duplicates == 2
    await worker.drain()  # the same copies again: nothing more
    assert len(await alerts(redis)) == len(jobs)


async def test_malformed_entry_is_dead_lettered_and_the_rest_processed(
    redis: aioredis.Redis, watched: WatchRepository
) -> None:
    await append(redis, keys.POSTS_STREAM, {"post": "{not json"})
    await append(redis, keys.POSTS_STREAM, {"post": '{"channel_id": "x"}'})
    await append(redis, keys.POSTS_STREAM, {"post": post(1, "біженці").to_json()})
    worker = await make_worker(redis)
    await worker.drain()
    assert await redis.xlen(keys.POSTS_DEAD) == 2
    assert [j.analyst_id for j in await alerts(redis)] == [BOHDAN]


async def test_watch_added_while_running_is_live_without_restart(
    redis: aioredis.Redis, watched: WatchRepository
) -> None:
    worker = await make_worker(redis)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop, block_ms=50))
    try:
        await asyncio.sleep(0.2)
        await watched.add(4242, '"Milli Məclis"')
        await asyncio.sleep(0.2)
        await PostQueue(redis).enqueue(post(1, "Milli Məclis bu gün toplandı"))
        for _ in range(100):
            if await redis.xlen(keys.ALERTS_STREAM):
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await task
    assert [j.analyst_id for j in await alerts(redis)] == [4242]


async def test_paused_watch_stops_alerting(
    redis: aioredis.Redis, watched: WatchRepository
) -> None:
    alice_watch = (await watched.list_for(ALICE))[0]
    await watched.set_paused(alice_watch.id, ALICE, True)
    await PostQueue(redis).enqueue(post(1, "выслать мигрантов"))
    worker = await make_worker(redis)
    await worker.drain()
    assert await alerts(redis) == []


async def test_post_enqueued_right_after_a_new_watch_is_matched_by_it(
    redis: aioredis.Redis, watched: WatchRepository
) -> None:
    """Causal order: a watch committed before a post was enqueued applies to that post, even
    when both land while the worker is blocked reading the stream."""
    worker = await make_worker(redis)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop, block_ms=2000))
    try:
        for n in range(1, 6):
            await asyncio.sleep(0.3)  # the worker is inside its blocking read
            await watched.add(5000 + n, f"=словоnum{n}")
            await PostQueue(redis).enqueue(post(n, f"Текст со словоnum{n} внутри"))
        for _ in range(100):
            if await redis.xlen(keys.ALERTS_STREAM) >= 5:
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await task
    assert sorted(j.analyst_id for j in await alerts(redis)) == [5001, 5002, 5003, 5004, 5005]


async def test_backfill_is_archived_and_counted_not_alerted(
    redis: aioredis.Redis, watched: WatchRepository
) -> None:
    """An export's old posts become searchable archive, not a flood of stale alerts; with
    `vigil ingest --alert` they alert, marked as from the archive; a fresh post alerts."""
    from bot.app import build_triage_worker
    from bot.storage.archive import ArchiveRepository

    settings = Settings(_env_file=None)  # type: ignore[call-arg]  # default cutoff: 24 h
    worker, _run = await build_triage_worker(settings, redis, consumer="w1")
    queue = PostQueue(redis)
    now = datetime.now(UTC)
    text = "Депутат предложил выслать всех мигрантов"
    await queue.enqueue(post(1, text))  # dated T0: weeks old
    await queue.enqueue(post(2, text, alert_old=True))  # ingested with --alert
    await queue.enqueue(replace_date(post(3, text), now))  # live
    await worker.drain()
    jobs = {j.post.message_id: j for j in await alerts(redis)}
    assert sorted(jobs) == [2, 3]
    assert jobs[2].reasons[0] == "📼 from the archive, 01 Nov 2026"
    assert not any("archive" in r for r in jobs[3].reasons)
    assert worker.stats.backfilled == 1
    archive = ArchiveRepository(redis)
    assert await archive.get(500, 1) is not None
    # An edit of the old post that was never alerted alerts no one either.
    edited = post(1, text + " немедленно", edit_date=now, event="edit")
    await queue.enqueue(edited)
    await worker.drain()
    assert sorted(j.post.message_id for j in await alerts(redis)) == [2, 3]
    # The window counts from arrival: a trim now keeps the weeks-old post in the index.
    assert await archive.trim() == 0
    assert await redis.zscore(keys.archive_index(500), "1") is not None
    later = datetime.now(UTC).timestamp() + archive.ttl_s + 1
    assert await archive.trim(now=later) == 3
    assert await redis.zcard(keys.archive_index(500)) == 0


def replace_date(p: Post, when: datetime) -> Post:
    from dataclasses import replace

    return replace(p, date=when)


async def test_a_surge_of_matching_posts_tells_the_watchs_analysts_once(
    redis: aioredis.Redis, watched: WatchRepository
) -> None:
    """Surges are part of triage's output: counted on the batch write, checked by the worker,
    told through the notices on the alerts stream — once per watch within the cooldown."""
    from dataclasses import replace

    from bot.alerts import is_notice
    from bot.storage.campaigns import CampaignRepository, SurgeTracker
    from bot.storage.repos import Repositories
    from bot.triage.engine import TriageEngine
    from bot.triage.language import make_detector
    from bot.triage.surge import SurgeConfig
    from bot.triage_worker import TriageWorker

    repos = Repositories.build(redis)
    config = SurgeConfig(min_history_days=0)  # a fresh Redis has no history to wait for
    tracker = SurgeTracker(CampaignRepository(redis, config=config, archive=repos.archive))
    worker = TriageWorker.over(repos, TriageEngine(make_detector()), consumer="s1", surge=tracker)
    queue = PostQueue(redis)
    now = datetime.now(UTC)
    story = "Беженцев из соседней области срочно эвакуировали, біженці прибули"
    for i in range(12):
        await queue.enqueue(replace(post(100 + i, f"{story} {i}", channel=600 + i % 4), date=now))
    await worker.drain()
    notices = [f for _i, f in await redis.xrange(keys.ALERTS_STREAM) if is_notice(f)]
    surges = [f for f in notices if "Surge" in f.get("notice", "")]
    assert [int(f["analyst"]) for f in surges] == [BOHDAN]
    text = surges[0]["notice"]
    assert "12 posts in 4 channels in the last 3 h" in text and "біженець" in text
    # More posts within the cooldown: no second surge alert.
    for i in range(12, 20):
        await queue.enqueue(replace(post(100 + i, f"{story} {i}", channel=600 + i % 4), date=now))
    await worker.drain()
    notices = [f for _i, f in await redis.xrange(keys.ALERTS_STREAM) if is_notice(f)]
    assert len([f for f in notices if "Surge" in f.get("notice", "")]) == 1
    assert worker.stats.surges == 1


async def test_running_worker_writes_and_acks_each_batch_without_waiting_for_the_next(
    redis: aioredis.Redis, watched: WatchRepository
) -> None:
    """A batch's write goes out beside the next batch's matching; with no next batch it goes
    at once: the alert and the ack come long before the blocking read (1.5 s) would return."""
    worker = await make_worker(redis)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop, block_ms=1500))
    try:
        await asyncio.sleep(0.3)
        started = asyncio.get_running_loop().time()
        await PostQueue(redis).enqueue(post(1, "Надо выслать мигрантов"))
        while True:
            pending = await redis.xpending(keys.POSTS_STREAM, keys.TRIAGE_GROUP)
            if await redis.xlen(keys.ALERTS_STREAM) and not int(pending["pending"]):
                break
            assert asyncio.get_running_loop().time() - started < 1.0, "write or ack held back"
            await asyncio.sleep(0.02)
    finally:
        stop.set()
        await task
    assert [(j.analyst_id, j.post.text) for j in await alerts(redis)] == [
        (ALICE, "Надо выслать мигрантов")
    ]


async def test_copies_in_consecutive_batches_alert_once_while_writes_overlap(
    redis: aioredis.Redis, watched: WatchRepository
) -> None:
    """Batch N+1 is matched while batch N's write is in flight, but it looks up stories and
    ledgers only after that write is in Redis: a copy in the next batch is folded, and a
    redelivered batch adds nothing."""
    story = "Срочно: власти решили выслать всех мигрантов из приграничных районов до пятницы"
    queue = PostQueue(redis)
    await queue.enqueue(post(1, story, channel=501))
    await queue.enqueue(post(2, story, channel=502))
    await queue.enqueue(post(3, story, channel=503))
    worker = await make_worker(redis)
    assert await worker.drain(batch=1) == 3
    jobs = await alerts(redis)
    assert [(j.analyst_id, j.kind, j.post.channel_id) for j in jobs] == [
        (ALICE, "new", 501),
        (ALICE, "also", 501),
        (ALICE, "also", 501),
    ]
    assert worker.stats.batches == 3 and worker._unsent is None and worker._writing is None
    again = StreamConsumer(redis, keys.POSTS_STREAM, keys.TRIAGE_GROUP, "w9", keys.POSTS_DEAD)
    entries = [StreamEntry(i, f) for i, f in await redis.xrange(keys.POSTS_STREAM)]
    worker._stream = again
    await worker.process(entries)  # the same batch, delivered again
    assert len(await alerts(redis)) == 3


async def _surge_setup(redis: aioredis.Redis, consumer: str):  # type: ignore[no-untyped-def]
    from bot.storage.campaigns import CampaignRepository, SurgeTracker
    from bot.storage.repos import Repositories
    from bot.triage.engine import TriageEngine
    from bot.triage.language import make_detector
    from bot.triage.surge import SurgeConfig
    from bot.triage_worker import TriageWorker

    repos = Repositories.build(redis)
    config = SurgeConfig(min_history_days=0)  # a fresh Redis has no history to wait for
    tracker = SurgeTracker(CampaignRepository(redis, config=config, archive=repos.archive))
    engine = TriageEngine(make_detector())
    return repos, TriageWorker.over(repos, engine, consumer=consumer, surge=tracker)


async def _enqueue_story(redis: aioredis.Redis, first: int, n: int) -> None:
    from dataclasses import replace

    queue = PostQueue(redis)
    now = datetime.now(UTC)
    story = "Беженцев из соседней области срочно эвакуировали, біженці прибули"
    for i in range(first, first + n):
        await queue.enqueue(replace(post(100 + i, f"{story} {i}", channel=600 + i % 4), date=now))


async def _surge_notices(redis: aioredis.Redis) -> list[dict[str, str]]:
    from bot.alerts import is_notice

    entries = await redis.xrange(keys.ALERTS_STREAM)
    return [f for _i, f in entries if is_notice(f) and "Surge" in f.get("notice", "")]


async def test_a_surge_decided_is_told_beside_the_loop_and_once_across_a_crash(
    redis: aioredis.Redis, watched: WatchRepository
) -> None:
    """The check only decides and queues: it returns before the chart is drawn, with the
    surge recorded unsent. A worker killed before telling it leaves it unsent; the restarted
    one tells it at start, once, however many workers try at the same time."""
    _repos, worker = await _surge_setup(redis, "s1")
    await _enqueue_story(redis, 0, 12)
    await worker.drain(surges=False)
    assert await worker.check_surges() == 1
    (ref,) = await redis.zrange(keys.SURGE_UNSENT, 0, -1)
    await worker.surges_told(timeout_s=0)  # killed while the chart was being drawn
    assert await _surge_notices(redis) == []
    assert await redis.zrange(keys.SURGE_UNSENT, 0, -1) == [ref]
    # Two workers start at once (the restarted one, and another instance sweeping): one tells.
    _r, again = await _surge_setup(redis, "s1")
    _r, other = await _surge_setup(redis, "s2")
    stop = asyncio.Event()
    task = asyncio.create_task(again.run(stop, block_ms=100))
    await other.load_watches()
    assert await other.resend_surges(0.0) == 1
    await other.surges_told()
    started = asyncio.get_running_loop().time()
    while await redis.zcard(keys.SURGE_UNSENT) or again._tellers:
        assert asyncio.get_running_loop().time() - started < 30, "the restart did not tell it"
        await asyncio.sleep(0.05)
    stop.set()
    await task
    surges = await _surge_notices(redis)
    assert [int(f["analyst"]) for f in surges] == [BOHDAN]
    assert "12 posts in 4 channels" in surges[0]["notice"]
    assert again.stats.surges + other.stats.surges == 1
    # Told: a later start or sweep has nothing to tell.
    assert await other.resend_surges(0.0) == 0
    assert len(await _surge_notices(redis)) == 1


async def test_a_shared_watchs_surge_names_it_as_shared_shows_it(
    redis: aioredis.Redis, watched: WatchRepository
) -> None:
    from bot.storage.shared import SharedWatchRepository

    carol = 1003
    shared = SharedWatchRepository(redis, watched)
    made = await shared.add("біженці OR біженець", name="Border <news> & co", created_by=1)
    await shared.subscribe(made.id, carol)
    _repos, worker = await _surge_setup(redis, "s1")
    await _enqueue_story(redis, 0, 12)
    await worker.drain()
    by_analyst = {int(f["analyst"]): f["notice"] for f in await _surge_notices(redis)}
    assert sorted(by_analyst) == [BOHDAN, carol]
    text = by_analyst[carol]
    assert f"watch S{made.id} Border &lt;news&gt; &amp; co <code>" in text
    assert f"<code>{made.canonical}</code>" in text
    assert f"S{made.id}" not in by_analyst[BOHDAN]
