"""Catch-up: fetch every message after a channel's checkpoint and enqueue what is missing.

Telegram drops updates (a user account is not pushed every channel's updates, and a gap of
more than 100 in one channel is skipped), so live updates are a fast path, never the record.
The checkpoint (`keys.channel_checkpoint`) is the highest message id known to be on the posts
stream; it moves only after the posts up to it are enqueued, so a crash or a FloodWait at any
moment leads to a re-fetch, and `PostQueue`'s idempotency turns the re-fetch into no duplicate.
The live handler never moves the checkpoint: a live post 500 after a dropped 300..499 must not
make the reconciler skip them.

Deletions while down: Telegram pushes a channel's deletions only to a connected client and never
replays them, so `check_deletions` asks again (channels.getMessages, 100 ids a call, paced like
the history calls) for the posts analysts were alerted on in the last `deletion_check_days`, and
enqueues a deletion for each Telegram answers with an empty message: the triage worker follows
it up with the kept text exactly as it does a live deletion.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from telethon import errors
from telethon.tl import types

from bot.models import Post
from bot.storage.channels import Channel, ChannelRepository
from bot.storage.posts import PostQueue
from bot.storage.repos import Repositories
from watchers.convert import group_messages
from watchers.health import record_flood_wait

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]

EDIT_WINDOW_S = 48 * 3600.0  # edits of posts younger than this are looked for
EDIT_SWEEP_LIMIT = 100  # one messages.getHistory call: Telegram returns at most 100
ALBUM_SETTLE_S = 30.0  # a trailing album younger than this may still be arriving
MAX_PER_PASS = 3000  # messages fetched for one channel in one pass (the rest next pass)
START_LOOKBACK = 50  # newest messages read at first sight, for those posted since the join
JOIN_CLOCK_SLACK_S = 60.0  # Telegram's clock and ours may differ by this much
MAX_FLOOD_RETRIES = 5
DELETION_CHECK_DAYS = 3.0  # alerted posts younger than this are looked for again
DELETION_CHECK_LIMIT = 500  # newest alerted posts of one channel checked per pass (5 calls)
DAY_S = 86400.0


@dataclass(slots=True)
class _Tally:
    fetched: int = 0
    enqueued: int = 0


@dataclass(frozen=True, slots=True)
class CatchUp:
    channel_id: int
    fetched: int
    enqueued: int
    checkpoint: int
    flood_waits: int = 0


def input_peer(channel: Channel) -> Any:
    """The peer to ask Telegram about, from the stored id and access hash."""
    if channel.channel_id is None:
        raise ValueError(f"channel {channel.key} is not resolved yet")
    if channel.access_hash is None:
        return types.PeerChannel(channel.channel_id)
    return types.InputPeerChannel(channel.channel_id, channel.access_hash)


class Reconciler:
    """Catch-up and edit sweep for the channels of one Telegram account."""

    def __init__(
        self,
        repos: Repositories,
        client: Any,
        channels: ChannelRepository,
        *,
        session: str,
        queue: PostQueue | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        request_gap_s: float = 1.0,
        initial_backfill: int = 0,
        max_per_pass: int = MAX_PER_PASS,
        deletion_check_days: float = DELETION_CHECK_DAYS,
    ) -> None:
        self._health = repos.health
        self._alerted = repos.alerted
        self._deletion_days = deletion_check_days
        self._checkpoints = repos.checkpoints
        self._client = client
        self._channels = channels
        self._session = session
        self._queue = queue or repos.posts
        self._sleep = sleep
        self._clock = clock
        self._gap = request_gap_s
        self._backfill = initial_backfill
        self._max_per_pass = max_per_pass

    async def checkpoint(self, channel_id: int) -> int | None:
        return await self._checkpoints.get(channel_id)

    async def _move_checkpoint(self, channel_id: int, message_id: int) -> None:
        await self._checkpoints.advance(channel_id, message_id)

    async def _flood_wait(self, exc: errors.FloodWaitError) -> None:
        await record_flood_wait(self._health, self._session, exc.seconds, now=self._clock())
        await self._health.count("flood_waits")
        await self._sleep(float(exc.seconds) + 1.0)

    async def _enqueue(self, channel: Channel, messages: Sequence[Any]) -> int:
        """Enqueue posts of `messages` (albums joined) then move the checkpoint past them."""
        if not messages:
            return 0
        assert channel.channel_id is not None
        pairs = group_messages(
            messages, username=channel.username, title=channel.title, source="reconciler"
        )
        posts = [post for post, _top in pairs]
        if posts:
            seen = await self._queue.seen_versions(
                channel.channel_id, [p.message_id for p in posts]
            )
            # A message the live handler already enqueued and that has been edited since is an
            # edit to triage, not a second "new" post.
            posts = [
                _as_edit(p) if p.edit_date is not None and prior is not None else p
                for p, prior in zip(posts, seen, strict=True)
            ]
        added, _dups = await self._queue.enqueue_many(posts)
        top = max(int(m.id) for m in messages)
        await self._move_checkpoint(channel.channel_id, top)
        newest = max((p.date.timestamp() for p in posts), default=None)
        if newest is not None:
            await self._channels.touch_last_post(channel.channel_id, newest)
        return added

    async def _start_point(self, channel: Channel, peer: Any) -> int:
        """First sight of a channel: start at its newest message, keeping what was posted since
        the account joined (the live handler may not have known the channel yet) and an
        optional backfill."""
        assert channel.channel_id is not None
        limit = max(1, self._backfill, START_LOOKBACK if channel.joined_at else 1)
        latest = [m async for m in self._client.iter_messages(peer, limit=limit)]
        keep = latest[: self._backfill]
        if channel.joined_at is not None:
            since = channel.joined_at - JOIN_CLOCK_SLACK_S
            keep += [
                m
                for m in latest[self._backfill :]
                if isinstance(m.date, datetime) and m.date.timestamp() >= since
            ]
        if keep:
            await self._enqueue(channel, sorted(keep, key=lambda m: int(m.id)))
        top = max((int(m.id) for m in latest), default=0)
        await self._move_checkpoint(channel.channel_id, top)
        return top

    async def catch_up(self, channel: Channel) -> CatchUp:
        """Fetch and enqueue every message after the checkpoint (FloodWaits waited out)."""
        if channel.channel_id is None:
            raise ValueError(f"channel {channel.key} is not resolved yet")
        peer = input_peer(channel)
        tally = _Tally()  # kept across FloodWait retries: pages before the wait count too
        floods = 0
        while True:
            start = await self.checkpoint(channel.channel_id)
            try:
                if start is None:
                    top = await self._start_point(channel, peer)
                    return CatchUp(channel.channel_id, 0, 0, top, floods)
                await self._fetch_after(channel, peer, start, tally)
                break
            except errors.FloodWaitError as exc:
                floods += 1
                if floods > MAX_FLOOD_RETRIES:
                    raise
                await self._flood_wait(exc)
        final = await self.checkpoint(channel.channel_id) or 0
        if tally.enqueued:
            log.info(
                "channel %s: caught up %d posts (checkpoint %d)",
                channel.channel_id,
                tally.enqueued,
                final,
            )
        return CatchUp(channel.channel_id, tally.fetched, tally.enqueued, final, floods)

    async def _fetch_after(self, channel: Channel, peer: Any, start: int, tally: _Tally) -> None:
        buffer: list[Any] = []
        fetched = 0  # this pass
        async for message in self._client.iter_messages(
            peer,
            limit=self._max_per_pass,
            min_id=start,
            reverse=True,
            wait_time=self._gap,
        ):
            if message is None or int(message.id) <= start:
                continue
            fetched += 1
            tally.fetched += 1
            buffer.append(message)
            if len(buffer) >= EDIT_SWEEP_LIMIT:
                ready, buffer = _split_trailing_album(buffer)
                tally.enqueued += await self._enqueue(channel, ready)
        ready, tail = _split_trailing_album(buffer)
        # A trailing album may still be arriving, or continue past this pass's limit: stop the
        # checkpoint before it and take it whole next time.
        if tail and (fetched >= self._max_per_pass or not self._settled(tail)):
            tally.enqueued += await self._enqueue(channel, ready)
        else:
            tally.enqueued += await self._enqueue(channel, buffer)

    def _settled(self, album: Sequence[Any]) -> bool:
        newest = max((m.date for m in album if isinstance(m.date, datetime)), default=None)
        if newest is None:
            return True
        return self._clock() - newest.timestamp() > ALBUM_SETTLE_S

    async def sweep_edits(self, channel: Channel, *, window_s: float = EDIT_WINDOW_S) -> int:
        """Enqueue edits of recent posts, found by their edit date (one getHistory call)."""
        if channel.channel_id is None:
            return 0
        checkpoint = await self.checkpoint(channel.channel_id)
        if checkpoint is None:
            return 0
        horizon = self._clock() - window_s
        edited: list[Any] = []
        attempts = 0
        while True:
            try:
                async for message in self._client.iter_messages(
                    input_peer(channel), limit=EDIT_SWEEP_LIMIT
                ):
                    if message is None or message.date is None:
                        continue
                    if message.date.timestamp() < horizon:
                        break
                    if int(message.id) <= checkpoint:
                        edited.append(message)
                break
            except errors.FloodWaitError as exc:
                attempts += 1
                if attempts > MAX_FLOOD_RETRIES:
                    raise
                edited.clear()
                await self._flood_wait(exc)
        # Whole albums are regrouped so an edited caption keeps the album's key; posts whose
        # version is already on the stream are dropped by the queue.
        pairs = group_messages(
            edited, username=channel.username, title=channel.title, source="reconciler"
        )
        posts = [_as_edit(p) for p, _top in pairs if p.edit_date is not None]
        added, _dups = await self._queue.enqueue_many(posts)
        if added:
            log.info("channel %s: %d edits found by the sweep", channel.channel_id, added)
        return added

    async def check_deletions(self, channel: Channel, *, limit: int = DELETION_CHECK_LIMIT) -> int:
        """Enqueue a deletion for each alerted post of the last days that Telegram no longer
        has. Returns how many were enqueued (a deletion already on the stream is not again)."""
        if channel.channel_id is None or self._deletion_days <= 0:
            return 0
        since = self._clock() - self._deletion_days * DAY_S
        wanted = await self._alerted.since(channel.channel_id, since, limit=limit)
        if not wanted:
            return 0
        attempts = 0
        while True:
            try:
                # Telethon asks 100 ids a call and answers None where Telegram says
                # messageEmpty (deleted); Telegram may also leave an id out altogether.
                found = await self._client.get_messages(
                    input_peer(channel), ids=wanted, wait_time=self._gap
                )
                break
            except errors.FloodWaitError as exc:
                attempts += 1
                if attempts > MAX_FLOOD_RETRIES:
                    raise
                await self._flood_wait(exc)
        present = {
            int(m.id) for m in found if m is not None and not isinstance(m, types.MessageEmpty)
        }
        now = datetime.now(UTC)
        gone = [
            Post(
                channel_id=channel.channel_id,
                message_id=message_id,
                date=now,
                username=channel.username,
                title=channel.title,
                event="delete",
            )
            for message_id in wanted
            if message_id not in present
        ]
        added, _dups = await self._queue.enqueue_many(gone)
        if added:
            log.info("channel %s: %d deletions found by the check", channel.channel_id, added)
        return added


def _as_edit(post: Post) -> Post:
    return replace(post, event="edit")


def _split_trailing_album(messages: list[Any]) -> tuple[list[Any], list[Any]]:
    """Messages before the last album run, and that run (it may continue on the next page)."""
    if not messages:
        return [], []
    gid = getattr(messages[-1], "grouped_id", None)
    if gid is None:
        return messages, []
    cut = len(messages)
    while cut > 0 and getattr(messages[cut - 1], "grouped_id", None) == gid:
        cut -= 1
    return messages[:cut], messages[cut:]
