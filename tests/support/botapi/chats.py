"""Chats and the bot's membership in them: getChat, sendChatAction, and the my_chat_member
update Telegram sends when a user blocks or unblocks the bot.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from tests.support.botapi import calls
from tests.support.botapi.calls import Params, method, string
from tests.support.botapi.errors import bad

if TYPE_CHECKING:
    from tests.support.botapi.world import TestUser, World

_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)


def my_chat_member(bot_user: dict[str, Any], user: TestUser, old: str, new: str) -> Any:
    """The my_chat_member update payload for the bot's status in a private chat changing."""
    bot_member_old: dict[str, Any] = {"status": old, "user": bot_user}
    bot_member_new: dict[str, Any] = {"status": new, "user": bot_user}
    for member in (bot_member_old, bot_member_new):
        if member["status"] == "kicked":
            member["until_date"] = 0
    return {
        "my_chat_member": {
            "chat": user.chat_json(),
            "from": user.to_json(),
            "date": int(time.time()),
            "old_chat_member": bot_member_old,
            "new_chat_member": bot_member_new,
        }
    }


@method("sendChatAction")
async def send_chat_action(world: World, params: Params) -> Any:
    chat = calls.chat(world, params)
    action = string(params, "action") or ""
    if action not in _CHAT_ACTIONS:
        raise bad("wrong parameter action in request")
    world.chat_actions.append((chat.user.id, action))
    return True


@method("getChat")
async def get_chat(world: World, params: Params) -> Any:
    chat = calls.chat(world, params, for_write=False)
    if chat.group is not None and not chat.group.bot_in:
        chat.group.refuse_write()  # Telegram answers getChat of a chat that removed the bot so
    return {
        **chat.chat_json(),
        "accent_color_id": 0,
        "max_reaction_count": 11,
        "accepted_gift_types": {
            "unlimited_gifts": False,
            "limited_gifts": False,
            "unique_gifts": False,
            "premium_subscription": False,
            "gifts_from_channels": False,
        },
    }
