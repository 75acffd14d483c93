"""Every inline-button payload, as `CallbackData` factories (short prefixes, enum actions).

Telegram allows 1-64 bytes of callback data; aiogram refuses to pack more. Values never contain
the ':' separator: channels are named by a short digest of their key (`channel_token`), which
the handler looks up again among the current channels. Data that does not unpack (a forged
enum value, a non-number id) matches no handler and is refused by handlers/access.py.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum

from aiogram.filters.callback_data import CallbackData

from bot.triage.priority import Priority


class FeedbackAction(StrEnum):
    RELEVANT = "r"
    NOISE = "n"
    MUTE = "m"
    UNMUTE = "u"


class FeedbackCB(CallbackData, prefix="fb"):
    """Buttons under an alert: 👍 / 👎 / 🔕 (and the undo of 🔕)."""

    action: FeedbackAction
    channel_id: int
    message_id: int
    watch_id: int


class WatchAction(StrEnum):
    PAGE = "pg"
    PAUSE = "pa"
    RESUME = "re"
    DELETE = "de"
    PRIORITY = "pr"  # show the priority choices
    SET_PRIORITY = "sp"


class WatchCB(CallbackData, prefix="wa"):
    """/watches list buttons. `priority` is only used by SET_PRIORITY."""

    action: WatchAction
    watch_id: int = 0
    page: int = 0
    priority: str = ""


class ArchiveKind(StrEnum):
    TEST = "t"
    SEARCH = "s"


class ArchiveCB(CallbackData, prefix="ar"):
    """◀ ▶ under a /test or /search result. The query is not in here (it may not fit): it is
    read back from the message's first line and checked against `tag`, a digest of it; `at`
    is the moment of the search, so every page is cut from the same snapshot."""

    kind: ArchiveKind
    page: int
    at: int
    tag: str


class ListAction(StrEnum):
    CHANNELS = "ch"  # /channels


class ListCB(CallbackData, prefix="ls"):
    """◀ ▶ under an analyst's plain list (/channels)."""

    action: ListAction
    page: int = 0


def query_tag(query: str) -> str:
    """A short, separator-free digest of a query, to recognise it in callback data."""
    return hashlib.blake2b(query.encode(), digest_size=5).hexdigest()


class AccessAction(StrEnum):
    APPROVE = "ok"
    DENY = "no"


class AccessCB(CallbackData, prefix="ac"):
    """Approve / Deny under an access request sent to the admins."""

    action: AccessAction
    user_id: int


# --- /admin: one factory per kind of thing, one handler per action (handlers/admin.py) -------
class AdminView(StrEnum):
    """A section of /admin; the lists open at `AdminViewCB.page`."""

    MENU = "m"
    CHANNELS = "c"
    ANALYSTS = "a"
    PENDING = "p"
    SYSTEM = "s"
    DEAD = "d"
    SHARED = "w"


class AdminViewCB(CallbackData, prefix="av"):
    """Open a section of /admin (and Back to one)."""

    view: AdminView
    page: int = 0


class AdminPrompt(StrEnum):
    CHANNEL = "c"  # reply with a channel to add
    SHARED = "w"  # reply with a shared watch's query


class AdminPromptCB(CallbackData, prefix="aq"):
    """Ask the admin for a reply (the next message is read as the answer)."""

    what: AdminPrompt


class ChannelAction(StrEnum):
    OPEN = "o"  # the channel's card
    PAUSE = "pa"
    RESUME = "re"
    REMOVE = "rm"


class ChannelCB(CallbackData, prefix="ach"):
    """One channel, named by `channel_token` of its key (looked up again among the channels)."""

    action: ChannelAction
    token: str


class ChannelWeightCB(CallbackData, prefix="acw"):
    token: str
    weight: Priority


class PersonAction(StrEnum):
    OPEN = "o"  # the person's card
    PROMOTE = "pr"
    DEMOTE = "de"
    REVOKE = "rv"


class PersonCB(CallbackData, prefix="apn"):
    action: PersonAction
    user_id: int


class PendingAction(StrEnum):
    APPROVE = "ok"
    DENY = "no"


class PendingCB(CallbackData, prefix="apd"):
    """A decision in the pending-requests list; the list comes back at `page`."""

    action: PendingAction
    user_id: int
    page: int = 0


class DeadRetryCB(CallbackData, prefix="adr"):
    """Retry one dead letter: `stream` is its stream's place in the dead-letter streams."""

    stream: int
    entry: str
    page: int = 0


class AuditCB(CallbackData, prefix="aau"):
    """A page of the audit log; `cursor` is where it starts (see handlers/admin.py)."""

    cursor: str = ""
    page: int = 0


class SharedAdminAction(StrEnum):
    OPEN = "o"  # the shared watch's card
    REMOVE = "rm"  # asks to confirm
    REMOVE_OK = "ok"


class SharedAdminCB(CallbackData, prefix="asw"):
    """One shared watch in /admin; `page` is the list page to come back to."""

    action: SharedAdminAction
    shared_id: int
    page: int = 0


class SharedPriorityCB(CallbackData, prefix="asp"):
    shared_id: int
    priority: Priority
    page: int = 0


class DeskRouteCB(CallbackData, prefix="dr"):
    """An admin routing shared watch `shared_id` from its card: `chat_id` 0 lists the desks
    to choose from, a desk's (negative) id routes it there."""

    shared_id: int
    chat_id: int = 0


# Buttons only admins may press: each handler of these sits under an admin role filter
# (tests/bot/test_admin.py checks the routers).
ADMIN_CALLBACKS: tuple[type[CallbackData], ...] = (
    AccessCB,
    AdminViewCB,
    AdminPromptCB,
    ChannelCB,
    ChannelWeightCB,
    PersonCB,
    PendingCB,
    DeadRetryCB,
    AuditCB,
    SharedAdminCB,
    SharedPriorityCB,
    DeskRouteCB,
)


class SharedAction(StrEnum):
    PAGE = "p"
    SUBSCRIBE = "s"
    UNSUBSCRIBE = "u"


class SharedCB(CallbackData, prefix="sh"):
    """/shared list buttons: subscribe to or unsubscribe from shared watch `shared_id`."""

    action: SharedAction
    shared_id: int = 0
    page: int = 0


def channel_token(key: str) -> str:
    """A short, separator-free stand-in for a channel key in callback data."""
    return hashlib.sha1(key.encode()).hexdigest()[:12]


class LearningAction(StrEnum):
    RESET = "rs"  # ask to confirm
    CONFIRM = "ok"  # forget every verdict
    CANCEL = "no"


class LearningCB(CallbackData, prefix="ln"):
    """/learning buttons: reset (with a confirmation)."""

    action: LearningAction
