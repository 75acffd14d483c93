"""The /admin menu: Channels, Analysts, System, Audit log. Every action is audited.

One small handler per button, each registered on its typed callback factory
(`bot/callback_data.py`); the router's role filter admits admins only, so an analyst's (or a
stranger's) forged admin callback reaches none of them (handlers/access.py refuses it). Shared
watches, the menu's third section, live in handlers/shared.py.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from bot import keyboards, texts
from bot.callback_data import (
    AdminPrompt,
    AdminPromptCB,
    AdminView,
    AdminViewCB,
    AuditCB,
    ChannelAction,
    ChannelCB,
    ChannelWeightCB,
    DeadRetryCB,
    PendingAction,
    PendingCB,
    PersonAction,
    PersonCB,
    channel_token,
)
from bot.fit import fit_html, fit_markup
from bot.status import health_lines, watcher_health
from bot.storage.audit import AuditLog
from bot.storage.channels import Channel, ChannelRefError, ChannelRepository
from bot.storage.deadletters import DeadLetters, stream_name
from bot.storage.desks import HELD_REVOKED, DeskRepository
from bot.storage.errors import HandlerErrors
from bot.storage.health import HealthRepository
from bot.storage.learning import LearningRepository
from bot.storage.notices import NoticeBox
from bot.storage.users import UserRepository
from handlers.access import tell_user
from handlers.commands_scope import set_commands_for
from handlers.errors import edit_or_ignore
from handlers.roles import ADMIN, RoleFilter

log = logging.getLogger(__name__)

CHANNELS_PAGE = 8
ANALYSTS_PAGE = 20
PENDING_PAGE = 10
DEAD_PAGE = 8
AUDIT_SHOWN = 15
STATE_MARKERS = {"joined": "🟢", "pending": "⏳", "failed": "🔴", "paused": "⏸"}


class AdminStates(StatesGroup):
    adding_channel = State()


def _when(ts: float | None) -> str | None:
    if not ts:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _pages(total: int, size: int, page: int) -> tuple[int, int]:
    """(page clamped to the list, number of pages)."""
    pages = max(1, (total + size - 1) // size)
    return min(max(page, 0), pages - 1), pages


async def _show(query: CallbackQuery, text: str, markup: InlineKeyboardMarkup) -> None:
    if isinstance(query.message, Message):
        await edit_or_ignore(query.message, fit_html(text), fit_markup(markup))


async def cmd_admin(message: Message) -> None:
    await message.answer(texts.ADMIN_MENU, reply_markup=keyboards.admin_menu_keyboard())


async def _add_channel(
    message: Message, text: str, channels: ChannelRepository, audit: AuditLog
) -> bool:
    user = message.from_user
    if user is None:
        return False
    try:
        channel = await channels.add(text, user.id)
    except ChannelRefError as exc:
        await message.answer(f"⚠️ {exc}\n{texts.USAGE_ADDCHANNEL}")  # str() is HTML-safe
        return False
    await audit.record(user.id, "channel.add", channel.ref)
    await message.answer(texts.channel_added(channel.label, channel.state))
    return True


async def cmd_addchannel(
    message: Message, command: CommandObject, channels: ChannelRepository, audit: AuditLog
) -> None:
    ref = (command.args or "").strip()
    if not ref:
        await message.answer(texts.USAGE_ADDCHANNEL)
        return
    await _add_channel(message, ref, channels, audit)


async def on_channel_reply(
    message: Message, state: FSMContext, channels: ChannelRepository, audit: AuditLog
) -> None:
    if await _add_channel(message, message.text or "", channels, audit):
        await state.clear()


async def _channel_by_token(channels: ChannelRepository, token: str) -> Channel | None:
    for channel in await channels.list():
        if channel_token(channel.key) == token:
            return channel
    return None


def _channel_card(channel: Channel) -> tuple[str, InlineKeyboardMarkup]:
    text = texts.channel_card(
        channel.label,
        channel.ref,
        channel.state,
        channel.reason,
        channel.weight,
        _when(channel.last_post_at),
    )
    markup = keyboards.admin_channel_keyboard(
        channel.key, channel.state == "paused", channel.weight
    )
    return text, markup


async def _channels_page(channels: ChannelRepository, page: int) -> tuple[str, Any]:
    listed = await channels.list()
    page, pages = _pages(len(listed), CHANNELS_PAGE, page)
    shown = listed[page * CHANNELS_PAGE : (page + 1) * CHANNELS_PAGE]
    buttons = [(c.key, f"{STATE_MARKERS.get(c.state, '')} {c.label}"[:60]) for c in shown]
    header = texts.ADMIN_CHANNELS + f" ({len(listed)})" + texts.page_of(page, pages)
    if not listed:
        header += "\n" + texts.NO_CHANNELS
    return header, keyboards.admin_channels_keyboard(buttons, page, pages)


# --- sections --------------------------------------------------------------------------------
async def on_menu(query: CallbackQuery) -> None:
    await _show(query, texts.ADMIN_MENU, keyboards.admin_menu_keyboard())
    await query.answer()


async def on_channels(
    query: CallbackQuery, callback_data: AdminViewCB, channels: ChannelRepository
) -> None:
    await _show(query, *await _channels_page(channels, callback_data.page))
    await query.answer()


async def on_analysts(
    query: CallbackQuery, callback_data: AdminViewCB, users: UserRepository
) -> None:
    await _analysts(query, users, callback_data.page)
    await query.answer()


async def on_pending(
    query: CallbackQuery, callback_data: AdminViewCB, users: UserRepository
) -> None:
    await _pending(query, users, callback_data.page)
    await query.answer()


async def on_system(
    query: CallbackQuery,
    health: HealthRepository,
    channels: ChannelRepository,
    learning: LearningRepository,
    handler_errors: HandlerErrors,
) -> None:
    await _system(query, health, channels, learning, handler_errors)
    await query.answer()


async def on_dead_letters(
    query: CallbackQuery, callback_data: AdminViewCB, dead_letters: DeadLetters
) -> None:
    await _dead_letters(query, dead_letters, callback_data.page)
    await query.answer()


async def on_audit(query: CallbackQuery, callback_data: AuditCB, audit: AuditLog) -> None:
    await _audit(query, audit, callback_data.cursor, callback_data.page)
    await query.answer()


# --- channels --------------------------------------------------------------------------------
async def on_add_channel(query: CallbackQuery, state: FSMContext) -> None:
    await state.set_state(AdminStates.adding_channel)
    if isinstance(query.message, Message):
        await query.message.answer(texts.ADD_CHANNEL_PROMPT)
    await query.answer()


async def _channel_or_stale(
    query: CallbackQuery, channels: ChannelRepository, token: str
) -> Channel | None:
    """The channel a button names, or None (answered: it is gone or was never there)."""
    channel = await _channel_by_token(channels, token)
    if channel is None:
        await query.answer(texts.ADMIN_STALE, show_alert=True)
    return channel


async def on_channel(
    query: CallbackQuery, callback_data: ChannelCB, channels: ChannelRepository
) -> None:
    channel = await _channel_or_stale(query, channels, callback_data.token)
    if channel is not None:
        await _show(query, *_channel_card(channel))
        await query.answer()


async def _pause(
    query: CallbackQuery,
    token: str,
    paused: bool,
    channels: ChannelRepository,
    audit: AuditLog,
) -> None:
    channel = await _channel_or_stale(query, channels, token)
    if channel is None:
        return
    channel = await channels.set_paused(channel.key, paused) or channel
    await audit.record(
        query.from_user.id, "channel.pause" if paused else "channel.resume", channel.ref
    )
    await _show(query, *_channel_card(channel))
    await query.answer()


async def on_channel_pause(
    query: CallbackQuery, callback_data: ChannelCB, channels: ChannelRepository, audit: AuditLog
) -> None:
    await _pause(query, callback_data.token, True, channels, audit)


async def on_channel_resume(
    query: CallbackQuery, callback_data: ChannelCB, channels: ChannelRepository, audit: AuditLog
) -> None:
    await _pause(query, callback_data.token, False, channels, audit)


async def on_channel_remove(
    query: CallbackQuery, callback_data: ChannelCB, channels: ChannelRepository, audit: AuditLog
) -> None:
    channel = await _channel_or_stale(query, channels, callback_data.token)
    if channel is None:
        return
    await channels.remove(channel.key)
    await audit.record(query.from_user.id, "channel.remove", channel.ref)
    await _show(query, *await _channels_page(channels, 0))
    await query.answer("Removed")


async def on_channel_weight(
    query: CallbackQuery,
    callback_data: ChannelWeightCB,
    channels: ChannelRepository,
    audit: AuditLog,
) -> None:
    channel = await _channel_or_stale(query, channels, callback_data.token)
    if channel is None:
        return
    weight = callback_data.weight.value
    channel = await channels.set_weight(channel.key, weight) or channel
    await audit.record(query.from_user.id, "channel.weight", channel.ref, weight)
    await _show(query, *_channel_card(channel))
    await query.answer()


# --- people ----------------------------------------------------------------------------------
async def on_person(query: CallbackQuery, callback_data: PersonCB, users: UserRepository) -> None:
    await _person_card(query, users, callback_data.user_id)
    await query.answer()


@dataclass(frozen=True, slots=True)
class RoleChange:
    """What a decision on a person does: the repository call, the audit action, the command
    list they get, and what they are told (None: nothing)."""

    apply: Callable[[UserRepository, int], Awaitable[bool]]
    audited: str
    role: str
    tell: str | None


APPROVE = RoleChange(UserRepository.approve, "access.approved", "analyst", texts.ACCESS_APPROVED)
DENY = RoleChange(UserRepository.deny, "access.denied", "denied", texts.ACCESS_DENIED)
PROMOTE = RoleChange(UserRepository.promote, "role.promote", "admin", None)
DEMOTE = RoleChange(UserRepository.demote, "role.demote", "analyst", None)
REVOKE = RoleChange(UserRepository.revoke, "role.revoke", "revoked", texts.ACCESS_REVOKED)


async def _change(
    query: CallbackQuery,
    change: RoleChange,
    target: int,
    bot: Bot,
    users: UserRepository,
    audit: AuditLog,
    notices: NoticeBox,
) -> bool:
    """Apply `change` to `target`; False (answered: stale) if it no longer applies."""
    if not await change.apply(users, target):
        await query.answer(texts.ADMIN_STALE)
        return False
    await audit.record(query.from_user.id, change.audited, str(target))
    await set_commands_for(bot, target, change.role)
    if change.tell:
        await tell_user(notices, target, change.tell)
    return True


async def _decide_on_person(
    query: CallbackQuery,
    change: RoleChange,
    target: int,
    bot: Bot,
    users: UserRepository,
    audit: AuditLog,
    notices: NoticeBox,
) -> None:
    """A decision from a person's card; the card is shown again, changed."""
    if await _change(query, change, target, bot, users, audit, notices):
        await _person_card(query, users, target)
        await query.answer("Done")


