"""A channel known only by id (an admin's ➕ on an amplification candidate) is found through a
monitored channel's post forwarded from it, by the account whose session knows that channel:
real Telethon clients on the loopback MTProto server, real Redis, the real joiner."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import redis.asyncio as aioredis

from bot.models import Forward, Post
from bot.storage.channels import ChannelRepository
from bot.storage.repos import Repositories
from tests.support.mtproto import MTProtoServer
from tests.support.mtproto.world import Forward as WorldForward
from tests.watchers.test_loopback import ADMIN
from tests.watchers.test_loopback import _log_in as log_in
from tests.watchers.test_loopback import _settings as loopback_settings
from watchers.client import connect_authorised, make_client
from watchers.joiner import Joiner, JoinPolicy


async def test_the_account_that_watches_the_forwarding_channel_resolves_the_id(
    telegram: MTProtoServer, redis: aioredis.Redis, data_dir: Path
) -> None:
    settings = loopback_settings(telegram, data_dir, "one,two")
    one = await log_in(telegram, settings, "one", "+447700900051")
    two = await log_in(telegram, settings, "two", "+447700900052")
    hub = telegram.add_channel("hub_of_one", title="Hub")
    feeder = telegram.add_channel("feeder_by_id", title="Feeder")
    repos = Repositories.build(redis)
    channels = ChannelRepository(redis)
    await channels.add("@hub_of_one", added_by=ADMIN)
    await channels.set_account("@hub_of_one", "one")
    clients = {name: make_client(settings, name) for name in ("one", "two")}
    try:
        joiners = {}
        for name, client in clients.items():
            await connect_authorised(client, name)
            joiners[name] = Joiner(
                repos, client, channels, session=name, policy=JoinPolicy(spacing_s=0)
            )
        joined = await joiners["one"].step()
        assert joined is not None and joined.state == "joined" and joined.key == f"id:{hub.id}"

        # The hub forwards the feeder; triage kept the forward (what its batch writes).
        original = await telegram.post(feeder, "Оригинал")
        copy = await telegram.post(hub, "Оригинал", forward=WorldForward(feeder.id, original.id))
        forwarded = Post(
            hub.id, copy.id, datetime.now(UTC), text="Оригинал", forward=Forward(feeder.id, 1)
        )
        async with redis.pipeline(transaction=False) as pipe:
            repos.campaigns.forward_commands(pipe, [forwarded])
            await pipe.execute()

        # The ➕ adds it by id; the assignment gave it to two, whose session knows no hub.
        await channels.add(f"id:{feeder.id}", added_by=ADMIN)
        await channels.set_account(f"id:{feeder.id}", "two")
        handed = await joiners["two"].step()
        assert handed is not None and (handed.state, handed.reason) == ("pending", "handed over")
        entry = await channels.by_id(feeder.id)
        assert entry is not None and entry.account == "one" and entry.state == "pending"
        assert await joiners["two"].step() is None  # nothing of two's left to do
        done = await joiners["one"].step()
        assert done is not None and done.state == "joined"
    finally:
        for client in clients.values():
            await client.disconnect()
    entry = await channels.by_id(feeder.id)
    assert entry is not None and (entry.state, entry.account) == ("joined", "one")
    assert (entry.username, entry.title, entry.access_hash) == (
        "feeder_by_id",
        "Feeder",
        feeder.access_hash,
    )
    assert one.user_id in feeder.participants and two.user_id not in feeder.participants
    assert not telegram.unimplemented, telegram.unimplemented
