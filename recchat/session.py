"""Conversations: each session's user, dialogue state and last reply, in a `SessionStore`: this process's memory
(`Sessions`, the default), or PostgreSQL when several workers share them (`session_postgres.py`).

A turn holds its session for its whole run (`held`, `aheld`): a follow-up reads the turn before it. It ends with
`SessionStore.end_turn`, which logs the turn's impressions only while the session is kept: once its user is
forgotten, a turn still running writes nothing for them. Several workers that each keep sessions in memory learn
of a user forgotten through another from the markers in the shared log (`FeedbackStore.forgotten_after`).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Protocol

from recchat.errors import FeedbackStoreError, SessionError, SessionOwnerError, UnknownSessionError
from recchat.feedback import FeedbackEvent, FeedbackStore, user_digest
from recchat.models import ParsedRequest, RecommendationList

logger = logging.getLogger(__name__)
MAX_ID_CHARS = 200
"""Session and user ids are stored with every event, whose fields hold this many characters."""
HOLD_POLL_S = (0.01, 0.25)
"""A turn waiting for its session's running turn asks again after the first, then twice as long each time up to the
second: a follow-up sent at once starts soon, one waiting for a long answer does not ask the database 100 times a
second."""


def check_id(value: object, what: str) -> str:
    """`value` as a session or user id, or `SessionError` saying what to pass."""
    if not isinstance(value, str) or not value.strip():
        raise SessionError(f"a {what} is a non-empty string, not {value!r}")
    if len(value) > MAX_ID_CHARS:
        raise SessionError(f"a {what} has at most {MAX_ID_CHARS} characters; this one has {len(value):,}")
    if not value.isprintable():  # control characters, and lone surrogates (from a badly decoded argument)
        raise SessionError(f"a {what} must be printable text; {value!r} is not")
    return value


@dataclass
class Session:
    id: str
    user_id: str
    turns: int = 0
    """Replies given so far."""
    last_reply: RecommendationList | None = None
    """What the last turn showed: a follow-up's "the first one", "cheaper", and the question it answers."""
    last_request: ParsedRequest | None = None
    """What the last message asked, as follow-ups refine it: without the turn's filters (a UI's controls apply to
    their own turn; cleared, they must not stick) and without the items hidden by feedback."""
    holder: str | None = field(default=None, compare=False)
    """Who holds the session for a turn, where the store is shared (a token of `try_hold`)."""

    def check_user(self, user_id: str | None) -> None:
        if user_id is not None and user_id != self.user_id:
            raise SessionOwnerError(f"session {self.id!r} belongs to user {self.user_id!r}, not {user_id!r}")

    def ended(self, reply: RecommendationList, parsed: ParsedRequest) -> None:
        """Remember a turn's reply and what its message asked."""
        self.turns, self.last_reply, self.last_request = reply.metadata.turn, reply, parsed


class SessionStore(Protocol):
    """Where sessions live. Every method is safe across threads (and, for a shared store, across processes)."""

    def open(self, session_id: str | None = None, user_id: str | None = None) -> Session:
        """The session with this id, created if new (a new id if None). A session without a user id is anonymous:
        its feedback is kept under the session id. A known session asked for with another user is refused
        (`SessionOwnerError`)."""

    def get(self, session_id: str | None) -> Session | None:
        """The session if it is kept; never creates one."""

    def __contains__(self, session_id: str) -> bool: ...

    def try_hold(self, session: Session) -> Session | None:
        """The session as kept now, held for one turn; None while another turn holds it. `UnknownSessionError` when
        it is no longer kept (its user forgotten, or dropped past the bound)."""

    def release(self, session: Session) -> None:
        """Let the next turn of the session run."""

    def save(self, session: Session) -> bool:
        """Keep the session's state as changed outside a turn; False when it is no longer kept."""

    def end_turn(self, session: Session, events: Sequence[FeedbackEvent], message: str | None) -> bool:
        """Keep the session as its turn left it and log the turn (`events`, and `message` when messages are kept),
        at once, only if the session is still kept: False, with nothing written, when its user was forgotten
        meanwhile."""

    def forget_user(self, user_id: str) -> None:
        """Drop every session of the user; turns of theirs still running log nothing afterwards."""


@contextmanager
def held(store: SessionStore, session: Session) -> Iterator[Session]:
    """The session, fresh from the store and held for one turn until the block ends."""
    delay = HOLD_POLL_S[0]
    while (current := store.try_hold(session)) is None:
        time.sleep(delay)
        delay = min(2 * delay, HOLD_POLL_S[1])
    try:
        yield current
    finally:
        store.release(current)


@asynccontextmanager
async def aheld(store: SessionStore, session: Session) -> AsyncIterator[Session]:
    """`held` without blocking the event loop."""
    delay = HOLD_POLL_S[0]
    while (current := await asyncio.to_thread(store.try_hold, session)) is None:
        await asyncio.sleep(delay)
        delay = min(2 * delay, HOLD_POLL_S[1])
    try:
        yield current
    finally:  # shielded: a turn cancelled twice (its client left, then the server stops) still lets the next one run
        await asyncio.shield(asyncio.to_thread(store.release, current))


@dataclass
class _Kept:
    session: Session
    lock: threading.Lock = field(default_factory=threading.Lock)


