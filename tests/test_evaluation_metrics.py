"""Ranking metrics against examples computed by hand."""

import math

import pytest

from recchat.evaluation.metrics import hit_rate, mrr, ndcg, percentile, rank_of


def test_rank_of_is_one_based_and_none_when_missing():
    assert rank_of("b", ["a", "b", "c"]) == 2
    assert rank_of("z", ["a", "b"]) is None
    assert rank_of("a", []) is None


def test_hand_computed_example():
    # Four users: targets at rank 1, 3, 7, and not listed.
    ranks = [1, 3, 7, None]
    assert hit_rate(ranks, 1) == 0.25
    assert hit_rate(ranks, 5) == 0.5
    assert hit_rate(ranks, 10) == 0.75
    # NDCG@5: (1/log2(2) + 1/log2(4)) / 4 = (1 + 0.5) / 4
    assert ndcg(ranks, 5) == pytest.approx(0.375)
    # NDCG@10 adds 1/log2(8) = 1/3
    assert ndcg(ranks, 10) == pytest.approx((1 + 0.5 + 1 / 3) / 4)
    # MRR: (1 + 1/3 + 1/7 + 0) / 4
    assert mrr(ranks) == pytest.approx((1 + 1 / 3 + 1 / 7) / 4)


def test_ndcg_at_k_ignores_hits_below_k_and_empty_input_is_zero():
    assert ndcg([2], 1) == 0.0
    assert ndcg([2], 2) == pytest.approx(1 / math.log2(3))
    assert hit_rate([], 10) == ndcg([], 10) == mrr([]) == 0.0


def test_percentile_interpolates():
    assert percentile([10, 20, 30, 40], 50) == 25
    assert percentile([5], 95) == 5
    assert percentile([1, 2, 3, 4, 5], 100) == 5
    assert percentile([], 50) == 0.0
