"""The alert outbox: how triage appends alerts to the alerts stream.

Alerts go through one Lua script per batch that checks and records the (post, analyst, version)
ledger (`keys.alerts_made`, a hash per post) in the same step as the XADD, so a batch
redelivered after a crash adds nothing. (Notices and released held alerts are still appended
by their own modules; moving them here is open work.)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import redis.asyncio as aioredis

from bot.alerts import AlertJob
from bot.storage import keys
from bot.storage.streams import DEFAULT_MAXLEN

# KEYS[1] the alerts stream, KEYS[2..] the ledger hash of each job's post.
# ARGV[1] maxlen, ARGV[2] ttl, ARGV[3] number of posts P, ARGV[4 .. 3+P] the posts' JSON, then
# ARGV[4+P] every job as one JSON list of [analyst, version, mode, post index (1-based), the
# job's other fields as an object] (one argument, not five per job: encoding tens of thousands
# of arguments and parsing a reply per job cost the worker more than the script itself).
# mode 'first': only if the analyst was never alerted on this post (new posts, copies);
# mode 'newer': only if the recorded version is older (edits, deletions).
# Returns one character per job: '1' appended, '0' not.
_EMIT_MANY = """
local out = {}
local posts = tonumber(ARGV[3])
local jobs = cjson.decode(ARGV[4 + posts])
for k = 2, #KEYS do
  local job = jobs[k - 1]
  local analyst, version, mode = job[1], job[2], job[3]
  local cur = redis.call('HGET', KEYS[k], analyst)
  local ok = '1'
  if mode == 'first' and cur then ok = '0' end
  if cur and tonumber(cur) >= tonumber(version) then ok = '0' end
  if ok == '1' then
    redis.call('HSET', KEYS[k], analyst, version)
    redis.call('EXPIRE', KEYS[k], ARGV[2])
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*',
      'type', 'alert', 'analyst', analyst, 'post', ARGV[3 + job[4]],
      'job', cjson.encode(job[5]))
  end
  out[#out + 1] = ok
end
return table.concat(out)
"""
MAX_JOBS_PER_CALL = 200  # one script call blocks Redis for its length: keep it to milliseconds


class EmitMode(StrEnum):
    FIRST = "first"
    NEWER = "newer"


@dataclass(frozen=True, slots=True)
class Emission:
    """One alert to append unless the ledger of `ledger_post` (channel, message, version) says
    the analyst already had it."""

    job: AlertJob
    mode: EmitMode
    ledger_post: tuple[int, int, int]


class AlertOutbox:
    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        maxlen: int = DEFAULT_MAXLEN,
        ledger_ttl_s: int = 30 * 86400,
    ) -> None:
        self._redis = redis
        self._maxlen = maxlen
        self.ledger_ttl_s = ledger_ttl_s
        self._emit: Any = redis.register_script(_EMIT_MANY)

    async def emit_many(self, emissions: Sequence[Emission]) -> list[bool]:
        """Append each alert its ledger allows, in order; True per job appended."""
        out: list[bool] = []
        for start in range(0, len(emissions), MAX_JOBS_PER_CALL):
            chunk = emissions[start : start + MAX_JOBS_PER_CALL]
            posts: dict[str, int] = {}
            by_post: dict[int, str] = {}  # id() of a Post -> its JSON, encoded once
            jobs: list[Any] = []
            for e in chunk:
                post = by_post.get(id(e.job.post))
                if post is None:
                    post = by_post[id(e.job.post)] = e.job.post.to_json()
                index = posts.setdefault(post, len(posts) + 1)
                jobs.append(
                    (
                        str(e.job.analyst_id),
                        str(e.ledger_post[2]),
                        e.mode.value,
                        index,
                        e.job.rest(),
                    )
                )
            payload = json.dumps(jobs, ensure_ascii=False, separators=(",", ":"))
            args: list[Any] = [self._maxlen, self.ledger_ttl_s, len(posts), *posts, payload]
            result = await self._emit(
                keys=[keys.ALERTS_STREAM, *(keys.alerts_made(*e.ledger_post[:2]) for e in chunk)],
                args=args,
            )
            out.extend(flag == "1" for flag in str(result))
        return out

    def alerted_commands(self, pipe: Any, posts: Iterable[tuple[int, int]]) -> None:
        """Queue, per post, the read of who was alerted on it (see `alerted_replies`)."""
        for channel_id, message_id in posts:
            pipe.hkeys(keys.alerts_made(channel_id, message_id))
