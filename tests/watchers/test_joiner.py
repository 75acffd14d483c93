from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import redis.asyncio as aioredis
from telethon import errors
from telethon.tl import functions, types

from bot.storage import keys
from bot.storage.channels import ChannelRepository
from bot.storage.repos import Repositories
from tests.watchers.telegram_fakes import T0, FakeTelegram, app_config, channel_chat
from watchers.joiner import Joiner, JoinPolicy, channels_cap


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 8, 0, tzinfo=UTC).timestamp()

    def __call__(self) -> float:
        return self.now


def _resolver(table: dict[str, Any]) -> Any:
    def answer(request: functions.contacts.ResolveUsernameRequest) -> Any:
        found = table[request.username]
        if isinstance(found, Exception):
            raise found
        if isinstance(found, types.User):
            return types.contacts.ResolvedPeer(types.PeerUser(found.id), [], [found])
        return types.contacts.ResolvedPeer(types.PeerChannel(found.id), [found], [])

    return answer


async def _pending(repo: ChannelRepository, *refs: str, account: str = "acc") -> None:
    for ref in refs:
        channel = await repo.add(ref, added_by=1)
        await repo.set_account(channel.key, account)


def _names(fake: FakeTelegram) -> list[str]:
    return [type(r).__name__ for r in fake.requests]


async def test_spacing_daily_cap_and_resume_after_restart(redis: aioredis.Redis) -> None:
    repo = ChannelRepository(redis)
    await _pending(repo, "@chan_one", "@chan_two", "@chan_three", "@chan_four")
    fake = FakeTelegram()
    fake.answers[functions.contacts.ResolveUsernameRequest] = _resolver(
        {
            f"chan_{n}": channel_chat(100 + i, f"chan_{n}")
            for i, n in enumerate(("one", "two", "three", "four"))
        }
    )
    fake.answers[functions.channels.JoinChannelRequest] = lambda r: types.Updates(
        [], [], [], T0, 0
    )
    clock = Clock()
    policy = JoinPolicy(spacing_s=300, daily_cap=3)
    joiner = Joiner(
        Repositories.build(redis), fake, repo, session="acc", policy=policy, clock=clock
    )

    first = await joiner.step()
    assert first is not None and first.state == "joined" and first.key == "id:100"
    clock.now += 299
    assert await joiner.step() is None  # spacing
    clock.now += 1
    assert (await joiner.step()) is not None

    restarted = Joiner(
        Repositories.build(redis), fake, repo, session="acc", policy=policy, clock=clock
    )
    clock.now += 100
    assert await restarted.step() is None  # the pace survived the restart
    clock.now += 200
    assert (await restarted.step()) is not None
    clock.now += 3600
    assert await restarted.step() is None  # daily cap of 3 reached
    assert await restarted.next_allowed_at() == datetime(2026, 3, 2, tzinfo=UTC).timestamp()
    clock.now = datetime(2026, 3, 2, 0, 0, 1, tzinfo=UTC).timestamp()
    fourth = await restarted.step()
    assert fourth is not None and fourth.key == "id:103"
    joined = await repo.with_state("joined")
    assert {c.channel_id for c in joined} == {100, 101, 102, 103}
    assert all(c.account == "acc" and c.resolved_by == "acc" for c in joined)
    assert _names(fake).count("ResolveUsernameRequest") == 4
    assert _names(fake).count("JoinChannelRequest") == 4


async def test_flood_wait_blocks_the_account_and_keeps_the_resolution(
    redis: aioredis.Redis,
) -> None:
    repo = ChannelRepository(redis)
    await _pending(repo, "@chan_one")
    fake = FakeTelegram()
    fake.answers[functions.contacts.ResolveUsernameRequest] = _resolver(
        {"chan_one": channel_chat(100, "chan_one")}
    )
    calls = {"join": 0}

    def join(request: Any) -> Any:
        calls["join"] += 1
        if calls["join"] == 1:
            raise errors.FloodWaitError(request=None, capture=3600)
        return types.Updates([], [], [], T0, 0)

    fake.answers[functions.channels.JoinChannelRequest] = join
    clock = Clock()
    joiner = Joiner(
        Repositories.build(redis),
        fake,
        repo,
        session="acc",
        policy=JoinPolicy(spacing_s=60),
        clock=clock,
    )
    outcome = await joiner.step()
    assert outcome is not None and (outcome.state, outcome.reason) == ("pending", "flood wait")
    assert float(await redis.hget(keys.FLOOD_WAITS, "acc")) == clock.now + 3600
    assert await joiner.next_allowed_at() == clock.now + 3600
    clock.now += 1800
    assert await joiner.step() is None
    clock.now += 1801
    outcome = await joiner.step()
    assert outcome is not None and outcome.state == "joined"
    assert _names(fake).count("ResolveUsernameRequest") == 1  # resolved once


