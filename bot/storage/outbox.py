"""The alert outbox: how triage appends alerts to the alerts stream, and how delivery reads them.

Alerts go through one Lua script per batch that checks and records the (post, analyst, version)
ledger (`keys.alerts_made`, a hash per post) in the same step as the XADD, so a batch
redelivered after a crash adds nothing. (Notices and released held alerts are still appended
by their own modules; moving them here is open work.)

An alert entry references the archived post instead of copying it: `ref` is the post's
`channel:message` (`keys.archive_post`, written by the same batch before the alert), `stub` a
few bytes of the post's identity (date, edit date, event, username, title: what the alert is
about and what a link needs), `job` the alert's own fields. Delivery reads through
`AlertConsumer`, which hydrates every entry of a read batch from the archive in one MGET, so
the delivery worker sees whole posts (and held alerts and dead letters keep them whole). A post
that left the archive before its alert was delivered arrives as its stub with
`texts.ALERT_POST_GONE` for text and a link to it (logged; never dropped); one edited or
deleted since keeps the alert's version with the newest archived text, without highlights.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

import redis.asyncio as aioredis

from bot import texts
from bot.alerts import AlertJob, parse_post_ref, post_stub, read_stub, text_sum
from bot.models import Post, PostFormatError
from bot.storage import keys
from bot.storage.streams import DEFAULT_MAXLEN, StreamConsumer, StreamEntry

log = logging.getLogger(__name__)

# KEYS[1] the alerts stream, KEYS[2..] the ledger hashes (`keys.alerts_made`), one per post.
# ARGV[1] maxlen, ARGV[2] ttl, ARGV[3] number of posts P, ARGV[4 .. 3+2P] each post's ref and
# stub, then ARGV[4+2P] every job as one JSON list of [analyst, version, mode, post index,
# ledger index (both 1-based), the job's other fields as an object] (one argument, not six per
# job: encoding tens of thousands of arguments and parsing a reply per job cost the worker more
# than the script itself).
# mode 'first': only if the analyst was never alerted on this post (new posts, copies);
# mode 'newer': only if the recorded version is older (edits, deletions).
# Returns one character per job: '1' appended, '0' not.
_EMIT_MANY = """
local out = {}
local posts = tonumber(ARGV[3])
local jobs = cjson.decode(ARGV[4 + 2 * posts])
for k = 1, #jobs do
  local job = jobs[k]
  local analyst, version, mode = job[1], job[2], job[3]
  local ledger = KEYS[1 + job[5]]
  local cur = redis.call('HGET', ledger, analyst)
  local ok = '1'
  if mode == 'first' and cur then ok = '0' end
  if cur and tonumber(cur) >= tonumber(version) then ok = '0' end
  if ok == '1' then
    local p = 2 + 2 * job[4]
    redis.call('HSET', ledger, analyst, version)
    redis.call('EXPIRE', ledger, ARGV[2])
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*',
      'type', 'alert', 'analyst', analyst, 'ref', ARGV[p], 'stub', ARGV[p + 1],
      'job', cjson.encode(job[6]))
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
        """Append each alert its ledger allows, in order; True per job appended. One script
        call per `MAX_JOBS_PER_CALL` alerts, sent in one round trip."""
        if not emissions:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            calls = self.emit_commands(pipe, emissions)
            replies: list[Any] = await pipe.execute()
        return self.emitted(replies[-calls:])

    def emit_commands(self, pipe: Any, emissions: Sequence[Emission]) -> int:
        """Queue the alert appends on a caller's pipeline (after the archive writes they
        reference, so the triage batch writes everything in one round trip). Returns how many
        commands were queued: their replies, given to `emitted`, say which were appended."""
        calls = 0
        refs: dict[int, tuple[str, str]] = {}  # id() of a Post -> its ref and stub, built once
        for start in range(0, len(emissions), MAX_JOBS_PER_CALL):
            chunk = emissions[start : start + MAX_JOBS_PER_CALL]
            posts: dict[tuple[str, str], int] = {}
            ledgers: dict[tuple[int, int], int] = {}
            jobs: list[Any] = []
            for e in chunk:
                post = e.job.post
                ref = refs.get(id(post))
                if ref is None:
                    ref = refs[id(post)] = (
                        f"{post.channel_id}:{post.message_id}",
                        post_stub(post),
                    )
                index = posts.setdefault(ref, len(posts) + 1)
                ledger = ledgers.setdefault(e.ledger_post[:2], len(ledgers) + 1)
                version = str(e.ledger_post[2])
                rest = e.job.rest()
                jobs.append((str(e.job.analyst_id), version, e.mode.value, index, ledger, rest))
            names = [keys.ALERTS_STREAM, *(keys.alerts_made(c, m) for c, m in ledgers)]
            payload = json.dumps(jobs, ensure_ascii=False, separators=(",", ":"))
            flat = [x for pair in posts for x in pair]
            # EVAL, not the registered script: those cannot be queued on an asyncio pipeline;
            # Redis caches the compiled script by its hash all the same.
            pipe.eval(
                _EMIT_MANY,
                len(names),
                *names,
                self._maxlen,
                self.ledger_ttl_s,
                len(posts),
                *flat,
                payload,
            )
            calls += 1
        return calls

    @staticmethod
    def emitted(replies: Sequence[Any]) -> list[bool]:
        """The flags of `emit_commands`' replies: True per job appended."""
        return [flag == "1" for reply in replies for flag in str(reply)]

    async def hydrate(self, entries: Sequence[StreamEntry]) -> list[StreamEntry]:
        """Each alert entry that references its post, with the archived post as its `post`
        field (one MGET for the whole batch); other entries unchanged."""
        wanted = {
            e.fields["ref"]
            for e in entries
            if "post" not in e.fields and "ref" in e.fields and e.fields.get("type") == "alert"
        }
        if not wanted:
            return list(entries)
        refs = sorted(wanted)
        ids = [parse_post_ref(r) for r in refs]
        raw: Any = await self._redis.mget([keys.archive_post(c, m) for c, m in ids])
        archived = dict(zip(refs, raw, strict=True))
        return [_hydrated(e, archived) if e.fields.get("ref") in wanted else e for e in entries]

    def alerted_commands(self, pipe: Any, posts: Iterable[tuple[int, int]]) -> None:
        """Queue, per post, the read of who was alerted on it (see `alerted_replies`)."""
        for channel_id, message_id in posts:
            pipe.hkeys(keys.alerts_made(channel_id, message_id))


