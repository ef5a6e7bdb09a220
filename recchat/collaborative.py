"""Learned collaborative models: fitted on the whole feedback log, they score a user's weighted history.

One contract for every implementation (`fit`, `score`), checked by one shared test suite:
- `EASE` (Steck, 2019): a closed-form linear item-item model. The default: the strongest classic model on
  MovieLens-style data, fitted in seconds for catalogs of up to `learned.max_ease_items` items (it holds an
  item x item matrix).
- `ALS`: matrix factorisation by the `implicit` library, for catalogs where that matrix no longer fits.

`make_model` chooses between them; `history_weights` turns a user's opinions into the weighted history they score.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from typing import Protocol

import numpy as np
from scipy import sparse

from recchat.config import LearnedSettings
from recchat.errors import RecChatError

logger = logging.getLogger(__name__)


class CollaborativeFitError(RecChatError):
    """A fit that produced no usable model (NaN or inf weights); the previous model stays in use."""


class CollaborativeModel(Protocol):
    """Fitted on users x items interactions; scores items for any weighted history, including a new user's."""

    def fit(self, interactions: sparse.csr_matrix) -> None:
        """Learn from a users x items matrix of positive weights (rows: users, columns: catalog positions).
        Raises `CollaborativeFitError` when the fit is degenerate; the model is then unchanged."""

    def score(self, history: np.ndarray) -> np.ndarray:
        """Per item (as many as fitted), how well it follows `history` (per item weight, 0 for unknown)."""


class EASE:
    """Embarrassingly Shallow Autoencoder: B = I - P / diag(P) with P = (X^T X + l2 I)^-1, diagonal zero."""

    def __init__(self, l2: float = 500.0):
        self.l2 = l2
        self.weights: np.ndarray | None = None

    def fit(self, interactions: sparse.csr_matrix) -> None:
        gram = (interactions.T @ interactions).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += self.l2
        try:
            precision = np.linalg.inv(gram)
        except np.linalg.LinAlgError as error:
            raise CollaborativeFitError(f"EASE could not invert the item Gram matrix ({error})") from None
        weights = (precision / -np.diag(precision)).astype(np.float32)
        np.fill_diagonal(weights, 0.0)
        if not np.isfinite(weights).all():
            raise CollaborativeFitError("EASE fit produced NaN or inf weights (are the event weights finite?)")
        self.weights = weights

    def score(self, history: np.ndarray) -> np.ndarray:
        if self.weights is None:
            return np.zeros(len(history), dtype=np.float32)
        # Only the rows of the history's items: a few likes read a few rows, not the whole n x n matrix.
        rows = np.flatnonzero(history[: self.weights.shape[0]])
        return np.asarray(history[rows], dtype=np.float32) @ self.weights[rows]


class ALS:
    """Implicit-feedback matrix factorisation (`implicit.als`), for catalogs too big for EASE's item x item matrix.
    A history is scored by solving for its user factors against the fitted item factors."""

    def __init__(self, factors: int = 64, regularization: float = 0.05, iterations: int = 15, seed: int = 0):
        self.factors, self.regularization, self.iterations, self.seed = factors, regularization, iterations, seed
        self.model = None

    def fit(self, interactions: sparse.csr_matrix) -> None:
        from implicit.cpu.als import AlternatingLeastSquares
        from implicit.recommender_base import ModelFitError
        from threadpoolctl import threadpool_limits

        try:
            with threadpool_limits(1, "blas"):  # implicit runs its own threads; a threaded BLAS under them thrashes
                model = AlternatingLeastSquares(
                    factors=self.factors, regularization=self.regularization, iterations=self.iterations,
                    random_state=self.seed, num_threads=0,
                )
                model.fit(sparse.csr_matrix(interactions, dtype=np.float32), show_progress=False)
        except ModelFitError as error:
            raise CollaborativeFitError(f"ALS fit produced NaN or inf factors ({error})") from None
        if not (np.isfinite(model.item_factors).all() and np.isfinite(model.user_factors).all()):
            raise CollaborativeFitError("ALS fit produced NaN or inf factors (are the event weights finite?)")
        self.model = model

    def score(self, history: np.ndarray) -> np.ndarray:
        if self.model is None or not np.any(history):
            return np.zeros(len(history), dtype=np.float32)
        items = self.model.item_factors
        known = min(len(history), items.shape[0])
        row = sparse.csr_matrix(np.asarray(history[:known], dtype=np.float32).reshape(1, -1))
        if known < items.shape[0]:
            row.resize((1, items.shape[0]))
        user = self.model.recalculate_user(0, row)
        return np.asarray(items @ np.ravel(user), dtype=np.float32)


