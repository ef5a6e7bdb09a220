"""Conversations: each session's user and turns, kept in memory with a bound."""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field

from recchat.errors import SessionError
from recchat.models import ParsedRequest, RecommendationList


@dataclass
class Session:
    id: str
    user_id: str
    turns: list[RecommendationList] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    """Turns of one session run one at a time: a follow-up reads the turn before it."""

    def check_user(self, user_id: str | None) -> None:
        if user_id is not None and user_id != self.user_id:
            raise SessionError(f"session {self.id!r} belongs to user {self.user_id!r}, not {user_id!r}")

    @property
    def last_request(self) -> ParsedRequest | None:
        return self.turns[-1].metadata.request if self.turns else None


class Sessions:
    """The sessions this process knows, the least recently used dropped past `limit`. Safe across threads."""

    def __init__(self, limit: int):
        self.limit = limit
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def open(self, session_id: str | None = None, user_id: str | None = None) -> Session:
        """The session with this id, created if new (a new id if None). A session without a user id is anonymous:
        its feedback is kept under the session id. A known session asked for with another user is refused."""
        with self._lock:
            session_id = session_id or uuid.uuid4().hex
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
