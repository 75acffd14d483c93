from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
import redis.asyncio as aioredis

from bot.models import Post
from bot.storage import keys
from bot.storage.channels import Channel, ChannelRepository
from bot.storage.posts import PostQueue
from bot.storage.repos import Repositories
from tests.watchers.telegram_fakes import T0, FakeTelegram, message, photo
from watchers.reconciler import Reconciler

CHANNEL = 1001


async def _channel(redis: aioredis.Redis) -> Channel:
    repo = ChannelRepository(redis)
    await repo.add("@news_channel", added_by=1)
    resolved = await repo.mark_resolved(
        "@news_channel", channel_id=CHANNEL, access_hash=77, username="news_channel", title="N"
    )
    assert resolved is not None
    joined = await repo.mark_joined(resolved.key, "acc")
    assert joined is not None
    return joined


async def _stream_posts(redis: aioredis.Redis) -> list[Post]:
    entries = await redis.xrange(keys.POSTS_STREAM)
    return [Post.from_json(fields["post"]) for _id, fields in entries]


def _covered_ids(posts: list[Post]) -> Counter[int]:
    ids: Counter[int] = Counter()
    for post in posts:
        for msg_id in post.extra.get("album", [post.message_id]):
            ids[msg_id] += 1
    return ids


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _history(fake: FakeTelegram, last: int) -> None:
    history = []
    for i in range(1, last + 1):
        kwargs = {}
        if i in (199, 200, 201):  # an album across the 100-message page boundary
            kwargs = {"grouped_id": 555, "media": photo(i)}
        text = f"post {i} ‏עברית‏"
        if i in (199, 200, 201):
            text = "caption <b>&amp; 😀" if i == 199 else ""
        history.append(message(CHANNEL, i, text, **kwargs))
    fake.history[CHANNEL] = history


async def test_gap_of_250_with_flood_wait_and_restart_enqueues_each_once(
    redis: aioredis.Redis,
) -> None:
    channel = await _channel(redis)
    await redis.set(keys.channel_checkpoint(CHANNEL), 100)
    fake = FakeTelegram()
    _history(fake, 350)
    # the live handler already saw two of the missed posts
    live = PostQueue(redis)
    await live.enqueue(Post(channel_id=CHANNEL, message_id=150, date=T0, text="live"))
    await live.enqueue(Post(channel_id=CHANNEL, message_id=300, date=T0, text="live"))

    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    clock = Clock((T0 + timedelta(days=1)).timestamp())
    fake.flood_after = 125  # FloodWait half-way through the first pass
    fake.crash_after = 170  # then the process dies half-way (after the flood wait)
    first = Reconciler(
        Repositories.build(redis),
        fake,
        ChannelRepository(redis),
        session="acc",
        sleep=fake_sleep,
        clock=clock,
    )
    with pytest.raises(ConnectionError):
        await first.catch_up(channel)
    assert sleeps == [31.0]
    assert float(await redis.hget(keys.FLOOD_WAITS, "acc")) == pytest.approx(clock.now + 30)
    halfway = await first.checkpoint(CHANNEL)
    assert halfway is not None and 100 < halfway < 350

    restarted = Reconciler(
        Repositories.build(redis),
        fake,
        ChannelRepository(redis),
        session="acc",
        sleep=fake_sleep,
        clock=clock,
    )
    result = await restarted.catch_up(channel)
    assert result.checkpoint == 350
    again = await restarted.catch_up(channel)
    assert again.fetched == 0 and again.enqueued == 0

    posts = await _stream_posts(redis)
    covered = _covered_ids(posts)
    assert set(covered) == set(range(101, 351))
    assert max(covered.values()) == 1, [i for i, n in covered.items() if n > 1]
    album = next(p for p in posts if p.message_id == 199)
    assert album.extra["album"] == [199, 200, 201]
    assert album.media == "album" and album.text == "caption <b>&amp; 😀"
    assert all(p.username == "news_channel" for p in posts if p.source == "reconciler")
    stored = await ChannelRepository(redis).by_id(CHANNEL)
    assert stored is not None and stored.last_post_at is not None


