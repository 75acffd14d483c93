"""Campaigns in Redis: surge counts per watch, a story's spread, forward edges.

Written by the triage worker in its batch's own pipeline (`*_commands(pipe, ...)`), so a batch
still costs a constant number of round trips; read by `SurgeTracker.check` (the surge
decision, `bot.triage.surge`) and by the bot's Spread and amplification views
(`bot.triage.spread`).

Keys (`bot.storage.keys`), and what bounds them:
- `surge_hours(watch, day)`: hash hour of day -> matching posts; expires after the baseline's
  days (eight weeks). One hash per watch per day it matched anything (≤ 24 small fields).
- `surge_channels(watch, hour)`: hash channel -> posts, `surge_recent(watch, hour)`: list of
  at most `window_refs` post refs; both only for hours still inside the window, expiring when
  the window has passed them.
- `surge_sample(watch, day)`: list of the first matching post of each hour of that day (at
  most 24), expiring after `sample_days` (the baseline side of new words; their text is the
  archive's).
- `surge_event(watch, end hour)`: an alert and its window's post refs (the Examples button),
  expiring after `event_ttl_s`; `surge_png(watch, end hour)`: its chart, drawn once for every
  recipient, expiring after `png_ttl_s`. `SURGE_OFF`: the watches whose analyst turned surge
  alerts off (one member per such watch).
- `surge_cooldown(watch)`: the time the watch's cooldown ends (claimed by a script, expiring
  then), one alert per cooldown. `SURGE_EPOCH`: when counting
  began (a watch's history starts no earlier, so a deployment does not see weeks of zeros).
- `story_spread(first)`: sorted set of a story's posts by time, at most `spread_cap`, expiring
  with the archive.
- `forward_edges(day)` / `forward_names(day)`: 'source:target' -> forwards per day, at most
  `edges_cap` pairs a day, expiring after `edges_days`. `forward_via(day)`: each source's
  last forwarding post that day (one field per source with an edge), as long.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from array import array
from collections import Counter, OrderedDict
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from typing import Any, TypeVar

import redis.asyncio as aioredis

from bot.models import Post
from bot.storage import keys
from bot.storage.archive import ArchiveRepository
from bot.triage.normalise import normalise
from bot.triage.spread import CopyKind, ForwardEdge, SpreadRecord
from bot.triage.surge import (
    DAY_S,
    HOUR_S,
    SurgeAlert,
    SurgeConfig,
    SurgeCounts,
    SurgeWindow,
    baseline_of,
    day_of,
    hour_of,
    make_alert,
    new_words,
    surge_ratio,
    surge_ref,
    window_hours_of,
    window_samples,
    word_posts,
    worth_checking,
)

log = logging.getLogger(__name__)

PostKey = tuple[int, int]
T = TypeVar("T")
DayHours = Mapping[int, Mapping[int, int]]  # day -> {hour of day: posts}
# Commands one read pipeline carries: redis-py holds every queued command and every reply of
# a pipeline at once, and a check's history of 1,000 busy watches is 56,000 HGETALLs (measured
# with bench/memory.py: a +40 MB spike for a second and a half); a longer read is sent in parts.
PIPELINE_MAX = 2_000

# KEYS[1] the epoch, then four keys per slot: hours hash, channels hash, recent list, sample
# list. ARGV[1] now, ARGV[2] hours ttl, ARGV[3] window ttl, ARGV[4] sample ttl, ARGV[5] refs
# kept per hour, ARGV[6] a JSON list of slots:
# [hour of day, posts, in window (0/1), ["channel", n, ...], ["c:m", ...], in sample (0/1)].
# The hour's count before this batch says what is new, so a busy hour costs no EXPIRE or LLEN:
# its keys got their expiry with the hour's first post, its recent list holds min(count, cap)
# refs, and the day's sample takes the first post of each hour (at most 24 a day).
_COUNT = """
redis.call('SET', KEYS[1], ARGV[1], 'NX')
local slots = cjson.decode(ARGV[6])
local cap = tonumber(ARGV[5])
local k = 2
for i = 1, #slots do
  local s = slots[i]
  local n = s[2]
  local before = redis.call('HINCRBY', KEYS[k], s[1], n) - n
  if before == 0 then redis.call('EXPIRE', KEYS[k], ARGV[2]) end
  local refs = s[5]
  if s[3] == 1 then
    local ch = s[4]
    for j = 1, #ch, 2 do
      redis.call('HINCRBY', KEYS[k + 1], ch[j], ch[j + 1])
    end
    local room = math.min(cap - before, #refs)
    if room > 0 then
      redis.call('RPUSH', KEYS[k + 2], unpack(refs, 1, room))
    end
    if before == 0 then
      redis.call('EXPIRE', KEYS[k + 1], ARGV[3])
      redis.call('EXPIRE', KEYS[k + 2], ARGV[3])
    end
  end
  if before == 0 and s[6] == 1 and #refs > 0 then
    redis.call('RPUSH', KEYS[k + 3], refs[1])
    redis.call('EXPIRE', KEYS[k + 3], ARGV[4])
  end
  k = k + 4
end
return #slots
"""
# KEYS the cooldowns; ARGV[1] now, ARGV[2] until, ARGV[3] ttl. A cooldown holds the time it
# ends (compared with the caller's clock, so a replay of old posts, as the benchmark's, cools
# down in its own time) and expires then too.
_CLAIM = """
local out = {}
for i = 1, #KEYS do
  local busy = tonumber(redis.call('GET', KEYS[i]) or '0') or 0
  if busy > tonumber(ARGV[1]) then
    out[i] = 0
  else
    redis.call('SET', KEYS[i], ARGV[2], 'EX', ARGV[3])
    out[i] = 1
  end
end
return out
"""
MAX_SLOTS_PER_CALL = 500  # one script call blocks Redis for its length: keep it short


def _ref(channel_id: int, message_id: int) -> str:
    return f"{channel_id}:{message_id}"


def _parse_ref(raw: str) -> PostKey | None:
    try:
        c, m = raw.split(":")
        return int(c), int(m)
    except ValueError:
        return None


def _until(raw: Any) -> float:
    try:
        return float(raw) if raw else 0.0
    except (TypeError, ValueError):
        return 0.0


def _int_map(raw: Mapping[Any, Any] | None) -> dict[int, int]:
    out: dict[int, int] = {}
    for k, v in (raw or {}).items():
        try:
            out[int(k)] = int(v)
        except (TypeError, ValueError):
            continue
    return out


class _GridDay(Mapping[int, int]):
    """One day of a `DayGrid`: hour of day -> posts (the hours with none are absent)."""

    __slots__ = ("_at", "_counts")

    def __init__(self, counts: array[int], at: int) -> None:
        self._counts = counts
        self._at = at

    def __getitem__(self, hour: int) -> int:
        if not 0 <= hour < 24 or not self._counts[self._at + hour]:
            raise KeyError(hour)
        return self._counts[self._at + hour]

    def __iter__(self) -> Iterator[int]:
        return (h for h in range(24) if self._counts[self._at + h])

    def __len__(self) -> int:
        return sum(1 for _ in self)


class DayGrid(Mapping[int, Mapping[int, int]]):
    """A watch's hourly counts over consecutive days in one array (4 bytes an hour): day ->
    {hour of day: posts}, the days with no post absent. It spans from its first day with a
    post, so the history of a watch that matched nothing takes no room.

    The surge tracker caches the history of up to thousands of watches for a day; as dicts
    of dicts one watch's eight weeks with posts in 60 % of the hours took 45 kB, as a grid 6 kB."""

    __slots__ = ("_counts", "_days", "_first")

    def __init__(self, first_day: int, days: int) -> None:
        self._first = first_day
        self._days = days
        self._counts = array("I", bytes(4 * 24 * days))

    def fill(self, day: int, hours: Mapping[int, int]) -> None:
        at = (day - self._first) * 24
        if not 0 <= day - self._first < self._days:
            raise ValueError(f"day {day} is outside the grid")
        for hour, posts in hours.items():
            if 0 <= hour < 24:
                self._counts[at + hour] = min(max(posts, 0), 0xFFFFFFFF)

    def _has(self, day: int) -> bool:
        if not 0 <= day - self._first < self._days:
            return False
        at = (day - self._first) * 24
        return any(self._counts[at : at + 24])

    def __getitem__(self, day: int) -> Mapping[int, int]:
        if not self._has(day):
            raise KeyError(day)
        return _GridDay(self._counts, (day - self._first) * 24)

    def __iter__(self) -> Iterator[int]:
        return (d for d in range(self._first, self._first + self._days) if self._has(d))

    def __len__(self) -> int:
        return sum(1 for _ in self)


class CampaignRepository:
    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        config: SurgeConfig | None = None,
        archive: ArchiveRepository | None = None,
        spread_ttl_s: int = 30 * DAY_S,
        spread_cap: int = 500,
        edges_days: int = 30,
        edges_cap: int = 20_000,
        event_ttl_s: int = 7 * DAY_S,
        png_ttl_s: int = 2 * DAY_S,
    ) -> None:
        self._redis = redis
        self.config = config or SurgeConfig()
        self.archive = archive or ArchiveRepository(redis)
        self.spread_ttl_s = spread_ttl_s
        self.spread_cap = spread_cap
        self.edges_days = edges_days
        self.edges_cap = edges_cap
        self.event_ttl_s = event_ttl_s
        self.png_ttl_s = png_ttl_s

    async def _read_in_parts(
        self,
        items: Sequence[T],
        per_item: int,
        queue: Callable[[Any, T], None],
        *,
        head: Callable[[Any], None] | None = None,
    ) -> AsyncIterator[tuple[Sequence[T], list[Any]]]:
        """Pipelines of at most PIPELINE_MAX commands, `per_item` for each item (`queue`
        adds them), `head` (one command) first in every part; yields each part with its
        replies. Nothing is sent for no items."""
        step = max(1, (PIPELINE_MAX - (head is not None)) // per_item)
        for start in range(0, len(items), step):
            part = items[start : start + step]
            async with self._redis.pipeline(transaction=False) as pipe:
                if head is not None:
                    head(pipe)
                for item in part:
                    queue(pipe, item)
                yield part, await pipe.execute()

    # --- surge counts: written in the batch pipeline -----------------------------------------

    def count_commands(self, pipe: Any, counts: SurgeCounts, *, now: float | None = None) -> int:
        """Queue one batch's counts (one script call per `MAX_SLOTS_PER_CALL` (watch, hour)
        slots). Hours older than the window only add to the history. Returns the calls."""
        if not counts:
            return 0
        cfg = self.config
        now = time.time() if now is None else now
        current = hour_of(now)
        window_ttl = (cfg.window_hours + 1) * HOUR_S
        hours_ttl = (cfg.baseline_days + 2) * DAY_S
        sample_ttl = (cfg.sample_days + 1) * DAY_S
        slots = sorted(counts.posts)
        calls = 0
        for start in range(0, len(slots), MAX_SLOTS_PER_CALL):
            chunk = slots[start : start + MAX_SLOTS_PER_CALL]
            script_keys = [keys.SURGE_EPOCH]
            payload: list[list[Any]] = []
            for watch, hour in chunk:
                day = day_of(hour)
                recent = current - cfg.window_hours < hour <= current + 1
                script_keys += [
                    keys.surge_hours(watch, day),
                    keys.surge_channels(watch, hour),
                    keys.surge_recent(watch, hour),
                    keys.surge_sample(watch, day),
                ]
                channels: list[Any] = []
                if recent:
                    for channel, n in sorted(counts.channels[(watch, hour)].items()):
                        channels += [str(channel), n]
                refs = [_ref(c, m) for c, m in counts.refs[(watch, hour)]]
                in_sample = day_of(current) - day <= cfg.sample_days
                payload.append(
                    [
                        hour % 24,
                        counts.posts[(watch, hour)],
                        1 if recent else 0,
                        channels,
                        refs if recent else refs[:1],
                        1 if in_sample else 0,
                    ]
                )
            args = [
                f"{now:.0f}",
                hours_ttl,
                window_ttl,
                sample_ttl,
                cfg.window_refs,
                json.dumps(payload, separators=(",", ":")),
            ]
            # EVAL, not EVALSHA: a pipeline holding a registered script asks SCRIPT EXISTS
            # first, one more round trip per batch; Redis caches the compiled body anyway.
            pipe.eval(_COUNT, len(script_keys), *script_keys, *args)
            calls += 1
        return calls

    async def count(self, counts: SurgeCounts, *, now: float | None = None) -> None:
        """`count_commands` in a pipeline of its own (tests, tools)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            if self.count_commands(pipe, counts, now=now):
                await pipe.execute()

    # --- surge counts: readers ---------------------------------------------------------------

    async def epoch(self) -> float | None:
        raw = await self._redis.get(keys.SURGE_EPOCH)
        return float(raw) if raw else None

    async def window_posts(self, watch_ids: Sequence[int], now: float) -> dict[int, int]:
        """The posts in each watch's window (HMGET of its hours): one round trip per
        PIPELINE_MAX commands."""
        hours = window_hours_of(hour_of(now), self.config)
        by_day: dict[int, list[int]] = {}
        for hour in hours:
            by_day.setdefault(day_of(hour), []).append(hour % 24)

        def queue(pipe: Any, watch: int) -> None:
            for day, fields in by_day.items():
                pipe.hmget(keys.surge_hours(watch, day), fields)

        out: dict[int, int] = {}
        async for part, replies in self._read_in_parts(watch_ids, len(by_day), queue):
            for n, watch in enumerate(part):
                at = n * len(by_day)
                out[watch] = sum(
                    int(v) for reply in replies[at : at + len(by_day)] for v in reply if v
                )
        return out

    async def windows(
        self, watch_ids: Sequence[int], now: float
    ) -> tuple[dict[int, SurgeWindow], dict[int, DayHours], set[int], float | None]:
        """Each watch's window with its channels, its hours of today and yesterday, the
        watches cooling down at `now`, and the epoch: one round trip per PIPELINE_MAX
        commands."""
        cfg = self.config
        end = hour_of(now)
        today = day_of(end)
        hours = window_hours_of(end, cfg)

        def queue(pipe: Any, watch: int) -> None:
            pipe.hgetall(keys.surge_hours(watch, today - 1))
            pipe.hgetall(keys.surge_hours(watch, today))
            for hour in hours:
                pipe.hgetall(keys.surge_channels(watch, hour))
            pipe.get(keys.surge_cooldown(watch))

        raw_epoch = None if watch_ids else await self._redis.get(keys.SURGE_EPOCH)
        windows: dict[int, SurgeWindow] = {}
        recent: dict[int, DayHours] = {}
        cooling: set[int] = set()
        elapsed = (now - end * HOUR_S) / HOUR_S
        parts = self._read_in_parts(
            watch_ids, 3 + len(hours), queue, head=lambda pipe: pipe.get(keys.SURGE_EPOCH)
        )
        async for part, replies in parts:
            raw_epoch = replies[0]
            i = 1
            for watch in part:
                days = {today - 1: _int_map(replies[i]), today: _int_map(replies[i + 1])}
                i += 2
                channels: Counter[int] = Counter()
                for _hour in hours:
                    channels.update(_int_map(replies[i]))
                    i += 1
                if _until(replies[i]) > now:
                    cooling.add(watch)
                i += 1
                posts = sum(days.get(day_of(h), {}).get(h % 24, 0) for h in hours)
                windows[watch] = SurgeWindow(watch, end, posts, dict(channels), elapsed)
                recent[watch] = days
        epoch = float(raw_epoch) if raw_epoch else None
        return windows, recent, cooling, epoch

    async def history(self, watch_ids: Sequence[int], today: int) -> dict[int, DayGrid]:
        """Each watch's hours over the baseline's days before today: one round trip per
        PIPELINE_MAX days read."""
        days = range(today - self.config.baseline_days, today)

        def queue(pipe: Any, watch: int) -> None:
            for day in days:
                pipe.hgetall(keys.surge_hours(watch, day))

        out: dict[int, DayGrid] = {}
        async for part, replies in self._read_in_parts(watch_ids, max(1, len(days)), queue):
            for n, watch in enumerate(part):
                at = n * len(days)
                filled = {
                    day: hours
                    for day, reply in zip(days, replies[at : at + len(days)], strict=True)
                    if (hours := _int_map(reply))
                }
                # From its first day with a post: a watch new or quiet takes no room.
                first = min(filled, default=today)
                grid = DayGrid(first, today - first)
                for day, hours in filled.items():
                    grid.fill(day, hours)
                out[watch] = grid
        return out

    async def hourly(self, watch_id: int, now: float, hours: int = 72) -> list[int]:
        """Posts per hour over the last `hours` hours, oldest first (charts, /stats)."""
        end = hour_of(now)
        first = end - hours + 1
        days = sorted({day_of(h) for h in range(first, end + 1)})
        async with self._redis.pipeline(transaction=False) as pipe:
            for day in days:
                pipe.hgetall(keys.surge_hours(watch_id, day))
            replies: list[Any] = await pipe.execute()
        by_day = {d: _int_map(r) for d, r in zip(days, replies, strict=True)}
        return [by_day[day_of(h)].get(h % 24, 0) for h in range(first, end + 1)]

    async def daily(
        self, watch_ids: Sequence[int], now: float, days: int = 14
    ) -> dict[int, list[int]]:
        """Posts per UTC day over the last `days` days, oldest first, per watch (/stats
        trends): one round trip."""
        today = day_of(hour_of(now))
        span = range(today - days + 1, today + 1)
        async with self._redis.pipeline(transaction=False) as pipe:
            for watch in watch_ids:
                for day in span:
                    pipe.hvals(keys.surge_hours(watch, day))
            replies: list[Any] = await pipe.execute()
        out: dict[int, list[int]] = {}
        i = 0
        for watch in watch_ids:
            row = []
            for _day in span:
                row.append(sum(int(v) for v in replies[i] or ()))
                i += 1
            out[watch] = row
        return out

    async def claim(self, watch_ids: Sequence[int], now: float | None = None) -> set[int]:
        """Start the cooldown of each watch not cooling down at `now`; returns those claimed
        (one alert each). One script call: the check and the set are one step, so of several
        workers seeing one surge exactly one claims it."""
        if not watch_ids:
            return set()
        now = time.time() if now is None else now
        cooldown = self.config.cooldown_s
        replies = await self._redis.eval(
            _CLAIM,
            len(watch_ids),
            *(keys.surge_cooldown(w) for w in watch_ids),
            f"{now:.3f}",
            f"{now + cooldown:.3f}",
            cooldown,
        )
        return {w for w, ok in zip(watch_ids, replies, strict=True) if int(ok)}

    async def sample_refs(
        self, watch_ids: Sequence[int], now: float
    ) -> dict[int, tuple[list[PostKey], list[PostKey]]]:
        """One round trip: per watch, the refs of its window's posts and of its baseline sample
        (days before today)."""
        cfg = self.config
        end = hour_of(now)
        hours = window_hours_of(end, cfg)
        today = day_of(end)
        days = range(today - cfg.sample_days, today)
        async with self._redis.pipeline(transaction=False) as pipe:
            for watch in watch_ids:
                for hour in hours:
                    pipe.lrange(keys.surge_recent(watch, hour), 0, -1)
                for day in days:
                    pipe.lrange(keys.surge_sample(watch, day), 0, -1)
            replies: list[Any] = await pipe.execute()
        out: dict[int, tuple[list[PostKey], list[PostKey]]] = {}
        i = 0
        for watch in watch_ids:
            window: list[PostKey] = []
            for _hour in hours:
                window += [k for r in replies[i] if (k := _parse_ref(str(r)))]
                i += 1
            base: list[PostKey] = []
            for _day in days:
                base += [k for r in replies[i] if (k := _parse_ref(str(r)))]
                i += 1
            seen = set(window)
            out[watch] = (window, [k for k in dict.fromkeys(base) if k not in seen])
        return out

    async def examples(
        self, watch_id: int, now: float | None = None, limit: int = 5
    ) -> list[Post]:
        """The latest archived posts of a watch's current window (the alert's Examples
        button)."""
        now = time.time() if now is None else now
        refs = (await self.sample_refs([watch_id], now))[watch_id][0]
        posts = await self.archive.get_many(refs)
        latest = sorted(posts.values(), key=lambda p: (p.date, p.channel_id), reverse=True)
        return latest[:limit]

    # --- surge alerts: what an alert leaves behind, and who wants them ----------------------

    async def record_surges(
        self, alerts: Sequence[SurgeAlert], refs: Mapping[int, Sequence[PostKey]]
    ) -> None:
        """Keep each alert and its window's post refs for `event_ttl_s` (its Examples button
        reads them after the window's own lists have expired), and note it not told yet
        (`keys.SURGE_UNSENT`, by the time of the decision) in the same MULTI: a crash after
        the record always leaves the surge to be told by the next start. Notes older than the
        records are dropped. One round trip."""
        if not alerts:
            return
        now = time.time()
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zadd(
                keys.SURGE_UNSENT,
                {surge_ref(a.watch_id, a.end_hour): now for a in alerts},
            )
            pipe.zremrangebyscore(keys.SURGE_UNSENT, "-inf", now - self.event_ttl_s)
            for alert in alerts:
                body = alert.to_dict()
                body["refs"] = [_ref(c, m) for c, m in refs.get(alert.watch_id, ())]
                pipe.set(
                    keys.surge_event(alert.watch_id, alert.end_hour),
                    json.dumps(body, ensure_ascii=False, separators=(",", ":")),
                    ex=self.event_ttl_s,
                )
            await pipe.execute()

    async def surge_event(
        self, watch_id: int, end_hour: int
    ) -> tuple[SurgeAlert, list[PostKey]] | None:
        """The surge alert recorded for (watch, end hour) and its posts' refs, or None."""
        raw = await self._redis.get(keys.surge_event(watch_id, end_hour))
        if not raw:
            return None
        try:
            data = json.loads(raw)
            refs = [k for r in data.pop("refs", []) if (k := _parse_ref(str(r)))]
            return SurgeAlert.from_dict(data), refs
        except (ValueError, KeyError, TypeError):
            log.warning("campaigns: malformed surge event %s:%s", watch_id, end_hour)
            return None

    async def surge_posts(self, refs: Sequence[PostKey]) -> list[Post]:
        """The archived posts of a surge (newest first); those gone from the archive are left
        out."""
        posts = await self.archive.get_many(list(refs)) if refs else {}
        return sorted(posts.values(), key=lambda p: (p.date, p.channel_id), reverse=True)

    async def keep_chart(self, watch_id: int, end_hour: int, png: bytes) -> str:
        """Store a surge alert's chart once for all its recipients; returns its reference for
        the notices (`surge:<watch>:<end hour>`)."""
        await self._redis.set(
            keys.surge_png(watch_id, end_hour), base64.b64encode(png).decode(), ex=self.png_ttl_s
        )
        return f"surge:{watch_id}:{end_hour}"

    async def chart(self, ref: str) -> bytes | None:
        """The PNG a notice refers to, or None once expired (or for a malformed ref)."""
        kind, _, rest = ref.partition(":")
        parsed = _parse_ref(rest)
        if kind != "surge" or parsed is None:
            return None
        raw = await self._redis.get(keys.surge_png(*parsed))
        if not raw:
            return None
        try:
            return base64.b64decode(raw, validate=True)
        except (ValueError, binascii.Error):
            return None

    async def surges_off(self, watch_ids: Sequence[int]) -> set[int]:
        """Those of `watch_ids` whose analyst turned surge alerts off. One round trip."""
        if not watch_ids:
            return set()
        flags = await self._redis.smismember(keys.SURGE_OFF, list(watch_ids))
        return {w for w, off in zip(watch_ids, flags, strict=True) if off}

    async def set_surges(self, watch_id: int, on: bool) -> None:
        """Turn a watch's surge alerts on or off."""
        if on:
            await self._redis.srem(keys.SURGE_OFF, watch_id)
        else:
            await self._redis.sadd(keys.SURGE_OFF, watch_id)

    async def prune_surges_off(self, exists: Callable[[list[int]], Awaitable[set[int]]]) -> int:
        """Drop the watches that no longer exist from the off set (`exists` says which of some
        ids still do), so it holds at most one member per live watch. Returns how many went."""
        members = sorted({int(m) for m in await self._redis.smembers(keys.SURGE_OFF)})
        gone = sorted(set(members) - await exists(members)) if members else []
        if gone:
            await self._redis.srem(keys.SURGE_OFF, *gone)
        return len(gone)

    # --- a story's spread ------------------------------------------------------------------

    def spread_commands(
        self, pipe: Any, first: PostKey, post: Post, *, kind: CopyKind = "copy"
    ) -> None:
        """Record `post` as a post of the story whose first post is `first` (a copy, a
        forward, or, with kind 'first', the first post itself)."""
        fwd = post.forward
        record: dict[str, Any] = {"c": post.channel_id, "m": post.message_id, "k": kind}
        if post.username:
            record["u"] = post.username
        if fwd is not None:
            if fwd.channel_id is not None:
                record["fc"] = fwd.channel_id
            if fwd.message_id is not None:
                record["fm"] = fwd.message_id
            if fwd.name:
                record["fn"] = fwd.name
        key = keys.story_spread(*first)
        member = json.dumps(record, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        pipe.zadd(key, {member: post.date.timestamp()}, nx=True)
        # The earliest posts tell how a story spread: past the cap, the latest go.
        pipe.zremrangebyrank(key, self.spread_cap, -1)
        pipe.expire(key, self.spread_ttl_s)

    async def spread(self, first: PostKey) -> tuple[SpreadRecord | None, list[SpreadRecord]]:
        """The story's first post (from the archive, or its own record) and its records."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zrange(keys.story_spread(*first), 0, -1, withscores=True)
            pipe.get(keys.archive_post(*first))
            raw, archived = await pipe.execute()
        records: list[SpreadRecord] = []
        for member, score in raw or ():
            try:
                data = json.loads(member)
                records.append(
                    SpreadRecord(
                        channel_id=int(data["c"]),
                        message_id=int(data["m"]),
                        at=float(score),
                        kind=data.get("k", "copy"),
                        username=data.get("u"),
                        forward_channel_id=data.get("fc"),
                        forward_message_id=data.get("fm"),
                        forward_name=data.get("fn"),
                    )
                )
            except (ValueError, KeyError, TypeError):
                log.warning("campaigns: malformed spread record of %s:%s", *first)
        head: SpreadRecord | None = None
        if archived:
            try:
                post = Post.from_json(archived)
                head = SpreadRecord(
                    channel_id=post.channel_id,
                    message_id=post.message_id,
                    at=post.date.timestamp(),
                    kind="first",
                    username=post.username,
                )
            except ValueError:
                head = None
        if head is None:
            head = next((r for r in records if r.key == first), None)
        return head, records

    # --- forward edges -----------------------------------------------------------------------

    def forward_commands(
        self, pipe: Any, posts: Iterable[Post], *, now: float | None = None
    ) -> None:
        """Count the forwards among a batch's (new) posts: source channel -> this channel, per
        day of the post; posts older than the edges' window are left out."""
        now = time.time() if now is None else now
        oldest = day_of(hour_of(now)) - self.edges_days
        edges: dict[int, Counter[str]] = {}
        names: dict[int, dict[str, str]] = {}
        via: dict[int, dict[str, str]] = {}
        for post in posts:
            fwd = post.forward
            if fwd is None or fwd.channel_id is None or fwd.channel_id == post.channel_id:
                continue
            day = day_of(hour_of(post.date.timestamp()))
            if day < oldest:
                continue
            edges.setdefault(day, Counter())[f"{fwd.channel_id}:{post.channel_id}"] += 1
            via.setdefault(day, {})[str(fwd.channel_id)] = _ref(post.channel_id, post.message_id)
            if fwd.name:
                names.setdefault(day, {})[str(fwd.channel_id)] = fwd.name
        ttl = (self.edges_days + 1) * DAY_S
        for day, pairs in sorted(edges.items()):
            key = keys.forward_edges(day)
            for pair, n in sorted(pairs.items()):
                pipe.zincrby(key, n, pair)
            pipe.zremrangebyrank(key, 0, -(self.edges_cap + 1))  # the weakest pairs go
            pipe.expire(key, ttl)
            if day in names:
                pipe.hset(keys.forward_names(day), mapping=names[day])
                pipe.expire(keys.forward_names(day), ttl)
            pipe.hset(keys.forward_via(day), mapping=via[day])
            pipe.expire(keys.forward_via(day), ttl)

    async def forwarded_via(
        self, source: int, *, limit: int = 3, now: float | None = None
    ) -> list[PostKey]:
        """Posts of other channels that forwarded channel `source`, newest day first (one a
        day, at most `limit`): where Telegram lets an account find a channel it has no access
        hash for. Empty when the edges' window holds none."""
        now = time.time() if now is None else now
        today = day_of(hour_of(now))
        days = range(today, today - self.edges_days - 1, -1)
        async with self._redis.pipeline(transaction=False) as pipe:
            for day in days:
                pipe.hget(keys.forward_via(day), str(source))
            replies: list[Any] = await pipe.execute()
        found: list[PostKey] = []
        for raw in replies:
            ref = _parse_ref(str(raw)) if raw is not None else None
            if ref is not None and ref not in found:
                found.append(ref)
        return found[:limit]

    async def forwards(
        self, *, days: int | None = None, now: float | None = None
    ) -> tuple[list[ForwardEdge], dict[int, str]]:
        """Forward edges summed over the last `days` days, and the sources' names."""
        now = time.time() if now is None else now
        days = min(days or self.edges_days, self.edges_days)
        today = day_of(hour_of(now))
        span = range(today - days + 1, today + 1)
        async with self._redis.pipeline(transaction=False) as pipe:
            for day in span:
                pipe.zrange(keys.forward_edges(day), 0, -1, withscores=True)
                pipe.hgetall(keys.forward_names(day))
            replies: list[Any] = await pipe.execute()
        totals: Counter[tuple[int, int]] = Counter()
        names: dict[int, str] = {}
        for i in range(0, len(replies), 2):
            for pair, score in replies[i] or ():
                ref = _parse_ref(str(pair))
                if ref is not None:
                    totals[ref] += int(score)
            for source, name in (replies[i + 1] or {}).items():
                try:
                    names[int(source)] = str(name)
                except ValueError:
                    continue
        edges = [ForwardEdge(s, t, n) for (s, t), n in sorted(totals.items())]
        return edges, names


@dataclass(slots=True)
class _History:
    today: int
    days: DayGrid


class SurgeTracker:
    """Surge detection for one triage worker: it remembers which watches its batches touched
    and, on `check`, decides for those (several workers may check the same watch: the
    cooldown claim makes one alert).

    A check costs one round trip (each watch's window count), one more for watches over the
    posts floor (channels, cooldown), one for those whose history is not cached (past days do
    not change, so a watch's history is read once a day), and four when there are surges
    (cooldown claims, sample refs, the archived posts, the alerts' record). A read of more
    than PIPELINE_MAX commands (thousands of watches touched, or the history of hundreds) is
    sent in parts, one round trip each, so a check's memory does not grow with the watches.
    """

    def __init__(
        self,
        repo: CampaignRepository,
        *,
        created_at: Callable[[int], float | None] | None = None,
        cache_watches: int = 4096,
    ) -> None:
        self.repo = repo
        self.config = repo.config
        self._created_at = created_at
        self._dirty: set[int] = set()
        self._history: OrderedDict[int, _History] = OrderedDict()
        self._cache_watches = cache_watches
        self.round_trips = 0

    def observe(self, counts: SurgeCounts) -> None:
        """Note a batch's counts (after `count_commands` queued them)."""
        self._dirty |= counts.watches

    def count_commands(self, pipe: Any, counts: SurgeCounts, *, now: float | None = None) -> None:
        """Queue the counts in the batch pipeline and remember the watches to check."""
        self.repo.count_commands(pipe, counts, now=now)
        self.observe(counts)

    @property
    def pending(self) -> int:
        return len(self._dirty)

    async def check(self, now: float | None = None) -> list[SurgeAlert]:
        """Decide for the watches seen since the last check; returns the alerts to send (each
        watch's cooldown is already claimed)."""
        if not self._dirty:
            return []
        now = time.time() if now is None else now
        cfg = self.config
        watch_ids = sorted(self._dirty)
        self._dirty.clear()
        # Most watches a batch touched are nowhere near the floor: their window's count alone
        # (one command each) rules them out before channels, cooldown and history are read.
        posts = await self.repo.window_posts(watch_ids, now)
        self.round_trips += 1
        busy = [w for w in watch_ids if posts[w] >= cfg.min_posts]
        if not busy:
            return []
        windows, recent, cooling, epoch = await self.repo.windows(busy, now)
        self.round_trips += 1
        candidates = [w for w in busy if w not in cooling and worth_checking(windows[w], cfg)]
        if not candidates:
            return []
        today = day_of(hour_of(now))
        missing = [w for w in candidates if self._cached(w, today) is None]
        if missing:
            for watch, grid in (await self.repo.history(missing, today)).items():
                self._remember(watch, _History(today, grid))
            self.round_trips += 1
        surges: list[tuple[int, float, Any, DayHours, int]] = []
        for watch in candidates:
            hist = self._cached(watch, today)
            assert hist is not None
            days: dict[int, Mapping[int, int]] = dict(hist.days)
            days[today] = recent[watch][today]  # today's hours are this read's
            since = self._since_day(watch, epoch, now)
            baseline = baseline_of(window_samples(days, windows[watch].end_hour, since, cfg))
            ratio = surge_ratio(windows[watch], baseline, cfg)
            if ratio is not None:
                surges.append((watch, ratio, baseline, days, since))
        if not surges:
            return []
        won = await self.repo.claim([s[0] for s in surges], now)
        self.round_trips += 1
        surges = [s for s in surges if s[0] in won]
        if not surges:
            return []
        words, window_refs = await self._new_words([s[0] for s in surges], windows, now)
        alerts = [
            make_alert(
                windows[watch],
                baseline,
                ratio,
                cfg,
                words=words.get(watch, ()),
                day_hours=days,
                since_day=since,
            )
            for watch, ratio, baseline, days, since in surges
        ]
        await self.repo.record_surges(alerts, window_refs)  # the Examples button's posts
        self.round_trips += 1
        return alerts

    async def _new_words(
        self, watch_ids: list[int], windows: Mapping[int, SurgeWindow], now: float
    ) -> tuple[dict[int, tuple[str, ...]], dict[int, list[PostKey]]]:
        """The words new against the baseline per watch, and its window's post refs."""
        refs = await self.repo.sample_refs(watch_ids, now)
        wanted = sorted({k for window, base in refs.values() for k in (*window, *base)})
        posts = await self.repo.archive.get_many(wanted) if wanted else {}
        self.round_trips += 2
        words: dict[PostKey, tuple[str, ...]] = {}
        for key, post in posts.items():
            words[key] = tuple(t.text for t in normalise(post.text).tokens)
        out: dict[int, tuple[str, ...]] = {}
        for watch in watch_ids:
            window_refs, base_refs = refs[watch]
            now_posts = [words[k] for k in window_refs if k in words]
            before = [words[k] for k in base_refs if k in words]
            out[watch] = new_words(
                word_posts(now_posts, self.config),
                len(now_posts),
                word_posts(before, self.config),
                len(before),
                self.config,
            )
        return out, {watch: refs[watch][0] for watch in watch_ids}

    def _since_day(self, watch: int, epoch: float | None, now: float) -> int:
        start = epoch if epoch is not None else now
        created = self._created_at(watch) if self._created_at else None
        if created:
            start = max(start, created)
        # The first whole day: the day counting began is partly empty.
        return day_of(hour_of(start + DAY_S - 1))

    def _cached(self, watch: int, today: int) -> _History | None:
        hist = self._history.get(watch)
        if hist is None or hist.today != today:
            return None
        self._history.move_to_end(watch)
        return hist

    def _remember(self, watch: int, hist: _History) -> None:
        self._history[watch] = hist
        self._history.move_to_end(watch)
        while len(self._history) > self._cache_watches:
            self._history.popitem(last=False)