async def on_promote(
    query: CallbackQuery,
    callback_data: PersonCB,
    bot: Bot,
    users: UserRepository,
    audit: AuditLog,
    notices: NoticeBox,
) -> None:
    await _decide_on_person(query, PROMOTE, callback_data.user_id, bot, users, audit, notices)


async def on_demote(
    query: CallbackQuery,
    callback_data: PersonCB,
    bot: Bot,
    users: UserRepository,
    audit: AuditLog,
    notices: NoticeBox,
) -> None:
    await _decide_on_person(query, DEMOTE, callback_data.user_id, bot, users, audit, notices)


async def on_revoke(
    query: CallbackQuery,
    callback_data: PersonCB,
    bot: Bot,
    users: UserRepository,
    audit: AuditLog,
    notices: NoticeBox,
    desks: DeskRepository,
) -> None:
    await _decide_on_person(query, REVOKE, callback_data.user_id, bot, users, audit, notices)
    revoked = await users.get(callback_data.user_id)
    if revoked is not None and not revoked.is_analyst:  # their routes to desks are held
        await desks.hold(callback_data.user_id, HELD_REVOKED)


async def _decide_on_request(
    query: CallbackQuery,
    change: RoleChange,
    callback_data: PendingCB,
    bot: Bot,
    users: UserRepository,
    audit: AuditLog,
    notices: NoticeBox,
) -> None:
    """A decision in the pending list; the same page of the list is shown again."""
    if await _change(query, change, callback_data.user_id, bot, users, audit, notices):
        await _pending(query, users, callback_data.page)
        await query.answer("Done")