class Sessions:
    """The sessions this process knows, in its memory: the least recently used dropped past `limit` (never one whose
    turn is running). One worker's: with several, a follow-up reaching another worker finds no session. A user
    forgotten through another worker sharing the log loses their sessions here at the next call, and a turn of theirs
    running here logs nothing (`FeedbackStore.log_turn`)."""

    def __init__(self, limit: int, feedback_store: FeedbackStore | None = None):
        """`feedback_store`: where turns are logged (None: nowhere)."""
        self.limit = limit
        self.feedback_store = feedback_store
        self._sessions: OrderedDict[str, _Kept] = OrderedDict()
        self._lock = threading.Lock()
        self._logging = threading.Lock()
        """Held by a turn's log write and by forget_user: the one ends before the other begins."""
        self._forgotten_seen = 0
        """The last marker of a forgotten user (in the shared log) whose sessions were dropped here."""

    def _catch_up(self) -> None:
        """Drop the sessions of the users forgotten through other workers since the last look: one indexed query. A
        log that cannot be read leaves them for the next look; `end_turn` still logs nothing for such a user."""
        if self.feedback_store is None:
            return
        try:
            forgotten = self.feedback_store.forgotten_after(self._forgotten_seen)
        except FeedbackStoreError as error:
            logger.warning("could not read which users were forgotten through other workers: %s", error)
            return
        if forgotten:
            self._drop_users({digest for _, digest in forgotten}, forgotten[-1][0])

    def _drop_users(self, digests: set[str], seen: int = 0) -> None:
        """Drop the sessions of the users with these digests; markers up to `seen` are then acted on."""
        with self._lock:
            for kept in [k for k in self._sessions.values() if user_digest(k.session.user_id) in digests]:
                del self._sessions[kept.session.id]
            self._forgotten_seen = max(self._forgotten_seen, seen)

    def open(self, session_id: str | None = None, user_id: str | None = None) -> Session:
        session_id = uuid.uuid4().hex if session_id is None else check_id(session_id, "session id")
        user_id = None if user_id is None else check_id(user_id, "user id")
        self._catch_up()
        with self._lock:
            kept = self._sessions.get(session_id)
            if kept is None:
                kept = self._sessions[session_id] = _Kept(Session(session_id, user_id or session_id))
                self._drop_past_limit()
            else:
                kept.session.check_user(user_id)
            self._sessions.move_to_end(session_id)
            return kept.session

    def _drop_past_limit(self) -> None:
        past = itertools.islice(self._sessions.items(), max(0, len(self._sessions) - self.limit))  # the oldest first
        for session_id in [session_id for session_id, kept in past if not kept.lock.locked()]:
            del self._sessions[session_id]

    def get(self, session_id: str | None) -> Session | None:
        self._catch_up()
        with self._lock:
            kept = self._sessions.get(session_id) if session_id else None
            return kept.session if kept else None

    def __contains__(self, session_id: str) -> bool:
        self._catch_up()
        with self._lock:
            return session_id in self._sessions

    def _kept(self, session: Session) -> _Kept | None:
        kept = self._sessions.get(session.id)
        return kept if kept is not None and kept.session is session else None

    def try_hold(self, session: Session) -> Session | None:
        self._catch_up()
        with self._lock:  # acquired under it: a session is not dropped as its turn starts
            kept = self._kept(session)
            if kept is None:
                raise UnknownSessionError(f"session {session.id!r} is no longer kept: its user was forgotten, or it "
                                          "was dropped for newer ones (chat.max_sessions); start a new one")
            if not kept.lock.acquire(blocking=False):
                return None
            self._sessions.move_to_end(session.id)
            return session

    def release(self, session: Session) -> None:
        with self._lock:
            kept = self._kept(session)
        if kept is not None:
            kept.lock.release()

    def save(self, session: Session) -> bool:
        self._catch_up()
        with self._lock:
            return self._kept(session) is not None  # changed in place: the session is kept as it is

    def end_turn(self, session: Session, events: Sequence[FeedbackEvent], message: str | None) -> bool:
        with self._logging:  # forget_user waits: the log is written before the user is forgotten, or not at all
            with self._lock:
                if self._kept(session) is None:
                    return False
                seen = self._forgotten_seen
            if self.feedback_store is None:
                return True
            turn_message = (session.id, session.turns, message) if message is not None else None
            if self.feedback_store.log_turn(session.user_id, events, turn_message, seen):
                return True
            self._catch_up()  # forgotten through another worker while the turn ran: its sessions go here too
            return False

    def forget_user(self, user_id: str) -> None:
        with self._logging:
            self._drop_users({user_digest(user_id)})


def open_session_store(settings, feedback_store: FeedbackStore | None) -> SessionStore:
    """In PostgreSQL beside the feedback log when `feedback.url` names one, so that every worker serves every
    session; else in this process's memory."""
    limit = settings.chat.max_sessions
    if settings.feedback.url:
        from recchat.feedback.postgres import PostgresFeedbackStore
        from recchat.session_postgres import PostgresSessions

        if isinstance(feedback_store, PostgresFeedbackStore):
            return PostgresSessions(feedback_store, limit, settings.chat.turn_hold_s)
    return Sessions(limit, feedback_store)
