"""The triage worker: posts stream → archive → match → one alert entry per (post, analyst).

Consumes the posts stream in group `triage`. For each batch it runs the pure `TriageEngine` on
every post and does its Redis work in a constant number of round trips, whatever the batch
holds (`bot.storage.triage_store`): one lookup (archived versions of edited and deleted posts,
who was alerted on them, story fingerprints), one for story origins when the batch has copies,
and one write (archive, fingerprint claims, copy links, then the ledger-checked append of every
alert, which references its archived post rather than copying it). The entries are
acknowledged only after all of that is in Redis, so a batch redelivered after a crash adds no
alert.

Edits: a post edited into matching alerts as an edit; an analyst already alerted on the post
gets the edit as a follow-up. Deletions: analysts alerted on the post are told, with the
archived text. Copies of a story already alerted (forwards, near-duplicates in other channels)
do not alert the same analyst again; the copy's link is recorded on the first post's story. Two
copies in one batch are one story: the batch is checked in memory before Redis is.

Backfill is archive, not news: a new post dated more than `backfill_cutoff_s` before it reaches
triage (an export, a backlog after downtime) is archived and counted (`stats.backfilled`), not
alerted, unless it was ingested with `alert_old` (`vigil ingest --alert`): then its alerts say
"📼 from the archive, <date>". An edit of such a post follows up only alerts already sent.

Surges (bot/triage/surge.py, bot/storage/campaigns.py): every new matching post is counted per
watch and hour (a shared watch once, whatever its subscribers) on the batch's own write, with
each story copy's spread and forward edges; every `SURGE_CHECK_S` the worker checks the watches
its batches touched and tells the watch's analysts (a shared watch's subscribers) of a surge.
The decision is recorded and the surge noted unsent in one step; the notices (their chart
drawn out of process, up to `SURGE_CHART_TIMEOUT_S`) are made by at most `SURGE_TELLERS` tasks
beside the batches, never in the loop's way, and appended in the same step as the surge is
marked told (`AlertOutbox.tell_surge`), so a surge is told once: a restarted worker tells those
decided but never told, and every check tells those left unsent longer than `SURGE_STALE_S` (a
worker that died and is not coming back).

Learned relevance (`ModelSync`, bot/learner.py): the engine scores every match with the
analysts' models, reloaded within seconds of a change; an alert a model judged noise with
confidence is marked `held` (delivery puts it in the digest), and how many alerts the models
moved is counted per analyst and day on the batch's own write. A new post no watch matched is
scored by the desk model, and one above its threshold goes, as a suggestion, to each analyst
who opted in (`/suggest on`), at most `suggest_per_day` a day each.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections import defaultdict, deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from bot import surge_alerts
from bot.alerts import AlertJob
from bot.learner import SYNC_S, ModelSync
from bot.models import Post, PostFormatError
from bot.storage.campaigns import SurgeTracker
from bot.storage.connection import raise_if_cancelled
from bot.storage.outbox import Emission, EmitMode
from bot.storage.repos import Repositories
from bot.storage.shared import SharedWatchRepository
from bot.storage.stories import parse_ref, post_ref
from bot.storage.streams import StreamConsumer, StreamEntry
from bot.storage.triage_store import TriageStore
from bot.storage.watches import WatchRepository
from bot.triage.dedup import required_overlap, story_fingerprints
from bot.triage.engine import ScoredMatch, TriageEngine, TriageResult, WatchSpec
from bot.triage.normalise import normalise
from bot.triage.priority import Priority, rank
from bot.triage.query import QueryError
from bot.triage.relevance import SUGGESTED_REASON, features_of_post
from bot.triage.spread import CopyKind
from bot.triage.surge import SurgeAlert, SurgeCounts, parse_surge_ref, surge_ref

log = logging.getLogger(__name__)

WEIGHTS_REFRESH_S = 30.0
TRIM_EVERY_S = 60.0
SURGE_CHECK_S = 60.0
SURGE_TELLERS = 2  # surges whose notices are made at once (each may wait for its chart)
SURGE_STALE_S = 120.0  # unsent this long after the decision: its worker died; any may tell it
SURGE_SHUTDOWN_S = 2.0  # at shutdown, the notices being made get this long, then are left
# unsent (the next start tells them)

PostKey = tuple[int, int]
# The collector's thresholds once the worker is loaded: a young collection every 20,000
# allocations instead of 700, older ones rarer still. A batch allocates tens of thousands of
# short-lived objects (alerts, their fields, replies), and at the defaults each full
# collection walked every cache entry made since start: ~0.1-0.2 s a 1,000 posts at 10,000
# watches (bench/worker.py). Garbage cycles are still collected, just in larger sweeps.
GC_THRESHOLDS = (20_000, 50, 100)
YIELD_EVERY = 10  # posts matched between yields to the loop (see `_process`)


def settle_heap() -> None:
    """After loading: the models and the compiled index are hundreds of thousands of
    long-lived objects; freezing them saves every later collection from walking them again
    (measured ~120 µs per post at 10,000 watches), and `GC_THRESHOLDS` makes collections of
    the rest rarer. Process-wide (every role in a `vigil run` process benefits)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