async def test_first_sight_starts_at_the_newest_message(redis: aioredis.Redis) -> None:
    channel = await _channel(redis)
    fake = FakeTelegram()
    _history(fake, 40)
    rec = Reconciler(Repositories.build(redis), fake, ChannelRepository(redis), session="acc")
    result = await rec.catch_up(channel)
    assert result.checkpoint == 40 and result.enqueued == 0
    assert await redis.xlen(keys.POSTS_STREAM) == 0
    fake.history[CHANNEL].append(message(CHANNEL, 41, "fresh"))
    assert (await rec.catch_up(channel)).enqueued == 1
    backfill = Reconciler(
        Repositories.build(redis),
        fake,
        ChannelRepository(redis),
        session="acc",
        initial_backfill=5,
    )
    await redis.delete(keys.channel_checkpoint(CHANNEL))
    await backfill.catch_up(channel)
    assert [p.message_id for p in await _stream_posts(redis)] == [41, 37, 38, 39, 40]


async def test_a_trailing_album_still_arriving_is_held_back(redis: aioredis.Redis) -> None:
    channel = await _channel(redis)
    await redis.set(keys.channel_checkpoint(CHANNEL), 10)
    fake = FakeTelegram()
    fake.history[CHANNEL] = [message(CHANNEL, 11, "a")] + [
        message(CHANNEL, i, "album" if i == 12 else "", grouped_id=9, media=photo(i))
        for i in (12, 13)
    ]
    clock = Clock(fake.history[CHANNEL][-1].date.timestamp() + 5)
    rec = Reconciler(
        Repositories.build(redis), fake, ChannelRepository(redis), session="acc", clock=clock
    )
    await rec.catch_up(channel)
    assert await rec.checkpoint(CHANNEL) == 11
    fake.history[CHANNEL].append(
        message(CHANNEL, 14, "", grouped_id=9, media=photo(14), date=T0 + timedelta(minutes=13))
    )
    clock.now += 120
    await rec.catch_up(channel)
    assert await rec.checkpoint(CHANNEL) == 14
    posts = await _stream_posts(redis)
    assert [p.extra.get("album") for p in posts] == [None, [12, 13, 14]]


async def test_edit_sweep_finds_recent_edits_once(redis: aioredis.Redis) -> None:
    channel = await _channel(redis)
    fake = FakeTelegram()
    _history(fake, 30)
    clock = Clock((T0 + timedelta(hours=1)).timestamp())
    rec = Reconciler(
        Repositories.build(redis), fake, ChannelRepository(redis), session="acc", clock=clock
    )
    await redis.set(keys.channel_checkpoint(CHANNEL), 20)
    await rec.catch_up(channel)
    edited_at = T0 + timedelta(minutes=50)
    fake.history[CHANNEL][24] = message(CHANNEL, 25, "changed", edit_date=edited_at)
    fake.history[CHANNEL][4] = message(CHANNEL, 5, "old edit", edit_date=edited_at)
    assert await rec.sweep_edits(channel) == 2
    assert await rec.sweep_edits(channel) == 0
    edits = [p for p in await _stream_posts(redis) if p.event == "edit"]
    assert {p.message_id for p in edits} == {5, 25}
    # outside the window nothing is looked at
    clock.now += 72 * 3600
    fake.history[CHANNEL][9] = message(CHANNEL, 10, "late", edit_date=T0 + timedelta(days=3))
    assert await rec.sweep_edits(channel) == 0


async def test_reconciled_post_already_seen_live_and_edited_is_an_edit(
    redis: aioredis.Redis,
) -> None:
    channel = await _channel(redis)
    await redis.set(keys.channel_checkpoint(CHANNEL), 1)
    await PostQueue(redis).enqueue(Post(channel_id=CHANNEL, message_id=2, date=T0, text="v1"))
    fake = FakeTelegram()
    fake.history[CHANNEL] = [
        message(CHANNEL, 2, "v2", edit_date=T0 + timedelta(minutes=5)),
        message(CHANNEL, 3, "new", edit_date=T0 + timedelta(minutes=6)),
    ]
    rec = Reconciler(Repositories.build(redis), fake, ChannelRepository(redis), session="acc")
    await rec.catch_up(channel)
    events = {p.message_id: p.event for p in await _stream_posts(redis) if p.source != "live"}
    assert events == {2: "edit", 3: "new"}
