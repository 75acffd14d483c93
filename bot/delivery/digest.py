"""Digests: alerts held below an analyst's instant threshold, sent together hourly or daily.

A digest is sent as an HTML notice on the alerts stream, so it gets the same rate limits,
retries, blocked-analyst handling and durability as an alert. Hourly digests go out on the
hour, daily ones at 08:00 in the analyst's time zone; a Redis `SET NX` per (analyst, period)
makes sure that several delivery workers send one digest, not one each
(`HeldRepository.claim_digest`).

An alert the analyst's learned model held (`AlertJob.held`) is in the digest whatever its
priority, with the model's reasons, so the analyst sees why it did not come at once.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from html import escape
from zoneinfo import ZoneInfo

from bot import texts
from bot.alerts import AlertJob, Notice
from bot.delivery.render import clean_text, utf16_len
from bot.storage.held import HeldRepository, HoldReason
from bot.storage.notices import NoticeBox
from bot.storage.users import UserRepository

log = logging.getLogger(__name__)

DAILY_AT_HOUR = 8
SNIPPET = 160
REASONS = 200  # of the learned model's reasons, on a held alert's line
MAX_UNITS = 4000  # under Telegram's 4096, leaving room for the closing line


def period_start(now: datetime, tz: ZoneInfo, mode: str) -> datetime | None:
    """Start of the digest period `now` falls in (aware, analyst's zone); None when off."""
    local = now.astimezone(tz)
    if mode == "hourly":
        return local.replace(minute=0, second=0, microsecond=0)
    if mode == "daily":
        start = local.replace(hour=DAILY_AT_HOUR, minute=0, second=0, microsecond=0)
        return start if local >= start else start - timedelta(days=1)
    return None


def render_digest(jobs: list[AlertJob], tz: ZoneInfo, mode: str) -> str:
    """One message: a line per alert (newest last), cut to fit with a count of the rest."""
    head = f"🗞 <b>{escape(mode.capitalize())} digest</b>: {len(jobs)} alert" + (
        "s" if len(jobs) != 1 else ""
    )
    lines: list[str] = []
    used = utf16_len(head)
    for shown, job in enumerate(jobs):
        post = job.post
        title = clean_text(post.title) or (f"@{post.username}" if post.username else "channel")
        text = " ".join(clean_text(post.text).split())
        snippet = text[:SNIPPET] + ("…" if len(text) > SNIPPET else "")
        when = post.date.astimezone(tz).strftime("%d %b %H:%M")
        line = (
            f"\n\n{texts.PRIORITY_MARKERS.get(job.priority, '')} <b>{escape(title[:80])}</b> "
            f"· {escape(when)}\n{escape(snippet)}\n"
            f'<a href="{escape(post.link, quote=True)}">Open</a> · watch #{job.watch_id}'
        )
        if job.held and job.reasons:
            why = "; ".join(clean_text(r) for r in job.reasons)
            why = why[:REASONS] + ("…" if len(why) > REASONS else "")
            line += f"\n🤖 <i>held by your learned model: {escape(why)}</i>"
        rest = len(jobs) - shown
        tail = f"\n\n… and {rest} more: /export lists them all."
        if used + utf16_len(line) + utf16_len(tail) > MAX_UNITS:
            lines.append(tail)
            break
        lines.append(line)
        used += utf16_len(line)
    return head + "".join(lines)


async def send_due_digests(
    held: HeldRepository, users: UserRepository, notices: NoticeBox, now: datetime
) -> int:
    """Queue the digests that are due. Returns how many were queued."""
    queued = 0
    for person in await users.analysts():
        # With digests off, what was held for one (the learned model's confident noise, or
        # alerts below the threshold) still arrives, daily: nothing held is ever dropped.
        mode = person.digest if person.digest in ("hourly", "daily") else "daily"
        start = period_start(now, person.zone, mode)
        if start is None:
            continue
        items = [h for h in await held.held(person.id) if h.why == HoldReason.DIGEST]
        if not items:
            continue
        if min(h.at for h in items) >= start.timestamp():
            continue  # everything held arrived in this period: its digest is at the next one
        if not await held.claim_digest(person.id, start.timestamp()):
            continue  # another worker sent this period's digest
        jobs: list[AlertJob] = []
        for item in items:
            try:
                jobs.append(AlertJob.from_fields(item.fields))
            except ValueError:
                log.warning("digest: a held alert of %s is malformed; dropped", person.id)
        jobs.sort(key=lambda j: j.post.date)
        if jobs:
            html = render_digest(jobs, person.zone, mode)
            await notices.send(Notice(person.id, html, html=True))
            queued += 1
        await held.remove(person.id, items)
    return queued
