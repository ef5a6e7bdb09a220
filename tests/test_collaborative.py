"""The learned collaborative models: one contract suite run on every implementation (real EASE, real `implicit`
ALS, the sequential rules), then the refit-without-stopping holder and the engine's bad cases (empty log, items
without events, a degenerate fit, a catalog too big for EASE)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from scipy import sparse

from recchat.collaborative import (
    ALS,
    EASE,
    CollaborativeFitError,
    LearnedModel,
    SequentialRules,
    TrainingLog,
    history_weights,
    make_model,
)
from recchat.config import LearnedSettings

WEIGHTED = {"ease": lambda: EASE(l2=10.0), "als": lambda: ALS(factors=8, regularization=0.01, iterations=20)}
"""The models that read the interactions' weights (so a NaN weight can poison them)."""
MODELS = {**WEIGHTED, "sequential": lambda: SequentialRules(window=3, decay=0.6)}


def two_tastes(users: int = 60, items: int = 20) -> TrainingLog:
    """Half the users like items 0-9, the other half items 10-19 (each user most of their block, in a random
    order)."""
    rng = np.random.default_rng(0)
    rows, cols, sequences = [], [], []
    for user in range(users):
        block = range(0, 10) if user % 2 == 0 else range(10, 20)
        chosen = rng.permutation([item for item in block if rng.random() < 0.7])
        rows.extend([user] * len(chosen))
        cols.extend(chosen)
        sequences.append(chosen)
    matrix = sparse.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(users, items))
    return TrainingLog(matrix, sequences)


def poisoned(value: float) -> TrainingLog:
    log = two_tastes()
    log.interactions.data[0 if np.isnan(value) else slice(None)] = value
    return log


@pytest.fixture(params=list(MODELS.values()), ids=list(MODELS))
def model(request):
    return request.param()


@pytest.fixture(params=list(WEIGHTED.values()), ids=list(WEIGHTED))
def weighted_model(request):
    return request.param()


def test_a_history_in_one_taste_ranks_that_taste_first(model):
    model.fit(two_tastes())
    scores = model.score(history_weights([3, 5], 20, half_life=5))
    assert scores.shape == (20,) and np.isfinite(scores).all()
    others_in_block = [item for item in range(10) if item not in (3, 5)]
    assert scores[others_in_block].mean() > scores[10:].max()


def test_the_latest_like_weighs_most(model):
    model.fit(two_tastes())
    latest_in_second_block = model.score(history_weights([12, 3], 20, half_life=1))
    assert latest_in_second_block[10:].mean() > latest_in_second_block[:10].mean()


def test_an_unfitted_model_or_an_empty_history_scores_nothing(model):
    assert not model.score(history_weights([1], 20, half_life=5)).any()
    model.fit(two_tastes())
    assert not model.score(np.zeros(20, dtype=np.float32)).any()


def test_a_fit_with_nan_weights_is_refused_and_the_model_kept(weighted_model):
    weighted_model.fit(two_tastes())
    before = weighted_model.score(history_weights([3], 20, half_life=5))
    with pytest.raises(CollaborativeFitError, match="NaN or inf"):
        weighted_model.fit(poisoned(np.nan))
    assert np.array_equal(weighted_model.score(history_weights([3], 20, half_life=5)), before)


def test_sequential_rules_follow_the_order_users_engaged_in():
    """Everyone met item 1 right before item 4 (and others around them): 4 follows 1, 1 does not follow 4."""
    sequences = [np.array([n % 3 + 5, 1, 4, n % 2 + 10]) for n in range(20)]
    rows = [row for row, sequence in enumerate(sequences) for _ in sequence]
    matrix = sparse.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, np.concatenate(sequences))), (20, 12))
    rules = SequentialRules(window=1, decay=1.0)
    rules.fit(TrainingLog(matrix, sequences))
    after_1 = rules.score(history_weights([1], 12, half_life=0))
    after_4 = rules.score(history_weights([4], 12, half_life=0))
    assert after_1.argmax() == 4 and after_1[[5, 6, 7]].max() == 0
    assert after_4[1] == 0 and after_4[[10, 11]].min() > 0


