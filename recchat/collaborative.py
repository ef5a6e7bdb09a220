"""Learned collaborative models: fitted on the whole feedback log, they score a user's weighted history.

One contract for every implementation (`fit`, `score`), checked by one shared test suite:
- `EASE` (Steck, 2019): a closed-form linear item-item model. The default: the strongest classic model on
  MovieLens-style data, fitted in seconds for catalogs of up to `learned.max_ease_items` items (it holds a matrix
  over the items someone engaged with).
- `ALS`: matrix factorisation by the `implicit` library, for catalogs where that matrix no longer fits.
- `SequentialRules`: which items users engage with shortly after which others (a sparse item x item count). Beside
  EASE it is the strongest single addition measured on ML-1M: what a user looked at last says much about what next.

`make_model` chooses between EASE and ALS; `history_weights` turns a user's items into the weighted history scored.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from scipy import sparse

from recchat.background import BackgroundJob
from recchat.config import LearnedSettings
from recchat.errors import RecChatError

logger = logging.getLogger(__name__)


class CollaborativeFitError(RecChatError):
    """A fit that produced no usable model (NaN or inf weights); the previous model stays in use."""


@dataclass(frozen=True)
class TrainingLog:
    """What the models learn from: the feedback log as users x items weights, and each user's items in time order."""

    interactions: sparse.csr_matrix
    """Users x items (rows: users, columns: catalog positions), a positive weight where the user engaged."""
    sequences: Sequence[np.ndarray]
    """Per user, the catalog positions they engaged with, earliest first."""

    @property
    def empty(self) -> bool:
        return self.interactions.nnz == 0


class CollaborativeModel(Protocol):
    """Fitted on the feedback log; scores items for any weighted history, including a new user's."""

    def fit(self, log: TrainingLog) -> None:
        """Learn from the log. Raises `CollaborativeFitError` when the fit is degenerate; the model is then
        unchanged."""

    def score(self, history: np.ndarray) -> np.ndarray:
        """Per item (as many as fitted), how well it follows `history` (per item weight, 0 for unknown)."""


class EASE:
    """Embarrassingly Shallow Autoencoder: B = I - P / diag(P) with P = (X^T X + l2 I)^-1, diagonal zero.

    Only the items someone engaged with are fitted: an item nobody touched has a Gram row of l2 on the diagonal
    alone, so its weights are zero whatever the rest is. The matrix is touched x touched, not catalog x catalog (a
    20,000-item shop with four events fits a 4 x 4 matrix, not 3.2 GB), and the scores are the same."""

    def __init__(self, l2: float = 500.0):
        self.l2 = l2
        self.weights: np.ndarray | None = None
        self.columns: np.ndarray = np.zeros(0, dtype=np.int64)
        """The catalog positions the weights' rows and columns stand for."""
        self.items = 0

    def fit(self, log: TrainingLog) -> None:
        columns = np.unique(log.interactions.indices)
        interactions = log.interactions[:, columns]
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
        self.weights, self.columns, self.items = weights, columns, log.interactions.shape[1]

    def score(self, history: np.ndarray) -> np.ndarray:
        if self.weights is None:
            return np.zeros(len(history), dtype=np.float32)
        held = np.zeros(len(self.columns), dtype=np.float32)
        known = self.columns < len(history)  # items added since the fit have no row yet
        held[known] = history[self.columns[known]]
        # Only the rows of the history's items: a few likes read a few rows, not the whole matrix.
        rows = np.flatnonzero(held)
        scores = np.zeros(self.items, dtype=np.float32)
        scores[self.columns] = held[rows] @ self.weights[rows]
        return scores


class ALS:
    """Implicit-feedback matrix factorisation (`implicit.als`), for catalogs too big for EASE's item x item matrix.
    A history is scored by solving for its user factors against the fitted item factors."""

    def __init__(self, factors: int = 64, regularization: float = 0.05, iterations: int = 15, seed: int = 0):
        self.factors, self.regularization, self.iterations, self.seed = factors, regularization, iterations, seed
        self.model = None

    def fit(self, log: TrainingLog) -> None:
        from implicit.cpu.als import AlternatingLeastSquares
        from implicit.recommender_base import ModelFitError
        from threadpoolctl import threadpool_limits

        try:
            with threadpool_limits(1, "blas"):  # implicit runs its own threads; a threaded BLAS under them thrashes
                model = AlternatingLeastSquares(
                    factors=self.factors, regularization=self.regularization, iterations=self.iterations,
                    random_state=self.seed, num_threads=0,
                )
                model.fit(sparse.csr_matrix(log.interactions, dtype=np.float32), show_progress=False)
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


