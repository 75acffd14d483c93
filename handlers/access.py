"""Strangers: one request-access reply, the admins asked; the admins' Approve / Deny buttons;
and what is left over (callbacks nobody may use are answered and logged)."""

from __future__ import annotations

import logging
from html import escape

from aiogram import Bot, F, Router
from aiogram.enums import ChatMemberStatus
from aiogram.types import CallbackQuery, ChatMemberUpdated, Message

from bot import texts
from bot.alerts import Notice
from bot.callback_data import AccessAction, AccessCB
from bot.delivery.worker import tell_admins
from bot.keyboards import access_request_keyboard
from bot.storage.audit import AuditLog
from bot.storage.notices import NoticeBox
from bot.storage.users import UserRepository
from bot.vocabulary import Role
from handlers.commands_scope import set_commands_for
from handlers.roles import ADMIN, ANALYST, OUTSIDERS, RoleFilter

log = logging.getLogger(__name__)


async def on_stranger_message(message: Message, users: UserRepository, notices: NoticeBox) -> None:
    user = message.from_user
    if user is None or message.chat.type != "private":
        return
    if not await users.request_access(user.id, user.full_name, user.username):
        return  # pending, denied or revoked: they already had their one reply
    log.info("access: request from %s", user.id)
    # Through the durable, rate-limited notices, not sent from here, and queued before the
    # reply: a request made while Telegram answers 429 still reaches every admin, with its
    # buttons, even if the reply to the stranger is refused.
    text = texts.access_request(user.id, user.full_name, user.username)
    markup = access_request_keyboard(user.id).model_dump_json(exclude_none=True)
    await notices.send(
        *(Notice(a, text, html=True, markup=markup) for a in await users.admin_ids())
    )
    await message.answer(texts.REQUEST_SENT)


async def on_unauthorised_callback(query: CallbackQuery, role: str) -> None:
    log.warning(
        "refused callback %r from %s (role %s)",
        (query.data or "")[:64],
        query.from_user.id,
        role,
    )
    await query.answer(texts.NOT_ALLOWED, show_alert=True)


async def on_access_decision(
    query: CallbackQuery,
    callback_data: AccessCB,
    bot: Bot,
    users: UserRepository,
    audit: AuditLog,
    notices: NoticeBox,
) -> None:
    target = callback_data.user_id
    person = await users.get(target)
    name = person.label if person else str(target)
    approve = callback_data.action is AccessAction.APPROVE
    done = await (users.approve(target) if approve else users.deny(target))
    if not done:
        await query.answer("Already decided.", show_alert=False)
        return
    decision = "approved" if approve else "denied"
    await audit.record(query.from_user.id, f"access.{decision}", str(target), name)
    if isinstance(query.message, Message):
        await query.message.edit_text(
            texts.access_decided(target, name, decision, query.from_user.full_name)
        )
    if approve:
        await set_commands_for(bot, target, Role.ANALYST)
    await tell_user(notices, target, texts.ACCESS_APPROVED if approve else texts.ACCESS_DENIED)
    await query.answer(decision.capitalize())


async def tell_user(notices: NoticeBox, user_id: int, text: str) -> None:
    """Tell a person one plain line, through the durable, rate-limited notices."""
    await notices.send(Notice(user_id, escape(text), html=True))


async def on_bot_blocked(
    event: ChatMemberUpdated, notices: NoticeBox, users: UserRepository
) -> None:
    """Telegram tells us the analyst blocked the bot: stop sending now (alerts are held)."""
    kicked = event.new_chat_member.status == ChatMemberStatus.KICKED
    if kicked and await users.set_active(event.from_user.id, False):
        log.info("access: %s blocked the bot", event.from_user.id)
        person = await users.get(event.from_user.id)
        label = person.label if person else str(event.from_user.id)
        await tell_admins(notices, users, texts.analyst_blocked(event.from_user.id, label))


async def on_bot_unblocked(event: ChatMemberUpdated, users: UserRepository) -> None:
    if event.new_chat_member.status == ChatMemberStatus.MEMBER:
        await users.reactivate(event.from_user.id)


def build_outsiders_router() -> Router:
    """Messages and callbacks from anyone who is not an analyst."""
    router = Router(name="outsiders")
    router.message.filter(RoleFilter(OUTSIDERS))
    router.callback_query.filter(RoleFilter(OUTSIDERS))
    router.message.register(on_stranger_message)
    router.callback_query.register(on_unauthorised_callback)
    return router


def build_access_admin_router() -> Router:
    router = Router(name="access-admin")
    router.callback_query.filter(RoleFilter(ADMIN))
    router.callback_query.register(on_access_decision, AccessCB.filter())
    return router


def build_membership_router() -> Router:
    router = Router(name="membership")
    router.my_chat_member.filter(RoleFilter(ANALYST))
    router.my_chat_member.register(on_bot_blocked, F.new_chat_member.status == "kicked")
    router.my_chat_member.register(on_bot_unblocked, F.new_chat_member.status == "member")
    return router


def build_leftovers_router() -> Router:
    """Last: callbacks no handler took (an analyst pressing an admin button, stale data)."""
    router = Router(name="leftovers")
    router.callback_query.register(on_unauthorised_callback)
    return router
