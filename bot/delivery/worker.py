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
403: the analyst is marked inactive, admins get a notice, the alert is held until /start; for
a desk (a group or channel, negative chat id) its routes are paused and their owners told.
400: permanent (the text or the chat is wrong): dead-lettered at once, except "group chat
was upgraded to a supergroup chat" (migrate_to_chat_id): the desk's routes move to the
supergroup (`DeskRepository.migrate`, if the service message has not done it already) and the
entry is queued again for the new chat and its route's watch (as is an entry of a group
already known to have moved, before any send). Other errors: retried with
exponential backoff, then dead-lettered.

Screening a `new` alert: one the analyst's learned model held (`AlertJob.held`) or below their
instant threshold goes to their digest; during their quiet hours the rest wait for the end,
except urgent ones when the analyst lets urgent alerts break quiet hours (`urgent_quiet`, on by
default). Edits and deletions of alerted posts follow the alert they belong to and skip the
threshold, but wait out quiet hours.

Storage is the `Repositories` bundle: the ledger (`repos.ledger`), held alerts (`repos.held`),
notices and released alerts (`repos.notices`), the alerts consumer; never the Redis client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramRetryAfter,
)
from aiogram.types import BufferedInputFile, InlineKeyboardMarkup, LinkPreviewOptions
from pydantic import ValidationError

from bot import texts
from bot.alerts import AlertJob, Notice, is_notice
from bot.delivery.digest import send_due_digests
from bot.delivery.ratelimit import RateLimiter
from bot.delivery.render import render_alert, render_notice
from bot.storage.connection import raise_if_cancelled
from bot.storage.failures import StorageError
from bot.storage.held import HoldReason
from bot.storage.notices import NoticeBox
from bot.storage.repos import Repositories
from bot.storage.streams import StreamEntry
from bot.storage.users import PRIORITY_ORDER, Person, UserRepository
from bot.triage.priority import Priority

log = logging.getLogger(__name__)

NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


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
    migrated: int = 0  # entries queued again for a group's new supergroup id


async def tell_admins(notices: NoticeBox, users: UserRepository, text: str) -> None:
    """Queue a notice to every admin on the alerts stream (durable, rate-limited)."""
    await notices.tell(await users.admin_ids(), text)


@dataclass
class _Item:
    entry: StreamEntry
    job: AlertJob | Notice