class SequentialRules:
    """Sequential rules: F[a, b] sums `decay`^(g-1) over every time a user engaged with b g <= `window` steps after a,
    each row divided by the square root of its total (so a popular item's followers do not drown the others', yet
    how much evidence a row has still counts). A history scores the followers of its items."""

    def __init__(self, window: int = 3, decay: float = 0.6):
        self.window, self.decay = window, decay
        self.followers: sparse.csr_matrix | None = None
        """Transposed (b, a): scoring a history reads the rows of the items it holds."""

    def fit(self, log: TrainingLog) -> None:
        items = log.interactions.shape[1]
        sources, targets, weights = [], [], []
        for sequence in log.sequences:
            for gap in range(1, min(self.window, len(sequence) - 1) + 1):
                sources.append(sequence[:-gap])
                targets.append(sequence[gap:])
                weights.append(np.full(len(sequence) - gap, self.decay ** (gap - 1), dtype=np.float32))
        if not sources:
            self.followers = sparse.csr_matrix((items, items), dtype=np.float32)
            return
        counts = sparse.csr_matrix(
            (np.concatenate(weights), (np.concatenate(sources), np.concatenate(targets))), shape=(items, items)
        )
        counts.sum_duplicates()
        totals = np.asarray(counts.sum(axis=1)).ravel()
        totals[totals == 0] = 1
        self.followers = (sparse.diags(1 / np.sqrt(totals)) @ counts).T.tocsr().astype(np.float32)

    def score(self, history: np.ndarray) -> np.ndarray:
        if self.followers is None:
            return np.zeros(len(history), dtype=np.float32)
        known = self.followers.shape[0]
        return np.asarray(self.followers @ np.asarray(history[:known], dtype=np.float32)).ravel()


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
    """The current fitted models, refitted in a background thread after `refit_events` new events or `refit_seconds`;
    turns always read the models that are current, so a refit never makes them wait for the fit. Two models, each
    read by its scorer: "learned" (EASE or ALS, `model`) and "sequential" (`SequentialRules`)."""

    def __init__(self, settings: LearnedSettings):
        self.settings = settings
        self.models: dict[str, CollaborativeModel] = {}
        self.fits = 0
        self._events_since_fit = 0
        self._fitted_at = time.monotonic()
        self._refit = BackgroundJob("learned-refit")
        self._lock = threading.Lock()

    @property
    def current(self) -> CollaborativeModel | None:
        """The learned model (EASE or ALS) in use; None before any fit."""
        return self.models.get("learned")

    def _new_models(self, items: int) -> dict[str, CollaborativeModel]:
        models: dict[str, CollaborativeModel] = {}
        if self.settings.model != "none":
            models["learned"] = make_model(self.settings, items)
        if self.settings.sequence_window:
            models["sequential"] = SequentialRules(self.settings.sequence_window, self.settings.sequence_decay)
        return models

    def fit(self, log: TrainingLog) -> bool:
        """Fit new models and make them current; False (and the previous models kept, with a log line) when the log
        is empty or a fit is degenerate."""
        models = self._new_models(log.interactions.shape[1])
        if not models or log.empty:
            return False
        try:
            for model in models.values():
                model.fit(log)
        except CollaborativeFitError as error:
            logger.warning("learned model not refitted, the previous one stays: %s", error)
            return False
        with self._lock:
            self.models, self.fits = models, self.fits + 1
        return True

    def note(self, new_events: int, log: Callable[[], TrainingLog]) -> None:
        """Count new events; when a refit is due and none runs, start one on `log()` in the background. With no
        model configured there is nothing to fit, and the log is not read."""
        if self.settings.model == "none" and not self.settings.sequence_window:
            return
        with self._lock:
            self._events_since_fit += new_events
            waited = time.monotonic() - self._fitted_at
            due = self._events_since_fit >= self.settings.refit_events or (
                self._events_since_fit > 0 and waited >= self.settings.refit_seconds
            )
            if not due or self.refitting:
                return
            self._events_since_fit, self._fitted_at = 0, time.monotonic()
            self._refit.start(self._fit_beside_turns, log)

    def _fit_beside_turns(self, log: Callable[[], TrainingLog]) -> None:
        """A background refit on one BLAS thread, so the other cores stay free for turns (a 10k-item EASE fit on
        every core made turns during it up to 10x slower)."""
        from threadpoolctl import threadpool_limits

        training = log()
        if self._refit.stop_requested.is_set():  # the process exits: a fit started now would outlive it
            return
        with threadpool_limits(1, "blas"):
            self.fit(training)

    @property
    def refitting(self) -> bool:
        """Whether a background refit is running now."""
        return self._refit.running

    def wait(self, timeout: float | None = None) -> None:
        """Until a background refit in progress has finished (for tests, benchmarks and shutdown)."""
        self._refit.wait(timeout)

    def scores(self, name: str, history: np.ndarray) -> np.ndarray | None:
        """Per catalog item, the current `name` model's score of `history`; None before any fit (cold start) or
        when that model is off. Items added since the fit score 0."""
        model = self.models.get(name)
        if model is None or not history.any():
            return None
        scores = np.zeros(len(history), dtype=np.float32)
        fitted = model.score(history)[: len(history)]
        scores[: len(fitted)] = fitted
        return scores
