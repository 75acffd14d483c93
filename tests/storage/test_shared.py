"""Shared watches on a real Redis: linked watches follow the shared one through the change feed."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from bot.storage import keys
from bot.storage import watches as watches_module
from bot.storage.shared import (
    AlreadySubscribedError,
    SharedWatchGoneError,
    SharedWatchRepository,
)
from bot.storage.watches import Watch, WatchLimitError, WatchRepository
from bot.triage.query import QueryError

ANN, BOB = 701, 702


@pytest.fixture
def watches(redis: aioredis.Redis) -> WatchRepository:
    return WatchRepository(redis)


@pytest.fixture
def shared(redis: aioredis.Redis, watches: WatchRepository) -> SharedWatchRepository:
    return SharedWatchRepository(redis, watches)


async def changed(watches: WatchRepository, cursor: str) -> tuple[str, set[int]]:
    cursor, ids = await watches.changes_since(cursor)
    assert ids is not None
    return cursor, ids


async def test_add_validates_like_watch_and_stores_nothing_on_error(
    redis: aioredis.Redis, shared: SharedWatchRepository
) -> None:
    with pytest.raises(QueryError) as bad:
        await shared.add('мигрант* AND ("open', name="x")
    assert bad.value.position is not None
    with pytest.raises(QueryError):
        await shared.add("-погода")  # only negative
    with pytest.raises(ValueError, match="priority"):
        await shared.add("мигрант", priority="extreme")
    assert await shared.all() == []
    assert await redis.exists(keys.SHARED_SEQ) == 0  # no id was even taken

    added = await shared.add("  Мигрант*  выслать ", name=" Expel\n migrants " + "x" * 100)
    assert added.query == "Мигрант*  выслать" and added.canonical == "мигрант* выслать"
    assert added.name.startswith("Expel migrants") and len(added.name) == 60
    assert await shared.get(added.id) == added


async def test_subscribe_links_a_watch_once_and_the_feed_carries_it(
    shared: SharedWatchRepository, watches: WatchRepository
) -> None:
    corridor = await shared.add('/zangez[uy]r/ OR "Syunik corridor"', priority="high")
    cursor = await watches.changes_cursor()
    watch = await shared.subscribe(corridor.id, ANN)
    assert (watch.owner_id, watch.query, watch.priority, watch.shared) == (
        ANN,
        corridor.query,
        "high",
        corridor.id,
    )
    stored = await watches.get(watch.id)
    assert stored is not None and (stored.id, stored.shared, stored.query) == (
        watch.id,
        corridor.id,
        corridor.query,
    )
    cursor, ids = await changed(watches, cursor)
    assert ids == {watch.id}
    with pytest.raises(AlreadySubscribedError) as again:
        await shared.subscribe(corridor.id, ANN)
    assert again.value.watch_id == watch.id
    assert len(await watches.list_for(ANN)) == 1
    assert (await shared.get(corridor.id)).subscribers == 1  # type: ignore[union-attr]
    assert await shared.subscriptions(ANN, [corridor.id, 999]) == {corridor.id: watch.id}
    assert await shared.subscriptions(BOB, [corridor.id]) == {}


async def test_double_tap_subscribes_once(
    shared: SharedWatchRepository, watches: WatchRepository
) -> None:
    corridor = await shared.add("коридор")
    results = await asyncio.gather(
        *(shared.subscribe(corridor.id, ANN) for _ in range(5)), return_exceptions=True
    )
    made = [r for r in results if isinstance(r, Watch)]
    assert len(made) == 1
    assert all(isinstance(r, AlreadySubscribedError) for r in results if r not in made)
    assert [w.id for w in await watches.list_for(ANN)] == [made[0].id]


async def test_priority_and_removal_follow_through_the_change_feed(
    shared: SharedWatchRepository, watches: WatchRepository
) -> None:
    corridor = await shared.add("коридор")
    ann = await shared.subscribe(corridor.id, ANN)
    bob = await shared.subscribe(corridor.id, BOB)
    await watches.set_paused(bob.id, BOB, True)  # a subscriber's own pause is theirs
    cursor = await watches.changes_cursor()

    changed_to = await shared.set_priority(corridor.id, "urgent")
    assert changed_to is not None and changed_to.priority == "urgent"
    assert [(w.priority, w.paused) for w in await watches.get_many([ann.id, bob.id])] == [
        ("urgent", False),
        ("urgent", True),
    ]
    cursor, ids = await changed(watches, cursor)
    assert ids == {ann.id, bob.id}
    # The owner cannot set the priority of a linked watch; admins do.
    assert not await watches.set_priority(ann.id, ANN, "low")

    told = await shared.remove(corridor.id)
    assert told == {ANN: ann.id, BOB: bob.id}
    assert await shared.remove(corridor.id) is None  # a second removal tells nobody again
    assert await watches.get_many([ann.id, bob.id]) == []
    assert await watches.list_for(ANN) == [] and await watches.all() == []
    cursor, ids = await changed(watches, cursor)
    assert ids == {ann.id, bob.id}
    assert await shared.all() == []
    with pytest.raises(SharedWatchGoneError):
        await shared.subscribe(corridor.id, ANN)
    assert await shared.set_priority(corridor.id, "low") is None
    assert await shared.get(corridor.id) is None  # set_priority did not recreate it


async def test_unsubscribe_by_repository_or_by_deleting_the_watch(
    redis: aioredis.Redis, shared: SharedWatchRepository, watches: WatchRepository
) -> None:
    corridor = await shared.add("коридор")
    ann = await shared.subscribe(corridor.id, ANN)
    assert await shared.unsubscribe(corridor.id, ANN) == ann.id
    assert await watches.get(ann.id) is None
    assert await shared.unsubscribe(corridor.id, ANN) is None

    again = await shared.subscribe(corridor.id, ANN)  # resubscribing is allowed
    assert again.id != ann.id
    assert await watches.remove(again.id, ANN)  # /unwatch on the linked watch
    assert await shared.subscriptions(ANN, [corridor.id]) == {}
    assert await redis.hlen(keys.shared_subscribers(corridor.id)) == 0
    assert (await shared.get(corridor.id)).subscribers == 0  # type: ignore[union-attr]


async def test_watch_limit_applies_to_subscriptions(
    monkeypatch: pytest.MonkeyPatch, shared: SharedWatchRepository, watches: WatchRepository
) -> None:
    monkeypatch.setattr(watches_module, "MAX_WATCHES_PER_ANALYST", 1)
    await watches.add(ANN, "своё")
    corridor = await shared.add("коридор")
    with pytest.raises(WatchLimitError):
        await shared.subscribe(corridor.id, ANN)
    assert await shared.subscriptions(ANN, [corridor.id]) == {}
    assert (await shared.get(corridor.id)).subscribers == 0  # type: ignore[union-attr]


class RemovedMidway(WatchRepository):
    """The admin removes the shared watch while the subscriber's linked watch is being made."""

    shared: SharedWatchRepository

    async def add(self, *args: object, **kw: object) -> Watch:
        watch = await super().add(*args, **kw)  # type: ignore[arg-type]
        await self.shared.remove(1)
        return watch


async def test_removal_during_a_subscription_leaves_no_orphan(redis: aioredis.Redis) -> None:
    watches = RemovedMidway(redis)
    shared = SharedWatchRepository(redis, watches)
    watches.shared = shared
    corridor = await shared.add("коридор")
    assert corridor.id == 1
    with pytest.raises(SharedWatchGoneError):
        await shared.subscribe(corridor.id, ANN)
    assert await watches.all() == []
    assert await redis.exists(keys.shared_subscribers(1)) == 0


async def test_priority_changed_during_a_subscription_is_followed(
    redis: aioredis.Redis,
) -> None:
    class ChangedMidway(WatchRepository):
        async def add(self, *args: object, **kw: object) -> Watch:
            watch = await super().add(*args, **kw)  # type: ignore[arg-type]
            await shared.set_priority(1, "urgent")  # sees only the in-flight claim
            return watch

    watches = ChangedMidway(redis)
    shared = SharedWatchRepository(redis, watches)
    await shared.add("коридор", priority="low")
    watch = await shared.subscribe(1, ANN)
    assert (await watches.get(watch.id)).priority == "urgent"  # type: ignore[union-attr]
