from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from telethon import errors
from telethon.tl import functions

from bot.config import Settings
from bot.storage import keys
from bot.storage.channels import ChannelRepository
from bot.storage.repos import Repositories
from bot.storage.sessions import SessionLocks
from tests.watchers.telegram_fakes import FakeTelegram, app_config
from watchers.client import NotLoggedInError, make_client, session_names, session_path
from watchers.lock import LockLostError, SessionLock, SessionLockedError
from watchers.service import WatcherService, plan_assignments, run_watcher


async def test_second_owner_is_refused_naming_the_holder(redis: aioredis.Redis) -> None:
    first = SessionLock(SessionLocks(redis), "main", holder="box-a:101")
    await first.acquire()
    second = SessionLock(SessionLocks(redis), "main", holder="box-b:202")
    with pytest.raises(SessionLockedError) as caught:
        await second.acquire()
    assert "box-a:101" in str(caught.value) and "'main'" in str(caught.value)
    other = SessionLock(SessionLocks(redis), "other", holder="box-b:202")
    await other.acquire()  # another session is fine
    await first.refresh()
    await first.release()
    await second.acquire()
    with pytest.raises(LockLostError):
        await first.refresh()  # the old holder cannot extend someone else's lock
    assert await redis.pttl(keys.session_lock("main")) > 0


async def test_an_expired_lease_can_be_taken_over(redis: aioredis.Redis) -> None:
    crashed = SessionLock(SessionLocks(redis), "s", ttl_ms=50, holder="dead:1")
    await crashed.acquire()
    await asyncio.sleep(0.1)
    heir = SessionLock(SessionLocks(redis), "s", holder="new:2")
    await heir.acquire()
    with pytest.raises(LockLostError):
        await crashed.refresh()
    await crashed.release()  # releasing a lost lock leaves the heir's alone
    assert str(await redis.get(keys.session_lock("s"))).startswith("new:2|")


def _settings(data_dir: Path, sessions: str = "vigil") -> Settings:
    return Settings(
        TG_API_ID=12345,
        TG_API_HASH="0123456789abcdef0123456789abcdef",
        TG_SESSION=sessions,
        VIGIL_DATA_DIR=data_dir,
        ADMIN_IDS="11,22",
    )


def test_session_files_are_private_and_run_never_creates_one(data_dir: Path) -> None:
    settings = _settings(data_dir, " main , backup,main")
    assert session_names(settings) == ["main", "backup"]
    with pytest.raises(NotLoggedInError, match="vigil login --name main"):
        make_client(settings, "main")
    assert not session_path(settings, "main").exists()
    client = make_client(settings, "main", create=True)
    path = session_path(settings, "main")
    assert path == data_dir / "sessions" / "main.session"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    client.session.close()
    with pytest.raises(ValueError, match="session name"):
        session_path(settings, "bad name!")


def _factory(fakes: dict[str, FakeTelegram]) -> Any:
    def make(settings: Settings, name: str) -> FakeTelegram:
        return fakes[name]

    return make


async def test_second_watcher_on_one_session_is_refused(
    redis: aioredis.Redis, data_dir: Path
) -> None:
    fake = FakeTelegram()
    fake.answers[functions.help.GetAppConfigRequest] = lambda r: app_config(500)
    settings = _settings(data_dir)
    stop = asyncio.Event()
    running = asyncio.create_task(
        run_watcher(
            settings,
            Repositories.build(redis),
            stop=stop,
            client_factory=_factory({"vigil": fake}),
        )
    )
    for _ in range(100):
        if await redis.exists(keys.session_lock("vigil")):
            break
        await asyncio.sleep(0.01)
    with pytest.raises(SessionLockedError, match="already in use by"):
        await run_watcher(
            settings,
            Repositories.build(redis),
            stop=stop,
            client_factory=_factory({"vigil": fake}),
        )
    stop.set()
    await asyncio.wait_for(running, 5)
    assert not await redis.exists(keys.session_lock("vigil"))  # released on the way out
    assert fake.handlers == []


async def test_not_logged_in_session_is_refused_and_lock_released(
    redis: aioredis.Redis, data_dir: Path
) -> None:
    fake = FakeTelegram()
    fake.authorised = False
    with pytest.raises(NotLoggedInError, match="run `vigil login`"):
        await run_watcher(
            _settings(data_dir),
            Repositories.build(redis),
            stop=asyncio.Event(),
            client_factory=_factory({"vigil": fake}),
        )
    assert not await redis.exists(keys.session_lock("vigil"))


async def test_missing_session_file_releases_the_lock(
    redis: aioredis.Redis, data_dir: Path
) -> None:
    """`vigil run` before `vigil login`: refused, and the next run is not locked out."""
    settings = _settings(data_dir)
    for _ in range(2):
        with pytest.raises(NotLoggedInError, match="has no session file"):
            await run_watcher(settings, Repositories.build(redis), stop=asyncio.Event())
        assert not await redis.exists(keys.session_lock("vigil"))