def test_items_added_after_the_fit_score_zero_and_break_nothing(model):
    model.fit(two_tastes())
    holder = LearnedModel(LearnedSettings())
    holder.models["learned"] = model
    scores = holder.scores("learned", history_weights([3, 25], 30, half_life=5))  # 10 items more than were fitted
    assert scores.shape == (30,) and not scores[20:].any() and scores[:10].max() > 0


def test_history_weights_halve_every_half_life():
    weights = history_weights([4, 2, 7], 8, half_life=1)
    assert weights[4] == 1 and weights[2] == 0.5 and weights[7] == 0.25
    assert history_weights([4, 2], 8, half_life=0)[[4, 2]].tolist() == [1, 1]


def test_a_catalog_too_big_for_ease_switches_to_als_with_a_log_line(caplog):
    with caplog.at_level(logging.WARNING, logger="recchat.collaborative"):
        model = make_model(LearnedSettings(max_ease_items=100), items=150)
    assert isinstance(model, ALS) and "using ALS instead" in caplog.text
    assert isinstance(make_model(LearnedSettings(), items=150), EASE)


def test_an_empty_log_fits_nothing_and_scores_none():
    holder = LearnedModel(LearnedSettings())
    assert holder.fit(TrainingLog(sparse.csr_matrix((3, 20), dtype=np.float32), [])) is False
    assert holder.current is None and holder.scores("learned", history_weights([1], 20, half_life=5)) is None
    assert holder.scores("sequential", history_weights([1], 20, half_life=5)) is None


def test_a_degenerate_refit_keeps_the_previous_model(caplog):
    holder = LearnedModel(LearnedSettings())
    assert holder.fit(two_tastes())
    fitted = dict(holder.models)
    assert set(fitted) == {"learned", "sequential"}
    with caplog.at_level(logging.WARNING, logger="recchat.collaborative"):
        assert holder.fit(poisoned(np.inf)) is False
    assert holder.models == fitted and "previous one stays" in caplog.text


def test_a_refit_runs_in_the_background_after_enough_events():
    holder = LearnedModel(LearnedSettings(refit_events=10))
    holder.fit(two_tastes())
    first = holder.current
    holder.note(9, two_tastes)
    holder.wait()
    assert holder.current is first  # not due yet
    holder.note(1, two_tastes)
    holder.wait(timeout=60)
    assert holder.current is not first and holder.fits == 2


def test_ease_fits_only_the_touched_items_and_scores_as_the_full_matrix_would():
    """Issue: a 20,000-item shop with four events built a 20,000 x 20,000 matrix (13.4 GB, 218 s at start-up)."""
    rng = np.random.default_rng(0)
    items = 40
    dense = (rng.random((12, items)) < 0.2) * rng.integers(1, 4, (12, items))
    dense[:, 30:] = 0  # ten items nobody touched
    log = TrainingLog(sparse.csr_matrix(dense.astype(np.float32)), [np.flatnonzero(row) for row in dense])
    model = EASE(l2=10.0)
    model.fit(log)
    assert model.weights.shape[0] <= 30 and model.items == items
    gram = dense.T.astype(np.float64) @ dense + 10.0 * np.eye(items)  # the whole catalog, as before
    precision = np.linalg.inv(gram)
    full = precision / -np.diag(precision)
    np.fill_diagonal(full, 0.0)
    history = np.zeros(items, dtype=np.float32)
    history[[1, 5, 33]] = [1.0, 2.0, 1.0]
    np.testing.assert_allclose(model.score(history), history @ full, atol=1e-5)
    assert model.score(np.zeros(items + 3, dtype=np.float32)).shape == (items,)  # a longer history: items added since
