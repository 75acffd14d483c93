"""The alert outbox: how triage appends alerts to the alerts stream, and how delivery reads them.

Alerts go through one Lua script per batch that checks and records the (post, analyst, version)
ledger (`keys.alerts_made`, a hash per post) in the same step as the XADD, so a batch
redelivered after a crash adds nothing. (Notices and released held alerts are still appended
by their own modules; moving them here is open work.) A surge's notices come through here too
(`tell_surge`): appended in the same step as the surge is marked told.

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
from json.encoder import encode_basestring as _q  # a JSON string, as json.dumps writes it
from typing import Any, NamedTuple

import redis.asyncio as aioredis

from bot import texts
from bot.alerts import AlertJob, Notice, parse_post_ref, post_stub, read_stub, text_sum
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
# KEYS[1] the alerts stream, KEYS[2] `keys.SURGE_UNSENT`; ARGV[1] maxlen, ARGV[2] the surge's
# ref, ARGV[3] its notices as a JSON list of flat [field, value, ...] lists. The notices are
# appended only by whoever removes the surge from the unsent set: once, whichever worker (a
# restarted one re-sending, or another sweeping stale ones) gets there first.
_TELL_SURGE = """
if redis.call('ZREM', KEYS[2], ARGV[2]) == 0 then return 0 end
local notices = cjson.decode(ARGV[3])
for i = 1, #notices do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(notices[i]))
end
return 1
"""
MAX_JOBS_PER_CALL = 200  # one script call blocks Redis for its length: keep it to milliseconds


class EmitMode(StrEnum):
    FIRST = "first"
    NEWER = "newer"


class Emission(NamedTuple):
    """One alert to append unless the ledger of `ledger_post` (channel, message, version) says
    the analyst already had it. (A tuple: the worker makes one per alert, seven a post.)"""

    job: AlertJob
    mode: EmitMode
    ledger_post: tuple[int, int, int]


class JobEncoder:
    """The script's job entries as JSON text: what `json.dumps` makes of [analyst, version,
    mode, post index, ledger index, `AlertJob.rest()`], built from pieces that repeat across a
    batch's alerts (a watch and its query, a priority and its reasons, a post's language), each
    escaped once. Encoding every alert's dict whole was the worker's largest cost after
    matching (about 14 µs an alert, seven alerts a post at 10,000 watches)."""

    MAX_PIECES = 8192  # per kind; a batch needs far fewer

    def __init__(self) -> None:
        self._watch: dict[tuple[int, str], str] = {}
        self._why: dict[tuple[str, tuple[str, ...]], str] = {}
        self._tail: dict[tuple[Any, ...], str] = {}

    def job(self, e: Emission, index: int, ledger: int) -> str:
        j = e.job
        analyst = str(j.analyst_id)
        watch = self._watch.get((j.watch_id, j.watch_query))
        if watch is None:
            watch = self._put(
                self._watch,
                (j.watch_id, j.watch_query),
                f',"watch":"{j.watch_id}","query":{_q(j.watch_query)}',
            )
        why = self._why.get((j.priority, j.reasons))
        if why is None:
            why = self._put(
                self._why,
                (j.priority, j.reasons),
                f',"priority":{_q(j.priority)},"reasons":{_q(_json_list(j.reasons))}',
            )
        key = (
            j.language,
            j.language_confidence,
            j.kind,
            j.also_in,
            j.held,
            j.origin,
            j.previous,
        )
        tail = self._tail.get(key)
        if tail is None:
            tail = self._put(self._tail, key, _tail(j))
        if len(j.spans) == 1:  # most alerts: one word matched
            ((a, b),) = j.spans
            spans = f"[[{a}, {b}]]"
        else:
            spans = "[" + ", ".join(f"[{a}, {b}]" for a, b in j.spans) + "]"
        return (  # `!s`: the mode's value (str.__str__), not Enum's slower attribute
            f'["{analyst}","{e.ledger_post[2]}","{e.mode!s}",{index},{ledger},'
            f'{{"type":"alert","analyst":"{analyst}"{watch}{why},"spans":"{spans}"{tail}]'
        )

    def _put(self, pieces: dict[Any, str], key: Any, piece: str) -> str:
        if len(pieces) >= self.MAX_PIECES:
            pieces.clear()
        pieces[key] = piece
        return piece


def _tail(j: AlertJob) -> str:
    """The fields of `AlertJob.rest()` after `spans`, as JSON members, closing the object."""
    out = (
        f',"lang":{_q(j.language)},"lang_conf":"{j.language_confidence:.3f}",'
        f'"kind":{_q(j.kind)},"also_in":{_q(_json_list(j.also_in))}'
    )
    if j.held:
        out += ',"held":"1"'
    if j.origin != "watch":
        out += f',"origin":{_q(j.origin)}'
    if j.previous is not None:
        out += f',"previous":{_q(j.previous)}'
    return out + "}"


def _json_list(items: tuple[str, ...]) -> str:
    return json.dumps(list(items), ensure_ascii=False)


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
        self._tell_surge: Any = redis.register_script(_TELL_SURGE)

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
        encoder = JobEncoder()
        for start in range(0, len(emissions), MAX_JOBS_PER_CALL):
            chunk = emissions[start : start + MAX_JOBS_PER_CALL]
            posts: dict[tuple[str, str], int] = {}
            ledgers: dict[tuple[int, int], int] = {}
            jobs: list[str] = []
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
                jobs.append(encoder.job(e, index, ledger))
            names = [keys.ALERTS_STREAM, *(keys.alerts_made(c, m) for c, m in ledgers)]
            payload = "[" + ",".join(jobs) + "]"
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

    async def surges_unsent(self, decided_before: float) -> list[str]:
        """The surges decided before `decided_before` (unix time) and not told, oldest first."""
        raw = await self._redis.zrangebyscore(keys.SURGE_UNSENT, "-inf", decided_before)
        return [str(r) for r in raw]

    async def tell_surge(self, ref: str, notices: Sequence[Notice]) -> bool:
        """Append a surge's notices and mark it told (`keys.SURGE_UNSENT`), in one step; False
        (nothing appended) if it was told already. With no notices (everyone turned surge
        alerts off), only marks it told."""
        payload = [[x for kv in n.to_fields().items() for x in kv] for n in notices]
        told = await self._tell_surge(
            keys=[keys.ALERTS_STREAM, keys.SURGE_UNSENT],
            args=[self._maxlen, ref, json.dumps(payload, ensure_ascii=False)],
        )
        return bool(int(told))

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
