"""Normalisation: folding, tokens, URLs/mentions/hashtags, and offsets into the original."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bot.triage.normalise import NormalisedText, Reading, Token, normalise, normalise_word

INVISIBLES = "\u200b\u200c\u200d\u200e\u200f\u2060\ufeff\u00ad\u202a\u202c\u2066\u2069"


def words(text: str) -> list[str]:
    return [t.text for t in normalise(text).tokens]


def assert_spans_are_visible_words(result: NormalisedText) -> None:
    """Every token's span in the original is the word as written, invisibles included."""
    last_start = last_end = 0
    for token in result.tokens:
        assert 0 <= token.start < token.end <= len(result.original)
        # In order; two tokens share a span only when NFKC expanded one character ('½').
        assert token.start >= last_end or (token.start, token.end) == (last_start, last_end)
        written = result.original[token.start : token.end]
        # A character NFKC expands ('½' → '1⁄2') is one piece: its span holds several tokens.
        assert token.text in [t.text for t in normalise(written).tokens], (written, token)
        assert not written[0].isspace() and not written[-1].isspace()
        assert written[0] not in INVISIBLES and written[-1] not in INVISIBLES
        last_start, last_end = token.start, token.end


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Мигранты ВОН", ["мигранты", "вон"]),
        ("Ёлка и ёж", ["елка", "и", "еж"]),
        ("ＭＩＧＲＡＮＴ ﬁnance", ["migrant", "finance"]),  # NFKC: full-width, ligature
        ("Straße İstanbul", ["strasse", "istanbul"]),  # casefold; Turkish dotted İ
        ("мигра́нт", ["мигрант"]),  # stress accent
        ("Trump's don't", ["trump's", "don't"]),
    ],
)
def test_folds_case_compatibility_forms_and_yo(text: str, expected: list[str]) -> None:
    result = normalise(text)
    assert words(text) == expected
    assert_spans_are_visible_words(result)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("мигрaнт", "мигрант"),  # Latin a inside a Cyrillic word
        ("МИГРAНТЫ", "мигранты"),  # Latin A, upper case
        ("мuгрант", "мuгрант"),  # Latin u has no Cyrillic twin: the word is left alone
        ("Xерсон", "херсон"),  # Latin X at the start
        ("pаypal", "paypal"),  # Cyrillic а inside a Latin word
        ("Ermәnistan", "ermənistan"),  # Cyrillic ә inside an Azerbaijani word
        ("ТЕРAKT", "теракт"),  # half the letters Latin; Cyrillic wins (Р, Т are Cyrillic)
        ("біжeнець", "біженець"),  # Latin e inside a Ukrainian word
    ],
)
def test_folds_homoglyphs_in_mixed_script_words(text: str, expected: str) -> None:
    assert words(text) == [expected]
    assert normalise_word(text) == expected


def test_does_not_fold_single_script_words() -> None:
    assert words("cop сор") == ["cop", "сор"]  # Latin and Cyrillic words stay themselves


@pytest.mark.parametrize("invisible", list(INVISIBLES))
def test_removes_invisible_characters_inside_words(invisible: str) -> None:
    text = f"Новые мигр{invisible}анты прибыли"
    result = normalise(text)
    assert words(text) == ["новые", "мигранты", "прибыли"]
    token = result.tokens[1]
    assert text[token.start : token.end] == f"мигр{invisible}анты"
    assert invisible not in result.text
    assert_spans_are_visible_words(result)


@pytest.mark.parametrize("text", ["п'ять o'zbek", "п’ять o’zbek", "пʼять oʻzbek", "п‘ять o‘zbek"])
def test_apostrophes_stay_inside_words(text: str) -> None:
    assert words(text) == ["п'ять", "o'zbek"]


def test_apostrophes_at_word_edges_are_not_words() -> None:
    assert words("'мигрант' ‘war’") == ["мигрант", "war"]


def test_urls_and_mentions_are_set_aside() -> None:
    text = "Смотрите https://t.me/Channel/123, www.Example.com и @Some_Channel: мигранты!"
    result = normalise(text)
    assert words(text) == ["смотрите", "и", "мигранты"]
    assert result.urls == ("https://t.me/Channel/123", "www.Example.com")
    assert result.mentions == ("@some_channel",)
    assert_spans_are_visible_words(result)


def test_email_is_not_a_mention() -> None:
    result = normalise("пишите на press@mail.ru")
    assert result.mentions == ()
    assert [t.text for t in result.tokens] == ["пишите", "на", "press", "mail", "ru"]


def test_hashtags_are_words() -> None:
    text = "#Мигранты и #мигранты_вон, но не a#b"
    result = normalise(text)
    assert [(t.text, t.hashtag) for t in result.tokens] == [
        ("мигранты", True),
        ("и", False),
        ("мигранты", True),
        ("вон", True),
        ("но", False),
        ("не", False),
        ("a", False),
        ("b", False),
    ]
    first = result.tokens[0]
    assert text[first.start : first.end] == "Мигранты"  # the word, without '#'
    assert_spans_are_visible_words(result)


def test_text_keeps_punctuation_and_folds_like_tokens() -> None:
    result = normalise("Мигрaнты — ВОН! <b>&amp;")
    assert result.text == "мигранты — вон! <b>&amp;"
    assert words("<b>&amp;") == ["b", "amp"]


def test_original_span_maps_regex_matches_back() -> None:
    text = "ОЧЕНЬ Важно: мигр\u200bанты\u00ad и ﬁnance"
    result = normalise(text)
    start = result.text.index("мигранты")
    o_start, o_end = result.original_span(start, start + len("мигранты"))
    assert text[o_start:o_end] == "мигр\u200bанты"
    start = result.text.index("finance")
    o_start, o_end = result.original_span(start, start + len("finance"))
    assert text[o_start:o_end] == "ﬁnance"
    assert result.original_span(0, len(result.text)) == (0, len(text))
    assert result.original_span(-5, 10**6) == (0, len(text))  # clamped, never raises


