"""A loopback Telegram Bot API server for the test suite and the benchmarks.

Telegram is unreachable from our machines, so tests start this aiohttp server on 127.0.0.1 and
the real aiogram stack talks to it over HTTP (`TelegramAPIServer.from_base(server.base_url)`).
It answers every method Vigil calls with Telegram's envelopes and error wording: HTML parse mode
checked against the documented tags, length limits in UTF-16 code units, inline keyboard
checks, unknown chats, blocked users, per-chat and global flood limits (429 + retry_after).

The test plays the users: `add_user`, `send_text`, `press`, `block`; and inspects what the bot
did: `sent`, `messages_to`, `current`, `wait_for`, `callback_answers`, `documents`, `photos`,
`commands`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import math
import random
import re
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from tests.support.html_check import (
    EntityParseError,
    MessageEntity,
    ParsedText,
    entity_text,
    parse_html,
    strip_text,
    utf16_len,
)

__all__ = [
    "ApiCall",
    "BotApiServer",
    "CallbackAnswer",
    "CommandScope",
    "Limits",
    "SentMessage",
    "StoredFile",
    "TestUser",
    "WaitTimeoutError",
]

logger = logging.getLogger(__name__)

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64
MAX_CALLBACK_ANSWER = 200
MAX_BUTTONS = 100
MAX_UPLOAD = 50 * 1024 * 1024

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
_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_DEFAULT_UPDATE_TYPES = frozenset(
    {"message", "edited_message", "callback_query", "my_chat_member", "inline_query"}
)
_NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)


class WaitTimeoutError(AssertionError):
    """`wait_for` gave up; the message lists what the server did receive."""


class _ApiError(Exception):
    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after


def _bad(description: str) -> _ApiError:
    return _ApiError(400, f"Bad Request: {description}")


@dataclass(frozen=True, slots=True)
class Limits:
    """Flood limits; Telegram's defaults. `enabled=False` turns the buckets off."""

    per_chat_rate: float = 1.0  # messages per second in one chat
    per_chat_burst: int = 3
    global_rate: float = 30.0  # messages per second over all chats
    global_burst: int = 30
    enabled: bool = True
    flood_fraction: float = 0.0  # refuse this fraction of sends with 429 at random
    flood_retry_after: int = 1
    seed: int = 0


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
class _Bucket:
    rate: float
    capacity: float
    tokens: float
    updated: float

    def wait_time(self, now: float) -> float:
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) / self.rate

    def take(self) -> None:
        self.tokens -= 1.0


@dataclass(slots=True)
class _Chat:
    user: TestUser
    blocked: bool = False
    next_message_id: int = 1
    # message_id -> current state; user messages are kept as None (not editable by the bot)
    messages: dict[int, SentMessage | None] = field(default_factory=dict)

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


def _image_size(data: bytes) -> tuple[int, int] | None:
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                return None
            marker = data[i + 1]
            size = int.from_bytes(data[i + 2 : i + 4], "big")
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                height = int.from_bytes(data[i + 5 : i + 7], "big")
                width = int.from_bytes(data[i + 7 : i + 9], "big")
                return width, height
            i += 2 + size
    return None


def _valid_button_url(url: str) -> bool:
    if not url or any(ch.isspace() for ch in url):
        return False
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:
        return False
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        return bool(hostname)
    return scheme == "tg" and bool(parts.netloc)


def _callback_datas(markup: dict[str, Any] | None) -> set[str]:
    rows = (markup or {}).get("inline_keyboard") or []
    return {b["callback_data"] for row in rows for b in row if "callback_data" in b}


