"""Ingest throughput: a synthetic 100,000-post Telegram Desktop export to the posts stream.

Generates the export in a temp dir (text as plain strings and as entity lists with links,
hashtags and bold, a few hundred characters each, some service messages, edits, forwards and
photos), starts an embedded Redis there, and times `ingest_file` end to end (validation pass +
pipelined enqueue pass). Prints one JSON line.

    .venv/bin/python bench/ingest.py [--posts 100000] [--batch 500]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.ingest import ingest_file
from bot.storage import keys
from bot.storage.connection import EmbeddedRedis
from bot.storage.posts import PostQueue

WORDS = (
    "мигранты",
    "мигрантов",
    "власти",
    "заявили",
    "сегодня",
    "граница",
    "коридор",
    "переговоры",
    "министр",
    "біженців",
    "біженці",
    "уряд",
    "заява",
    "кордон",
    "область",
    "громада",
    "війна",
    "refugees",
    "border",
    "minister",
    "statement",
    "talks",
    "corridor",
    "sanctions",
    "army",
    "Zəngəzur",
    "dəhlizi",
    "sərhəd",
    "nazir",
    "bəyanat",
    "danışıqlar",
)


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def _message(rng: random.Random, msg_id: int, t0: int) -> dict[str, object]:
    date = t0 + msg_id * 37
    body = " ".join(_sentence(rng, rng.randint(6, 14)) for _ in range(rng.randint(2, 5)))
    msg: dict[str, object] = {
        "id": msg_id,
        "type": "message",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(date)),
        "date_unixtime": str(date),
        "from": "Бенчмарк",
        "from_id": "channel1000000042",
    }
    if msg_id % 50 == 0:
        return {**msg, "type": "service", "actor": "Бенчмарк", "action": "pin_message"}
    if msg_id % 7 == 0:
        msg["edited"] = msg["date"]
        msg["edited_unixtime"] = str(date + 600)
    if msg_id % 11 == 0:
        msg["forwarded_from"] = "Другой канал"
    if msg_id % 13 == 0:
        msg["photo"] = "(File not included. Change data exporting settings to download.)"
    if msg_id % 3 == 0:
        parts: list[object] = [
            {"type": "bold", "text": "Срочно: "},
            body,
            " ",
            {"type": "text_link", "text": "источник", "href": f"https://example.org/{msg_id}"},
            " ",
            {"type": "hashtag", "text": "#новости"},
        ]
        msg["text"] = parts
        msg["text_entities"] = [
            p if isinstance(p, dict) else {"type": "plain", "text": p} for p in parts
        ]
    else:
        msg["text"] = body
        msg["text_entities"] = [{"type": "plain", "text": body}]
    return msg


def generate(path: Path, posts: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    t0 = 1_700_000_000
    with path.open("w", encoding="utf-8") as fh:
        fh.write('{\n "name": "Бенчмарк",\n "type": "public_channel",\n "id": 1000000042,\n')
        fh.write(' "messages": [\n')
        for i in range(1, posts + 1):
            fh.write(json.dumps(_message(rng, i, t0), ensure_ascii=False, indent=1))
            fh.write(",\n" if i < posts else "\n")
        fh.write(" ]\n}\n")


async def run(posts: int, batch: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="vigil-bench-") as tmp:
        export = Path(tmp) / "result.json"
        generate(export, posts)
        server = EmbeddedRedis(Path(tmp) / "data")
        t = time.perf_counter()
        await asyncio.to_thread(server.start_sync)
        redis_ms = (time.perf_counter() - t) * 1000
        client = server.client()
        try:
            queue = PostQueue(client)
            t = time.perf_counter()
            report = await ingest_file(export, queue, channel="@bench_channel", batch=batch)
            seconds = time.perf_counter() - t
            length = await client.xlen(keys.POSTS_STREAM)
            again = await ingest_file(export, queue, batch=batch)
        finally:
            await client.aclose()
            await asyncio.to_thread(server.stop_if_last_sync)
        assert report.enqueued == length == report.read, (report, length)
        assert again.enqueued == 0, again
        return {
            "bench": "ingest",
            "posts": report.read,
            "file_mb": round(export.stat().st_size / 2**20, 1),
            "seconds": round(seconds, 3),
            "posts_per_s": round(report.read / seconds),
            "validate_s": round(report.validate_seconds, 3),
            "enqueue_s": round(report.enqueue_seconds, 3),
            "redis_start_ms": round(redis_ms, 1),
            "skipped": sum(report.skipped.values()),
            "batch": batch,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.posts, args.batch))))


if __name__ == "__main__":
    main()
