"""Several workers over one PostgreSQL feedback log: real `recchat serve` processes, real HTTP, a real cluster
(started through recchat/services.py when it is down; skipped where PostgreSQL is not installed, failed under CI)."""

from __future__ import annotations

import httpx

from recchat.server.process import ApiServer

COAT = "I want a warm winter coat"


def test_a_dislike_given_through_one_worker_hides_the_item_in_the_next_answer_from_another(postgres_url, tmp_path):
    workers = [
        ApiServer({"RECCHAT_DATA_DIR": str(tmp_path / name), "RECCHAT_LLM__BACKEND": "none",
                   "RECCHAT_FEEDBACK__URL": postgres_url}, tmp_path / f"{name}.log", args=("--no-ui",))
        for name in ("a", "b")
    ]
    with workers[0] as first, workers[1] as second:
        shown = httpx.post(f"{first.base_url}/v1/chat", json={"message": COAT, "user_id": "ann"}, timeout=60).json()
        disliked = shown["items"][0]["id"]
        before = httpx.post(f"{second.base_url}/v1/chat", json={"message": COAT, "user_id": "ann"}, timeout=60).json()
        assert disliked in [item["id"] for item in before["items"]]
        recorded = httpx.post(f"{first.base_url}/v1/feedback", json={"kind": "dislike", "item_id": disliked,
                                                                      "user_id": "ann"})
        assert recorded.json() == {"recorded": True}
        after = httpx.post(f"{second.base_url}/v1/chat", json={"message": COAT, "user_id": "ann"}, timeout=60).json()
        assert disliked not in [item["id"] for item in after["items"]]
        assert disliked in after["metadata"]["hidden_ids"]
        forgotten = httpx.delete(f"{second.base_url}/v1/users/ann").json()["deleted"]
        assert forgotten >= 1  # the dislike and the impressions both workers logged, in the one log
        again = httpx.post(f"{first.base_url}/v1/chat", json={"message": COAT, "user_id": "ann"}, timeout=60).json()
        assert disliked in [item["id"] for item in again["items"]]  # forgotten through b, so shown again by a
