"""Surge detection: a watch whose matching posts run well above its usual level.

Pure and deterministic: the triage worker feeds it what a batch matched (`SurgeObservation`:
post time, watch, channel, message), `SurgeCounts` aggregates a batch so
the repository (`bot.storage.campaigns`) can write it in the batch's own pipeline, and the
decision functions take the counts the repository read back.

The repository keeps, besides the counts, references to a bounded sample of the matching
posts (the window's, and some of each day's); their words are read from the archive only when
a surge is found, so the hot path writes no words.

The model, per watch, in UTC hour buckets:
- **window**: the last `window_hours` buckets, the current (partial) one included;
- **baseline**: for each of up to `baseline_days` previous days (since counting began for the
  watch), the posts in the same buckets of that day; its median is the usual level and its
  MAD (×1.4826, a standard deviation for normal data) the usual spread. Median and MAD ignore
  the odd busy day, so a past surge does not raise the bar for the next one;
- **surge** when the window holds at least `min_posts` posts from at least `min_channels`
  channels, and more than `min_ratio` × usual, more than usual + `mad_k` × spread and more than
  usual + `poisson_z` × √usual (all scaled to the part of the window that has elapsed; the root
  is how much a small count varies by chance, which MAD over a few integers understates). The
  floor keeps a quiet watch (usual 0) from firing on two posts; the channel floor keeps one
  chatty channel from being a campaign.
- **new words**: words in many of the window's posts and in few of the baseline's (a bounded
  sample of words per post on both sides), ranked by how much more often they occur now.

At most one surge alert per watch per `cooldown_hours`: the repository claims it in one script
step (several triage workers may see the same surge).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Baseline",
    "SurgeAlert",
    "SurgeConfig",
    "SurgeCounts",
    "SurgeObservation",
    "SurgeWindow",
    "baseline_of",
    "day_of",
    "hour_of",
    "hourly_profile",
    "make_alert",
    "new_words",
    "observations",
    "sample_words",
    "surge_ratio",
    "threshold",
    "window_hours_of",
    "window_samples",
    "word_posts",
    "worth_checking",
]

HOUR_S = 3600
DAY_S = 86400
MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True, slots=True)
class SurgeConfig:
    window_hours: int = 3
    baseline_days: int = 56  # eight weeks of history, kept by the repository
    min_history_days: int = 2  # a watch younger than this (or counting) never surges
    min_posts: int = 8  # floor: fewer posts in the window are never a surge
    min_channels: int = 3  # a surge is across channels, not one channel's busy hour
    min_ratio: float = 3.0  # the window must hold more than this × the usual posts
    mad_k: float = 5.0  # ... and more than usual + mad_k × the usual spread
    poisson_z: float = 5.0  # ... and more than usual + z × √usual (counts this small vary so)
    cooldown_hours: int = 6
    words_per_post: int = 12  # words of a post sampled for new words (longest, distinct)
    window_refs: int = 40  # posts per watch per hour kept for the window's words
    sample_days: int = 14  # days of that sample (within the archive's window)
    new_words: int = 6  # how many new words an alert names
    top_channels: int = 5
    chart_hours: int = 72  # hourly series an alert carries for its chart

    @property
    def cooldown_s(self) -> int:
        return self.cooldown_hours * HOUR_S


@dataclass(frozen=True, slots=True)
class SurgeObservation:
    """One post that matched one watch. `watch_id` is the surge subject: pass one id per
    distinct query (for a shared watch's subscribers, the same id for all of them, for example
    the negated shared watch id), so a post counts once however many analysts follow it."""

    at: float  # the post's date, unix seconds
    watch_id: int
    channel_id: int
    message_id: int


def observations(
    at: float, channel_id: int, message_id: int, watch_ids: Iterable[int]
) -> list[SurgeObservation]:
    """The observations of one post that matched these watches."""
    return [SurgeObservation(at, w, channel_id, message_id) for w in sorted(set(watch_ids))]


def hour_of(at: float) -> int:
    """The UTC hour bucket (hours since the epoch)."""
    return int(at // HOUR_S)


def day_of(hour: int) -> int:
    return hour // 24


def sample_words(words: Iterable[str], limit: int) -> tuple[str, ...]:
    """The post's words kept for new-word counts: distinct, 3+ letters, not numbers; the
    longest first (long words carry the names and coinages), ties in alphabetical order."""
    distinct = {w for w in words if len(w) >= 3 and not w.isdigit()}
    return tuple(sorted(distinct, key=lambda w: (-len(w), w))[:limit])


def word_posts(posts: Iterable[Iterable[str]], config: SurgeConfig) -> Counter[str]:
    """Posts per word over posts given as their normalised words (each post's sample)."""
    counts: Counter[str] = Counter()
    for words in posts:
        counts.update(sample_words(words, config.words_per_post))
    return counts


def surge_ref(watch_id: int, end_hour: int) -> str:
    """One surge alert's name ('subject:end hour'): the record of its telling, its chart."""
    return f"{watch_id}:{end_hour}"


def parse_surge_ref(ref: str) -> tuple[int, int] | None:
    subject, _, end = ref.partition(":")
    try:
        return int(subject), int(end)
    except ValueError:
        return None


@dataclass
class SurgeCounts:
    """One batch's increments, aggregated in memory so the repository writes each (watch,
    hour) once. A (watch, channel, message) pair counts once (a redelivered or edited post, or
    a shared watch's many subscribers)."""

    posts: Counter[tuple[int, int]] = field(default_factory=Counter)  # (watch, hour) -> posts
    # (watch, hour) -> channel -> posts (plain dicts: a Counter costs a call to make)
    channels: dict[tuple[int, int], dict[int, int]] = field(default_factory=dict)
    refs: dict[tuple[int, int], list[tuple[int, int]]] = field(default_factory=dict)
    _seen: set[tuple[int, int, int]] = field(default_factory=set, repr=False)

    @classmethod
    def of(cls, observations: Iterable[SurgeObservation]) -> SurgeCounts:
        counts = cls()
        for obs in observations:
            counts.add(obs)
        return counts

    def add_post(
        self, at: float, channel_id: int, message_id: int, watch_ids: Iterable[int]
    ) -> int:
        """Count one post for each of the watches it matched; returns how many counted."""
        hour = hour_of(at)
        added = 0
        seen, posts, channels, refs = self._seen, self.posts, self.channels, self.refs
        ref = (channel_id, message_id)
        for watch_id in watch_ids:  # every matched watch of every post: kept lean
            key = (watch_id, channel_id, message_id)
            if key in seen:
                continue
            seen.add(key)
            slot = (watch_id, hour)
            posts[slot] += 1
            counted = channels.get(slot)
            if counted is None:
                channels[slot] = {channel_id: 1}
                refs[slot] = [ref]
            else:
                counted[channel_id] = counted.get(channel_id, 0) + 1
                refs[slot].append(ref)
            added += 1
        return added

    def add(self, obs: SurgeObservation) -> bool:
        key = (obs.watch_id, obs.channel_id, obs.message_id)
        if key in self._seen:
            return False
        self._seen.add(key)
        slot = (obs.watch_id, hour_of(obs.at))
        self.posts[slot] += 1
        counted = self.channels.setdefault(slot, {})
        counted[obs.channel_id] = counted.get(obs.channel_id, 0) + 1
        self.refs.setdefault(slot, []).append((obs.channel_id, obs.message_id))
        return True

    @property
    def watches(self) -> set[int]:
        return {w for w, _h in self.posts}

    def __bool__(self) -> bool:
        return bool(self.posts)


def window_hours_of(end_hour: int, config: SurgeConfig) -> tuple[int, ...]:
    """The hour buckets of the window that ends with (and includes) `end_hour`."""
    return tuple(range(end_hour - config.window_hours + 1, end_hour + 1))


@dataclass(frozen=True, slots=True)
class SurgeWindow:
    """What the repository holds for a watch's current window."""

    watch_id: int
    end_hour: int
    posts: int
    channels: Mapping[int, int]  # channel id -> posts in the window
    elapsed: float = 1.0  # fraction of the current (last) hour that has passed

    def coverage(self, config: SurgeConfig) -> float:
        """The share of a full window that has elapsed (the baseline's days are whole)."""
        w = config.window_hours
        return (w - 1 + min(1.0, max(0.0, self.elapsed))) / w


@dataclass(frozen=True, slots=True)
class Baseline:
    usual: float  # median posts in the window's hours, over the history days
    spread: float  # MAD × 1.4826
    days: int  # history days the figures come from


def worth_checking(window: SurgeWindow, config: SurgeConfig) -> bool:
    """The floors: below them no baseline needs reading."""
    return window.posts >= config.min_posts and len(window.channels) >= config.min_channels


def window_samples(
    day_hours: Mapping[int, Mapping[int, int]],
    end_hour: int,
    since_day: int,
    config: SurgeConfig,
) -> list[int]:
    """Posts in the window's hours on each previous day since `since_day`.

    `day_hours` maps a day (days since the epoch) to {hour of day: posts}; a day missing from
    it had no matching post."""
    hours = window_hours_of(end_hour, config)
    today = day_of(end_hour)
    samples: list[int] = []
    for back in range(1, config.baseline_days + 1):
        if today - back < since_day:
            break
        total = 0
        for hour in hours:
            h = hour - back * 24
            total += day_hours.get(day_of(h), {}).get(h % 24, 0)
        samples.append(total)
    return samples


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        return 0.0
    mid = n // 2
    return float(ordered[mid]) if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def baseline_of(samples: Sequence[int]) -> Baseline:
    usual = _median(samples)
    mad = _median([abs(s - usual) for s in samples])
    return Baseline(usual=usual, spread=MAD_TO_SIGMA * mad, days=len(samples))


def threshold(baseline: Baseline, coverage: float, config: SurgeConfig) -> float:
    """Posts the window must exceed (strictly) to be a surge; infinite without history."""
    if baseline.days < config.min_history_days:
        return math.inf
    usual = baseline.usual * coverage
    return max(
        config.min_posts - 1.0,
        usual * config.min_ratio,
        usual + config.mad_k * baseline.spread * coverage,
        # Small counts: the median's neighbours are few integers, so MAD understates how much
        # a count of about `usual` varies by chance; a Poisson count varies by its root.
        usual + config.poisson_z * math.sqrt(max(usual, 1.0)),
    )


def surge_ratio(window: SurgeWindow, baseline: Baseline, config: SurgeConfig) -> float | None:
    """The window's posts against usual (at least one post) when it is a surge, else None."""
    if not worth_checking(window, config):
        return None
    coverage = window.coverage(config)
    if window.posts <= threshold(baseline, coverage, config):
        return None
    return window.posts / max(1.0, baseline.usual * coverage)


def new_words(
    window_words: Mapping[str, int],
    window_posts: int,
    baseline_words: Mapping[str, int],
    baseline_posts: int,
    config: SurgeConfig,
    *,
    exclude: Iterable[str] = (),
) -> tuple[str, ...]:
    """Words in at least a fifth of the window's posts (and 3) whose share of the baseline's
    posts is under a fifth of their share now; the biggest rise first, then the commonest.

    Both sides count posts per word in a sample (`sample_words`); the baseline's counts must
    not include the window's (the repository subtracts them)."""
    if window_posts <= 0:
        return ()
    skip = set(exclude)
    need = max(3, math.ceil(window_posts / 5))
    scored: list[tuple[float, int, str]] = []
    for word, n in window_words.items():
        if n < need or word in skip:
            continue
        share_now = n / window_posts
        before = max(0, baseline_words.get(word, 0))
        # Laplace-smoothed: a word never seen before is as rare as one post in the baseline.
        share_before = (before + 1) / (max(0, baseline_posts) + 1)
        rise = share_now / share_before
        if share_before * 5 <= share_now:
            scored.append((rise, n, word))
    scored.sort(key=lambda t: (-t[0], -t[1], t[2]))
    return tuple(w for _r, _n, w in scored[: config.new_words])


def hourly_profile(
    day_hours: Mapping[int, Mapping[int, int]], today: int, since_day: int, config: SurgeConfig
) -> tuple[float, ...]:
    """The usual posts per hour of day (median over the history days), for the chart."""
    days = [d for d in range(today - config.baseline_days, today) if d >= since_day]
    if not days:
        return (0.0,) * 24
    return tuple(_median([day_hours.get(d, {}).get(h, 0) for d in days]) for h in range(24))


@dataclass(frozen=True, slots=True)
class SurgeAlert:
    watch_id: int
    posts: int  # matching posts in the window
    channels: int  # distinct channels among them
    window_hours: int
    ratio: float  # posts / usual posts in the same hours (usual at least one post)
    top_channels: tuple[tuple[int, int], ...]  # (channel id, posts), most first
    new_words: tuple[str, ...]
    usual: float = 0.0  # the usual posts in the same (elapsed) hours
    end_hour: int = 0  # the window's last hour bucket (hours since the epoch, UTC)
    hourly: tuple[int, ...] = ()  # posts per hour up to end_hour, oldest first (chart)
    usual_hourly: tuple[float, ...] = ()  # the usual posts per hour for the same hours

    @property
    def at(self) -> float:
        """Unix time of the end of the window's last hour."""
        return float((self.end_hour + 1) * HOUR_S)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (an alerts-stream payload; the chart is drawn from it later)."""
        return {
            "watch_id": self.watch_id,
            "posts": self.posts,
            "channels": self.channels,
            "window_hours": self.window_hours,
            "ratio": self.ratio,
            "top_channels": [list(tc) for tc in self.top_channels],
            "new_words": list(self.new_words),
            "usual": self.usual,
            "end_hour": self.end_hour,
            "hourly": list(self.hourly),
            "usual_hourly": list(self.usual_hourly),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SurgeAlert:
        """Raises KeyError, TypeError or ValueError on a malformed payload."""
        return cls(
            watch_id=int(data["watch_id"]),
            posts=int(data["posts"]),
            channels=int(data["channels"]),
            window_hours=int(data["window_hours"]),
            ratio=float(data["ratio"]),
            top_channels=tuple((int(c), int(n)) for c, n in data.get("top_channels", ())),
            new_words=tuple(str(w) for w in data.get("new_words", ())),
            usual=float(data.get("usual", 0.0)),
            end_hour=int(data.get("end_hour", 0)),
            hourly=tuple(int(v) for v in data.get("hourly", ())),
            usual_hourly=tuple(float(v) for v in data.get("usual_hourly", ())),
        )


def make_alert(
    window: SurgeWindow,
    baseline: Baseline,
    ratio: float,
    config: SurgeConfig,
    *,
    words: tuple[str, ...] = (),
    day_hours: Mapping[int, Mapping[int, int]] | None = None,
    since_day: int | None = None,
) -> SurgeAlert:
    top = sorted(window.channels.items(), key=lambda kv: (-kv[1], kv[0]))[: config.top_channels]
    hourly: tuple[int, ...] = ()
    usual_hourly: tuple[float, ...] = ()
    if day_hours is not None:
        first = window.end_hour - config.chart_hours + 1
        hourly = tuple(
            day_hours.get(day_of(h), {}).get(h % 24, 0) for h in range(first, window.end_hour + 1)
        )
        profile = hourly_profile(
            day_hours,
            day_of(window.end_hour),
            since_day if since_day is not None else day_of(first),
            config,
        )
        usual_hourly = tuple(profile[h % 24] for h in range(first, window.end_hour + 1))
    return SurgeAlert(
        watch_id=window.watch_id,
        posts=window.posts,
        channels=len(window.channels),
        window_hours=config.window_hours,
        ratio=round(ratio, 1),
        top_channels=tuple(top),
        new_words=words,
        usual=round(baseline.usual * window.coverage(config), 2),
        end_hour=window.end_hour,
        hourly=hourly,
        usual_hourly=usual_hourly,
    )
