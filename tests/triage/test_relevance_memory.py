"""The scoring bank holds each installed model's slot table once (bot.triage.relevance._Bank):
the models read theirs through views of the bank's arena, a model is installed, replaced or
removed in place (its column only), and scores are what they were before the move."""

from __future__ import annotations

import numpy as np
import pytest

from bot.triage.normalise import normalise
from bot.triage.relevance import LearnedRelevance, RelevanceClassifier, features_of_post
from tests.triage.test_relevance import ANALYST, NOISE, RELEVANT, assess, post, trained


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


def test_a_model_is_replaced_in_place_and_leaves_with_its_own_table() -> None:
    """Installing, replacing and removing a model rewrite its column only: the bank keeps
    its arrays (no second bank at once), the others' sums carry over, and a model that
    leaves keeps a copy of its own table, not a view of the arena."""
    old_model = _copy(trained())
    kept = _copy(trained())
    judge = LearnedRelevance({ANALYST: old_model, ANALYST + 1: kept})
    judge.replace(dict(judge.models), capacity=4)
    bank = judge._bank
    arrays = (bank.sums, bank.keys, bank.weights)
    assess(judge, RELEVANT[0], ANALYST + 1)  # the kept model's sums of its words are computed
    column = bank.position[ANALYST + 1]
    computed = int(np.count_nonzero(~np.isnan(bank.sums[:, column, 0])))
    assert computed > 0
    judge.update(ANALYST, _copy(trained(relevant=4)))
    judge.update(ANALYST + 2, _copy(trained(noise=5)))
    judge.update(ANALYST + 3, _copy(trained(relevant=5)))
    assert judge._bank is bank
    assert all(a is b for a, b in zip(arrays, (bank.sums, bank.keys, bank.weights), strict=True))
    assert int(np.count_nonzero(~np.isnan(bank.sums[:, column, 0]))) == computed
    assert not np.shares_memory(old_model._slot_keys, bank.keys)
    assert np.shares_memory(judge.models[ANALYST + 1]._slot_keys, bank.keys)
    # The model that left still scores as before on its own, and the bank as it alone would.
    assert assess(LearnedRelevance({ANALYST: old_model}), RELEVANT[0])[0] >= 0
    judge.update(ANALYST + 3, None)
    judge.update(ANALYST + 4, _copy(trained()))  # the freed column is reused
    assert bank.capacity == 4 and bank.sums is arrays[0]
    _scores_are_each_models_own(judge)


def test_more_models_than_columns_grow_the_bank_and_keep_every_score() -> None:
    models = {ANALYST + i: _copy(trained()) for i in range(3)}
    judge = LearnedRelevance(models)
    before = {o: [assess(judge, t, o) for t in RELEVANT + NOISE] for o in models}
    capacity = judge._bank.capacity
    for i in range(3, 3 + capacity + 2):
        judge.update(ANALYST + i, _copy(trained()))
    assert judge._bank.capacity > capacity
    for owner, scores in before.items():
        assert [assess(judge, t, owner) for t in RELEVANT + NOISE] == scores
        assert np.shares_memory(judge.models[owner]._slot_keys, judge._bank.keys)
    _scores_are_each_models_own(judge)


def _scores_are_each_models_own(judge: LearnedRelevance) -> None:
    """The bank's log-odds of every installed model: the model's own (half-precision sums)."""
    owners = list(judge.models)
    for i, text in enumerate(RELEVANT + NOISE):
        f = features_of_post(post(text, message=i), "ru", normalise(text))
        got = judge._bank.text_decisions(f, owners)
        want = [judge.models[o].text_decision(f) for o in owners]
        assert got == pytest.approx(want, abs=1e-3)
