"""Ranking metrics for one held-out target per user. A rank is 1-based; None means the target was not listed."""

from __future__ import annotations

import math
from collections.abc import Sequence

Rank = int | None


def rank_of(target: str, ranking: Sequence[str]) -> Rank:
    for position, item_id in enumerate(ranking, start=1):
        if item_id == target:
            return position
    return None


def hit_rate(ranks: Sequence[Rank], k: int) -> float:
    """Share of users whose target is in their top k."""
    return _mean([1.0 if rank is not None and rank <= k else 0.0 for rank in ranks])


def ndcg(ranks: Sequence[Rank], k: int) -> float:
    """Mean NDCG@k; with one relevant item the ideal DCG is 1, so each user scores 1/log2(rank + 1)."""
    return _mean([1.0 / math.log2(rank + 1) if rank is not None and rank <= k else 0.0 for rank in ranks])


def mrr(ranks: Sequence[Rank]) -> float:
    """Mean reciprocal rank over the whole listed depth (a target not listed scores 0)."""
    return _mean([1.0 / rank if rank is not None else 0.0 for rank in ranks])


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0
