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
        "м и г р а н т ы",  # letters spaced out
        "м.и.г.р.а.н.т.ы",  # dotted
        "м-и-г-р-а-н-т-ы",  # hyphenated
        "м. и. г. р. а. н. т. ы",
        "М И Г Р A Н Т Ы",  # spaced, with a Latin A
        "м*гранты",  # a mask for one letter
        "м_гранты",
        "м#гранты",
        "мигр*нтов",
        "мигр*нт*в",  # two masks
        "мигрант*в",  # a mask in the ending
        "м*гр4нты",  # a mask and a digit
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


def matched_terms(queries: list[str], text: str, language: str = "ru") -> dict[str, list[str]]:
    index = WatchIndex()
    for i, query in enumerate(queries, start=1):
        index.add(WatchSpec(i, 1, query))
    found = index.match(normalise(text), language=language, channel_id=1)
    return {queries[m.watch_id - 1]: [text[s:e] for s, e in m.spans] for m in found}


def test_spaced_out_word_is_also_indexed_as_written() -> None:
    text = "Всем м и г р а н т а м — на фронт"
    found = matched_terms(["мигрант", '"мигрантам на фронт"', '"м и г"', "=м"], text)
    assert found == {
        "мигрант": ["м и г р а н т а м"],
        '"мигрантам на фронт"': ["м и г р а н т а м — на фронт"],
        '"м и г"': ["м и г"],
        "=м": ["м", "м"],
    }


def test_spaced_out_word_beside_a_one_letter_word() -> None:
    text = "Живут в с т р а н е и ждут"
    assert matched("страна", text) == ["с т р а н е"]


def test_spaced_out_and_masked_words_meet_prefixes_and_exact_forms() -> None:
    found = matched_terms(
        ["мигра*", "=мигранты", "мигрант NEAR/2 фронт"], "м-и-г-р-а-н-т-ы, на фронт"
    )
    assert found == {
        "мигра*": ["м-и-г-р-а-н-т-ы"],
        "=мигранты": ["м-и-г-р-а-н-т-ы"],
        "мигрант NEAR/2 фронт": ["м-и-г-р-а-н-т-ы", "фронт"],
    }
    assert matched("мигра*", "Всех м*гранты") == ["м*гранты"]
    assert matched("=мигранты", "Всех м*гранты") == ["м*гранты"]


def test_masked_word_in_other_languages() -> None:
    assert matched("insan", "Bu ins*nların hakkı", language="tr") == ["ins*nların"]
    assert matched("migrant", "The m*grants came", language="en") == ["m*grants"]
    assert matched("біженець", "Всі біж*нці", language="uk") == ["біж*нці"]


def test_masks_do_not_make_false_matches() -> None:
    queries = ["мигрант", "мир", "война", "путин"]
    # Hashtags joined by '_', footnote stars, and masks that fit no watched word.
    for text in (
        "#мигранты_вон #путин_вор",
        "Медуза* (признана иноагентом)",
        "м*р во всём",  # too few letters known to be read
        "C# и F#, 5*3",
        "ж*па",
    ):
        found = matched_terms(queries, text)
        assert found in ({}, {"мигрант": ["мигранты"], "путин": ["путин"]}), (text, found)


def test_spaced_letters_in_plain_text_make_no_match() -> None:
    queries = ["вы", "сша", "нфл", "ива"]
    text = "И в и в горе, и в радости; т. е. т.д.; NFL"
    assert matched_terms(queries, text) == {}


@pytest.mark.parametrize(
    "text",
    [
        ("м и г " * 1700)[:10_000] + "м и г р а н т ы",
        ("м*гр " * 2000)[:9_980] + " м*гранты",
        "\u202e\u05de \u05dc \u05d7 \u05de\u202c м\u200b и\u200b г р а н т ы 🔥🇷🇺",
        "🔥 м 🔥 и 🔥 г 🔥 м*гр\u200bанты",
        "м\u0301 и г р а н т ы" + "\u3164" * 50,
    ],
)
def test_hostile_text_with_tricks_does_not_break_matching(text: str) -> None:
    found = matched("мигрант", text)
    assert all(w.replace("\u200b", "") for w in found)
