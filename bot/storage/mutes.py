"""Per-analyst mutes of a channel or a watch, optionally for a while.

Key: `keys.user_mutes(id)`, a hash 'channel:<id>' / 'watch:<id>' -> unix time the mute ends
('0' = until unmuted). Expired entries are ignored on read and removed lazily.
"""

from __future__ import annotations

import re
import time
from typing import Any

import redis.asyncio as aioredis

from bot.storage import keys

_DURATION = re.compile(r"^(\d{1,4})\s*([mhdw])$")
_UNIT_S = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_DURATION_S = 365 * 86400


class DurationError(ValueError):
    """Not a duration like 30m, 2h, 1d, 1w; str() is fit to show (not escaped)."""


def parse_duration(text: str) -> int:
    """Seconds in '30m', '2h', '1d', '1w'."""
    m = _DURATION.match(text.strip().lower())
    if not m:
        raise DurationError(f"{text.strip()[:20]!r} is not a duration like 30m, 2h, 1d or 1w")
    seconds = int(m.group(1)) * _UNIT_S[m.group(2)]
    if not 0 < seconds <= MAX_DURATION_S:
        raise DurationError("a mute lasts from 1 minute to 365 days")
    return seconds


def channel_target(channel_id: int) -> str:
    return f"channel:{channel_id}"


def watch_target(watch_id: int) -> str:
    return f"watch:{watch_id}"


class MuteRepository:
    def __init__(self, redis: aioredis.Redis, *, clock: Any = time.time) -> None:
        self._redis = redis
        self._clock = clock

    async def mute(self, user_id: int, target: str, seconds: int | None = None) -> float | None:
        """Mute; returns the unix end time, or None for 'until unmuted'."""
        until = float(self._clock()) + seconds if seconds else None
        await self._redis.hset(keys.user_mutes(user_id), target, f"{until:.0f}" if until else "0")
        return until

    async def unmute(self, user_id: int, target: str) -> bool:
        removed: Any = await self._redis.hdel(keys.user_mutes(user_id), target)
        return bool(removed)

    async def active(self, user_id: int) -> dict[str, float | None]:
        """Target -> end time (None: indefinite), without expired ones."""
        raw: Any = await self._redis.hgetall(keys.user_mutes(user_id))
        return self.screen(user_id, raw)

    def screen(self, user_id: int, raw: dict[str, str]) -> dict[str, float | None]:
        now = float(self._clock())
        out: dict[str, float | None] = {}
        for target, value in raw.items():
            until = float(value or 0)
            if until and until <= now:
                continue
            out[target] = until or None
        return out

    async def is_muted(self, user_id: int, channel_id: int, watch_id: int) -> bool:
        raw: Any = await self._redis.hmget(
            keys.user_mutes(user_id), [channel_target(channel_id), watch_target(watch_id)]
        )
        now = float(self._clock())
        return any(v is not None and (float(v) == 0 or float(v) > now) for v in raw)
