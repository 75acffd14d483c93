"""The alert outbox on a real Redis: alerts reference the archived post, delivery hydrates them.

An alert entry carries the post's reference and a few bytes of its identity, never its text;
`AlertOutbox.hydrate` (what the delivery group's `AlertConsumer` does to every read batch) gives
it back the archived post in one MGET. What happens to an alert whose post left the archive, or
was edited or deleted before delivery, is pinned here.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from bot import texts
from bot.alerts import AlertJob
from bot.models import Forward, Post
from bot.storage import keys
from bot.storage.archive import ArchiveRepository
from bot.storage.outbox import AlertOutbox, Emission, EmitMode
from bot.storage.repos import Repositories
from bot.storage.streams import StreamEntry

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
HOSTILE = [
    "a < b && c > d <b>not bold</b> &amp; &lt; мигрант",
    "😀🇺🇦👨‍👩‍👧 emoji мигрант " * 40,
    "مرحبا بالعالم עברית שלום mixed RTL \u202e reversed \u202c мигрант",
    "zero\u200bwidth\u200c\u200djoin\ufeff and \u2060 word joiner мигрант",
    ("Длинный пост мигрант " * 600)[:10_000],
]


def post(msg: int, text: str = "Призыв выслать мигрантов", **kw: object) -> Post:
    return Post(
        channel_id=-100500,
        message_id=msg,
        date=T0,
        text=text,
        username="chan_<b>&",
        title="Канал <i>&amp; 😀 עברית",
        **kw,  # type: ignore[arg-type]
    )


def alert(p: Post, analyst: int = 7, **kw: object) -> AlertJob:
    fields: dict[str, object] = {
        "watch_id": 3,
        "watch_query": "мигрант*",
        "priority": "high",
        "reasons": ("watch priority high",),
        "spans": ((15, 24),),
        "language": "ru",
        "language_confidence": 0.97,
    }
    fields.update(kw)
    return AlertJob(analyst_id=analyst, post=p, **fields)  # type: ignore[arg-type]


async def emit(
    outbox: AlertOutbox, *jobs: AlertJob, mode: EmitMode = EmitMode.FIRST
) -> list[bool]:
    return await outbox.emit_many([Emission(j, mode, j.post.key) for j in jobs])


async def read_back(redis: aioredis.Redis, outbox: AlertOutbox) -> list[StreamEntry]:
    entries = [StreamEntry(i, f) for i, f in await redis.xrange(keys.ALERTS_STREAM)]
    return await outbox.hydrate(entries)


@pytest.fixture
def repos(redis: aioredis.Redis) -> Repositories:
    return Repositories.build(redis)


@pytest.mark.parametrize("text", HOSTILE)
async def test_alert_references_the_archived_post_and_hydrates_to_the_same_job(
    redis: aioredis.Redis, repos: Repositories, text: str
) -> None:
    p = post(1, text, urls=("https://example.org/?a=1&b=<2>",), forward=Forward(9, 8, "x"))
    await repos.archive.put_many([p])
    jobs = [alert(p, 7), alert(p, 8, held=True, previous="old <text> &")]
    assert await emit(repos.outbox, *jobs) == [True, True]
    raw = await redis.xrange(keys.ALERTS_STREAM)
    assert len(raw) == 2
    for _id, fields in raw:
        assert "post" not in fields and fields["ref"] == "-100500:1"
        assert text not in "".join(fields.values())  # the text is in the archive only
        assert len(fields["stub"]) < 200
    hydrated = [AlertJob.from_fields(e.fields) for e in await read_back(redis, repos.outbox)]
    assert hydrated == jobs


async def test_redelivered_emission_adds_nothing_and_one_round_trip_hydrates_a_batch(
    redis: aioredis.Redis, repos: Repositories
) -> None:
    posts = [post(i, f"мигрант {i}") for i in range(1, 51)]
    await repos.archive.put_many(posts)
    jobs = [alert(p, a) for p in posts for a in (7, 8)]
    assert all(await emit(repos.outbox, *jobs))
    assert not any(await emit(repos.outbox, *jobs))  # the ledger says they were made
    assert await redis.xlen(keys.ALERTS_STREAM) == 100
    before = (await redis.info("stats"))["total_commands_processed"]
    entries = await read_back(redis, repos.outbox)
    after = (await redis.info("stats"))["total_commands_processed"]
    # XRANGE, one MGET for all fifty posts, and the first INFO
    assert after - before == 3
    assert [AlertJob.from_fields(e.fields).post for e in entries] == [
        p for p in posts for _ in "ab"
    ]


async def test_post_gone_from_the_archive_still_alerts_with_its_link_and_says_so(
    redis: aioredis.Redis, repos: Repositories
) -> None:
    p = post(5, "Призыв выслать мигрантов <script>")
    await repos.archive.put_many([p])
    assert await emit(repos.outbox, alert(p)) == [True]
    await redis.delete(keys.archive_post(p.channel_id, p.message_id))  # expired
    [entry] = await read_back(redis, repos.outbox)
    job = AlertJob.from_fields(entry.fields)
    assert entry.fields["hydrated"] == "gone"
    assert job.post.text == texts.ALERT_POST_GONE
    assert job.post.link == p.link and job.post.date == p.date and job.post.title == p.title
    assert job.post.version == p.version
    assert job.spans == ()  # the highlights were for a text that is not there
    assert (job.watch_id, job.priority, job.reasons) == (3, "high", ("watch priority high",))


async def test_post_edited_before_delivery_keeps_its_version_without_stale_highlights(
    redis: aioredis.Redis, repos: Repositories
) -> None:
    p = post(6, "Призыв выслать мигрантов")
    await repos.archive.put_many([p])
    await emit(repos.outbox, alert(p))
    edited = replace(p, text="Совсем другой текст", edit_date=T0.replace(hour=13), event="edit")
    await repos.archive.put_many([edited])
    [entry] = await read_back(redis, repos.outbox)
    job = AlertJob.from_fields(entry.fields)
    assert job.post.text == "Совсем другой текст"  # the newest text there is
    assert job.post.version == 0 and job.post.event == "new"  # still the alert on the original
    assert job.spans == () and entry.fields["hydrated"] == "newer"


async def test_post_deleted_before_delivery_keeps_its_text_and_highlights(
    redis: aioredis.Redis, repos: Repositories
) -> None:
    p = post(7, "Призыв выслать мигрантов")
    await repos.archive.put_many([p])
    await emit(repos.outbox, alert(p))
    await repos.archive.put_many([replace(p, event="delete")])  # the archive keeps the text
    [entry] = await read_back(redis, repos.outbox)
    job = AlertJob.from_fields(entry.fields)
    assert job.post.text == p.text and job.post.event == "new" and job.spans == ((15, 24),)
    assert "hydrated" not in entry.fields


async def test_entries_without_a_reference_pass_through_and_bad_stubs_stay_malformed(
    redis: aioredis.Redis, repos: Repositories
) -> None:
    old_shape = alert(post(8)).to_fields()  # released held alerts and older entries
    notice = {"type": "notice", "analyst": "7", "notice": "hi"}
    bad = {"type": "alert", "analyst": "7", "ref": "-100500:9", "stub": "[1,", "job": "{}"}
    wrong = {"type": "alert", "analyst": "7", "ref": "nonsense", "stub": "[]", "job": "{}"}
    for fields in (old_shape, notice, bad, wrong):
        await redis.xadd(keys.ALERTS_STREAM, fields)  # type: ignore[arg-type]
    entries = await read_back(redis, repos.outbox)
    assert [e.fields for e in entries[:2]] == [old_shape, notice]
    assert AlertJob.from_fields(entries[0].fields) == alert(post(8))
    for e in entries[2:]:
        assert "post" not in e.fields
        with pytest.raises(ValueError, match="malformed"):
            AlertJob.from_fields(e.fields)


async def test_the_delivery_consumer_reads_hydrated_batches(
    redis: aioredis.Redis, repos: Repositories
) -> None:
    p = post(10, "Призыв выслать мигрантов & <b>")
    await ArchiveRepository(redis).put_many([p])
    await emit(repos.outbox, alert(p))
    consumer = repos.alerts_consumer("d1")
    await consumer.ensure_group()
    [entry] = await consumer.read(count=10, block_ms=None)
    assert AlertJob.from_fields(entry.fields) == alert(p)
    # A restart reads its own pending entries first: hydrated too.
    again = repos.alerts_consumer("d1")
    [pending] = await again.read(count=10, block_ms=None)
    assert pending.deliveries == 2 and AlertJob.from_fields(pending.fields) == alert(p)
