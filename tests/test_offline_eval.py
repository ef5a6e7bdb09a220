"""The offline harness: the protocol on hand-made ratings, the baselines on cases computed by hand, and a
real run on MovieLens-100K through the real engine."""

import json

import pytest

from recchat.catalog import Catalog
from recchat.evaluation.offline import Rating, load_ratings, request_text, run_offline, split
from recchat.evaluation.systems import ItemKNN, Learned, Popularity
from recchat.models import Item


def film(number: int, genres=("Drama",)) -> Item:
    return Item(
        id=f"ml-100k:{number}", title=f"Film {number} (1990)", category="movies", attributes={"genres": list(genres)}
    )


@pytest.fixture
def toy():
    catalog = Catalog("toy", [film(n) for n in range(1, 8)])
    ratings = {
        # user a: positives 1, 2, 3, then 4 (the target); 5 rated after it, so it is future data
        "a": [Rating("ml-100k:1", 5, 1), Rating("ml-100k:2", 4, 2), Rating("ml-100k:6", 2, 3),
              Rating("ml-100k:3", 5, 4), Rating("ml-100k:4", 4, 5), Rating("ml-100k:5", 1, 6)],
        # users b and c: too few positives to be tested
        "b": [Rating("ml-100k:1", 5, 1), Rating("ml-100k:4", 5, 2)],
        "c": [Rating("ml-100k:1", 4, 1), Rating("ml-100k:4", 4, 2), Rating("ml-100k:7", 3, 3)],
    }
    return catalog, ratings


def test_split_holds_out_the_last_positive_and_hides_the_future(toy):
    catalog, ratings = toy
    data = split(ratings, catalog, users=10, liked_in_request=2)
    assert [case.user for case in data.cases] == ["a"]  # b and c lack a third positive
    case = data.cases[0]
    assert case.target == "ml-100k:4" and case.liked == ["ml-100k:2", "ml-100k:3"]
    assert case.seen == {"ml-100k:1", "ml-100k:2", "ml-100k:6", "ml-100k:3"} and case.target not in case.seen
    assert case.request == 'I liked "Film 2 (1990)" and "Film 3 (1990)"; what should I watch next?'
    assert [r.item for r in data.training["a"]] == ["ml-100k:1", "ml-100k:2", "ml-100k:6", "ml-100k:3"]
    assert data.training["c"] == ratings["c"]  # untested users keep all their ratings


def test_sampling_is_seeded():
    assert request_text(["A"], "Comedy") == 'I liked "A"; what comedy film should I watch next?'
    ratings = load_ratings("ml-100k")
    catalog = Catalog("c", [film(n) for n in range(1, 1683)])
    first = [case.user for case in split(ratings, catalog, users=20, seed=7).cases]
    assert first == [case.user for case in split(ratings, catalog, users=20, seed=7).cases]
    assert first != [case.user for case in split(ratings, catalog, users=20, seed=8).cases]


def test_popularity_counts_training_ratings_and_skips_seen():
    training = {
        "u": [Rating("x", 5, 1), Rating("y", 1, 2)],
        "v": [Rating("x", 3, 1)],
        "w": [Rating("z", 4, 1), Rating("x", 4, 2), Rating("y", 4, 3)],
    }
    assert Popularity(training).rank("", {"x"}, 2) == ["y", "z"]  # x (3 ratings) is seen; y has 2, z has 1


def test_item_knn_scores_by_similarity_to_the_users_positives():
    # Likers (ratings >= 4): x {u1, u2, me}, y {u1, u2}, z {u2, u3}, w {u3}. For "me" (who liked x):
    # cos(x, y) = 2 / (sqrt(3) sqrt(2)) = 0.816, cos(x, z) = 1 / sqrt(6) = 0.408, cos(x, w) = 0.
    training = {
        "u1": [Rating("x", 5, 1), Rating("y", 5, 2)],
        "u2": [Rating("x", 4, 1), Rating("y", 4, 2), Rating("z", 4, 3)],
        "u3": [Rating("z", 5, 1), Rating("w", 5, 2)],
        "me": [Rating("x", 5, 1), Rating("q", 2, 2)],
    }
    knn = ItemKNN(training)
    knn.start("me", [])
    ranking = knn.rank("", {"x", "q"}, 3)
    assert ranking[:2] == ["y", "z"] and "x" not in ranking and "q" not in ranking
    assert knn.similarity_of("x", "z") == pytest.approx(6 ** -0.5)
    knn.start("someone new", ["w"])  # a user the training data does not know: the films they named
    assert knn.rank("", set(), 1) == ["z"]


def test_the_learned_baseline_follows_the_latest_like_when_weighted_by_recency():
    from recchat.collaborative import EASE

    # x is watched with xx, y with yy; "me" liked x long ago and y last, and disliked d (seen, never offered).
    training = {f"u{n}": [Rating("x", 5, 1), Rating("xx", 5, 2)] for n in range(5)}
    training |= {f"v{n}": [Rating("y", 5, 1), Rating("yy", 4, 2), Rating("d", 1, 3)] for n in range(3)}
    training["me"] = [Rating("x", 5, 1), Rating("d", 2, 2), Rating("y", 5, 3)]
    rankings = []
    for half_life in (0, 0.5):
        learned = Learned("ease", EASE(l2=1.0), training, half_life)
        learned.start("me", [])
        rankings.append(learned.rank("", {"x", "y", "d"}, 2))
    plain, recent = rankings
    assert plain[0] == "xx" and recent[0] == "yy"  # more users watched x with xx; the latest like was y
    assert "d" not in plain + recent


def test_real_run_on_movielens_100k_writes_the_reports(settings, encoder, real_backend, tmp_path):
    results, paths = run_offline(
        settings, "ml-100k", users=2, seed=3, encoder=encoder, backend=real_backend, out_dir=tmp_path / "report"
    )
    names = [result.name for result in results]
    assert names == [
        "recchat", "popularity", "item-knn", "embedding", "ease", "ease-recency", "als", "sequential-rules"
    ]
    for result in results:
        assert len(result.ranks) == len(result.latencies_ms) == 2
    recchat = results[0].summary()
    assert recchat["outside_catalog_rate"] == 0.0 and recchat["llm_answered_rate"] > 0
    report = json.loads(paths["json"].read_text())
    assert report["users"] == 2 and set(report["systems"]) == set(names)
    assert "Ratings of 4-5 are positives" in report["protocol"]
    assert "| item-knn |" in paths["markdown"].read_text()
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