class _Best(NamedTuple):
    """One analyst's alert on a post: their best-priority watch among those that matched.
    (`_Best` and `_Job` are tuples: one of each per alert, seven a post at 10,000 watches.)"""

    watch_ids: tuple[int, ...]
    priority: str
    reasons: tuple[str, ...]
    spans: tuple[tuple[int, int], ...]
    query: str
    held: bool = False  # every match of theirs judged noise with confidence by their model
    moved: bool = False  # their model moved the priority (or held it)


Best = dict[int, _Best]


@dataclass
class TriageStats:
    posts: int = 0
    alerts: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    batches: int = 0
    suggested: int = 0
    held: int = 0
    backfilled: int = 0  # old posts archived without alerts
    surges: int = 0
    by_language: dict[str, int] = field(default_factory=lambda: defaultdict(int))


@dataclass(slots=True)
class _Planned:
    post: Post
    result: TriageResult | None
    fingerprints: tuple[str, ...] = ()


class TriageWorker:
    def __init__(
        self,
        store: TriageStore,
        stream: StreamConsumer,
        engine: TriageEngine,
        watches: WatchRepository,
        *,
        channel_weights: Callable[[], Any] | None = None,
        stream_max_age_s: float = 3 * 86400,
        models: ModelSync | None = None,
        backfill_cutoff_s: float = 0.0,
        clock: Callable[[], float] = time.time,
        surge: SurgeTracker | None = None,
        shared: SharedWatchRepository | None = None,
        channel_names: Callable[[int], str] | None = None,
    ) -> None:
        self._surge = surge
        self._shared = shared
        self._channel_names = channel_names
        # Surges to tell (ref, alert), the refs queued or being told here, and the tellers.
        self._surge_queue: deque[tuple[str, SurgeAlert]] = deque()
        self._telling: set[str] = set()
        self._tellers: set[asyncio.Task[None]] = set()
        # Surge subjects: a watch counts as itself, one following a shared watch as -shared.
        self._subject: dict[int, int] = {}
        self._stream_max_age_s = stream_max_age_s
        self._backfill_cutoff_s = backfill_cutoff_s
        self._clock = clock
        self._models = models
        self._now = 0.0
        self._store = store
        self._engine = engine
        self._watches = watches
        self._stream = stream
        self._cursor = "0-0"
        self._ready = False  # the index holds every active watch
        self._loaded: dict[int, str] = {}  # watch id -> query, of the watches in the index
        self._owners: dict[int, int] = {}  # watch id -> owner
        self._load_weights = channel_weights
        self.stats = TriageStats()
        # The last batch's write, prepared (`_unsent`) or on its way (`_writing`); see `_process`.
        self._unsent: Coroutine[Any, Any, None] | None = None
        self._writing: asyncio.Task[None] | None = None

    @classmethod
    def over(
        cls,
        repos: Repositories,
        engine: TriageEngine,
        *,
        consumer: str,
        max_deliveries: int = 5,
        claim_idle_ms: int = 60_000,
        channel_weights: Callable[[], Any] | None = None,
        models: ModelSync | None = None,
        backfill_cutoff_s: float = 0.0,
        surge: SurgeTracker | None = None,
        channel_names: Callable[[int], str] | None = None,
    ) -> TriageWorker:
        """A worker over a repository bundle (what bot/app.py, tests and benchmarks use)."""
        stream = repos.posts_consumer(
            consumer, max_deliveries=max_deliveries, claim_idle_ms=claim_idle_ms
        )
        return cls(
            repos.triage_store(),
            stream,
            engine,
            repos.watches,
            channel_weights=channel_weights,
            models=models,
            backfill_cutoff_s=backfill_cutoff_s,
            surge=surge,
            shared=repos.shared,
            channel_names=channel_names,
        )

    @property
    def round_trips(self) -> int:
        """Redis round trips of the batch path so far (lookups, writes, alert appends)."""
        return self._store.round_trips

    # --- watches ----------------------------------------------------------------------------

    async def load_watches(self) -> int:
        """Build the index from every active watch (at start, or after missed changes)."""
        self._cursor = await self._watches.changes_cursor()
        for watch_id in list(self._loaded):
            self._engine.remove_watch(watch_id)
        self._loaded.clear()
        for watch in await self._watches.all_active():
            self._add(watch.id, watch.owner_id, watch.query, watch.priority, watch.shared)
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
                self._add(watch.id, watch.owner_id, watch.query, watch.priority, watch.shared)
        for gone in changed:  # removed watches
            self._remove(gone)
        log.info("triage: watch changes applied; %d active watches", len(self._loaded))
        return len(changed)

    def _add(
        self, watch_id: int, owner: int, query: str, priority: str, shared: int | None = None
    ) -> None:
        try:
            self._engine.add_watch(WatchSpec(watch_id, owner, query, priority))
            self._loaded[watch_id] = query
            self._owners[watch_id] = owner
            self._subject[watch_id] = -shared if shared else watch_id
        except QueryError as exc:  # stored before a parser change made it invalid
            log.warning("triage: watch %d no longer parses (%s); skipped", watch_id, exc)

    def _remove(self, watch_id: int) -> None:
        if self._loaded.pop(watch_id, None) is not None:
            self._engine.remove_watch(watch_id)
        self._owners.pop(watch_id, None)
        self._subject.pop(watch_id, None)

    # --- the loop ---------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, *, batch: int = 100, block_ms: int = 500) -> None:
        await self._stream.ensure_group()
        await self.load_watches()
        settle_heap()
        if self._surge is not None:
            await self.resend_surges(0.0)  # decided before a crash, never told
        last = {"weights": 0.0, "trim": 0.0, "sync": 0.0, "surge": time.monotonic()}
        try:
            while not stop.is_set():
                await self._housekeeping(last)
                # With a batch's write still to send, only look for more without waiting: the
                # write goes out beside the next batch's matching, or at once if none came.
                pending = self._unsent is not None
                entries = await self._stream.read(
                    count=batch, block_ms=None if pending else block_ms
                )
                # Sync after the read, not before: a watch added before a post was enqueued is
                # then always applied before that post is matched, however the two raced.
                await self.sync_watches()
                if entries:
                    await self._process(entries)
                else:
                    await self.flush()
        finally:
            try:
                await self.flush()
            finally:
                await self.surges_told(SURGE_SHUTDOWN_S)

    async def _housekeeping(self, last: dict[str, float]) -> None:
        """The periodic work of `run` (surge checks, model reloads, trims, channel weights)."""
        now = time.monotonic()
        if self._surge is not None and now - last["surge"] > SURGE_CHECK_S:
            await self.flush()  # the check reads the counts the batches wrote
            await self.check_surges()
            last["surge"] = time.monotonic()
        if self._models is not None and now - last["sync"] > SYNC_S:
            await self._models.refresh()
            last["sync"] = time.monotonic()
        if now - last["trim"] > TRIM_EVERY_S:
            # Acknowledged posts older than the window leave the stream (memory bounded by
            # age, not only by STREAM_MAXLEN); any worker may do it, it is idempotent.
            await self._stream.trim_acknowledged(self._stream_max_age_s)
            await self._store.archive.trim()
            last["trim"] = time.monotonic()
        if self._load_weights and now - last["weights"] > WEIGHTS_REFRESH_S:
            await self._load_weights()
            last["weights"] = time.monotonic()

    async def drain(self, *, batch: int = 100, surges: bool = True) -> int:
        """Process everything currently on the stream, then return (demo, tests, backtests).
        With `surges`, the surge check `run` makes every `SURGE_CHECK_S` is made once at the
        end (bench/worker.py times it apart: it costs per watch touched, not per post)."""
        await self._stream.ensure_group()
        if self._models is not None:
            await self._models.refresh(force=True)
        done = 0
        try:
            while entries := await self._stream.read(count=batch, block_ms=None):
                await self.sync_watches()
                await self._process(entries)
                done += len(entries)
        finally:
            await self.flush()
        if surges and self._surge is not None:
            await self.check_surges()
            await self.surges_told()
        return done

    async def process(self, entries: list[StreamEntry]) -> None:
        """Triage one batch; when it returns, its alerts are appended and its entries acked."""
        await self._process(entries)
        await self.flush()

    async def flush(self) -> None:
        """Send the last batch's write if it is still waiting, and wait until it is in Redis
        and its entries are acknowledged (its errors are raised here)."""
        self._start_write()
        task, self._writing = self._writing, None
        if task is not None:
            await task

    def _start_write(self) -> None:
        if self._unsent is not None:
            self._writing = asyncio.create_task(self._unsent)
            self._unsent = None

    async def _process(self, entries: list[StreamEntry]) -> None:
        """Triage one batch and leave its write unsent: the next batch sends it just before
        its own matching (pure CPU), so Redis runs the write while this process matches, and
        waits for it before its own lookup. Nothing is acknowledged before it is written."""
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
        self.stats.batches += 1
        self._start_write()
        planned = []
        for i, (_e, post) in enumerate(posts):
            if i % YIELD_EVERY == 0:
                # Let the write go out: a batch's write is hundreds of kilobytes, more than the
                # socket takes at once, and the rest is sent only while the loop runs. Without
                # these yields it went out after the matching and the lookup below waited
                # for Redis to run it (~0.3 s a 1,000 posts at 10,000 watches).
                await asyncio.sleep(0)
            planned.append(self._triage(post))
        await self.flush()  # this batch's lookups must see the last batch's writes
        followed = sorted({_key(p.post) for p in planned if p.post.event != "new"})
        fingerprints = sorted({f for p in planned for f in p.fingerprints})
        found = await self._store.lookup(followed, fingerprints)
        batch = _Batch(found.alerted, found.story_owners)
        self._now = self._clock()
        for item in planned:
            self._plan(item, found.archived, batch)
        origins = await self._store.origins(sorted(batch.origins - batch.first_here))
        emissions = [self._emission(e, batch, origins.alerted, origins.copies) for e in batch.jobs]
        self._unsent = self._write(batch, [e for e in emissions if e is not None], posts)

    async def _write(
        self, batch: _Batch, emissions: list[Emission], posts: list[tuple[StreamEntry, Post]]
    ) -> None:
        sent = await self._store.record(
            batch.archive,
            batch.claims,
            batch.copies,
            moved=batch.moved,
            suggested=batch.suggested,
            surge=self._surge,
            counts=batch.surge,
            spread=batch.spread,
            emissions=emissions,
        )
        if self._models is not None:
            self._models.count_suggested(batch.suggested)
        self.stats.alerts += sum(sent)
        await self._stream.ack(*(e.id for e, _p in posts))

    # --- one post, in memory ----------------------------------------------------------------

    def _triage(self, post: Post) -> _Planned:
        if post.event == "delete":
            return _Planned(post, None)
        result = self._engine.triage(post)
        fingerprints: tuple[str, ...] = ()
        if result.matches and post.event == "new" and not _forward_origin(post):
            tokens = [t.text for t in (result.normalised or normalise(post.text)).tokens]
            fingerprints = tuple(story_fingerprints(tokens))
        return _Planned(post, result, fingerprints)

    def _plan(self, item: _Planned, archived: dict[PostKey, Post], batch: _Batch) -> None:
        """Decide what one post becomes, given what Redis and the batch so far hold."""
        post = item.post
        key = _key(post)
        self.stats.posts += 1
        before = batch.archived_here.get(key) or archived.get(key)
        if post.event == "delete":
            if before is None:
                return  # deletion of a post we never saw: nothing to keep or tell
            post = replace(before, event="delete", edit_date=post.edit_date)
            # The kept text is triaged again, so the notice shows its language, its matched
            # words and the watch, like the alert it follows up.
            kept = self._engine.triage(before)
            batch.keep(post)
            batch.follow_up(post, "delete", _best(kept, self._loaded), kept, only_alerted=True)
            return
        result = item.result
        assert result is not None
        batch.keep(post)
        if self._surge is not None and result.matches and post.event == "new":
            subject = self._subject
            subjects = {subject.get(m.watch_id, m.watch_id) for m in result.matches}
            batch.surge.add_post(post.date.timestamp(), post.channel_id, post.message_id, subjects)
        self.stats.by_language[result.language.code] += 1
        best = _best(result, self._loaded)
        old = self._is_backfill(post)
        if post.event == "edit":
            batch.follow_up(
                post,
                "edit",
                best,
                result,
                only_alerted=old and not post.alert_old,
                previous=before.text if before is not None else None,
            )
            return
        if old and not post.alert_old:
            self.stats.backfilled += 1
            return
        if not best:
            if not old:
                self._suggest(post, result, batch)
            return
        first = batch.story_origin(post, item.fingerprints)
        marker = (f"📼 from the archive, {post.date:%d %b %Y}",) if old else ()
        # Seven alerts a post on average at 10,000 watches: the loop is kept to the AlertJob.
        code, confidence = result.language.code, result.language.confidence
        jobs, moved = batch.jobs, batch.moved
        alerted = batch.alerted.setdefault(key, set())
        held = 0
        for owner, b in best.items():
            job = AlertJob(
                owner,
                post,
                b.watch_ids[0],
                b.query,
                b.priority,
                marker + b.reasons if marker else b.reasons,
                b.spans,
                code,
                confidence,
                held=b.held,
            )
            jobs.append(_Job(job, EmitMode.FIRST, first))
            alerted.add(owner)
            if b.moved:
                moved[owner] = moved.get(owner, 0) + 1
            held += b.held
        self.stats.held += held

    async def check_surges(self) -> int:
        """Decide surges for the watches the batches touched and queue them to be told (the
        notices are made and appended beside the batches: see `_tell`); also queue those left
        unsent by a worker gone for `SURGE_STALE_S`. Returns the surges decided."""
        if self._surge is None:
            return 0
        alerts = await self._surge.check(self._clock())
        # The check noted them unsent with their records (one MULTI): a crash from here on
        # leaves them to the next start.
        for alert in alerts:
            self._queue_surge(surge_ref(alert.watch_id, alert.end_hour), alert)
        await self.resend_surges(SURGE_STALE_S)
        return len(alerts)

    async def resend_surges(self, older_than_s: float) -> int:
        """Queue the surges decided more than `older_than_s` ago and never told (0 at start:
        every one). The telling script makes each told once, whoever else tries."""
        if self._surge is None:
            return 0
        outbox = self._store.outbox
        queued = 0
        for ref in await outbox.surges_unsent(time.time() - older_than_s):
            if ref in self._telling:
                continue
            key = parse_surge_ref(ref)
            found = await self._surge.repo.surge_event(*key) if key else None
            if found is None:  # its record expired: nothing left to tell it with
                await outbox.tell_surge(ref, [])
                continue
            self._queue_surge(ref, found[0])
            queued += 1
        return queued

    def _queue_surge(self, ref: str, alert: SurgeAlert) -> None:
        if ref in self._telling:
            return
        self._telling.add(ref)
        self._surge_queue.append((ref, alert))
        if len(self._tellers) < SURGE_TELLERS:
            task = asyncio.create_task(self._teller())
            self._tellers.add(task)
            task.add_done_callback(self._tellers.discard)

    async def _teller(self) -> None:
        while self._surge_queue:
            ref, alert = self._surge_queue.popleft()
            try:
                await self._tell(ref, alert)
            except Exception:  # left unsent: the next check's sweep, or a restart, retells it
                log.exception("triage: surge %s not told; it stays unsent", ref)
            finally:
                self._telling.discard(ref)

    async def _tell(self, ref: str, alert: SurgeAlert) -> None:
        """Make one surge's notices (text, chart, buttons; none for watches whose analyst
        turned surge alerts off) and append them, marking the surge told."""
        assert self._surge is not None
        subject = alert.watch_id
        watch_ids = [w for w, s in self._subject.items() if s == subject]
        recipients = [(w, self._owners[w]) for w in watch_ids if w in self._owners]
        query = self._loaded.get(watch_ids[0], "") if watch_ids else ""
        label = surge_alerts.surge_label(subject)
        if subject < 0 and self._shared is not None and recipients:
            shared = await self._shared.get(-subject)
            if shared is not None:  # as /shared shows it: SN, its name, its query
                label = surge_alerts.surge_label(subject, shared.name)
                query = shared.canonical
        names = self._channel_names or (lambda c: str(c))
        notices = (
            await surge_alerts.surge_notices(
                alert, recipients, query, names, self._surge.repo, label=label
            )
            if recipients
            else []
        )
        raise_if_cancelled()  # stopped meanwhile (redis-py can swallow it): left unsent
        if await self._store.outbox.tell_surge(ref, notices) and notices:
            self.stats.surges += 1

    async def surges_told(self, timeout_s: float | None = None) -> None:
        """Wait until every queued surge is told; after `timeout_s`, cancel the rest (they
        stay unsent in Redis, told at the next start)."""
        while self._tellers:
            tellers = set(self._tellers)
            _done, pending = await asyncio.wait(tellers, timeout=timeout_s)
            if pending:
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
                self._surge_queue.clear()
                self._telling.clear()
                return

    def _is_backfill(self, post: Post) -> bool:
        """Dated (first published) before the cutoff, as of this batch."""
        cutoff = self._backfill_cutoff_s
        return cutoff > 0 and post.date.timestamp() < self._now - cutoff

    def _suggest(self, post: Post, result: TriageResult, batch: _Batch) -> None:
        """A new post no watch matched: the desk model's suggestion, for those who opted in."""
        sync = self._models
        if sync is None or sync.desk is None or not sync.suggest_to or post.event != "new":
            return
        wanting = [a for a in sync.suggest_to if sync.may_suggest(a, batch.suggested.get(a, 0))]
        if not wanting:
            return
        features = features_of_post(post, result.language.code, result.normalised)
        if not sync.desk.suggest(features):
            return
        for analyst in wanting:
            job = AlertJob(
                analyst_id=analyst,
                post=post,
                watch_id=0,
                watch_query="",
                priority=Priority.NORMAL,
                reasons=(SUGGESTED_REASON,),
                spans=(),
                language=result.language.code,
                language_confidence=result.language.confidence,
                origin="suggested",
            )
            batch.jobs.append(_Job(job, EmitMode.FIRST, None))
            batch.alerted.setdefault(_key(post), set()).add(analyst)
            batch.suggested[analyst] = batch.suggested.get(analyst, 0) + 1
            self.stats.suggested += 1

    def _emission(
        self,
        planned: _Job,
        batch: _Batch,
        alerted: dict[PostKey, set[int]],
        copies: dict[PostKey, set[str]],
    ) -> Emission | None:
        job, first = planned.job, planned.first
        ledger = (job.post.channel_id, job.post.message_id, job.post.version)
        if first is None:
            return Emission(job, planned.mode, ledger)
        owner = job.analyst_id
        if owner not in alerted.get(first, set()) and owner not in batch.alerted.get(first, ()):
            # This analyst never had the first post: the copy is their first alert.
            return Emission(job, planned.mode, ledger)
        self.stats.duplicates += 1
        links = copies.get(first, set()) | batch.links.get(first, set())
        origin = Post(channel_id=first[0], message_id=first[1], date=job.post.date)
        also = AlertJob(
            analyst_id=owner,
            post=origin,
            watch_id=job.watch_id,
            watch_query=job.watch_query,
            priority=job.priority,
            reasons=(),
            spans=(),
            language="und",
            language_confidence=0.0,
            kind="also",
            also_in=tuple(sorted(links)),
        )
        return Emission(also, EmitMode.FIRST, ledger)


