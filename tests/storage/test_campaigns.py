from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from bot.models import Forward, Post
from bot.storage import campaigns, keys
from bot.storage.archive import ArchiveRepository
from bot.storage.campaigns import CampaignRepository, SurgeTracker
from bot.storage.outbox import AlertOutbox
from bot.triage.spread import analyse_spread
from bot.triage.surge import (
    DAY_S,
    HOUR_S,
    SurgeAlert,
    SurgeConfig,
    SurgeCounts,
    SurgeObservation,
    surge_ref,
)

NOW = float(1_765_000_000 // HOUR_S * HOUR_S + 40 * 60)  # 40 minutes into an hour
BACKGROUND = "Депутаты обсудили бюджет и налоги на заседании комитета"
CAMPAIGN = "Зангезурский коридор должен открыться немедленно, требуют депутаты"


def _post(channel: int, message: int, at: float, text: str, **kw: object) -> Post:
    return Post(
        channel_id=channel,
        message_id=message,
        date=datetime.fromtimestamp(at, UTC),
        text=text,
        username=f"chan{channel}",
        **kw,  # type: ignore[arg-type]
    )


async def test_counts_are_hourly_and_the_window_reads_them_back(
    redis: aioredis.Redis,
) -> None:
    repo = CampaignRepository(redis)
    obs = [SurgeObservation(NOW - 60 * i, 7, 100 + i % 3, i) for i in range(10)]
    obs.append(SurgeObservation(NOW - 30 * DAY_S, 7, 100, 999))  # backfill: history only
    await repo.count(SurgeCounts.of(obs), now=NOW)
    windows, recent, cooling, epoch = await repo.windows([7, 8], NOW)
    assert windows[7].posts == 10
    assert windows[7].channels == {100: 4, 101: 3, 102: 3}
    assert abs(windows[7].elapsed - 40 / 60) < 1e-9
    assert windows[8].posts == 0 and cooling == set()
    assert epoch == round(NOW)
    today = int(NOW // DAY_S)
    assert sum(recent[7][today].values()) + sum(recent[7][today - 1].values()) == 10
    history = await repo.history([7], today)
    assert history[7] == {today - 30: {int((NOW - 30 * DAY_S) // HOUR_S) % 24: 1}}
    assert (await repo.hourly(7, NOW, 3))[-1] >= 1
    assert sum((await repo.daily([7], NOW, 31))[7]) == 11
    # Old hours keep no window data; the history keys expire with the baseline.
    old = int((NOW - 30 * DAY_S) // HOUR_S)
    assert not await redis.exists(keys.surge_channels(7, old))
    ttl = await redis.ttl(keys.surge_hours(7, today))
    assert 56 * DAY_S < ttl <= 58 * DAY_S
    assert 0 < await redis.ttl(keys.surge_channels(7, int(NOW // HOUR_S))) <= 4 * HOUR_S


async def test_reads_of_many_watches_are_sent_in_parts_with_the_same_answer(
    redis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A check's reads over thousands of watches are split so that no pipeline holds more
    than PIPELINE_MAX commands (redis-py keeps them all, and their replies, at once)."""
    repo = CampaignRepository(redis)
    today = int(NOW // DAY_S)
    obs = [SurgeObservation(NOW - 60 * w, w, 100 + w % 4, w) for w in range(1, 13)]
    obs += [SurgeObservation(NOW - (w % 50 + 1) * DAY_S, w, 100, 1000 + w) for w in range(1, 13)]
    await repo.count(SurgeCounts.of(obs), now=NOW)
    ids = list(range(1, 13))
    whole_posts = await repo.window_posts(ids, NOW)
    whole_windows = await repo.windows(ids, NOW)
    whole_history = await repo.history(ids, today)
    sizes: list[int] = []
    execute = aioredis.client.Pipeline.execute

    async def counted(self: aioredis.client.Pipeline, *args: object, **kw: object) -> object:
        sizes.append(len(self.command_stack))
        return await execute(self, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(campaigns, "PIPELINE_MAX", 60)
    monkeypatch.setattr(aioredis.client.Pipeline, "execute", counted)
    assert await repo.window_posts(ids, NOW) == whole_posts
    assert await repo.windows(ids, NOW) == whole_windows
    parted = await repo.history(ids, today)
    assert parted == whole_history
    assert max(sizes) <= 60 and len(sizes) > 3
    for w in ids:
        assert whole_posts[w] == 1
        hour = int((NOW - (w % 50 + 1) * DAY_S) // HOUR_S) % 24
        assert parted[w] == {today - (w % 50 + 1): {hour: 1}}
        assert parted[w].get(today - 51, {}).get(hour, 0) == 0
    # A grid spans from the watch's first day with a post; a watch with none holds nothing.
    assert len((await repo.history([999], today))[999]._counts) == 0
    assert len(parted[1]._counts) == 2 * 24 and len(parted[12]._counts) == 13 * 24


async def test_a_batch_is_a_constant_number_of_script_calls(redis: aioredis.Redis) -> None:
    repo = CampaignRepository(redis)
    obs = [SurgeObservation(NOW, w, 100, w) for w in range(1200)]
    async with redis.pipeline(transaction=False) as pipe:
        calls = repo.count_commands(pipe, SurgeCounts.of(obs), now=NOW)
        replies = await pipe.execute()
    assert calls == 3 and len(replies) == 3
    windows, *_ = await repo.windows([0, 1199], NOW)
    assert windows[1199].posts == 1


async def test_refs_are_capped_per_hour_and_sampled_per_day(redis: aioredis.Redis) -> None:
    cfg = SurgeConfig(window_refs=5)
    repo = CampaignRepository(redis, config=cfg)
    for batch in range(4):
        obs = [SurgeObservation(NOW, 7, 100, batch * 10 + i) for i in range(4)]
        obs.append(SurgeObservation(NOW - HOUR_S, 7, 100, 100 + batch))
        await repo.count(SurgeCounts.of(obs), now=NOW)
    hour, day = int(NOW // HOUR_S), int(NOW // DAY_S)
    assert await redis.lrange(keys.surge_recent(7, hour), 0, -1) == [
        f"100:{i}" for i in (0, 1, 2, 3, 10)
    ]
    assert await redis.llen(keys.surge_recent(7, hour - 1)) == 4
    # The day's sample: the first post of each hour.
    assert sorted(await redis.lrange(keys.surge_sample(7, day), 0, -1)) == ["100:0", "100:100"]
    assert 0 < await redis.ttl(keys.surge_sample(7, day)) <= 15 * DAY_S


async def _background(repo: CampaignRepository, archive: ArchiveRepository) -> None:
    """Ten quiet days: two posts a day around noon, in two channels, as counting began."""
    start = NOW - 10 * DAY_S
    message = 1
    for d in range(10):
        at = start + d * DAY_S
        posts = [_post(100 + i, message + i, at - 600 * i, BACKGROUND) for i in range(2)]
        message += 2
        await archive.put_many(posts)
        obs = [SurgeObservation(p.date.timestamp(), 7, p.channel_id, p.message_id) for p in posts]
        await repo.count(SurgeCounts.of(obs), now=start if d == 0 else at)


async def test_tracker_raises_one_alert_with_new_words(redis: aioredis.Redis) -> None:
    archive = ArchiveRepository(redis)
    repo = CampaignRepository(redis, archive=archive)
    await _background(repo, archive)
    tracker = SurgeTracker(repo)
    # A campaign: 24 posts in 8 channels over the last two hours.
    posts = [_post(200 + i % 8, 5000 + i, NOW - 300 * i, f"{CAMPAIGN} {i}") for i in range(24)]
    await archive.put_many(posts)
    counts = SurgeCounts.of(
        SurgeObservation(p.date.timestamp(), 7, p.channel_id, p.message_id) for p in posts
    )
    async with redis.pipeline(transaction=False) as pipe:
        tracker.count_commands(pipe, counts, now=NOW)
        await pipe.execute()
    assert tracker.pending == 1
    alerts = await tracker.check(NOW)
    assert len(alerts) == 1
    alert = alerts[0]
    assert (alert.watch_id, alert.posts, alert.channels) == (7, 24, 8)
    assert alert.ratio > 6
    assert alert.top_channels[0] == (200, 3)
    assert "зангезурский" in alert.new_words and "депутаты" not in alert.new_words
    assert alert.hourly[-1] > 0
    assert tracker.round_trips == 7  # counts, window, history, claim, refs, archive, record
    examples = await repo.examples(7, NOW, limit=2)
    assert [p.message_id for p in examples] == [5000, 5001]
    # More posts: no second alert while the cooldown lasts.
    more = SurgeCounts.of([SurgeObservation(NOW, 7, 300, 1)])
    await repo.count(more, now=NOW)
    tracker.observe(more)
    assert await tracker.check(NOW + 60) == []
    assert 0 < await redis.ttl(keys.surge_cooldown(7)) <= 6 * HOUR_S
    # The cooldown runs on the caller's clock: replayed posts cool down in their own time.
    assert await repo.claim([7], NOW + 5 * HOUR_S) == set()
    assert await repo.claim([7, 8], NOW + 7 * HOUR_S) == {7, 8}
    await redis.set(keys.surge_cooldown(7), str(NOW + 6 * HOUR_S))
    # Another worker seeing the same surge does not alert again.
    other = SurgeTracker(repo)
    other.observe(counts)
    assert await other.check(NOW) == []


async def test_quiet_and_young_watches_do_not_surge(redis: aioredis.Redis) -> None:
    archive = ArchiveRepository(redis)
    repo = CampaignRepository(redis, archive=archive)
    await _background(repo, archive)
    tracker = SurgeTracker(repo)
    usual = SurgeCounts.of(SurgeObservation(NOW - 60 * i, 7, 100 + i, i) for i in range(3))
    tracker.observe(usual)
    await repo.count(usual, now=NOW)
    assert await tracker.check(NOW) == []
    assert tracker.round_trips == 1  # under the floor: nothing more is read
    # A watch created yesterday has no history yet, whatever it matches.
    young = SurgeTracker(repo, created_at=lambda w: NOW - DAY_S)
    burst = SurgeCounts.of(SurgeObservation(NOW, 7, 200 + i, 900 + i) for i in range(30))
    await repo.count(burst, now=NOW)
    young.observe(burst)
    assert await young.check(NOW) == []
    assert not await redis.exists(keys.surge_cooldown(7))


async def test_spread_records_a_story_in_time_order(redis: aioredis.Redis) -> None:
    archive = ArchiveRepository(redis)
    repo = CampaignRepository(redis, archive=archive)
    first = _post(1, 10, NOW, CAMPAIGN)
    await archive.put_many([first])
    copies = [
        _post(3, 5, NOW + 600, CAMPAIGN, forward=Forward(1, 10, "Origin")),
        _post(2, 7, NOW + 60, CAMPAIGN),
        _post(4, 2, NOW + 900, CAMPAIGN, forward=Forward(99, 3, "Unmonitored")),
    ]
    async with redis.pipeline(transaction=False) as pipe:
        for post in copies:
            repo.spread_commands(pipe, (1, 10), post, kind="forward" if post.forward else "copy")
        repo.spread_commands(pipe, (1, 10), copies[1], kind="copy")  # seen twice
        await pipe.execute()
    head, records = await repo.spread((1, 10))
    assert head is not None and head.at == NOW and head.username == "chan1"
    assert [r.channel_id for r in records] == [2, 3, 4]
    assert records[1].forward_channel_id == 1 and records[1].forward_name == "Origin"
    spread = analyse_spread(records, monitored={1, 2, 3, 4}, first=head)
    assert spread is not None
    assert [r.channel_id for r in spread.amplifiers] == [2, 3, 4]
    assert spread.unmonitored_sources == ((99, "Unmonitored", 1),)
    assert 29 * DAY_S < await redis.ttl(keys.story_spread(1, 10)) <= 30 * DAY_S


async def test_forward_edges_sum_over_days(redis: aioredis.Redis) -> None:
    repo = CampaignRepository(redis)
    posts = [
        _post(2, 1, NOW, "a", forward=Forward(1, 5, "One")),
        _post(2, 2, NOW - DAY_S, "b", forward=Forward(1, 6)),
        _post(3, 1, NOW, "c", forward=Forward(1, 7)),
        _post(3, 2, NOW, "d", forward=Forward(3, 1)),  # its own post: not an edge
        _post(3, 3, NOW, "e", forward=Forward(None, None, "Hidden user")),
        _post(4, 1, NOW - 60 * DAY_S, "f", forward=Forward(1, 8)),  # past the window
        _post(4, 2, NOW, "g"),
    ]
    async with redis.pipeline(transaction=False) as pipe:
        repo.forward_commands(pipe, posts, now=NOW)
        await pipe.execute()
    edges, names = await repo.forwards(now=NOW)
    assert {(e.source, e.target, e.forwards) for e in edges} == {(1, 2, 2), (1, 3, 1)}
    assert names == {1: "One"}
    edges, _names = await repo.forwards(days=1, now=NOW)
    assert {(e.source, e.target, e.forwards) for e in edges} == {(1, 2, 1), (1, 3, 1)}


async def test_a_recorded_surge_is_noted_unsent_in_the_same_step(redis: aioredis.Redis) -> None:
    """The record and the unsent note go in one MULTI: a worker that dies right after the
    check still leaves the surge for the next start to tell."""
    repo = CampaignRepository(redis)
    alert = SurgeAlert(7, 30, 3, 3, 6.5, ((2, 20),), ("коридор",), 4.0, 490_001)
    await repo.record_surges([alert], {7: [(2, 20)]})
    unsent = await AlertOutbox(redis).surges_unsent(time.time() + 1)
    assert unsent == [surge_ref(7, 490_001)]
    assert await repo.surge_event(7, 490_001) is not None
