"""One owner per Telegram session: a Redis lock with a lease that the owner keeps refreshing.

Two processes on one session file would both receive updates and answer with the same auth key
from two addresses, which Telegram punishes with AUTH_KEY_DUPLICATED (the session dies). The
lock's value names the holder (host:pid) so the refusal can say who it is.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid

from bot.storage.sessions import SessionLocks

log = logging.getLogger(__name__)

DEFAULT_TTL_MS = 60_000


class SessionLockedError(RuntimeError):
    """Another process owns the session."""

    def __init__(self, session: str, holder: str) -> None:
        self.session = session
        self.holder = holder
        super().__init__(
            f"Telegram session {session!r} is already in use by {holder}. "
            "Stop that watcher first, or give this one another session (TG_SESSION)."
        )


class LockLostError(RuntimeError):
    """The lease expired and someone else holds the session now."""


def holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class SessionLock:
    def __init__(
        self,
        locks: SessionLocks,
        session: str,
        *,
        ttl_ms: int = DEFAULT_TTL_MS,
        holder: str | None = None,
    ) -> None:
        self._locks = locks
        self.session = session
        self.ttl_ms = ttl_ms
        self.holder = holder or holder_name()
        # The token is unique per acquisition, so a restarted process with the same pid (in a
        # container, pid 1) never mistakes an old lease for its own.
        self._token = f"{self.holder}|{uuid.uuid4().hex}"
        self.held = False

    async def acquire(self) -> None:
        """Take the lock or raise SessionLockedError naming the holder."""
        current = await self._locks.acquire(self.session, self._token, self.ttl_ms)
        if current is not None:
            holder = current.split("|", 1)[0] if current else "another process"
            raise SessionLockedError(self.session, holder)
        self.held = True
        log.info("session %s locked by %s", self.session, self.holder)

    async def refresh(self) -> None:
        """Extend the lease; raises LockLostError if it expired and was taken."""
        if not await self._locks.refresh(self.session, self._token, self.ttl_ms):
            self.held = False
            raise LockLostError(f"lost the lock of Telegram session {self.session!r}")

    async def release(self) -> None:
        if self.held:
            await self._locks.release(self.session, self._token)
            self.held = False
            log.info("session %s released", self.session)
