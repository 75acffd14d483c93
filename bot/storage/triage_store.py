"""What the triage worker reads and writes for one batch, in a constant number of round trips.

1. `lookup`: the archived versions of edited and deleted posts, who was alerted on them, and the
   owners of every story fingerprint in the batch (one pipeline).
2. `origins`: for the batch's story origins, who was alerted on them and their copies so far
   (one pipeline, only when the batch has copies of a story).
3. `record`: archive the posts, claim fingerprints, add copy links, count what the learned
   models moved and the suggestions made, and append the alerts, ledger-checked, after the
   archive writes they reference (one script call per 200 alerts): one pipeline.
The worker decides everything in between in memory, so two copies of a story in one batch are
one story, and the stream entries are acknowledged only after step 3.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from bot.models import Post
from bot.storage import keys
from bot.storage.archive import ArchiveRepository, PostKey, _parse
from bot.storage.campaigns import SurgeTracker
from bot.storage.learning import LearningRepository
from bot.storage.outbox import AlertOutbox, Emission
from bot.storage.stories import StoryRepository
from bot.triage.spread import CopyKind
from bot.triage.surge import SurgeCounts


@dataclass(frozen=True, slots=True)
class BatchLookup:
    archived: dict[PostKey, Post]
    alerted: dict[PostKey, set[int]]
    story_owners: dict[str, str]


@dataclass(frozen=True, slots=True)
class OriginLookup:
    alerted: dict[PostKey, set[int]]
    copies: dict[PostKey, set[str]]


class TriageStore:
    def __init__(
        self,
        redis: aioredis.Redis,
        archive: ArchiveRepository,
        stories: StoryRepository,
        outbox: AlertOutbox,
        learning: LearningRepository | None = None,
    ) -> None:
        self._redis = redis
        self.learning = learning
        self.archive = archive
        self.stories = stories
        self.outbox = outbox
        self.round_trips = 0  # for bench/worker.py

    async def lookup(
        self, followed: Sequence[PostKey], fingerprints: Sequence[str]
    ) -> BatchLookup:
        if not followed and not fingerprints:
            return BatchLookup({}, {}, {})
        self.round_trips += 1
        async with self._redis.pipeline(transaction=False) as pipe:
            if followed:
                pipe.mget([keys.archive_post(c, m) for c, m in followed])
            self.outbox.alerted_commands(pipe, followed)
            if fingerprints:
                pipe.mget([keys.story(f) for f in fingerprints])
            replies: list[Any] = await pipe.execute()
        archived: dict[PostKey, Post] = {}
        if followed:
            raw = replies.pop(0)
            archived = {k: p for k, r in zip(followed, raw, strict=True) if (p := _parse(r, k))}
        alerted = {k: {int(a) for a in replies[i]} for i, k in enumerate(followed)}
        owners: dict[str, str] = {}
        if fingerprints:
            raw = replies[len(followed)]
            owners = {f: str(r) for f, r in zip(fingerprints, raw, strict=True) if r}
        return BatchLookup(archived, alerted, owners)

    async def origins(self, firsts: Sequence[PostKey]) -> OriginLookup:
        if not firsts:
            return OriginLookup({}, {})
        self.round_trips += 1
        async with self._redis.pipeline(transaction=False) as pipe:
            self.outbox.alerted_commands(pipe, firsts)
            for first in firsts:
                pipe.smembers(keys.story_also(*first))
            replies: list[Any] = await pipe.execute()
        n = len(firsts)
        return OriginLookup(
            {f: {int(a) for a in replies[i]} for i, f in enumerate(firsts)},
            {f: {str(x) for x in replies[n + i]} for i, f in enumerate(firsts)},
        )

    async def record(
        self,
        archive: Iterable[Post],
        claims: Iterable[tuple[Sequence[str], str]],
        copies: Iterable[tuple[PostKey, str]],
        *,
        moved: Mapping[int, int] | None = None,
        suggested: Mapping[int, int] | None = None,
        now: float | None = None,
        surge: SurgeTracker | None = None,
        counts: SurgeCounts | None = None,
        spread: Sequence[tuple[PostKey, Post, CopyKind]] = (),
        emissions: Sequence[Emission] = (),
    ) -> list[bool]:
        """Write the batch and append its alerts (after the archive writes they reference), in
        one round trip. Returns, per emission, whether it was appended (its ledger allowed)."""
        self.round_trips += 1
        archive = list(archive)
        async with self._redis.pipeline(transaction=False) as pipe:
            self.archive.put_commands(pipe, archive)
            self.stories.claim_commands(pipe, claims)
            for first, link in copies:
                self.stories.copy_commands(pipe, first, link)
            if surge is not None:
                # The batch's surge counts, story spread and forward edges: same round trip.
                if counts:
                    surge.count_commands(pipe, counts, now=now)
                for first, post, kind in spread:
                    surge.repo.spread_commands(pipe, first, post, kind=kind)
                surge.repo.forward_commands(pipe, [p for p in archive if p.event == "new"])
            if self.learning is not None and (moved or suggested):
                self.learning.counter_commands(
                    pipe, moved or {}, suggested or {}, now if now is not None else time.time()
                )
            calls = self.outbox.emit_commands(pipe, emissions) if emissions else 0
            replies: list[Any] = await pipe.execute()
        return self.outbox.emitted(replies[len(replies) - calls :]) if calls else []
