"""A loopback Telegram Bot API server for the test suite and the benchmarks.

Telegram is unreachable from our machines, so tests start this aiohttp server on 127.0.0.1 and
the real aiogram stack talks to it over HTTP (`TelegramAPIServer.from_base(server.base_url)`).
It answers every method Vigil calls with Telegram's envelopes and error wording: HTML parse mode
checked against the documented tags, length limits in UTF-16 code units, inline keyboard
checks, unknown chats, blocked users, groups and channels (negative ids; 403 once the bot is
removed), per-chat, per-group (20 a minute) and global flood limits (429 + retry_after).

The test plays the users: `add_user`, `send_text`, `press`, `block`, and, for groups and
channels, `add_group`, `add_bot_to`, `remove_bot_from`, `send_group_text`, `press(...,
chat_id=)`; and inspects what the bot did: `sent`, `messages_to`, `current`, `wait_for`,
`callback_answers`, `documents`, `photos`, `commands`.

Modules: `server` (HTTP, routing, envelopes), `world` (users, chats, messages; the test's
side), `calls` (the method table, parameters), `messages`, `callbacks`, `chats`, `groups`
(groups, supergroups, channels: membership, getChatMember), `profile`, `updates` (the methods,
by what they act on), `checks` (content limits, HTML, keyboards),
`flood` (429 flood limits, 403 blocked users), `errors`.
"""

from tests.support.botapi.checks import (
    MAX_BUTTONS,
    MAX_CALLBACK_ANSWER,
    MAX_CALLBACK_DATA,
    MAX_CAPTION,
    MAX_TEXT,
    MAX_UPLOAD,
)
from tests.support.botapi.errors import WaitTimeoutError
from tests.support.botapi.flood import Limits
from tests.support.botapi.server import BotApiServer
from tests.support.botapi.world import (
    ApiCall,
    CallbackAnswer,
    CommandScope,
    SentMessage,
    StoredFile,
    TestUser,
)

__all__ = [
    "MAX_BUTTONS",
    "MAX_CALLBACK_ANSWER",
    "MAX_CALLBACK_DATA",
    "MAX_CAPTION",
    "MAX_TEXT",
    "MAX_UPLOAD",
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
