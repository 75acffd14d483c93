"""Shared watches: the admins' section of /admin, and analysts' /shared (subscribe, unsubscribe).

A subscription is the analyst's own watch linked to the shared one (bot/storage/shared.py), so
/watches, /unwatch, /mute and alerts treat it like any other watch.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from bot import keyboards, texts
from bot.alerts import Notice
from bot.callback_data import (
    AdminPrompt,
    AdminPromptCB,
    AdminView,
    AdminViewCB,
    SharedAction,
    SharedAdminAction,
    SharedAdminCB,
    SharedCB,
    SharedPriorityCB,
)
from bot.storage.audit import AuditLog
from bot.storage.desks import DeskRepository
from bot.storage.notices import NoticeBox
from bot.storage.shared import (
    AlreadySubscribedError,
    SharedWatch,
    SharedWatchGoneError,
    SharedWatchRepository,
)
from bot.storage.users import Person
from bot.storage.watches import WatchLimitError
from bot.triage.query import QueryError
from handlers.errors import edit_or_ignore
from handlers.roles import ADMIN, RoleFilter

log = logging.getLogger(__name__)

ADMIN_PAGE = 8
ANALYST_PAGE = 6
# A message that is a bot command (/admin, /cancel@bot ...), as opposed to a regex query such
# as /zangez[uy]r/, which also starts with a slash.
COMMAND_RE = r"^/[A-Za-z0-9_]+(@\w+)?(\s|$)"


class SharedStates(StatesGroup):
    adding = State()


def _pages(total: int, size: int, page: int) -> tuple[int, int]:
    pages = max(1, (total + size - 1) // size)
    return min(max(page, 0), pages - 1), pages


async def _edit(query: CallbackQuery, text: str, markup: InlineKeyboardMarkup | None) -> None:
    if isinstance(query.message, Message):
        await edit_or_ignore(query.message, text, markup)


# --- admins ----------------------------------------------------------------------------------
async def _admin_list(
    shared: SharedWatchRepository, page: int
) -> tuple[str, InlineKeyboardMarkup]:
    listed = await shared.all()
    page, pages = _pages(len(listed), ADMIN_PAGE, page)
    shown = listed[page * ADMIN_PAGE : (page + 1) * ADMIN_PAGE]
    lines = [texts.admin_shared_header(len(listed), page, pages)]
    lines += [
        texts.admin_shared_line(s.id, s.name, s.canonical, s.priority, s.subscribers)
        for s in shown
    ]
    if not listed:
        lines.append(texts.NO_SHARED_ADMIN)
    buttons = [
        (s.id, f"{texts.PRIORITY_MARKERS.get(s.priority, '')} S{s.id} {s.label}"[:60])
        for s in shown
    ]
    return "\n".join(lines), keyboards.admin_shared_keyboard(buttons, page, pages)


def _card(found: SharedWatch, page: int) -> tuple[str, InlineKeyboardMarkup]:
    created = datetime.fromtimestamp(found.created_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = texts.shared_card(
        found.id, found.name, found.canonical, found.priority, found.subscribers, created
    )
    return text, keyboards.admin_shared_card_keyboard(found.id, found.priority, page)


async def on_shared_list(
    query: CallbackQuery, callback_data: AdminViewCB, shared: SharedWatchRepository
) -> None:
    await _edit(query, *await _admin_list(shared, callback_data.page))
    await query.answer()


async def on_add_shared(query: CallbackQuery, state: FSMContext) -> None:
    await state.set_state(SharedStates.adding)
    if isinstance(query.message, Message):
        await query.message.answer(texts.ADD_SHARED_PROMPT)
    await query.answer()


async def _shared_or_gone(
    query: CallbackQuery, shared: SharedWatchRepository, shared_id: int, page: int
) -> SharedWatch | None:
    """The shared watch a button names, or None (the list is shown again and the admin told
    it is gone)."""
    found = await shared.get(shared_id) if 0 < shared_id < 10**12 else None
    if found is None:
        await _edit(query, *await _admin_list(shared, page))
        await query.answer(texts.SHARED_GONE, show_alert=True)
    return found


async def on_shared_card(
    query: CallbackQuery, callback_data: SharedAdminCB, shared: SharedWatchRepository
) -> None:
    cb = callback_data
    found = await _shared_or_gone(query, shared, cb.shared_id, cb.page)
    if found is not None:
        await _edit(query, *_card(found, cb.page))
        await query.answer()


async def on_shared_priority(
    query: CallbackQuery,
    callback_data: SharedPriorityCB,
    shared: SharedWatchRepository,
    audit: AuditLog,
) -> None:
    cb = callback_data
    found = await _shared_or_gone(query, shared, cb.shared_id, cb.page)
    if found is None:
        return
    priority = cb.priority.value
    changed = await shared.set_priority(found.id, priority)
    if changed is None:
        await query.answer(texts.SHARED_GONE, show_alert=True)
        return
    if changed.priority != found.priority:
        await audit.record(query.from_user.id, "shared.priority", f"shared {found.id}", priority)
    await _edit(query, *_card(changed, cb.page))
    await query.answer(f"Priority {priority}")


async def on_shared_remove(
    query: CallbackQuery, callback_data: SharedAdminCB, shared: SharedWatchRepository
) -> None:
    """Asks first: removing a shared watch removes every subscriber's copy of it."""
    cb = callback_data
    found = await _shared_or_gone(query, shared, cb.shared_id, cb.page)
    if found is None:
        return
    await _edit(
        query,
        texts.shared_remove_confirm(found.id, found.name, found.canonical, found.subscribers),
        keyboards.admin_shared_remove_keyboard(found.id, cb.page),
    )
    await query.answer()


