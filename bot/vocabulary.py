"""The words Vigil's parts share, one enum each: who a person is, where a channel stands, and
what kind of message an alert is. The four priorities are `bot.triage.priority.Priority`.

Each is a `StrEnum`, so a value read back from Redis (a plain string) compares equal to its
member and the stored form does not change.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """A person's standing with the bot."""

    STRANGER = "stranger"  # never asked
    PENDING = "pending"  # asked for access, not decided
    DENIED = "denied"
    ANALYST = "analyst"
    ADMIN = "admin"
    REVOKED = "revoked"


ANALYST_ROLES = frozenset({Role.ANALYST, Role.ADMIN})  # may use the analyst commands
OUTSIDER_ROLES = frozenset({Role.STRANGER, Role.PENDING, Role.DENIED, Role.REVOKED})


class ChannelState(StrEnum):
    """Where a monitored channel stands with the watcher."""

    PENDING = "pending"  # waiting for an account to join it
    JOINED = "joined"
    FAILED = "failed"  # the join failed; the reason says why
    PAUSED = "paused"  # an admin paused it


class AlertKind(StrEnum):
    """What an alert entry on the alerts stream is."""

    NEW = "new"  # a post that matched
    EDIT = "edit"  # a follow-up: an alerted post was edited
    DELETE = "delete"  # a follow-up: an alerted post was deleted
    ALSO = "also"  # a copy of an alerted story: the first alert gains "also in N channels"