class _Job(NamedTuple):
    job: AlertJob
    mode: EmitMode
    first: PostKey | None  # the story's first post when this post is a copy


class _Batch:
    """What one batch decides, in memory, before it is written."""

    def __init__(self, alerted: dict[PostKey, set[int]], owners: dict[str, str]) -> None:
        self.alerted = {k: set(v) for k, v in alerted.items()}
        self.owners = dict(owners)  # fingerprint -> first post's ref (Redis, then this batch)
        self.archive: list[Post] = []
        self.archived_here: dict[PostKey, Post] = {}
        self.claims: list[tuple[tuple[str, ...], str]] = []
        self.copies: list[tuple[PostKey, str]] = []
        self.links: dict[PostKey, set[str]] = defaultdict(set)
        self.origins: set[PostKey] = set()
        self.first_here: set[PostKey] = set()  # origins that are posts of this very batch
        self.jobs: list[_Job] = []
        self.moved: dict[int, int] = {}  # analyst -> alerts their model moved
        self.surge = SurgeCounts()
        self.spread: list[tuple[PostKey, Post, CopyKind]] = []  # (story's first, copy, kind)
        self.suggested: dict[int, int] = {}  # analyst -> suggestions

    def keep(self, post: Post) -> None:
        self.archive.append(post)
        self.archived_here[_key(post)] = post

    def follow_up(
        self,
        post: Post,
        kind: str,
        best: Best,
        result: TriageResult,
        *,
        only_alerted: bool = False,
        previous: str | None = None,
    ) -> None:
        """Edits and deletions: everyone alerted on the post hears of it; an edit that now
        matches alerts its new analysts too (a deletion only those alerted). Watch 0 stands for
        "no longer matches any of your watches"."""
        made = self.alerted.get(_key(post), set())
        recipients = made | (set() if only_alerted else set(best))
        for owner in sorted(recipients):
            match = best.get(owner)
            job = AlertJob(
                analyst_id=owner,
                post=post,
                watch_id=match.watch_ids[0] if match else 0,
                watch_query=match.query if match else "",
                priority=match.priority if match else Priority.NORMAL,
                reasons=match.reasons if match else (),
                spans=match.spans if match else (),
                language=result.language.code,
                language_confidence=result.language.confidence,
                kind=kind,
                previous=previous,
            )
            self.jobs.append(_Job(job, EmitMode.NEWER, None))
            self.alerted.setdefault(_key(post), set()).add(owner)

    def story_origin(self, post: Post, fingerprints: tuple[str, ...]) -> PostKey | None:
        """The first post of this story in another channel, if any; records this one."""
        origin = _forward_origin(post)
        if origin is not None:
            self._copy(origin, post)
            return origin
        if not fingerprints:
            return None
        me = post_ref(post.channel_id, post.message_id)
        votes: dict[str, int] = defaultdict(int)
        for f in fingerprints:
            owner = self.owners.get(f)
            if owner and owner != me:
                votes[owner] += 1
        self.claims.append((fingerprints, me))
        for f in fingerprints:
            self.owners.setdefault(f, me)
        need = required_overlap(list(fingerprints))
        for owner, n in sorted(votes.items(), key=lambda kv: -kv[1]):
            first = parse_ref(owner)
            if first is not None and n >= need and first[0] != post.channel_id:
                self._copy(first, post)
                return first
        return None

    def _copy(self, first: PostKey, post: Post) -> None:
        self.spread.append((first, post, "forward" if _forward_origin(post) else "copy"))
        self.copies.append((first, post.link))
        self.links[first].add(post.link)
        self.origins.add(first)
        if first in self.archived_here:
            self.first_here.add(first)


