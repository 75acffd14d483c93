"""The send-rate limiter's state: GCRA "theoretical arrival times" in Redis, shared by every
delivery process (see `bot/delivery/ratelimit.py` for the policy).

`keys.rate_chat(chat)` and `keys.RATE_GLOBAL` hold a time in microseconds of Redis's own clock
(`TIME`), so processes on different machines agree; both share the `{rate}` hash tag, so one
script takes a slot in each atomically on Redis Cluster too. Every key is written with a PX
expiry just past the time it holds: the state is bounded by the number of chats sending now.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from bot.storage import keys

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


class RateStore:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._acquire: Any = redis.register_script(_ACQUIRE)
        self._penalise: Any = redis.register_script(_PENALISE)

    async def try_acquire(
        self, chat_id: int, chat_iv_us: int, global_iv_us: int, tolerance_us: int
    ) -> tuple[bool, int]:
        """(True, delay us): a slot is reserved; (False, wait us): ask again then."""
        granted, micros = await self._acquire(
            keys=[keys.rate_chat(chat_id), keys.RATE_GLOBAL],
            args=[chat_iv_us, global_iv_us, tolerance_us],
        )
        return bool(int(granted)), int(micros)

    async def penalise(self, chat_id: int, micros: int) -> None:
        await self._penalise(keys=[keys.rate_chat(chat_id)], args=[micros])
