"""Stories: copies of one post across channels, found by forward header or by sketch.

`keys.story(fingerprint)` names the first post seen with that fingerprint (SET NX, expiring
after STORY_TTL_S); `keys.story_also(first)` is the set of links of its later copies. The
triage worker reads a whole batch's fingerprints in one round trip, decides in memory (so two
copies in one batch are seen as one story), and writes the claims in its batch pipeline.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import redis.asyncio as aioredis

from bot.storage import keys

STORY_TTL_S = 3 * 24 * 3600

PostKey = tuple[int, int]


def post_ref(channel_id: int, message_id: int) -> str:
    return f"{channel_id}:{message_id}"


def parse_ref(ref: str) -> PostKey | None:
    parts = ref.split(":")
    if len(parts) != 2:
        return None
    try:
        return int(parts[0]), int(parts[1])
    except ValueError:
        return None


class StoryRepository:
    def __init__(self, redis: aioredis.Redis, *, ttl_s: int = STORY_TTL_S) -> None:
        self._redis = redis
        self.ttl_s = ttl_s

    def claim_commands(self, pipe: Any, fingerprints: Iterable[str], owner: str) -> None:
        for f in fingerprints:
            pipe.set(keys.story(f), owner, nx=True, ex=self.ttl_s)

    def copy_commands(self, pipe: Any, first: PostKey, link: str) -> None:
        pipe.sadd(keys.story_also(*first), link)
        pipe.expire(keys.story_also(*first), self.ttl_s * 10)
