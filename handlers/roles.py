"""Who is asking: a middleware that loads the caller's role, and the filter that checks it.

The role is read on the server side for every message and callback query (never trusted from
callback data); parent routers carry the filter, so no handler can forget it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.filters import BaseFilter
from aiogram.types import TelegramObject, User

from bot.storage.users import UserRepository

log = logging.getLogger(__name__)

ANALYST = frozenset({"analyst", "admin"})
ADMIN = frozenset({"admin"})
OUTSIDERS = frozenset({"stranger", "pending", "denied", "revoked"})


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
        return await handler(event, data)


class RoleFilter(BaseFilter):
    def __init__(self, roles: frozenset[str]) -> None:
        self.roles = roles

    async def __call__(self, event: TelegramObject, role: str = "stranger") -> bool:
        return role in self.roles