@dataclass
class DeliveryWorker:
    bot: Bot
    limiter: RateLimiter
    repos: Repositories
    config: DeliveryConfig = field(default_factory=DeliveryConfig)
    stats: DeliveryStats = field(default_factory=DeliveryStats)

    def __post_init__(self) -> None:
        self.token = secrets.token_hex(6)  # this process's incarnation, in ledger marks
        self.users = self.repos.users
        self.mutes = self.repos.mutes
        self.ledger = self.repos.ledger
        self.held = self.repos.held
        self.notices = self.repos.notices
        self.consumer = self.repos.alerts_consumer(
            self.config.consumer,
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
                except (StorageError, OSError):
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
        markup = None
        if notice.markup:
            try:
                markup = InlineKeyboardMarkup.model_validate_json(notice.markup)
            except ValidationError:
                log.warning("delivery: a notice's buttons are malformed; sent without them")

        photo = await self.repos.campaigns.chart(notice.photo) if notice.photo else None

        async def send() -> None:
            if photo is not None:  # a surge alert's chart, the text as its caption
                await self.bot.send_photo(
                    notice.recipient_id,
                    BufferedInputFile(photo, filename="chart.png"),
                    caption=html,
                    parse_mode="HTML",
                    reply_markup=markup,
                )
            else:
                await self.bot.send_message(
                    notice.recipient_id,
                    html,
                    parse_mode="HTML",
                    link_preview_options=NO_PREVIEW,
                    reply_markup=markup,
                )
            async with self._gate:
                await self.consumer.ack(entry.id)

        if await self._with_retries(entry, notice.recipient_id, send, ledger=None):
            self.stats.notices += 1

    async def _screen(self, entry: StreamEntry, job: AlertJob) -> Person | None:
        """The analyst to send to now, or None when the entry is settled without a send
        (dropped, held, muted, a duplicate)."""
        if job.analyst_id < 0:
            moved = await self.repos.desks.retarget(job.analyst_id, job.watch_id, wait_s=2.0)
            if moved is not None:  # queued before the group became a supergroup
                await self._requeue(entry, *moved)
                return None
        person = await self._recipient(job.analyst_id, job.watch_id)
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
        if job.kind == "new":
            below = PRIORITY_ORDER.get(job.priority, 1) < PRIORITY_ORDER.get(person.threshold, 0)
            if job.held or below:
                # Judged noise by their learned model, or below their instant threshold: the
                # digest, which it would reach after quiet hours anyway.
                await self._hold(entry, job.analyst_id, HoldReason.DIGEST, None)
                return None
        quiet = person.quiet_hours
        if quiet is not None and not self._breaks_quiet(job, person):
            ends = quiet.ends_at(datetime.now(UTC), person.zone)
            if ends is not None:
                await self._hold(entry, job.analyst_id, HoldReason.QUIET, ends.timestamp())
                return None
        state = await self.ledger.state(job)
        if state is not None and (state.startswith("sent") or state == f"sending:{self.token}"):
            self.stats.duplicates += 1
            await self.consumer.ack(entry.id)
            return None
        return person

    async def _recipient(self, chat: int, watch_id: int = 0) -> Person | None:
        """The analyst, or a desk (a group or channel: a negative chat id) the bot is in whose
        route of `watch_id` was made by someone still an analyst."""
        if chat < 0:
            return await self.repos.desks.recipient(chat, watch_id)
        return await self.users.get(chat)

    @staticmethod
    def _breaks_quiet(job: AlertJob, person: Person) -> bool:
        return job.kind == "new" and job.priority == Priority.URGENT and person.urgent_quiet

    async def _deliver_also(self, entry: StreamEntry, job: AlertJob) -> None:
        """A copy of the story appeared in another channel: edit the analyst's first alert to
        say so ("also in N channels") instead of sending a new one. Edits do not notify, so
        quiet hours and thresholds don't apply; if the first alert was never sent (held,
        muted), there is nothing to join and the entry is settled."""
        async with self._gate:
            found = await self.ledger.first_alert(job)
            post = await self.repos.archive.get(job.post.channel_id, job.post.message_id)
            person = await self._recipient(job.analyst_id, job.watch_id)
        message_id = found.chat_message_id
        usable = message_id is not None and found.meta and post is not None
        if found.done or not usable or person is None or not person.active:
            async with self._gate:
                await self.consumer.ack(entry.id)
            return
        assert message_id is not None and found.meta is not None and post is not None
        try:
            first = AlertJob.from_fields({**found.meta, "post": post.to_json()})
        except ValueError as exc:
            async with self._gate:
                await self._dead(entry, f"cannot rebuild the first alert: {exc}")
            return
        html, keyboard = render_alert(replace(first, also_in=job.also_in), person.zone)

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
            async with self._gate:
                await self.ledger.joined(job, ack=entry.id)

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
        html, keyboard = render_alert(job, person.zone, previous=job.previous)

        async def send() -> None:
            async with self._gate:
                await self.ledger.sending(job, self.token)
            message = await self.bot.send_message(
                job.analyst_id,
                html,
                parse_mode="HTML",
                reply_markup=keyboard,
                link_preview_options=NO_PREVIEW,
            )
            async with self._gate:
                await self.ledger.sent(job, message.message_id, ack=entry.id)

        if await self._with_retries(entry, job.analyst_id, send, ledger=job):
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
        ledger: AlertJob | None,
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
            except TelegramMigrateToChat as exc:
                async with self._gate:
                    await self._clear_mark(ledger)
                    await self._migrated(entry, chat, exc.migrate_to_chat_id)
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

    async def _migrated(self, entry: StreamEntry, chat: int, new_chat: int) -> None:
        """The group became supergroup `new_chat`: move its routes (once, whoever sees it
        first) and queue the entry again for the new chat, then acknowledge this one. The
        ledger is per chat, so the copy is sent once; a crash between the two steps leaves
        a second copy the ledger then skips."""
        watch_id = int(entry.fields.get("watch", "0") or 0)
        if chat < 0:
            moved = await self.repos.desks.migrate(chat, new_chat)
            if moved:
                log.info("delivery: %s became %s (%d routes moved)", chat, new_chat, len(moved))
            target = await self.repos.desks.retarget(chat, watch_id)
            if target is not None:
                new_chat, watch_id = target
        await self._requeue(entry, new_chat, watch_id)

    async def _requeue(self, entry: StreamEntry, chat: int, watch_id: int) -> None:
        fields = dict(entry.fields)
        fields["analyst"] = str(chat)
        if "watch" in fields:
            fields["watch"] = str(watch_id)
        await self.notices.append_many([fields])
        await self.consumer.ack(entry.id)
        self.stats.migrated += 1

    async def _clear_mark(self, ledger: AlertJob | None) -> None:
        if ledger is not None:
            await self.ledger.clear(ledger)

    async def _hold(self, entry: StreamEntry, user_id: int, why: str, until: float | None) -> None:
        await self.held.hold(user_id, why, entry.fields, until)
        await self.consumer.ack(entry.id)
        self.stats.held += 1

    async def _blocked(self, entry: StreamEntry, user_id: int) -> None:
        self.stats.blocked += 1
        if user_id < 0:  # a desk: "bot was kicked"; its routes pause, their owners are told
            await self.repos.desks.pause(user_id)
            await self.consumer.ack(entry.id)
            return
        await self.held.hold(user_id, HoldReason.BLOCKED, entry.fields, None)
        changed = await self.users.set_active(user_id, False)
        await self.consumer.ack(entry.id)
        if changed:
            log.warning("delivery: analyst %s blocked the bot; marked inactive", user_id)
            await self.tell_admins(texts.analyst_blocked(user_id, await self._name(user_id)))

    async def _name(self, user_id: int) -> str:
        person = await self.users.get(user_id)
        return person.label if person else str(user_id)

    async def tell_admins(self, text: str) -> None:
        await tell_admins(self.notices, self.users, text)

    async def _dead(self, entry: StreamEntry, reason: str) -> None:
        self.stats.dead += 1
        await self.consumer.dead_letter(entry, reason)

    # --- background ----------------------------------------------------------------------
    async def release_due(self) -> int:
        """Put held alerts whose time has come (quiet hours over, analyst back) back on the
        stream. Returns how many."""
        released = 0
        for user_id in await self.held.lease_due(time.time()):
            items = [h for h in await self.held.held(user_id) if h.why != HoldReason.DIGEST]
            await self.notices.append_many([item.fields for item in items])
            await self.held.forget(user_id, items)
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
                    await send_due_digests(self.held, self.users, self.notices, datetime.now(UTC))
            except StorageError:
                log.exception("delivery: releasing held alerts failed")
            raise_if_cancelled()
            await asyncio.sleep(self.config.held_check_s)

    async def _keepalive_loop(self) -> None:
        """Keep our queued entries from looking idle, so no other worker reclaims them."""
        interval = self.config.claim_idle_ms / 1000 / 3
        while not self._stopping:
            await asyncio.sleep(interval)
            await self.notices.keep_claimed(self.config.consumer, list(self._in_flight))
            raise_if_cancelled()
