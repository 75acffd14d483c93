"""Spelling tricks that dodge keyword filters: caught, highlighted where written, and no
false positives on plain text."""

from __future__ import annotations

import pytest

from bot.triage.index import WatchIndex, WatchSpec
from bot.triage.normalise import normalise


def matched(query: str, text: str, language: str = "ru") -> list[str]:
    index = WatchIndex()
    index.add(WatchSpec(1, 1, query))
    found = index.match(normalise(text), language=language, channel_id=1)
    return [text[s:e] for m in found for s, e in m.spans]


@pytest.mark.parametrize(
    "disguised",
    [
        "мигр4нты",  # digit for a letter
        "м1гранты",
        "миграаанты",  # letters repeated
        "мигрαнты",  # Greek alpha
        "мигрáнты",  # Latin á
        "ми\u0300гранты",  # grave stress: NFKC makes it ѝ
        "м\u3164игранты",  # Hangul filler inside the word
        "ми\u2060гранты",  # word joiner
        "мигра\ufe0fнты",  # variation selector
        "мигра\U000e0041нты",  # tag character
        "мигрa\u0301нты",  # combining acute on a Latin a
        "migrantov",  # transliteration
    ],
)
def test_disguised_word_is_caught_and_highlighted_as_written(disguised: str) -> None:
    text = f"Всех {disguised} — на фронт! <b>&amp;</b> 🔥"
    assert matched("мигрант", text) == [disguised]


def test_whole_word_in_look_alike_latin_capitals() -> None:
    assert matched("Ахмат", "Батальон AXMAT вышел") == ["AXMAT"]
    assert matched("СВО", "Итоги CBO за неделю") == ["CBO"]
    # Not in a Latin-script post: an English 'cbo' stays English.
    assert matched("СВО", "The CBO report", language="en") == []


def test_plain_text_gets_no_new_matches() -> None:
    text = "Мигранты и миграция: 2024 год, ту154, covid19, 5g, мама 33 года"
    assert matched("мама", text) == ["мама"]
    assert matched("миграция", text) == ["миграция"]
    assert matched("мигрант", "Миграция растёт, а мир молчит") == []
    assert matched("мост", "most people agree", language="en") == []


def test_hostile_text_does_not_break_matching() -> None:
    text = ("м4" * 5000) + "\u202e" + "ааааааааааааа" + "\u3164" * 100 + "<&>" + "мигр4нты"
    assert matched("мигрант", text) == ["мигр4нты"]
    assert matched("мигрант", "\u200f\u05de\u05dc\u05d7\u05de\u05d4 мигр4нты") == ["мигр4нты"]
