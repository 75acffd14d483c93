"""Send-rate limits shared by every delivery process.

Two GCRA limiters (a "theoretical arrival time" per key): one per chat (default 1 message/s; a
group or channel, a negative chat id, 20 a minute as Telegram allows) and one global (default
25/s). One Lua script (`bot/storage/ratelimit.py`) does both atomically: if the chat is not
ready it refuses, saying how long to wait; otherwise it never refuses for the global limit but
hands out the next global slot, which may lie ahead (the sender sleeps until then, so senders
queue in order instead of polling), and takes the chat's slot from that moment, so no process
can use a slot another one reserved. A 429 (`penalise`) closes the chat for Telegram's
retry_after. The clock is Redis's own (`TIME`), so processes on different machines agree. Both
keys share the `{rate}` hash tag, so the script stays in one Redis Cluster slot.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bot.storage.ratelimit import RateStore


@dataclass(frozen=True, slots=True)
class RateLimits:
    chat_per_s: float = 1.0
    group_per_min: float = 20.0  # Telegram's limit for one group or channel (negative ids)
    global_per_s: float = 25.0
    global_burst: int = 1  # messages that may go out back to back globally


class RateLimiter:
    def __init__(self, store: RateStore, limits: RateLimits | None = None) -> None:
        self._store = store
        self.limits = limits or RateLimits()
        self._chat_iv = round(1_000_000 / self.limits.chat_per_s)
        self._group_iv = max(self._chat_iv, round(60_000_000 / self.limits.group_per_min))
        self._glob_iv = round(1_000_000 / self.limits.global_per_s)
        self._tolerance = self._glob_iv * max(0, self.limits.global_burst - 1)

    async def try_acquire(self, chat_id: int) -> tuple[bool, float]:
        """(True, delay): a slot is reserved `delay` seconds from now; (False, wait): the chat
        is not ready, ask again in `wait` seconds."""
        chat_iv = self._group_iv if chat_id < 0 else self._chat_iv
        granted, micros = await self._store.try_acquire(
            chat_id, chat_iv, self._glob_iv, self._tolerance
        )
        return granted, micros / 1_000_000

    async def acquire(self, chat_id: int) -> None:
        """Wait until a send to `chat_id` is allowed; the slot is then taken."""
        while True:
            granted, wait = await self.try_acquire(chat_id)
            if wait > 0:
                await asyncio.sleep(wait)
            if granted:
                return

    async def penalise(self, chat_id: int, seconds: float) -> None:
        """Telegram said 429 for this chat: nobody sends to it for `seconds`."""
        await self._store.penalise(chat_id, round(seconds * 1_000_000))
