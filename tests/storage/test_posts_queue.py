from __future__ import annotations

from datetime import UTC, datetime

import redis.asyncio as aioredis

from bot.models import Post
from bot.storage import keys
from bot.storage.posts import PostQueue


def _post(msg: int, edit: datetime | None = None, event: str = "new") -> Post:
    return Post(
        channel_id=100,
        message_id=msg,
        date=datetime(2026, 1, 1, tzinfo=UTC),
        text=f"post {msg}",
        edit_date=edit,
        event=event,  # type: ignore[arg-type]
    )


async def test_same_post_twice_is_enqueued_once(redis: aioredis.Redis) -> None:
    queue = PostQueue(redis)
    assert await queue.enqueue(_post(1)) is True
    assert await queue.enqueue(_post(1)) is False
    assert await redis.xlen(keys.POSTS_STREAM) == 1


async def test_newer_edit_is_enqueued_older_is_not(redis: aioredis.Redis) -> None:
    queue = PostQueue(redis)
    late = datetime(2026, 1, 2, tzinfo=UTC)
    early = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert await queue.enqueue(_post(1))
    assert await queue.enqueue(_post(1, late, "edit"))
    assert not await queue.enqueue(_post(1, early, "edit"))
    assert await queue.enqueue(_post(1, event="delete"))
    assert not await queue.enqueue(_post(1, event="delete"))
    assert await redis.xlen(keys.POSTS_STREAM) == 3


async def test_enqueue_many_counts_duplicates(redis: aioredis.Redis) -> None:
    queue = PostQueue(redis)
    added, dup = await queue.enqueue_many([_post(1), _post(2), _post(1)])
    assert (added, dup) == (2, 1)
    added, dup = await queue.enqueue_many([_post(i) for i in range(1, 4)])
    assert (added, dup) == (1, 2)
    assert await queue.last_seen_id(100) == 3
    raw = await redis.xrange(keys.POSTS_STREAM)
    assert [Post.from_json(f["post"]).message_id for _i, f in raw] == [1, 2, 3]
