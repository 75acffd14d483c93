"""The monitored channels: what admins add (menu or CLI) and what the watcher resolves and joins.

An entry is added under its canonical ref ('@name', 't.me/+HASH', 't.me/joinchat/HASH',
'id:123') with state `pending`. The watcher resolves it once (username look-ups are heavily
flood-limited by Telegram), after which the entry lives under the key 'id:<channel_id>' and the
ref, the username and the id all point to it; a later username change breaks nothing.

Keys: `keys.CHANNELS_ALL` (sorted set key -> added_at), `keys.CHANNEL_BY_REF` (hash
ref/username/id -> key), `keys.channel(key)` (hash of the entry's fields).
"""

from __future__ import annotations

import builtins
import html
import re
import time
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import redis.asyncio as aioredis

from bot.storage import keys
from bot.triage.priority import PRIORITIES
from bot.vocabulary import ChannelState

STATES = tuple(ChannelState)
WEIGHTS = PRIORITIES
# Failure reasons the joiner records (others are free text, e.g. an unexpected RPC error).
REASONS = ("private", "banned", "invite expired", "too many channels", "not a channel")

_USERNAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{3,31}")
_INVITE = re.compile(r"[A-Za-z0-9_-]{8,64}")
_HOSTS = ("t.me", "telegram.me", "telegram.dog")
# First path segments of t.me links that are not channel usernames.
_RESERVED = frozenset(
    {
        "addemoji",
        "addlist",
        "addstickers",
        "addtheme",
        "auth",
        "bg",
        "boost",
        "confirmphone",
        "contact",
        "invoice",
        "iv",
        "login",
        "proxy",
        "setlanguage",
        "share",
        "socks",
    }
)
_REF_SHOWN = 64  # a refused ref is echoed back at most this long
_RHYTHM_ALPHA = 0.2  # weight of the newest gap in the posting-rhythm average


class ChannelRefError(ValueError):
    """Text that is not a channel reference; str() is a message fit for a user (HTML-safe)."""


@dataclass(frozen=True, slots=True)
class Channel:
    key: str
    ref: str
    channel_id: int | None
    access_hash: int | None
    username: str | None
    title: str
    state: str
    reason: str | None
    weight: str
    added_by: int
    added_at: float
    last_post_at: float | None
    account: str | None
    attempts: int = 0  # join attempts that failed transiently (flood wait, network)
    next_try_at: float | None = None  # the joiner leaves the entry alone until then
    rhythm_s: float | None = None  # moving average of the gap between posts (health)
    resolved_by: str | None = None  # account whose access hash is kept (hashes are per account)
    joined_at: float | None = None  # when the current account joined (its start point's date)

    @property
    def resolved(self) -> bool:
        return self.channel_id is not None

    @property
    def is_invite(self) -> bool:
        return self.ref.startswith(("t.me/+", "t.me/joinchat/"))

    @property
    def invite_hash(self) -> str | None:
        if self.ref.startswith("t.me/+"):
            return self.ref.removeprefix("t.me/+")
        if self.ref.startswith("t.me/joinchat/"):
            return self.ref.removeprefix("t.me/joinchat/")
        return None

    @property
    def label(self) -> str:
        """How to name the channel to a person (not escaped)."""
        if self.title:
            return self.title
        if self.username:
            return f"@{self.username}"
        return self.ref

    def to_fields(self) -> dict[str, str]:
        def opt(value: object) -> str:
            return "" if value is None else str(value)

        return {
            "key": self.key,
            "ref": self.ref,
            "channel_id": opt(self.channel_id),
            "access_hash": opt(self.access_hash),
            "username": opt(self.username),
            "title": self.title,
            "state": self.state,
            "reason": opt(self.reason),
            "weight": self.weight,
            "added_by": str(self.added_by),
            "added_at": repr(self.added_at),
            "last_post_at": opt(self.last_post_at),
            "account": opt(self.account),
            "attempts": str(self.attempts),
            "next_try_at": opt(self.next_try_at),
            "rhythm_s": opt(self.rhythm_s),
            "resolved_by": opt(self.resolved_by),
            "joined_at": opt(self.joined_at),
        }

    @classmethod
    def from_fields(cls, data: dict[str, Any]) -> Channel:
        def opt_int(name: str) -> int | None:
            value = data.get(name) or ""
            return int(value) if value else None

        def opt_float(name: str) -> float | None:
            value = data.get(name) or ""
            return float(value) if value else None

        return cls(
            key=data["key"],
            ref=data["ref"],
            channel_id=opt_int("channel_id"),
            access_hash=opt_int("access_hash"),
            username=data.get("username") or None,
            title=data.get("title") or "",
            state=data.get("state") or ChannelState.PENDING,
            reason=data.get("reason") or None,
            weight=data.get("weight") or "normal",
            added_by=int(data.get("added_by") or 0),
            added_at=float(data.get("added_at") or 0.0),
            last_post_at=opt_float("last_post_at"),
            account=data.get("account") or None,
            attempts=int(data.get("attempts") or 0),
            next_try_at=opt_float("next_try_at"),
            rhythm_s=opt_float("rhythm_s"),
            resolved_by=data.get("resolved_by") or None,
            joined_at=opt_float("joined_at"),
        )