async def on_shared_remove_confirmed(
    query: CallbackQuery,
    callback_data: SharedAdminCB,
    notices: NoticeBox,
    shared: SharedWatchRepository,
    desks: DeskRepository,
    audit: AuditLog,
) -> None:
    cb = callback_data
    found = await _shared_or_gone(query, shared, cb.shared_id, cb.page)
    if found is None:
        return
    told = await shared.remove(found.id)
    await _edit(query, *await _admin_list(shared, cb.page))
    if told is None:  # someone else removed it a moment ago and told the subscribers
        await query.answer(texts.SHARED_GONE, show_alert=True)
        return
    await audit.record(
        query.from_user.id,
        "shared.remove",
        f"shared {found.id}",
        f"{found.canonical} ({texts.count_suffix(len(told), 'subscriber')})",
    )
    # On the alerts stream: durable and rate-limited like alerts, however many there are.
    shown = (found.id, found.name, found.canonical)
    people = [
        Notice(analyst_id, texts.shared_removed_notice(*shown, watch_id), True)
        for analyst_id, watch_id in sorted(told.items())
        if analyst_id > 0
    ]
    # A desk (a negative chat id) subscribed through a route: whoever routed it is told in
    # private, not the team's chat.
    for chat_id, watch_id in sorted(told.items()):
        route = await desks.forget(chat_id, watch_id) if chat_id < 0 else None
        if route is not None:
            desk = await desks.get(chat_id)
            label = desk.label if desk else ""
            note = texts.desk_shared_removed(found.id, found.name, label, chat_id)
            people.append(Notice(route.owner, note, True))
    await notices.send(*people)
    await query.answer(texts.shared_removed(found.id, len(told)))


def _split_name(text: str) -> tuple[str, str]:
    """(name, query): a name on the first line if there is more than one line."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if len(lines) > 1:
        return lines[0], " ".join(lines[1:])
    return "", lines[0] if lines else ""


async def on_shared_query(
    message: Message, state: FSMContext, shared: SharedWatchRepository, audit: AuditLog
) -> None:
    user = message.from_user
    if user is None:
        return
    name, query = _split_name(message.text or "")
    if not query:
        await message.answer(texts.USAGE_SHARED_ADD)
        return
    try:
        added = await shared.add(query, name=name, created_by=user.id)
    except QueryError as exc:
        error = texts.query_error(query, str(exc), exc.position)
        await message.answer(error + "\n\n" + texts.USAGE_SHARED_ADD)
        return
    except ValueError as exc:
        await message.answer(texts.error_line(str(exc)) + "\n" + texts.USAGE_SHARED_ADD)
        return
    await state.clear()
    await audit.record(user.id, "shared.add", f"shared {added.id}", added.canonical)
    await message.answer(
        texts.shared_added(added.id, added.name, added.canonical, added.priority),
        reply_markup=keyboards.admin_back_keyboard(AdminView.SHARED),
    )


async def cmd_cancel(message: Message, state: FSMContext) -> None:
    await state.clear()
    await message.answer(texts.SHARED_ADD_CANCELLED)


def build_shared_admin_router() -> Router:
    """The admins' section of /admin: one handler per button, behind the admin role filter."""
    router = Router(name="shared-admin")
    router.message.filter(RoleFilter(ADMIN))
    router.callback_query.filter(RoleFilter(ADMIN))
    router.message.register(cmd_cancel, SharedStates.adding, Command("cancel"))
    router.message.register(
        on_shared_query, SharedStates.adding, F.text, ~F.text.regexp(COMMAND_RE)
    )
    on = router.callback_query.register
    on(on_shared_list, AdminViewCB.filter(F.view == AdminView.SHARED))
    on(on_add_shared, AdminPromptCB.filter(F.what == AdminPrompt.SHARED))
    on(on_shared_card, SharedAdminCB.filter(F.action == SharedAdminAction.OPEN))
    on(on_shared_remove, SharedAdminCB.filter(F.action == SharedAdminAction.REMOVE))
    on(on_shared_remove_confirmed, SharedAdminCB.filter(F.action == SharedAdminAction.REMOVE_OK))
    on(on_shared_priority, SharedPriorityCB.filter())
    return router


