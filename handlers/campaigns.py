"""Campaign views: a surge alert's Examples and on/off setting, a story's Spread, and, for
admins, who amplifies whom (`/amplification`).

Analysts: the parent router's role filter. Examples and the setting check server-side that
the watch is the presser's own (or, for a shared watch's surge, that they follow it); a
story's Spread, that the delivery ledger has an alert on one of the story's posts to the
presser (or to the desk the button was pressed in), else admins only.
Amplification: the admin router below filters both its command and its buttons, so an
analyst pressing its callback gets only the leftovers' refusal.

Charts are drawn out of process (`bot.charts`); a chart that cannot be drawn leaves the text.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.types import BufferedInputFile, CallbackQuery, LinkPreviewOptions, Message

from bot import texts
from bot.campaign_views import (
    EXAMPLES_PER_PAGE,
    AmplifyAction,
    AmplifyCB,
    SpreadCB,
    SurgeAction,
    SurgeCB,
    amplification_keyboard,
    examples_keyboard,
    surge_setting_keyboard,
)
from bot.charts import amplification_spec, render_or_none, spread_spec
from bot.fit import MAX_CAPTION, fit_html
from bot.storage.audit import AuditLog
from bot.storage.campaigns import CampaignRepository
from bot.storage.channels import ChannelRefError, ChannelRepository
from bot.storage.ledger import DeliveryLedger
from bot.storage.users import Person
from bot.storage.watches import WatchRepository
from bot.surge_alerts import surge_label
from bot.triage.spread import SpreadRecord, analyse_spread, candidates, influence, rank_pairs
from handlers.roles import ADMIN, RoleFilter

log = logging.getLogger(__name__)

AMPLIFICATION_DAYS = 30
AMPLIFICATION_PAIRS = 15
SPREAD_LISTED = 40
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)  # the lists link posts: no preview cards


async def _may_see_surge(person: Person, subject: int, watches: WatchRepository) -> bool:
    """The surge's watch is the person's own, or (a shared watch's surge) one they follow."""
    mine = await watches.list_for(person.id)
    if subject < 0:
        return any(w.shared == -subject for w in mine)
    return any(w.id == subject for w in mine)


async def _channel_names(channels: ChannelRepository) -> tuple[dict[int, str], set[int]]:
    """Every known channel's name by id, and the ids of the monitored ones."""
    names: dict[int, str] = {}
    monitored: set[int] = set()
    for channel in await channels.list():
        if channel.channel_id is not None:
            names[channel.channel_id] = channel.label
            monitored.add(channel.channel_id)
    return names, monitored


def _when(at: float, person: Person) -> str:
    return datetime.fromtimestamp(at, UTC).astimezone(person.zone).strftime("%d %b %H:%M")


# --- surge alerts -------------------------------------------------------------------------


async def on_surge_examples(
    query: CallbackQuery,
    callback_data: SurgeCB,
    person: Person,
    bot: Bot,
    watches: WatchRepository,
    campaigns: CampaignRepository,
) -> None:
    subject, hour = callback_data.watch, callback_data.hour
    if not await _may_see_surge(person, subject, watches):
        await query.answer(texts.NOT_ALLOWED, show_alert=True)
        return
    event = await campaigns.surge_event(subject, hour)
    if event is None:
        await query.answer(texts.SURGE_GONE, show_alert=True)
        return
    alert, refs = event
    posts = await campaigns.surge_posts(refs)
    if not posts:
        await query.answer(texts.SURGE_NO_POSTS, show_alert=True)
        return
    pages = (len(posts) + EXAMPLES_PER_PAGE - 1) // EXAMPLES_PER_PAGE
    page = min(max(callback_data.page, 0), pages - 1)
    shown = posts[page * EXAMPLES_PER_PAGE : (page + 1) * EXAMPLES_PER_PAGE]
    lines = [
        texts.surge_example_line(
            _when(p.date.timestamp(), person),
            f"@{p.username}" if p.username else str(p.channel_id),
            p.link,
            p.text,
        )
        for p in shown
    ]
    text = fit_html(texts.surge_examples(surge_label(subject), alert, lines, page, pages))
    keyboard = examples_keyboard(subject, hour, page, pages)
    if callback_data.page >= 0 and isinstance(query.message, Message):  # ◀ ▶ on a page
        await query.message.edit_text(text, reply_markup=keyboard, link_preview_options=NO_PREVIEW)
    else:  # pressed under the alert: the examples are a message of their own
        await bot.send_message(
            person.id, text, reply_markup=keyboard, link_preview_options=NO_PREVIEW
        )
    await query.answer()


async def on_surge_setting(
    query: CallbackQuery,
    callback_data: SurgeCB,
    person: Person,
    watches: WatchRepository,
    campaigns: CampaignRepository,
    audit: AuditLog,
) -> None:
    watch = await watches.get(callback_data.watch)
    if watch is None or watch.owner_id != person.id:
        await query.answer(texts.BUTTON_EXPIRED)
        return
    action, page = callback_data.action, callback_data.page
    if action is SurgeAction.SETTING:
        off = bool(await campaigns.surges_off([watch.id]))
    else:
        off = action is SurgeAction.OFF
        await campaigns.set_surges(watch.id, not off)

        async def exists(ids: list[int]) -> set[int]:
            return {w.id for w in await watches.get_many(ids)}

        await campaigns.prune_surges_off(exists)  # deleted watches leave the off set
        await audit.record(
            person.id, "watch.surges_off" if off else "watch.surges_on", f"watch {watch.id}"
        )
    if page >= 0 and isinstance(query.message, Message):  # the setting's own view
        await query.message.edit_text(
            texts.surge_setting(watch.id, watch.canonical, off),
            reply_markup=surge_setting_keyboard(watch.id, off, page),
        )
        await query.answer(
            None if action is SurgeAction.SETTING else texts.surges_turned(watch.id, not off)
        )
        return
    await query.answer(texts.surges_turned(watch.id, not off), show_alert=True)


# --- a story's spread ---------------------------------------------------------------------


def _copy_how(record: SpreadRecord, names: dict[int, str]) -> str:
    if record.kind == "forward" or record.forward_channel_id or record.forward_name:
        source = (
            names.get(record.forward_channel_id or 0)
            or record.forward_name
            or (str(record.forward_channel_id) if record.forward_channel_id else "?")
        )
        return f"forward of {source}"
    return "copy"


async def _may_see_spread(
    query: CallbackQuery,
    person: Person,
    first: tuple[int, int],
    records: list[SpreadRecord],
    ledger: DeliveryLedger,
) -> bool:
    """An admin, or someone alerted on one of the story's posts: the presser, or the desk
    (group or channel) whose alert the button was pressed under. Telegram, not the
    callback data, says which chat the pressed message is in."""
    if person.role in ADMIN:
        return True
    chats = [person.id]
    if isinstance(query.message, Message) and query.message.chat.id != person.id:
        chats.append(query.message.chat.id)
    posts = list(dict.fromkeys([first, *(r.key for r in records)]))
    for chat_id in chats:
        if any(meta is not None for meta in await ledger.metas(chat_id, posts)):
            return True
    return False


async def on_spread(
    query: CallbackQuery,
    callback_data: SpreadCB,
    person: Person,
    bot: Bot,
    campaigns: CampaignRepository,
    channels: ChannelRepository,
    ledger: DeliveryLedger,
) -> None:
    first_key = (callback_data.channel_id, callback_data.message_id)
    head, records = await campaigns.spread(first_key)
    if not await _may_see_spread(query, person, first_key, records, ledger):
        log.warning("refused spread %s:%s to %s: not alerted on it", *first_key, person.id)
        await query.answer(texts.NOT_ALLOWED, show_alert=True)
        return
    names, monitored = await _channel_names(channels)
    spread = analyse_spread(records, monitored, first=head)
    if spread is None or not spread.steps:
        await query.answer(texts.SPREAD_NONE, show_alert=True)
        return
    await query.answer()

    def name(record: SpreadRecord) -> str:
        return names.get(record.channel_id) or (
            f"@{record.username}" if record.username else str(record.channel_id)
        )

    labels = {r.channel_id: name(r) for r in (spread.first, *spread.amplifiers)}
    steps = [
        (name(s.record), s.delay_s, _copy_how(s.record, names))
        for s in spread.steps[:SPREAD_LISTED]
    ]
    unmonitored = [
        (src_name or str(src_id), n) for src_id, src_name, n in spread.unmonitored_sources[:10]
    ]
    text = fit_html(
        texts.spread_view(
            name(spread.first),
            _when(spread.first.at, person),
            spread.channels,
            spread.span_s,
            steps,
            list(spread.reached),
            unmonitored,
        )
    )
    png = await render_or_none(spread_spec(spread, labels))
    if png is not None:
        head_line = text.split("\n", 1)[0]
        await bot.send_photo(
            person.id,
            BufferedInputFile(png, filename="spread.png"),
            caption=fit_html(head_line, MAX_CAPTION),
        )
    await bot.send_message(person.id, text, link_preview_options=NO_PREVIEW)


# --- who amplifies whom (admins) ----------------------------------------------------------


async def _amplification(
    bot: Bot, chat_id: int, campaigns: CampaignRepository, channels: ChannelRepository
) -> None:
    edges, forward_names = await campaigns.forwards(days=AMPLIFICATION_DAYS)
    names, monitored = await _channel_names(channels)
    for channel_id, source_name in forward_names.items():
        names.setdefault(channel_id, source_name)

    def name(channel_id: int) -> str:
        return names.get(channel_id) or str(channel_id)

    pairs = rank_pairs(edges, AMPLIFICATION_PAIRS)
    found = candidates(edges, monitored, names)
    text = fit_html(
        texts.amplification_view(
            AMPLIFICATION_DAYS,
            [(name(e.source), name(e.target), e.forwards) for e in pairs],
            [(name(c), score) for c, score in influence(edges, 5)],
            [(c.name or str(c.channel_id), c.forwards, c.forwarded_by) for c in found],
        )
    )
    keyboard = amplification_keyboard([(c.channel_id, c.name or str(c.channel_id)) for c in found])
    if pairs:
        png = await render_or_none(amplification_spec(edges, names, monitored))
        if png is not None:
            await bot.send_photo(
                chat_id,
                BufferedInputFile(png, filename="amplification.png"),
                caption=fit_html(text.split("\n", 1)[0], MAX_CAPTION),
            )
    await bot.send_message(chat_id, text, reply_markup=keyboard, link_preview_options=NO_PREVIEW)


async def cmd_amplification(
    message: Message,
    person: Person,
    bot: Bot,
    campaigns: CampaignRepository,
    channels: ChannelRepository,
) -> None:
    await _amplification(bot, person.id, campaigns, channels)


async def on_amplify(
    query: CallbackQuery,
    callback_data: AmplifyCB,
    person: Person,
    bot: Bot,
    campaigns: CampaignRepository,
    channels: ChannelRepository,
    audit: AuditLog,
) -> None:
    if callback_data.action is AmplifyAction.VIEW:
        await query.answer()
        await _amplification(bot, person.id, campaigns, channels)
        return
    channel_id = abs(callback_data.channel_id)
    # Known only by id: the watcher finds it through a post forwarded from it (watchers.joiner),
    # so without one kept there is nothing to find it by.
    if not await campaigns.forwarded_via(channel_id):
        await query.answer(texts.CANDIDATE_UNREACHABLE, show_alert=True)
        return
    try:
        channel = await channels.add(f"id:{channel_id}", person.id)
    except ChannelRefError as exc:
        await query.answer(str(exc)[:200], show_alert=True)
        return
    await audit.record(person.id, "channel.add", channel.ref, "from amplification")
    await query.answer()
    await bot.send_message(
        person.id, fit_html(texts.candidate_added(channel.label, channel.state))
    )
    log.info("amplification: %s added channel %s", person.id, channel.ref)


def build_campaigns_router() -> Router:
    """Analysts' campaign buttons (the parent's role filter applies)."""
    router = Router(name="campaigns")
    router.callback_query.register(
        on_surge_examples, SurgeCB.filter(F.action == SurgeAction.EXAMPLES)
    )
    router.callback_query.register(on_surge_setting, SurgeCB.filter())
    router.callback_query.register(on_spread, SpreadCB.filter())
    return router


def build_amplification_router() -> Router:
    """Admins only, for the command and its buttons alike."""
    router = Router(name="amplification")
    router.message.filter(RoleFilter(ADMIN))
    router.callback_query.filter(RoleFilter(ADMIN))
    router.message.register(cmd_amplification, Command("amplification"))
    router.callback_query.register(on_amplify, AmplifyCB.filter())
    return router


__all__ = ["build_amplification_router", "build_campaigns_router"]
