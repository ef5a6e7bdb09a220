"""The session stores' contract, run on both: this process's memory (beside a SQLite log) and PostgreSQL (beside
its log, each "worker" a store with its own connections, as two processes have). Opening, owners, the bound, one
turn at a time, a turn's state and log kept together, and forgetting a user."""

from __future__ import annotations

import pytest

from recchat.errors import SessionOwnerError, UnknownSessionError
from recchat.feedback import SQLiteFeedbackStore, impressions
from recchat.feedback.postgres import PostgresFeedbackStore
from recchat.models import Constraints, ParsedRequest, RecommendationList, RecommendedItem, ReplyMetadata
from recchat.session import Session, Sessions, held
from recchat.session_postgres import PostgresSessions


@pytest.fixture(params=["memory", "postgres"])
def workers(request, tmp_path):
    """Make a store over one shared place: in memory, every worker is the one store (one process's memory is
    shared only within it); in PostgreSQL, each worker is a store with its own connection pool."""
    opened = []
    if request.param == "memory":
        log = SQLiteFeedbackStore(tmp_path / "f.sqlite3")
        shared: dict[int, Sessions] = {}

        def worker(limit: int = 100):
            return shared.setdefault(limit, Sessions(limit, log)), log
    else:
        url = request.getfixturevalue("postgres_url")

        def worker(limit: int = 100):
            store = PostgresFeedbackStore(url)
            opened.append(store)
            return PostgresSessions(store, limit, hold_s=60), store

    yield worker
    for store in opened:
        store.close()


def reply_for(session: Session, *item_ids: str) -> RecommendationList:
    request = ParsedRequest(query="a warm coat", constraints=Constraints(max_price=200), follow_up=False)
    items = [RecommendedItem(id=i, title=i, reason="warm", score=0.5, category="Outerwear", reason_source="facts")
             for i in item_ids]
    metadata = ReplyMetadata(session_id=session.id, user_id=session.user_id, turn=session.turns + 1, backend="none",
                             prompt="recommend@1", source="retrieval", request=request)
    return RecommendationList(message="Here are coats.", items=items, metadata=metadata)


def take_turn(sessions, session: Session, *item_ids: str, message: str | None = None) -> bool:
    with held(sessions, session) as current:
        reply = reply_for(current, *item_ids)
        current.ended(reply, reply.metadata.request)
        return sessions.end_turn(current, impressions(reply), message)


def test_a_session_opened_by_one_worker_is_found_by_another_with_its_user(workers):
    (a, _), (b, _) = workers(), workers()
    session = a.open(user_id="ann")
    assert session.id in b and b.get(session.id) == session
    assert b.open(session.id, "ann").user_id == "ann" and b.open(session.id).user_id == "ann"
    with pytest.raises(SessionOwnerError, match="belongs to user 'ann'"):
        b.open(session.id, "bob")
    anonymous = b.open("visitor-1")
    assert a.get("visitor-1").user_id == "visitor-1"  # anonymous: the session id is its user
    assert anonymous.turns == 0 and anonymous.last_reply is None and "never-made" not in a


def test_a_turn_ended_on_one_worker_is_the_next_turns_state_on_another(workers):
    (a, log), (b, _) = workers(), workers()
    session = a.open(user_id="ann")
    assert take_turn(a, session, "P1", "P2", message="a warm coat")
    follow_up = b.get(session.id)
    assert follow_up.turns == 1 and [item.id for item in follow_up.last_reply.items] == ["P1", "P2"]
    assert follow_up.last_request == follow_up.last_reply.metadata.request
    assert take_turn(b, follow_up, "P3")
    assert a.get(session.id).turns == 2 and a.get(session.id).last_reply.metadata.turn == 2
    assert sorted(event.item_id for event in log.events_after(0)) == ["P1", "P2", "P3"]  # logged with each turn
    assert log.messages("ann") == ["a warm coat"]


def test_one_turn_of_a_session_runs_at_a_time_whichever_worker_holds_it(workers):
    (a, _), (b, _) = workers(), workers()
    session, other = a.open(user_id="ann"), a.open(user_id="ann")
    first = a.try_hold(session)
    assert first is not None
    assert b.try_hold(session) is None and a.try_hold(session) is None  # the follow-up waits
    second = b.try_hold(other)  # other sessions go on
    assert second is not None
    b.release(second)
    a.release(first)
    again = b.try_hold(session)
    assert again is not None
    b.release(again)


def test_past_the_bound_the_least_recently_used_sessions_are_dropped_but_never_a_running_one(workers):
    sessions, _ = workers(limit=2)
    running = sessions.open("running")
    holding = sessions.try_hold(running)
    assert holding is not None
    sessions.open("idle")
    sessions.open("third")
    assert all(name in sessions for name in ("running", "idle", "third"))  # the oldest is past the bound, but running
    sessions.release(holding)
    sessions.open("idle")  # used again: now more recent than "third"
    sessions.open("fourth")
    assert [name in sessions for name in ("running", "third", "idle", "fourth")] == [False, False, True, True]
    with pytest.raises(UnknownSessionError, match="no longer kept"):
        sessions.try_hold(running)


def test_forgetting_a_user_drops_their_sessions_on_every_worker_and_a_running_turn_logs_nothing(workers):
    (a, log), (b, _) = workers(), workers()
    ann, bea = a.open(user_id="ann"), a.open(user_id="bea")
    assert take_turn(a, ann, "P1")
    running = b.try_hold(ann)
    assert running is not None
    reply = reply_for(running, "P2", "P3")
    running.ended(reply, reply.metadata.request)
    before = log.events_after(0)
    a.forget_user("ann")
    assert ann.id not in a and ann.id not in b and b.get(ann.id) is None and bea.id in b
    assert not b.end_turn(running, impressions(reply), "a warm coat")  # the turn was running when ann was forgotten
    b.release(running)
    assert log.events_after(0) == before and log.messages("ann") == []
    with pytest.raises(UnknownSessionError, match="forgotten"):
        a.try_hold(ann)
    assert not a.save(ann)


def test_with_sqlite_and_two_workers_the_other_workers_sessions_stayed_and_its_running_turn_logged_after_forgetting(
    tmp_path
):
    """#27 item 4, what was left: with sessions in each worker's memory over one SQLite log, a user forgotten through
    one worker kept their sessions on the other, and a turn running there logged its impressions afterwards."""
    path = tmp_path / "f.sqlite3"
    log_a, log_b = SQLiteFeedbackStore(path), SQLiteFeedbackStore(path)  # two processes' connections
    a, b = Sessions(100, log_a), Sessions(100, log_b)
    ann, bea, quiet = b.open(user_id="ann"), b.open(user_id="bea"), b.open(user_id="cy")  # cy: no turn, no rows
    assert take_turn(b, ann, "P1")
    running = b.try_hold(ann)
    assert running is not None
    reply = reply_for(running, "P2", "P3")
    running.ended(reply, reply.metadata.request)
    for user in ("ann", "cy"):  # what RecChat.forget_user does, on worker a
        a.forget_user(user)
        log_a.forget_user(user)
    assert not b.end_turn(running, impressions(reply), "a warm coat")  # the turn was running when ann was forgotten
    b.release(running)
    assert log_b.count("ann") == 0 and log_b.messages("ann") == []
    assert ann.id not in b and quiet.id not in b and bea.id in b
    with pytest.raises(UnknownSessionError, match="forgotten"):
        b.try_hold(ann)
