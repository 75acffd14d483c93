"""/stats (a chart of the analyst's alerts and their watches' trends: matching posts per day,
drawn out of process by `bot.charts`) and /export (their alerts as a CSV file).

Analysts only: the parent router's role filter guards both.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import BufferedInputFile, Message

from bot import texts
from bot.charts import render_or_none
from bot.fit import MAX_CAPTION, fit_html
from bot.reports import (
    MAX_EXPORT_BYTES,
    STATS_DAYS,
    ReportRangeError,
    build_export,
    parse_days,
    read_alerts,
    stats_spec,
    summarise,
    window_start,
)
from bot.storage.archive import ArchiveRepository
from bot.storage.campaigns import CampaignRepository
from bot.storage.channels import ChannelRepository
from bot.storage.feedback import FeedbackRepository
from bot.storage.ledger import DeliveryLedger
from bot.storage.users import Person
from bot.storage.watches import WatchRepository

log = logging.getLogger(__name__)

TREND_LINES = 6  # watches drawn and listed in /stats' trends


async def cmd_export(
    message: Message,
    command: CommandObject,
    person: Person,
    ledger: DeliveryLedger,
    archive: ArchiveRepository,
    watches: WatchRepository,
    feedback: FeedbackRepository,
    channels: ChannelRepository,
) -> None:
    try:
        days = parse_days(command.args)
    except ReportRangeError as exc:
        await message.answer(texts.error_line(str(exc)) + "\n" + texts.USAGE_EXPORT)
        return
    zone = person.zone
    now = datetime.now(UTC)
    since = window_start(now, zone, days).timestamp()
    rows = await read_alerts(
        ledger, archive, person.id, since, watches=watches, feedback=feedback, channels=channels
    )
    if not rows:
        await message.answer(texts.export_none(days))
        return
    export = await asyncio.to_thread(build_export, rows, zone, max_bytes=MAX_EXPORT_BYTES)
    name = f"vigil-alerts-{now.astimezone(zone):%Y%m%d}.csv"
    log.info("export: %d alerts (%d bytes) to %s", export.rows, len(export.data), person.id)
    await message.answer_document(
        BufferedInputFile(export.data, filename=name),
        caption=texts.export_caption(export.rows, days, len(rows)),
        parse_mode="HTML",
    )


async def cmd_stats(
    message: Message,
    person: Person,
    ledger: DeliveryLedger,
    archive: ArchiveRepository,
    watches: WatchRepository,
    feedback: FeedbackRepository,
    channels: ChannelRepository,
    campaigns: CampaignRepository,
) -> None:
    zone = person.zone
    now = datetime.now(UTC)
    since = window_start(now, zone, STATS_DAYS).timestamp()
    rows = await read_alerts(
        ledger,
        archive,
        person.id,
        since,
        watches=watches,
        feedback=feedback,
        channels=channels,
        with_text=False,
    )
    trends = await _trends(person, watches, campaigns, now)
    if not rows and not trends:
        await message.answer(texts.STATS_NONE)
        return
    summary = summarise(rows)
    caption = texts.stats_caption(
        STATS_DAYS,
        summary.total,
        list(summary.by_priority),
        list(summary.top_watches),
        summary.relevant,
        summary.noise,
    )
    spec = stats_spec(rows, zone, now=now, days=STATS_DAYS, trends=trends[:TREND_LINES])
    png = await render_or_none(spec)
    trend_text = texts.trends_lines(trends[:TREND_LINES])
    full = caption + ("\n" + trend_text if trend_text else "")
    if png is None:
        await message.answer(fit_html(full + "\n" + texts.CHART_MISSING))
        return
    if len(fit_html(full, MAX_CAPTION)) == len(full):
        await message.answer_photo(
            BufferedInputFile(png, filename="vigil-stats.png"), caption=full, parse_mode="HTML"
        )
        return
    await message.answer_photo(
        BufferedInputFile(png, filename="vigil-stats.png"),
        caption=fit_html(caption, MAX_CAPTION),
        parse_mode="HTML",
    )
    await message.answer(fit_html(trend_text))


async def _trends(
    person: Person, watches: WatchRepository, campaigns: CampaignRepository, now: datetime
) -> list[tuple[str, list[int]]]:
    """Matching posts per UTC day over STATS_DAYS for each of the analyst's watches with any,
    the busiest first (a followed shared watch counts as the shared watch)."""
    mine = [w for w in await watches.list_for(person.id) if not w.paused]
    if not mine:
        return []
    subjects = {w.id: -w.shared if w.shared is not None else w.id for w in mine}
    daily = await campaigns.daily(sorted(set(subjects.values())), now.timestamp(), STATS_DAYS)
    found = [(f"#{w.id} {w.canonical}", daily.get(subjects[w.id], [0] * STATS_DAYS)) for w in mine]
    found = [(label, row) for label, row in found if any(row)]
    found.sort(key=lambda t: (-sum(t[1]), t[0]))
    return found


def build_reports_router() -> Router:
    router = Router(name="reports")
    router.message.register(cmd_stats, Command("stats"))
    router.message.register(cmd_export, Command("export"))
    return router
