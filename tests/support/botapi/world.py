"""The world the bot lives in: its users and their chats, the messages in them, and the test's
side of it: users who write, press buttons and block the bot; what the bot sent, as the test
inspects it and waits for it.

`World` holds the state every method handler reads and changes; `server.BotApiServer` is a
`World` behind HTTP. The records the test inspects (`SentMessage`, `StoredFile`,
`CallbackAnswer`, `ApiCall`, `CommandScope`) are frozen dataclasses.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.support.botapi.chats import my_chat_member
from tests.support.botapi.errors import WaitTimeoutError
from tests.support.botapi.flood import FloodControl, Limits
from tests.support.botapi.groups import KINDS, Group, bot_membership_update, member_update
from tests.support.botapi.updates import UpdateQueue
from tests.support.html_check import MessageEntity, entity_text, utf16_len

# Who an anonymous group administrator's messages come from, as the Bot API gives it.
ANONYMOUS_ADMIN: dict[str, Any] = {
    "id": 1087968824,
    "is_bot": True,
    "first_name": "Group",
    "username": "GroupAnonymousBot",
}


@dataclass(frozen=True, slots=True)
class TestUser:
    __test__ = False  # not a pytest test class

    id: int
    first_name: str
    username: str | None = None
    language_code: str | None = "en"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.username:
            data["username"] = self.username
        if self.language_code:
            data["language_code"] = self.language_code
        return data

    def chat_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "type": "private", "first_name": self.first_name}
        if self.username:
            data["username"] = self.username
        return data


@dataclass(frozen=True, slots=True)
class StoredFile:
    chat_id: int
    message_id: int
    kind: str  # document | photo
    file_id: str
    file_unique_id: str
    filename: str
    mime_type: str | None
    data: bytes
    width: int = 0
    height: int = 0

    @property
    def file_path(self) -> str:
        return f"{self.kind}s/{self.file_unique_id}_{self.filename}"


@dataclass(frozen=True, slots=True)
class SentMessage:
    """One state of a bot message: as sent, or after an edit (see `method`)."""

    chat_id: int
    message_id: int
    method: str  # sendMessage | sendPhoto | sendDocument | editMessageText | ...
    text: str  # plain text (or caption) after entity parsing
    html: str  # the text (or caption) exactly as the bot sent it
    entities: tuple[MessageEntity, ...]
    reply_markup: dict[str, Any] | None
    received_at: float  # time.monotonic() when the request arrived
    params: dict[str, str] = field(default_factory=dict)  # raw scalar request parameters
    file: StoredFile | None = None
    date: int = 0

    def spans(self, entity_type: str) -> list[str]:
        """Substrings covered by entities of one type, e.g. spans("bold")."""
        return [entity_text(self.text, e) for e in self.entities if e.type == entity_type]

    def buttons(self) -> list[tuple[str, str]]:
        """(text, callback_data or url) for every inline button, row by row."""
        return _buttons(self.reply_markup)

    def button_rows(self) -> list[list[tuple[str, str]]]:
        rows = (self.reply_markup or {}).get("inline_keyboard") or []
        return [[(b.get("text", ""), _button_target(b)) for b in row] for row in rows]


@dataclass(frozen=True, slots=True)
class CallbackAnswer:
    query_id: str
    text: str | None
    show_alert: bool
    url: str | None
    answered_at: float


@dataclass(frozen=True, slots=True)
class CommandScope:
    type: str = "default"
    chat_id: int | None = None
    user_id: int | None = None
    language_code: str = ""


@dataclass(frozen=True, slots=True)
class ApiCall:
    method: str
    params: dict[str, str]
    status: int
    description: str | None
    received_at: float


@dataclass(slots=True)
class Chat:
    user: TestUser
    blocked: bool = False
    next_message_id: int = 1
    # message_id -> current state; user messages are kept as None (not editable by the bot)
    messages: dict[int, SentMessage | None] = field(default_factory=dict)
    group: Group | None = None  # a group, supergroup or channel (`user` then stands for it)

    def chat_json(self) -> dict[str, Any]:
        return self.group.chat_json() if self.group is not None else self.user.chat_json()

    def new_message_id(self) -> int:
        message_id = self.next_message_id
        self.next_message_id += 1
        return message_id


def _button_target(button: dict[str, Any]) -> str:
    for key in ("callback_data", "url", "switch_inline_query", "copy_text"):
        value = button.get(key)
        if isinstance(value, str):
            return value
        if isinstance(value, dict):
            return json.dumps(value)
    return ""


def _buttons(markup: dict[str, Any] | None) -> list[tuple[str, str]]:
    rows = (markup or {}).get("inline_keyboard") or []
    return [(b.get("text", ""), _button_target(b)) for row in rows for b in row]


def _callback_datas(markup: dict[str, Any] | None) -> set[str]:
    rows = (markup or {}).get("inline_keyboard") or []
    return {b["callback_data"] for row in rows for b in row if "callback_data" in b}


def _command_entities(text: str) -> list[dict[str, Any]]:
    """A bot_command entity for each /command at a word start, as Telegram adds them."""
    entities: list[dict[str, Any]] = []
    for match in re.finditer(r"(?:^|(?<=\s))/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?", text):
        entities.append(
            {
                "type": "bot_command",
                "offset": utf16_len(text[: match.start()]),
                "length": utf16_len(match.group()),
            }
        )
    return entities


class World:
    """Users, chats, messages, files, commands and the update queue, with the test's handles."""

    def __init__(
        self,
        token: str = "123456:TEST-TOKEN",
        *,
        limits: Limits | None = None,
        strict_ampersand: bool = True,
        clock: Callable[[], float] = time.monotonic,
        bot_first_name: str = "Vigil Test",
        bot_username: str = "vigil_test_bot",
    ) -> None:
        self.token = token
        self.bot_id = int(token.split(":", 1)[0])
        self.bot_user: dict[str, Any] = {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
            "can_join_groups": False,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        self.strict_ampersand = strict_ampersand
        self.clock = clock
        self.flood = FloodControl(limits or Limits(), clock)

        self.users: dict[int, TestUser] = {}
        self.chats: dict[int, Chat] = {}
        self.groups: dict[int, Group] = {}
        self.sent: list[SentMessage] = []
        self.edits: list[SentMessage] = []
        self.deleted: list[tuple[int, int]] = []
        self.chat_actions: list[tuple[int, str]] = []
        self.documents: list[StoredFile] = []
        self.photos: list[StoredFile] = []
        self.files: dict[str, StoredFile] = {}
        self.callback_answers: dict[str, CallbackAnswer] = {}
        self.open_queries: dict[str, tuple[int, int]] = {}  # query id -> (chat, message)
        self.commands: dict[CommandScope, tuple[tuple[str, str], ...]] = {}
        self.bot_properties: dict[str, str] = {}
        self.calls: list[ApiCall] = []
        self.stats: Counter[str] = Counter()
        self.webhook_deleted = False
        self.internal_errors: list[str] = []

        self.queue = UpdateQueue()
        self._query_ids = itertools.count(1)
        self.file_ids = itertools.count(1)
        self._changed = asyncio.Event()

    @property
    def confirmed_update_id(self) -> int:
        """The highest update id a getUpdates offset has confirmed."""
        return self.queue.confirmed_update_id

    # ------------------------------------------------------------------ the test as the user

    def add_user(
        self,
        user_id: int,
        first_name: str = "Test User",
        username: str | None = None,
        language_code: str | None = "en",
    ) -> TestUser:
        """Make a user known (as if they had started the bot); idempotent, updates details."""
        user = TestUser(user_id, first_name, username, language_code)
        self.users[user_id] = user
        chat = self.chats.get(user_id)
        if chat is None:
            self.chats[user_id] = Chat(user)
        else:
            chat.user = user
        return user

    def block(self, user_id: int, *, notify: bool = True) -> None:
        """The user blocks the bot: sends get 403; the bot gets a my_chat_member update."""
        chat = self._chat_of_user(user_id)
        if not chat.blocked and notify:
            self._push_chat_member(chat.user, "member", "kicked")
        chat.blocked = True

    def unblock(self, user_id: int, *, notify: bool = True) -> None:
        chat = self._chat_of_user(user_id)
        if chat.blocked and notify:
            self._push_chat_member(chat.user, "kicked", "member")
        chat.blocked = False

    async def send_text(self, user_id: int, text: str) -> dict[str, Any]:
        """The user writes `text` to the bot; returns the Message JSON put in the update.

        An unknown user becomes known; a user who had blocked the bot unblocks it first (a
        Telegram client does that when they write), so the bot sees my_chat_member, then text.
        """
        chat = self.chats.get(user_id)
        if chat is None:
            chat = self.chats[self.add_user(user_id).id]
        if chat.blocked:
            self.unblock(user_id)
        message_id = chat.new_message_id()
        chat.messages[message_id] = None
        message: dict[str, Any] = {
            "message_id": message_id,
            "from": chat.user.to_json(),
            "chat": chat.user.chat_json(),
            "date": int(time.time()),
            "text": text,
        }
        entities = _command_entities(text)
        if entities:
            message["entities"] = entities
        self.queue.push({"message": message})
        return message

    async def press(
        self,
        user_id: int,
        message_id: int,
        callback_data: str,
        *,
        check_button: bool = True,
        chat_id: int | None = None,
    ) -> str:
        """The user presses an inline button on a bot message; returns the callback query id.

        With check_button=False any data is sent, as a forged client could (the message must
        still exist in the user's chat). `chat_id` names a group the message is in (the user
        must be in it).
        """
        if chat_id is not None:
            return await self._press_in_group(user_id, chat_id, message_id, callback_data)
        chat = self._chat_of_user(user_id)
        current = chat.messages.get(message_id)
        if current is None:
            raise LookupError(f"no bot message {message_id} in chat {user_id}")
        if check_button and callback_data not in _callback_datas(current.reply_markup):
            raise LookupError(
                f"message {message_id} has no button with callback_data {callback_data!r}; "
                f"buttons: {current.buttons()}"
            )
        query_id = f"{self.bot_id}{next(self._query_ids):08d}"
        self.open_queries[query_id] = (chat.user.id, message_id)
        self.queue.push(
            {
                "callback_query": {
                    "id": query_id,
                    "from": chat.user.to_json(),
                    "message": self.message_json(current),
                    "chat_instance": str(-(10**12) - chat.user.id),
                    "data": callback_data,
                }
            }
        )
        return query_id

    # ------------------------------------------------------------------ groups and channels

    def add_group(
        self,
        chat_id: int,
        title: str,
        *,
        kind: str = "supergroup",
        username: str | None = None,
        members: dict[int, str] | None = None,
    ) -> Group:
        """A group, supergroup or channel (negative id) with members (user id -> creator,
        administrator, member); the bot is not in it until `add_bot_to`."""
        if chat_id >= 0 or kind not in KINDS:
            raise ValueError("groups and channels have negative ids and a known kind")
        group = Group(chat_id, title, kind, username, dict(members or {}))
        self.groups[chat_id] = group
        self.chats[chat_id] = Chat(TestUser(chat_id, title), group=group)
        return group

    def add_bot_to(self, chat_id: int, by: int, *, status: str = "") -> None:
        """A member (an admin, in a channel) adds the bot: my_chat_member left -> member (or
        administrator: in a channel a bot can only be one)."""
        group = self.groups[chat_id]
        new = status or ("administrator" if group.kind == "channel" else "member")
        old = group.bot_status
        group.bot_status = new
        self.queue.push(bot_membership_update(self, group, self.users[by], old, new))

    def remove_bot_from(self, chat_id: int, by: int, *, kicked: bool = True) -> None:
        """An admin removes the bot (kicked), or it is made to leave: my_chat_member, and sends
        to the chat are refused with 403 from now on."""
        group = self.groups[chat_id]
        old = group.bot_status
        group.bot_status = "kicked" if kicked else "left"
        self.queue.push(bot_membership_update(self, group, self.users[by], old, group.bot_status))

    def add_member(self, chat_id: int, user_id: int, *, by: int | None = None) -> None:
        """Someone joins the group (or `by` adds them): see `_membership_changed`."""
        group = self.groups[chat_id]
        old = group.members.get(user_id, "left")
        group.members[user_id] = "member"
        self._membership_changed(group, user_id, by or user_id, old, "member")

    def remove_member(
        self, chat_id: int, user_id: int, *, by: int | None = None, kicked: bool = False
    ) -> None:
        """Someone leaves the group, or an admin `by` removes (`kicked`: bans) them."""
        group = self.groups[chat_id]
        old = group.members.get(user_id, "left")
        new = "kicked" if kicked else "left"
        group.members.pop(user_id, None)
        self._membership_changed(group, user_id, by or user_id, old, new)

    def _membership_changed(self, group: Group, user_id: int, by: int, old: str, new: str) -> None:
        """What the bot learns of a member's change, as Telegram tells it: the service message
        if it is in the group (not a channel) and they are not hidden; a chat_member update if
        it is an administrator there and the last getUpdates asked for chat_member."""
        user, actor = self.users[user_id], self.users[by]
        if group.bot_in and group.kind != "channel" and not group.hide_service:
            chat = self.chats[group.id]
            message_id = chat.new_message_id()
            chat.messages[message_id] = None
            message: dict[str, Any] = {
                "message_id": message_id,
                "from": actor.to_json(),
                "chat": group.chat_json(),
                "date": int(time.time()),
            }
            if new in ("left", "kicked"):
                message["left_chat_member"] = user.to_json()
            else:
                message["new_chat_members"] = [user.to_json()]
            self.queue.push({"message": message})
        if group.bot_status == "administrator" and "chat_member" in self.queue.allowed:
            self.queue.push(member_update(self, group, user, actor, old, new))

    def migrate_group(self, chat_id: int, new_id: int, by: int) -> Group:
        """A basic group is upgraded to a supergroup (a new id, same members and bot): the bot
        gets a service message in each (migrate_to_chat_id in the old one, migrate_from_chat_id
        in the new one); sends to the old id are refused with 400 and migrate_to_chat_id."""
        old = self.groups[chat_id]
        if old.kind != "group":
            raise ValueError("only a basic group is upgraded")
        new = self.add_group(new_id, old.title, kind="supergroup", members=old.members)
        new.bot_status = old.bot_status
        old.migrated_to = new_id
        if new.bot_in:
            for group, field_name, value in (
                (old, "migrate_to_chat_id", new_id),
                (new, "migrate_from_chat_id", chat_id),
            ):
                chat = self.chats[group.id]
                message_id = chat.new_message_id()
                chat.messages[message_id] = None
                self.queue.push(
                    {
                        "message": {
                            "message_id": message_id,
                            "from": self.users[by].to_json(),
                            "chat": group.chat_json(),
                            "date": int(time.time()),
                            field_name: value,
                        }
                    }
                )
        return new

    async def send_group_text(
        self, chat_id: int, user_id: int, text: str, *, anonymous: bool = False
    ) -> dict[str, Any]:
        """A member writes in a group; the bot gets every message while it is in the group
        (as with privacy mode off, or the bot an admin: the bot must ignore what is not
        for it). An `anonymous` administrator writes as the group: Telegram puts its
        GroupAnonymousBot in `from` and the group in `sender_chat`, never who it was."""
        group = self.groups[chat_id]
        if group.kind == "channel":
            raise ValueError("people do not write in channels; admins post as the channel")
        if group.members.get(user_id) not in ("creator", "administrator", "member"):
            raise LookupError(f"user {user_id} is not a member of {chat_id}")
        if anonymous and group.members[user_id] not in ("creator", "administrator"):
            raise ValueError("only administrators can stay anonymous")
        chat = self.chats[chat_id]
        message_id = chat.new_message_id()
        chat.messages[message_id] = None
        message: dict[str, Any] = {
            "message_id": message_id,
            "from": ANONYMOUS_ADMIN if anonymous else self.users[user_id].to_json(),
            "chat": group.chat_json(),
            "date": int(time.time()),
            "text": text,
        }
        if anonymous:
            message["sender_chat"] = group.chat_json()
        entities = _command_entities(text)
        if entities:
            message["entities"] = entities
        if group.bot_in:
            self.queue.push({"message": message})
        return message

    async def _press_in_group(
        self, user_id: int, chat_id: int, message_id: int, callback_data: str
    ) -> str:
        group = self.groups[chat_id]
        if group.kind != "channel" and group.members.get(user_id) is None:
            raise LookupError(f"user {user_id} is not in {chat_id}")
        current = self.chats[chat_id].messages.get(message_id)
        if current is None:
            raise LookupError(f"no bot message {message_id} in chat {chat_id}")
        if callback_data not in _callback_datas(current.reply_markup):
            raise LookupError(f"message {message_id} has no button {callback_data!r}")
        query_id = f"{self.bot_id}{next(self._query_ids):08d}"
        self.open_queries[query_id] = (chat_id, message_id)
        self.queue.push(
            {
                "callback_query": {
                    "id": query_id,
                    "from": self.users[user_id].to_json(),
                    "message": self.message_json(current),
                    "chat_instance": str(-(10**12) + chat_id),
                    "data": callback_data,
                }
            }
        )
        return query_id

    async def press_button(self, user_id: int, message_id: int, text: str) -> str:
        """Press the callback button whose text contains `text`."""
        current = self.current(user_id, message_id)
        if current is None:
            raise LookupError(f"no bot message {message_id} in chat {user_id}")
        for button_text, target in current.buttons():
            if text in button_text:
                return await self.press(user_id, message_id, target)
        raise LookupError(f"no button containing {text!r}; buttons: {current.buttons()}")

    # ------------------------------------------------------------------ inspection

    def messages_to(self, chat_id: int) -> list[SentMessage]:
        """Messages the bot sent to a chat, in order, as sent (see `current` for edits)."""
        return [m for m in self.sent if m.chat_id == chat_id]

    def current(self, chat_id: int, message_id: int) -> SentMessage | None:
        """The latest state of a bot message (after edits); None if deleted or unknown."""
        chat = self.chats.get(chat_id)
        return None if chat is None else chat.messages.get(message_id)

    def buttons(self, message: SentMessage) -> list[tuple[str, str]]:
        return message.buttons()

    def commands_for(
        self, scope_type: str = "default", chat_id: int | None = None, language_code: str = ""
    ) -> list[str]:
        """Command names registered for one scope, in order."""
        scope = CommandScope(scope_type, chat_id, None, language_code)
        return [command for command, _ in self.commands.get(scope, ())]

    def max_sends_in_window(self, chat_id: int | None = None, window: float = 1.0) -> int:
        """Most sends received within any `window` seconds (to one chat, or overall)."""
        times = sorted(m.received_at for m in self.sent if chat_id in (None, m.chat_id))
        best = start = 0
        for end, at in enumerate(times):
            while at - times[start] >= window:
                start += 1
            best = max(best, end - start + 1)
        return best

    def unanswered_callbacks(self) -> list[str]:
        return list(self.open_queries)

    @property
    def pending_updates(self) -> int:
        """Updates queued and not yet confirmed by a later getUpdates offset."""
        return len(self.queue.updates)

    async def wait_for(
        self,
        predicate: Callable[[SentMessage], bool],
        timeout: float = 5.0,  # noqa: ASYNC109 -- a deadline for the test, as the brief names it
        *,
        after: int = 0,
        edits: bool = False,
    ) -> SentMessage:
        """The first sent message (from index `after` of `sent`) matching `predicate`.

        With edits=True, edit records (from the start of `edits`) are considered too.
        Raises WaitTimeoutError listing the recent messages and errors.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for message in self.sent[after:]:
                if predicate(message):
                    return message
            if edits:
                for message in self.edits:
                    if predicate(message):
                        return message
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise WaitTimeoutError(self._dump(f"no matching message within {timeout}s"))
            event = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    async def wait_until(
        self,
        condition: Callable[[], bool],
        timeout: float = 5.0,  # noqa: ASYNC109 -- a deadline for the test
    ) -> None:
        """Wait until `condition()` holds; re-checked on every request the server handles."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not condition():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise WaitTimeoutError(self._dump(f"condition not met within {timeout}s"))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.05))

    async def wait_callback_answer(
        self,
        query_id: str,
        timeout: float = 5.0,  # noqa: ASYNC109 -- a deadline for the test
    ) -> CallbackAnswer:
        await self.wait_until(lambda: query_id in self.callback_answers, timeout)
        return self.callback_answers[query_id]

    def _dump(self, headline: str) -> str:
        lines = [headline, f"last messages ({len(self.sent)} sent, {len(self.edits)} edits):"]
        for m in (self.sent + self.edits)[-12:]:
            lines.append(
                f"  {m.method} chat={m.chat_id} id={m.message_id}: {m.text[:160]!r} "
                f"buttons={m.buttons()}"
            )
        errors = [c for c in self.calls if c.status != 200][-8:]
        if errors:
            lines.append("last errors:")
            lines.extend(f"  {c.method} {c.status} {c.description}" for c in errors)
        lines.append(f"pending updates: {len(self.queue.updates)}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ shared with the handlers

    def _push_chat_member(self, user: TestUser, old: str, new: str) -> None:
        self.queue.push(my_chat_member(self.bot_user, user, old, new))

    def _chat_of_user(self, user_id: int) -> Chat:
        chat = self.chats.get(user_id)
        if chat is None:
            raise LookupError(f"unknown user {user_id}; call add_user first")
        return chat

    def mark_changed(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def message_json(self, message: SentMessage, *, edited: bool = False) -> dict[str, Any]:
        chat = self.chats[message.chat_id]
        data: dict[str, Any] = {
            "message_id": message.message_id,
            "from": self.bot_user,
            "chat": chat.chat_json(),
            "date": message.date,
        }
        if edited:
            data["edit_date"] = int(time.time())
        entities = [e.to_json() for e in message.entities]
        stored = message.file
        if stored is None:
            data["text"] = message.text
            if entities:
                data["entities"] = entities
        else:
            if stored.kind == "photo":
                data["photo"] = [
                    {
                        "file_id": stored.file_id,
                        "file_unique_id": stored.file_unique_id,
                        "width": stored.width,
                        "height": stored.height,
                        "file_size": len(stored.data),
                    }
                ]
            else:
                document: dict[str, Any] = {
                    "file_id": stored.file_id,
                    "file_unique_id": stored.file_unique_id,
                    "file_name": stored.filename,
                    "file_size": len(stored.data),
                }
                if stored.mime_type:
                    document["mime_type"] = stored.mime_type
                data["document"] = document
            if message.text:
                data["caption"] = message.text
                if entities:
                    data["caption_entities"] = entities
        if message.reply_markup and "inline_keyboard" in message.reply_markup:
            data["reply_markup"] = message.reply_markup
        return data

    def record(self, message: SentMessage) -> None:
        chat = self.chats[message.chat_id]
        chat.messages[message.message_id] = message
        if message.method.startswith("send"):
            self.sent.append(message)
        else:
            self.edits.append(message)
