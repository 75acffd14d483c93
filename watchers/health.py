"""Watcher health: admin notices through the alerts stream, flood waits, silent channels.

A notice is a `bot.alerts.Notice` entry on the alerts stream (plain text, one per admin);
the delivery worker sends it like an alert, so notices share the durable, rate-limited path.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

import redis.asyncio as aioredis

from bot.alerts import Notice
from bot.storage import keys
from bot.storage.channels import Channel
from bot.storage.streams import append

log = logging.getLogger(__name__)

SILENT_FACTOR = 8.0  # silent when the gap is this many times the channel's usual gap...
SILENT_MIN_S = 6 * 3600.0  # ...and at least this long (a daily channel is not "silent" at noon)
NOTICE_PERIOD_S = 24 * 3600  # one notice per subject per day


async def notify_admins(redis: aioredis.Redis, text: str, admins: Iterable[int]) -> int:
    """Append one notice per admin to the alerts stream. `text` is plain text: the delivery
    worker's renderer escapes it."""
    sent = 0
    for admin_id in sorted(set(admins)):
        await append(redis, keys.ALERTS_STREAM, Notice(admin_id, text).to_fields())
        sent += 1
    if sent:
        log.info("admin notice queued for %d admins", sent)
    return sent


async def notify_once(
    redis: aioredis.Redis,
    subject: str,
    text: str,
    admins: Iterable[int],
    *,
    period_s: int = NOTICE_PERIOD_S,
) -> bool:
    """notify_admins, at most once per `subject` per period (across restarts and processes)."""
    if not await redis.set(keys.notice_sent(subject), "1", nx=True, ex=period_s):
        return False
    await notify_admins(redis, text, admins)
    return True


async def record_flood_wait(
    redis: aioredis.Redis, session: str, seconds: float, *, now: float | None = None
) -> float:
    """Note in `keys.FLOOD_WAITS` until when `session` is held back; returns that time."""
    until = (time.time() if now is None else now) + max(0.0, seconds)
    current = await redis.hget(keys.FLOOD_WAITS, session)
    if current is None or float(current) < until:
        await redis.hset(keys.FLOOD_WAITS, session, repr(until))
    log.warning("flood wait on session %s: %.0f s", session, seconds)
    return until


async def count(redis: aioredis.Redis, counter: str, by: int = 1) -> None:
    await redis.hincrby(keys.WATCHER_STATS, counter, by)


@dataclass(frozen=True, slots=True)
class AccountState:
    session: str
    alive: bool
    connected: bool
    cap: int
    channels: int
    at: float
    reason: str | None = None

    def to_json(self) -> str:
        return json.dumps(
            {
                "alive": self.alive,
                "connected": self.connected,
                "cap": self.cap,
                "channels": self.channels,
                "at": self.at,
                "reason": self.reason,
            }
        )

    @classmethod
    def from_json(cls, session: str, raw: str) -> AccountState:
        data = json.loads(raw)
        return cls(
            session=session,
            alive=bool(data.get("alive")),
            connected=bool(data.get("connected")),
            cap=int(data.get("cap") or 0),
            channels=int(data.get("channels") or 0),
            at=float(data.get("at") or 0.0),
            reason=data.get("reason"),
        )


async def publish_account(redis: aioredis.Redis, state: AccountState) -> None:
    await redis.hset(keys.WATCHER_ACCOUNTS, state.session, state.to_json())


async def accounts(redis: aioredis.Redis) -> list[AccountState]:
    raw: dict[str, str] = await redis.hgetall(keys.WATCHER_ACCOUNTS)  # type: ignore[assignment]
    result = []
    for session, value in sorted(raw.items()):
        try:
            result.append(AccountState.from_json(session, value))
        except (ValueError, TypeError):
            log.warning("unreadable account state for %s", session)
    return result


def is_silent(channel: Channel, now: float) -> bool:
    """Quiet far beyond its usual rhythm (needs two posts seen to know the rhythm)."""
    if channel.state != "joined" or channel.last_post_at is None or not channel.rhythm_s:
        return False
    gap = now - channel.last_post_at
    return gap > max(SILENT_FACTOR * channel.rhythm_s, SILENT_MIN_S)


def silent_notice(channel: Channel, now: float) -> str:
    hours = (now - (channel.last_post_at or now)) / 3600
    usual = (channel.rhythm_s or 0) / 3600
    return (
        f"⚠️ Channel {channel.label} has been silent for {hours:.0f} h "
        f"(it usually posts every {usual:.1f} h). Check that it still exists and that the "
        "watcher account is still a member."
    )
