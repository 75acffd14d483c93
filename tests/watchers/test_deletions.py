"""Deletions while the watcher was down: the reconciler asks Telegram (the loopback MTProto
server, through the real Telethon client) again for the alerted posts of the last days, and a
post that is gone is followed up by the triage worker exactly as a live deletion is, with the
kept text; a post that still exists, one never alerted and one older than the window are not;
a second check adds nothing; 150 alerted posts take two getMessages calls; a FloodWait is
waited out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis.asyncio as aioredis

from bot.alerts import AlertJob
from bot.config import Settings
from bot.models import Post
from bot.storage import keys
from bot.storage.channels import Channel, ChannelRepository
from bot.storage.outbox import AlertOutbox
from bot.storage.repos import Repositories
from bot.storage.streams import StreamEntry
from bot.storage.watches import WatchRepository
from tests.support.mtproto import MTProtoServer
from tests.support.mtproto.fixtures import TEST_API_HASH, TEST_API_ID, sign_in
from tests.support.mtproto.world import WorldChannel
from watchers.client import connect_authorised, make_client
from watchers.reconciler import Reconciler

ANALYST = 4242
PHONE = "+447700900777"


def _settings(telegram: MTProtoServer, data_dir: Path) -> Settings:
    assert telegram.key_path is not None
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        TG_API_ID=TEST_API_ID,
        TG_API_HASH=TEST_API_HASH,
        TG_SESSION="vigil",
        VIGIL_DATA_DIR=str(data_dir),
        TG_SERVER=telegram.address,
        TG_SERVER_KEY=str(telegram.key_path),
        BACKFILL_CUTOFF_H=0,
    )


async def _signed_in_member(telegram: MTProtoServer, settings: Settings) -> WorldChannel:
    """The watcher's account signed in (session "vigil") and a member of @border_watch."""
    account = telegram.add_account(PHONE, first_name="Vigil")
    login = make_client(settings, "vigil", create=True)
    await sign_in(telegram, login, PHONE)
    await login.disconnect()
    world = telegram.add_channel("border_watch", title="Border watch")
    telegram.join(world, account)
    return world


async def _joined(redis: aioredis.Redis, world: WorldChannel) -> Channel:
    repo = ChannelRepository(redis)
    await repo.add(f"@{world.username}", added_by=1)
    resolved = await repo.mark_resolved(
        f"@{world.username}",
        channel_id=world.id,
        access_hash=world.access_hash,
        username=world.username,
        title="Border watch",
    )
    assert resolved is not None
    joined = await repo.mark_joined(resolved.key, "vigil")
    assert joined is not None
    return joined


def _post(world: WorldChannel, message_id: int, text: str, date: datetime) -> Post:
    return Post(
        channel_id=world.id,
        message_id=message_id,
        date=date,
        text=text,
        username=world.username,
        title="Border watch",
    )


async def _jobs(redis: aioredis.Redis) -> list[AlertJob]:
    entries = [StreamEntry(i, f) for i, f in await redis.xrange(keys.ALERTS_STREAM)]
    hydrated = await AlertOutbox(redis).hydrate(entries)  # as delivery reads them
    return [AlertJob.from_fields(e.fields) for e in hydrated if e.fields.get("type") == "alert"]


