"""Desks: routing watches to team groups and channels, and following the bot's membership.

`/route S3 CHAT` (admins: a shared watch, to a group or channel the bot is in), `/route 12
CHAT` (an analyst's own watch, to a group both they and the bot are in), `/routes`,
`/unroute CHAT WATCH`. Sent in the group itself, CHAT may be left out. An admin's shared
watch card (/admin → Shared watches) has a 📤 button listing the desks to route it to.
Membership is checked with Telegram (getChatMember) when the route is made, not trusted from
the command.

The bot added to a group or channel (a my_chat_member update) records the desk and resumes its
paused routes; removed (left, kicked), its routes are paused and their owners told
(`DeskRepository.pause`, through the notices). These updates are handled for anyone, whoever
added or removed the bot: the desk's state must follow Telegram's. An analyst who leaves a
group (a chat_member update, or the service message) has their own watches' routes there
held and is told (`DeskRepository.hold`); joining again resumes them.
"""

from __future__ import annotations

import logging
import re

from aiogram import Bot, F, Router
from aiogram.enums import ChatMemberStatus, ChatType
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, ChatMemberUpdated, Message

from bot import keyboards, texts
from bot.callback_data import DeskRouteCB
from bot.storage.audit import AuditLog
from bot.storage.desks import HELD_LEFT, KINDS, DeskRepository, RouteError
from bot.storage.users import Person, UserRepository
from bot.storage.watches import WatchLimitError, WatchRepository
from handlers.errors import edit_or_ignore
from handlers.roles import ADMIN, RoleFilter

log = logging.getLogger(__name__)

IN_CHAT = frozenset(
    {ChatMemberStatus.MEMBER, ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.CREATOR}
)
GONE = frozenset({ChatMemberStatus.LEFT, ChatMemberStatus.KICKED})
WATCH_RE = re.compile(r"^(?:(?P<shared>[Ss])|#)?(?P<id>\d{1,9})$")
CHAT_RE = re.compile(r"^(-\d{1,20}|@[A-Za-z][A-Za-z0-9_]{3,31})$")
MAX_LISTED = 50  # routes shown by /routes (the reply is fitted to Telegram's limit anyway)
MAX_DESK_BUTTONS = 30  # desks offered by the shared watch card's 📤 button


def _is_member(status: str, is_member: bool | None) -> bool:
    return status in IN_CHAT or (status == ChatMemberStatus.RESTRICTED and bool(is_member))


async def _resolve(
    bot: Bot, message: Message, desks: DeskRepository, ref: str | None
) -> tuple[int, str, str]:
    """(chat id, title, kind) of the chat named by `ref` (this group when left out), as
    Telegram knows it; the bot must be in it. Raises RouteError."""
    if ref is None:
        if message.chat.type == ChatType.PRIVATE:
            raise RouteError("name the group or channel: its id or @username")
        chat_id: int | str = message.chat.id
    elif CHAT_RE.match(ref):
        chat_id = int(ref) if ref.startswith("-") else ref
    else:
        raise RouteError("the chat is an id like -1001234567890 or an @username")
    try:
        chat = await bot.get_chat(chat_id)
        if chat.type not in KINDS:
            raise RouteError(texts.ROUTE_PRIVATE)
        me = await bot.me()
        mine = await bot.get_chat_member(chat.id, me.id)
    except (TelegramBadRequest, TelegramForbiddenError) as exc:
        # Not found, or "bot was kicked": either way not a desk (now).
        if isinstance(exc, TelegramForbiddenError) and isinstance(chat_id, int):
            await desks.pause(chat_id)
        raise RouteError(texts.DESK_NOT_MEMBER) from exc
    if not _is_member(mine.status, getattr(mine, "is_member", None)):
        raise RouteError(texts.DESK_NOT_MEMBER)
    title = chat.title or chat.username or str(chat.id)
    desk = await desks.get(chat.id)
    if desk is None or not desk.active:
        # Added before this bot ran, or its update was missed: Telegram says it is in.
        await desks.seen(chat.id, title, str(chat.type), 0)
    return chat.id, title, str(chat.type)


