"""Turkic inflection: suffix-stripping stemmers, the post's language, transliteration."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.triage.inflection import post_word_keys, query_word_keys
from bot.triage.normalise import normalise_word
from bot.triage.translit import cyrillic_readings
from bot.triage.turkic import TURKIC_LANGUAGES, admits, turkic_stem


def finds(query: str, form: str, language: str) -> bool:
    return bool(
        query_word_keys(normalise_word(query)) & post_word_keys(normalise_word(form), language)
    )


@pytest.mark.parametrize(
    ("language", "query", "forms"),
    [
        ("az", "insan", ["insanların", "insanlar", "insana", "insanın"]),
        ("az", "koridor", ["koridoru", "koridorun", "koridorunda", "koridora"]),
        ("az", "Zəngəzur", ["Zəngəzurun", "Zəngəzura", "Zəngəzurda"]),
        ("az", "ailə", ["ailəsi", "ailədə", "ailələrin", "ailəyə"]),
        ("az", "bayraq", ["bayrağı", "bayrağın"]),
        ("az", "Bakı", ["Bakıya", "Bakı'da", "Bakının"]),
        ("tr", "insan", ["insanların", "insanlar", "insana"]),
        ("tr", "koridor", ["koridoru", "koridorunda"]),
        ("tr", "kitap", ["kitabı", "kitaplar"]),
        ("tr", "Türkiye", ["Türkiye'nin", "Türkiye’de"]),
        ("kk", "адам", ["адамдар", "адамның", "адамға", "адамдардың"]),
        ("kk", "жүрек", ["жүрегі"]),
        ("kk", "Қазақстан", ["Қазақстанның", "Қазақстанда", "Қазақстанға"]),
        ("ky", "адам", ["адамдар", "адамдын", "адамга"]),
        ("ky", "өлкө", ["өлкөнүн", "өлкөлөр", "өлкөдө"]),
        ("uz", "mehnat", ["mehnatni", "mehnatga", "mehnatning"]),
        ("uz", "qishloq", ["qishlog'i", "qishloqlar", "qishloqda"]),
        ("uz", "O'zbekiston", ["O‘zbekistonning", "O'zbekistonda", "Ўзбекистонда"]),
        ("uz", "меҳнат", ["mehnatni", "меҳнатни"]),  # both scripts share keys
        ("az", "Azərbaycan", ["Азәрбајҹанын"]),  # Azerbaijani Cyrillic
    ],
)
def test_bare_word_finds_inflected_forms_in_its_language(
    language: str, query: str, forms: list[str]
) -> None:
    for form in forms:
        assert finds(query, form, language), (query, form, language)


@pytest.mark.parametrize(
    ("language", "query", "other"),
    [
        ("kk", "адам", "ада"),  # the case: not the Russian ад in the dative plural
        ("kk", "ада", "адам"),
        ("az", "ailə", "ai"),
        ("az", "insan", "insa"),
        ("tr", "ev", "evet"),
        ("uz", "mehnat", "mehmon"),
    ],
)
def test_other_words_are_not_found(language: str, query: str, other: str) -> None:
    assert not finds(query, other, language)


def test_a_russian_post_keeps_the_russian_dictionary() -> None:
    assert finds("мигрант", "мигрантов", "ru")
    assert finds("адам", "ада", "ru")  # in Russian 'адам' IS a form of 'ад'


def test_a_kazakh_post_does_not_read_a_word_as_russian() -> None:
    assert "~ад" not in post_word_keys("ада", "kk")
    assert "~ад" not in post_word_keys("адам", "kk")


def test_a_quoted_word_foreign_to_the_alphabet_falls_back_to_its_letters() -> None:
    # 'ђ' is no Kazakh letter: the Serbian stemmer, as in any post.
    assert post_word_keys("ђак", "kk") == post_word_keys("ђак", "ru")


def test_stems_soften_and_never_vanish() -> None:
    assert turkic_stem("az", "bayrağı") == turkic_stem("az", "bayraq")
    assert turkic_stem("kk", "жүрегі") == turkic_stem("kk", "жүрек")
    for language in TURKIC_LANGUAGES:
        assert all(turkic_stem(language, "da"))


@given(st.text(min_size=1, max_size=30))
def test_any_text_reduces_to_keys(text: str) -> None:
    word = normalise_word(text)
    for language in (*sorted(TURKIC_LANGUAGES), "ru", "en", "und"):
        assert isinstance(post_word_keys(word, language), frozenset)
    assert isinstance(query_word_keys(word), frozenset)
    for language in TURKIC_LANGUAGES:
        if word and admits(language, word):
            assert all(turkic_stem(language, word))


def test_long_and_hostile_words_do_not_break_the_stemmers() -> None:
    for word in ("лар" * 3000, "a" * 10_000, "<&>", "ə\u200d", "מלחמה", "🔥"):
        for language in TURKIC_LANGUAGES:
            assert turkic_stem(language, word)


@pytest.mark.parametrize(
    ("query", "form", "language"),
    [
        ("Дугин", "Dugin", "en"),
        ("Дугин", "Dugina", "en"),
        ("Дугин", "Duginym", "ru"),
        ("мигрант", "migrantov", "ru"),
        ("мигрантов", "migranty", "ru"),
        ("Dugin", "Дугина", "ru"),
        ("Путин", "Putina", "en"),
    ],
)
def test_transliteration_both_ways(query: str, form: str, language: str) -> None:
    assert finds(query, form, language)


def test_transliteration_keeps_english_words_english() -> None:
    assert not finds("мост", "most", "en")  # not a name: an English post's 'most' is English
    assert not finds("президент", "president", "en")


def test_exact_form_does_not_transliterate() -> None:
    from bot.triage.index import WatchIndex, WatchSpec
    from bot.triage.normalise import normalise

    index = WatchIndex()
    index.add(WatchSpec(1, 1, "=Дугин"))
    index.add(WatchSpec(2, 1, "Дугин"))
    found = index.match(normalise("Dugin said"), language="en", channel_id=1)
    assert [m.watch_id for m in found] == [2]


def test_cyrillic_readings_of_non_latin_words_are_empty() -> None:
    assert cyrillic_readings("мигрант") == ()
    assert cyrillic_readings("a1b") == ()
    assert "мигрантов" in cyrillic_readings("migrantov")
