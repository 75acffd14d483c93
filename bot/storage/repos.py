"""Every repository, built once per process over one Redis client (`Repositories.build`).

`bot/app.py` builds the bundle; handlers and workers receive repositories from it, never the
Redis client. What each owns:

- `users`: analysts, admins, access requests, settings; `watches`: watches and their change
  feed; `shared`: team-wide watches and subscriptions; `channels`: the channel registry and
  reconciler checkpoints; `mutes`; `feedback`: 👍 / 👎 verdicts (the feedback stream's
  producer); `learning`: the learned models, their examples and counters; `audit`: the log.
- `posts`: the posts stream's idempotent producer; `archive`: posts kept for `/test`, digests
  and follow-ups; `stories`: fingerprints and copies; `outbox`: the triage worker's way onto
  the alerts stream (alerts with their ledger); `posts_consumer` / `alerts_consumer`: the
  streams' consumers.
- delivery: `ledger`: what was sent to whom (and each analyst's delivered log); `held`: alerts
  held for quiet hours, digests and blocked analysts; `notices`: notices and released alerts
  onto the alerts stream; `rates`: the send-rate limiter's state; `dead_letters`: listing and
  retry; `health`: heartbeats, flood waits, watcher accounts and counters, `vigil status`;
  `handler_errors`: the bot handlers' error counts.
- the watcher: `locks` (one process per session), `join_pace`, `checkpoints` (reconciler),
  `alerted` (the alerted posts the reconciler looks for again, for deletions while down).
- `desks`: the groups and channels the bot is in, and the watches routed to them.
- `searches`: /test and /search asked of the triage role (the request stream, its replies,
  the per-analyst limits; bot/storage/requests.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from bot.storage import keys
from bot.storage.archive import ArchiveRepository
from bot.storage.audit import AuditLog
from bot.storage.campaigns import CampaignRepository
from bot.storage.channels import ChannelRepository
from bot.storage.deadletters import DeadLetters
from bot.storage.deletions import AlertedPosts
from bot.storage.desks import DeskRepository
from bot.storage.errors import HandlerErrors
from bot.storage.feedback import FeedbackRepository
from bot.storage.health import HealthRepository
from bot.storage.held import HeldRepository
from bot.storage.learning import LearningRepository
from bot.storage.ledger import DeliveryLedger
from bot.storage.mutes import MuteRepository
from bot.storage.notices import NoticeBox
from bot.storage.outbox import AlertConsumer, AlertOutbox
from bot.storage.posts import PostQueue
from bot.storage.ratelimit import RateStore
from bot.storage.requests import SearchRequests
from bot.storage.sessions import Checkpoints, JoinPace, SessionLocks
from bot.storage.shared import SharedWatchRepository
from bot.storage.stories import StoryRepository
from bot.storage.streams import DEFAULT_MAXLEN, StreamConsumer
from bot.storage.triage_store import TriageStore
from bot.storage.users import UserRepository
from bot.storage.watches import WatchRepository


@dataclass(frozen=True, slots=True)
class Retention:
    """How long things are kept (seconds)."""

    archive_s: int = 30 * 86400
    ledger_s: int = 30 * 86400
    maxlen: int = DEFAULT_MAXLEN


@dataclass(frozen=True)
class Repositories:
    redis: aioredis.Redis  # for the wiring in bot/app.py and the storage package only
    retention: Retention
    users: UserRepository
    watches: WatchRepository
    shared: SharedWatchRepository
    channels: ChannelRepository
    mutes: MuteRepository
    feedback: FeedbackRepository
    audit: AuditLog
    posts: PostQueue
    archive: ArchiveRepository
    stories: StoryRepository
    outbox: AlertOutbox
    learning: LearningRepository
    campaigns: CampaignRepository  # surge counts, story spread, forward edges
    # delivery (helper D): the sent ledger and analysts' logs, held alerts, notices and
    # released alerts onto the alerts stream, the rate limiter's state, dead letters, health
    ledger: DeliveryLedger
    held: HeldRepository
    notices: NoticeBox
    rates: RateStore
    dead_letters: DeadLetters
    health: HealthRepository
    handler_errors: HandlerErrors  # errors the bot's handlers raised, per handler
    # the watcher: session locks, each account's join pace, the reconciler's checkpoints
    locks: SessionLocks
    join_pace: JoinPace
    checkpoints: Checkpoints
    alerted: AlertedPosts  # the reconciler's deletion check: alerted posts of the last days
    desks: DeskRepository  # groups and channels the bot is in, and the watches routed there
    # /test and /search asked of the triage role (the request stream and its replies)
    searches: SearchRequests

    @classmethod
    def build(
        cls,
        redis: aioredis.Redis,
        *,
        admins: frozenset[int] = frozenset(),
        retention: Retention | None = None,
        max_watches: int | None = None,
    ) -> Repositories:
        keep = retention or Retention()
        watches = WatchRepository(redis, max_per_analyst=max_watches)
        archive = ArchiveRepository(redis, ttl_s=keep.archive_s)
        return cls(
            redis=redis,
            retention=keep,
            users=UserRepository(redis, admins),
            watches=watches,
            shared=SharedWatchRepository(redis, watches),
            channels=ChannelRepository(redis),
            mutes=MuteRepository(redis),
            feedback=FeedbackRepository(redis, maxlen=keep.maxlen),
            audit=AuditLog(redis),
            posts=PostQueue(redis, maxlen=keep.maxlen),
            archive=archive,
            stories=StoryRepository(redis),
            outbox=AlertOutbox(redis, maxlen=keep.maxlen, ledger_ttl_s=keep.ledger_s),
            learning=LearningRepository(redis),
            campaigns=CampaignRepository(redis, archive=archive, spread_ttl_s=keep.archive_s),
            ledger=DeliveryLedger(redis, ttl_s=keep.ledger_s),
            held=HeldRepository(redis, ttl_s=keep.ledger_s),
            notices=NoticeBox(redis, maxlen=keep.maxlen),
            rates=RateStore(redis),
            dead_letters=DeadLetters(redis),
            health=HealthRepository(redis),
            handler_errors=HandlerErrors(redis),
            locks=SessionLocks(redis),
            join_pace=JoinPace(redis),
            checkpoints=Checkpoints(redis),
            alerted=AlertedPosts(redis),
            desks=DeskRepository(
                redis, watches, UserRepository(redis, admins), maxlen=keep.maxlen
            ),
            searches=SearchRequests(redis),
        )

    async def wipe(self) -> None:
        """Empty the whole database: only for `vigil demo`, on its own embedded Redis."""
        await self.redis.flushdb()

    def triage_store(self) -> TriageStore:
        return TriageStore(self.redis, self.archive, self.stories, self.outbox, self.learning)

    def posts_consumer(
        self, consumer: str, *, max_deliveries: int = 5, claim_idle_ms: int = 60_000
    ) -> StreamConsumer:
        return StreamConsumer(
            self.redis,
            keys.POSTS_STREAM,
            keys.TRIAGE_GROUP,
            consumer,
            keys.POSTS_DEAD,
            max_deliveries=max_deliveries,
            claim_idle_ms=claim_idle_ms,
        )

    def feedback_consumer(
        self, consumer: str, *, max_deliveries: int = 5, claim_idle_ms: int = 60_000
    ) -> StreamConsumer:
        """The learner's consumer of the feedback stream (group `learners`)."""
        return StreamConsumer(
            self.redis,
            keys.FEEDBACK_STREAM,
            keys.LEARN_GROUP,
            consumer,
            keys.FEEDBACK_DEAD,
            max_deliveries=max_deliveries,
            claim_idle_ms=claim_idle_ms,
        )

    def alerts_consumer(
        self, consumer: str, *, max_deliveries: int = 5, claim_idle_ms: int = 60_000
    ) -> AlertConsumer:
        """The delivery group's consumer: alerts come hydrated from the archive."""
        return AlertConsumer(
            self.redis,
            keys.ALERTS_STREAM,
            keys.DELIVERY_GROUP,
            consumer,
            keys.ALERTS_DEAD,
            max_deliveries=max_deliveries,
            claim_idle_ms=claim_idle_ms,
            outbox=self.outbox,
        )