def _key(post: Post) -> PostKey:
    return post.channel_id, post.message_id


def _forward_origin(post: Post) -> PostKey | None:
    fwd = post.forward
    if fwd is not None and fwd.channel_id is not None and fwd.message_id is not None:
        return fwd.channel_id, fwd.message_id
    return None


def _best(result: TriageResult, queries: dict[int, str]) -> Best:
    """One alert per analyst: the highest priority among their matching watches, all spans."""
    grouped: dict[int, list[ScoredMatch]] = {}
    for match in result.matches:
        grouped.setdefault(match.owner_id, []).append(match)
    best: Best = {}
    for owner, matches in grouped.items():
        if len(matches) == 1:  # most analysts: one watch matched (spans sorted, disjoint)
            top = matches[0]
            best[owner] = _Best(
                (top.watch_id,),
                top.priority,
                top.reasons,
                top.spans,
                queries.get(top.watch_id, ""),
                top.held,
                top.learned,
            )
            continue
        matches.sort(key=lambda m: (-rank(m.priority), m.watch_id))
        top = matches[0]
        spans = _merge([s for m in matches for s in m.spans])
        best[owner] = _Best(
            tuple(m.watch_id for m in matches),
            top.priority,
            tuple(top.reasons),
            spans,
            queries.get(top.watch_id, ""),
            held=all(m.held for m in matches),
            moved=any(m.learned for m in matches),
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
