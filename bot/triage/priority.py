"""Alert priority: urgent | high | normal | low, with the reasons in words.

The watch's own priority is the starting point. The channel's admin-set weight moves it (an
urgent channel two steps up, high one up, low one down), a strong match (several distinct
terms of the watch, or several of the analyst's watches on one post) moves it one step up, and
a `RelevanceModel` — the learned model from analyst feedback (bot.triage.relevance) — may move
it too, and may hold the alert for the digest (`Relevance.hold`). The
result never leaves the four levels. The default model changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Sequence

    from bot.models import Post
    from bot.triage.index import WatchMatch
    from bot.triage.language import LanguageGuess
    from bot.triage.normalise import NormalisedText


class Priority(StrEnum):
    """The four alert levels, the one vocabulary for watches, channel weights, thresholds and
    alerts. Iterating gives them from the most to the least urgent."""

    URGENT = "urgent"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"

    @property
    def rank(self) -> int:
        """0 for low … 3 for urgent (sorting alerts, comparing with thresholds)."""
        return _RANK[self.value]


PRIORITIES: tuple[str, ...] = tuple(p.value for p in Priority)  # most urgent first
LEVELS: tuple[str, ...] = tuple(reversed(PRIORITIES))  # ascending
_RANK = {name: rank for rank, name in enumerate(LEVELS)}
_CHANNEL_STEP = {"urgent": 2, "high": 1, "normal": 0, "low": -1}
# A match this strong raises the priority one step.
STRONG_TERMS = 3
STRONG_WATCHES = 2


class PriorityError(ValueError):
    """Not one of urgent, high, normal, low."""


def check_priority(value: str) -> str:
    """The priority name, lower-cased; raises PriorityError for anything else."""
    if value in _RANK:
        return value
    name = value.strip().casefold()
    if name not in _RANK:
        raise PriorityError(f"priority must be one of urgent, high, normal, low, not {value!r}")
    return name


def rank(level: str) -> int:
    """0 for low … 3 for urgent (for sorting alerts and comparing with thresholds)."""
    return _RANK[level]


@dataclass(frozen=True, slots=True)
class Relevance:
    """What a relevance model says about one match: steps up (+) or down (-), and why.

    `hold`: the model judges the alert noise with confidence, so it goes to the analyst's
    digest whatever its level (nothing is dropped; delivery decides how to honour it).
    """

    steps: int = 0
    reason: str | None = None
    hold: bool = False


class RelevanceModel(Protocol):
    """The seam for the learned relevance model (analyst feedback: relevant / noise).

    `normalised` is the post's text as the engine already normalised it, so a model need not
    normalise it again for every match (see bot.triage.relevance.LearnedRelevance).
    """

    def assess(
        self,
        post: Post,
        match: WatchMatch,
        language: LanguageGuess,
        normalised: NormalisedText | None = None,
    ) -> Relevance: ...


@runtime_checkable
class BatchRelevanceModel(RelevanceModel, Protocol):
    """A model that assesses all matches of one post in one call (in the matches' order), so
    it can score the post once for every analyst it matched."""

    def assess_all(
        self,
        post: Post,
        matches: Sequence[WatchMatch],
        language: LanguageGuess,
        normalised: NormalisedText | None = None,
    ) -> Sequence[Relevance]: ...


class NeutralRelevance:
    """The default model: no opinion, so no change."""

    def assess(
        self,
        post: Post,
        match: WatchMatch,
        language: LanguageGuess,
        normalised: NormalisedText | None = None,
    ) -> Relevance:
        return Relevance()


@dataclass(frozen=True, slots=True)
class Prioritised:
    """The level an alert gets, and the reasons for it in words."""

    level: str
    reasons: tuple[str, ...]


def prioritise(
    *,
    watch_priority: str,
    channel_weight: str = "normal",
    terms_matched: int = 1,
    watches_matched: int = 1,
    relevance: Relevance | None = None,
) -> Prioritised:
    """Combine the watch priority, channel weight, match strength and relevance."""
    steps, reason = (relevance.steps, relevance.reason) if relevance is not None else (0, None)
    return _prioritise(
        check_priority(watch_priority),
        check_priority(channel_weight),
        terms_matched,
        watches_matched,
        steps,
        reason,
    )


@lru_cache(maxsize=4096)
def _prioritise(
    watch_priority: str,
    channel_weight: str,
    terms_matched: int,
    watches_matched: int,
    steps: int,
    reason: str | None,
) -> Prioritised:
    level = _RANK[watch_priority]
    reasons = [f"watch priority {watch_priority}"]
    step = _CHANNEL_STEP[channel_weight]
    if step:
        level += step
        reasons.append(f"channel weight {channel_weight}")
    if terms_matched >= STRONG_TERMS:
        level += 1
        reasons.append(f"{terms_matched} terms matched")
    elif watches_matched >= STRONG_WATCHES:
        level += 1
        reasons.append(f"{watches_matched} of your watches matched")
    if steps:
        level += steps
        reasons.append(reason or f"relevance {steps:+d}")
    return Prioritised(LEVELS[min(max(level, 0), len(LEVELS) - 1)], tuple(reasons))
