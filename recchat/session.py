"""Conversations: each session's user and turns, kept in memory with a bound."""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field

from recchat.errors import SessionError, SessionOwnerError
from recchat.models import ParsedRequest, RecommendationList

MAX_ID_CHARS = 200
"""Session and user ids are stored with every event, whose fields hold this many characters."""


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
    turns: list[RecommendationList] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    """Turns of one session run one at a time: a follow-up reads the turn before it."""
    last_request: ParsedRequest | None = None
    """What the last message asked, as follow-ups refine it: without the turn's filters (a UI's controls apply to
    their own turn; cleared, they must not stick) and without the items hidden by feedback."""

    def check_user(self, user_id: str | None) -> None:
        if user_id is not None and user_id != self.user_id:
            raise SessionOwnerError(f"session {self.id!r} belongs to user {self.user_id!r}, not {user_id!r}")


class Sessions:
    """The sessions this process knows, the least recently used dropped past `limit`. Safe across threads."""

    def __init__(self, limit: int):
        self.limit = limit
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def open(self, session_id: str | None = None, user_id: str | None = None) -> Session:
        """The session with this id, created if new (a new id if None). A session without a user id is anonymous:
        its feedback is kept under the session id. A known session asked for with another user is refused."""
        session_id = uuid.uuid4().hex if session_id is None else check_id(session_id, "session id")
        user_id = None if user_id is None else check_id(user_id, "user id")
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                session = self._sessions[session_id] = Session(session_id, user_id or session_id)
                while len(self._sessions) > self.limit:
                    self._sessions.popitem(last=False)
            else:
                session.check_user(user_id)
            self._sessions.move_to_end(session_id)
            return session

    def get(self, session_id: str | None) -> Session | None:
        """The session if this process knows it; never creates one."""
        with self._lock:
            return self._sessions.get(session_id) if session_id else None

    def forget_user(self, user_id: str) -> None:
        with self._lock:
            for session_id in [s.id for s in self._sessions.values() if s.user_id == user_id]:
                del self._sessions[session_id]

    def __contains__(self, session_id: str) -> bool:
        with self._lock:
            return session_id in self._sessions