async def on_approve(
    query: CallbackQuery,
    callback_data: PendingCB,
    bot: Bot,
    users: UserRepository,
    audit: AuditLog,
    notices: NoticeBox,
) -> None:
    await _decide_on_request(query, APPROVE, callback_data, bot, users, audit, notices)


async def on_deny(
    query: CallbackQuery,
    callback_data: PendingCB,
    bot: Bot,
    users: UserRepository,
    audit: AuditLog,
    notices: NoticeBox,
) -> None:
    await _decide_on_request(query, DENY, callback_data, bot, users, audit, notices)


# --- dead letters ----------------------------------------------------------------------------
_ENTRY_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")


async def on_dead_retry(
    query: CallbackQuery, callback_data: DeadRetryCB, dead_letters: DeadLetters, audit: AuditLog
) -> None:
    cb = callback_data
    done = bool(_ENTRY_ID.fullmatch(cb.entry)) and await dead_letters.retry(cb.stream, cb.entry)
    if done:
        await audit.record(
            query.from_user.id, "dead_letter.retry", cb.entry, stream_name(cb.stream)
        )
    await _dead_letters(query, dead_letters, cb.page)
    await query.answer("Requeued" if done else texts.ADMIN_STALE)


# --- views -----------------------------------------------------------------------------------
async def _analysts(query: CallbackQuery, users: UserRepository, page: int) -> None:
    people = await users.analysts()
    pending = await users.pending()
    page, pages = _pages(len(people), ANALYSTS_PAGE, page)
    shown = people[page * ANALYSTS_PAGE : (page + 1) * ANALYSTS_PAGE]
    listed = [(p.id, f"{'👑 ' if p.role == 'admin' else ''}{p.label}"[:60]) for p in shown]
    await _show(
        query,
        texts.ADMIN_ANALYSTS + f" ({len(people)})" + texts.page_of(page, pages),
        keyboards.admin_analysts_keyboard(listed, len(pending), page, pages),
    )


