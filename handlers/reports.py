"""/stats (a chart of the analyst's alerts) and /export (their alerts as a CSV file).

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
from bot.reports import (
    MAX_EXPORT_BYTES,
    STATS_DAYS,
    ReportRangeError,
    build_export,
    parse_days,
    read_alerts,
    stats_chart,
    summarise,
    window_start,
)
from bot.storage.archive import ArchiveRepository
from bot.storage.channels import ChannelRepository
from bot.storage.feedback import FeedbackRepository
from bot.storage.ledger import DeliveryLedger
from bot.storage.users import Person
from bot.storage.watches import WatchRepository

log = logging.getLogger(__name__)


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
    if not rows:
        await message.answer(texts.STATS_NONE)
        return
    png = await asyncio.to_thread(stats_chart, rows, zone, now=now, days=STATS_DAYS)
    summary = summarise(rows)
    caption = texts.stats_caption(
        STATS_DAYS,
        summary.total,
        list(summary.by_priority),
        list(summary.top_watches),
        summary.relevant,
        summary.noise,
    )
    await message.answer_photo(
        BufferedInputFile(png, filename="vigil-stats.png"), caption=caption, parse_mode="HTML"
    )


def build_reports_router() -> Router:
    router = Router(name="reports")
    router.message.register(cmd_stats, Command("stats"))
    router.message.register(cmd_export, Command("export"))
    return router
