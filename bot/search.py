"""The triage role's search worker: answers /test and /search (bot/storage/requests.py).

Consumer group `searchers` on the search request stream: any triage worker answers. Each
request is parsed here (the bot never loads the dictionaries the parser needs), matched with
the same engine triage uses (one watch: the query) over the archive newest first, at most
`max_posts` posts, and answered on the request's reply list in the same transaction as the
acknowledgement; a request whose deadline has passed is acknowledged unanswered. `slots`
requests run at once, each slot a consumer of its own (so a restarted worker resumes its own
pending entries): a long search by one analyst leaves the other slots free, and matching runs
in threads chunk by chunk, so searches interleave. The worker's presence is beaten every
`BEAT_S` for the bot (`SearchRequests.workers`). The language detector is the triage engine's
own (loaded once per process).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import replace

from bot.models import Post
from bot.storage.archive import ArchiveRepository
from bot.storage.failures import StorageError
from bot.storage.requests import (
    BEAT_S,
    Hit,
    QueryProblem,
    SearchRequest,
    SearchRequests,
    SearchResult,
)
from bot.storage.streams import StreamConsumer, StreamEntry
from bot.triage.engine import TriageEngine
from bot.triage.index import WatchSpec
from bot.triage.language import LanguageDetector
from bot.triage.query import QueryError, parse_query

log = logging.getLogger(__name__)

SCAN_CHUNK = 500  # posts read and matched per step
HITS_KEPT = 5_000  # matches kept for paging (all are counted)
SLOTS = 2  # requests run at once per triage worker
TRIM_EVERY_S = 600.0
KEEP_S = 3600.0  # acknowledged requests older than this are trimmed


def _searchable(post: Post) -> Post | None:
    """A deleted post's kept text is searched too (the result says it was deleted)."""
    if not post.text:
        return None
    return replace(post, event="new") if post.event == "delete" else post


def _match_batch(engine: TriageEngine, posts: list[Post]) -> list[Hit]:
    found: list[Hit] = []
    for post in posts:
        searched = _searchable(post)
        if searched is None:
            continue
        result = engine.triage(searched)
        if result.matches:
            found.append(((post.channel_id, post.message_id), result.matches[0].spans))
    return found


async def search_archive(
    detector: LanguageDetector,
    archive: ArchiveRepository,
    request: SearchRequest,
    *,
    deadline: float | None = None,
) -> SearchResult:
    """Match the request's query over the archive up to `request.at`, newest first. Every
    post still indexed is in the window (it counts from arrival, so a backfill of old posts is
    searchable: no lower bound on the post's date); expired ones are skipped. Stops early
    (capped) at `deadline`, when nobody waits for the rest."""
    try:
        canonical = str(await asyncio.to_thread(parse_query, request.query))
    except QueryError as exc:
        return SearchResult(problem=QueryProblem(str(exc), exc.position))
    engine = TriageEngine(detector)
    engine.add_watch(WatchSpec(0, request.owner_id, canonical))
    result = SearchResult(canonical=canonical)
    async for posts in archive.newest(0.0, request.at, chunk=SCAN_CHUNK):
        posts = posts[: request.max_posts - result.scanned]
        found = await asyncio.to_thread(_match_batch, engine, posts)
        result.scanned += len(posts)
        result.matched += len(found)
        result.hits.extend(found[: HITS_KEPT - len(result.hits)])
        if result.scanned >= request.max_posts or (
            deadline is not None and time.time() > deadline
        ):
            result.capped = True
            break
    return result


class SearchWorker:
    """Answers search requests until stopped (see the module docstring)."""

    def __init__(
        self,
        requests: SearchRequests,
        archive: ArchiveRepository,
        detector: LanguageDetector,
        *,
        consumer: str,
        slots: int = SLOTS,
        max_deliveries: int = 5,
        claim_idle_ms: int = 60_000,
    ) -> None:
        self._requests = requests
        self._archive = archive
        self._detector = detector
        self.name = consumer
        self._consumers = [
            requests.consumer(
                f"{consumer}-s{i}", max_deliveries=max_deliveries, claim_idle_ms=claim_idle_ms
            )
            for i in range(max(1, slots))
        ]
        self.answered = 0
        self.skipped = 0  # past their deadline: nobody waited

    async def run(self, stop: asyncio.Event) -> None:
        await self._consumers[0].ensure_group()
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._presence(stop))
                for consumer in self._consumers:
                    tasks.create_task(self._serve(consumer, stop))
        finally:
            with contextlib.suppress(Exception):  # best effort while shutting down
                await self._requests.leave(self.name)

    async def _presence(self, stop: asyncio.Event) -> None:
        last_trim = time.monotonic()
        while not stop.is_set():
            try:
                await self._requests.beat(self.name)
                if time.monotonic() - last_trim > TRIM_EVERY_S:
                    last_trim = time.monotonic()
                    await self._requests.trim(KEEP_S, self._consumers[0])
            except StorageError:
                log.warning("search: presence not recorded (Redis unavailable)")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), BEAT_S)

    async def _serve(self, consumer: StreamConsumer, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                entries = await consumer.read(count=1, block_ms=1000)
                for entry in entries:
                    await self.handle(consumer, entry)
            except StorageError:
                log.warning("search: Redis unavailable; retrying")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)

    async def handle(self, consumer: StreamConsumer, entry: StreamEntry) -> None:
        try:
            request = SearchRequest.from_fields(entry.fields)
        except (KeyError, ValueError):
            await consumer.dead_letter(entry, "not a search request")
            return
        if time.time() > request.deadline:
            self.skipped += 1
            await consumer.ack(entry.id)
            return
        started = time.monotonic()
        result = await search_archive(
            self._detector, self._archive, request, deadline=request.deadline
        )
        await self._requests.answer(consumer, entry, request.id, result)
        self.answered += 1
        log.info(
            "search: %s by %d: %d of %d posts in %.2f s",
            request.kind,
            request.owner_id,
            result.matched,
            result.scanned,
            time.monotonic() - started,
        )