# --- analysts --------------------------------------------------------------------------------
async def _analyst_list(
    shared: SharedWatchRepository, analyst_id: int, page: int
) -> tuple[str, InlineKeyboardMarkup | None]:
    listed = await shared.all()
    if not listed:
        return texts.NO_SHARED, None
    page, pages = _pages(len(listed), ANALYST_PAGE, page)
    shown = listed[page * ANALYST_PAGE : (page + 1) * ANALYST_PAGE]
    mine = await shared.subscriptions(analyst_id, [s.id for s in shown])
    lines = [texts.shared_header(len(listed), page, pages)]
    lines += [
        texts.shared_line(s.id, s.name, s.canonical, s.priority, mine.get(s.id)) for s in shown
    ]
    markup = keyboards.shared_keyboard([(s.id, s.id in mine) for s in shown], page, pages)
    return "\n".join(lines), markup


async def cmd_shared(message: Message, person: Person, shared: SharedWatchRepository) -> None:
    text, markup = await _analyst_list(shared, person.id, 0)
    await message.answer(text, reply_markup=markup)


async def on_shared_button(
    query: CallbackQuery,
    callback_data: SharedCB,
    person: Person,
    shared: SharedWatchRepository,
    audit: AuditLog,
) -> None:
    action, shared_id = callback_data.action, callback_data.shared_id
    note: str | None = None
    alert = False
    if action is SharedAction.SUBSCRIBE:
        try:
            watch = await shared.subscribe(shared_id, person.id)
        except AlreadySubscribedError as exc:
            await _reply(query, texts.shared_already(shared_id, exc.watch_id))
            note = texts.SHARED_ALREADY
        except SharedWatchGoneError:
            note, alert = texts.SHARED_GONE, True
        except WatchLimitError as exc:
            reason = str(exc)
            note, alert = reason[:1].upper() + reason[1:] + ".", True
        except QueryError:  # stored before a change to the query language
            log.warning("shared: S%d no longer parses", shared_id)
            note, alert = texts.SHARED_BROKEN, True
        else:
            await audit.record(
                person.id, "shared.subscribe", f"shared {shared_id}", f"watch {watch.id}"
            )
            found = await shared.get(shared_id)
            await _reply(
                query, texts.shared_subscribed(shared_id, found.name if found else "", watch.id)
            )
            note = texts.SHARED_SUBSCRIBED
    elif action is SharedAction.UNSUBSCRIBE:
        watch_id = await shared.unsubscribe(shared_id, person.id)
        if watch_id is None:
            note = texts.SHARED_NOT_SUBSCRIBED
        else:
            await audit.record(
                person.id, "shared.unsubscribe", f"shared {shared_id}", f"watch {watch_id}"
            )
            await _reply(query, texts.shared_unsubscribed(shared_id, watch_id))
            note = texts.SHARED_UNSUBSCRIBED
    await _edit(query, *await _analyst_list(shared, person.id, callback_data.page))
    await query.answer(note, show_alert=alert)


async def _reply(query: CallbackQuery, text: str) -> None:
    if isinstance(query.message, Message):
        await query.message.answer(text)


def build_shared_router() -> Router:
    router = Router(name="shared")
    router.message.register(cmd_shared, Command("shared"))
    router.callback_query.register(on_shared_button, SharedCB.filter())
    return router
