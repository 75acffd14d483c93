"""Watcher health: admin notices through the alerts stream, flood waits, silent channels.

Storage is `HealthRepository` (flood waits, counters, account states, once-per-period claims)
and `NoticeBox` (the notices).

A notice is a `bot.alerts.Notice` entry on the alerts stream (plain text, one per admin);
the delivery worker sends it like an alert, so notices share the durable, rate-limited path.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from bot.storage.channels import Channel
from bot.storage.health import AccountState, HealthRepository
from bot.storage.notices import NoticeBox

log = logging.getLogger(__name__)

SILENT_FACTOR = 8.0  # silent when the gap is this many times the channel's usual gap...
SILENT_MIN_S = 6 * 3600.0  # ...and at least this long (a daily channel is not "silent" at noon)
NOTICE_PERIOD_S = 24 * 3600  # one notice per subject per day


async def notify_admins(notices: NoticeBox, text: str, admins: Iterable[int]) -> int:
    """Append one notice per admin to the alerts stream. `text` is plain text: the delivery
    worker's renderer escapes it."""
    sent = await notices.tell(sorted(set(admins)), text)
    if sent:
        log.info("admin notice queued for %d admins", sent)
    return sent


async def notify_once(
    health: HealthRepository,
    notices: NoticeBox,
    subject: str,
    text: str,
    admins: Iterable[int],
    *,
    period_s: int = NOTICE_PERIOD_S,
) -> bool:
    """notify_admins, at most once per `subject` per period (across restarts and processes)."""
    if not await health.claim_notice(subject, period_s):
        return False
    await notify_admins(notices, text, admins)
    return True


async def record_flood_wait(
    health: HealthRepository, session: str, seconds: float, *, now: float | None = None
) -> float:
    """Note until when `session` is held back (shown by `vigil status`); returns that time."""
    until = (time.time() if now is None else now) + max(0.0, seconds)
    await health.record_flood_wait(session, until)
    log.warning("flood wait on session %s: %.0f s", session, seconds)
    return until


async def publish_account(health: HealthRepository, state: AccountState) -> None:
    """Publish one account's state (`vigil status` and the admin System view read it)."""
    await health.publish_account(state)


async def accounts(health: HealthRepository) -> list[AccountState]:
    return await health.accounts()


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


__all__ = [
    "AccountState",
    "accounts",
    "is_silent",
    "notify_admins",
    "notify_once",
    "publish_account",
    "record_flood_wait",
    "silent_notice",
]
