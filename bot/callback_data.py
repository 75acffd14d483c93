"""Every inline-button payload, as `CallbackData` factories (short prefixes, enum actions).

Telegram allows 1-64 bytes of callback data; aiogram refuses to pack more. Values never contain
the ':' separator: channels are named by a short digest of their key (`channel_token`), which
the handler looks up again among the current channels.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum

from aiogram.filters.callback_data import CallbackData


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


class AdminAction(StrEnum):
    MENU = "menu"
    CHANNELS = "ch"
    CHANNEL = "c1"  # one channel's card
    CHANNEL_ADD = "cadd"
    CHANNEL_PAUSE = "cpa"
    CHANNEL_RESUME = "cre"
    CHANNEL_REMOVE = "crm"
    CHANNEL_WEIGHT = "cw"
    ANALYSTS = "an"
    PENDING = "pe"
    ANALYST = "a1"  # one person's card
    APPROVE = "aok"
    DENY = "ano"
    PROMOTE = "apr"
    DEMOTE = "ade"
    REVOKE = "arv"
    SYSTEM = "sy"
    DEAD = "dl"
    DEAD_RETRY = "dlr"
    AUDIT = "au"
    SHARED = "sw"  # the shared watches list (paged)
    SHARED_ONE = "s1"  # one shared watch's card
    SHARED_ADD = "sadd"
    SHARED_PRIORITY = "spr"  # arg: the priority
    SHARED_REMOVE = "srm"  # asks to confirm
    SHARED_REMOVE_OK = "srmy"


SHARED_ADMIN_ACTIONS = frozenset(
    {
        AdminAction.SHARED,
        AdminAction.SHARED_ONE,
        AdminAction.SHARED_ADD,
        AdminAction.SHARED_PRIORITY,
        AdminAction.SHARED_REMOVE,
        AdminAction.SHARED_REMOVE_OK,
    }
)


class AdminCB(CallbackData, prefix="ad"):
    """The /admin menu. `ref` is a channel token, a user id, a dead-letter entry id or a
    shared watch id; `arg` a weight, a priority or a stream index; `page` for long lists."""

    action: AdminAction
    ref: str = ""
    arg: str = ""
    page: int = 0


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