def _refuse(text: str, why: str) -> ChannelRefError:
    shown = text if len(text) <= _REF_SHOWN else text[:_REF_SHOWN] + "…"
    return ChannelRefError(
        f"“{html.escape(shown)}” is not a channel: {why}. Send @username, t.me/username, "
        "an invite link (t.me/+… or t.me/joinchat/…) or a post link t.me/c/ID/POST."
    )


def _username_ref(text: str, name: str) -> str:
    if name.lower() in _RESERVED or not _USERNAME.fullmatch(name) or name.endswith("_"):
        raise _refuse(
            text,
            "a username has 4–32 Latin letters, digits or underscores and starts with a letter",
        )
    return "@" + name.lower()


def _invite_ref(text: str, form: str, invite: str) -> str:
    if not _INVITE.fullmatch(invite):
        raise _refuse(text, "the invite link's code is malformed")
    return f"t.me/{form}{invite}"


def _id_ref(text: str, raw: str) -> str:
    if not raw.isascii() or not raw.isdigit() or not 0 < int(raw) < 2**40:
        raise _refuse(text, "a channel id is a positive number")
    return f"id:{int(raw)}"


def _parse_link(text: str, path: str) -> str:
    parts = [p for p in path.split("/") if p]
    if not parts:
        raise _refuse(text, "the link names no channel")
    head = parts[0]
    if head.startswith("+"):
        return _invite_ref(text, "+", head[1:])
    if head == "joinchat":
        if len(parts) < 2:
            raise _refuse(text, "the invite link has no code")
        return _invite_ref(text, "joinchat/", parts[1])
    if head == "c":
        if len(parts) < 2:
            raise _refuse(text, "the t.me/c link has no channel id")
        return _id_ref(text, parts[1])
    if head == "s" and len(parts) >= 2:
        return _username_ref(text, parts[1])
    return _username_ref(text, head)


def parse_channel_ref(text: str) -> str:
    """Canonical ref of a channel reference typed by a person; raises ChannelRefError."""
    stripped = text.strip().strip("\u200b\u200c\u200d\u2060\ufeff").strip()
    if not stripped:
        raise _refuse(text, "it is empty")
    if any(ch.isspace() for ch in stripped) or len(stripped) > 300:
        raise _refuse(text, "a channel reference is one word or link")
    lowered = stripped.lower()
    if lowered.startswith("tg://"):
        parsed = urlsplit(stripped)
        query = parse_qs(parsed.query)
        if parsed.netloc.lower() == "resolve" and query.get("domain"):
            return _username_ref(text, query["domain"][0])
        if parsed.netloc.lower() == "join" and query.get("invite"):
            return _invite_ref(text, "+", query["invite"][0])
        raise _refuse(text, "this tg:// link names no channel")
    if lowered.startswith("id:"):
        return _id_ref(text, stripped[3:])
    if lowered.startswith("-100"):
        return _id_ref(text, stripped[4:])
    link = lowered.removeprefix("https://").removeprefix("http://").removeprefix("www.")
    for host in _HOSTS:
        if link.startswith(host + "/") or link == host:
            offset = len(stripped) - len(link) + len(host)
            rest = urlsplit("//x" + stripped[offset:]).path
            return _parse_link(text, rest)
    if "/" in stripped or "." in stripped or ":" in stripped:
        raise _refuse(text, "only t.me links are understood")
    if stripped.startswith("+"):
        return _invite_ref(text, "+", stripped[1:])
    return _username_ref(text, stripped.removeprefix("@"))


def _aliases(ref: str) -> list[str]:
    """Index entries under which a ref is found (an invite under both of its link forms)."""
    if ref.startswith("t.me/+"):
        code = ref.removeprefix("t.me/+")
        return [ref, f"t.me/joinchat/{code}"]
    if ref.startswith("t.me/joinchat/"):
        code = ref.removeprefix("t.me/joinchat/")
        return [ref, f"t.me/+{code}"]
    return [ref]