def test_original_span_is_identity_for_plain_text() -> None:
    result = normalise("Мигранты вон")
    assert result.original_span(0, 8) == (0, 8)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\t ",
        "\u200b\u200c\ufeff",
        "🔥🇷🇺👍🏻‍♂️",
        "&lt;script&gt;alert(1)&lt;/script&gt; <b>",
        "\u202eمرحبا بالعالم\u202c שלום עולם",
        "broken \ud800 surrogate",
        "٣٤٥ ① ½",
    ],
)
def test_bad_input_does_not_crash(text: str) -> None:
    result = normalise(text)
    assert result.original == text
    assert_spans_are_visible_words(result)


def test_rtl_words_are_tokens() -> None:
    assert words("\u200fمرحبا\u200f بالعالم") == ["مرحبا", "بالعالم"]


def test_long_post() -> None:
    text = ("Мигр\u200bанты прибыли в город. " * 400)[:10_000]
    result = normalise(text)
    assert len(text) == 10_000
    assert len(result.tokens) > 1_400
    assert result.tokens[0].text == "мигранты"
    assert_spans_are_visible_words(result)


def test_normalise_word_folds_a_query_word() -> None:
    assert normalise_word("  МИГРAНТ ") == "мигрант"
    assert normalise_word("Ёж") == "еж"
    assert normalise_word("мигра") == "мигра"


def test_token_is_a_value() -> None:
    token = Token("мигрант", 0, 7)
    assert token == Token("мигрант", 0, 7, False)
    assert not token.hashtag
    with pytest.raises(AttributeError):
        token.text = "x"  # type: ignore[misc]


def readings(text: str) -> list[tuple[str, str]]:
    """Each reading's text and the original text it covers."""
    result = normalise(text)
    tokens = result.tokens
    return [
        (r.text, text[tokens[r.first].start : tokens[r.stop - 1].end]) for r in result.readings
    ]


@pytest.mark.parametrize(
    "written",
    [
        "м и г р а н т ы",
        "м.и.г.р.а.н.т.ы",
        "м-и-г-р-а-н-т-ы",
        "м. и. г. р. а. н. т. ы",
        "м_и_г_р_а_н_т_ы",
        "м • и • г • р • а • н • т • ы",
        "М И Г Р A Н Т Ы",  # a Latin A among them: folded like a written word
    ],
)
def test_letters_spaced_out_read_as_one_word_and_stay_tokens(written: str) -> None:
    text = f"Всех {written} — на фронт!"
    assert readings(text) == [("мигранты", written)]
    as_written = [t.text for t in normalise(text).tokens][1:9]
    assert "".join(as_written).replace("a", "а") == "мигранты"  # each letter a token too


def test_spaced_out_word_beside_one_letter_words() -> None:
    found = readings("живут в с т р а н е и")
    assert ("встранеи", "в с т р а н е и") in found
    assert ("страна"[:5] + "е", "с т р а н е") in found  # without в and и


@pytest.mark.parametrize(
    "text",
    [
        "м и",  # two letters
        "м и-г р",  # separators of different kinds
        "т.е. и т.д.",  # abbreviations
        "1 2 3 4 5",  # digits only
        "в 1 и 2",  # more digits than letters
        "https://t.me/a_b_c",  # not words
        "мигранты вон",
    ],
)
def test_no_reading_where_nothing_is_spaced_out(text: str) -> None:
    assert readings(text) == []


@pytest.mark.parametrize(
    ("written", "reading"),
    [
        ("м*гранты", "м*гранты"),
        ("м_гранты", "м*гранты"),
        ("м#гранты", "м*гранты"),
        ("м*гр*нты", "м*гр*нты"),
        ("МИГР*НТЫ", "мигр*нты"),
    ],
)
def test_masks_inside_a_word_are_one_unknown_letter(written: str, reading: str) -> None:
    text = f"Всех {written} — на фронт!"
    assert readings(text) == [(reading, written)]
    assert normalise(text).readings[0].masked


@pytest.mark.parametrize(
    "text",
    [
        "Медуза* (иноагент)",  # a footnote star ends the word
        "*важно*",
        "#мигранты",  # a hashtag
        "м*р",  # too few letters known
        "м***р",
        "C# и F#",
    ],
)
def test_no_masked_reading_without_letters_on_both_sides(text: str) -> None:
    assert readings(text) == []


def test_readings_of_hostile_text_are_bounded() -> None:
    text = ("м и г, " * 1000 + "м*гр " * 2000)[:10_000]
    result = normalise(text)
    assert 0 < len(result.readings) <= 64
    assert all(isinstance(r, Reading) for r in result.readings)
    rtl = "‮م ر ح ب ا‬ 🔥 ​м​ и г"
    assert [r.text for r in normalise(rtl).readings] == ["مرحبا", "миг"]


TRICKY = st.sampled_from(
    list("мигрантaopcexMIGРАНТ ,.!#@_'’ʼ-")
    + list(INVISIBLES)
    + ["\u0301", "ё", "Ё", "İ", "ß", "ﬁ", "Ｍ", "\u00a0", "\n", "e\u0301", "https://t.me/x "]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(TRICKY, max_size=40).map("".join))
@example("@мG'м")  # found by CI: a mention made by folding, then an apostrophe
def test_spans_always_point_at_the_written_word(text: str) -> None:
    result = normalise(text)
    assert_spans_are_visible_words(result)
    for token in result.tokens:
        assert token.text == unicodedata.normalize("NFKC", token.text)
