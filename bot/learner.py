"""The learner: analysts' 👍 / 👎 and 🔕 become the models every triage worker scores with.

Runs in the triage role, beside the triage worker (it needs the same language model and
normaliser). It reads the feedback stream in consumer group `learners` (so with several triage
processes each event is handled once, and a crashed learner's events are claimed by another),
and for each analyst an event names it rebuilds that analyst's model from the durable record:

1. A verdict event: the verdict is re-read from the feedback hash (what the buttons show), not
   taken from the event, so events redelivered late or out of order after a crash cannot undo
   a newer verdict, and a verdict given twice counts once. The post comes from the archive and
   is kept with the verdict (`LearningRepository.put_example`), with its language.
2. The analyst's examples and channel mutes (a mute is a noise verdict on the channel) train a
   `RelevanceClassifier` (bot/triage/relevance.py): a full retrain of at most a few hundred
   examples, milliseconds to a few hundred ms.
3. The model is published in Redis with its summary (counts, strongest words) and the models'
   version is bumped; `/settings learning off` publishes no model (verdicts are kept), reset
   drops everything. Only then are the events acknowledged.

`ModelSync` is the triage worker's side: it polls the version (one GET every `SYNC_S`), reloads
changed models into its `LearnedRelevance`, and keeps the desk model and who wants suggestions.

The desk model (team-wide: every analyst's relevant posts against their noise posts and a
sample of archived posts, presumed noise) is retrained by one learner at a time every
`DESK_EVERY_S` when verdicts changed; its threshold is calibrated on that sample, scaled to the
window's real volume, for `suggest_per_day` suggestions a day.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import math
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from bot.models import Post
from bot.storage.archive import ArchiveRepository
from bot.storage.feedback import FeedbackRepository
from bot.storage.learning import LearningRepository, ModelSummary, StoredExample
from bot.storage.mutes import MuteRepository
from bot.storage.streams import StreamConsumer, StreamEntry
from bot.storage.users import UserRepository
from bot.triage.relevance import (
    COLD_START,
    Background,
    DeskModel,
    Example,
    LearnedRelevance,
    ModelFormatError,
    PostFeatures,
    RelevanceClassifier,
    VerdictSet,
    features_of_post,
)

log = logging.getLogger(__name__)

SYNC_S = 2.0  # a verdict is in use by every triage worker within about this long
DESK_EVERY_S = 600.0
DESK_SAMPLE = 600  # archived posts: the desk model's calibration sample
# The desk model trains on at most this many of the newest posts of each kind (relevant, noise,
# unmatched): its training peak grows with the examples (~40 MB at 3 x 300, ~120 MB at 2,600
# measured), and the service must fit in 300 MB.
DESK_MAX_EACH = 300
DESK_WINDOW_S = 3 * 86400
BACKGROUND_EVERY_S = 3600.0
STRONGEST_WORDS = 5


@dataclass
class LearnerStats:
    events: int = 0
    retrained: int = 0
    missing_posts: int = 0  # verdicts on posts no longer archived (kept, not learned)
    malformed: int = 0
    desk_trained: int = 0


def release_memory() -> None:
    """Give the freed heap back to the system after a training (glibc only; elsewhere a no-op).

    A training allocates and frees tens of megabytes of numpy temporaries; glibc keeps freed
    heap pages mapped (its mmap threshold rises after the first large free), so without this
    the process's RSS stays at the training's peak for good (measured: +100 MB retained)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _load_libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim  # noqa: B018 - musl has no malloc_trim: AttributeError
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _load_libc()


