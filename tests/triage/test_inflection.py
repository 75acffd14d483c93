"""Inflection keys: a query word meets its inflected forms, and not other words."""

from __future__ import annotations

import pytest

from bot.triage.inflection import (
    word_keys,
)
from bot.triage.normalise import normalise, normalise_word


def same_word(query: str, form: str) -> bool:
    return bool(word_keys(normalise_word(query)) & word_keys(normalise_word(form)))


@pytest.mark.parametrize(
    ("query", "forms"),
    [
        ("мигрант", ["мигранты", "мигрантов", "мигрантам", "мигрантами", "Мигранта"]),
        ("біженець", ["біженці", "біженців", "біженцям", "біженцями"]),
        ("refugee", ["refugees", "Refugee"]),
        ("threat", ["threats", "Threat"]),
        ("sığınmacı", ["sığınmacılar", "sığınmacıların"]),
        ("Ermənistan", ["Ermənistanın", "Ermənistana", "Ermənistanda"]),
        ("Ankara", ["Ankara'da", "Ankara’nın"]),
        ("выслать", ["выслали", "вышлют", "выслал"]),  # stem alternation: dictionary lemma
        ("рік", ["року", "році"]),  # Ukrainian і/о alternation: the dictionary knows it
        ("война", ["войны", "войной", "войне"]),
        ("Flüchtling", ["Flüchtlinge"]),
        ("migrant", ["migrants"]),
        ("Армения", ["Армении", "Арменией"]),
        ("обвиняемый", ["обвиняемого", "обвиняемым"]),  # a participle inflects as itself
        ("отец", ["отца", "отцом"]),  # fleeting vowel: Snowball alone misses it
        ("день", ["дня", "дней"]),
    ],
)
def test_query_word_meets_its_inflected_forms(query: str, forms: list[str]) -> None:
    for form in forms:
        assert same_word(query, form), (query, form)


@pytest.mark.parametrize(
    ("query", "other"),
    [
        ("мир", "мирный"),  # derivation, not inflection: use мир* for the family
        ("война", "воин"),
        ("война", "воина"),
        ("суд", "судья"),
        ("мигрант", "миграция"),
        ("threat", "three"),
        ("біженець", "беженец"),  # the Russian word is a different word form-wise
        ("выступать", "выступая"),  # gerund (получив would meet получить: uk past tense)
        ("обвинить", "обвиняемый"),  # participle of the other aspect
        ("большой", "больше"),  # comparative
        ("день", "дело"),  # 'день'/'дел' as forms of the rare verb деть are dropped
        ("выслать", "высылать"),  # the other aspect is another verb
    ],
)
def test_different_words_do_not_meet(query: str, other: str) -> None:
    assert not same_word(query, other)


def test_homoglyph_evasion_reduces_like_the_real_word() -> None:
    evasive = normalise("МИГРAНТОВ выслать").tokens[0].text  # Latin A
    assert word_keys(evasive) & word_keys("мигрант")


def test_ambiguous_cyrillic_word_answers_for_both_languages() -> None:
    # 'мова' has no letter that says Russian or Ukrainian: Ukrainian forms must meet it.
    assert same_word("мова", "мови")
    assert same_word("мова", "мовою")


@pytest.mark.parametrize("word", ["", "2024", "ß", "🔥", "o'zbek", "ქართული", "მთავრობა"])
def test_any_word_has_keys(word: str) -> None:
    keys = word_keys(normalise_word(word) if word else word)
    assert keys
    assert all(isinstance(key, str) for key in keys)


def test_unknown_words_still_reduce() -> None:
    # Not in any dictionary: the Snowball stem and pymorphy3's prediction keep forms together.
    assert same_word("вагнеровец", "вагнеровцами")
    assert same_word("пригожинцы", "пригожинцев")


def test_reduction_is_cached() -> None:
    word_keys.cache_clear()
    word_keys("мигрантами")
    word_keys("мигрантами")
    info = word_keys.cache_info()
    assert info.hits == 1
    assert info.misses >= 1


def test_russian_hard_sign_words_keep_the_dictionary() -> None:
    assert same_word("объявить", "объявили")
    assert same_word("подъезд", "подъезда")


@pytest.mark.parametrize(
    ("query", "form"),
    [("Məclis", "Məclisin"), ("Ermənistan", "Ermənistanın")],
)
def test_turkic_genitive_after_s_is_not_read_as_the_copula(query: str, form: str) -> None:
    assert same_word(query, form)
