"""Health: role heartbeats, flood waits, watcher accounts and counters, one-per-period admin
notices, and the Redis-side numbers `vigil status` and the admin System view show.

Keys (all `{health}`): `keys.HEALTH_ROLES` hash '<role>@<instance>' -> last beat (unix);
`keys.FLOOD_WAITS` hash session -> until (unix); `keys.WATCHER_ACCOUNTS` hash session -> JSON
`AccountState`; `keys.WATCHER_STATS` hash counter -> int; `keys.notice_sent(subject)` SET NX EX.
Bounded: a beat not renewed for `STALE_BEAT_S` (an instance that died without saying so) and a
flood wait that is over are removed when read; accounts are one per session file.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from bot.storage import keys
from bot.storage.streams import StreamStats, stream_stats

STALE_BEAT_S = 86400.0


@dataclass(frozen=True, slots=True)
class AccountState:
    """What one watcher account last reported about itself."""

    session: str
    alive: bool
    connected: bool
    cap: int
    channels: int
    at: float
    reason: str | None = None

    def to_json(self) -> str:
        return json.dumps(
            {
                "alive": self.alive,
                "connected": self.connected,
                "cap": self.cap,
                "channels": self.channels,
                "at": self.at,
                "reason": self.reason,
            }
        )

    @classmethod
    def from_json(cls, session: str, raw: str) -> AccountState:
        data = json.loads(raw)
        return cls(
            session=session,
            alive=bool(data.get("alive")),
            connected=bool(data.get("connected")),
            cap=int(data.get("cap") or 0),
            channels=int(data.get("channels") or 0),
            at=float(data.get("at") or 0.0),
            reason=data.get("reason"),
        )


@dataclass(frozen=True, slots=True)
class RedisInfo:
    version: str
    used_memory: int
    used_memory_human: str


class HealthRepository:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis

    # --- roles -----------------------------------------------------------------------------
    async def beat(self, names: Iterable[str], *, now: float | None = None) -> None:
        live = list(names)
        if live:
            at = str(time.time() if now is None else now)
            await self._redis.hset(keys.HEALTH_ROLES, mapping=dict.fromkeys(live, at))

    async def forget_roles(self, names: Iterable[str]) -> None:
        gone = list(names)
        if gone:
            await self._redis.hdel(keys.HEALTH_ROLES, *gone)

    async def beats(self, *, now: float | None = None) -> dict[str, float]:
        """Role name -> last beat; beats older than STALE_BEAT_S are removed."""
        at = time.time() if now is None else now
        raw: Any = await self._redis.hgetall(keys.HEALTH_ROLES)
        beats: dict[str, float] = {}
        stale: list[str] = []
        for name, value in raw.items():
            try:
                when = float(value)
            except ValueError:
                when = 0.0
            if at - when > STALE_BEAT_S:
                stale.append(str(name))
            else:
                beats[str(name)] = when
        await self.forget_roles(stale)
        return beats

    # --- watcher accounts ------------------------------------------------------------------
    async def record_flood_wait(self, session: str, until: float) -> float:
        """Note that `session` is held back until `until` (the later wins); returns it."""
        current: Any = await self._redis.hget(keys.FLOOD_WAITS, session)
        if current is None or float(current) < until:
            await self._redis.hset(keys.FLOOD_WAITS, session, repr(until))
        return until

    async def flood_waits(self, *, now: float | None = None) -> dict[str, float]:
        """Session -> until, for the waits not over yet (the others are removed)."""
        at = time.time() if now is None else now
        raw: Any = await self._redis.hgetall(keys.FLOOD_WAITS)
        waits = {str(k): float(v) for k, v in raw.items()}
        over = [k for k, v in waits.items() if v <= at]
        if over:
            await self._redis.hdel(keys.FLOOD_WAITS, *over)
        return {k: v for k, v in waits.items() if v > at}

    async def count(self, counter: str, by: int = 1) -> None:
        await self._redis.hincrby(keys.WATCHER_STATS, counter, by)

    async def counters(self) -> dict[str, int]:
        raw: Any = await self._redis.hgetall(keys.WATCHER_STATS)
        return {str(k): int(v) for k, v in raw.items()}

    async def publish_account(self, state: AccountState) -> None:
        await self._redis.hset(keys.WATCHER_ACCOUNTS, state.session, state.to_json())

    async def account_states(self) -> dict[str, str]:
        """Session -> its state's JSON, as published (see `accounts`)."""
        raw: Any = await self._redis.hgetall(keys.WATCHER_ACCOUNTS)
        return {str(k): str(v) for k, v in raw.items()}

    async def accounts(self) -> list[AccountState]:
        """Every account's state, readable ones only, by session."""
        out = []
        for session, value in sorted((await self.account_states()).items()):
            try:
                out.append(AccountState.from_json(session, value))
            except (ValueError, TypeError):
                continue
        return out

    # --- notices ---------------------------------------------------------------------------
    async def claim_notice(self, subject: str, period_s: int) -> bool:
        """True once per `subject` per period, across restarts and processes."""
        return bool(await self._redis.set(keys.notice_sent(subject), "1", nx=True, ex=period_s))

    # --- the numbers of `vigil status` -----------------------------------------------------
    async def redis_info(self) -> RedisInfo:
        server: Any = await self._redis.info("server")
        memory: Any = await self._redis.info("memory")
        return RedisInfo(
            str(server.get("redis_version", "?")),
            int(memory.get("used_memory", 0)),
            str(memory.get("used_memory_human", "?")),
        )

    async def streams(self) -> list[StreamStats]:
        """Every stream's numbers, in `keys.STREAMS` order (that of `deadletters.stream_name`)."""
        return [await stream_stats(self._redis, *s) for s in keys.STREAMS]

    async def totals(self) -> Mapping[str, int]:
        """How many watches and people there are."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.scard(keys.WATCHES_ALL)
            pipe.scard(keys.USERS_ALL)
            watches, people = await pipe.execute()
        return {"watches": int(watches), "analysts": int(people)}
