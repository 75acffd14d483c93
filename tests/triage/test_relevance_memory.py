"""The scoring bank holds each installed model's slot table once (bot.triage.relevance._Bank):
the models read theirs through views of the bank's arena, a replaced model lets the old arena
go, and scores are what they were before the move."""

from __future__ import annotations

import gc
import weakref

import numpy as np

from bot.triage.relevance import LearnedRelevance, RelevanceClassifier
from tests.triage.test_relevance import ANALYST, NOISE, RELEVANT, assess, trained


def _copy(model: RelevanceClassifier) -> RelevanceClassifier:
    return RelevanceClassifier.from_bytes(model.to_bytes())


def test_each_table_is_held_once_and_scores_do_not_change() -> None:
    alone = _copy(trained())
    before = [assess(LearnedRelevance({ANALYST: alone}), t) for t in RELEVANT + NOISE]
    models = {ANALYST + i: _copy(trained()) for i in range(5)}
    judge = LearnedRelevance(models)
    bank = judge._bank
    for model in models.values():
        assert np.shares_memory(model._slot_keys, bank.keys)
        assert np.shares_memory(model._slot_weights, bank.weights)
    assert [assess(judge, t) for t in RELEVANT + NOISE] == before
    # Saving reads the sparse form back out of the table: the same model again.
    again = RelevanceClassifier.from_bytes(models[ANALYST].to_bytes())
    assert again.to_bytes() == models[ANALYST].to_bytes()


def test_a_replaced_model_does_not_keep_the_old_arena() -> None:
    old_model = _copy(trained())
    judge = LearnedRelevance({ANALYST: old_model, ANALYST + 1: _copy(trained())})
    old_arena = weakref.ref(judge._bank.keys)
    judge.update(ANALYST, _copy(trained(relevant=4)))
    gc.collect()
    # The old model is still referenced here, yet the old bank's arena is gone: the replaced
    # model took a copy of its own table, and the kept one moved to the new arena.
    assert old_arena() is None
    assert not np.shares_memory(old_model._slot_keys, judge._bank.keys)
    assert np.shares_memory(judge.models[ANALYST + 1]._slot_keys, judge._bank.keys)
    assert assess(LearnedRelevance({ANALYST: old_model}), RELEVANT[0])[0] >= 0
