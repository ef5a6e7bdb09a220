"""Feedback through the chat API: the real encoder, Chroma, catalog and SQLite file; no LLM (llm.backend 'none'),
since with chat.ranking 'retrieval' the LLM never changes which items are shown."""

from __future__ import annotations

import pytest

from recchat.chat import RecChat
from recchat.errors import FeedbackError, FeedbackStoreError, SessionError, UnknownItemError
from recchat.models import Item

COATS = "a warm winter coat"


@pytest.fixture
def make_bot(settings, encoder, tmp_path):
    def make(rerank: dict | None = None, **feedback) -> RecChat:
        tuned = settings.model_copy(update={
            "llm": settings.llm.model_copy(update={"backend": "none"}),
            "feedback": settings.feedback.model_copy(update={"path": tmp_path / "feedback.sqlite3", **feedback}),
            "rerank": settings.rerank.model_copy(update=rerank or {}),
        })
        return RecChat.from_settings(tuned, encoder=encoder)

    return make


def ids(reply) -> list[str]:
    return [item.id for item in reply.items]


def test_every_reply_logs_its_items_as_impressions(make_bot):
    bot = make_bot()
    reply = bot.chat(COATS, bot.new_session(user_id="ann"))
    events = bot.feedback_store.events_after(0)
    assert [(e.kind, e.item_id, e.rank, e.turn, e.user_id) for e in events] == [
        ("impression", item.id, rank, 1, "ann") for rank, item in enumerate(reply.items, start=1)
    ]


def test_likes_update_co_occurrence_for_every_user_at_once(make_bot):
    """The default: a like is not a taste vector (that lowered HR@10 in the ML-1M replay) but evidence of what goes
    together, which the next user who names the item gets straight away."""
    bot = make_bot()
    peacoat = bot.catalog["P0040-peacoat"]
    request = f'I liked "{peacoat.title}", what else would go with it?'
    before = bot.chat(request, bot.new_session(user_id="first"))
    assert "P0147-chelsea-boots" not in ids(before) and before.metadata.request.similar_to == ["P0040-peacoat"]
    for user in ("ann", "ben"):
        bot.feedback("like", "P0040-peacoat", user_id=user)
        bot.feedback("purchase", "P0147-chelsea-boots", user_id=user)
    after = bot.chat(request, bot.new_session(user_id="later"))
    assert after.items[0].id == "P0147-chelsea-boots"
    assert after.items[0].because == f"because you liked {peacoat.title}"


def test_with_a_preference_weight_a_like_changes_the_very_next_answer_and_says_why(make_bot):
    bot = make_bot(rerank={"profile": 0.3})
    session = bot.new_session(user_id="ann")
    first = bot.chat(COATS, session)
    liked = first.items[-1]
    assert bot.feedback("like", liked.id, session_id=session, turn=1)
    second = bot.chat(COATS, session)
    assert ids(second) != ids(first)
    moved = [item for item in second.items if item.because]
    assert moved and all(item.because == f"because you liked {liked.title}" for item in moved if item.id != liked.id)
    assert all(item.because is None for item in first.items)
    other_user = bot.chat(COATS, bot.new_session(user_id="ben"))
    assert ids(other_user) == ids(first)  # ann's taste is hers


def test_disliked_and_bought_items_are_not_shown_again_unless_asked(make_bot):
    bot = make_bot()
    session = bot.new_session(user_id="ann")
    first = bot.chat(COATS, session)
    bot.feedback("dislike", first.items[0].id, session_id=session)
    bot.feedback("accept", first.items[1].id, session_id=session)  # accept = purchase
    again = bot.chat(COATS, session)
    assert first.items[0].id not in ids(again) and first.items[1].id not in ids(again)
    assert {first.items[0].id, first.items[1].id} <= set(again.metadata.hidden_ids)
    later = bot.chat(COATS, bot.new_session(user_id="ann"))  # long-term: a new session of the same user
    assert first.items[0].id not in ids(later)
    by_name = first.items[0].title  # asking for it by name: still hidden, unless the caller asks for hidden items
    assert first.items[0].id not in ids(bot.chat(by_name, session))
    asked = bot.chat(by_name, session, include_hidden=True)
    assert first.items[0].id in ids(asked) and not asked.metadata.hidden_ids


def test_feedback_for_an_unknown_item_is_refused_and_records_nothing(make_bot):
    bot = make_bot()
    session = bot.new_session(user_id="ann")
    bot.chat(COATS, session)
    before = bot.feedback_store.count()
    with pytest.raises(UnknownItemError, match="no item 'P9999-nope'"):
        bot.feedback("like", "P9999-nope", session_id=session)
    assert bot.feedback_store.count() == before


def test_wrong_session_user_turn_or_kind_is_refused(make_bot):
    bot = make_bot()
    session = bot.new_session(user_id="ann")
    item = bot.chat(COATS, session).items[0].id
    with pytest.raises(SessionError, match="belongs to user 'ann'"):
        bot.feedback("like", item, session_id=session, user_id="mallory")
    with pytest.raises(SessionError, match="belongs to user 'ann'"):
        bot.chat(COATS, session, user_id="mallory")
    with pytest.raises(FeedbackError, match="no turn 5"):
        bot.feedback("like", item, session_id=session, turn=5)
    with pytest.raises(FeedbackError, match="kind"):
        bot.feedback("adore", item, session_id=session)
    with pytest.raises(FeedbackError, match="whose feedback"):
        bot.feedback("like", item)


