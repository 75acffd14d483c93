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


def test_the_stemmers_keep_no_cache_of_their_own() -> None:
    """PyStemmer keeps 10,000 words per stemmer by default (7.6 MB over the nine a busy
    triage role loads); `post_keys` and `word_keys` cache above them, so the stemmers don't."""
    import tracemalloc

    from bot.triage.inflection import _stemmer

    stem = _stemmer("russian")
    words = [f"слово{chr(0x430 + i % 32)}{i}ами" for i in range(5_000)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        stems = [stem(w) for w in words]
        del stems
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 100_000, f"the stemmer kept {grown} bytes for 5,000 words"
