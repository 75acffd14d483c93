"""A request as a method handler sees it: the method table, parameter parsing, the target chat.

Parameters arrive as strings (query, form or JSON body flattened), uploads as (filename,
content type, bytes) tuples; `_received_at` is added by the server. A handler is registered
with `@method("sendMessage")` and answers with the `result` or raises `ApiError`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from tests.support.botapi.errors import bad
from tests.support.botapi.flood import refuse_blocked

if TYPE_CHECKING:
    from tests.support.botapi.world import Chat, World

Params = dict[str, Any]
Handler = Callable[["World", Params], Awaitable[Any]]

METHODS: dict[str, Handler] = {}  # lower-case method name -> handler


def method(name: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        METHODS[name.lower()] = handler
        return handler

    return register


def string(params: Params, name: str) -> str | None:
    value = params.get(name)
    return value if isinstance(value, str) else None


def integer(params: Params, name: str, *, required: bool = False) -> int | None:
    value = string(params, name)
    if value is None or value == "":
        if required:
            raise bad(f"{name} is empty")
        return None
    try:
        return int(value)
    except ValueError as error:
        if name == "chat_id":
            raise bad("chat not found") from error
        raise bad(f"invalid {name} specified") from error


def required_integer(params: Params, name: str) -> int:
    value = integer(params, name, required=True)
    assert value is not None
    return value


def boolean(params: Params, name: str) -> bool:
    return str(params.get(name, "")).lower() in ("true", "1")


def json_value(params: Params, name: str) -> Any:
    value = string(params, name)
    if value is None or value == "":
        return None
    try:
        return json.loads(value)
    except ValueError as error:
        raise bad(f"can't parse {name} JSON object") from error


def scalars(params: Params) -> dict[str, str]:
    return {k: v for k, v in params.items() if isinstance(v, str)}


def chat(world: World, params: Params, *, for_write: bool = True) -> Chat:
    """The chat named by `chat_id` (400 if unknown; 403 to write to a user who blocked us or
    a group the bot is not in). A public group or channel may be named by its @username."""
    ref = string(params, "chat_id") or ""
    if ref.startswith("@"):
        group = next(
            (g for g in world.groups.values() if f"@{g.username}".lower() == ref.lower()), None
        )
        if group is None:
            raise bad("chat not found")
        chat_id = group.id
    else:
        chat_id = required_integer(params, "chat_id")
    found = world.chats.get(chat_id)
    if found is None:
        raise bad("chat not found")
    if for_write:
        refuse_blocked(found)
    return found
