"""Triage of one post: normalise, identify the language, match the watch index, prioritise.

One `TriageEngine` per worker (it is not thread-safe); the worker keeps it in step with the
watches repository through `add_watch` / `remove_watch`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot.models import Post
from bot.triage.index import WatchIndex, WatchMatch, WatchSpec
from bot.triage.language import LanguageDetector, LanguageGuess
from bot.triage.normalise import NormalisedText, normalise
from bot.triage.priority import (
    BatchRelevanceModel,
    NeutralRelevance,
    PriorityError,
    Relevance,
    RelevanceModel,
    check_priority,
    prioritise,
)
from bot.triage.query import Query

__all__ = ["ScoredMatch", "TriageEngine", "TriageResult", "WatchMatch", "WatchSpec"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ScoredMatch:
    """A watch that matched, with the alert's priority and the reasons for it."""

    watch_id: int
    owner_id: int
    terms: tuple[str, ...]
    spans: tuple[tuple[int, int], ...]  # in the ORIGINAL post text, sorted, non-overlapping
    priority: str  # urgent | high | normal | low
    reasons: tuple[str, ...]
    query: str = ""  # the watch's query as the analyst wrote it
    held: bool = False  # the analyst's learned model judged it noise with confidence: digest
    learned: bool = False  # the learned model moved its priority (or held it)

    @property
    def match(self) -> WatchMatch:
        return WatchMatch(self.watch_id, self.owner_id, self.terms, self.spans)


@dataclass(frozen=True, slots=True)
class TriageResult:
    language: LanguageGuess
    matches: tuple[ScoredMatch, ...]
    normalised: NormalisedText | None = None


class TriageEngine:
    """Matches posts against every active watch (see bot.triage.index for how)."""

    def __init__(
        self,
        detector: LanguageDetector,
        *,
        channel_weights: Callable[[int], str] | None = None,
        relevance: RelevanceModel | None = None,
    ) -> None:
        self._detector = detector
        self._channel_weights = channel_weights
        self._relevance: RelevanceModel = relevance or NeutralRelevance()
        self._assess_all = (
            relevance.assess_all if isinstance(relevance, BatchRelevanceModel) else None
        )
        self._index = WatchIndex()

    @property
    def watch_count(self) -> int:
        return len(self._index)

    def add_watch(self, spec: WatchSpec) -> Query:
        """Add or replace (same id) a watch; raises QueryError, or PriorityError."""
        spec = WatchSpec(spec.id, spec.owner_id, spec.query, check_priority(spec.priority))
        return self._index.add(spec)

    def remove_watch(self, watch_id: int) -> None:
        self._index.remove(watch_id)

    def has_watch(self, watch_id: int) -> bool:
        return watch_id in self._index

    def triage(self, post: Post) -> TriageResult:
        """Language, matches and priorities of one post (none for a deleted post)."""
        nt = normalise(post.text)
        language = self._detector.detect(post.text)  # it reads the first DETECT_CHARS only
        if post.event == "delete":
            return TriageResult(language, (), nt)
        found = self._index.match_with_specs(nt, language.code, post.channel_id, post.username)
        if not found:
            return TriageResult(language, (), nt)
        weight = self._weight(post.channel_id)
        per_owner = Counter(match.owner_id for _, match in found)
        relevances: Sequence[Relevance | None]
        if self._assess_all is not None:
            relevances = self._assess_all(post, [match for _, match in found], language, nt)
        elif isinstance(self._relevance, NeutralRelevance):
            relevances = [None] * len(found)
        else:
            assess = self._relevance.assess
            relevances = [assess(post, match, language, nt) for _, match in found]
        scored = []
        for (spec, match), relevance in zip(found, relevances, strict=True):
            priority = prioritise(
                watch_priority=spec.priority,
                channel_weight=weight,
                terms_matched=len(match.terms),
                watches_matched=per_owner[match.owner_id],
                relevance=relevance,
            )
            scored.append(
                ScoredMatch(
                    match.watch_id,
                    match.owner_id,
                    match.terms,
                    match.spans,
                    priority.level,
                    priority.reasons,
                    spec.query,
                    relevance is not None and relevance.hold,
                    relevance is not None and (relevance.steps != 0 or relevance.hold),
                )
            )
        return TriageResult(language, tuple(scored), nt)

    def _weight(self, channel_id: int) -> str:
        if self._channel_weights is None:
            return "normal"
        weight = self._channel_weights(channel_id)
        try:
            return check_priority(weight)
        except PriorityError:
            log.warning("channel %s has an unknown weight; using normal", channel_id)
            return "normal"
