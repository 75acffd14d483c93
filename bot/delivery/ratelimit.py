"""Send-rate limits shared by every delivery process, kept in Redis.

Two GCRA limiters (a "theoretical arrival time" per key): one per chat (default 1 message/s) and
one global (default 25/s). One Lua script checks both and, only if both allow, takes a slot in
each, so no process can use the per-chat slot another one reserved. The clock is Redis's own
(`TIME`), so processes on different machines agree. A refusal says how long to wait.

The per-chat key and the global key carry different hash tags; on Redis Cluster the script would
have to be split, but the global key is the point of the design (one cap for the whole bot), so
both keys share the `{rate}` hash tag, so the script stays in one Redis Cluster slot.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from bot.storage import keys

log = logging.getLogger(__name__)

# KEYS[1] chat TAT, KEYS[2] global TAT (both in microseconds)
# ARGV[1] chat interval us, ARGV[2] global interval us, ARGV[3] global burst tolerance us
# Returns {1, delay}: a slot is reserved `delay` us from now (send then); or {0, wait}: the chat
# is not ready, ask again in `wait` us. Global slots are handed out first come, first served and
# contiguously, so waiting senders queue instead of polling.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local chat_iv = tonumber(ARGV[1])
local glob_iv = tonumber(ARGV[2])
local tolerance = tonumber(ARGV[3])
local chat_tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if chat_tat > now then
  return {0, chat_tat - now}
end
local glob_tat = tonumber(redis.call('GET', KEYS[2]) or '0')
local slot = math.max(now, glob_tat - tolerance)
local new_glob = math.max(glob_tat, now) + glob_iv
redis.call('SET', KEYS[2], tostring(new_glob), 'PX', math.ceil((new_glob - now) / 1000) + 60000)
local new_chat = slot + chat_iv
redis.call('SET', KEYS[1], tostring(new_chat), 'PX', math.ceil((new_chat - now) / 1000) + 1000)
return {1, slot - now}
"""

# KEYS[1] chat TAT; ARGV[1] microseconds from now during which the chat gets nothing (a 429)
_PENALISE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local until_ = now + tonumber(ARGV[1])
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_ > cur then
  redis.call('SET', KEYS[1], tostring(until_), 'PX', math.ceil(tonumber(ARGV[1]) / 1000) + 1000)
end
return 1
"""


@dataclass(frozen=True, slots=True)
class RateLimits:
    chat_per_s: float = 1.0
    global_per_s: float = 25.0
    global_burst: int = 1  # messages that may go out back to back globally


class RateLimiter:
    def __init__(self, redis: aioredis.Redis, limits: RateLimits | None = None) -> None:
        self._redis = redis
        self.limits = limits or RateLimits()
        self._acquire: Any = redis.register_script(_ACQUIRE)
        self._penalise: Any = redis.register_script(_PENALISE)
        self._chat_iv = round(1_000_000 / self.limits.chat_per_s)
        self._glob_iv = round(1_000_000 / self.limits.global_per_s)
        self._tolerance = self._glob_iv * max(0, self.limits.global_burst - 1)

    async def try_acquire(self, chat_id: int) -> tuple[bool, float]:
        """(True, delay): a slot is reserved `delay` seconds from now; (False, wait): the chat
        is not ready, ask again in `wait` seconds."""
        granted, micros = await self._acquire(
            keys=[keys.rate_chat(chat_id), keys.RATE_GLOBAL],
            args=[self._chat_iv, self._glob_iv, self._tolerance],
        )
        return bool(int(granted)), int(micros) / 1_000_000

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
        await self._penalise(keys=[keys.rate_chat(chat_id)], args=[round(seconds * 1_000_000)])
