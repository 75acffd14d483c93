"""Live ingest: new, edited and deleted channel posts as Telegram pushes them.

Handlers take raw updates (`UpdateNewChannelMessage`, `UpdateEditChannelMessage`,
`UpdateDeleteChannelMessages`) rather than Telethon's high-level events: deletions in channels
carry only the channel id and message ids, and raw updates can be fed to the handler as they
are in tests. Each update is handled inside an error boundary that logs and counts, so one bad
update never stops the watcher. The live path never moves a checkpoint (see reconciler).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from telethon import events
from telethon.tl import types

from bot.models import Post
from bot.storage.channels import Channel, ChannelRepository
from bot.storage.posts import PostQueue
from bot.storage.repos import Repositories
from watchers.convert import album_to_post, channel_id_of, message_to_post

log = logging.getLogger(__name__)

ALBUM_WAIT_S = 1.5  # album parts arrive as separate updates within about a second
ALBUM_MEMORY = 10_000  # grouped_id -> first message id, for edits of album members

UPDATE_TYPES = (
    types.UpdateNewChannelMessage,
    types.UpdateEditChannelMessage,
    types.UpdateDeleteChannelMessages,
)


class ChannelDirectory:
    """The monitored channels by id, as the live handler needs them (refreshed periodically)."""

    def __init__(self, channels: Iterable[Channel] = ()) -> None:
        self._by_id: dict[int, Channel] = {}
        self.replace(channels)

    def replace(self, channels: Iterable[Channel]) -> None:
        self._by_id = {
            c.channel_id: c for c in channels if c.channel_id is not None and c.state == "joined"
        }

    async def refresh(self, repo: ChannelRepository) -> None:
        self.replace(await repo.resolved())

    def get(self, channel_id: int) -> Channel | None:
        return self._by_id.get(channel_id)

    def ids(self) -> frozenset[int]:
        return frozenset(self._by_id)

    def __len__(self) -> int:
        return len(self._by_id)


class LiveIngest:
    def __init__(
        self,
        repos: Repositories,
        directory: ChannelDirectory,
        *,
        channels: ChannelRepository | None = None,
        queue: PostQueue | None = None,
        album_wait_s: float = ALBUM_WAIT_S,
    ) -> None:
        self._health = repos.health
        self._directory = directory
        self._channels = channels or repos.channels
        self._queue = queue or repos.posts
        self._album_wait_s = album_wait_s
        self._albums: dict[int, list[Any]] = {}
        self._album_first: OrderedDict[int, int] = OrderedDict()
        self._timers: dict[int, asyncio.Task[None]] = {}
        self.errors = 0
        self.enqueued = 0

    def attach(self, client: Any) -> None:
        client.add_event_handler(self.on_update, events.Raw(list(UPDATE_TYPES)))

    def detach(self, client: Any) -> None:
        client.remove_event_handler(self.on_update)

    async def on_update(self, update: Any) -> None:
        """The error boundary: whatever goes wrong with one update is logged and counted."""
        try:
            await self._handle(update)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.errors += 1
            log.exception("live update %s failed", type(update).__name__)
            with contextlib.suppress(Exception):
                await self._health.count("live_errors")

    async def _handle(self, update: Any) -> None:
        if isinstance(update, types.UpdateNewChannelMessage):
            await self._on_message(update.message, "new")
        elif isinstance(update, types.UpdateEditChannelMessage):
            await self._on_message(update.message, "edit")
        elif isinstance(update, types.UpdateDeleteChannelMessages):
            await self._on_delete(update.channel_id, update.messages)

    async def _on_message(self, message: Any, event: str) -> None:
        channel_id = channel_id_of(message)
        channel = self._directory.get(channel_id) if channel_id is not None else None
        if channel is None or not isinstance(message, types.Message):
            return
        gid = message.grouped_id
        if gid is not None and event == "new":
            self._buffer_album(gid, message)
            return
        post = message_to_post(
            message,
            username=channel.username,
            title=channel.title,
            event="edit" if event == "edit" else "new",
        )
        if post is None:
            return
        if gid is not None and gid in self._album_first:
            # An edit of an album member belongs to the album's post.
            post = replace(post, message_id=self._album_first[gid], media="album")
        await self._enqueue(post)

    def _buffer_album(self, gid: int, message: Any) -> None:
        self._albums.setdefault(gid, []).append(message)
        if gid not in self._timers:
            self._timers[gid] = asyncio.create_task(self._flush_later(gid))

    async def _flush_later(self, gid: int) -> None:
        await asyncio.sleep(self._album_wait_s)
        self._timers.pop(gid, None)
        try:
            await self._flush_album(gid)
        except Exception:
            self.errors += 1
            log.exception("album %s failed", gid)

    async def _flush_album(self, gid: int) -> None:
        parts = self._albums.pop(gid, [])
        if not parts:
            return
        channel_id = channel_id_of(parts[0])
        channel = self._directory.get(channel_id) if channel_id is not None else None
        if channel is None:
            return
        post = album_to_post(parts, username=channel.username, title=channel.title)
        if post is None:
            return
        self._album_first[gid] = post.message_id
        while len(self._album_first) > ALBUM_MEMORY:
            self._album_first.popitem(last=False)
        await self._enqueue(post)

    async def flush_albums(self) -> None:
        """Send every buffered album now (on shutdown; the reconciler would find them too)."""
        for task in list(self._timers.values()):
            task.cancel()
        for task in list(self._timers.values()):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._timers.clear()
        for gid in list(self._albums):
            await self._flush_album(gid)

    async def _on_delete(self, channel_id: int, message_ids: Iterable[int]) -> None:
        channel = self._directory.get(channel_id)
        if channel is None:
            return
        now = datetime.now(UTC)
        for message_id in message_ids:
            await self._enqueue(
                Post(
                    channel_id=channel_id,
                    message_id=int(message_id),
                    date=now,
                    username=channel.username,
                    title=channel.title,
                    event="delete",
                )
            )

    async def _enqueue(self, post: Post) -> None:
        if await self._queue.enqueue(post):
            self.enqueued += 1
            if post.event == "new":
                await self._channels.touch_last_post(post.channel_id, post.date.timestamp())