@dataclass
class AlertConsumer(StreamConsumer):
    """The delivery group's consumer of the alerts stream: every batch it reads (own pending,
    reclaimed or new) comes hydrated from the archive (`AlertOutbox.hydrate`)."""

    outbox: AlertOutbox | None = None

    async def read(self, count: int = 100, block_ms: int | None = 1000) -> list[StreamEntry]:
        return await self._hydrate(await super().read(count, block_ms))

    async def reclaim(self, count: int = 100) -> list[StreamEntry]:
        return await self._hydrate(await super().reclaim(count))

    async def _hydrate(self, entries: list[StreamEntry]) -> list[StreamEntry]:
        if self.outbox is None or not entries:
            return entries
        return await self.outbox.hydrate(entries)


def _hydrated(entry: StreamEntry, archived: dict[str, Any]) -> StreamEntry:
    fields = dict(entry.fields)
    ref = fields["ref"]
    try:
        stub, checksum = read_stub(ref, fields.get("stub", ""))
    except ValueError:
        return entry  # left as it is: delivery dead-letters it as malformed
    raw = archived.get(ref)
    post: Post | None = None
    if raw:
        try:
            post = Post.from_json(str(raw))
        except PostFormatError:
            log.warning("outbox: the archived post %s is unreadable", ref)
    if post is None:
        # Left the archive before its alert was delivered: the alert still goes, saying so.
        log.warning("outbox: post %s left the archive before its alert; sent with a link", ref)
        fields["post"] = replace(stub, text=texts.ALERT_POST_GONE).to_json()
        fields["job"] = _without_spans(fields.get("job", "{}"))
        fields["hydrated"] = "gone"
        return StreamEntry(entry.id, fields, entry.deliveries)
    if post.version != stub.version:
        # Edited or deleted since: the archived text, under the version this alert is about
        # (both ledgers key on it).
        post = replace(post, edit_date=stub.edit_date, event=stub.event)
        fields["post"] = post.to_json()
    else:
        fields["post"] = str(raw)
    if checksum is not None and text_sum(post) != checksum:
        # Edited since: the highlights were for the text it matched, which is gone.
        fields["job"] = _without_spans(fields.get("job", "{}"))
        fields["hydrated"] = "newer"
    return StreamEntry(entry.id, fields, entry.deliveries)


def _without_spans(job: str) -> str:
    try:
        data = json.loads(job)
    except json.JSONDecodeError:
        return job  # delivery dead-letters it as malformed
    if isinstance(data, dict):
        data["spans"] = "[]"
    return json.dumps(data, ensure_ascii=False)