async def test_a_post_deleted_while_down_is_followed_up_and_one_still_there_is_not(
    telegram: MTProtoServer, redis: aioredis.Redis, data_dir: Path
) -> None:
    from bot.app import build_triage_worker

    settings = _settings(telegram, data_dir)
    world = await _signed_in_member(telegram, settings)
    now = datetime.now(UTC)
    hostile = "Выслать мигрантов <b>&amp; 😀 \u202eעברית\u200b " + "х" * 10_000
    gone = await telegram.post(world, hostile, push=False)
    kept = await telegram.post(world, "Мигрантов выслать: пост на месте", push=False)
    quiet = await telegram.post(world, "Погода: солнечно", push=False)
    old = await telegram.post(world, "Старый пост про мигрантов", push=False)
    channel = await _joined(redis, world)
    await WatchRepository(redis).add(ANALYST, "мигрант")

    repos = Repositories.build(redis)
    worker, _run = await build_triage_worker(settings, redis, consumer="t1")
    await repos.posts.enqueue_many(
        [
            _post(world, gone.id, hostile, now),
            _post(world, kept.id, kept.text, now),
            _post(world, quiet.id, quiet.text, now),
            _post(world, old.id, old.text, now - timedelta(days=5)),
        ]
    )
    await worker.drain()
    first = await _jobs(redis)
    assert sorted(j.post.message_id for j in first) == sorted([gone.id, kept.id, old.id])

    # Down: all but one deleted, and Telegram pushes the deletion to nobody.
    await telegram.delete(world, gone.id, quiet.id, old.id, push=False)

    client = make_client(settings, "vigil")
    await connect_authorised(client, "vigil")
    try:
        reconciler = Reconciler(repos, client, repos.channels, session="vigil", request_gap_s=0)
        calls = telegram.count("channels.getMessages")
        assert await reconciler.check_deletions(channel) == 1
        assert telegram.count("channels.getMessages") == calls + 1
        await worker.drain()
        # Checked again (the next sweep, another restart): the post still there is asked
        # about again, the one known deleted is not, and nothing new is told.
        assert await reconciler.check_deletions(channel) == 0
        assert telegram.count("channels.getMessages") == calls + 2
        recent = now.timestamp() - 3 * 86400
        assert await repos.alerted.since(world.id, recent) == [kept.id]
        # Older than DELETION_CHECK_DAYS: never asked about, so never followed up.
        assert await repos.alerted.since(world.id, 0) == [kept.id, old.id]
    finally:
        await client.disconnect()
    await worker.drain()
    follow_ups = [j for j in await _jobs(redis) if j.kind != "new"]
    assert [(j.analyst_id, j.post.message_id, j.kind) for j in follow_ups] == [
        (ANALYST, gone.id, "delete")
    ]
    # The kept text, the watch and the matched words, as a live deletion's follow-up has.
    deleted = follow_ups[0]
    assert deleted.post.text == hostile
    assert deleted.watch_id == first[0].watch_id
    assert [hostile[s:e] for s, e in deleted.spans][:1] == ["мигрантов"]


async def test_many_alerted_posts_are_asked_100_a_call_through_a_flood_wait(
    telegram: MTProtoServer, redis: aioredis.Redis, data_dir: Path
) -> None:
    settings = _settings(telegram, data_dir)
    world = await _signed_in_member(telegram, settings)
    posted = await telegram.post_many(world, [f"мигранты {i}" for i in range(150)])
    channel = await _joined(redis, world)
    repos = Repositories.build(redis)
    now = datetime.now(UTC)
    await repos.archive.put_many([_post(world, p.id, p.text, now) for p in posted])
    for p in posted:  # as the alert outbox records an alert
        await redis.hset(keys.alerts_made(world.id, p.id), str(ANALYST), "0")
    await telegram.delete(world, posted[7].id, posted[120].id, push=False)
    telegram.flood_wait("channels.getMessages", 30, on_call=1)
    sleeps: list[float] = []
    client = make_client(settings, "vigil")
    await connect_authorised(client, "vigil")

    async def no_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        client._flood_waited_requests.clear()

    try:
        reconciler = Reconciler(
            repos, client, repos.channels, session="vigil", sleep=no_sleep, request_gap_s=0
        )
        calls = telegram.count("channels.getMessages")
        assert await reconciler.check_deletions(channel) == 2
        asked = telegram.count("channels.getMessages") - calls
    finally:
        await client.disconnect()
    assert sleeps == [31.0]  # waited (by the service's stoppable sleep), then asked again
    assert asked == 3  # the refused call, then 100 and 50 ids
    entries = await redis.xrange(keys.POSTS_STREAM)
    deletes = [Post.from_json(f["post"]) for _i, f in entries]
    assert sorted((p.message_id, p.event) for p in deletes) == [
        (posted[7].id, "delete"),
        (posted[120].id, "delete"),
    ]


async def test_no_alerted_posts_means_no_call_and_zero_days_turns_it_off(
    telegram: MTProtoServer, redis: aioredis.Redis, data_dir: Path
) -> None:
    settings = _settings(telegram, data_dir)
    world = await _signed_in_member(telegram, settings)
    post = await telegram.post(world, "мигранты", push=False)
    channel = await _joined(redis, world)
    repos = Repositories.build(redis)
    await repos.archive.put_many([_post(world, post.id, post.text, datetime.now(UTC))])
    await telegram.delete(world, post.id, push=False)
    client = make_client(settings, "vigil")
    await connect_authorised(client, "vigil")
    try:
        on = Reconciler(repos, client, repos.channels, session="vigil", request_gap_s=0)
        assert await on.check_deletions(channel) == 0  # archived, never alerted: not asked
        await redis.hset(keys.alerts_made(world.id, post.id), str(ANALYST), "0")
        off = Reconciler(
            repos, client, repos.channels, session="vigil", request_gap_s=0, deletion_check_days=0
        )
        assert await off.check_deletions(channel) == 0
    finally:
        await client.disconnect()
    assert telegram.count("channels.getMessages") == 0
    assert await redis.xlen(keys.POSTS_STREAM) == 0
