from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from bot.ingest import ingest_file
from bot.models import Post
from bot.storage import keys
from bot.storage.posts import PostQueue
from watchers.export import ExportError

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "exports"
SAMPLE = Path(__file__).resolve().parent.parent / "bot" / "samples" / "demo_channel.json"


async def stream_posts(redis: aioredis.Redis) -> list[Post]:
    entries = await redis.xrange(keys.POSTS_STREAM)
    return [Post.from_json(fields["post"]) for _id, fields in entries]


def channel_export(messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": "Ingest", "type": "public_channel", "id": 1400000001, "messages": messages}


def message(msg_id: int, text: str, edited: int | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": msg_id,
        "type": "message",
        "date": "2024-05-01T08:00:00",
        "date_unixtime": str(1714550400 + msg_id),
        "text": text,
    }
    if edited is not None:
        data["edited"] = "2024-05-01T09:00:00"
        data["edited_unixtime"] = str(edited)
    return data


async def test_ingest_counts_and_stream_content(redis: aioredis.Redis) -> None:
    report = await ingest_file(
        FIXTURES / "single_channel.json", PostQueue(redis), channel="@test_channel"
    )
    assert (report.read, report.enqueued, report.duplicates) == (8, 8, 0)
    assert report.skipped == {"service": 1, "unsupported": 1}
    posts = await stream_posts(redis)
    assert [p.message_id for p in posts] == [2, 3, 4, 5, 7, 8, 9, 10]
    assert posts[0].text == "Мигранты & <b>не теги</b> 🙂"
    assert posts[0].link == "https://t.me/test_channel/2"
    assert posts[1].urls == ("https://example.org/a?x=1&y=2", "https://example.com/b")
    assert {p.source for p in posts} == {"export"}


async def test_same_file_twice_enqueues_nothing_new(redis: aioredis.Redis) -> None:
    queue = PostQueue(redis)
    first = await ingest_file(FIXTURES / "full_account.json", queue)
    second = await ingest_file(FIXTURES / "full_account.json", queue)
    assert (first.read, first.enqueued, first.duplicates) == (4, 4, 0)
    assert (second.read, second.enqueued, second.duplicates) == (4, 0, 4)
    assert await redis.xlen(keys.POSTS_STREAM) == 4


@pytest.mark.parametrize(
    "name",
    [
        "truncated.json",
        "message_without_id.json",
        "text_is_number.json",
        "bad_unixtime.json",
        "top_level_list.json",
        "jsonl_bad_text.jsonl",
    ],
)
async def test_broken_file_enqueues_nothing(redis: aioredis.Redis, name: str) -> None:
    queue = PostQueue(redis)
    await ingest_file(FIXTURES / "old_export.json", queue)
    before = await redis.xlen(keys.POSTS_STREAM)
    # most broken fixtures have valid posts before the bad one: none may be enqueued
    with pytest.raises(ExportError) as info:
        await ingest_file(FIXTURES / name, queue)
    assert name in str(info.value)
    assert await redis.xlen(keys.POSTS_STREAM) == before == 2


async def test_broken_late_in_a_big_file_enqueues_nothing(
    redis: aioredis.Redis, tmp_path: Path
) -> None:
    messages = [message(i, "пост " * 50) for i in range(1, 2001)]
    messages[1990]["text"] = 3.5
    path = tmp_path / "result.json"
    path.write_text(json.dumps(channel_export(messages), ensure_ascii=False))
    with pytest.raises(ExportError, match=r"messages\[1990\]"):
        await ingest_file(path, PostQueue(redis), batch=100)
    assert await redis.xlen(keys.POSTS_STREAM) == 0


async def test_edited_version_is_enqueued_once_more(redis: aioredis.Redis, tmp_path: Path) -> None:
    queue = PostQueue(redis)
    path = tmp_path / "result.json"
    path.write_text(json.dumps(channel_export([message(1, "a"), message(2, "b")])))
    first = await ingest_file(path, queue)
    assert first.enqueued == 2

    path.write_text(json.dumps(channel_export([message(1, "a"), message(2, "b2", 1714560000)])))
    second = await ingest_file(path, queue)
    third = await ingest_file(path, queue)
    assert (second.enqueued, second.duplicates) == (1, 1)
    assert (third.enqueued, third.duplicates) == (0, 2)
    posts = await stream_posts(redis)
    assert [(p.message_id, p.text, p.version) for p in posts] == [
        (1, "a", 0),
        (2, "b", 0),
        (2, "b2", 1714560000),
    ]


async def test_jsonl_ingest_with_edit_in_the_same_file(redis: aioredis.Redis) -> None:
    report = await ingest_file(FIXTURES / "posts.jsonl", PostQueue(redis))
    assert (report.read, report.enqueued, report.duplicates) == (4, 4, 0)
    again = await ingest_file(FIXTURES / "posts.jsonl", PostQueue(redis))
    assert (again.enqueued, again.duplicates) == (0, 4)


async def test_small_batches_and_progress(redis: aioredis.Redis, tmp_path: Path) -> None:
    path = tmp_path / "result.json"
    messages = [message(i, f"post {i} " + "x" * 300) for i in range(1, 1001)]
    messages.append({"id": 2000, "type": "service", "date_unixtime": "1714550400"})
    path.write_text(json.dumps(channel_export(messages)))
    calls: list[tuple[int, int]] = []
    report = await ingest_file(
        path, PostQueue(redis), batch=7, progress=lambda d, t: calls.append((d, t))
    )
    assert (report.read, report.enqueued, report.skipped) == (1000, 1000, {"service": 1})
    assert [p.message_id for p in await stream_posts(redis)] == list(range(1, 1001))
    size = path.stat().st_size
    assert calls[-1] == (2 * size, 2 * size)
    assert any(d == size for d, _ in calls)  # end of the validation pass
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


async def test_export_directory_is_accepted(redis: aioredis.Redis, tmp_path: Path) -> None:
    folder = tmp_path / "ChatExport_2024-05-01"
    folder.mkdir()
    shutil.copy(FIXTURES / "old_export.json", folder / "result.json")
    report = await ingest_file(folder, PostQueue(redis))
    assert (report.enqueued, report.dates_assumed_utc) == (2, 2)


async def test_missing_file_is_an_export_error(redis: aioredis.Redis, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="cannot read"):
        await ingest_file(tmp_path / "nope.json", PostQueue(redis))


async def test_bundled_demo_channel_ingests(redis: aioredis.Redis) -> None:
    report = await ingest_file(SAMPLE, PostQueue(redis), channel="@severny_vestnik_demo")
    assert report.read >= 38
    assert report.enqueued == report.read
    assert report.skipped.get("service") == 1
    posts = await stream_posts(redis)
    assert max(len(p.text) for p in posts) >= 6000
    assert any(p.forward is not None for p in posts)
    assert any(p.edit_date is not None for p in posts)
    assert any(p.media == "photo" and p.text for p in posts)
    assert any(p.urls for p in posts)
