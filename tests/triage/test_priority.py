"""Priority: watch priority, channel weight, match strength and the relevance seam."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from bot.models import Post
from bot.triage.engine import TriageEngine, WatchSpec
from bot.triage.index import WatchMatch
from bot.triage.language import LanguageGuess, make_detector
from bot.triage.normalise import NormalisedText
from bot.triage.priority import (
    NeutralRelevance,
    Prioritised,
    PriorityError,
    Relevance,
    check_priority,
    prioritise,
    rank,
)

# (watch, channel, terms, watches, relevance steps) -> (level, reasons)
TABLE = [
    ("normal", "normal", 1, 1, 0, "normal", ("watch priority normal",)),
    ("high", "normal", 1, 1, 0, "high", ("watch priority high",)),
    ("normal", "high", 1, 1, 0, "high", ("watch priority normal", "channel weight high")),
    ("normal", "urgent", 1, 1, 0, "urgent", ("watch priority normal", "channel weight urgent")),
    ("high", "urgent", 1, 1, 0, "urgent", ("watch priority high", "channel weight urgent")),
    ("normal", "low", 1, 1, 0, "low", ("watch priority normal", "channel weight low")),
    ("low", "low", 1, 1, 0, "low", ("watch priority low", "channel weight low")),
    ("low", "normal", 3, 1, 0, "normal", ("watch priority low", "3 terms matched")),
    (
        "normal",
        "normal",
        1,
        2,
        0,
        "high",
        ("watch priority normal", "2 of your watches matched"),
    ),
    (
        "urgent",
        "high",
        4,
        3,
        0,
        "urgent",
        ("watch priority urgent", "channel weight high", "4 terms matched"),
    ),
    ("high", "normal", 1, 1, -1, "normal", ("watch priority high", "relevance -1")),
]


@pytest.mark.parametrize(
    ("watch", "channel", "terms", "watches", "steps", "level", "reasons"), TABLE
)
def test_priority_table(
    watch: str,
    channel: str,
    terms: int,
    watches: int,
    steps: int,
    level: str,
    reasons: tuple[str, ...],
) -> None:
    result = prioritise(
        watch_priority=watch,
        channel_weight=channel,
        terms_matched=terms,
        watches_matched=watches,
        relevance=Relevance(steps),
    )
    assert result == Prioritised(level, reasons)


def test_relevance_reason_is_kept_and_neutral_changes_nothing() -> None:
    result = prioritise(
        watch_priority="normal", relevance=Relevance(1, "analysts found similar posts relevant")
    )
    assert result == Prioritised(
        "high", ("watch priority normal", "analysts found similar posts relevant")
    )
    match = WatchMatch(1, 2, ("x",), ((0, 1),))
    post = Post(channel_id=1, message_id=1, date=datetime(2025, 1, 1, tzinfo=UTC), text="x")
    assert NeutralRelevance().assess(post, match, LanguageGuess("en", 1.0)) == Relevance()


def test_priority_names() -> None:
    assert check_priority(" High ") == "high"
    assert [rank(p) for p in ("low", "normal", "high", "urgent")] == [0, 1, 2, 3]
    for bad in ("", "critical", "<b>", "1"):
        with pytest.raises(PriorityError):
            check_priority(bad)


class _Doubter:
    """A relevance model that thinks every match from channel 13 is noise."""

    def assess(
        self,
        post: Post,
        match: WatchMatch,
        language: LanguageGuess,
        normalised: NormalisedText | None = None,
    ) -> Relevance:
        assert normalised is not None  # the engine hands over the text it normalised
        if post.channel_id == 13:
            return Relevance(-2, "analysts marked this channel's matches as noise")
        return Relevance()


def test_engine_uses_channel_weights_and_the_relevance_model() -> None:
    weights = {7: "high", 8: "low", 9: "bogus"}
    engine = TriageEngine(
        make_detector(),
        channel_weights=lambda cid: weights.get(cid, "normal"),
        relevance=_Doubter(),
    )
    engine.add_watch(WatchSpec(1, 10, "мигрант", "high"))

    def triage(channel_id: int) -> tuple[str, tuple[str, ...]]:
        post = Post(
            channel_id=channel_id,
            message_id=1,
            date=datetime(2025, 1, 1, tzinfo=UTC),
            text="Мигранты прибыли в город",
        )
        (m,) = engine.triage(post).matches
        return m.priority, m.reasons

    assert triage(7) == ("urgent", ("watch priority high", "channel weight high"))
    assert triage(8) == ("normal", ("watch priority high", "channel weight low"))
    assert triage(9) == ("high", ("watch priority high",))  # unknown weight: normal
    assert triage(13) == (
        "low",
        ("watch priority high", "analysts marked this channel's matches as noise"),
    )


class _Holder:
    """A model that holds the alerts of channel 13 (confident noise), in one call per post."""

    def assess(
        self,
        post: Post,
        match: WatchMatch,
        language: LanguageGuess,
        normalised: NormalisedText | None = None,
    ) -> Relevance:
        raise AssertionError("the engine calls assess_all when the model has it")

    def assess_all(
        self,
        post: Post,
        matches: Sequence[WatchMatch],
        language: LanguageGuess,
        normalised: NormalisedText | None = None,
    ) -> list[Relevance]:
        if post.channel_id == 13:
            return [Relevance(-1, "learned ↓: like posts you marked noise", hold=True)] * len(
                matches
            )
        return [Relevance()] * len(matches)


def test_a_held_alert_is_marked_held_and_others_are_not() -> None:
    assert Relevance().hold is False
    engine = TriageEngine(make_detector(), relevance=_Holder())
    engine.add_watch(WatchSpec(1, 10, "мигрант", "normal"))
    engine.add_watch(WatchSpec(2, 11, "мигрант OR город", "normal"))

    def triage(channel_id: int) -> list[tuple[str, bool]]:
        post = Post(
            channel_id=channel_id,
            message_id=1,
            date=datetime(2025, 1, 1, tzinfo=UTC),
            text="Мигранты прибыли в город",
        )
        return [(m.priority, m.held) for m in engine.triage(post).matches]

    assert triage(13) == [("low", True), ("low", True)]
    assert triage(14) == [("normal", False), ("normal", False)]
