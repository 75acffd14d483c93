from __future__ import annotations

import math

from bot.triage.surge import (
    HOUR_S,
    Baseline,
    SurgeAlert,
    SurgeConfig,
    SurgeCounts,
    SurgeObservation,
    SurgeWindow,
    baseline_of,
    hourly_profile,
    make_alert,
    new_words,
    observations,
    sample_words,
    surge_ratio,
    threshold,
    window_hours_of,
    window_samples,
    word_posts,
)

CFG = SurgeConfig()
DAY = 20_000  # days since the epoch: some day in 2024
NOON = DAY * 24 + 12  # hour bucket


def _window(posts: int, channels: int, *, elapsed: float = 1.0) -> SurgeWindow:
    per = {100 + i: 0 for i in range(channels)}
    for i in range(posts):
        per[100 + i % channels] += 1
    return SurgeWindow(7, NOON, posts, per, elapsed)


def test_counts_aggregate_a_batch_and_count_a_post_once() -> None:
    at = NOON * HOUR_S + 60
    obs = [
        *observations(at, -1001, 5, [7, 8, 7]),
        SurgeObservation(at, 7, -1001, 5),  # redelivered
        SurgeObservation(at + HOUR_S, 7, -1002, 9),
    ]
    counts = SurgeCounts.of(obs)
    assert counts.posts == {(7, NOON): 1, (8, NOON): 1, (7, NOON + 1): 1}
    assert counts.channels[(7, NOON)] == {-1001: 1}
    assert counts.refs[(7, NOON + 1)] == [(-1002, 9)]
    assert counts.watches == {7, 8}
    assert not SurgeCounts()
    same = SurgeCounts()
    assert same.add_post(at, -1001, 5, [7, 8, 7]) == 2
    assert same.add_post(at + HOUR_S, -1002, 9, [7]) == 1
    assert same.add_post(at, -1001, 5, [7]) == 0
    assert (same.posts, same.channels, same.refs) == (counts.posts, counts.channels, counts.refs)


def test_samples_take_the_same_hours_of_earlier_days_since_counting_began() -> None:
    days = {DAY - 1: {12: 4, 11: 1}, DAY - 2: {10: 2}, DAY - 5: {12: 9}}
    samples = window_samples(days, NOON, since_day=DAY - 3, config=CFG)
    assert samples == [5, 2, 0]  # yesterday 10-12h, the day before, then an empty day
    assert window_hours_of(NOON, CFG) == (NOON - 2, NOON - 1, NOON)


def test_window_spanning_midnight_reads_two_days() -> None:
    end = DAY * 24 + 1  # 01:00: window is 23:00, 00:00, 01:00
    days = {DAY - 2: {23: 3}, DAY - 1: {0: 1, 1: 1}}
    assert window_samples(days, end, since_day=DAY - 10, config=CFG)[0] == 5


def test_baseline_is_robust_to_one_busy_day() -> None:
    quiet = baseline_of([2, 3, 2, 4, 3, 2, 3, 90])
    assert quiet.usual == 3.0
    assert quiet.spread < 2
    assert quiet.days == 8


def test_floor_keeps_a_quiet_watch_from_firing_on_two_posts() -> None:
    empty = baseline_of([0] * 20)
    assert surge_ratio(_window(2, 2), empty, CFG) is None
    assert surge_ratio(_window(7, 7), empty, CFG) is None  # under min_posts
    assert surge_ratio(_window(20, 1), empty, CFG) is None  # one channel is not a campaign
    assert surge_ratio(_window(8, 3), empty, CFG) == 8.0  # usual counts as one post


def test_surge_must_beat_ratio_and_spread() -> None:
    steady = baseline_of([10, 12, 9, 11, 10, 13, 8, 10, 11, 10])
    assert surge_ratio(_window(25, 10), steady, CFG) is None  # 2.5× usual
    ratio = surge_ratio(_window(40, 10), steady, CFG)
    assert ratio == 4.0
    noisy = Baseline(usual=10, spread=8, days=20)
    assert threshold(noisy, 1.0, CFG) == 50  # usual + 5 × spread beats 3 × usual
    assert surge_ratio(_window(45, 10), noisy, CFG) is None


def test_partial_hour_scales_the_usual_level() -> None:
    steady = baseline_of([30] * 10)
    assert surge_ratio(_window(80, 10, elapsed=1.0), steady, CFG) is None  # 90 needed
    # Two hours and a tenth elapsed: usual is 21, so 80 posts is 3.8× usual.
    ratio = surge_ratio(_window(80, 10, elapsed=0.1), steady, CFG)
    assert ratio is not None and abs(ratio - 80 / 21) < 1e-9


def test_no_surge_without_enough_history() -> None:
    young = baseline_of([0])
    assert threshold(young, 1.0, CFG) == math.inf
    assert surge_ratio(_window(50, 10), young, CFG) is None
    assert surge_ratio(_window(50, 10), young, SurgeConfig(min_history_days=0)) is not None


def test_new_words_are_frequent_now_and_rare_before() -> None:
    before = [("мигрант", "выслать", "сегодня"), ("мигрант", "сегодня")] * 20
    now = [("мигрант", "сегодня", "зангезур", "коридор")] * 8 + [("мигрант", "сегодня")] * 2
    words = new_words(word_posts(now, CFG), len(now), word_posts(before, CFG), len(before), CFG)
    assert words == ("зангезур", "коридор")
    assert new_words({}, 0, {}, 0, CFG) == ()
    # A word in only two posts of ten is not enough to name.
    assert new_words({"редкое": 2}, 10, {}, 0, CFG) == ()


def test_sample_words_are_distinct_long_and_not_numbers() -> None:
    assert sample_words(["а", "это", "2024", "коридор", "это", "зангезурский"], 2) == (
        "зангезурский",
        "коридор",
    )


def test_alert_carries_counts_top_channels_and_chart_series() -> None:
    window = SurgeWindow(7, NOON, 30, {1: 3, 2: 20, 3: 7}, 1.0)
    days = {DAY: {12: 20, 11: 6, 10: 4}, DAY - 1: {12: 1}}
    base = baseline_of([1, 0, 2])
    alert = make_alert(window, base, 30.0, CFG, words=("x",), day_hours=days, since_day=DAY - 3)
    assert (alert.posts, alert.channels, alert.window_hours) == (30, 3, 3)
    assert alert.top_channels == ((2, 20), (3, 7), (1, 3))
    assert len(alert.hourly) == CFG.chart_hours
    assert alert.hourly[-3:] == (4, 6, 20)
    assert len(alert.usual_hourly) == CFG.chart_hours
    assert alert.at == (NOON + 1) * HOUR_S
    profile = hourly_profile(days, DAY, DAY - 3, CFG)
    assert profile[12] == 0.0  # median of 1, 0, 0


def test_alert_round_trips_through_its_dict() -> None:
    alert = SurgeAlert(7, 30, 3, 3, 6.5, ((2, 20),), ("коридор",), 4.0, NOON, (1, 2), (0.5, 1.0))
    assert SurgeAlert.from_dict(alert.to_dict()) == alert
