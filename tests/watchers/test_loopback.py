"""The watcher service with the real Telethon client against the loopback MTProto server (as
Telegram), real Redis, and intervals shortened so a test takes seconds: joins by every kind
of reference, refusals with their reasons, two accounts sharing channels under their caps, a
revoked account's channels moving to the other, and the reconciler through a gap of 250 posts
with a FloodWait half-way."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from bot.config import Settings
from bot.models import Post
from bot.storage import keys
from bot.storage.channels import Channel, ChannelRepository
from bot.storage.posts import PostQueue
from bot.storage.repos import Repositories
from tests.support.mtproto import MTProtoServer
from tests.support.mtproto.fixtures import TEST_API_HASH, TEST_API_ID, eventually, sign_in
from tests.support.mtproto.world import Account
from watchers.client import connect_authorised, make_client
from watchers.joiner import Joiner, JoinPolicy
from watchers.reconciler import Reconciler
from watchers.service import Intervals, WatcherService

ADMIN = 11
FAST = Intervals(
    catch_up_s={"urgent": 0.3, "high": 0.3, "normal": 0.3, "low": 0.3},
    edit_sweep_s=60.0,
    reconcile_tick_s=0.2,
    join_tick_s=0.1,
    assign_s=0.2,
    health_s=0.5,
    lock_refresh_s=1.0,
    request_gap_s=0.0,
)


def _settings(telegram: MTProtoServer, data_dir: Path, sessions: str) -> Settings:
    assert telegram.key_path is not None
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        TG_API_ID=TEST_API_ID,
        TG_API_HASH=TEST_API_HASH,
        TG_SESSION=sessions,
        VIGIL_DATA_DIR=str(data_dir),
        TG_SERVER=telegram.address,
        TG_SERVER_KEY=str(telegram.key_path),
        ADMIN_IDS=str(ADMIN),
    )


async def _log_in(telegram: MTProtoServer, settings: Settings, name: str, phone: str) -> Account:
    """What `vigil login --name NAME` leaves behind: a logged-in session file."""
    account = telegram.add_account(phone, first_name=name)
    client = make_client(settings, name, create=True)
    await sign_in(telegram, client, phone)
    await client.disconnect()
    return account


async def _notices(redis: aioredis.Redis) -> list[str]:
    entries = await redis.xrange(keys.ALERTS_STREAM)
    return [f["notice"] for _id, f in entries if f.get("type") == "notice"]


async def _posts(redis: aioredis.Redis) -> list[Post]:
    return [Post.from_json(f["post"]) for _id, f in await redis.xrange(keys.POSTS_STREAM)]


@pytest.fixture
async def running() -> AsyncIterator[list[WatcherService]]:
    """Services a test starts are closed at its end."""
    started: list[WatcherService] = []
    try:
        yield started
    finally:
        for service in started:
            await service.close()


async def test_two_accounts_join_every_kind_of_reference_and_survive_a_revocation(
    telegram: MTProtoServer,
    redis: aioredis.Redis,
    data_dir: Path,
    running: list[WatcherService],
) -> None:
    settings = _settings(telegram, data_dir, "one,two")
    one = await _log_in(telegram, settings, "one", "+447700900001")
    two = await _log_in(telegram, settings, "two", "+447700900002")
    one.channels_cap = 2  # read by the service from help.getAppConfig
    two.channels_cap = 3
    news = telegram.add_channel("frontier_news", title="Frontier news")
    wire = telegram.add_channel("border_wire", title="Border wire")
    closed = telegram.add_channel(title="Closed club", private=True, invite_hash="AbC123xyz")
    hidden = telegram.add_channel(title="Hidden", private=True)
    refs = [
        "@frontier_news",
        "https://t.me/border_wire",
        "t.me/+AbC123xyz",
        "https://t.me/nobody_by_this_name",
        f"https://t.me/c/{hidden.id}/5",
    ]
    repo = ChannelRepository(redis)
    for ref in refs:
        await repo.add(ref, added_by=ADMIN)

    service = WatcherService(
        settings, Repositories.build(redis), intervals=FAST, join_policy=JoinPolicy(spacing_s=0.0)
    )
    running.append(service)
    await service.start()

    async def settled() -> bool:
        return not await repo.with_state("pending")

    await eventually(settled)
    channels = {c.title or c.ref: c for c in await repo.list()}
    assert {k: (c.state, c.reason) for k, c in channels.items()} == {
        "Frontier news": ("joined", None),
        "Border wire": ("joined", None),
        "Closed club": ("joined", None),
        "@nobody_by_this_name": ("failed", "no such username"),
        f"id:{hidden.id}": ("failed", "private"),
    }
    load = Counter(c.account for c in channels.values() if c.state == "joined")
    assert 1 <= load["one"] <= 2 and 1 <= load["two"] <= 3 and sum(load.values()) == 3
    for channel in (news, wire, closed):
        joined_by = channels[channel.title].account
        member = one if joined_by == "one" else two
        assert member.user_id in channel.participants
    assert channels["Frontier news"].channel_id == news.id  # kept by id from now on

    # Live posts of a joined channel reach the posts stream.
    await telegram.post(news, "Live: мигранты на границе")
    await eventually(lambda: _has_text(redis, "Live: мигранты"))

    # Account one is revoked: the admins hear of it, its channels move to two, two joins them.
    telegram.revoke(one)
    await eventually(lambda: _notice_about(redis, "Telegram session one stopped working"))
    await eventually(lambda: _all_on(repo, "two", 3))
    for channel in (news, wire, closed):
        assert two.user_id in channel.participants
    await telegram.post(wire, "После отзыва: граница закрыта")
    await eventually(lambda: _has_text(redis, "После отзыва"))
    assert service.accounts["one"].alive is False and service.accounts["two"].alive
    assert not telegram.unimplemented, telegram.unimplemented


async def _has_text(redis: aioredis.Redis, needle: str) -> bool:
    return any(needle in p.text for p in await _posts(redis))


async def _notice_about(redis: aioredis.Redis, needle: str) -> bool:
    return any(needle in n for n in await _notices(redis))


async def _all_on(repo: ChannelRepository, account: str, count: int) -> bool:
    joined = [c for c in await repo.with_state("joined") if c.account == account]
    return len(joined) == count


async def test_reconciler_fetches_a_gap_of_250_through_a_flood_wait_once_each(
    telegram: MTProtoServer, redis: aioredis.Redis, data_dir: Path
) -> None:
    settings = _settings(telegram, data_dir, "vigil")
    account = await _log_in(telegram, settings, "vigil", "+447700900003")
    world = telegram.add_channel("gappy", title="Gappy")
    telegram.join(world, account)
    await telegram.post_many(world, [f"before {i}" for i in range(1, 11)])
    repo = ChannelRepository(redis)
    await repo.add("@gappy", added_by=ADMIN)
    resolved = await repo.mark_resolved(
        "@gappy", channel_id=world.id, access_hash=world.access_hash, username="gappy", title="G"
    )
    assert resolved is not None
    joined = await repo.mark_joined(resolved.key, "vigil")
    assert joined is not None
    client = make_client(settings, "vigil")
    await connect_authorised(client, "vigil")
    sleeps: list[float] = []

    async def no_sleep(seconds: float) -> None:
        """The wait passes at once: Telethon's memory of the flood wait (it refuses the same
        request locally until the wait is over) goes with it."""
        sleeps.append(seconds)
        client._flood_waited_requests.clear()

    try:
        reconciler = Reconciler(
            Repositories.build(redis),
            client,
            repo,
            session="vigil",
            sleep=no_sleep,
            request_gap_s=0.0,
        )
        first = await reconciler.catch_up(joined)  # first sight: start at the newest post
        assert (first.enqueued, await reconciler.checkpoint(world.id)) == (0, 10)

        # 250 posts Telegram never pushed; the live handler happened to see two of them.
        await telegram.post_many(world, [f"missed {i} <b>&amp; 😀" for i in range(11, 261)])
        queue = PostQueue(redis)
        for msg_id in (50, 200):
            await queue.enqueue(
                Post(channel_id=world.id, message_id=msg_id, date=datetime.now(UTC), text="x")
            )
        telegram.flood_wait(
            "messages.getHistory", 30, on_call=telegram.count("messages.getHistory") + 2
        )

        caught = await reconciler.catch_up(joined)
        again = await reconciler.catch_up(await _fresh(repo, joined))
    finally:
        await client.disconnect()

    assert caught.flood_waits == 1 and sleeps == [31.0]  # the wait was waited, then it went on
    assert await reconciler.checkpoint(world.id) == 260
    ids = Counter(p.message_id for p in await _posts(redis))
    assert sorted(ids) == list(range(11, 261)) and set(ids.values()) == {1}
    assert again.enqueued == 0
    assert caught.enqueued == 248  # two were on the stream already
    assert await redis.hget(keys.FLOOD_WAITS, "vigil") is not None  # shown in vigil status


async def _fresh(repo: ChannelRepository, channel: Channel) -> Channel:
    current = await repo.get(channel.key)
    assert current is not None
    return current


async def test_a_post_made_just_after_the_join_is_not_lost(
    telegram: MTProtoServer, redis: aioredis.Redis, data_dir: Path
) -> None:
    """Between the join and the first catch-up the live handler does not know the channel
    yet; the first catch-up keeps what was posted since the join, and nothing older."""
    settings = _settings(telegram, data_dir, "vigil")
    await _log_in(telegram, settings, "vigil", "+447700900004")
    world = telegram.add_channel("fresh_news", title="Fresh news")
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    await telegram.post(world, "old news before the join", date=an_hour_ago, push=False)
    repo = ChannelRepository(redis)
    await repo.add("@fresh_news", added_by=ADMIN)
    await repo.set_account("@fresh_news", "vigil")  # what the service's assignment does
    client = make_client(settings, "vigil")
    await connect_authorised(client, "vigil")
    try:
        joiner = Joiner(
            Repositories.build(redis),
            client,
            repo,
            session="vigil",
            policy=JoinPolicy(spacing_s=0),
        )
        outcome = await joiner.step()
        assert outcome is not None and outcome.state == "joined"
        fresh = await telegram.post(world, "posted right after the join", push=False)
        channel = await repo.get(outcome.key)
        assert channel is not None
        assert channel.joined_at is not None
        reconciler = Reconciler(
            Repositories.build(redis), client, repo, session="vigil", request_gap_s=0.0
        )
        first = await reconciler.catch_up(channel)
    finally:
        await client.disconnect()
    assert [p.text for p in await _posts(redis)] == ["posted right after the join"]
    assert first.checkpoint == fresh.id