async def test_revoked_account_alerts_admins_and_hands_channels_over(
    redis: aioredis.Redis, data_dir: Path
) -> None:
    fakes = {"one": FakeTelegram(), "two": FakeTelegram()}
    for fake in fakes.values():
        fake.answers[functions.help.GetAppConfigRequest] = lambda r: app_config(2)
    now = [1_800_000_000.0]

    def revoked(request: Any) -> Any:
        raise errors.SessionRevokedError(request=None)

    def flood(request: Any) -> Any:
        raise errors.FloodWaitError(request=None, capture=60)

    fakes["one"].answers[functions.contacts.ResolveUsernameRequest] = revoked
    fakes["two"].answers[functions.contacts.ResolveUsernameRequest] = flood
    service = WatcherService(
        _settings(data_dir, "one,two"),
        Repositories.build(redis),
        client_factory=_factory(fakes),
        clock=lambda: now[0],
    )
    await service.start()
    try:
        repo = ChannelRepository(redis)
        for ref in ("@chan_aaa", "@chan_bbb", "@chan_ccc", "@chan_ddd", "@chan_eee"):
            await repo.add(ref, added_by=1)
        await service.assign_tick()
        placed = {c.key: c.account for c in await repo.list()}
        assert sorted(a for a in placed.values() if a) == ["one", "one", "two", "two"]
        # Assigning starts the joins at once: "one" is found revoked, "two" told to wait.
        after: list[str | None] = []
        for _ in range(300):
            after = [c.account for c in await repo.list()]
            if "one" not in after and after.count("two") == 2:
                break
            await asyncio.sleep(0.01)
        assert after.count("two") == 2 and "one" not in after
        assert not service.accounts["one"].alive and fakes["one"].connected is False
        notices = [f for _i, f in await redis.xrange(keys.ALERTS_STREAM)]
        assert {n["analyst"] for n in notices} == {"11", "22"}
        assert "vigil login --name one" in notices[0]["notice"]
        assert not service.finished.is_set()
        fakes["two"].answers[functions.contacts.ResolveUsernameRequest] = revoked
        now[0] += 3600  # past the flood wait and the join spacing
        await service.join_tick("two")
        assert service.finished.is_set()
    finally:
        await service.close()


def test_plan_spreads_channels_under_caps_urgent_first() -> None:
    from bot.storage.channels import Channel

    def ch(
        key: str,
        account: str | None,
        weight: str = "normal",
        state: str = "pending",
        at: float = 0.0,
    ) -> Channel:
        return Channel(key, key, None, None, None, "", state, None, weight, 1, at, None, account)

    channels = [
        ch("a", "x"),
        ch("b", None, at=1),
        ch("c", "dead", at=2),
        ch("d", None, "urgent", at=3),
        ch("e", None, state="failed"),
        ch("f", None, "low", at=4),
    ]
    moves = plan_assignments(channels, {"x": 2, "y": 2})
    assert moves == {"d": "y", "b": "x", "c": "y"}
    assert plan_assignments(channels, {}) == {}


async def test_health_notices_silent_channels_and_disconnects_once(
    redis: aioredis.Redis, data_dir: Path
) -> None:
    from bot.alerts import Notice, is_notice

    fake = FakeTelegram()
    fake.answers[functions.help.GetAppConfigRequest] = lambda r: app_config(500)
    now = [1_000_000.0]
    service = WatcherService(
        _settings(data_dir),
        Repositories.build(redis),
        client_factory=_factory({"vigil": fake}),
        clock=lambda: now[0],
    )
    await service.start()
    try:
        repo = ChannelRepository(redis)
        await repo.add("id:55", added_by=1)
        await repo.mark_resolved(
            "id:55", channel_id=55, access_hash=1, username=None, title="Канал <b>&"
        )
        await repo.mark_joined("id:55", "vigil")
        for t in (now[0] - 40 * 3600, now[0] - 39 * 3600, now[0] - 38 * 3600):
            await repo.touch_last_post(55, t)  # hourly rhythm, silent for 38 h
        fake.connected = False
        await service.health_tick()
        now[0] += 301
        await service.health_tick()
        await service.health_tick()
        entries = [f for _i, f in await redis.xrange(keys.ALERTS_STREAM)]
        assert all(is_notice(f) for f in entries)
        texts = [Notice.from_fields(f).text for f in entries]
        assert sum("silent for 38 h" in t and "Канал <b>&" in t for t in texts) == 2  # 2 admins
        assert sum("disconnected from Telegram for 5 minutes" in t for t in texts) == 2
        assert len(texts) == 4
        state = (await redis.hgetall(keys.WATCHER_ACCOUNTS))["vigil"]
        assert '"connected": false' in state and '"cap": 500' in state
    finally:
        await service.close()


async def test_a_session_revoked_elsewhere_is_noticed_at_the_next_tick(
    redis: aioredis.Redis, data_dir: Path
) -> None:
    fake = FakeTelegram()
    fake.answers[functions.help.GetAppConfigRequest] = lambda r: app_config(500)
    service = WatcherService(
        _settings(data_dir), Repositories.build(redis), client_factory=_factory({"vigil": fake})
    )
    await service.start()
    try:
        await service.reconcile_tick("vigil")  # no channel due: only the probe is made
        assert service.accounts["vigil"].alive

        def unregistered(request: Any) -> Any:
            raise errors.AuthKeyUnregisteredError(request=None)

        fake.answers[functions.updates.GetStateRequest] = unregistered
        await service.reconcile_tick("vigil")
        assert service.finished.is_set() and not fake.connected
        notices = [f["notice"] for _i, f in await redis.xrange(keys.ALERTS_STREAM)]
        assert len(notices) == 2 and "AuthKeyUnregisteredError" in notices[0]
    finally:
        await service.close()