def make_model(settings: LearnedSettings, items: int) -> CollaborativeModel:
    """The configured model; EASE above `max_ease_items` items would not fit in memory, so ALS is used instead."""
    too_big = settings.model == "ease" and items > settings.max_ease_items
    if too_big:
        logger.warning(
            "learned model: %d items is over learned.max_ease_items (%d; EASE holds an item x item matrix of "
            "%.1f GB): using ALS instead", items, settings.max_ease_items, items * items * 8 / 1e9,
        )
    if too_big or settings.model == "als":
        return ALS(settings.als_factors, settings.als_regularization, settings.als_iterations)
    return EASE(settings.ease_l2)


def history_weights(positions_latest_first: Iterable[int], items: int, half_life: float) -> np.ndarray:
    """A history vector: the latest positive counts 1, each earlier one less, halving every `half_life` items
    (0: all count 1). Recent tastes say most about what a user wants next."""
    history = np.zeros(items, dtype=np.float32)
    for age, position in enumerate(positions_latest_first):
        if position < items:
            history[position] += 1.0 if half_life <= 0 else math.pow(0.5, age / half_life)
    return history


class LearnedModel:
    """The current fitted model, refitted in a background thread after `refit_events` new events or `refit_seconds`;
    turns always read the model that is current, so a refit never makes them wait for the fit."""

    def __init__(self, settings: LearnedSettings):
        self.settings = settings
        self.current: CollaborativeModel | None = None
        self.fits = 0
        self._events_since_fit = 0
        self._fitted_at = time.monotonic()
        self._refit: threading.Thread | None = None
        self._lock = threading.Lock()

    def fit(self, interactions: sparse.csr_matrix) -> bool:
        """Fit a new model and make it current; False (and the previous model kept, with a log line) when the log
        is empty or the fit is degenerate."""
        if self.settings.model == "none" or interactions.nnz == 0:
            return False
        model = make_model(self.settings, interactions.shape[1])
        try:
            model.fit(interactions)
        except CollaborativeFitError as error:
            logger.warning("learned model not refitted, the previous one stays: %s", error)
            return False
        with self._lock:
            self.current, self.fits = model, self.fits + 1
        return True

    def note(self, new_events: int, interactions: Callable[[], sparse.csr_matrix]) -> None:
        """Count new events; when a refit is due and none runs, start one on `interactions()` in the background."""
        with self._lock:
            self._events_since_fit += new_events
            waited = time.monotonic() - self._fitted_at
            due = self._events_since_fit >= self.settings.refit_events or (
                self._events_since_fit > 0 and waited >= self.settings.refit_seconds
            )
            if not due or self.refitting:
                return
            self._events_since_fit, self._fitted_at = 0, time.monotonic()
            self._refit = threading.Thread(target=self._fit_beside_turns, args=(interactions,), daemon=True)
            self._refit.start()

    def _fit_beside_turns(self, interactions: Callable[[], sparse.csr_matrix]) -> None:
        """A background refit on one BLAS thread, so the other cores stay free for turns (a 10k-item EASE fit on
        every core made turns during it up to 10x slower)."""
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, "blas"):
            self.fit(interactions())

    @property
    def refitting(self) -> bool:
        """Whether a background refit is running now."""
        refit = self._refit
        return refit is not None and refit.is_alive()

    def wait(self, timeout: float | None = None) -> None:
        """Until a background refit in progress has finished (for tests, benchmarks and shutdown)."""
        refit = self._refit
        if refit is not None:
            refit.join(timeout)

    def scores(self, history: np.ndarray) -> np.ndarray | None:
        """Per catalog item, the current model's score of `history`; None before any fit (cold start). Items added
        since the fit score 0."""
        model = self.current
        if model is None or not history.any():
            return None
        scores = np.zeros(len(history), dtype=np.float32)
        fitted = model.score(history)[: len(history)]
        scores[: len(fitted)] = fitted
        return scores
