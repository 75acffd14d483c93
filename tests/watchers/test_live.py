from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
import redis.asyncio as aioredis
from telethon.tl import types

from bot.models import Post
from bot.storage import keys
from bot.storage.channels import ChannelRepository
from bot.storage.repos import Repositories
from tests.watchers.telegram_fakes import T0, message, photo
from watchers.live import ChannelDirectory, LiveIngest

CHANNEL = 2002


async def _live(redis: aioredis.Redis, album_wait_s: float = 0.01) -> LiveIngest:
    repo = ChannelRepository(redis)
    await repo.add("@watched_one", added_by=1)
    await repo.mark_resolved(
        "@watched_one", channel_id=CHANNEL, access_hash=1, username="watched_one", title="W"
    )
    await repo.mark_joined(f"id:{CHANNEL}", "acc")
    directory = ChannelDirectory()
    await directory.refresh(repo)
    return LiveIngest(
        Repositories.build(redis), directory, channels=repo, album_wait_s=album_wait_s
    )


async def _posts(redis: aioredis.Redis) -> list[Post]:
    return [Post.from_json(f["post"]) for _i, f in await redis.xrange(keys.POSTS_STREAM)]


def _new(msg: types.Message) -> types.UpdateNewChannelMessage:
    return types.UpdateNewChannelMessage(message=msg, pts=1, pts_count=1)


async def test_new_edit_delete_through_the_handler(redis: aioredis.Redis) -> None:
    live = await _live(redis)
    text = "Threat <script> & \u200bzero width 😀 " + "x" * 10_000
    await live.on_update(_new(message(CHANNEL, 1, text, media=photo())))
    await live.on_update(_new(message(CHANNEL, 1, text)))  # repeated update: no duplicate
    edit = message(CHANNEL, 1, "edited", edit_date=T0 + timedelta(hours=1))
    await live.on_update(types.UpdateEditChannelMessage(message=edit, pts=2, pts_count=1))
    await live.on_update(
        types.UpdateDeleteChannelMessages(channel_id=CHANNEL, messages=[1, 2], pts=3, pts_count=2)
    )
    posts = await _posts(redis)
    assert [(p.message_id, p.event) for p in posts] == [
        (1, "new"),
        (1, "edit"),
        (1, "delete"),
        (2, "delete"),
    ]
    assert posts[0].text == text and posts[0].media == "photo"
    assert posts[0].username == "watched_one" and posts[0].source == "live"
    assert live.errors == 0
    channel = await ChannelRepository(redis).by_id(CHANNEL)
    assert channel is not None and channel.last_post_at == posts[0].date.timestamp()
    # live never moves the reconciler's checkpoint
    assert await redis.get(keys.channel_checkpoint(CHANNEL)) is None


async def test_unmonitored_channels_and_service_messages_are_ignored(
    redis: aioredis.Redis,
) -> None:
    live = await _live(redis)
    await live.on_update(_new(message(9999, 1, "not ours")))
    service = types.MessageService(
        id=5,
        peer_id=types.PeerChannel(CHANNEL),
        date=T0,
        action=types.MessageActionPinMessage(),
    )
    await live.on_update(_new(service))
    await live.on_update(types.UpdateDeleteChannelMessages(9999, [1], 1, 1))
    await live.on_update(types.UpdateNewChannelMessage(types.MessageEmpty(1, None), 1, 1))
    assert await redis.xlen(keys.POSTS_STREAM) == 0
    assert live.errors == 0


async def test_a_bad_update_is_logged_and_counted_and_the_next_one_works(
    redis: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    live = await _live(redis)
    broken = message(CHANNEL, 3, "ok")
    broken.entities = [types.MessageEntityUrl(offset=0, length=2)]
    broken.message = None  # type: ignore[assignment]
    broken.date = "not a date"  # type: ignore[assignment]
    broken.views = "many"  # type: ignore[assignment]
    broken.id = "three"  # type: ignore[assignment]
    await live.on_update(_new(broken))
    await live.on_update(_new(message(CHANNEL, 4, "fine")))
    assert live.errors == 1
    assert await redis.hget(keys.WATCHER_STATS, "live_errors") == "1"
    assert "live update UpdateNewChannelMessage failed" in caplog.text
    assert [p.message_id for p in await _posts(redis)] == [4]
    # garbage fields that can be read safely are dropped, not fatal
    odd = message(CHANNEL, 5, "odd")
    odd.views = "many"  # type: ignore[assignment]
    odd.date = "not a date"  # type: ignore[assignment]
    await live.on_update(_new(odd))
    assert live.errors == 1
    assert (await _posts(redis))[-1].views is None


async def test_album_parts_become_one_post_and_edits_map_to_it(redis: aioredis.Redis) -> None:
    live = await _live(redis, album_wait_s=0.05)
    for msg_id, text in ((11, "Album caption"), (12, ""), (13, "")):
        part = message(CHANNEL, msg_id, text, grouped_id=77, media=photo(msg_id))
        await live.on_update(_new(part))
    assert await redis.xlen(keys.POSTS_STREAM) == 0  # still buffering
    await asyncio.sleep(0.2)
    posts = await _posts(redis)
    assert len(posts) == 1
    assert posts[0].message_id == 11 and posts[0].extra["album"] == [11, 12, 13]
    edited = message(
        CHANNEL, 12, "second caption", grouped_id=77, edit_date=T0 + timedelta(minutes=3)
    )
    await live.on_update(types.UpdateEditChannelMessage(edited, 4, 1))
    posts = await _posts(redis)
    assert (posts[-1].message_id, posts[-1].event, posts[-1].media) == (11, "edit", "album")


async def test_buffered_albums_are_flushed_on_shutdown(redis: aioredis.Redis) -> None:
    live = await _live(redis, album_wait_s=60)
    await live.on_update(_new(message(CHANNEL, 21, "a", grouped_id=5, media=photo(21))))
    await live.on_update(_new(message(CHANNEL, 22, "", grouped_id=5, media=photo(22))))
    await live.flush_albums()
    posts = await _posts(redis)
    assert [p.extra.get("album") for p in posts] == [[21, 22]]


async def test_paused_channel_is_not_ingested(redis: aioredis.Redis) -> None:
    live = await _live(redis)
    repo = ChannelRepository(redis)
    await repo.set_paused(f"id:{CHANNEL}", True)
    directory = ChannelDirectory()
    await directory.refresh(repo)
    paused = LiveIngest(Repositories.build(redis), directory, channels=repo)
    await paused.on_update(_new(message(CHANNEL, 1, "quiet")))
    assert await redis.xlen(keys.POSTS_STREAM) == 0
    assert len(directory) == 0 and live is not None
