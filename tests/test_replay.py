"""The feedback replay: its protocol on hand-made ratings, and a real run on MovieLens-100K through the real engine."""

import json

import pytest

from recchat.catalog import Catalog
from recchat.evaluation.replay import SHOWN, TURNS, ReplayCase, replay, replay_split, run_replay
from recchat.evaluation.systems import Baseline
from recchat.models import Item
from recchat.movies import Rating, rating_events


def film(number: int) -> Item:
    return Item(id=f"m:{number}", title=f"Film {number} (1990)", category="movies")


def test_sampled_users_are_new_to_the_system_and_never_rate_their_target():
    catalog = Catalog("toy", [film(n) for n in range(1, 10)])
    ratings = {
        "a": [Rating("m:1", 5, 1), Rating("m:5", 2, 2), Rating("m:2", 4, 3), Rating("m:6", 3, 4), Rating("m:3", 5, 5),
              Rating("m:7", 4, 6), Rating("m:4", 5, 7), Rating("m:8", 1, 8)],
        "b": [Rating("m:1", 5, 1), Rating("m:4", 5, 2)],
    }
    cases, history = replay_split(ratings, catalog, users=5, liked_in_request=2)
    assert [case.user for case in cases] == ["a"] and list(history) == ["b"]
    case = cases[0]
    assert case.target == "m:4" and case.references == ("m:3", "m:7")
    # opinions: ratings before the target, minus the named films; 3 is a click; the target and later are unknown
    assert case.opinions == {"m:1": "like", "m:5": "dislike", "m:2": "like", "m:6": "click"}


def test_ratings_become_likes_clicks_and_dislikes_with_keys_that_make_reimport_a_no_op():
    events = list(rating_events({"7": [Rating("m:1", 5, 10), Rating("m:2", 3, 11), Rating("m:3", 1, 12)]}, "ml"))
    assert [(e.kind, e.user_id, e.item_id, e.time, e.key) for e in events] == [
        ("like", "ml:7", "m:1", 10, "ml:7:m:1"), ("click", "ml:7", "m:2", 11, "ml:7:m:2"),
        ("dislike", "ml:7", "m:3", 12, "ml:7:m:3"),
    ]


class Scripted(Baseline):
    """Ranks a fixed list; records what it heard. Tests the replay loop itself, not a recommender."""

    name = "scripted"

    def __init__(self, ranking):
        self.ranking, self.heard = ranking, []

    def rank(self, request, excluded, depth):
        return [item for item in self.ranking if item not in excluded][:depth]

    def react(self, item, kind):
        self.heard.append((item, kind))


def test_the_loop_shows_new_items_each_turn_reacts_from_ratings_and_keeps_a_found_target_found():
    items = [f"m:{n}" for n in range(1, 30)]
    opinions = {"m:2": "like", "m:3": "dislike", "m:9": "like"}
    case = ReplayCase("u", "req", target="m:8", references=("m:1",), opinions=opinions)
    system = Scripted(items)
    result = replay([case], [system])[0]
    # turn 1 shows m:2..m:6 (m:1 is a reference), turn 2 m:7..m:11 (the target at rank 2), later turns keep rank 2
    assert [ranks[0] for ranks in result.ranks] == [7, 2, 2, 2]
    assert system.heard == [("m:2", "like"), ("m:3", "dislike"), ("m:9", "like")]
    assert len(result.ranks) == TURNS and SHOWN == 5


@pytest.mark.timeout(900)
def test_replay_on_ml_100k_through_the_real_engine(settings, encoder, tmp_path):
    results, report = run_replay(settings, "ml-100k", users=12, seed=3, out_dir=tmp_path, encoder=encoder,
                                 variants={"no collaborative": {"collaborative": 0}})
    names = [result.name for result in results]
    assert names == ["recchat + feedback", "recchat, feedback off", "recchat + feedback, no collaborative",
                     "popularity", "item-knn + feedback", "ease + feedback", "ease-recency + feedback",
                     "als + feedback", "sequential-rules + feedback", "embedding"]
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["users"] == 12 and data["imported_events"] > 50_000
    for result in results:
        assert all(len(ranks) == 12 for ranks in result.ranks)
        for user in range(12):  # once shown (top 5), found for good
            shown_at = next((t for t in range(TURNS) if (result.ranks[t][user] or 99) <= SHOWN), None)
            if shown_at is not None:
                assert {result.ranks[t][user] for t in range(shown_at, TURNS)} == {result.ranks[shown_at][user]}
    with_feedback, without = results[0], results[1]
    assert with_feedback.ranks[0] == without.ranks[0]  # identical until the first feedback
    assert with_feedback.reactions["like"] > 0  # the simulated users did react
    assert "## Protocol" in report.read_text() and "new to every" in report.read_text()
    assert not list(tmp_path.glob("**/*.sqlite3"))  # the scratch stores are gone
