"""Sessions in PostgreSQL, beside the feedback log and through its connections: with several workers (`recchat serve
--workers N`, or several machines), a follow-up or a feedback call reaching any worker finds its session.

A turn holds its session by a lease in the session's row (`locked_by`, `locked_until`) rather than a lock on a
connection: a turn waits for the LLM for seconds, and holding a connection for that long would make the pool, not
the LLM, bound how many turns run at once. A worker that dies mid-turn frees its sessions when their lease runs out.

A turn's log is written in the transaction that stores its session, after locking the session's row: forgetting a
user deletes their rows first, so a turn still running either logged before (and its events are deleted with the
user's) or finds no row and logs nothing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

import psycopg

from recchat.errors import UnknownSessionError
from recchat.feedback import FeedbackEvent
from recchat.feedback.postgres import PostgresFeedbackStore
from recchat.models import ParsedRequest, RecommendationList
from recchat.session import Session, check_id

COLUMNS = "id, user_id, turns, last_reply, last_request"


def _session(row: tuple) -> Session:
    session_id, user_id, turns, reply, request = row[:5]
    return Session(
        session_id, user_id, turns,
        RecommendationList.model_validate_json(reply) if reply is not None else None,
        ParsedRequest.model_validate_json(request) if request is not None else None,
    )


class PostgresSessions:
    """`SessionStore` in the feedback log's database (table `sessions`, created by its migrations): the least
    recently used dropped past `limit`, never one whose turn is running."""

    def __init__(self, feedback_store: PostgresFeedbackStore, limit: int, hold_s: float):
        """`hold_s`: the longest a turn holds its session; past it, another turn of the session may start."""
        self.store, self.limit, self.hold_s = feedback_store, limit, hold_s

    def __repr__(self) -> str:
        return f"PostgresSessions({self.store.where})"

    def open(self, session_id: str | None = None, user_id: str | None = None) -> Session:
        session_id = uuid.uuid4().hex if session_id is None else check_id(session_id, "session id")
        user_id = None if user_id is None else check_id(user_id, "user id")
        now = time.time()

        def upsert(db: psycopg.Connection) -> tuple[Session, bool]:
            row = db.execute(
                f"INSERT INTO sessions (id, user_id, used_at) VALUES (%s, %s, %s) ON CONFLICT (id) DO UPDATE "
                f"SET used_at = EXCLUDED.used_at RETURNING {COLUMNS}, xmax = 0",  # xmax 0: a row inserted, not updated
                (session_id, user_id or session_id, now),
            ).fetchone()
            assert row is not None
            if row[5]:
                db.execute(
                    "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions ORDER BY used_at DESC OFFSET %s) "
                    "AND (locked_until IS NULL OR locked_until < %s)", (self.limit, now),
                )
            return _session(row), row[5]

        session, created = self.store.run(upsert, "write to")
        if not created:
            session.check_user(user_id)
        return session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        row = self._read_one(f"SELECT {COLUMNS} FROM sessions WHERE id = %s", session_id)
        return _session(row) if row is not None else None

    def __contains__(self, session_id: str) -> bool:
        return self._read_one("SELECT 1 FROM sessions WHERE id = %s", session_id) is not None

    def _read_one(self, sql: str, session_id: str) -> tuple | None:
        return self.store.run(lambda db: db.execute(sql, (session_id,)).fetchone(), "read")

    def try_hold(self, session: Session) -> Session | None:
        holder, now = uuid.uuid4().hex, time.time()

        def hold(db: psycopg.Connection) -> Session | None:
            row = db.execute(
                f"UPDATE sessions SET locked_by = %s, locked_until = %s, used_at = %s WHERE id = %s AND "
                f"(locked_until IS NULL OR locked_until < %s) RETURNING {COLUMNS}",
                (holder, now + self.hold_s, now, session.id, now),
            ).fetchone()
            if row is not None:
                return _session(row)
            if db.execute("SELECT 1 FROM sessions WHERE id = %s", (session.id,)).fetchone() is None:
                raise UnknownSessionError(
                    f"session {session.id!r} is no longer kept: its user was forgotten, or it was dropped for newer "
                    "ones (chat.max_sessions); start a new one"
                )
            return None

        held = self.store.run(hold, "write to")
        if held is not None:
            held.holder = holder
        return held

    def release(self, session: Session) -> None:
        self.store.run(lambda db: db.execute(
            "UPDATE sessions SET locked_by = NULL, locked_until = NULL WHERE id = %s AND locked_by = %s",
            (session.id, session.holder),
        ), "write to")

    def save(self, session: Session) -> bool:
        return self.store.run(lambda db: self._update(db, session), "write to")

    def _update(self, db: psycopg.Connection, session: Session) -> bool:
        reply = session.last_reply.model_dump_json() if session.last_reply is not None else None
        request = session.last_request.model_dump_json() if session.last_request is not None else None
        return db.execute(
            "UPDATE sessions SET turns = %s, last_reply = %s, last_request = %s, used_at = %s WHERE id = %s",
            (session.turns, reply, request, time.time(), session.id),
        ).rowcount == 1

    def end_turn(self, session: Session, events: Sequence[FeedbackEvent], message: str | None) -> bool:
        def end(db: psycopg.Connection) -> bool:
            # the row locked first: forget_user's DELETE waits for this transaction, or this finds no row
            if db.execute("SELECT 1 FROM sessions WHERE id = %s FOR UPDATE", (session.id,)).fetchone() is None:
                return False
            self.store.insert_events(db, events)
            if message is not None:
                self.store.insert_message(db, session.user_id, session.id, session.turns, message)
            return self._update(db, session)

        return self.store.run(end, "write to", retry=message is None)  # a retried message would be kept twice

    def forget_user(self, user_id: str) -> None:
        self.store.run(lambda db: db.execute("DELETE FROM sessions WHERE user_id = %s", (user_id,)), "write to")
