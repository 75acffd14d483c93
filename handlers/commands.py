"""Analysts' everyday commands: /start, /help, /channels, /mute, /unmute, /quiet, /digest,
/settings, and the reply to anything else."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from aiogram import Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from bot import texts
from bot.callback_data import ListAction, ListCB
from bot.fit import fit_html
from bot.keyboards import list_keyboard
from bot.storage.channels import ChannelRefError, ChannelRepository
from bot.storage.feedback import FeedbackRepository
from bot.storage.mutes import (
    DurationError,
    MuteRepository,
    channel_target,
    parse_duration,
    watch_target,
)
from bot.storage.users import Person, QuietHours, SettingError, UserRepository
from bot.storage.watches import WatchRepository
from bot.vocabulary import Role
from handlers.errors import edit_or_ignore
from handlers.learning import ON_OFF, set_learning

log = logging.getLogger(__name__)

CHANNELS_PAGE = 20


async def cmd_start(message: Message, person: Person, users: UserRepository) -> None:
    user = message.from_user
    if user is not None:
        await users.touch_profile(user.id, user.full_name, user.username)
    if not person.active and await users.reactivate(person.id):
        await message.answer(texts.START_REACTIVATED)
        return
    await message.answer(texts.START_ANALYST)


async def cmd_help(message: Message, role: str) -> None:
    await message.answer(texts.HELP + (texts.HELP_ADMIN if role == Role.ADMIN else ""))


async def _channels_page(
    channels: ChannelRepository, page: int
) -> tuple[str, InlineKeyboardMarkup | None]:
    listed = [c for c in await channels.list() if not c.is_invite or c.title]
    if not listed:
        return texts.NO_CHANNELS, None
    pages = (len(listed) + CHANNELS_PAGE - 1) // CHANNELS_PAGE
    page = min(max(page, 0), pages - 1)
    shown = listed[page * CHANNELS_PAGE : (page + 1) * CHANNELS_PAGE]
    lines = [texts.channel_line(c.label, c.username, c.state) for c in shown]
    text = texts.channels_list(lines, total=len(listed), page=page, pages=pages)
    return fit_html(text), list_keyboard(ListAction.CHANNELS, page, pages)


async def cmd_channels(message: Message, channels: ChannelRepository) -> None:
    text, keyboard = await _channels_page(channels, 0)
    await message.answer(text, reply_markup=keyboard)


async def on_list_page(
    query: CallbackQuery, callback_data: ListCB, channels: ChannelRepository
) -> None:
    text, keyboard = await _channels_page(channels, callback_data.page)
    if isinstance(query.message, Message):
        await edit_or_ignore(query.message, text, keyboard)
    await query.answer()


async def _target(
    text: str, user_id: int, channels: ChannelRepository, watches: WatchRepository
) -> tuple[str, str] | None:
    """(mute key, how to name it) for '@channel' / t.me link / 'w12'; None if unknown."""
    raw = text.strip()
    lowered = raw.lower()
    if lowered.startswith(("w", "#")) and lowered.lstrip("w#").isdigit():
        watch_id = int(lowered.lstrip("w#"))
        watch = await watches.get(watch_id)
        if watch is None or watch.owner_id != user_id:
            return None
        return watch_target(watch_id), f"watch #{watch_id}"
    try:
        channel = await channels.get(raw)
    except ChannelRefError:
        return None
    if channel is None or channel.channel_id is None:
        return None
    return channel_target(channel.channel_id), channel.label


async def cmd_mute(
    message: Message,
    command: CommandObject,
    person: Person,
    channels: ChannelRepository,
    watches: WatchRepository,
    mutes: MuteRepository,
) -> None:
    parts = (command.args or "").split()
    if not 1 <= len(parts) <= 2:
        await message.answer(texts.USAGE_MUTE)
        return
    seconds = None
    if len(parts) == 2:
        try:
            seconds = parse_duration(parts[1])
        except DurationError as exc:
            await message.answer(texts.error_line(str(exc)) + "\n" + texts.USAGE_MUTE)
            return
    target = await _target(parts[0], person.id, channels, watches)
    if target is None:
        await message.answer(_unknown_target(parts[0], texts.USAGE_MUTE))
        return
    until = await mutes.mute(person.id, target[0], seconds)
    shown = (
        datetime.fromtimestamp(until, UTC).astimezone(person.zone).strftime("%d %b %H:%M %Z")
        if until
        else None
    )
    await message.answer(texts.muted(target[1], shown))


def _unknown_target(ref: str, usage: str) -> str:
    return (
        texts.error_line(f"{ref[:64]}: no such watch of yours or monitored channel") + "\n" + usage
    )


async def cmd_unmute(
    message: Message,
    command: CommandObject,
    person: Person,
    channels: ChannelRepository,
    watches: WatchRepository,
    mutes: MuteRepository,
) -> None:
    parts = (command.args or "").split()
    if len(parts) != 1:
        await message.answer(texts.USAGE_UNMUTE)
        return
    target = await _target(parts[0], person.id, channels, watches)
    if target is None:
        await message.answer(_unknown_target(parts[0], texts.USAGE_UNMUTE))
        return
    if await mutes.unmute(person.id, target[0]):
        await message.answer(texts.unmuted(target[1]))
    else:
        await message.answer(texts.not_muted(target[1]))


async def cmd_quiet(
    message: Message, command: CommandObject, person: Person, users: UserRepository
) -> None:
    args = (command.args or "").strip()
    if not args:
        await message.answer(texts.USAGE_QUIET)
        return
    if args.lower() == "off":
        await users.set_quiet(person.id, None)
        await message.answer(texts.QUIET_OFF)
        return
    try:
        quiet = QuietHours.parse(args)
    except SettingError as exc:
        await message.answer(texts.error_line(str(exc)) + "\n" + texts.USAGE_QUIET)
        return
    await users.set_quiet(person.id, quiet)
    start, end = str(quiet).split("-")
    await message.answer(texts.quiet_set(start, end, person.tz))


async def cmd_digest(
    message: Message, command: CommandObject, person: Person, users: UserRepository
) -> None:
    args = (command.args or "").strip()
    if not args:
        await message.answer(texts.USAGE_DIGEST)
        return
    try:
        mode = await users.set_digest(person.id, args)
    except SettingError as exc:
        await message.answer(texts.error_line(str(exc)) + "\n" + texts.USAGE_DIGEST)
        return
    await message.answer(texts.digest_set(mode))


async def cmd_settings(
    message: Message,
    command: CommandObject,
    person: Person,
    users: UserRepository,
    feedback: FeedbackRepository,
    suggest_per_day: int,
) -> None:
    parts = (command.args or "").split(maxsplit=1)
    if not parts:
        await message.answer(
            texts.settings_view(
                person.tz,
                person.threshold,
                person.quiet,
                person.digest,
                urgent_quiet=person.urgent_quiet,
                suggest=person.suggest,
                learning=person.learning,
            )
        )
        return
    what = parts[0].lower()
    value = parts[1].strip() if len(parts) == 2 else ""
    try:
        if what in ("tz", "timezone") and value:
            await message.answer(texts.tz_set(await users.set_tz(person.id, value)))
        elif what == "threshold" and value:
            await message.answer(texts.threshold_set(await users.set_threshold(person.id, value)))
        elif what == "learning":
            await set_learning(message, person, feedback, value)
        elif what in ("urgent", "suggest") and value.lower() in ON_OFF:
            on = ON_OFF[value.lower()]
            await users.set_flag(person.id, "urgent_quiet" if what == "urgent" else what, on)
            await message.answer(
                texts.urgent_set(on)
                if what == "urgent"
                else texts.suggest_set(on, suggest_per_day)
            )
        else:
            await message.answer(texts.USAGE_SETTINGS)
    except SettingError as exc:
        await message.answer(texts.error_line(str(exc)) + "\n" + texts.USAGE_SETTINGS)


async def on_other(message: Message) -> None:
    await message.answer(texts.UNKNOWN_COMMAND)


def build_commands_router() -> Router:
    router = Router(name="commands")
    router.message.register(cmd_start, CommandStart())
    router.message.register(cmd_help, Command("help"))
    router.message.register(cmd_channels, Command("channels"))
    router.message.register(cmd_mute, Command("mute"))
    router.message.register(cmd_unmute, Command("unmute"))
    router.message.register(cmd_quiet, Command("quiet"))
    router.message.register(cmd_digest, Command("digest"))
    router.message.register(cmd_settings, Command("settings"))
    router.callback_query.register(on_list_page, ListCB.filter())
    return router


def build_fallback_router() -> Router:
    router = Router(name="fallback")
    router.message.register(on_other)
    return router
