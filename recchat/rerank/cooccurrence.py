"""Item-item co-occurrence of positive opinions: how many users hold both items positive.

Built in one sparse product from the log at start-up and updated pair by pair as opinions change, so one like
moves the next ranking at once. Scores are cosine: the count over the square root of each item's likers."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from scipy.sparse import csr_matrix


class CoOccurrence:
    """Counts from the last rebuild (sparse) plus the changes since (per item, a counter of other items)."""

    def __init__(self) -> None:
        self.base: csr_matrix | None = None
        self.live: defaultdict[int, Counter] = defaultdict(Counter)

    def rebuild(self, users_by_items: csr_matrix) -> None:
        """All counts at once from users x items (1 where the user holds the item positive)."""
        co = (users_by_items.T @ users_by_items).tocsr()
        co.setdiag(0)
        co.eliminate_zeros()
        self.base, self.live = co, defaultdict(Counter)

    def change(self, position: int, others: Iterable[int], change: int) -> None:
        """An item became positive (+1) or stopped being positive (-1) for a user who holds `others` positive."""
        for other in others:
            if other != position:
                self.live[position][other] += change
                self.live[other][position] += change

    def pair(self, a: int, b: int, likers: np.ndarray) -> float:
        """Cosine co-occurrence of two items: users who liked both over sqrt(likers of a x likers of b)."""
        count = self.live.get(a, {}).get(b, 0)
        if self.base is not None and max(a, b) < self.base.shape[0]:
            count += self.base[a, b]
        return max(0.0, float(count)) / math.sqrt(max(likers[a], 1) * max(likers[b], 1))

    def scores(self, positives: dict[int, float], likers: np.ndarray) -> np.ndarray:
        """Per item, the weighted sum over the positive items of their cosine co-occurrence with it."""
        likers = np.maximum(likers, 0)
        scores = np.zeros(len(likers))
        if not positives:
            return scores
        base_rows = [p for p in positives if self.base is not None and p < self.base.shape[0]]
        if base_rows:
            weights = np.array([positives[p] / math.sqrt(max(likers[p], 1)) for p in base_rows])
            summed = np.asarray(self.base[base_rows].T @ weights).ravel()
            scores[: len(summed)] += summed
        for p, weight in positives.items():
            live = self.live.get(p)
            if live:
                scale = weight / math.sqrt(max(likers[p], 1))
                for other, count in live.items():
                    scores[other] += count * scale
        with np.errstate(divide="ignore", invalid="ignore"):
            scores = np.where(likers > 0, scores / np.sqrt(np.maximum(likers, 1)), 0.0)
        return np.maximum(scores, 0)