async def test_invites_and_failure_reasons(redis: aioredis.Redis) -> None:
    repo = ChannelRepository(redis)
    await _pending(
        repo,
        "t.me/+GoodInvite123",
        "t.me/joinchat/AlreadyIn1234",
        "t.me/+ExpiredInvite1",
        "@private_one",
        "@some_user",
        "@full_account",
        "id:424242",
        "@missing_name",
    )
    fake = FakeTelegram()

    def check(request: functions.messages.CheckChatInviteRequest) -> Any:
        if request.hash == "ExpiredInvite1":
            raise errors.InviteHashExpiredError(request=None)
        if request.hash == "AlreadyIn1234":
            return types.ChatInviteAlready(channel_chat(201, None, left=False))
        return types.ChatInvite(
            title="Secret",
            photo=types.PhotoEmpty(0),
            participants_count=5,
            color=1,
            channel=True,
            broadcast=True,
        )

    fake.answers[functions.messages.CheckChatInviteRequest] = check
    fake.answers[functions.messages.ImportChatInviteRequest] = lambda r: types.Updates(
        [], [], [channel_chat(200, None, left=False)], T0, 0
    )
    user = types.User(id=5, first_name="Someone")
    fake.answers[functions.contacts.ResolveUsernameRequest] = _resolver(
        {
            "private_one": channel_chat(300, "private_one"),
            "some_user": user,
            "full_account": channel_chat(301, "full_account"),
            "missing_name": errors.UsernameNotOccupiedError(request=None),
        }
    )

    def join(request: functions.channels.JoinChannelRequest) -> Any:
        if request.channel.channel_id == 300:
            raise errors.ChannelPrivateError(request=None)
        raise errors.ChannelsTooMuchError(request=None)

    fake.answers[functions.channels.JoinChannelRequest] = join
    clock = Clock()
    joiner = Joiner(
        Repositories.build(redis),
        fake,
        repo,
        session="acc",
        policy=JoinPolicy(spacing_s=1, daily_cap=100),
        clock=clock,
    )
    outcomes = []
    for _ in range(8):
        clock.now += 2
        outcome = await joiner.step()
        assert outcome is not None
        outcomes.append((outcome.key, outcome.state, outcome.reason))
    assert outcomes == [
        ("id:200", "joined", None),
        ("id:201", "joined", None),
        ("t.me/+ExpiredInvite1", "failed", "invite expired"),
        ("id:300", "failed", "private"),
        ("@some_user", "failed", "not a channel"),
        ("id:301", "failed", "too many channels"),
        ("id:424242", "failed", "private"),
        ("@missing_name", "failed", "no such username"),
    ]
    clock.now += 2
    assert await joiner.step() is None
    assert "ImportChatInviteRequest" in _names(fake)
    assert (await repo.get("t.me/joinchat/GoodInvite123")) is not None  # both link forms


async def test_transient_errors_back_off_then_fail(redis: aioredis.Redis) -> None:
    repo = ChannelRepository(redis)
    await _pending(repo, "@flaky_chan")

    def broken(request: Any) -> Any:
        raise ConnectionError("reset")

    fake = FakeTelegram()
    fake.answers[functions.contacts.ResolveUsernameRequest] = broken
    clock = Clock()
    policy = JoinPolicy(spacing_s=1, daily_cap=100, retry_s=10, max_attempts=3)
    joiner = Joiner(
        Repositories.build(redis), fake, repo, session="acc", policy=policy, clock=clock
    )
    clock.now += 2
    assert (await joiner.step()).state == "pending"  # type: ignore[union-attr]
    clock.now += 5
    assert await joiner.step() is None  # waiting for its retry time
    clock.now += 10
    assert (await joiner.step()).state == "pending"  # type: ignore[union-attr]
    clock.now += 21
    final = await joiner.step()
    assert final is not None and (final.state, final.reason) == ("failed", "ConnectionError")


async def test_other_accounts_channels_are_left_alone_and_auth_errors_propagate(
    redis: aioredis.Redis,
) -> None:
    repo = ChannelRepository(redis)
    await _pending(repo, "@theirs_chan", account="other")
    fake = FakeTelegram()
    joiner = Joiner(Repositories.build(redis), fake, repo, session="acc", clock=Clock())
    assert await joiner.step() is None
    await _pending(repo, "@mine_chan")

    def revoked(request: Any) -> Any:
        raise errors.AuthKeyUnregisteredError(request=None)

    fake.answers[functions.contacts.ResolveUsernameRequest] = revoked
    with pytest.raises(errors.UnauthorizedError):
        await joiner.step()


async def test_channels_cap_from_app_config() -> None:
    fake = FakeTelegram()
    fake.answers[functions.help.GetAppConfigRequest] = lambda r: app_config(1000)
    assert await channels_cap(fake) == 1000
    fake.answers[functions.help.GetAppConfigRequest] = lambda r: types.help.AppConfigNotModified()
    assert await channels_cap(fake) == 500