class BotApiServer:
    """The server. `await start()` / `await stop()` or `async with BotApiServer() as server`."""

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
        self._clock = clock
        self._limits = limits or Limits()
        self._rng = random.Random(self._limits.seed)
        self._chat_buckets: dict[int, _Bucket] = {}
        self._global_bucket = self._new_bucket(self._limits.global_rate, self._limits.global_burst)

        self.users: dict[int, TestUser] = {}
        self._chats: dict[int, _Chat] = {}
        self.sent: list[SentMessage] = []
        self.edits: list[SentMessage] = []
        self.deleted: list[tuple[int, int]] = []
        self.chat_actions: list[tuple[int, str]] = []
        self.documents: list[StoredFile] = []
        self.photos: list[StoredFile] = []
        self._files: dict[str, StoredFile] = {}
        self.callback_answers: dict[str, CallbackAnswer] = {}
        self._open_queries: dict[str, tuple[int, int]] = {}  # query id -> (chat, message)
        self.commands: dict[CommandScope, tuple[tuple[str, str], ...]] = {}
        self.bot_properties: dict[str, str] = {}
        self.calls: list[ApiCall] = []
        self.stats: Counter[str] = Counter()
        self.webhook_deleted = False
        self.internal_errors: list[str] = []

        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1001)
        self._allowed_updates: frozenset[str] = _DEFAULT_UPDATE_TYPES
        self.confirmed_update_id = 0
        self._poll_generation = 0
        self._query_ids = itertools.count(1)
        self._file_ids = itertools.count(1)
        self._changed = asyncio.Event()
        self._new_update = asyncio.Event()
        self._closing = False

        self._runner: web.AppRunner | None = None
        self.base_url = ""
        self._methods: dict[str, Callable[[dict[str, Any]], Awaitable[Any]]] = {
            "getme": self._get_me,
            "getupdates": self._get_updates,
            "deletewebhook": self._delete_webhook,
            "setmycommands": self._set_my_commands,
            "getmycommands": self._get_my_commands,
            "deletemycommands": self._delete_my_commands,
            "setmydescription": self._set_bot_property("description"),
            "setmyshortdescription": self._set_bot_property("short_description"),
            "setmyname": self._set_bot_property("name"),
            "sendmessage": self._send_message,
            "sendphoto": self._send_photo,
            "senddocument": self._send_document,
            "editmessagetext": self._edit_message_text,
            "editmessagecaption": self._edit_message_caption,
            "editmessagereplymarkup": self._edit_message_reply_markup,
            "deletemessage": self._delete_message,
            "answercallbackquery": self._answer_callback_query,
            "sendchataction": self._send_chat_action,
            "getchat": self._get_chat,
            "getfile": self._get_file,
        }

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        app = web.Application(client_max_size=MAX_UPLOAD + 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        logger.debug("loopback Bot API server on %s", self.base_url)

    async def stop(self) -> None:
        self._closing = True
        self._new_update.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> BotApiServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ configuration

    @property
    def limits(self) -> Limits:
        return self._limits

    @limits.setter
    def limits(self, limits: Limits) -> None:
        """Replace the limits (buckets start full again; the random refusals are reseeded)."""
        self._limits = limits
        self._rng = random.Random(limits.seed)
        self._chat_buckets.clear()
        self._global_bucket = self._new_bucket(limits.global_rate, limits.global_burst)

    def configure(self, **changes: Any) -> Limits:
        """Change some limits, e.g. `server.configure(flood_fraction=0.3, per_chat_rate=50)`."""
        self.limits = replace(self._limits, **changes)
        return self._limits

    @property
    def too_many_requests(self) -> int:
        """How many 429s the server has returned."""
        return self.stats["429"]

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
        chat = self._chats.get(user_id)
        if chat is None:
            self._chats[user_id] = _Chat(user)
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
        chat = self._chats.get(user_id)
        if chat is None:
            chat = self._chats[self.add_user(user_id).id]
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
        self._push_update({"message": message})
        return message

    async def press(
        self, user_id: int, message_id: int, callback_data: str, *, check_button: bool = True
    ) -> str:
        """The user presses an inline button on a bot message; returns the callback query id.

        With check_button=False any data is sent, as a forged client could (the message must
        still exist in the user's chat).
        """
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
        self._open_queries[query_id] = (chat.user.id, message_id)
        self._push_update(
            {
                "callback_query": {
                    "id": query_id,
                    "from": chat.user.to_json(),
                    "message": self._message_json(current),
                    "chat_instance": str(-(10**12) - chat.user.id),
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
        chat = self._chats.get(chat_id)
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
        return list(self._open_queries)

    @property
    def pending_updates(self) -> int:
        """Updates queued and not yet confirmed by a later getUpdates offset."""
        return len(self._updates)

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
        lines.append(f"pending updates: {len(self._updates)}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ updates

    def _push_update(self, payload: dict[str, Any]) -> None:
        self._updates.append({"update_id": next(self._update_ids), **payload})
        self._wake_pollers()

    def _wake_pollers(self) -> None:
        self._new_update.set()
        self._new_update = asyncio.Event()

    def _push_chat_member(self, user: TestUser, old: str, new: str) -> None:
        bot_member_old: dict[str, Any] = {"status": old, "user": self.bot_user}
        bot_member_new: dict[str, Any] = {"status": new, "user": self.bot_user}
        for member in (bot_member_old, bot_member_new):
            if member["status"] == "kicked":
                member["until_date"] = 0
        self._push_update(
            {
                "my_chat_member": {
                    "chat": user.chat_json(),
                    "from": user.to_json(),
                    "date": int(time.time()),
                    "old_chat_member": bot_member_old,
                    "new_chat_member": bot_member_new,
                }
            }
        )

    def _mark_changed(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # ------------------------------------------------------------------ HTTP

    async def _handle(self, request: web.Request) -> web.Response:
        received_at = time.monotonic()
        method = request.match_info["method"]
        params: dict[str, Any] = {}
        status, description = 200, None
        try:
            if request.match_info["token"] != self.token:
                raise _ApiError(401, "Unauthorized")
            handler = self._methods.get(method.lower())
            if handler is None:
                raise _ApiError(404, "Not Found")
            params = await self._read_params(request)
            params["_received_at"] = received_at
            result = await handler(params)
            body: dict[str, Any] = {"ok": True, "result": result}
        except _ApiError as error:
            status, description = error.status, error.description
            body = {"ok": False, "error_code": error.status, "description": error.description}
            if error.retry_after is not None:
                body["parameters"] = {"retry_after": error.retry_after}
        except Exception as error:  # a bug in this server: answer 500, keep it for the test
            logger.exception("loopback Bot API server failed on %s", method)
            self.internal_errors.append(f"{method}: {error!r}")
            status, description = 500, f"Internal Server Error: {error!r}"
            body = {"ok": False, "error_code": 500, "description": description}
        self.stats[method] += 1
        if status != 200:
            self.stats[str(status)] += 1
        if method.lower() != "getupdates":
            self.calls.append(
                ApiCall(
                    method,
                    {k: v for k, v in params.items() if isinstance(v, str)},
                    status,
                    description,
                    received_at,
                )
            )
        self._mark_changed()
        return web.json_response(body, status=status)

    async def _read_params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.method != "POST" or not request.can_read_body:
            return params
        if request.content_type == "application/json":
            try:
                data = await request.json()
            except ValueError as error:
                raise _bad("can't parse JSON body") from error
            if not isinstance(data, dict):
                raise _bad("JSON body must be an object")
            for key, value in data.items():
                params[key] = value if isinstance(value, str) else json.dumps(value)
            return params
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, web.FileField):
                params[key] = (value.filename, value.content_type, value.file.read())
            else:
                params[key] = str(value)
        return params

    async def _handle_file(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            raise web.HTTPUnauthorized()
        path = request.match_info["path"]
        for stored in self._files.values():
            if stored.file_path == path:
                return web.Response(body=stored.data, content_type="application/octet-stream")
        raise web.HTTPNotFound()

    # ------------------------------------------------------------------ parameter helpers

    @staticmethod
    def _str(params: dict[str, Any], name: str) -> str | None:
        value = params.get(name)
        return value if isinstance(value, str) else None

    def _int(self, params: dict[str, Any], name: str, *, required: bool = False) -> int | None:
        value = self._str(params, name)
        if value is None or value == "":
            if required:
                raise _bad(f"{name} is empty")
            return None
        try:
            return int(value)
        except ValueError as error:
            if name == "chat_id":
                raise _bad("chat not found") from error
            raise _bad(f"invalid {name} specified") from error

    @staticmethod
    def _bool(params: dict[str, Any], name: str) -> bool:
        return str(params.get(name, "")).lower() in ("true", "1")

    def _json(self, params: dict[str, Any], name: str) -> Any:
        value = self._str(params, name)
        if value is None or value == "":
            return None
        try:
            return json.loads(value)
        except ValueError as error:
            raise _bad(f"can't parse {name} JSON object") from error

    def _chat(self, params: dict[str, Any], *, for_write: bool = True) -> _Chat:
        chat_id = self._int(params, "chat_id", required=True)
        assert chat_id is not None
        chat = self._chats.get(chat_id)
        if chat is None:
            raise _bad("chat not found")
        if for_write and chat.blocked:
            raise _ApiError(403, "Forbidden: bot was blocked by the user")
        return chat

    def _chat_of_user(self, user_id: int) -> _Chat:
        chat = self._chats.get(user_id)
        if chat is None:
            raise LookupError(f"unknown user {user_id}; call add_user first")
        return chat

    def _formatted(
        self, params: dict[str, Any], name: str, entities_name: str, limit: int, *, caption: bool
    ) -> tuple[str, ParsedText]:
        raw = self._str(params, name) or ""
        parse_mode = (self._str(params, "parse_mode") or "").lower()
        if parse_mode == "html":
            try:
                parsed = parse_html(raw, strict_ampersand=self.strict_ampersand)
            except EntityParseError as error:
                where = " in message caption" if caption else ""
                raise _bad(f"can't parse entities{where}: {error}") from error
        elif parse_mode == "":
            given = self._json(params, entities_name) or []
            parsed = ParsedText(raw, tuple(MessageEntity.from_json(e) for e in given))
        elif parse_mode in ("markdown", "markdownv2"):
            raise _bad("the loopback Bot API server supports only parse_mode HTML")
        else:
            raise _bad("unsupported parse_mode")
        parsed = strip_text(parsed)
        if not caption and not parsed.text:
            raise _bad("message text is empty")
        if utf16_len(parsed.text) > limit:
            raise _bad("message caption is too long" if caption else "message is too long")
        return raw, parsed

    def _markup(self, params: dict[str, Any]) -> dict[str, Any] | None:
        markup = self._json(params, "reply_markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise _bad("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" not in markup:
            return markup  # reply keyboards, ForceReply, ReplyKeyboardRemove: accepted as is
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise _bad('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array')
        if sum(len(row) for row in rows) > MAX_BUTTONS:
            raise _bad("REPLY_MARKUP_TOO_LONG")
        for row in rows:
            for button in row:
                if not isinstance(button, dict) or not str(button.get("text", "")).strip():
                    raise _bad("BUTTON_TEXT_INVALID")
                if "callback_data" in button:
                    data = button["callback_data"]
                    size = len(data.encode("utf-8")) if isinstance(data, str) else 0
                    if not 1 <= size <= MAX_CALLBACK_DATA:
                        raise _bad("BUTTON_DATA_INVALID")
                elif "url" in button:
                    if not _valid_button_url(str(button["url"])):
                        raise _bad("BUTTON_URL_INVALID")
                elif not any(
                    key in button
                    for key in (
                        "login_url",
                        "switch_inline_query",
                        "switch_inline_query_current_chat",
                        "switch_inline_query_chosen_chat",
                        "copy_text",
                        "web_app",
                        "pay",
                        "callback_game",
                    )
                ):
                    raise _bad('can\'t find field "callback_data"')
        return markup

    def _check_flood(self, chat_id: int) -> None:
        limits = self._limits
        if limits.flood_fraction > 0 and self._rng.random() < limits.flood_fraction:
            retry = max(1, limits.flood_retry_after)
            raise _ApiError(429, f"Too Many Requests: retry after {retry}", retry_after=retry)
        if not limits.enabled:
            return
        now = self._clock()
        bucket = self._chat_buckets.get(chat_id)
        if bucket is None:
            bucket = self._new_bucket(limits.per_chat_rate, limits.per_chat_burst)
            self._chat_buckets[chat_id] = bucket
        wait = max(bucket.wait_time(now), self._global_bucket.wait_time(now))
        if wait > 0:
            retry = max(1, math.ceil(wait))
            raise _ApiError(429, f"Too Many Requests: retry after {retry}", retry_after=retry)
        bucket.take()
        self._global_bucket.take()

    def _new_bucket(self, rate: float, burst: int) -> _Bucket:
        capacity = float(max(1, burst))
        return _Bucket(rate=rate, capacity=capacity, tokens=capacity, updated=self._clock())

    def _message_json(self, message: SentMessage, *, edited: bool = False) -> dict[str, Any]:
        chat = self._chats[message.chat_id]
        data: dict[str, Any] = {
            "message_id": message.message_id,
            "from": self.bot_user,
            "chat": chat.user.chat_json(),
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

    def _record(self, message: SentMessage) -> None:
        chat = self._chats[message.chat_id]
        chat.messages[message.message_id] = message
        if message.method.startswith("send"):
            self.sent.append(message)
        else:
            self.edits.append(message)

    @staticmethod
    def _scalars(params: dict[str, Any]) -> dict[str, str]:
        return {k: v for k, v in params.items() if isinstance(v, str)}

    # ------------------------------------------------------------------ methods

    async def _get_me(self, params: dict[str, Any]) -> Any:
        return self.bot_user

    async def _delete_webhook(self, params: dict[str, Any]) -> Any:
        self.webhook_deleted = True
        if self._bool(params, "drop_pending_updates"):
            self._updates.clear()
        return True

    async def _get_updates(self, params: dict[str, Any]) -> Any:
        offset = self._int(params, "offset") or 0
        limit = self._int(params, "limit") or 100
        limit = min(max(limit, 1), 100)
        timeout = max(self._int(params, "timeout") or 0, 0)
        allowed = self._json(params, "allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = frozenset(allowed) if allowed else _DEFAULT_UPDATE_TYPES
        self._poll_generation += 1
        generation = self._poll_generation
        self._wake_pollers()  # an older long poll is terminated with 409, as Telegram does
        if offset > 0:
            self._confirm(offset)
        elif offset < 0:
            keep = -offset
            self._updates = self._updates[-keep:] if keep else []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            self._drop_disallowed()
            if self._updates:
                return self._updates[:limit]
            remaining = deadline - loop.time()
            if remaining <= 0 or self._closing:
                return []
            event = self._new_update
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                return []
            if self._poll_generation != generation:
                raise _ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; make sure that only "
                    "one bot instance is running",
                )

    def _confirm(self, offset: int) -> None:
        self.confirmed_update_id = max(self.confirmed_update_id, offset - 1)
        self._updates = [u for u in self._updates if u["update_id"] >= offset]

    def _drop_disallowed(self) -> None:
        allowed = self._allowed_updates
        self._updates = [u for u in self._updates if not (set(u) - {"update_id"}) - allowed]

    def _parse_scope(self, params: dict[str, Any]) -> CommandScope:
        scope = self._json(params, "scope") or {"type": "default"}
        if not isinstance(scope, dict):
            raise _bad("can't parse BotCommandScope JSON object")
        language = self._str(params, "language_code") or ""
        if language and not re.fullmatch(r"[a-z]{2}", language):
            raise _bad("invalid language code specified")
        scope_type = scope.get("type")
        if scope_type in ("default", "all_private_chats", "all_group_chats"):
            return CommandScope(scope_type, None, None, language)
        if scope_type == "all_chat_administrators":
            return CommandScope(scope_type, None, None, language)
        if scope_type in ("chat", "chat_administrators", "chat_member"):
            try:
                chat_id = int(scope["chat_id"])
            except (KeyError, TypeError, ValueError) as error:
                raise _bad("chat not found") from error
            if chat_id not in self._chats:
                raise _bad("chat not found")
            user_id = None
            if scope_type == "chat_member":
                try:
                    user_id = int(scope["user_id"])
                except (KeyError, TypeError, ValueError) as error:
                    raise _bad("user not found") from error
            return CommandScope(scope_type, chat_id, user_id, language)
        raise _bad("unsupported bot command scope type")

    async def _set_my_commands(self, params: dict[str, Any]) -> Any:
        commands = self._json(params, "commands")
        if not isinstance(commands, list):
            raise _bad("can't parse commands JSON object")
        if len(commands) > 100:
            raise _bad("too many commands")
        parsed: list[tuple[str, str]] = []
        for item in commands:
            command = str(item.get("command", "")) if isinstance(item, dict) else ""
            description = str(item.get("description", "")) if isinstance(item, dict) else ""
            if not _COMMAND_RE.match(command):
                raise _bad("BOT_COMMAND_INVALID")
            if not 1 <= len(description.strip()) <= 256:
                raise _bad("BOT_COMMAND_DESCRIPTION_INVALID")
            parsed.append((command, description))
        scope = self._parse_scope(params)
        if parsed:
            self.commands[scope] = tuple(parsed)
        else:
            self.commands.pop(scope, None)
        return True

    async def _get_my_commands(self, params: dict[str, Any]) -> Any:
        scope = self._parse_scope(params)
        return [{"command": c, "description": d} for c, d in self.commands.get(scope, ())]

    async def _delete_my_commands(self, params: dict[str, Any]) -> Any:
        self.commands.pop(self._parse_scope(params), None)
        return True

    def _set_bot_property(self, name: str) -> Callable[[dict[str, Any]], Awaitable[Any]]:
        async def handler(params: dict[str, Any]) -> Any:
            self.bot_properties[name] = self._str(params, name) or ""
            return True

        return handler

    async def _send_message(self, params: dict[str, Any]) -> Any:
        chat = self._chat(params)
        raw, parsed = self._formatted(params, "text", "entities", MAX_TEXT, caption=False)
        markup = self._markup(params)
        self._check_flood(chat.user.id)
        message = SentMessage(
            chat_id=chat.user.id,
            message_id=chat.new_message_id(),
            method="sendMessage",
            text=parsed.text,
            html=raw,
            entities=parsed.entities,
            reply_markup=markup,
            received_at=params["_received_at"],
            params=self._scalars(params),
            date=int(time.time()),
        )
        self._record(message)
        return self._message_json(message)

    def _upload(self, params: dict[str, Any], name: str) -> tuple[str, str | None, bytes]:
        value = params.get(name)
        if isinstance(value, str) and value.startswith("attach://"):
            value = params.get(value[len("attach://") :])
        if isinstance(value, tuple):
            filename, content_type, data = value
            if not data:
                raise _bad("file must be non-empty")
            return filename or name, content_type, data
        if isinstance(value, str) and value in self._files:
            stored = self._files[value]
            return stored.filename, stored.mime_type, stored.data
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            raise _bad("failed to get HTTP URL content")
        if not value:
            raise _bad(f"there is no {name} in the request")
        raise _bad("wrong file identifier/HTTP URL specified")

    async def _send_file(self, params: dict[str, Any], kind: str) -> Any:
        chat = self._chat(params)
        raw, parsed = self._formatted(
            params, "caption", "caption_entities", MAX_CAPTION, caption=True
        )
        filename, content_type, data = self._upload(params, kind)
        width = height = 0
        if kind == "photo":
            size = _image_size(data)
            if size is None:
                raise _bad("IMAGE_PROCESS_FAILED")
            width, height = size
        markup = self._markup(params)
        self._check_flood(chat.user.id)
        message_id = chat.new_message_id()
        number = next(self._file_ids)
        stored = StoredFile(
            chat_id=chat.user.id,
            message_id=message_id,
            kind=kind,
            file_id=f"{kind.upper()}-{number}-{secrets.token_hex(6)}",
            file_unique_id=f"U{kind[0]}{number}",
            filename=filename,
            mime_type=content_type,
            data=data,
            width=width,
            height=height,
        )
        self._files[stored.file_id] = stored
        (self.photos if kind == "photo" else self.documents).append(stored)
        message = SentMessage(
            chat_id=chat.user.id,
            message_id=message_id,
            method="sendPhoto" if kind == "photo" else "sendDocument",
            text=parsed.text,
            html=raw,
            entities=parsed.entities,
            reply_markup=markup,
            received_at=params["_received_at"],
            params=self._scalars(params),
            file=stored,
            date=int(time.time()),
        )
        self._record(message)
        return self._message_json(message)

    async def _send_photo(self, params: dict[str, Any]) -> Any:
        return await self._send_file(params, "photo")

    async def _send_document(self, params: dict[str, Any]) -> Any:
        return await self._send_file(params, "document")

    def _target(self, params: dict[str, Any], *, missing: str) -> tuple[_Chat, SentMessage]:
        if self._str(params, "inline_message_id"):
            raise _bad("inline messages are not supported by the loopback server")
        chat = self._chat(params)
        message_id = self._int(params, "message_id", required=True)
        assert message_id is not None
        current = chat.messages.get(message_id)
        if current is None:
            raise _bad(missing)
        return chat, current

    def _edit(
        self,
        params: dict[str, Any],
        current: SentMessage,
        method: str,
        **changes: Any,
    ) -> Any:
        # Telegram compares the resulting content, not the HTML that produced it.
        compared = [name for name in changes if name != "html"]
        if all(getattr(current, name) == changes[name] for name in compared):
            raise _ApiError(400, _NOT_MODIFIED)
        message = replace(
            current,
            method=method,
            received_at=params["_received_at"],
            params=self._scalars(params),
            **changes,
        )
        self._record(message)
        return self._message_json(message, edited=True)

    async def _edit_message_text(self, params: dict[str, Any]) -> Any:
        _, current = self._target(params, missing="message to edit not found")
        if current.file is not None:
            raise _bad("there is no text in the message to edit")
        raw, parsed = self._formatted(params, "text", "entities", MAX_TEXT, caption=False)
        return self._edit(
            params,
            current,
            "editMessageText",
            text=parsed.text,
            html=raw,
            entities=parsed.entities,
            reply_markup=self._markup(params),
        )

    async def _edit_message_caption(self, params: dict[str, Any]) -> Any:
        _, current = self._target(params, missing="message to edit not found")
        if current.file is None:
            raise _bad("there is no caption in the message to edit")
        raw, parsed = self._formatted(
            params, "caption", "caption_entities", MAX_CAPTION, caption=True
        )
        return self._edit(
            params,
            current,
            "editMessageCaption",
            text=parsed.text,
            html=raw,
            entities=parsed.entities,
            reply_markup=self._markup(params),
        )

    async def _edit_message_reply_markup(self, params: dict[str, Any]) -> Any:
        _, current = self._target(params, missing="message to edit not found")
        return self._edit(
            params, current, "editMessageReplyMarkup", reply_markup=self._markup(params)
        )

    async def _delete_message(self, params: dict[str, Any]) -> Any:
        chat, current = self._target_for_delete(params)
        del chat.messages[current]
        self.deleted.append((chat.user.id, current))
        return True

    def _target_for_delete(self, params: dict[str, Any]) -> tuple[_Chat, int]:
        chat = self._chat(params, for_write=False)
        message_id = self._int(params, "message_id", required=True)
        assert message_id is not None
        if message_id not in chat.messages:
            raise _bad("message to delete not found")
        return chat, message_id

    async def _answer_callback_query(self, params: dict[str, Any]) -> Any:
        query_id = self._str(params, "callback_query_id") or ""
        if query_id not in self._open_queries:
            raise _bad("query is too old and response timeout expired or query ID is invalid")
        text = self._str(params, "text")
        if text is not None and len(text) > MAX_CALLBACK_ANSWER:
            raise _bad("MESSAGE_TOO_LONG")
        url = self._str(params, "url")
        del self._open_queries[query_id]
        self.callback_answers[query_id] = CallbackAnswer(
            query_id=query_id,
            text=text,
            show_alert=self._bool(params, "show_alert"),
            url=url,
            answered_at=params["_received_at"],
        )
        return True

    async def _send_chat_action(self, params: dict[str, Any]) -> Any:
        chat = self._chat(params)
        action = self._str(params, "action") or ""
        if action not in _CHAT_ACTIONS:
            raise _bad("wrong parameter action in request")
        self.chat_actions.append((chat.user.id, action))
        return True

    async def _get_chat(self, params: dict[str, Any]) -> Any:
        chat = self._chat(params, for_write=False)
        return {
            **chat.user.chat_json(),
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

    async def _get_file(self, params: dict[str, Any]) -> Any:
        file_id = self._str(params, "file_id") or ""
        stored = self._files.get(file_id)
        if stored is None:
            raise _bad("invalid file_id")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
            "file_path": stored.file_path,
        }


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