def test_a_new_user_and_an_unknown_session_count_at_once(make_bot):
    """A user never seen before is the cold start feedback must serve; a session this process does not know
    (say, from before a restart) is accepted for its user."""
    bot = make_bot()
    baseline = bot.chat(COATS, bot.new_session(user_id="zoe"))
    assert bot.feedback("dislike", baseline.items[0].id, session_id="from-yesterday", user_id="zoe")
    assert baseline.items[0].id not in ids(bot.chat(COATS, bot.new_session(user_id="zoe")))


def test_a_retried_call_with_the_same_key_counts_once(make_bot):
    bot = make_bot()
    session = bot.new_session(user_id="ann")
    item = bot.chat(COATS, session).items[2].id
    assert bot.feedback("like", item, session_id=session, key="click-123") is True
    assert bot.feedback("like", item, session_id=session, key="click-123") is False
    position = bot.feedback_model.position[item]
    assert bot.feedback_model.liked_by[position] == 1


def test_feedback_written_by_another_process_counts_in_the_next_answer(make_bot):
    writer, reader = make_bot(), make_bot()  # two engines, two connections to one file: as two processes
    first = reader.chat(COATS, reader.new_session(user_id="ann"))
    writer.feedback("dislike", first.items[0].id, user_id="ann")
    assert first.items[0].id not in ids(reader.chat(COATS, reader.new_session(user_id="ann")))


def test_forget_user_deletes_events_messages_profile_and_sessions(make_bot, tmp_path):
    bot = make_bot(store_messages=True)
    session = bot.new_session(user_id="ann")
    first = bot.chat(COATS, session)
    bot.feedback("dislike", first.items[0].id, session_id=session)
    assert bot.feedback_store.messages("ann") == [COATS]
    assert bot.forget_user("ann") > 0
    assert bot.feedback_store.count("ann") == 0 and bot.feedback_store.messages("ann") == []
    assert bot.feedback_model.hidden("ann") == set() and "ann" not in bot.feedback_model.users
    assert session not in bot.sessions
    assert ids(bot.chat(COATS, bot.new_session(user_id="ann"))) == ids(first)


def test_message_text_is_not_stored_unless_configured(make_bot, tmp_path):
    bot = make_bot()
    bot.chat("a very-distinctive-request coat", bot.new_session(user_id="ann"))
    on_disk = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("feedback.sqlite3"))
    assert b"very-distinctive-request" not in on_disk
    assert bot.feedback_store.count("ann") > 0  # the impressions were stored


def test_a_new_catalog_item_is_recommendable_at_once(make_bot, products):
    bot = make_bot()
    item = Item(
        id="X0100-heated-parka", title="Polar Ember Heated Down Parka", category=products["P0004-down-parka"].category,
        description="A battery-heated down parka for the coldest winter days.", price=260.0, currency="USD",
        attributes={"season": "winter", "material": "down"},
    )
    try:
        bot.add_items([item])
        reply = bot.chat("heated down parka for winter", bot.new_session(user_id="ann"))
        assert reply.items[0].id == "X0100-heated-parka"
        assert bot.feedback("like", "X0100-heated-parka", user_id="ann")
    finally:
        bot.retriever.index.delete(["X0100-heated-parka"])  # the shared index must not keep it


def test_a_corrupted_store_stops_start_up_with_a_clear_error(settings, encoder, tmp_path):
    path = tmp_path / "broken.sqlite3"
    path.write_bytes(b"this is not a database" * 500)
    tuned = settings.model_copy(update={"feedback": settings.feedback.model_copy(update={"path": path})})
    with pytest.raises(FeedbackStoreError, match="corrupted"):
        RecChat.from_settings(tuned, encoder=encoder)


def test_with_feedback_off_nothing_is_logged_and_feedback_is_refused(make_bot, tmp_path):
    bot = make_bot(enabled=False)
    reply = bot.chat(COATS, bot.new_session(user_id="ann"))
    assert reply.items and not (tmp_path / "feedback.sqlite3").exists()
    with pytest.raises(FeedbackError, match="feedback is off"):
        bot.feedback("like", reply.items[0].id, user_id="ann")


def test_a_store_that_fails_mid_run_costs_the_log_not_the_reply(make_bot, caplog):
    bot = make_bot()
    session = bot.new_session(user_id="ann")
    item = bot.chat(COATS, session).items[0].id
    bot.feedback_store.close()  # as if the disk went away
    with pytest.raises(FeedbackStoreError, match="cannot write to the feedback store"):
        bot.feedback("like", item, session_id=session)
    reply = bot.chat(COATS, session)
    assert reply.items
    assert "not logged" in caplog.text and "ranking without the newest feedback" in caplog.text
