"""The watcher role's whole lifecycle: sessions, locks, live handlers, scheduled jobs, health.

`run_watcher` is what `bot/app.py` calls. Per account (TG_SESSION may list several names) it
takes the session lock, connects without prompting, reads the account's channel cap, attaches
the live handlers and schedules, with fixed job ids: the reconciler (catch-up per channel at an
interval set by the channel's weight, plus an edit sweep), the joiner, and the lock refresh.
Shared jobs spread channels over the live accounts and check health. A revoked session alerts
the admins, its channels move to the other accounts, and that account stops; when no account
is left the role returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from telethon import errors
from telethon.tl import functions

from bot.config import ConfigError, Settings
from bot.storage.channels import WEIGHTS, Channel
from bot.storage.repos import Repositories
from watchers.client import connect_authorised, make_client, session_names
from watchers.health import (
    AccountState,
    accounts,
    is_silent,
    notify_once,
    publish_account,
    silent_notice,
)
from watchers.joiner import Joiner, JoinPolicy, channels_cap
from watchers.live import ChannelDirectory, LiveIngest
from watchers.lock import LockLostError, SessionLock
from watchers.reconciler import Reconciler

log = logging.getLogger(__name__)

ClientFactory = Callable[[Settings, str], Any]
DEAD_ERRORS = (errors.UnauthorizedError, errors.AuthKeyError)


@dataclass(frozen=True, slots=True)
class Intervals:
    """How often things happen. Chosen against Telegram's undocumented limits (see README):
    one account polling 500 channels at these rates makes well under one history call a
    second, far below the pace at which getHistory floods are reported."""

    catch_up_s: Mapping[str, float] = field(
        default_factory=lambda: {"urgent": 120.0, "high": 300.0, "normal": 900.0, "low": 1800.0}
    )
    edit_sweep_s: float = 1800.0
    reconcile_tick_s: float = 30.0
    join_tick_s: float = 30.0
    assign_s: float = 60.0
    health_s: float = 60.0
    lock_refresh_s: float = 20.0
    disconnected_alert_s: float = 300.0
    account_stale_s: float = 180.0  # an account not heard of for this long counts as dead
    request_gap_s: float = 1.0  # between two history calls of one account


@dataclass
class Account:
    name: str
    client: Any
    lock: SessionLock
    reconciler: Reconciler
    joiner: Joiner
    cap: int = 500
    alive: bool = True
    disconnected_since: float | None = None
    due: dict[int, float] = field(default_factory=dict)
    sweep_due: dict[int, float] = field(default_factory=dict)


def plan_assignments(channels: Sequence[Channel], room: Mapping[str, int]) -> dict[str, str]:
    """Channels without a live account -> the live account with most room (under its cap).

    `room` maps each live account to its cap; channels already on a live account stay.
    Urgent channels are placed first, so they are the last left without an account.
    """
    load: Counter[str] = Counter(
        c.account
        for c in channels
        if c.account is not None and c.account in room and c.state != "failed"
    )
    order = {w: i for i, w in enumerate(WEIGHTS)}
    moves: dict[str, str] = {}
    for channel in sorted(channels, key=lambda c: (order.get(c.weight, 9), c.added_at)):
        if channel.state == "failed" or channel.account in room or not room:
            continue
        best = max(sorted(room), key=lambda a: room[a] - load[a])
        if room[best] - load[best] <= 0:
            continue
        moves[channel.key] = best
        load[best] += 1
    return moves


class WatcherService:
    def __init__(
        self,
        settings: Settings,
        repos: Repositories,
        *,
        client_factory: ClientFactory = make_client,
        intervals: Intervals | None = None,
        join_policy: JoinPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._repos = repos
        self._health = repos.health
        self._notices = repos.notices
        self._factory = client_factory
        self.intervals = intervals or Intervals()
        self._join_policy = join_policy or JoinPolicy()
        self._clock = clock
        self.channels = repos.channels
        self.directory = ChannelDirectory()
        self.live = LiveIngest(repos, self.directory, channels=self.channels)
        self.accounts: dict[str, Account] = {}
        self.finished = asyncio.Event()  # set when no account is left
        self._stopping = asyncio.Event()
        self._scheduler: AsyncIOScheduler | None = None
        try:
            self._admins = settings.admins
        except ConfigError:
            self._admins = frozenset()

    # --- start and stop ----------------------------------------------------------------------
    async def start(self) -> None:
        names = session_names(self._settings)
        try:
            for name in names:
                lock = SessionLock(self._repos.locks, name)
                await lock.acquire()
                try:
                    client = self._factory(self._settings, name)
                except BaseException:
                    # Not an account yet, so close() below would not release this lock: a
                    # `vigil run` refused for want of a session must not block the next one.
                    await lock.release()
                    raise
                account = Account(
                    name=name,
                    client=client,
                    lock=lock,
                    reconciler=Reconciler(
                        self._repos,
                        client,
                        self.channels,
                        session=name,
                        sleep=self._sleep,
                        clock=self._clock,
                        request_gap_s=self.intervals.request_gap_s,
                        deletion_check_days=self._settings.deletion_check_days,
                    ),
                    joiner=Joiner(
                        self._repos,
                        client,
                        self.channels,
                        session=name,
                        policy=self._join_policy,
                        clock=self._clock,
                    ),
                )
                self.accounts[name] = account
                await connect_authorised(client, name)
                account.cap = await channels_cap(client)
                self.live.attach(client)
                log.info("watcher account %s connected (cap %d)", name, account.cap)
        except BaseException:
            # Half-started: release the locks taken and the clients connected, then report.
            await self.close()
            raise
        await self.directory.refresh(self.channels)
        await self.publish_accounts()
        self._schedule()

    def _schedule(self) -> None:
        iv = self.intervals
        scheduler = AsyncIOScheduler()
        opts: dict[str, Any] = {"max_instances": 1, "coalesce": True, "replace_existing": True}
        for name in self.accounts:
            scheduler.add_job(
                self.reconcile_tick,
                "interval",
                seconds=iv.reconcile_tick_s,
                args=[name],
                id=f"watcher-reconcile:{name}",
                **opts,
            )
            scheduler.add_job(
                self.join_tick,
                "interval",
                seconds=iv.join_tick_s,
                args=[name],
                id=f"watcher-join:{name}",
                **opts,
            )
            scheduler.add_job(
                self.refresh_lock,
                "interval",
                seconds=iv.lock_refresh_s,
                args=[name],
                id=f"watcher-lock:{name}",
                **opts,
            )
        scheduler.add_job(
            self.assign_tick, "interval", seconds=iv.assign_s, id="watcher-assign", **opts
        )
        scheduler.add_job(
            self.health_tick, "interval", seconds=iv.health_s, id="watcher-health", **opts
        )
        scheduler.start()
        self._scheduler = scheduler
        # Catch-up and joins on start, not one interval later (assign first: joins need it).
        self._kick("watcher-assign", "watcher-reconcile:", "watcher-join:")

    def _kick(self, *job_ids: str) -> None:
        """Run these jobs (ids, or prefixes ending in ':') now instead of at their next tick."""
        if self._scheduler is None or not self._scheduler.running:
            return
        for job in self._scheduler.get_jobs():
            if any(job.id == j or (j.endswith(":") and job.id.startswith(j)) for j in job_ids):
                job.modify(next_run_time=_now_dt())

    async def close(self) -> None:
        self._stopping.set()
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)
            await asyncio.sleep(0)
        self._scheduler = None
        with contextlib.suppress(Exception):
            await self.live.flush_albums()
        for account in self.accounts.values():
            await self._disconnect(account)
        await self.publish_accounts()

    async def _disconnect(self, account: Account) -> None:
        with contextlib.suppress(Exception):
            self.live.detach(account.client)
        with contextlib.suppress(Exception):
            await account.client.disconnect()
        with contextlib.suppress(Exception):
            await account.lock.release()

    async def _sleep(self, seconds: float) -> None:
        """A flood wait that ends early when the watcher stops."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    # --- jobs --------------------------------------------------------------------------------
    def _alive(self) -> list[Account]:
        return [a for a in self.accounts.values() if a.alive]

    async def reconcile_tick(self, name: str) -> None:
        account = self.accounts.get(name)
        if account is None or not account.alive:
            return
        if not await self._still_authorised(account):
            return
        now = self._clock()
        mine = [
            c
            for c in await self.channels.with_state("joined")
            if c.account == name and c.channel_id is not None
        ]
        for channel in mine:
            if self._stopping.is_set() or not account.alive:
                return
            cid = channel.channel_id
            assert cid is not None
            try:
                if account.due.get(cid, 0.0) <= now:
                    await account.reconciler.catch_up(channel)
                    every = self.intervals.catch_up_s.get(channel.weight, 900.0)
                    account.due[cid] = self._clock() + every
                if account.sweep_due.get(cid, 0.0) <= now:
                    await account.reconciler.sweep_edits(channel)
                    await account.reconciler.check_deletions(channel)
                    account.sweep_due[cid] = self._clock() + self.intervals.edit_sweep_s
            except DEAD_ERRORS as exc:
                await self.account_died(account, type(exc).__name__)
                return
            except (errors.ChannelPrivateError, errors.ChannelInvalidError):
                log.warning("channel %s is no longer readable on %s", cid, name)
                await self.channels.mark_failed(channel.key, "private")
            except errors.FloodWaitError:
                return  # waited MAX_FLOOD_RETRIES times already: leave it to the next tick
            except (errors.RPCError, ConnectionError, OSError, ValueError) as exc:
                await self._health.count("reconcile_errors")
                log.warning("reconcile of %s on %s failed: %s", cid, name, type(exc).__name__)

    async def _still_authorised(self, account: Account) -> bool:
        """One cheap call per tick, so a session revoked or logged out elsewhere is noticed
        within a tick even when no channel is due (Telethon alone finds out only at its next
        getDifference, up to 15 minutes later, and then just disconnects)."""
        try:
            if not account.client.is_connected():
                await account.client.connect()
            await account.client(functions.updates.GetStateRequest())
        except DEAD_ERRORS as exc:
            await self.account_died(account, type(exc).__name__)
            return False
        except (errors.RPCError, ConnectionError, OSError, TimeoutError) as exc:
            log.warning("watcher account %s: %s", account.name, type(exc).__name__)
        return True

    async def join_tick(self, name: str) -> None:
        account = self.accounts.get(name)
        if account is None or not account.alive:
            return
        try:
            outcome = await account.joiner.step()
        except DEAD_ERRORS as exc:
            await self.account_died(account, type(exc).__name__)
            return
        if outcome is not None and outcome.state == "joined":
            await self.directory.refresh(self.channels)
            # Record the starting point now: until the first catch-up there is no checkpoint,
            # and a post whose live update Telegram drops in between would be missed.
            self._kick(f"watcher-reconcile:{name}")

    async def refresh_lock(self, name: str) -> None:
        account = self.accounts.get(name)
        if account is None or not account.alive:
            return
        try:
            await account.lock.refresh()
        except LockLostError:
            log.error("lost the lock of session %s: stopping that account", name)
            await self.account_died(account, "its session lock was taken by another process")

    async def assign_tick(self) -> None:
        now = self._clock()
        await self.publish_accounts()
        room = {
            a.session: a.cap
            for a in await accounts(self._health)
            if a.alive and now - a.at < self.intervals.account_stale_s
        }
        everything = await self.channels.list()
        moves = plan_assignments(everything, room)
        for key, target in moves.items():
            await self.channels.set_account(key, target)
        if moves:
            log.info("assigned %d channels to accounts", len(moves))
            await self.publish_accounts()  # the new load, not the one a minute from now
            self._kick(*(f"watcher-join:{target}" for target in set(moves.values())))
        await self.directory.refresh(self.channels)

    async def health_tick(self) -> None:
        now = self._clock()
        for account in self._alive():
            if account.client.is_connected():
                account.disconnected_since = None
                continue
            if account.disconnected_since is None:
                account.disconnected_since = now
            elif now - account.disconnected_since > self.intervals.disconnected_alert_s:
                minutes = (now - account.disconnected_since) / 60
                await notify_once(
                    self._health,
                    self._notices,
                    f"disconnected:{account.name}",
                    f"⚠️ Watcher account {account.name} has been disconnected "
                    f"from Telegram for {minutes:.0f} minutes.",
                    self._admins,
                    period_s=3600,
                )
        for channel in await self.channels.with_state("joined"):
            if channel.account in self.accounts and is_silent(channel, now):
                await notify_once(
                    self._health,
                    self._notices,
                    f"silent:{channel.key}",
                    silent_notice(channel, now),
                    self._admins,
                )
        await self.directory.refresh(self.channels)
        await self.publish_accounts()

    async def publish_accounts(self) -> None:
        everything = await self.channels.list()
        load = Counter(c.account for c in everything if c.state != "failed")
        for account in self.accounts.values():
            connected = False
            with contextlib.suppress(Exception):
                connected = bool(account.client.is_connected())
            await publish_account(
                self._health,
                AccountState(
                    session=account.name,
                    alive=account.alive and not self._stopping.is_set(),
                    connected=connected,
                    cap=account.cap,
                    channels=load[account.name],
                    at=self._clock(),
                    reason=None if account.alive else "stopped",
                ),
            )

    async def account_died(self, account: Account, reason: str) -> None:
        """A revoked or logged-out session: tell the admins, hand its channels over, stop it."""
        if not account.alive:
            return
        account.alive = False
        log.error("watcher account %s stopped: %s", account.name, reason)
        await self._health.count("accounts_lost")
        await notify_once(
            self._health,
            self._notices,
            f"dead:{account.name}",
            f"🚫 Telegram session {account.name} stopped working ({reason}): "
            f"it was logged out or revoked. Run `vigil login --name {account.name}` "
            "on the server, then restart the watcher. Its "
            "channels move to the other accounts, if any.",
            self._admins,
            period_s=3600,
        )
        for channel in await self.channels.list():
            if channel.account == account.name:
                await self.channels.set_account(channel.key, None)
        await self._disconnect(account)
        await self.publish_accounts()
        if not self._alive():
            self.finished.set()
        else:
            await self.assign_tick()


def _now_dt() -> datetime:
    return datetime.now().astimezone()


async def run_watcher(
    settings: Settings,
    repos: Repositories,
    *,
    stop: asyncio.Event,
    client_factory: ClientFactory = make_client,
) -> None:
    """Run the watcher role until `stop` is set (or every account has been lost).

    Raises NotLoggedInError (run `vigil login`) or SessionLockedError (another watcher holds a
    session) before anything starts.
    """
    service = WatcherService(settings, repos, client_factory=client_factory)
    await service.start()
    try:
        stop_task = asyncio.create_task(stop.wait())
        done_task = asyncio.create_task(service.finished.wait())
        try:
            await asyncio.wait({stop_task, done_task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (stop_task, done_task):
                task.cancel()
            await asyncio.gather(stop_task, done_task, return_exceptions=True)
    finally:
        await service.close()
    log.info("watcher stopped")


__all__ = ["Intervals", "WatcherService", "plan_assignments", "run_watcher"]