async def cmd_route(
    message: Message,
    command: CommandObject,
    bot: Bot,
    person: Person,
    desks: DeskRepository,
    watches: WatchRepository,
    audit: AuditLog,
) -> None:
    args = (command.args or "").split()
    if not args or len(args) > 2 or not (found := WATCH_RE.match(args[0])):
        await message.answer(texts.ROUTE_USAGE)
        return
    watch_id = int(found.group("id"))
    shared = found.group("shared") is not None
    if shared and person.role != "admin":
        await message.answer(texts.ROUTE_ADMIN_ONLY)
        return
    own = None
    if not shared:
        own = await watches.get(watch_id)
        if own is None or own.owner_id != person.id:
            await message.answer(texts.ROUTE_NOT_YOURS.format(watch_id=watch_id))
            return
    try:
        chat_id, title, kind = await _resolve(
            bot, message, desks, args[1] if len(args) > 1 else None
        )
        if own is not None:
            if kind == ChatType.CHANNEL and person.role != "admin":
                raise RouteError(texts.ROUTE_CHANNEL_ADMIN_ONLY)
            member = await bot.get_chat_member(chat_id, person.id)
            if not _is_member(member.status, getattr(member, "is_member", None)):
                raise RouteError(texts.ROUTE_NOT_A_MEMBER)
            route = await desks.route_own(own, chat_id, person.id)
        else:
            route = await desks.route_shared(watch_id, chat_id, person.id)
    except (RouteError, WatchLimitError) as exc:
        await message.answer(texts.route_refused(str(exc)))
        return
    except (TelegramBadRequest, TelegramForbiddenError):
        await message.answer(texts.route_refused(texts.DESK_NOT_MEMBER))
        return
    await audit.record(person.id, "desk.route", str(chat_id), f"{route.source} → {title}")
    log.info("desks: %s routed to %s by %s", route.source, chat_id, person.id)
    await message.answer(texts.routed(route.source, title, chat_id))


async def cmd_routes(
    message: Message, person: Person, desks: DeskRepository, users: UserRepository
) -> None:
    if person.role == "admin":
        routes = [r for d in await desks.all() for r in await desks.routes(d.chat_id)]
    else:
        routes = await desks.routes_of(person.id)
    if not routes:
        await message.answer(texts.NO_ROUTES)
        return
    lines: list[str] = []
    for route in routes[:MAX_LISTED]:
        desk = await desks.get(route.chat_id)
        owner = await users.get(route.owner)
        active = desk is not None and desk.active
        line = texts.route_line(
            route.chat_id,
            desk.label if desk else "",
            route.watch_id,
            route.source,
            active,
            owner.label if owner else str(route.owner),
        )
        lines.append(line + (texts.held_state(route.held) if active else ""))
    await message.answer(texts.routes_list(lines))


async def cmd_unroute(
    message: Message,
    command: CommandObject,
    person: Person,
    desks: DeskRepository,
    audit: AuditLog,
) -> None:
    args = (command.args or "").split()
    if len(args) != 2 or not CHAT_RE.match(args[0]) or not args[0].startswith("-"):
        await message.answer(texts.ROUTE_USAGE)
        return
    if not args[1].lstrip("#").isdigit() or len(args[1]) > 10:
        await message.answer(texts.ROUTE_USAGE)
        return
    chat_id, watch_id = int(args[0]), int(args[1].lstrip("#"))
    routes = {r.watch_id: r for r in await desks.routes(chat_id)}
    route = routes.get(watch_id)
    if route is None or (person.role != "admin" and route.owner != person.id):
        await message.answer(texts.UNROUTE_NONE)
        return
    await desks.unroute(chat_id, watch_id)
    desk = await desks.get(chat_id)
    await audit.record(person.id, "desk.unroute", str(chat_id), route.source)
    await message.answer(texts.unrouted(route.source, desk.label if desk else "", chat_id))


async def on_route_pick(
    query: CallbackQuery, callback_data: DeskRouteCB, desks: DeskRepository
) -> None:
    """The shared watch card's 📤 button: the desks the bot is in, to choose one."""
    active = [d for d in await desks.all() if d.active][:MAX_DESK_BUTTONS]
    if not active:
        await query.answer(texts.NO_DESKS, show_alert=True)
        return
    if isinstance(query.message, Message):
        await edit_or_ignore(
            query.message,
            text=texts.desk_choice(callback_data.shared_id),
            reply_markup=keyboards.desk_choice_keyboard(
                callback_data.shared_id, [(d.chat_id, d.label) for d in active]
            ),
        )
    await query.answer()


async def on_route_chosen(
    query: CallbackQuery,
    callback_data: DeskRouteCB,
    desks: DeskRepository,
    audit: AuditLog,
) -> None:
    cb = callback_data
    desk = await desks.get(cb.chat_id)
    try:
        route = await desks.route_shared(cb.shared_id, cb.chat_id, query.from_user.id)
    except RouteError as exc:
        await query.answer(texts.route_refused(str(exc))[:200], show_alert=True)
        return
    label = desk.label if desk else str(cb.chat_id)
    await audit.record(
        query.from_user.id, "desk.route", str(cb.chat_id), f"{route.source} → {label}"
    )
    if isinstance(query.message, Message):
        await query.message.answer(texts.routed(route.source, label, cb.chat_id))
    await query.answer(f"{route.source} → {label}"[:200])


