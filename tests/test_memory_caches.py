"""The triage role's per-word cache holds compact values (issue 15: memory)."""

from __future__ import annotations

import sys

import pytest

from bot.triage.inflection import post_keys, post_word_keys


@pytest.mark.parametrize(
    ("word", "language"),
    [
        ("мигранты", "ru"),
        ("мігранти", "uk"),
        ("migrants", "en"),
        ("göçmenler", "tr"),
        ("адам", "kk"),
    ],
)
def test_post_keys_are_a_sorted_tuple_of_the_word_keys(word: str, language: str) -> None:
    keys = post_keys(word, language)
    assert isinstance(keys, tuple)
    assert list(keys) == sorted(set(keys))
    assert post_word_keys(word, language) == frozenset(keys)


def test_a_cached_entry_is_a_small_tuple_not_a_set() -> None:
    keys = post_keys("мигрантами", "ru")
    assert post_keys("мигрантами", "ru") is keys  # cached
    assert sys.getsizeof(keys) <= sys.getsizeof(()) + 8 * len(keys)
    assert sys.getsizeof(keys) < sys.getsizeof(frozenset(keys)) / 3
