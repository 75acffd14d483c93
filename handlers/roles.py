"""Who is asking: a middleware that loads the caller's role, and the filter that checks it.

The role is read on the server side for every message and callback query (never trusted from
callback data); parent routers carry the filter, so no handler can forget it.

In a group or channel (a desk, see handlers/desks.py) the bot answers only commands addressed
to it, from approved analysts: other messages never reach a handler (strangers' commands too:
the request-access flow is for private chats), and an admin counts as an analyst there, so the
admin menu never opens in front of the team. A group's upgrade to a supergroup (a service
message) does reach the desks router, whoever caused it. `person` keeps the real role, for
the few handlers that check it themselves (/route of a shared watch).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.enums import ChatType
from aiogram.filters import BaseFilter
from aiogram.types import CallbackQuery, Chat, Message, TelegramObject, User

from bot.storage.users import UserRepository

log = logging.getLogger(__name__)

ANALYST = frozenset({"analyst", "admin"})
ADMIN = frozenset({"admin"})
OUTSIDERS = frozenset({"stranger", "pending", "denied", "revoked"})


def _chat_of(event: TelegramObject) -> Chat | None:
    if isinstance(event, Message):
        return event.chat
    if isinstance(event, CallbackQuery) and isinstance(event.message, Message):
        return event.message.chat
    return None


async def _for_this_bot(message: Message, bot: Bot | None) -> bool:
    """A command (/x or /x@this_bot) in a group: what the bot may answer there."""
    text = message.text or ""
    if not text.startswith("/"):
        return False
    command = text.split(maxsplit=1)[0]
    if "@" not in command:
        return True
    if bot is None:
        return False
    me = await bot.me()
    return command.partition("@")[2].lower() == (me.username or "").lower()


class RoleMiddleware(BaseMiddleware):
    """Puts `role` (and `person`) into the handler data; updates without a user get 'stranger'."""

    def __init__(self, users: UserRepository) -> None:
        self._users = users

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        user: User | None = data.get("event_from_user")
        if user is None or user.is_bot:
            data["role"] = "stranger"
            data["person"] = None
        else:
            person = await self._users.get(user.id)
            data["person"] = person
            data["role"] = person.role if person is not None else "stranger"
        chat = _chat_of(event)
        # Service messages the desks follow whoever sent them: an upgrade to a supergroup,
        # members leaving or joining.
        migration = isinstance(event, Message) and bool(
            event.migrate_to_chat_id
            or event.migrate_from_chat_id
            or event.left_chat_member
            or event.new_chat_members
        )
        if chat is not None and chat.type != ChatType.PRIVATE and not migration:
            if isinstance(event, Message) and (
                data["role"] not in ANALYST or not await _for_this_bot(event, data.get("bot"))
            ):
                return None  # a desk: not a command for us, or not from an analyst
            if data["role"] == "admin":
                data["role"] = "analyst"  # no admin menu in front of the team
        return await handler(event, data)


class RoleFilter(BaseFilter):
    def __init__(self, roles: frozenset[str]) -> None:
        self.roles = roles

    async def __call__(self, event: TelegramObject, role: str = "stranger") -> bool:
        return role in self.roles
