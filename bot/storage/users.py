"""People who talk to the bot, their settings, and the alerts held back for them.

Roles: a *stranger* has no record; writing to the bot makes them *pending* (once); an admin
makes them an *analyst* or *denied*; an analyst can be promoted to *admin* and back, or
*revoked*. `ADMIN_IDS` are admins whatever is stored. An analyst who blocked the bot stays an
analyst with `active` false until their next /start.

Keys: `keys.user(id)` hash of the person's fields, `keys.USERS_ALL` set of everyone with a
record, `keys.ACCESS_REQUESTS` sorted set of pending ids by request time, `keys.user_held(id)`
list of held alert payloads, `keys.HELD_DUE` sorted set id -> when held alerts go out.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import redis.asyncio as aioredis

from bot.storage import keys
from bot.storage.held import HeldRepository
from bot.triage.priority import Priority
from bot.vocabulary import ANALYST_ROLES, Role

ROLES = tuple(Role)
PRIORITY_ORDER = {p.value: p.rank for p in Priority}
DIGEST_MODES = ("off", "hourly", "daily")
USER_FLAGS = ("suggest", "urgent_quiet")
_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class SettingError(ValueError):
    """A setting value a person typed is not valid; str() is fit to show them (not escaped)."""


@dataclass(frozen=True, slots=True)
class QuietHours:
    start: tuple[int, int]
    end: tuple[int, int]

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        parts = text.strip().replace("–", "-").split("-")
        if len(parts) != 2:
            raise SettingError(f"{text!r} is not HH:MM-HH:MM")
        bounds = []
        for part in parts:
            m = _HHMM.match(part.strip())
            if not m:
                raise SettingError(f"{part.strip()!r} is not a time of day HH:MM (00:00-23:59)")
            bounds.append((int(m.group(1)), int(m.group(2))))
        if bounds[0] == bounds[1]:
            raise SettingError("quiet hours must start and end at different times")
        return cls(bounds[0], bounds[1])

    def __str__(self) -> str:
        return f"{self.start[0]:02d}:{self.start[1]:02d}-{self.end[0]:02d}:{self.end[1]:02d}"

    def ends_at(self, now: datetime, tz: ZoneInfo) -> datetime | None:
        """When the current quiet period ends (aware datetime), or None if not quiet now."""
        local = now.astimezone(tz)
        minute = local.hour * 60 + local.minute
        start = self.start[0] * 60 + self.start[1]
        end = self.end[0] * 60 + self.end[1]
        quiet = start <= minute < end if start < end else (minute >= start or minute < end)
        if not quiet:
            return None
        end_local = local.replace(hour=self.end[0], minute=self.end[1], second=0, microsecond=0)
        if end_local <= local:
            end_local += timedelta(days=1)
        # Wall-clock arithmetic across a DST change: re-attach the zone to the naive time.
        return end_local.replace(tzinfo=None).replace(tzinfo=tz)


def parse_tz(name: str) -> ZoneInfo:
    name = name.strip()
    if not name or len(name) > 64 or ".." in name or name.startswith("/"):
        raise SettingError(f"{name!r} is not a time zone name like Europe/Kyiv")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SettingError(f"{name!r} is not a time zone name like Europe/Kyiv") from exc


def zone_or_utc(name: str) -> ZoneInfo:
    try:
        return parse_tz(name)
    except SettingError:
        return ZoneInfo("UTC")


@dataclass(frozen=True, slots=True)
class Person:
    id: int
    role: str
    active: bool = True
    name: str = ""
    username: str | None = None
    tz: str = "UTC"
    threshold: str = "low"
    quiet: str | None = None
    digest: str = "off"
    # Learned relevance (/settings learning), suggestions from the desk model (/suggest), and
    # urgent alerts breaking quiet hours (/settings urgent): stored "0" / "1".
    learning: bool = True
    suggest: bool = False
    urgent_quiet: bool = True
    requested_at: float | None = None
    joined_at: float | None = None

    @property
    def is_analyst(self) -> bool:
        return self.role in ANALYST_ROLES

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        return f"@{self.username}" if self.username else str(self.id)

    @property
    def zone(self) -> ZoneInfo:
        return zone_or_utc(self.tz)

    @property
    def quiet_hours(self) -> QuietHours | None:
        if not self.quiet:
            return None
        try:
            return QuietHours.parse(self.quiet)
        except SettingError:
            return None

    @classmethod
    def from_hash(cls, user_id: int, data: dict[str, str]) -> Person:
        def opt_float(name: str) -> float | None:
            value = data.get(name) or ""
            return float(value) if value else None

        return cls(
            id=user_id,
            role=data.get("role") or Role.STRANGER,
            active=data.get("active", "1") != "0",
            name=data.get("name", ""),
            username=data.get("username") or None,
            tz=data.get("tz") or "UTC",
            threshold=data.get("threshold") or "low",
            quiet=data.get("quiet") or None,
            digest=data.get("digest") or "off",
            learning=data.get("learning", "1") != "0",
            suggest=data.get("suggest", "0") == "1",
            urgent_quiet=data.get("urgent_quiet", "1") != "0",
            requested_at=opt_float("requested_at"),
            joined_at=opt_float("joined_at"),
        )


# KEYS[1] user hash, KEYS[2] requests zset, KEYS[3] users set; ARGV id, now, name, username
_REQUEST = """
if redis.call('HSETNX', KEYS[1], 'role', 'pending') == 0 then return 0 end
redis.call('HSET', KEYS[1], 'requested_at', ARGV[2], 'name', ARGV[3], 'username', ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
return 1
"""

# KEYS[1] user hash; ARGV[1] new role, ARGV[2..] roles it may change from. Returns old role or ''.
_TRANSITION = """
local cur = redis.call('HGET', KEYS[1], 'role') or 'stranger'
for i = 2, #ARGV do
  if ARGV[i] == cur then
    redis.call('HSET', KEYS[1], 'role', ARGV[1])
    return cur
  end
end
return ''
"""


class UserRepository:
    def __init__(self, redis: aioredis.Redis, admins: frozenset[int] = frozenset()) -> None:
        self._redis = redis
        self._held = HeldRepository(redis)  # released when they are back or quiet hours end
        self.admins = admins
        self._request: Any = redis.register_script(_REQUEST)
        self._transition: Any = redis.register_script(_TRANSITION)

    async def ensure_admins(self) -> None:
        """Give every ADMIN_IDS member a record (so lists and commands include them)."""
        now = f"{time.time():.3f}"
        for admin_id in self.admins:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(keys.user(admin_id), mapping={"role": Role.ADMIN})
                pipe.hsetnx(keys.user(admin_id), "joined_at", now)
                pipe.sadd(keys.USERS_ALL, str(admin_id))
                pipe.zrem(keys.ACCESS_REQUESTS, str(admin_id))
                await pipe.execute()

    async def get(self, user_id: int) -> Person | None:
        data: Any = await self._redis.hgetall(keys.user(user_id))
        if not data:
            return Person(user_id, Role.ADMIN) if user_id in self.admins else None
        person = Person.from_hash(user_id, data)
        if user_id in self.admins and person.role != Role.ADMIN:
            person = Person.from_hash(user_id, {**data, "role": Role.ADMIN})
        return person

    async def role_of(self, user_id: int) -> str:
        if user_id in self.admins:
            return Role.ADMIN
        role: Any = await self._redis.hget(keys.user(user_id), "role")
        return str(role) if role else Role.STRANGER

    async def request_access(self, user_id: int, name: str, username: str | None) -> bool:
        """Record a stranger's request. True only the first time (one reply per stranger)."""
        created = await self._request(
            keys=[keys.user(user_id), keys.ACCESS_REQUESTS, keys.USERS_ALL],
            args=[user_id, f"{time.time():.3f}", name[:128], (username or "")[:64]],
        )
        return bool(created)

    async def pending(self) -> list[Person]:
        ids: Any = await self._redis.zrange(keys.ACCESS_REQUESTS, 0, -1)
        return [p for p in await self._many([int(i) for i in ids]) if p.role == Role.PENDING]

    async def _many(self, ids: list[int]) -> list[Person]:
        if not ids:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for user_id in ids:
                pipe.hgetall(keys.user(user_id))
            rows: Any = await pipe.execute()
        people = []
        for user_id, row in zip(ids, rows, strict=True):
            if row:
                person = Person.from_hash(user_id, row)
                if user_id in self.admins:
                    person = Person.from_hash(user_id, {**row, "role": Role.ADMIN})
                people.append(person)
        return people

    async def _change_role(self, user_id: int, to: str, *from_roles: str) -> str | None:
        """Atomically move from one of `from_roles` to `to`. Returns the old role, or None."""
        if user_id in self.admins:
            return None  # ADMIN_IDS are fixed by configuration
        old = await self._transition(keys=[keys.user(user_id)], args=[to, *from_roles])
        if not old:
            return None
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zrem(keys.ACCESS_REQUESTS, str(user_id))
            pipe.sadd(keys.USERS_ALL, str(user_id))
            if to in ANALYST_ROLES:
                pipe.hsetnx(keys.user(user_id), "joined_at", f"{time.time():.3f}")
                pipe.hset(keys.user(user_id), "active", "1")
            await pipe.execute()
        return str(old)

    async def approve(self, user_id: int) -> bool:
        """Pending (or denied, or revoked) -> analyst. False if nothing to approve."""
        return (
            await self._change_role(user_id, Role.ANALYST, Role.PENDING, Role.DENIED, Role.REVOKED)
            is not None
        )

    async def deny(self, user_id: int) -> bool:
        return await self._change_role(user_id, Role.DENIED, Role.PENDING) is not None

    async def promote(self, user_id: int) -> bool:
        return await self._change_role(user_id, Role.ADMIN, Role.ANALYST) is not None

    async def demote(self, user_id: int) -> bool:
        return await self._change_role(user_id, Role.ANALYST, Role.ADMIN) is not None

    async def revoke(self, user_id: int) -> bool:
        return await self._change_role(user_id, Role.REVOKED, Role.ANALYST, Role.ADMIN) is not None

    async def analysts(self) -> list[Person]:
        """Everyone who may use the bot (analysts and admins, ADMIN_IDS included)."""
        ids: Any = await self._redis.smembers(keys.USERS_ALL)
        known = {int(i) for i in ids} | set(self.admins)
        people = await self._many(sorted(known))
        found = {p.id for p in people}
        people += [Person(a, Role.ADMIN) for a in sorted(self.admins - found)]
        return [p for p in people if p.is_analyst]

    async def admin_ids(self) -> list[int]:
        return [p.id for p in await self.analysts() if p.role == Role.ADMIN]

    async def set_active(self, user_id: int, active: bool) -> bool:
        """True if this changed the flag (so the caller acts once per transition)."""
        new = "1" if active else "0"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hget(keys.user(user_id), "active")
            pipe.hset(keys.user(user_id), "active", new)
            before, _ = await pipe.execute()
        return (before or "1") != new

    async def reactivate(self, user_id: int) -> bool:
        """Active again (they sent /start): True if they were inactive. Held alerts go out."""
        changed = await self.set_active(user_id, True)
        await self._held.release_soon(user_id)
        return changed

    async def touch_profile(self, user_id: int, name: str, username: str | None) -> None:
        await self._redis.hset(
            keys.user(user_id), mapping={"name": name[:128], "username": (username or "")[:64]}
        )

    async def set_tz(self, user_id: int, tz: str) -> str:
        zone = parse_tz(tz)
        await self._redis.hset(keys.user(user_id), "tz", zone.key)
        return zone.key

    async def set_threshold(self, user_id: int, threshold: str) -> str:
        value = threshold.strip().lower()
        if value not in PRIORITY_ORDER:
            raise SettingError(f"{threshold!r} is not one of urgent, high, normal, low")
        await self._redis.hset(keys.user(user_id), "threshold", value)
        return value

    async def set_quiet(self, user_id: int, quiet: QuietHours | None) -> None:
        await self._redis.hset(keys.user(user_id), "quiet", str(quiet) if quiet else "")
        if quiet is None:
            await self._held.release_soon(user_id)

    async def set_flag(self, user_id: int, flag: str, on: bool) -> None:
        """An on/off setting: "suggest" (desk-model suggestions) or "urgent_quiet" (urgent
        alerts break quiet hours). Learning is switched through FeedbackRepository, which
        also tells the learner."""
        if flag not in USER_FLAGS:
            raise SettingError(f"{flag!r} is not a setting")
        await self._redis.hset(keys.user(user_id), flag, "1" if on else "0")

    async def set_digest(self, user_id: int, mode: str) -> str:
        value = mode.strip().lower()
        if value not in DIGEST_MODES:
            raise SettingError(f"{mode!r} is not one of off, hourly, daily")
        await self._redis.hset(keys.user(user_id), "digest", value)
        return value
