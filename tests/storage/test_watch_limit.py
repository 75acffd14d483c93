"""MAX_WATCHES: one analyst's flood of /watch stops at the limit, with a clear message."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from bot.app import build_repositories
from bot.config import Settings
from bot.storage.watches import WatchLimitError

ANN, BOB = 711, 712


async def test_the_limit_is_a_setting_and_counts_per_analyst(redis: aioredis.Redis) -> None:
    settings = Settings(_env_file=None, MAX_WATCHES=3)  # type: ignore[call-arg]
    repos = build_repositories(settings, redis)
    for n in range(3):
        await repos.watches.add(ANN, f"слово{n}")
    with pytest.raises(WatchLimitError, match="you already have 3 watches; remove one first"):
        await repos.watches.add(ANN, "ещё")
    assert len(await repos.watches.list_for(ANN)) == 3  # the refused one is not half-stored
    await repos.watches.add(BOB, "другое")  # another analyst is not limited by ANN's
    first = (await repos.watches.list_for(ANN))[0]
    assert await repos.watches.remove(first.id, ANN)
    await repos.watches.add(ANN, "ещё")  # room again after a removal


def test_the_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="MAX_WATCHES"):
        Settings(_env_file=None, MAX_WATCHES=0)  # type: ignore[call-arg]
