"""The triage worker: posts stream → archive → match → one alert entry per (post, analyst).

Consumes `keys.POSTS_STREAM` in group `triage`. For each batch it archives every post, runs the
pure `TriageEngine`, and appends alert entries through a Lua script that checks and records the
(post, analyst, version) ledger in the same step, so a batch redelivered after a crash yields no
second alert. Entries are acknowledged only after all of that is in Redis.

Edits: a post edited into matching alerts as an edit; an analyst already alerted on the post
gets the edit as a follow-up. Deletions: analysts alerted on the post are told, with the
archived text. Copies of a story already alerted (forwards, near-duplicates in other channels)
do not alert the same analyst again; the copy's link is recorded on the first post's story.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import redis.asyncio as aioredis

from bot.alerts import PRIORITIES, AlertJob
from bot.models import Post, PostFormatError
from bot.storage import keys
from bot.storage.streams import DEFAULT_MAXLEN, StreamConsumer, StreamEntry
from bot.storage.watches import WatchRepository
from bot.triage.dedup import required_overlap, story_fingerprints
from bot.triage.engine import TriageEngine, TriageResult, WatchSpec
from bot.triage.normalise import normalise
from bot.triage.query import QueryError

log = logging.getLogger(__name__)

STORY_TTL_S = 3 * 24 * 3600
WEIGHTS_REFRESH_S = 30.0

# KEYS[1] alerts_made hash of the post, KEYS[2] alerts stream
# ARGV[1] analyst, ARGV[2] version, ARGV[3] maxlen, ARGV[4] ttl, ARGV[5] mode, ARGV[6..] fields
# mode 'first': only if the analyst was never alerted on this post (new posts)
# mode 'newer': only if the recorded version is older (edits, deletions)
_EMIT = """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if ARGV[5] == 'first' and cur then return 0 end
if cur and tonumber(cur) >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[4])
local fields = {}
for i = 6, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', unpack(fields))
return 1
"""


@dataclass
class TriageStats:
    posts: int = 0
    alerts: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    by_language: dict[str, int] = field(default_factory=lambda: defaultdict(int))


@dataclass(frozen=True, slots=True)
class _Planned:
    post: Post
    result: TriageResult | None
    archived: Post | None  # what the archive held before this entry (edits, deletions)


class TriageWorker:
    def __init__(
        self,
        redis: aioredis.Redis,
        engine: TriageEngine,
        watches: WatchRepository,
        *,
        consumer: str,
        archive_ttl_s: int = 30 * 24 * 3600,
        max_deliveries: int = 5,
        claim_idle_ms: int = 60_000,
        maxlen: int = DEFAULT_MAXLEN,
        channel_weights: Callable[[], Any] | None = None,
    ) -> None:
        self._redis = redis
        self._engine = engine
        self._watches = watches
        self._archive_ttl_s = archive_ttl_s
        self._maxlen = maxlen
        self._emit: Any = redis.register_script(_EMIT)
        self._stream = StreamConsumer(
            redis,
            keys.POSTS_STREAM,
            keys.TRIAGE_GROUP,
            consumer,
            keys.POSTS_DEAD,
            max_deliveries=max_deliveries,
            claim_idle_ms=claim_idle_ms,
        )
        self._cursor = "0-0"
        self._ready = False  # the index holds every active watch
        self._loaded: set[int] = set()
        self._queries: dict[int, str] = {}
        self._load_weights = channel_weights
        self.stats = TriageStats()

    # --- watches ----------------------------------------------------------------------------

    async def load_watches(self) -> int:
        """Build the index from every active watch (at start, or after missed changes)."""
        self._cursor = await self._watches.changes_cursor()
        for watch_id in list(self._loaded):
            self._engine.remove_watch(watch_id)
        self._loaded.clear()
        for watch in await self._watches.all_active():
            self._add(watch.id, watch.owner_id, watch.query, watch.priority)
        self._ready = True
        log.info("triage: %d active watches indexed", len(self._loaded))
        return len(self._loaded)

    async def sync_watches(self, block_ms: int | None = None) -> int:
        """Apply watch changes made by any process since the last call."""
        self._cursor, changed = await self._watches.changes_since(self._cursor, block_ms)
        if changed is None:
            return await self.load_watches()
        if not changed:
            return 0
        for watch in await self._watches.get_many(sorted(changed)):
            changed.discard(watch.id)
            if watch.paused:
                self._remove(watch.id)
            else:
                self._add(watch.id, watch.owner_id, watch.query, watch.priority)
        for gone in changed:  # removed watches
            self._remove(gone)
        log.info("triage: watch changes applied; %d active watches", len(self._loaded))
        return len(changed)

    def _add(self, watch_id: int, owner: int, query: str, priority: str) -> None:
        try:
            self._engine.add_watch(WatchSpec(watch_id, owner, query, priority))
            self._loaded.add(watch_id)
            self._queries[watch_id] = query
        except QueryError as exc:  # stored before a parser change made it invalid
            log.warning("triage: watch %d no longer parses (%s); skipped", watch_id, exc)

    def _remove(self, watch_id: int) -> None:
        if watch_id in self._loaded:
            self._engine.remove_watch(watch_id)
            self._loaded.discard(watch_id)
            self._queries.pop(watch_id, None)

    # --- the loop ---------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, *, batch: int = 100, block_ms: int = 500) -> None:
        await self._stream.ensure_group()
        await self.load_watches()
        # The models and the compiled index are hundreds of thousands of long-lived objects;
        # moving them out of the collector's view saves every later collection from walking
        # them again (measured ~120 µs per post at 10,000 watches).
        gc.collect()
        gc.freeze()
        last_weights = 0.0
        while not stop.is_set():
            if self._load_weights and time.monotonic() - last_weights > WEIGHTS_REFRESH_S:
                await self._load_weights()
                last_weights = time.monotonic()
            entries = await self._stream.read(count=batch, block_ms=block_ms)
            # Sync after the read, not before: a watch added before a post was enqueued is
            # then always applied before that post is matched, however the two raced.
            await self.sync_watches()
            if entries:
                await self.process(entries)

    async def drain(self, *, batch: int = 100) -> int:
        """Process everything currently on the stream, then return (demo, tests, backtests)."""
        await self._stream.ensure_group()
        done = 0
        while entries := await self._stream.read(count=batch, block_ms=None):
            await self.sync_watches()
            await self.process(entries)
            done += len(entries)
        return done

    async def process(self, entries: list[StreamEntry]) -> None:
        if not self._ready:  # never match against a partial index
            await self.load_watches()
        posts: list[tuple[StreamEntry, Post]] = []
        for entry in entries:
            try:
                posts.append((entry, Post.from_json(entry.fields.get("post", ""))))
            except PostFormatError as exc:
                self.stats.dead_letters += 1
                await self._stream.dead_letter(entry, f"malformed post: {exc}")
        if not posts:
            return
        archived = await self._archived([p for _e, p in posts])
        planned: list[_Planned] = []
        for (_entry, post), before in zip(posts, archived, strict=True):
            if post.event == "delete":
                if before is None:
                    planned.append(_Planned(post, None, None))
                    continue
                post = replace(before, event="delete", edit_date=post.edit_date)
                # The kept text is triaged again, so the notice shows its language, its matched
                # words and the watch, like the alert it follows up.
                planned.append(_Planned(post, self._engine.triage(before), before))
                continue
            planned.append(_Planned(post, self._engine.triage(post), before))
        await self._archive(planned)
        for item in planned:
            await self._route(item)
        await self._stream.ack(*(e.id for e, _p in posts))

    # --- archive ----------------------------------------------------------------------------

    async def _archived(self, posts: list[Post]) -> list[Post | None]:
        wanted = [p for p in posts if p.event != "new"]
        if not wanted:
            return [None] * len(posts)
        raw: Any = await self._redis.mget(
            [keys.archive_post(p.channel_id, p.message_id) for p in wanted]
        )
        found = {
            (p.channel_id, p.message_id): Post.from_json(r)
            for p, r in zip(wanted, raw, strict=True)
            if r
        }
        return [
            found.get((p.channel_id, p.message_id)) if p.event != "new" else None for p in posts
        ]

    async def _archive(self, planned: list[_Planned]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for item in planned:
                post = item.post
                if post.event == "delete" and item.archived is None:
                    continue  # deletion of a post we never saw: nothing to keep
                pipe.set(
                    keys.archive_post(post.channel_id, post.message_id),
                    post.to_json(),
                    ex=self._archive_ttl_s,
                )
                pipe.zadd(
                    keys.archive_index(post.channel_id),
                    {str(post.message_id): post.date.timestamp()},
                )
                pipe.zremrangebyscore(
                    keys.archive_index(post.channel_id), 0, time.time() - self._archive_ttl_s
                )
                pipe.sadd(keys.ARCHIVE_CHANNELS, str(post.channel_id))
            await pipe.execute()

    # --- routing ----------------------------------------------------------------------------

    async def _route(self, item: _Planned) -> None:
        post = item.post
        self.stats.posts += 1
        if post.event == "delete" and item.archived is None:
            return
        result = item.result
        assert result is not None
        best = _best_match_per_owner(result, self._queries)
        if post.event == "delete":
            await self._follow_up(post, "delete", best, result, only_alerted=True)
            return
        self.stats.by_language[result.language.code] += 1
        if post.event == "edit":
            await self._follow_up(post, "edit", best, result)
            return
        if not best:
            return
        first = await self._story_origin(post, result)
        for owner, (match_ids, priority, reasons, spans, query) in best.items():
            if first is not None and await self._already_alerted(first, owner):
                self.stats.duplicates += 1
                await self._join_first(first, owner, post, match_ids[0], query, priority)
                continue
            job = AlertJob(
                analyst_id=owner,
                post=post,
                watch_id=match_ids[0],
                watch_query=query,
                priority=priority,
                reasons=reasons,
                spans=spans,
                language=result.language.code,
                language_confidence=result.language.confidence,
            )
            await self._send(job, mode="first")

    async def _follow_up(
        self,
        post: Post,
        kind: str,
        best: dict[
            int, tuple[tuple[int, ...], str, tuple[str, ...], tuple[tuple[int, int], ...], str]
        ],
        result: TriageResult,
        *,
        only_alerted: bool = False,
    ) -> None:
        """Edits and deletions: everyone alerted on the post hears of it; an edit that now
        matches alerts its new analysts too (a deletion only those alerted). Watch 0 stands for
        "no longer matches any of your watches"."""
        made: Any = await self._redis.hgetall(keys.alerts_made(post.channel_id, post.message_id))
        recipients = {int(a) for a in made} | (set() if only_alerted else set(best))
        for owner in sorted(recipients):
            match = best.get(owner)
            job = AlertJob(
                analyst_id=owner,
                post=post,
                watch_id=match[0][0] if match else 0,
                watch_query=match[4] if match else "",
                priority=match[1] if match else "normal",
                reasons=match[2] if match else (),
                spans=match[3] if match else (),
                language=result.language.code,
                language_confidence=result.language.confidence,
                kind=kind,
            )
            await self._send(job, mode="newer")

    async def _join_first(
        self,
        first: tuple[int, int],
        owner: int,
        copy: Post,
        watch_id: int,
        query: str,
        priority: str,
    ) -> None:
        """Tell delivery to add this copy's link to the analyst's first alert of the story."""
        links: Any = await self._redis.smembers(keys.story_also(*first))
        origin = Post(channel_id=first[0], message_id=first[1], date=copy.date)
        job = AlertJob(
            analyst_id=owner,
            post=origin,
            watch_id=watch_id,
            watch_query=query,
            priority=priority,
            reasons=(),
            spans=(),
            language="und",
            language_confidence=0.0,
            kind="also",
            also_in=tuple(sorted(links)),
        )
        await self._send(job, mode="first", ledger_post=copy)

    async def _send(self, job: AlertJob, *, mode: str, ledger_post: Post | None = None) -> None:
        """Append the job unless the (post, analyst, version) ledger says it was; `ledger_post`
        keys the ledger when it is not the job's own post (a copy joining its first alert)."""
        fields = job.to_fields()
        flat = [x for kv in fields.items() for x in kv]
        made = ledger_post or job.post
        sent = await self._emit(
            keys=[keys.alerts_made(made.channel_id, made.message_id), keys.ALERTS_STREAM],
            args=[job.analyst_id, made.version, self._maxlen, self._archive_ttl_s, mode, *flat],
        )
        if sent:
            self.stats.alerts += 1

    async def _story_origin(self, post: Post, result: TriageResult) -> tuple[int, int] | None:
        """The first post of this story in another channel, if any; records this one."""
        me = f"{post.channel_id}:{post.message_id}"
        fingerprints: list[str] = []
        fwd = post.forward
        if fwd is not None and fwd.channel_id is not None and fwd.message_id is not None:
            fingerprints.append(f"fwd:{fwd.channel_id}:{fwd.message_id}")
            origin = (fwd.channel_id, fwd.message_id)
            await self._redis.sadd(keys.story_also(*origin), post.link)
            return origin
        normalised = result.normalised or normalise(post.text)
        tokens = [t.text for t in normalised.tokens]
        fingerprints.extend(story_fingerprints(tokens))
        if not fingerprints:
            return None
        seen: Any = await self._redis.mget([keys.story(f) for f in fingerprints])
        votes: dict[str, int] = defaultdict(int)
        for owner in seen:
            if owner and owner != me:
                votes[owner] += 1
        async with self._redis.pipeline(transaction=False) as pipe:
            for f in fingerprints:
                pipe.set(keys.story(f), me, nx=True, ex=STORY_TTL_S)
            await pipe.execute()
        need = required_overlap(fingerprints)
        for owner, n in sorted(votes.items(), key=lambda kv: -kv[1]):
            channel_id, message_id = (int(x) for x in owner.split(":"))
            if n >= need and channel_id != post.channel_id:
                await self._redis.sadd(keys.story_also(channel_id, message_id), post.link)
                return channel_id, message_id
        return None

    async def _already_alerted(self, origin: tuple[int, int], analyst: int) -> bool:
        return bool(await self._redis.hexists(keys.alerts_made(*origin), str(analyst)))


def _best_match_per_owner(
    result: TriageResult, queries: dict[int, str]
) -> dict[int, tuple[tuple[int, ...], str, tuple[str, ...], tuple[tuple[int, int], ...], str]]:
    """One alert per analyst: the highest priority among their matching watches, all spans."""
    rank = {p: i for i, p in enumerate(PRIORITIES)}
    grouped: dict[int, list[Any]] = defaultdict(list)
    for match in result.matches:
        grouped[match.owner_id].append(match)
    best = {}
    for owner, matches in grouped.items():
        matches.sort(key=lambda m: (rank.get(m.priority, 9), m.watch_id))
        top = matches[0]
        spans = _merge([s for m in matches for s in m.spans])
        best[owner] = (
            tuple(m.watch_id for m in matches),
            top.priority,
            tuple(top.reasons),
            spans,
            queries.get(top.watch_id, ""),
        )
    return best


def _merge(spans: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return tuple(merged)