def _m(fields: dict[str, str]) -> dict[Any, Any]:
    """redis-py's mapping parameter is typed invariantly; our str -> str dicts are fine."""
    return dict(fields)


class ChannelRepository:
    def __init__(self, redis: aioredis.Redis, *, clock: Any = time.time) -> None:
        self._redis = redis
        self._clock = clock

    @staticmethod
    def parse_ref(text: str) -> str:
        return parse_channel_ref(text)

    async def _load(self, key: str) -> Channel | None:
        data: Any = await self._redis.hgetall(keys.channel(key))
        if not data:
            return None
        return Channel.from_fields(data)

    async def _save(self, channel: Channel) -> None:
        await self._redis.hset(keys.channel(channel.key), mapping=_m(channel.to_fields()))

    async def _key_for(self, ref: str) -> str | None:
        found: Any = await self._redis.hget(keys.CHANNEL_BY_REF, ref)
        return str(found) if found is not None else None

    async def add(self, text: str, added_by: int) -> Channel:
        """Add as pending; the same ref again returns its entry (a failed one is retried)."""
        ref = parse_channel_ref(text)
        key = await self._key_for(ref)
        if key is not None:
            existing = await self._load(key)
            if existing is not None:
                if existing.state == ChannelState.FAILED:
                    existing = replace(
                        existing,
                        state=ChannelState.PENDING,
                        reason=None,
                        attempts=0,
                        next_try_at=None,
                    )
                    await self._save(existing)
                return existing
        channel_id = int(ref[3:]) if ref.startswith("id:") else None
        channel = Channel(
            key=ref,
            ref=ref,
            channel_id=channel_id,
            access_hash=None,
            username=ref[1:] if ref.startswith("@") else None,
            title="",
            state=ChannelState.PENDING,
            reason=None,
            weight="normal",
            added_by=added_by,
            added_at=float(self._clock()),
            last_post_at=None,
            account=None,
        )
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(keys.channel(ref), mapping=_m(channel.to_fields()))
            pipe.zadd(keys.CHANNELS_ALL, {ref: channel.added_at}, nx=True)
            pipe.hset(keys.CHANNEL_BY_REF, mapping=_m(dict.fromkeys(_aliases(ref), ref)))
            await pipe.execute()
        return channel

    async def get(self, key_or_ref: str) -> Channel | None:
        """By key ('id:123', '@name', ...) or by any ref form a person would type."""
        channel = await self._load(key_or_ref)
        if channel is not None:
            return channel
        try:
            ref = parse_channel_ref(key_or_ref)
        except ChannelRefError:
            return None
        key = await self._key_for(ref)
        return await self._load(key) if key else None

    async def by_id(self, channel_id: int) -> Channel | None:
        return await self._load(f"id:{channel_id}")

    async def list(self) -> list[Channel]:
        """Every entry, oldest first."""
        members: Any = await self._redis.zrange(keys.CHANNELS_ALL, 0, -1)
        if not members:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in members:
                pipe.hgetall(keys.channel(key))
            rows: Any = await pipe.execute()
        return [Channel.from_fields(row) for row in rows if row]

    async def with_state(self, *states: str) -> builtins.list[Channel]:
        return [c for c in await self.list() if c.state in states]

    async def resolved(self) -> builtins.list[Channel]:
        """Entries whose channel id is known (any state)."""
        return [c for c in await self.list() if c.channel_id is not None]

    async def failed(self) -> builtins.list[Channel]:
        return await self.with_state(ChannelState.FAILED)

    async def remove(self, key: str) -> bool:
        channel = await self.get(key)
        if channel is None:
            return False
        index: Any = await self._redis.hgetall(keys.CHANNEL_BY_REF)
        stale = [ref for ref, target in index.items() if target == channel.key]
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.delete(keys.channel(channel.key))
            pipe.zrem(keys.CHANNELS_ALL, channel.key)
            if stale:
                pipe.hdel(keys.CHANNEL_BY_REF, *stale)
            await pipe.execute()
        return True

    async def _update(self, key: str, **changes: Any) -> Channel | None:
        channel = await self.get(key)
        if channel is None:
            return None
        updated = replace(channel, **changes)
        await self._save(updated)
        return updated

    async def set_paused(self, key: str, paused: bool) -> Channel | None:
        channel = await self.get(key)
        if channel is None:
            return None
        state: str
        if paused:
            state = ChannelState.PAUSED
        elif channel.state != ChannelState.PAUSED:
            state = channel.state
        else:
            state = (
                ChannelState.JOINED
                if channel.account and channel.resolved
                else ChannelState.PENDING
            )
        return await self._update(channel.key, state=state)

    async def set_weight(self, key: str, weight: str) -> Channel | None:
        if weight not in WEIGHTS:
            raise ValueError(f"weight must be one of {', '.join(WEIGHTS)}, not {weight!r}")
        return await self._update(key, weight=weight)

    async def weight_of(self, channel_id: int) -> str:
        weight: Any = await self._redis.hget(keys.channel(f"id:{channel_id}"), "weight")
        return str(weight) if weight else "normal"

    async def weights(self) -> dict[int, str]:
        """Channel id -> weight for every resolved entry (for the triage engine's cache)."""
        return {c.channel_id: c.weight for c in await self.resolved() if c.channel_id}

    # --- the watcher's side ------------------------------------------------------------------
    async def mark_resolved(
        self,
        key: str,
        *,
        channel_id: int,
        access_hash: int | None,
        username: str | None,
        title: str,
        resolved_by: str | None = None,
    ) -> Channel | None:
        """Record what Telegram said the ref is; the entry moves to key 'id:<channel_id>'.

        If that id is already monitored under another ref, the two entries become one (the
        older keeps its weight and state).
        """
        channel = await self.get(key)
        if channel is None:
            return None
        new_key = f"id:{channel_id}"
        existing = await self._load(new_key) if channel.key != new_key else None
        base = existing or channel
        merged = replace(
            base,
            key=new_key,
            channel_id=channel_id,
            access_hash=access_hash if access_hash is not None else base.access_hash,
            username=username,
            title=title or base.title,
            resolved_by=resolved_by if access_hash is not None else base.resolved_by,
        )
        aliases = [*_aliases(channel.ref), new_key]
        if existing is not None:
            aliases += _aliases(existing.ref)
        if username:
            aliases.append("@" + username.lower())
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(keys.channel(new_key), mapping=_m(merged.to_fields()))
            pipe.zadd(keys.CHANNELS_ALL, {new_key: merged.added_at})
            pipe.hset(keys.CHANNEL_BY_REF, mapping=_m(dict.fromkeys(aliases, new_key)))
            if channel.key != new_key:
                pipe.zrem(keys.CHANNELS_ALL, channel.key)
                pipe.delete(keys.channel(channel.key))
            await pipe.execute()
        return merged

    async def mark_joined(self, key: str, account: str, at: float | None = None) -> Channel | None:
        """Joined by `account` at `at` (the reconciler's first catch-up keeps posts from then)."""
        channel = await self.get(key)
        if channel is None:
            return None
        state = (
            ChannelState.PAUSED if channel.state == ChannelState.PAUSED else ChannelState.JOINED
        )
        return await self._update(
            channel.key,
            state=state,
            account=account,
            reason=None,
            attempts=0,
            next_try_at=None,
            joined_at=at,
        )

    async def mark_failed(self, key: str, reason: str) -> Channel | None:
        return await self._update(key, state=ChannelState.FAILED, reason=reason, next_try_at=None)

    async def retry_later(self, key: str, at: float, reason: str | None = None) -> Channel | None:
        """A transient failure: keep the entry pending, try again at `at`."""
        channel = await self.get(key)
        if channel is None:
            return None
        return await self._update(
            channel.key, attempts=channel.attempts + 1, next_try_at=at, reason=reason
        )

    async def set_account(self, key: str, account: str | None) -> Channel | None:
        """Move a channel to another account (it must be joined there again: state pending)."""
        channel = await self.get(key)
        if channel is None:
            return None
        state = channel.state
        if account is None or (account != channel.account and state == ChannelState.JOINED):
            state = ChannelState.PENDING
        return await self._update(channel.key, account=account, state=state)

    async def touch_last_post(self, channel_id: int, when: float) -> None:
        """Record a post's time and fold the gap since the previous one into the rhythm."""
        key = keys.channel(f"id:{channel_id}")
        last, rhythm = await self._redis.hmget(key, ["last_post_at", "rhythm_s"])
        if last is None and not await self._redis.exists(key):
            return
        if last and when <= float(last):
            return
        mapping = {"last_post_at": repr(float(when))}
        if last:
            gap = when - float(last)
            avg = gap if not rhythm else (1 - _RHYTHM_ALPHA) * float(rhythm) + _RHYTHM_ALPHA * gap
            mapping["rhythm_s"] = repr(avg)
        await self._redis.hset(key, mapping=_m(mapping))
