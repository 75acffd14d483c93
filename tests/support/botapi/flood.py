"""Why a well-formed send is refused: flood limits (429 with retry_after; 20 a minute to one
group), blocked users and groups the bot is not in (403).

`FloodControl` keeps a token bucket per chat and one over all chats, with Telegram's defaults
(`Limits`), and can refuse a random fraction of sends to exercise a bot's retry path.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tests.support.botapi.errors import ApiError

if TYPE_CHECKING:
    from tests.support.botapi.world import Chat


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
    group_per_minute: int = 20  # to one group or channel (a negative chat id), any minute


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


class FloodControl:
    """The buckets for one set of limits; made anew when the limits change (buckets full, the
    random refusals reseeded)."""

    def __init__(self, limits: Limits, clock: Callable[[], float]) -> None:
        self.limits = limits
        self._clock = clock
        self._rng = random.Random(limits.seed)
        self._chat_buckets: dict[int, _Bucket] = {}
        self._global_bucket = self._new_bucket(limits.global_rate, limits.global_burst)
        self._group_sends: dict[int, list[float]] = {}

    def check(self, chat_id: int) -> None:
        """Take a send from the buckets of `chat_id`, or raise 429."""
        limits = self.limits
        if limits.flood_fraction > 0 and self._rng.random() < limits.flood_fraction:
            raise _too_many(max(1, limits.flood_retry_after))
        if not limits.enabled:
            return
        now = self._clock()
        bucket = self._chat_buckets.get(chat_id)
        if bucket is None:
            bucket = self._new_bucket(limits.per_chat_rate, limits.per_chat_burst)
            self._chat_buckets[chat_id] = bucket
        wait = max(bucket.wait_time(now), self._global_bucket.wait_time(now))
        if chat_id < 0:
            # Telegram: at most 20 messages a minute to one group (a sliding minute here).
            recent = [t for t in self._group_sends.get(chat_id, []) if now - t < 60.0]
            self._group_sends[chat_id] = recent
            if len(recent) >= limits.group_per_minute:
                wait = max(wait, 60.0 - (now - recent[0]))
        if wait > 0:
            raise _too_many(max(1, math.ceil(wait)))
        bucket.take()
        self._global_bucket.take()
        if chat_id < 0:
            self._group_sends[chat_id].append(now)

    def _new_bucket(self, rate: float, burst: int) -> _Bucket:
        capacity = float(max(1, burst))
        return _Bucket(rate=rate, capacity=capacity, tokens=capacity, updated=self._clock())


def _too_many(retry: int) -> ApiError:
    return ApiError(429, f"Too Many Requests: retry after {retry}", retry_after=retry)


def refuse_blocked(chat: Chat) -> None:
    """403 for a write to a user who blocked the bot, or to a group the bot is not in."""
    if chat.group is not None:
        chat.group.refuse_write()
    if chat.blocked:
        raise ApiError(403, "Forbidden: bot was blocked by the user")
