"""Redis memory over simulated days: flat once the retention windows have passed.

Every simulated day drives the day's posts and alerts through the real repositories on the
embedded Redis, as the roles do: `PostQueue.enqueue_many` (the idempotency record, bucketed by
day of arrival), the triage group reading and acknowledging the posts stream, the archive
(`ArchiveRepository.put_commands`, then `trim` as housekeeping does), the alert outbox with its
(post, analyst, version) ledger, the delivery group reading the alerts stream and recording
each send in the delivery ledger and the analyst's log (`DeliveryLedger.sent`, as the worker
does after `sendMessage`), a share of alerts held for the digest and sent in the next day's
digest (`HeldRepository`, `NoticeBox`), and both streams trimmed by age once acknowledged.

Time is compressed, not skipped: a simulated day lasts `--day-s` real seconds, every window is
the same number of (compressed) days as its default in days (the idempotency window 2, the
stream age 3, archive and ledgers `--window-days`, 30 by default in Vigil), and every clock
value the repositories take is the simulated day's. Expiry is Redis's own (EXPIRE in real
seconds, stream ids in real milliseconds), so the bench waits for the start of each compressed
day when a day's work took less than `--day-s` (that wait is the only sleep), and a day whose
work took longer starts late (`slow_days`) rather than letting the clock fall behind Redis's.

After each day (and one active-expiry cycle) `used_memory` and the key count are sampled.
`grows` is true when the last day's memory exceeds the day after the longest window by more
than 10 %. Prints one JSON line. Run: `.venv/bin/python bench/retention.py` (the issue's full
scale: `--channels 500 --posts 30 --analysts 100 --days 60 --window-days 30 --day-s 20`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.alerts import AlertJob, Notice  # noqa: E402
from bot.models import Post  # noqa: E402
from bot.storage.connection import EmbeddedRedis  # noqa: E402
from bot.storage.outbox import Emission, EmitMode  # noqa: E402
from bot.storage.posts import PostQueue  # noqa: E402
from bot.storage.repos import Repositories, Retention  # noqa: E402

WORDS = [
    "мигрант",
    "граница",
    "коридор",
    "заявление",
    "депутат",
    "власти",
    "регион",
    "армия",
    "выборы",
    "санкции",
    "протест",
    "Зангезур",
    "Milli",
    "Məclis",
    "міграція",
    "кордон",
    "війна",
    "переговоры",
    "сосед",
    "угроза",
]


def _text(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 80)))


async def _families(redis: Any) -> dict[str, float]:
    """MEMORY USAGE summed by key family (ids replaced by '#'), MB, largest first."""
    sizes: dict[str, int] = {}
    async for key in redis.scan_iter(count=1000):
        family = re.sub(r"\d+", "#", str(key))
        sizes[family] = sizes.get(family, 0) + int(await redis.memory_usage(key) or 0)
    ranked = sorted(sizes.items(), key=lambda kv: -kv[1])[:12]
    return {k: round(v / 2**20, 1) for k, v in ranked}


async def main(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    data_dir = Path(tempfile.mkdtemp(prefix="vigil-retention-")) / "data"
    server = EmbeddedRedis(data_dir)
    server.start_sync()
    redis = server.client()
    day_s = args.day_s
    window_s = max(1, round(args.window_days * day_s))
    repos = Repositories.build(
        redis, retention=Retention(archive_s=window_s, ledger_s=window_s, maxlen=1_000_000)
    )
    start = time.time()
    clock = {"now": start}
    posts_q = PostQueue(redis, seen_days=2, clock=lambda: clock["now"], day_s=max(1, round(day_s)))
    triage = repos.posts_consumer("triage-bench")
    delivery = repos.alerts_consumer("delivery-bench")
    await triage.ensure_group()
    await delivery.ensure_group()
    analysts = list(range(1001, 1001 + args.analysts))
    next_id = dict.fromkeys(range(1, args.channels + 1), 1)
    samples: list[dict[str, Any]] = []
    slow_days = 0
    day_start = start
    for day in range(1, args.days + 1):
        if day > 1:
            day_start += day_s
            if time.time() < day_start:
                await asyncio.sleep(day_start - time.time())  # Redis's clock expires keys
            else:  # the day's work took longer than a day: this day starts late
                slow_days += 1
                day_start = time.time()
        clock["now"] = day_start
        date = datetime.fromtimestamp(day_start, UTC)
        posts: list[Post] = []
        for channel in next_id:
            for _ in range(args.posts):
                mid = next_id[channel]
                next_id[channel] += 1
                posts.append(Post(channel, mid, date, text=_text(rng), username=f"chan{channel}"))
        # Sources see some posts twice (live and the reconciler): the record refuses them.
        await posts_q.enqueue_many(posts + rng.sample(posts, len(posts) // 10))
        # Triage: read, archive, emit about one alert per post, acknowledge.
        while entries := await triage.read(count=500, block_ms=None):
            batch = [Post.from_json(e.fields["post"]) for e in entries]
            async with redis.pipeline(transaction=False) as pipe:
                repos.archive.put_commands(pipe, batch, now=clock["now"])
                await pipe.execute()
            emissions = [
                Emission(
                    AlertJob(
                        rng.choice(analysts),
                        p,
                        1,
                        "мигрант*",
                        "normal",
                        ("watch priority normal",),
                        ((0, 5),),
                        "ru",
                        0.99,
                        held=rng.random() < args.held_share,
                    ),
                    EmitMode.FIRST,
                    p.key,
                )
                for p in batch
            ]
            await repos.outbox.emit_many(emissions)
            await triage.ack(*(e.id for e in entries))
        # Delivery: held ones to the digest, the rest "sent" and recorded.
        chat_message = day * 1_000_000
        while entries := await delivery.read(count=500, block_ms=None):
            for entry in entries:
                if "notice" in entry.fields:
                    await delivery.ack(entry.id)
                    continue
                job = AlertJob.from_fields(entry.fields)
                if job.held:
                    await repos.held.hold(
                        job.analyst_id, "digest", entry.fields, None, now=clock["now"]
                    )
                    await delivery.ack(entry.id)
                else:
                    chat_message += 1
                    await repos.ledger.sent(job, chat_message, ack=entry.id, now=clock["now"])
        # Yesterday's digests go out (one notice each); their held alerts are removed.
        for analyst in analysts:
            items = await repos.held.held(analyst)
            if items and await repos.held.claim_digest(analyst, day_start):
                await repos.notices.send(Notice(analyst, f"digest of {len(items)}"))
                await repos.held.remove(analyst, items)
        # Housekeeping, with the day's clock.
        await repos.archive.trim(now=clock["now"])
        for consumer in (triage, delivery):
            await consumer.trim_acknowledged(3 * day_s, now=clock["now"])
        await asyncio.sleep(0.2)  # one active-expiry cycle (Redis runs it 10 times a second)
        memory: Any = await redis.info("memory")
        samples.append(
            {
                "day": day,
                "used_memory": int(memory["used_memory"]),
                "keys": int(await redis.dbsize()),
            }
        )
    families = await _families(redis)
    await redis.aclose()
    server.stop_if_last_sync()
    # The longest window: archive and ledgers, or the streams' age and the seen record (3).
    settled = min(args.days, int(max(args.window_days, 3)) + 2)
    at_window = samples[settled - 1]["used_memory"]
    last = samples[-1]["used_memory"]
    return {
        "bench": "retention",
        "days": args.days,
        "channels": args.channels,
        "posts_per_channel_day": args.posts,
        "analysts": args.analysts,
        "window_days": args.window_days,
        "day_s": day_s,
        "slow_days": slow_days,
        "used_memory_day1": samples[0]["used_memory"],
        "used_memory_after_window": at_window,
        "used_memory_last": last,
        "redis_mb_last": round(last / 2**20, 1),
        "keys_day1": samples[0]["keys"],
        "keys_after_window": samples[settled - 1]["keys"],
        "keys_last": samples[-1]["keys"],
        "used_memory_by_day": [s["used_memory"] for s in samples],
        "keys_by_day": [s["keys"] for s in samples],
        "grows": last > 1.10 * at_window,
        "mb_by_key_family_last": families,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--days", type=int, default=16)
    parser.add_argument("--channels", type=int, default=100)
    parser.add_argument("--posts", type=int, default=30, help="posts per channel per day")
    parser.add_argument("--analysts", type=int, default=20)
    parser.add_argument("--window-days", type=float, default=5.0)
    parser.add_argument("--day-s", type=float, default=2.0, help="real seconds per day")
    parser.add_argument("--held-share", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=7)
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
