"""The bot's own profile: getMe, its commands by scope and language, its name and descriptions."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from tests.support.botapi.calls import Handler, Params, json_value, method, string
from tests.support.botapi.errors import bad
from tests.support.botapi.world import CommandScope

if TYPE_CHECKING:
    from tests.support.botapi.world import World

_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")


@method("getMe")
async def get_me(world: World, params: Params) -> Any:
    return world.bot_user


def _parse_scope(world: World, params: Params) -> CommandScope:
    scope = json_value(params, "scope") or {"type": "default"}
    if not isinstance(scope, dict):
        raise bad("can't parse BotCommandScope JSON object")
    language = string(params, "language_code") or ""
    if language and not re.fullmatch(r"[a-z]{2}", language):
        raise bad("invalid language code specified")
    scope_type = scope.get("type")
    if scope_type in ("default", "all_private_chats", "all_group_chats"):
        return CommandScope(scope_type, None, None, language)
    if scope_type == "all_chat_administrators":
        return CommandScope(scope_type, None, None, language)
    if scope_type in ("chat", "chat_administrators", "chat_member"):
        try:
            chat_id = int(scope["chat_id"])
        except (KeyError, TypeError, ValueError) as error:
            raise bad("chat not found") from error
        if chat_id not in world.chats:
            raise bad("chat not found")
        user_id = None
        if scope_type == "chat_member":
            try:
                user_id = int(scope["user_id"])
            except (KeyError, TypeError, ValueError) as error:
                raise bad("user not found") from error
        return CommandScope(scope_type, chat_id, user_id, language)
    raise bad("unsupported bot command scope type")


@method("setMyCommands")
async def set_my_commands(world: World, params: Params) -> Any:
    commands = json_value(params, "commands")
    if not isinstance(commands, list):
        raise bad("can't parse commands JSON object")
    if len(commands) > 100:
        raise bad("too many commands")
    parsed: list[tuple[str, str]] = []
    for item in commands:
        command = str(item.get("command", "")) if isinstance(item, dict) else ""
        description = str(item.get("description", "")) if isinstance(item, dict) else ""
        if not _COMMAND_RE.match(command):
            raise bad("BOT_COMMAND_INVALID")
        if not 1 <= len(description.strip()) <= 256:
            raise bad("BOT_COMMAND_DESCRIPTION_INVALID")
        parsed.append((command, description))
    scope = _parse_scope(world, params)
    if parsed:
        world.commands[scope] = tuple(parsed)
    else:
        world.commands.pop(scope, None)
    return True


@method("getMyCommands")
async def get_my_commands(world: World, params: Params) -> Any:
    scope = _parse_scope(world, params)
    return [{"command": c, "description": d} for c, d in world.commands.get(scope, ())]


@method("deleteMyCommands")
async def delete_my_commands(world: World, params: Params) -> Any:
    world.commands.pop(_parse_scope(world, params), None)
    return True


def _set_bot_property(name: str) -> Handler:
    async def handler(world: World, params: Params) -> Any:
        world.bot_properties[name] = string(params, name) or ""
        return True

    return handler


for _method, _property in (
    ("setMyDescription", "description"),
    ("setMyShortDescription", "short_description"),
    ("setMyName", "name"),
):
    method(_method)(_set_bot_property(_property))
