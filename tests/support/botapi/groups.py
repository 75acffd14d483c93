"""Groups, supergroups and channels, as Telegram has them for a bot: members and their status,
the bot's own membership (added, removed: a my_chat_member update, with the chat and whoever
did it), getChatMember, sends refused with 403 once the bot is out ("bot was kicked from the
supergroup chat"), a channel where only an administrator bot may post, public @usernames for
chat_id, Telegram's limit of 20 messages a minute to one group, and a basic group upgraded to a
supergroup (two service messages; sends to the old id refused with migrate_to_chat_id),
members joining and leaving: a service message ("new_chat_members", "left_chat_member") to a
bot in the group unless the admins hid them, and a chat_member update only to a bot that is an
administrator there and named chat_member in allowed_updates (Telegram's default leaves it out).

Chat ids are negative, as the Bot API gives them: a basic group -N, a supergroup or channel
-100N. The test plays the people: `World.add_group`, `add_bot_to`, `remove_bot_from`,
`add_member`, `remove_member`, `send_group_text`, `press(..., chat_id=)`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tests.support.botapi.calls import Params, method, required_integer, string
from tests.support.botapi.errors import ApiError, bad

if TYPE_CHECKING:
    from tests.support.botapi.world import TestUser, World

KINDS = frozenset({"group", "supergroup", "channel"})
IN_CHAT = frozenset({"creator", "administrator", "member"})


@dataclass(slots=True)
class Group:
    id: int
    title: str
    kind: str  # group | supergroup | channel
    username: str | None = None
    members: dict[int, str] = field(default_factory=dict)  # user id -> status
    bot_status: str = "left"  # left | member | administrator | kicked
    migrated_to: int | None = None  # a basic group upgraded to this supergroup
    # The admins hid the "joined" / "left" service messages (a supergroup setting; large
    # groups): only an administrator bot that asked for chat_member updates learns of them.
    hide_service: bool = False

    def chat_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "type": self.kind, "title": self.title}
        if self.username:
            data["username"] = self.username
        return data

    @property
    def bot_in(self) -> bool:
        return self.bot_status in IN_CHAT

    def refuse_write(self) -> None:
        """Why Telegram refuses a bot's send to this chat, if it does."""
        kind = "channel" if self.kind == "channel" else f"{self.kind}"
        if self.migrated_to is not None:
            raise ApiError(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                migrate_to_chat_id=self.migrated_to,
            )
        if self.bot_status == "kicked":
            raise ApiError(403, f"Forbidden: bot was kicked from the {kind} chat")
        if not self.bot_in:
            raise ApiError(403, f"Forbidden: bot is not a member of the {kind} chat")
        if self.kind == "channel" and self.bot_status != "administrator":
            raise ApiError(400, "Bad Request: need administrator rights in the channel chat")


def member_json(status: str, user: dict[str, Any], *, channel: bool = False) -> dict[str, Any]:
    """A ChatMember object as the Bot API gives it for `status`."""
    data: dict[str, Any] = {"status": status, "user": user}
    if status == "kicked":
        data["until_date"] = 0
    elif status == "creator":
        data["is_anonymous"] = False
    elif status == "administrator":
        data.update(
            can_be_edited=False,
            is_anonymous=False,
            can_manage_chat=True,
            can_delete_messages=True,
            can_manage_video_chats=False,
            can_restrict_members=False,
            can_promote_members=False,
            can_change_info=False,
            can_invite_users=True,
            can_post_stories=False,
            can_edit_stories=False,
            can_delete_stories=False,
            can_send_welcome_messages=False,
        )
        if channel:
            data.update(can_post_messages=True, can_edit_messages=False)
    return data


def bot_membership_update(
    world: World, group: Group, by: TestUser, old: str, new: str
) -> dict[str, Any]:
    """The my_chat_member update for the bot's status in a group or channel changing."""
    channel = group.kind == "channel"
    return {
        "my_chat_member": {
            "chat": group.chat_json(),
            "from": by.to_json(),
            "date": int(time.time()),
            "old_chat_member": member_json(old, world.bot_user, channel=channel),
            "new_chat_member": member_json(new, world.bot_user, channel=channel),
        }
    }


def member_update(
    world: World, group: Group, user: TestUser, by: TestUser, old: str, new: str
) -> dict[str, Any]:
    """The chat_member update for someone else's status in a group changing."""
    return {
        "chat_member": {
            "chat": group.chat_json(),
            "from": by.to_json(),
            "date": int(time.time()),
            "old_chat_member": member_json(old, user.to_json()),
            "new_chat_member": member_json(new, user.to_json()),
        }
    }


def group_by_ref(world: World, ref: str) -> Group | None:
    """A group named by a chat_id parameter: a (negative) id or a public @username."""
    if ref.startswith("@"):
        name = ref[1:].lower()
        return next((g for g in world.groups.values() if (g.username or "").lower() == name), None)
    try:
        return world.groups.get(int(ref))
    except ValueError:
        return None


@method("getChatMember")
async def get_chat_member(world: World, params: Params) -> Any:
    ref = string(params, "chat_id") or ""
    user_id = required_integer(params, "user_id")
    group = group_by_ref(world, ref)
    if group is None:
        chat = world.chats.get(required_integer(params, "chat_id"))
        if chat is None:
            raise bad("chat not found")
        # A private chat: its user, and the bot.
        if user_id == world.bot_id:
            return member_json("member", world.bot_user)
        if user_id != chat.user.id:
            raise bad("PARTICIPANT_ID_INVALID")
        return member_json("member", chat.user.to_json())
    if not group.bot_in:
        group.refuse_write()
    channel = group.kind == "channel"
    if user_id == world.bot_id:
        return member_json(group.bot_status, world.bot_user, channel=channel)
    user = world.users.get(user_id)
    if user is None:
        raise bad("PARTICIPANT_ID_INVALID")
    return member_json(group.members.get(user_id, "left"), user.to_json(), channel=channel)