async def on_desk_membership(event: ChatMemberUpdated, desks: DeskRepository) -> None:
    """The bot's own membership of a group or channel changed (anyone may have done it)."""
    status = event.new_chat_member.status
    chat = event.chat
    if status in IN_CHAT:
        title = chat.title or chat.username or str(chat.id)
        resumed = await desks.seen(chat.id, title, str(chat.type), event.from_user.id)
        log.info("desks: in chat %s (%d routes resumed)", chat.id, len(resumed))
    elif status in GONE:
        paused = await desks.pause(chat.id)
        log.info("desks: removed from chat %s (%d routes paused)", chat.id, len(paused))


async def on_member_changed(event: ChatMemberUpdated, desks: DeskRepository) -> None:
    """Someone else's membership of a group changed (a chat_member update: Telegram sends it
    to a bot that is an administrator there and asks for it): an analyst who left or was
    removed has their own watches' routes there held, and told; back in, they resume."""
    member = event.new_chat_member
    user = member.user
    if user.is_bot:
        return
    if _is_member(member.status, getattr(member, "is_member", None)):
        released = await desks.release(user.id, HELD_LEFT, event.chat.id)
        if released:
            log.info("desks: %s back in %s (%d routes)", user.id, event.chat.id, len(released))
    else:
        held = await desks.hold(user.id, HELD_LEFT, event.chat.id)
        if held:
            log.info("desks: %s left %s (%d routes held)", user.id, event.chat.id, len(held))


async def on_member_service(message: Message, desks: DeskRepository) -> None:
    """The same from a group's service messages (a member left, members joined), which a
    bot that is not an administrator gets too."""
    if message.left_chat_member is not None and not message.left_chat_member.is_bot:
        await desks.hold(message.left_chat_member.id, HELD_LEFT, message.chat.id)
    for user in message.new_chat_members or ():
        if not user.is_bot:
            await desks.release(user.id, HELD_LEFT, message.chat.id)


async def on_desk_migrated(message: Message, desks: DeskRepository) -> None:
    """A basic group became a supergroup: Telegram says so in both (old and new id); the
    routes move to the new id (later sends to the old one are refused)."""
    if message.migrate_to_chat_id:
        old, new = message.chat.id, message.migrate_to_chat_id
    else:
        old, new = message.migrate_from_chat_id or 0, message.chat.id
    moved = await desks.migrate(old, new, message.chat.title or "")
    if moved:
        log.info("desks: chat %s became %s (%d routes moved)", old, new, len(moved))


def build_desk_membership_router() -> Router:
    """my_chat_member of groups and channels, and a group's upgrade to a supergroup, whoever
    caused them: first, before the outsiders' and the private-chat membership routers (an
    analyst removing the bot from a group has not blocked it)."""
    router = Router(name="desk-membership")
    router.my_chat_member.filter(F.chat.type != ChatType.PRIVATE)
    router.my_chat_member.register(on_desk_membership)
    # chat_member is only sent when asked for: registering it here puts it in the polling's
    # allowed_updates (bot/botapp.py asks for the update types the routers use).
    router.chat_member.filter(F.chat.type != ChatType.PRIVATE)
    router.chat_member.register(on_member_changed)
    router.message.register(
        on_member_service,
        F.chat.type != ChatType.PRIVATE,
        F.left_chat_member | F.new_chat_members,
    )
    router.message.register(
        on_desk_migrated,
        F.chat.type != ChatType.PRIVATE,
        F.migrate_to_chat_id | F.migrate_from_chat_id,
    )
    return router


def build_desks_router() -> Router:
    """/route, /routes, /unroute: inside the analysts' router (admins checked by person)."""
    router = Router(name="desks")
    router.message.register(cmd_route, Command("route"))
    router.message.register(cmd_routes, Command("routes"))
    router.message.register(cmd_unroute, Command("unroute"))
    admins = Router(name="desks-admin")  # the shared watch card's 📤 button
    admins.callback_query.filter(RoleFilter(ADMIN))
    admins.callback_query.register(on_route_pick, DeskRouteCB.filter(F.chat_id == 0))
    admins.callback_query.register(on_route_chosen, DeskRouteCB.filter(F.chat_id < 0))
    router.include_router(admins)
    return router