async def _pending(query: CallbackQuery, users: UserRepository, page: int) -> None:
    pending = await users.pending()
    page, pages = _pages(len(pending), PENDING_PAGE, page)
    shown = pending[page * PENDING_PAGE : (page + 1) * PENDING_PAGE]
    text = (
        texts.ADMIN_PENDING + f" ({len(pending)})" + texts.page_of(page, pages)
        if pending
        else texts.NO_PENDING
    )
    people = [(p.id, p.label[:40]) for p in shown]
    await _show(query, text, keyboards.admin_pending_keyboard(people, page, pages))


async def _audit(query: CallbackQuery, audit: AuditLog, ref: str, page: int) -> None:
    """A page of the audit log, newest first. `ref` (the button's cursor) is where the page
    starts: '' for the newest entry, else an entry id ('(' before it: the entries older than
    it); anything else is read as ''."""
    if ref and not _AUDIT_REF.fullmatch(ref):
        ref = ""
    entries = await audit.page(ref or "+", AUDIT_SHOWN)
    total = await audit.count()
    if not entries and ref:  # the page aged out of the capped log: back to the newest
        entries, page = await audit.page("+", AUDIT_SHOWN), 0
    if not entries:
        await _show(query, texts.NO_AUDIT, keyboards.admin_back_keyboard())
        return
    newer: str | None = None
    if page > 0 or ref:
        above = await audit.newer(entries[0].id, AUDIT_SHOWN)
        if above:
            newer = "" if len(above) < AUDIT_SHOWN else above[-1].id
    older = f"({entries[-1].id}" if await audit.page(f"({entries[-1].id}", 1) else None
    pages = max(1, (total + AUDIT_SHOWN - 1) // AUDIT_SHOWN)
    page = min(max(page, 0), pages - 1)
    if newer == "":
        page = 1
    lines = [
        texts.audit_line(_when(e.at) or "", e.actor, e.action, e.target[:80], e.detail[:120])
        for e in entries
    ]
    header = f"{texts.BTN_AUDIT} ({total}){texts.page_of(page, pages)}"
    if older is None:
        header += "\n" + texts.AUDIT_FIRST
    await _show(
        query,
        "\n".join([header, *lines]),
        keyboards.admin_audit_keyboard(newer, older, page),
    )


_AUDIT_REF = re.compile(r"\(?[0-9]{1,20}-[0-9]{1,20}")


async def _person_card(query: CallbackQuery, users: UserRepository, user_id: int) -> None:
    person = await users.get(user_id)
    if person is None:
        await _show(query, texts.ADMIN_STALE, keyboards.admin_back_keyboard(AdminView.ANALYSTS))
        return
    await _show(
        query,
        texts.analyst_card(person.id, person.name, person.username, person.role, person.active),
        keyboards.admin_person_keyboard(person.id, person.role, person.id in users.admins),
    )


async def _system(
    query: CallbackQuery,
    health: HealthRepository,
    channels: ChannelRepository,
    learning: LearningRepository,
    handler_errors: HandlerErrors,
) -> None:
    lines = []
    dead_total = 0
    for i, stats in enumerate(await health.streams()):  # in the dead-letter streams' order
        dead_total += stats.dead_letters
        lines.append(
            texts.stream_line(
                stream_name(i),
                stats.length,
                stats.pending,
                stats.lag,
                stats.consumers,
                stats.dead_letters,
            )
        )
    everything = await channels.list()
    listed = sorted(everything, key=lambda c: c.last_post_at or 0)
    channel_lines = [
        f"{STATE_MARKERS.get(c.state, '')} {texts.channel_line(c.label, None, c.state)[2:]}: "
        f"{_when(c.last_post_at) or 'never'}"
        for c in listed[:30]
    ]
    shown = health_lines(await watcher_health(health, everything))
    state = await learning.system_state()
    trained = state.desk.get("trained_at")
    at = _when(float(trained)) if isinstance(trained, (int, float)) else None
    shown += texts.learning_system_lines(
        state.models, state.moved_today, state.suggested_today, state.desk, at or "?"
    )
    errors = await handler_errors.counts()
    if errors:
        shown.append("Handler errors: " + ", ".join(f"{name} {n}" for name, n in errors.items()))
    await _show(
        query,
        texts.system_view(lines, shown, channel_lines),
        keyboards.admin_system_keyboard(dead_total),
    )


async def _dead_letters(query: CallbackQuery, dead_letters: DeadLetters, page: int = 0) -> None:
    """Dead letters of every stream, newest first, a page at a time."""
    found, total = await dead_letters.page(page, DEAD_PAGE)
    clamped, pages = _pages(total, DEAD_PAGE, page)
    if clamped != page:  # past the last page (a retry emptied it): the last one
        page = clamped
        found, total = await dead_letters.page(page, DEAD_PAGE)
        page, pages = _pages(total, DEAD_PAGE, page)
    lines = [
        f"{d.stream} " + texts.dead_line(d.id, d.reason[:300], _when(d.at) or "?") for d in found
    ]
    header = f"{texts.BTN_DEAD} ({total}){texts.page_of(page, pages)}"
    await _show(
        query,
        "\n".join([header, *lines]) if lines else texts.NO_DEAD,
        keyboards.admin_dead_keyboard([(d.index, d.id) for d in found], page, pages),
    )


def build_admin_router() -> Router:
    router = Router(name="admin")
    router.message.filter(RoleFilter(ADMIN))
    router.callback_query.filter(RoleFilter(ADMIN))
    router.message.register(cmd_admin, Command("admin"))
    router.message.register(cmd_addchannel, Command("addchannel"))
    router.message.register(
        on_channel_reply, AdminStates.adding_channel, F.text, ~F.text.startswith("/")
    )
    on = router.callback_query.register
    on(on_menu, AdminViewCB.filter(F.view == AdminView.MENU))
    on(on_channels, AdminViewCB.filter(F.view == AdminView.CHANNELS))
    on(on_analysts, AdminViewCB.filter(F.view == AdminView.ANALYSTS))
    on(on_pending, AdminViewCB.filter(F.view == AdminView.PENDING))
    on(on_system, AdminViewCB.filter(F.view == AdminView.SYSTEM))
    on(on_dead_letters, AdminViewCB.filter(F.view == AdminView.DEAD))
    on(on_audit, AuditCB.filter())
    on(on_add_channel, AdminPromptCB.filter(F.what == AdminPrompt.CHANNEL))
    on(on_channel, ChannelCB.filter(F.action == ChannelAction.OPEN))
    on(on_channel_pause, ChannelCB.filter(F.action == ChannelAction.PAUSE))
    on(on_channel_resume, ChannelCB.filter(F.action == ChannelAction.RESUME))
    on(on_channel_remove, ChannelCB.filter(F.action == ChannelAction.REMOVE))
    on(on_channel_weight, ChannelWeightCB.filter())
    on(on_person, PersonCB.filter(F.action == PersonAction.OPEN))
    on(on_promote, PersonCB.filter(F.action == PersonAction.PROMOTE))
    on(on_demote, PersonCB.filter(F.action == PersonAction.DEMOTE))
    on(on_revoke, PersonCB.filter(F.action == PersonAction.REVOKE))
    on(on_approve, PendingCB.filter(F.action == PendingAction.APPROVE))
    on(on_deny, PendingCB.filter(F.action == PendingAction.DENY))
    on(on_dead_retry, DeadRetryCB.filter())
    return router
