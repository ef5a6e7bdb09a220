"""Several workers over one PostgreSQL feedback log: real `recchat serve` processes, real HTTP, a real cluster
(started through recchat/services.py when it is down; skipped where PostgreSQL is not installed, failed under CI)."""

from __future__ import annotations

import re

import httpx
import pytest
from conftest import GatedBackend, served_here

from recchat.server.process import ApiServer

COAT = "I want a warm winter coat"
FOLLOW_UPS = [COAT, "cheaper", "not black", "something else", "in blue", "under $150"]


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


def server_settings(services, tmp_path, **changes):
    from recchat.config import Settings

    return Settings(
        data_dir=tmp_path, llm={"backend": "none"}, vectorstore={"url": services["RECCHAT_VECTORSTORE__URL"]},
        feedback={"path": tmp_path / "feedback.sqlite3"}, **changes,
    )


def fresh_catalog(products, name: str):
    """The bundled products under a name of their own: a collection no other test has filled."""
    import uuid

    from recchat.catalog import Catalog

    return Catalog(f"{name}-{uuid.uuid4().hex[:8]}", list(products))


def test_a_chroma_server_answers_as_the_embedded_store_and_syncs_incrementally(services, encoder, products, tmp_path):
    from recchat.chat import RecChat
    from recchat.config import Settings
    from recchat.retrieval import VectorIndex, open_vector_store

    catalog = fresh_catalog(products, "served")
    served = RecChat.from_settings(server_settings(services, tmp_path), encoder=encoder, catalog=catalog)
    embedded = RecChat.from_settings(
        Settings(data_dir=tmp_path / "embedded", llm={"backend": "none"}), encoder=encoder, catalog=catalog
    )
    for message in (COAT, "running shoes under $100", "a leather handbag"):
        assert [i.id for i in served.chat(message).items] == [i.id for i in embedded.chat(message).items]
    index = VectorIndex(open_vector_store(server_settings(services, tmp_path)), catalog.name, encoder)
    assert index.sync(catalog).unchanged == len(catalog)  # a second worker finds the server's index up to date


SYNCER = """
import sys
from recchat.catalog import Catalog, load_catalog
from recchat.config import BUNDLED_CATALOG_DIR, Settings
from recchat.embeddings import cached_encoder
from recchat.retrieval import VectorIndex, open_vector_store
settings = Settings(vectorstore={"url": sys.argv[1]}, data_dir=sys.argv[3])
catalog = Catalog(sys.argv[2], load_catalog(BUNDLED_CATALOG_DIR / "products.jsonl"))
print(VectorIndex(open_vector_store(settings), catalog.name, cached_encoder(settings)).sync(catalog).added)
"""


