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


# KEYS: fingerprint keys; ARGV[1] ttl, ARGV[1 + i] the owner of KEYS[i].
_CLAIM = """
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], ARGV[i + 1], 'NX', 'EX', ARGV[1])
end
return #KEYS
"""


class StoryRepository:
    def __init__(self, redis: aioredis.Redis, *, ttl_s: int = STORY_TTL_S) -> None:
        self._redis = redis
        self.ttl_s = ttl_s

    def claim_commands(self, pipe: Any, claims: Iterable[tuple[Iterable[str], str]]) -> None:
        """Queue, for each (fingerprints, owner), a claim of every fingerprint not yet owned,
        as one script call for the whole batch (one SET NX a fingerprint queued on its own
        was most of the worker's write time)."""
        names: list[str] = []
        owners: list[str] = []
        for fingerprints, owner in claims:
            for f in fingerprints:
                names.append(keys.story(f))
                owners.append(owner)
        if names:
            pipe.eval(_CLAIM, len(names), *names, self.ttl_s, *owners)

    def copy_commands(self, pipe: Any, first: PostKey, link: str) -> None:
        pipe.sadd(keys.story_also(*first), link)
        pipe.expire(keys.story_also(*first), self.ttl_s * 10)
