"""Py3langidModel against py3langid's own identifier: the same features and probabilities
from a smaller table (2 bytes a transition), and the model's memory.

Texts are our own (tests must not depend on ../shared/data).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
import pytest

from bot.triage.language import Py3langidModel, _py3langid_model

TEXTS = [
    "Правительство обсуждает новые правила для мигрантов и их семей в этом году.",
    "Уряд обговорює нові правила для біженців та їхніх родин цього року.",
    "Урад абмяркоўвае новыя правілы для ўцекачоў і іх сем'яў у гэтым годзе.",
    "The government is discussing new rules for migrants and their families this year.",
    "Hökumət bu il miqrantlar və onların ailələri üçün yeni qaydaları müzakirə edir.",
    "Hükümet bu yıl göçmenler ve aileleri için yeni kuralları tartışıyor.",
    "Ҳукумат имсол қоидаҳои навро барои муҳоҷирон баррасӣ мекунад.",
    "Үкімет биыл көші-қон туралы жаңа ережелерді талқылап жатыр.",
    "Կառավարությունը քննարկում է միգրանտների համար նոր կանոններ։",
    "მთავრობა განიხილავს ახალ წესებს მიგრანტებისთვის.",
    "الحكومة تناقش قواعد جديدة للمهاجرين وعائلاتهم هذا العام.",
    "Влада разматра нова правила за мигранте и њихове породице.",
    "Vlada razmatra nova pravila za migrante i njihove porodice ove godine.",
    "Мигрантов — на фронт!",
    "ПРАВИТЕЛЬСТВО ОБСУЖДАЕТ НОВЫЕ ПРАВИЛА",  # all capitals: lowered, as py3langid does
    "qwrtzp xkcd",  # few features
    "日本政府は新しい規則を議論している",
]


@cache
def _reference() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def _reference_features(data: bytes) -> list[int]:
    """py3langid's own walk of its automaton, one byte at a time."""
    ref = _reference()
    state, found = 0, []
    for byte in data:
        state = ref.tk_nextmove[ref._rowbase[state] + byte]
        feature = int(ref.tk_output[state])
        if feature >= 0:
            found.append(feature)
    return found


@pytest.fixture(scope="module")
def model() -> Py3langidModel:
    return _py3langid_model()


@pytest.mark.parametrize("text", TEXTS)
def test_features_are_py3langids(model: Py3langidModel, text: str) -> None:
    data = model.encode(text)
    found = model.features(data)
    assert [int(f) for f in found[found >= 0]] == _reference_features(data)


@pytest.mark.parametrize("text", TEXTS)
def test_probabilities_are_py3langids(model: Py3langidModel, text: str) -> None:
    ours = model.probabilities(text)
    theirs = _reference()._decide(text)
    assert model.columns == tuple(str(c) for c in _reference().nb_classes)
    assert int(ours.argmax()) == int(theirs.argmax())
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6)


def test_transition_table_takes_two_bytes_an_entry(model: Py3langidModel) -> None:
    ref = _reference()
    table = model._table._table
    assert table.dtype == np.uint16
    assert table.size == len(ref.tk_nextmove)  # every transition, none dropped
    # What the model keeps: the table, the sparse weights and the per-state arrays.
    kept = table.nbytes + model._weights.nbytes + model._rowbase.nbytes + model._outputs.nbytes
    assert kept < 30 * 2**20


def test_weights_keep_only_the_entries_above_their_columns_floor(model: Py3langidModel) -> None:
    """Every weight of py3langid's table is its column's floor plus what the sparse table
    holds for it, and most entries (a language's smoothing value) are not held at all."""
    ref = _reference()
    dense = np.asarray(ref.nb_ptc, dtype=np.float32)
    weights = model._weights
    assert weights.starts[-1] == len(weights.columns) == len(weights.heights)
    assert len(weights.heights) < 0.25 * dense.size
    rows = np.random.default_rng(5).choice(len(dense), 300, replace=False)
    for row in rows.tolist():
        rebuilt = weights.floor.copy()
        at = slice(int(weights.starts[row]), int(weights.starts[row + 1]))
        rebuilt[weights.columns[at]] += weights.heights[at]
        np.testing.assert_array_equal(rebuilt * weights.unscale, dense[row])


def test_every_byte_block_starts_with_a_copy_of_the_root(model: Py3langidModel) -> None:
    starts = model._table.block_start
    assert model._table.old_state[starts].tolist() == [0] * 256
    root_row = _reference()._rowbase[0]
    assert (model._rowbase[starts] == root_row).all()  # the root's transitions
    assert (model._outputs[starts] == -1).all()  # and no feature