def test_two_workers_syncing_one_catalog_at_once_leave_it_whole_and_embed_it_once(services, encoder, products,
                                                                                 tmp_path):
    import subprocess
    import sys

    from recchat.retrieval import VectorIndex, open_vector_store

    catalog = fresh_catalog(products, "racing")
    url = services["RECCHAT_VECTORSTORE__URL"]
    workers = [subprocess.Popen([sys.executable, "-c", SYNCER, url, catalog.name, str(tmp_path / f"w{n}")],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in range(2)]
    added = []
    for worker in workers:
        output, errors = worker.communicate(timeout=300)
        assert worker.returncode == 0, errors
        added.append(int(output.split()[-1]))
    assert sorted(added) == [0, len(catalog)]  # one embedded the catalog; the other waited and found it done
    index = VectorIndex(open_vector_store(server_settings(services, tmp_path)), catalog.name, encoder)
    assert index.count() == len(catalog)
    assert index.stored_hashes() == {item.id: item.content_hash() for item in catalog}


def test_a_chroma_server_that_goes_down_is_a_clear_error_and_the_worker_recovers(services, encoder, products, tmp_path):
    import pytest

    from recchat import services as local
    from recchat.chat import RecChat
    from recchat.errors import VectorStoreError

    bot = RecChat.from_settings(server_settings(services, tmp_path), encoder=encoder, catalog=fresh_catalog(products,
                                                                                                            "downtime"))
    before = [item.id for item in bot.chat(COAT).items]
    local.stop_chroma(local.saved_state())
    try:
        with pytest.raises(VectorStoreError, match="not answering"):
            bot.chat(COAT)
    finally:
        local.up()  # the same address as before
    assert [item.id for item in bot.chat(COAT).items] == before


def test_a_worker_killed_with_kill_9_loses_no_confirmed_event(postgres_url, products, tmp_path):
    import os
    import signal

    from recchat.feedback.postgres import PostgresFeedbackStore

    env = {"RECCHAT_LLM__BACKEND": "none", "RECCHAT_FEEDBACK__URL": postgres_url}
    doomed = ApiServer({**env, "RECCHAT_DATA_DIR": str(tmp_path / "a")}, tmp_path / "a.log", args=("--no-ui",))
    with doomed, ApiServer({**env, "RECCHAT_DATA_DIR": str(tmp_path / "b")}, tmp_path / "b.log",
                           args=("--no-ui",)) as survivor:
        items = [item.id for item in list(products)[:30]]
        with httpx.Client(base_url=doomed.base_url, timeout=60) as http:
            for item in items:  # each confirmed before the next is sent
                assert http.post("/v1/feedback", json={"kind": "dislike", "item_id": item, "user_id": "k"}).json() == {
                    "recorded": True
                }
        os.killpg(doomed.process.pid, signal.SIGKILL)
        doomed.process.wait()
        store = PostgresFeedbackStore(postgres_url)
        assert sorted(event.item_id for event in store.events_after(0) if event.user_id == "k") == sorted(items)
        reply = httpx.post(f"{survivor.base_url}/v1/chat", json={"message": COAT, "user_id": "k"}, timeout=60).json()
        assert not set(items) & {item["id"] for item in reply["items"]}  # the survivor hides every one of them


def turns_served(metrics: str) -> int:
    """The turns one worker answered, from its /metrics (each worker counts its own)."""
    return sum(int(float(n)) for n in re.findall(r'^recchat_turns_total\{source="\w+"\} (\S+)$', metrics, re.M))


@pytest.mark.slow  # about a minute: `recchat serve --workers 2` starts, and one worker's answers are computed here
def test_follow_ups_alternating_between_two_workers_get_one_workers_answers_with_sessions_in_postgresql(
    postgres_url, settings, encoder, tmp_path
):
    """Issue #27 (sessions live in one worker's memory): with `recchat serve --workers 2`, a follow-up that reached
    the other worker was a 404. With feedback.url on PostgreSQL, the sessions are there: each follow-up, on a new
    connection (either worker may take it), gets what one worker answers."""
    from recchat.chat import RecChat

    env = {"RECCHAT_DATA_DIR": str(tmp_path / "served"), "RECCHAT_LLM__BACKEND": "none",
           "RECCHAT_FEEDBACK__URL": postgres_url}
    log = tmp_path / "server.log"
    with ApiServer(env, log, args=("--workers", "2", "--no-ui")) as server:
        session = httpx.post(f"{server.base_url}/v1/sessions", json={"user_id": "ann"}).json()["session_id"]
        served = []
        for message in FOLLOW_UPS:
            with httpx.Client(base_url=server.base_url, timeout=60) as fresh:  # a new connection: any worker
                reply = fresh.post("/v1/chat", json={"message": message, "session_id": session})
            assert reply.status_code == 200, reply.text
            served.append(reply.json())
        counts = [turns_served(httpx.get(f"{server.base_url}/metrics").text) for _ in range(8)]
        assert any(0 < count < len(FOLLOW_UPS) for count in counts), f"one worker took every turn: {counts}"
    assert log.read_text().count("Started server process") == 2 and "Traceback" not in log.read_text()
    one = RecChat.from_settings(settings.model_copy(update={"llm": settings.llm.model_copy(update={"backend": "none"}),
                                                            "data_dir": tmp_path / "one"}), encoder=encoder)
    alone = one.new_session(user_id="ann")
    for message, reply in zip(FOLLOW_UPS, served, strict=True):
        expected = one.chat(message, alone)
        assert [item["id"] for item in reply["items"]] == [item.id for item in expected.items], message
        assert reply["metadata"]["turn"] == expected.metadata.turn


def test_forgetting_a_user_through_one_worker_drops_their_sessions_on_all_and_their_running_turn_logs_nothing(
    postgres_url, settings, encoder, tmp_path
):
    """Issue #27 (forgetting is final, with several workers): the other worker kept the user's sessions in its
    memory and went on with them, and a turn of theirs running there logged its impressions after the DELETE.
    Two workers over one PostgreSQL, each served over HTTP: a turn on `a` held at its model while `b` forgets."""
    from recchat.chat import RecChat
    from recchat.server import create_app

    gated = GatedBackend()
    tuned = settings.model_copy(update={
        "data_dir": tmp_path, "feedback": settings.feedback.model_copy(update={"url": postgres_url}),
        "api": settings.api.model_copy(update={"ui": False}),
    })
    a = RecChat.from_settings(tuned, encoder=encoder, backend=gated)
    b = RecChat.from_settings(tuned.model_copy(update={"llm": tuned.llm.model_copy(update={"backend": "none"})}),
                              encoder=encoder)

    with served_here(create_app(a)) as worker_a, served_here(create_app(b)) as worker_b, \
            httpx.Client(timeout=60) as http:
        session = http.post(f"{worker_b}/v1/chat", json={"message": COAT, "user_id": "ann"}).json()["metadata"][
            "session_id"]
        with http.stream("POST", f"{worker_a}/v1/chat/stream", json={"message": "cheaper", "session_id": session}) \
                as streamed:
            lines = streamed.iter_lines()
            assert next(lines) == "event: message"
            assert gated.started.wait(timeout=30)  # the follow-up is at a's model
            assert http.delete(f"{worker_b}/v1/users/ann").json()["deleted"] >= 1
            gated.gate.set()
            assert "event: done" in list(lines)
        assert b.feedback_store.count("ann") == 0  # nothing written after the DELETE returned
        for worker in (worker_a, worker_b):
            follow_up = http.post(f"{worker}/v1/chat", json={"message": "cheaper", "session_id": session})
            assert follow_up.status_code == 404 and follow_up.json()["error"]["type"] == "UnknownSessionError"
            like = {"kind": "like", "item_id": "P0007-wool-overcoat", "session_id": session}
            assert http.post(f"{worker}/v1/feedback", json=like).status_code == 404
        http.post(f"{worker_a}/v1/chat", json={"message": COAT, "user_id": "bea"})  # a's next turn catches up
        a.feedback_model.wait(timeout=30)  # the replay it started without ann
        assert "ann" not in a.feedback_model.users and "ann" not in b.feedback_model.users


def test_a_follow_up_sent_to_another_worker_while_a_turn_of_its_session_runs_waits_for_it(postgres_url, settings,
                                                                                         encoder, tmp_path):
    """Issue #27 (sessions across workers): turns of one session run one at a time wherever they land, so the
    follow-up reads the turn before it. Two engines over one PostgreSQL, as two workers: `a`'s turn held at its model,
    `b`'s follow-up of the same session waits, then comes second."""
    import threading
    import time

    from recchat.chat import RecChat

    gated = GatedBackend()
    tuned = settings.model_copy(update={
        "data_dir": tmp_path, "feedback": settings.feedback.model_copy(update={"url": postgres_url}),
    })
    a = RecChat.from_settings(tuned, encoder=encoder, backend=gated)
    b = RecChat.from_settings(tuned.model_copy(update={"llm": tuned.llm.model_copy(update={"backend": "none"})}),
                              encoder=encoder)
    session = a.new_session(user_id="ann")
    replies = {}
    first = threading.Thread(target=lambda: replies.setdefault("a", a.chat(COAT, session)))
    second = threading.Thread(target=lambda: replies.setdefault("b", b.chat("cheaper", session)))
    first.start()
    assert gated.started.wait(timeout=30)
    second.start()
    time.sleep(1)
    assert second.is_alive() and not replies  # b waits for a's turn
    gated.gate.set()
    first.join(timeout=60)
    second.join(timeout=60)
    assert (replies["a"].metadata.turn, replies["b"].metadata.turn) == (1, 2)
    assert replies["b"].metadata.request.follow_up  # it refined a's turn
    assert max(item.price for item in replies["b"].items) < min(item.price for item in replies["a"].items)


def test_recchat_feedback_forget_deletes_the_users_shared_sessions_too(postgres_url, tmp_path, monkeypatch, capsys):
    """Issue #27 (forgetting is final): with sessions in PostgreSQL, the command line deleted the user's events and left
    their sessions (their last requests and replies) in the database."""
    from recchat.cli import main
    from recchat.feedback.postgres import PostgresFeedbackStore
    from recchat.session_postgres import PostgresSessions

    monkeypatch.setenv("RECCHAT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RECCHAT_FEEDBACK__URL", postgres_url)
    sessions = PostgresSessions(PostgresFeedbackStore(postgres_url), limit=10, hold_s=60)
    ann, bea = sessions.open(user_id="ann"), sessions.open(user_id="bea")
    assert main(["feedback", "forget", "ann"]) == 0
    assert "deleted 0 rows of user 'ann'" in capsys.readouterr().out
    assert ann.id not in sessions and bea.id in sessions
    sessions.store.close()
