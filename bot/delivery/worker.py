"""The delivery worker: alerts stream -> Bot API, rate-limited, durable, once per analyst.

Each stream entry is handed to the queue of its chat; one task per chat with work sends that
chat's alerts in order while other chats proceed concurrently (the shared `RateLimiter` paces
them all). An entry is acknowledged only when its outcome is durable: sent (and recorded in the
ledger), held (quiet hours, digest, blocked analyst), skipped (muted, duplicate) or
dead-lettered.

Once per (analyst, post version): before a send the ledger field `<kind>:<version>` of
`keys.alert_sent(...)` is set to `sending:<process token>`, after it to `sent:<message id>`.
An entry whose ledger says `sent` is acknowledged without a send; one that says `sending` from
another process (which crashed mid-send) is sent again, so an alert is never lost and a crash
duplicates at most the sends that were in flight. The send and its bookkeeping are shielded from
cancellation, and a stopping worker waits for them, so a clean stop duplicates nothing.

429: wait `retry_after` (the chat is penalised in the shared limiter), retry; not a failure.
403: the analyst is marked inactive, admins get a notice, the alert is held until /start.
400: permanent (the text or the chat is wrong): dead-lettered at once. Other errors: retried
with exponential backoff, then dead-lettered.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
)
from aiogram.types import LinkPreviewOptions

from bot import texts
from bot.alerts import AlertJob, Notice, is_notice
from bot.delivery.digest import send_due_digests
from bot.delivery.ratelimit import RateLimiter
from bot.delivery.render import render_alert, render_notice
from bot.storage import keys
from bot.storage.connection import raise_if_cancelled
from bot.storage.mutes import MuteRepository
from bot.storage.streams import StreamConsumer, StreamEntry, append
from bot.storage.users import (
    PRIORITY_ORDER,
    Person,
    UserRepository,
    forget_held,
    held_alerts,
    hold,
    lease_due,
)

log = logging.getLogger(__name__)

NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
USER_ALERTS_MAXLEN = 10_000


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    consumer: str = "delivery-1"
    max_attempts: int = 5  # sends failing with a non-429 error before dead-lettering
    backoff_s: float = 1.0
    max_backoff_s: float = 60.0
    max_in_flight: int = 2000
    read_count: int = 200
    read_block_ms: int = 500
    claim_idle_ms: int = 60_000
    max_deliveries: int = 5
    held_check_s: float = 5.0
    digest_check_s: float = 60.0
    ledger_ttl_s: int = 30 * 86400
    drain_timeout_s: float = 15.0
    redis_concurrency: int = 32
    stream_max_age_s: float = 3 * 86400  # acknowledged alerts older than this are trimmed


@dataclass
class DeliveryStats:
    sent: int = 0
    notices: int = 0
    duplicates: int = 0
    retry_after: int = 0
    retried: int = 0
    held: int = 0
    muted: int = 0
    dropped: int = 0
    dead: int = 0
    blocked: int = 0
    released: int = 0
    joined: int = 0  # "also in N channels" edits of a first alert


async def tell_admins(redis: aioredis.Redis, users: UserRepository, text: str) -> None:
    """Queue a notice to every admin on the alerts stream (durable, rate-limited)."""
    for admin_id in await users.admin_ids():
        await append(redis, keys.ALERTS_STREAM, Notice(admin_id, text).to_fields())


@dataclass
class _Item:
    entry: StreamEntry
    job: AlertJob | Notice


@dataclass
class DeliveryWorker:
    redis: aioredis.Redis
    bot: Bot
    limiter: RateLimiter
    users: UserRepository
    mutes: MuteRepository
    config: DeliveryConfig = field(default_factory=DeliveryConfig)
    stats: DeliveryStats = field(default_factory=DeliveryStats)

    def __post_init__(self) -> None:
        self.token = secrets.token_hex(6)  # this process's incarnation, in ledger marks
        self.consumer = StreamConsumer(
            self.redis,
            keys.ALERTS_STREAM,
            keys.DELIVERY_GROUP,
            self.config.consumer,
            keys.ALERTS_DEAD,
            max_deliveries=self.config.max_deliveries,
            claim_idle_ms=self.config.claim_idle_ms,
        )
        self._queues: dict[int, deque[_Item]] = {}
        self._chat_tasks: dict[int, asyncio.Task[None]] = {}
        self._in_flight: set[str] = set()
        self._bookkeeping: set[asyncio.Task[Any]] = set()
        self._room = asyncio.Event()
        self._room.set()
        self._stopping = False
        self._progress = asyncio.Event()
        # The Redis client is shared and its pool is bounded: at most this many of our
        # chat tasks talk to Redis at once (the others wait here, not on the pool).
        self._gate = asyncio.Semaphore(self.config.redis_concurrency)

    # --- lifecycle -----------------------------------------------------------------------
    async def run(self) -> None:
        """Consume until cancelled; on cancellation, let sends in flight finish."""
        await self.consumer.ensure_group()
        helpers = [
            asyncio.create_task(self._release_loop(), name="delivery-release"),
            asyncio.create_task(self._keepalive_loop(), name="delivery-keepalive"),
        ]
        try:
            while True:
                await self._room.wait()
                free = self.config.max_in_flight - len(self._in_flight)
                entries = await self.consumer.read(
                    count=max(1, min(self.config.read_count, free)),
                    block_ms=self.config.read_block_ms,
                )
                raise_if_cancelled()
                for entry in entries:
                    self._dispatch(entry)
                redelivered = {e.id for e in entries if e.deliveries > 1}
                if redelivered:
                    # Own pending entries (after a restart) and reclaimed ones are read again
                    # by the next read until acknowledged: finish these first.
                    await self._until_finished(redelivered)
        finally:
            self._stopping = True
            for task in helpers:
                task.cancel()
            chat_tasks = list(self._chat_tasks.values())
            for chat_task in chat_tasks:
                chat_task.cancel()
            await asyncio.gather(*helpers, *chat_tasks, return_exceptions=True)
            await self._drain()

    async def _drain(self) -> None:
        pending = [t for t in self._bookkeeping if not t.done()]
        if pending:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait(pending, timeout=self.config.drain_timeout_s)

    def idle(self) -> bool:
        """Nothing in flight (for tests and benchmarks)."""
        return not self._in_flight and not self._bookkeeping

    # --- dispatch ------------------------------------------------------------------------
    def _dispatch(self, entry: StreamEntry) -> None:
        if entry.id in self._in_flight:
            return  # reclaimed while still queued here
        try:
            job: AlertJob | Notice = (
                Notice.from_fields(entry.fields)
                if is_notice(entry.fields)
                else AlertJob.from_fields(entry.fields)
            )
        except ValueError as exc:
            self._spawn(self._dead(entry, f"malformed entry: {exc}"))
            return
        chat = job.recipient_id if isinstance(job, Notice) else job.analyst_id
        self._in_flight.add(entry.id)
        if len(self._in_flight) >= self.config.max_in_flight:
            self._room.clear()
        self._queues.setdefault(chat, deque()).append(_Item(entry, job))
        if chat not in self._chat_tasks:
            self._chat_tasks[chat] = asyncio.create_task(self._chat_loop(chat))

    async def _chat_loop(self, chat: int) -> None:
        queue = self._queues[chat]
        try:
            while queue:
                raise_if_cancelled()
                item = queue[0]
                try:
                    await self._process(item)
                except (aioredis.RedisError, OSError):
                    # Redis trouble: leave the entry pending; it is redelivered after a restart
                    # or reclaimed, and the ledger keeps it from being sent twice.
                    log.exception("delivery: redis error on entry %s", item.entry.id)
                    await asyncio.sleep(1.0)
                queue.popleft()
                self._finished(item.entry.id)
        finally:
            self._chat_tasks.pop(chat, None)
            if not queue:
                self._queues.pop(chat, None)
            else:  # cancelled: forget the rest, they stay pending in the group
                for item in queue:
                    self._finished(item.entry.id)
                queue.clear()
                self._queues.pop(chat, None)

    def _finished(self, entry_id: str) -> None:
        self._in_flight.discard(entry_id)
        if len(self._in_flight) < self.config.max_in_flight:
            self._room.set()
        self._progress.set()

    async def _until_finished(self, entry_ids: set[str]) -> None:
        while entry_ids & self._in_flight:
            self._progress.clear()
            await self._progress.wait()

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._bookkeeping.add(task)
        task.add_done_callback(self._settled)
        return task

    def _settled(self, task: asyncio.Task[Any]) -> None:
        self._bookkeeping.discard(task)
        if not task.cancelled() and task.exception() is not None and self._stopping:
            # Nobody awaits a shielded send once the worker is stopping; its outcome is in
            # the ledger (still 'sending': the next worker sends it again).
            log.info("delivery: send in flight at stop failed: %s", task.exception())

    # --- one entry -----------------------------------------------------------------------
    async def _process(self, item: _Item) -> None:
        if isinstance(item.job, Notice):
            await self._deliver_notice(item.entry, item.job)
        else:
            await self._deliver_alert(item.entry, item.job)

    async def _deliver_notice(self, entry: StreamEntry, notice: Notice) -> None:
        html = render_notice(notice)

        async def send() -> None:
            await self.bot.send_message(
                notice.recipient_id, html, parse_mode="HTML", link_preview_options=NO_PREVIEW
            )
            async with self._gate:
                await self.consumer.ack(entry.id)

        if await self._with_retries(entry, notice.recipient_id, send, ledger=None):
            self.stats.notices += 1

    async def _screen(self, entry: StreamEntry, job: AlertJob) -> Person | None:
        """The analyst to send to now, or None when the entry is settled without a send
        (dropped, held, muted, a duplicate)."""
        person = await self.users.get(job.analyst_id)
        if person is None or not person.is_analyst:
            log.info("delivery: %s is not an analyst any more; alert dropped", job.analyst_id)
            self.stats.dropped += 1
            await self.consumer.ack(entry.id)
            return None
        if not person.active:
            await self._hold(entry, job.analyst_id, "blocked", None)
            return None
        if await self.mutes.is_muted(job.analyst_id, job.post.channel_id, job.watch_id):
            self.stats.muted += 1
            await self.consumer.ack(entry.id)
            return None
        quiet = person.quiet_hours
        if quiet is not None:
            ends = quiet.ends_at(datetime.now(UTC), person.zone)
            if ends is not None:
                await self._hold(entry, job.analyst_id, "quiet", ends.timestamp())
                return None
        below = PRIORITY_ORDER.get(job.priority, 1) < PRIORITY_ORDER.get(person.threshold, 0)
        if below and job.kind == "new":
            await self._hold(entry, job.analyst_id, "digest", None)
            return None
        ledger = keys.alert_sent(job.analyst_id, job.post.channel_id, job.post.message_id)
        state: Any = await self.redis.hget(ledger, f"{job.kind}:{job.post.version}")
        if state is not None and (state.startswith("sent") or state == f"sending:{self.token}"):
            self.stats.duplicates += 1
            await self.consumer.ack(entry.id)
            return None
        return person

    async def _deliver_also(self, entry: StreamEntry, job: AlertJob) -> None:
        """A copy of the story appeared in another channel: edit the analyst's first alert to
        say so ("also in N channels") instead of sending a new one. Edits do not notify, so
        quiet hours and thresholds don't apply; if the first alert was never sent (held,
        muted), there is nothing to join and the entry is settled."""
        ledger = keys.alert_sent(job.analyst_id, job.post.channel_id, job.post.message_id)
        mark = f"also:{len(job.also_in)}"
        async with self._gate:
            found: Any = await self.redis.hmget(ledger, "new:0", "meta", mark)
            state, meta, done = found
            raw = await self.redis.get(keys.archive_post(job.post.channel_id, job.post.message_id))
            person = await self.users.get(job.analyst_id)
        usable = state is not None and str(state).startswith("sent:") and meta and raw
        if done is not None or not usable or person is None or not person.active:
            async with self._gate:
                await self.consumer.ack(entry.id)
            return
        try:
            first = AlertJob.from_fields({**json.loads(str(meta)), "post": str(raw)})
        except ValueError as exc:
            async with self._gate:
                await self._dead(entry, f"cannot rebuild the first alert: {exc}")
            return
        html, keyboard = render_alert(replace(first, also_in=job.also_in), person.zone)
        message_id = int(str(state).split(":", 1)[1])

        async def edit() -> None:
            try:
                await self.bot.edit_message_text(
                    text=html,
                    chat_id=job.analyst_id,
                    message_id=message_id,
                    parse_mode="HTML",
                    reply_markup=keyboard,
                    link_preview_options=NO_PREVIEW,
                )
            except TelegramBadRequest as exc:
                # Already says so, or the analyst deleted the message: nothing left to do.
                if "not modified" not in exc.message and "not found" not in exc.message:
                    raise
            async with self._gate, self.redis.pipeline(transaction=False) as pipe:
                pipe.hset(ledger, mark, "1")
                pipe.xack(keys.ALERTS_STREAM, keys.DELIVERY_GROUP, entry.id)
                await pipe.execute()

        if await self._with_retries(entry, job.analyst_id, edit, ledger=None):
            self.stats.joined += 1

    async def _deliver_alert(self, entry: StreamEntry, job: AlertJob) -> None:
        if job.kind == "also":
            await self._deliver_also(entry, job)
            return
        async with self._gate:
            person = await self._screen(entry, job)
        if person is None:
            return
        ledger = keys.alert_sent(job.analyst_id, job.post.channel_id, job.post.message_id)
        mark = f"{job.kind}:{job.post.version}"
        html, keyboard = render_alert(job, person.zone)

        async def send() -> None:
            async with self._gate:
                await self.redis.hset(ledger, mark, f"sending:{self.token}")
            message = await self.bot.send_message(
                job.analyst_id,
                html,
                parse_mode="HTML",
                reply_markup=keyboard,
                link_preview_options=NO_PREVIEW,
            )
            fields: dict[Any, Any] = {
                "channel": str(job.post.channel_id),
                "message": str(job.post.message_id),
                "watch": str(job.watch_id),
                "priority": job.priority,
                "kind": job.kind,
                "chat_message": str(message.message_id),
                "lang": job.language,
                "query": job.watch_query[:500],
                "at": f"{time.time():.3f}",
            }
            async with self._gate, self.redis.pipeline(transaction=False) as pipe:
                pipe.hset(ledger, mark, f"sent:{message.message_id}")
                if job.kind == "new":  # what a later "also in N channels" edit re-renders from
                    meta = {k: v for k, v in job.to_fields().items() if k != "post"}
                    pipe.hset(ledger, "meta", json.dumps(meta, ensure_ascii=False))
                pipe.expire(ledger, self.config.ledger_ttl_s)
                pipe.xadd(
                    keys.user_alerts(job.analyst_id),
                    fields,
                    maxlen=USER_ALERTS_MAXLEN,
                    approximate=True,
                )
                pipe.xack(keys.ALERTS_STREAM, keys.DELIVERY_GROUP, entry.id)
                await pipe.execute()

        if await self._with_retries(entry, job.analyst_id, send, ledger=(ledger, mark)):
            self.stats.sent += 1

    async def _acquire(self, chat: int) -> None:
        """Wait for a send slot; Redis is asked under the gate, the waiting is done outside."""
        while True:
            async with self._gate:
                granted, wait = await self.limiter.try_acquire(chat)
            raise_if_cancelled()
            if wait > 0:
                await asyncio.sleep(wait)
            if granted:
                return

    async def _with_retries(
        self,
        entry: StreamEntry,
        chat: int,
        send: Any,
        ledger: tuple[str, str] | None,
    ) -> bool:
        """Run `send` under the rate limiter until it succeeds or the entry is settled.
        True if it was sent."""
        attempts = 0
        while True:
            await self._acquire(chat)
            task = self._spawn(send())
            try:
                await asyncio.shield(task)
                return True
            except TelegramRetryAfter as exc:
                self.stats.retry_after += 1
                async with self._gate:
                    await self.limiter.penalise(chat, exc.retry_after)
                await asyncio.sleep(exc.retry_after)
            except TelegramForbiddenError:
                async with self._gate:
                    await self._clear_mark(ledger)
                    if ledger is not None:
                        await self._blocked(entry, chat)
                    else:
                        await self.consumer.ack(entry.id)  # a notice to someone who left
                return False
            except TelegramBadRequest as exc:
                async with self._gate:
                    await self._clear_mark(ledger)
                    await self._dead(entry, f"refused by Telegram: {exc.message}")
                return False
            except (TelegramNetworkError, TelegramAPIError, TimeoutError) as exc:
                attempts += 1
                async with self._gate:
                    await self._clear_mark(ledger)
                    if attempts >= self.config.max_attempts:
                        await self._dead(entry, f"failed {attempts} times: {exc}")
                        return False
                self.stats.retried += 1
                delay = min(self.config.max_backoff_s, self.config.backoff_s * 2 ** (attempts - 1))
                log.warning("delivery: send to %s failed (%s); retry in %.1fs", chat, exc, delay)
                await asyncio.sleep(delay)

    async def _clear_mark(self, ledger: tuple[str, str] | None) -> None:
        if ledger is not None:
            await self.redis.hdel(ledger[0], ledger[1])

    async def _hold(self, entry: StreamEntry, user_id: int, why: str, until: float | None) -> None:
        await hold(self.redis, user_id, why, dict(entry.fields), until)
        await self.consumer.ack(entry.id)
        self.stats.held += 1

    async def _blocked(self, entry: StreamEntry, user_id: int) -> None:
        self.stats.blocked += 1
        await hold(self.redis, user_id, "blocked", dict(entry.fields), None)
        changed = await self.users.set_active(user_id, False)
        await self.consumer.ack(entry.id)
        if changed:
            log.warning("delivery: analyst %s blocked the bot; marked inactive", user_id)
            await self.tell_admins(texts.analyst_blocked(user_id, await self._name(user_id)))

    async def _name(self, user_id: int) -> str:
        person = await self.users.get(user_id)
        return person.label if person else str(user_id)

    async def tell_admins(self, text: str) -> None:
        await tell_admins(self.redis, self.users, text)

    async def _dead(self, entry: StreamEntry, reason: str) -> None:
        self.stats.dead += 1
        await self.consumer.dead_letter(entry, reason)

    # --- background ----------------------------------------------------------------------
    async def release_due(self) -> int:
        """Put held alerts whose time has come (quiet hours over, analyst back) back on the
        stream. Returns how many."""
        released = 0
        for user_id in await lease_due(self.redis, time.time()):
            items = [h for h in await held_alerts(self.redis, user_id) if h.why != "digest"]
            for item in items:
                await append(self.redis, keys.ALERTS_STREAM, item.fields)
            await forget_held(self.redis, user_id, items)
            released += len(items)
        self.stats.released += released
        return released

    async def _release_loop(self) -> None:
        last_digest_check = 0.0
        last_trim = 0.0
        while not self._stopping:
            try:
                await self.release_due()
                if time.monotonic() - last_trim >= 60.0:
                    last_trim = time.monotonic()
                    await self.consumer.trim_acknowledged(self.config.stream_max_age_s)
                if time.monotonic() - last_digest_check >= self.config.digest_check_s:
                    last_digest_check = time.monotonic()
                    await send_due_digests(self.redis, self.users, datetime.now(UTC))
            except aioredis.RedisError:
                log.exception("delivery: releasing held alerts failed")
            raise_if_cancelled()
            await asyncio.sleep(self.config.held_check_s)

    async def _keepalive_loop(self) -> None:
        """Keep our queued entries from looking idle, so no other worker reclaims them."""
        interval = self.config.claim_idle_ms / 1000 / 3
        while not self._stopping:
            await asyncio.sleep(interval)
            ids: list[Any] = list(self._in_flight)
            for i in range(0, len(ids), 500):
                with contextlib.suppress(aioredis.RedisError):
                    await self.redis.xclaim(
                        keys.ALERTS_STREAM,
                        keys.DELIVERY_GROUP,
                        self.config.consumer,
                        min_idle_time=0,
                        message_ids=ids[i : i + 500],
                        justid=True,
                    )
            raise_if_cancelled()
