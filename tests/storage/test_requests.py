"""The search request stream against a real Redis: admission per analyst, presence, replies
that expire, and the triage role's search worker (bot/search.py) answering for real."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from bot.models import Post
from bot.search import SearchWorker
from bot.storage import keys
from bot.storage.archive import ArchiveRepository
from bot.storage.requests import (
    REPLY_TTL_S,
    Admission,
    QueryProblem,
    SearchRequest,
    SearchRequests,
    SearchResult,
)
from bot.storage.streams import StreamEntry
from bot.triage.language import make_detector


def _post(message: int, text: str, channel: int = -1001) -> Post:
    return Post(
        channel_id=channel,
        message_id=message,
        date=datetime.fromtimestamp(time.time() - 3600, UTC),
        text=text,
        username="chan",
        title="Chan",
    )


def _request(query: str, owner: int = 7, wait_s: float = 30.0) -> SearchRequest:
    return SearchRequest.new(
        "search", owner, query, int(time.time()) + 5, wait_s=wait_s, max_posts=100
    )


async def test_one_search_at_a_time_and_a_window_per_analyst(redis: aioredis.Redis) -> None:
    searches = SearchRequests(redis)
    first = await searches.admit(7, per_window=3, window_s=60, busy_s=30)
    assert first.verdict is Admission.OK and first.token
    busy = await searches.admit(7, per_window=3, window_s=60, busy_s=30)
    assert busy.verdict is Admission.BUSY and 0 < busy.retry_s <= 30
    other = await searches.admit(8, per_window=3, window_s=60, busy_s=30)
    assert other.verdict is Admission.OK  # another analyst is not held up
    await searches.release(7, "not-the-token")  # someone else's token releases nothing
    assert (await searches.admit(7, per_window=3, window_s=60, busy_s=30)).verdict is (
        Admission.BUSY
    )
    await searches.release(7, first.token)
    for _ in range(2):
        ok = await searches.admit(7, per_window=3, window_s=60, busy_s=30)
        assert ok.verdict is Admission.OK
        await searches.release(7, ok.token)
    over = await searches.admit(7, per_window=3, window_s=60, busy_s=30)
    assert over.verdict is Admission.RATE and 50 < over.retry_s <= 60
    # Refusals are not counted, and every key expires.
    assert int(await redis.get(keys.search_rate(7)) or 0) == 3
    assert 0 < await redis.pttl(keys.search_rate(7)) <= 60_000
    assert 0 < await redis.pttl(keys.search_busy(8)) <= 30_000


async def test_presence_counts_only_recent_workers(redis: aioredis.Redis) -> None:
    searches = SearchRequests(redis)
    assert await searches.workers() == 0
    now = time.time()
    await searches.beat("a", now=now - 100)  # long gone
    await searches.beat("b", now=now)
    assert await searches.workers(now=now) == 1
    await searches.leave("b")
    assert await searches.workers(now=now) == 0
    assert await redis.zcard(keys.SEARCH_WORKERS) == 0  # the stale one was pruned


@pytest.mark.parametrize(
    "result",
    [
        SearchResult("мигрант", 10, 2, False, [((-1001, 5), ((0, 7), (9, 12))), ((-2, 3), ())]),
        SearchResult(problem=QueryProblem("at 3: expected ) <b>&", 3)),
        SearchResult("<&>😀 \u202e", 100_000, 0, True, []),
    ],
)
def test_results_round_trip(result: SearchResult) -> None:
    assert SearchResult.from_json(result.to_json()) == result


async def test_a_reply_expires_and_a_missing_one_times_out(redis: aioredis.Redis) -> None:
    searches = SearchRequests(redis)
    consumer = searches.consumer("c")
    await consumer.ensure_group()
    request = _request("мигрант")
    await searches.submit(request)
    [entry] = await consumer.read(count=1, block_ms=100)
    await searches.answer(consumer, entry, request.id, SearchResult("мигрант", 1, 0))
    assert 0 < await redis.ttl(keys.search_reply(request.id)) <= REPLY_TTL_S
    assert await redis.xpending(keys.SEARCH_STREAM, keys.SEARCH_GROUP) == {
        "pending": 0,
        "min": None,
        "max": None,
        "consumers": [],
    }
    started = time.monotonic()
    assert await searches.wait("nobody-answers", 0.3) is None
    assert 0.25 < time.monotonic() - started < 2


async def test_the_worker_answers_once_skips_the_late_and_parks_the_bad(
    redis: aioredis.Redis,
) -> None:
    archive = ArchiveRepository(redis)
    await archive.put_many(
        [_post(i, f"Мигранты у границы {i}" if i % 2 else f"погода {i}") for i in range(1, 41)]
    )
    searches = SearchRequests(redis)
    worker = SearchWorker(searches, archive, make_detector(), consumer="w", slots=1)
    consumer = searches.consumer("w-s0")
    await consumer.ensure_group()
    good, late = _request("мигрант"), _request("погода", wait_s=-1)
    broken = _request("(мигрант")
    for r in (good, late, broken):
        await searches.submit(r)
    await redis.xadd(keys.SEARCH_STREAM, {"what": "not a request"})
    for entry in await consumer.read(count=10, block_ms=100):
        await worker.handle(consumer, entry)
    found = await searches.wait(good.id, 5)
    assert found is not None and found.canonical == "мигрант"
    assert (found.scanned, found.matched, len(found.hits)) == (40, 20, 20)
    assert [key for key, _spans in found.hits][:2] == [(-1001, 39), (-1001, 37)]  # newest first
    assert all(spans for _key, spans in found.hits)
    problem = await searches.wait(broken.id, 5)
    assert problem is not None and problem.problem is not None and problem.hits == []
    assert await searches.wait(late.id, 0.2) is None  # past its deadline: not run
    assert worker.skipped == 1 and worker.answered == 2
    assert await redis.xlen(keys.SEARCH_DEAD) == 1
    # A redelivered request (the worker died after answering, before the ack) answers again:
    # the bot takes one reply, and the duplicate goes with it.
    again = _request("мигрант")
    await searches.submit(again)
    [entry] = await consumer.read(count=1, block_ms=100)
    await worker.handle(consumer, entry)
    await worker.handle(consumer, StreamEntry(entry.id, entry.fields, 2))
    assert await redis.llen(keys.search_reply(again.id)) == 2
    assert await searches.wait(again.id, 1) is not None
    assert not await redis.exists(keys.search_reply(again.id))


async def test_any_of_two_triage_workers_answers(redis: aioredis.Redis) -> None:
    archive = ArchiveRepository(redis)
    await archive.put_many([_post(i, f"Мигранты {i}") for i in range(1, 6)])
    searches = SearchRequests(redis)
    detector = make_detector()
    workers = [
        SearchWorker(searches, archive, detector, consumer=name, slots=2) for name in ("a", "b")
    ]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(w.run(stop)) for w in workers]
    try:
        requests = [_request("мигрант", owner=i) for i in range(12)]
        for r in requests:
            await searches.submit(r)
        results = await asyncio.gather(*(searches.wait(r.id, 30) for r in requests))
        assert all(r is not None and r.matched == 5 for r in results)
        assert sum(w.answered for w in workers) == 12
        assert await searches.workers() == 2
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
    assert await searches.workers() == 0  # they left on stopping