class Learner:
    def __init__(
        self,
        stream: StreamConsumer,
        learning: LearningRepository,
        feedback: FeedbackRepository,
        archive: ArchiveRepository,
        mutes: MuteRepository,
        users: UserRepository,
        detect: Callable[[str], str],
        *,
        suggest_per_day: int = 3,
        desk_every_s: float = DESK_EVERY_S,
        cold_start: int = COLD_START,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._cold_start = cold_start
        self._stream = stream
        self._learning = learning
        self._feedback = feedback
        self._archive = archive
        self._mutes = mutes
        self._users = users
        self._detect = detect  # text -> language code
        self._suggest_per_day = suggest_per_day
        self._desk_every_s = desk_every_s
        self._clock = clock
        self._background: Background | None = None
        self._background_at = -math.inf
        self._desk_at = -math.inf
        self._desk_dirty = True  # verdicts changed since the desk model was trained
        self.stats = LearnerStats()

    async def run(self, stop: asyncio.Event, *, block_ms: int = 1000) -> None:
        await self._stream.ensure_group()
        while not stop.is_set():
            entries = await self._stream.read(count=100, block_ms=block_ms)
            if entries:
                await self.process(entries)
            if self._clock() - self._desk_at > self._desk_every_s and self._desk_dirty:
                await self.train_desk()

    async def drain(self) -> int:
        """Handle every event on the stream now (tests, the demo)."""
        await self._stream.ensure_group()
        done = 0
        while entries := await self._stream.read(count=100, block_ms=None):
            await self.process(entries)
            done += len(entries)
        return done

    async def process(self, entries: list[StreamEntry]) -> set[int]:
        """Apply a batch of events; returns the analysts whose models were rebuilt."""
        touched: dict[int, None] = {}
        for entry in entries:
            self.stats.events += 1
            fields = entry.fields
            try:
                analyst = int(fields["analyst"])
                kind = fields["kind"]
            except (KeyError, ValueError):
                self.stats.malformed += 1
                await self._stream.dead_letter(entry, "malformed feedback event")
                continue
            if kind == "verdict":
                if not await self._apply_verdict(analyst, fields):
                    self.stats.malformed += 1
                    await self._stream.dead_letter(entry, "malformed verdict event")
                    continue
            elif kind == "reset":
                await self._learning.clear(analyst)
            elif kind not in ("mute", "learning"):
                self.stats.malformed += 1
                await self._stream.dead_letter(entry, f"unknown feedback event {kind!r}")
                continue
            touched[analyst] = None
        for analyst in touched:
            await self.retrain(analyst)
        if touched:
            self._desk_dirty = True
        await self._stream.ack(*(e.id for e in entries))
        return set(touched)

    async def _apply_verdict(self, analyst: int, fields: dict[str, str]) -> bool:
        try:
            channel, message = int(fields["channel"]), int(fields["message"])
            watch = int(fields.get("watch", "0"))
        except (KeyError, ValueError):
            return False
        verdict = await self._feedback.get(analyst, channel, message, watch)
        if verdict not in ("relevant", "noise"):  # reset since, or never stored
            await self._learning.forget_example(analyst, channel, message)
            return True
        post = await self._archive.get(channel, message)
        if post is None:
            self.stats.missing_posts += 1
            log.info("learner: post %s:%s of a verdict is no longer archived", channel, message)
            return True
        language = self._detect(post.text)
        example = StoredExample(channel, message, verdict, watch, language, post, self._clock())
        await self._learning.put_example(analyst, example)
        return True

    async def retrain(self, analyst_id: int) -> ModelSummary | None:
        """Rebuild and publish one analyst's model from their examples and mutes."""
        person = await self._users.get(analyst_id)
        examples = await self._learning.examples(analyst_id)
        if (
            person is None
            or not person.is_analyst
            or (not examples and not await self._mutes.active(analyst_id))
        ):
            await self._learning.clear(analyst_id)
            return None
        model = await self._train(analyst_id, examples)
        relevant, noise = model.verdict_count
        up, down = model.strongest_words(STRONGEST_WORDS)
        summary = ModelSummary(
            relevant, noise, up, down, self._clock(), person.learning, self._cold_start
        )
        await self._learning.publish(
            analyst_id, model.to_bytes() if person.learning else None, summary
        )
        self.stats.retrained += 1
        return summary

    async def _train(self, analyst_id: int, examples: list[StoredExample]) -> RelevanceClassifier:
        verdicts: VerdictSet[tuple[int, int]] = VerdictSet()
        for e in examples:
            features = features_of_post(e.post, e.language)
            verdicts.record(
                (e.channel_id, e.message_id),
                Example(features, e.verdict == "relevant", e.watch_id or None),
            )
        for target in await self._mutes.active(analyst_id):
            kind, _, ref = target.partition(":")
            if kind == "channel" and ref.lstrip("-").isdigit():
                verdicts.mute(int(ref))
        background = await self._background_now()
        model = await asyncio.to_thread(verdicts.train, background)
        release_memory()
        return model

    async def _background_now(self, sample: list[PostFeatures] | None = None) -> Background | None:
        """The IDF background of recent archived posts, refreshed hourly (from `sample`, the
        desk model's own sample of the archive, when the caller has one)."""
        if self._clock() - self._background_at < BACKGROUND_EVERY_S:
            return self._background
        if sample is None:
            since = self._clock() - DESK_WINDOW_S
            posts, _total = await self._archive.sample(since, DESK_SAMPLE)
            sample = self._features(posts)
        self._background = Background.from_features(sample) if sample else None
        self._background_at = self._clock()
        return self._background

    def _features(self, posts: Iterable[Post]) -> list[PostFeatures]:
        return [features_of_post(p, self._detect(p.text)) for p in posts]

    async def train_desk(self) -> DeskModel | None:
        """Retrain the desk model (if no other learner is doing it) and publish it."""
        self._desk_at = self._clock()
        if not await self._learning.desk_lock("learner", int(self._desk_every_s)):
            return None
        self._desk_dirty = False
        judged: dict[tuple[int, int], StoredExample] = {}
        for person in await self._users.analysts():
            for e in await self._learning.examples(person.id):
                judged[(e.channel_id, e.message_id)] = e
        newest = sorted(judged.values(), key=lambda e: -e.at)
        relevant, noise = (
            [
                features_of_post(e.post, e.language)
                for e in [e for e in newest if e.verdict == kind][:DESK_MAX_EACH]
            ]
            for kind in ("relevant", "noise")
        )
        if not relevant:
            return None
        now = self._clock()
        posts, total = await self._archive.sample(now - DESK_WINDOW_S, DESK_SAMPLE)
        archived = self._features(posts)
        sample = [
            f
            for p, f in zip(posts, archived, strict=True)
            if (p.channel_id, p.message_id) not in judged
        ]
        background = await self._background_now(archived)
        desk = await asyncio.to_thread(
            DeskModel.train, relevant, noise, sample[:DESK_MAX_EACH], background=background
        )
        release_memory()
        # The sample stands for `total` posts: scale the days so the threshold lets through
        # `suggest_per_day` a day at the window's real volume, not the sample's.
        days = DESK_WINDOW_S / 86400 * (len(sample) / total if total else 1.0)
        desk = desk.calibrated(sample, days=days, per_day=self._suggest_per_day)
        meta = {
            "trained_at": round(now, 3),
            "relevant": len(relevant),
            "noise": len(noise),
            "unmatched": len(sample),
            "window_posts": total,
            "threshold": None if math.isinf(desk.threshold) else round(desk.threshold, 4),
        }
        await self._learning.publish_desk(desk.to_bytes(), meta)
        self.stats.desk_trained += 1
        log.info("learner: desk model trained on %d relevant, %d noise", len(relevant), len(noise))
        return desk


class ModelSync:
    """Keeps a triage worker's models in step with Redis (see the module docstring)."""

    def __init__(
        self,
        learning: LearningRepository,
        users: UserRepository,
        relevance: LearnedRelevance,
        *,
        suggest_per_day: int = 3,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._learning = learning
        self._users = users
        self.relevance = relevance
        self.suggest_per_day = suggest_per_day
        self._clock = clock
        self._version = -1
        self._raw: dict[int, bytes] = {}
        self.desk: DeskModel | None = None
        self.suggest_to: tuple[int, ...] = ()  # analysts who opted in (/suggest on)
        self.suggested_today: dict[int, int] = {}
        self._people_at = -math.inf
        self._analysts = 0  # the bank reserves a model column for each

    async def refresh(self, *, force: bool = False) -> bool:
        """Reload what changed; True when the models did."""
        if force or self._clock() - self._people_at > 30.0:
            people = await self._users.analysts()
            self.suggest_to = tuple(p.id for p in people if p.suggest and p.active)
            self._analysts = len(people)
            self.suggested_today = await self._learning.suggested_today(self._clock())
            self._people_at = self._clock()
        if not force and await self._learning.version() == self._version:
            return False
        version, raw, desk = await self._learning.models()
        models = dict(self.relevance.models)
        for analyst in set(models) - set(raw):
            models.pop(analyst)
        for analyst, data in raw.items():
            if self._raw.get(analyst) == data and analyst in models:
                continue
            try:
                models[analyst] = RelevanceClassifier.from_bytes(data)
            except ModelFormatError as exc:
                log.warning("triage: model of %s unreadable (%s); not used", analyst, exc)
                models.pop(analyst, None)
        self._raw = raw
        self.relevance.replace(models, capacity=self._analysts)
        self.desk = None
        if desk is not None:
            with contextlib.suppress(ModelFormatError):
                self.desk = DeskModel.from_bytes(desk)
        self._version = version
        return True

    def may_suggest(self, analyst_id: int, planned: int) -> bool:
        return self.suggested_today.get(analyst_id, 0) + planned < self.suggest_per_day

    def count_suggested(self, counts: dict[int, int]) -> None:
        for analyst, n in counts.items():
            self.suggested_today[analyst] = self.suggested_today.get(analyst, 0) + n
