"""The feedback log: typed events, a store protocol, and its SQLite implementation.

Every event is one row, appended in one transaction and identified by its user's idempotency key,
so a client retrying a call never counts twice (and one user's key never drops another's event).
SQLite runs in WAL mode (readers never block the writer; several processes can write, each waiting
`busy_timeout_s` for the lock), and the schema carries its version in `PRAGMA user_version` with
forward-only migrations.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal, Protocol

from pydantic import BaseModel, Field, ValidationError, field_validator

from recchat.errors import FeedbackError, FeedbackStoreError, UnknownItemError
from recchat.models import RecommendationList, field_errors

FeedbackKind = Literal["impression", "click", "like", "dislike", "purchase"]
POSITIVE_KINDS = frozenset({"click", "like", "purchase"})
KIND_ALIASES = {"accept": "purchase", "buy": "purchase", "bought": "purchase", "view": "click"}
MAX_KEY_CHARS = 200
MAX_FUTURE_S = 24 * 3600
"""Clocks drift; an event dated further ahead than this is a bug in the caller, not drift."""


class FeedbackEvent(BaseModel):
    """One thing a user did with one item."""

    kind: FeedbackKind
    user_id: str = Field(min_length=1, max_length=200)
    item_id: str = Field(min_length=1, max_length=200)
    session_id: str | None = Field(default=None, max_length=200)
    turn: int | None = Field(default=None, ge=1, description="The reply (1 = first) that showed the item")
    rank: int | None = Field(default=None, ge=1, description="Position in that reply (impressions)")
    time: float = Field(default_factory=time.time, description="When it happened, Unix seconds")
    key: str = Field(
        default_factory=lambda: uuid.uuid4().hex, min_length=1, max_length=MAX_KEY_CHARS,
        description="Idempotency key: an event whose user already stored this key is not stored again",
    )

    @field_validator("kind", mode="before")
    @classmethod
    def _alias(cls, value: object) -> object:
        return KIND_ALIASES.get(value, value) if isinstance(value, str) else value

    @field_validator("time")
    @classmethod
    def _plausible(cls, value: float) -> float:
        if not math.isfinite(value) or value < 0:
            raise ValueError("must be a Unix time in seconds")
        if value > time.time() + MAX_FUTURE_S:
            raise ValueError("is more than a day in the future; send Unix seconds, not milliseconds")
        return value


def make_event(**fields) -> FeedbackEvent:
    """A validated event, or `FeedbackError` saying which field is wrong and why."""
    try:
        return FeedbackEvent(**{name: value for name, value in fields.items() if value is not None})
    except ValidationError as error:
        problems = "; ".join(f"{field}: {why}" for field, why in field_errors(error))
        raise FeedbackError(f"invalid feedback event ({problems})") from None


def item_event(catalog, **fields) -> FeedbackEvent:
    """A validated event about an item of `catalog`; `UnknownItemError` if the item is not in it."""
    item_id = fields.get("item_id")
    if not isinstance(item_id, str):
        raise FeedbackError(f"an item id is a string, not {type(item_id).__name__}; nothing was recorded")
    if item_id not in catalog:
        raise UnknownItemError(f"no item {item_id!r} in the {catalog.name} catalog; nothing was recorded")
    if not fields.get("user_id"):
        raise FeedbackError("say whose feedback this is: give a session_id or a user_id")
    return make_event(**fields)


def impressions(reply: RecommendationList) -> list[FeedbackEvent]:
    """One impression per item a reply showed, keyed by session, turn and item, so a retried log adds nothing."""
    meta = reply.metadata
    return [
        FeedbackEvent(
            kind="impression", user_id=meta.user_id, item_id=item.id, session_id=meta.session_id, turn=meta.turn,
            rank=rank, key=_bounded_key(f"impression:{meta.session_id}:{meta.turn}:{item.id}"),
        )
        for rank, item in enumerate(reply.items, start=1)
    ]


def _bounded_key(key: str) -> str:
    """The key, or its digest when ids made it longer than an event key may be (same key, same digest)."""
    return key if len(key) <= MAX_KEY_CHARS else "impression:sha256:" + hashlib.sha256(key.encode()).hexdigest()


def add_in_batches(store: FeedbackStore, events: Iterable[FeedbackEvent], batch: int = 50_000) -> int:
    """Store a long stream of events (an import) a batch per transaction; how many were new."""
    added = 0
    iterator = iter(events)
    while chunk := list(itertools.islice(iterator, batch)):
        added += sum(store.add(chunk))
    return added


class StoredEvent(FeedbackEvent):
    seq: int = Field(description="Arrival order in the store")


class FeedbackStore(Protocol):
    """Where events live. Callers use only this, so a server database can replace SQLite."""

    def add(self, events: Sequence[FeedbackEvent]) -> list[bool]:
        """Store the events atomically; per event, False when its user already stored an event with its key."""

    def events_after(self, seq: int) -> list[StoredEvent]:
        """Every stored event that arrived after `seq`, in arrival order."""

    def generation(self) -> int:
        """Changes whenever events are deleted, so readers know to rebuild rather than catch up."""

    def forget_user(self, user_id: str) -> int:
        """Delete the user's events and messages; the number of rows deleted."""

    def add_message(self, user_id: str, session_id: str, turn: int, text: str) -> None:
        """Keep the raw text of a chat message (only called when configured)."""

    def close(self) -> None: ...


# Forward-only: schema version N is reached by running MIGRATIONS[:N] in order.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL CHECK (kind IN ('impression', 'click', 'like', 'dislike', 'purchase')),
        user_id TEXT NOT NULL,
        item_id TEXT NOT NULL,
        session_id TEXT,
        turn INTEGER,
        rank INTEGER,
        time REAL NOT NULL,
        recorded_at REAL NOT NULL
    );
    CREATE INDEX events_user ON events (user_id);
    """,
    """
    CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
    INSERT INTO meta VALUES ('generation', 0);
    CREATE TABLE messages (
        user_id TEXT NOT NULL,
        session_id TEXT NOT NULL,
        turn INTEGER NOT NULL,
        text TEXT NOT NULL,
        time REAL NOT NULL
    );
    CREATE INDEX messages_user ON messages (user_id);
    """,
    # Idempotency keys are scoped per user: a key one user sent must not drop another user's event.
    # SQLite cannot drop a column's UNIQUE in place, so the table is rebuilt with its rows and its
    # AUTOINCREMENT counter (arrival numbers are never reused, even for deleted events).
    """
    CREATE TABLE events_by_user_key (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('impression', 'click', 'like', 'dislike', 'purchase')),
        user_id TEXT NOT NULL,
        item_id TEXT NOT NULL,
        session_id TEXT,
        turn INTEGER,
        rank INTEGER,
        time REAL NOT NULL,
        recorded_at REAL NOT NULL,
        UNIQUE (user_id, key)
    );
    INSERT INTO events_by_user_key SELECT * FROM events;
    DELETE FROM sqlite_sequence WHERE name = 'events_by_user_key';
    INSERT INTO sqlite_sequence SELECT 'events_by_user_key', seq FROM sqlite_sequence WHERE name = 'events';
    DROP TABLE events;
    ALTER TABLE events_by_user_key RENAME TO events;
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)
EVENT_COLUMNS = ("key", "kind", "user_id", "item_id", "session_id", "turn", "rank", "time")


class SQLiteFeedbackStore:
    """The default store: one SQLite file (WAL), safe for threads and for several processes."""

    def __init__(self, path: str | Path, synchronous: str = "full", busy_timeout_s: float = 10.0):
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self.path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'full' else 'NORMAL'}")
            self._migrate()
        except (sqlite3.Error, OSError) as error:
            raise self._explain(error, "open") from error

    @classmethod
    def from_settings(cls, settings) -> SQLiteFeedbackStore:
        """The store `settings.feedback` describes."""
        feedback = settings.feedback
        return cls(settings.feedback_path, feedback.synchronous, feedback.busy_timeout_s)

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise FeedbackStoreError(
                f"{self.path} has schema version {version}, newer than this recchat understands "
                f"({SCHEMA_VERSION}); upgrade recchat, or point feedback.path at another file"
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                # Another process may have migrated while we waited for the lock.
                if self._db.execute("PRAGMA user_version").fetchone()[0] >= target:
                    self._db.execute("ROLLBACK")
                    continue
                for statement in MIGRATIONS[target - 1].split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version={target}")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _explain(self, error: Exception, doing: str) -> FeedbackStoreError:
        text = str(error)
        if "not a database" in text or "malformed" in text:
            hint = "the file is corrupted or not a recchat feedback store; move it aside (nothing was changed in it)"
        elif "readonly" in text or "read-only" in text or isinstance(error, PermissionError):
            hint = "the file or its folder is read-only; make it writable or set feedback.path to a writable file"
        elif "locked" in text or "busy" in text:
            hint = "another process held the write lock too long; raise feedback.busy_timeout_s"
        else:
            hint = "check the file and its folder"
        return FeedbackStoreError(f"cannot {doing} the feedback store {self.path}: {text} ({hint})")

    def _write(self, statements: Iterable[tuple[str, Sequence]]) -> list[int]:
        """Run the statements in one immediate transaction; their row counts."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    counts = [self._db.execute(sql, params).rowcount for sql, params in statements]
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                return counts
            except sqlite3.Error as error:
                raise self._explain(error, "write to") from error

    def add(self, events: Sequence[FeedbackEvent]) -> list[bool]:
        now = time.time()
        insert = (
            f"INSERT OR IGNORE INTO events ({', '.join(EVENT_COLUMNS)}, recorded_at) "
            f"VALUES ({', '.join('?' * (len(EVENT_COLUMNS) + 1))})"
        )
        counts = self._write((insert, (*(getattr(e, c) for c in EVENT_COLUMNS), now)) for e in events)
        return [count == 1 for count in counts]

    def _read(self, sql: str, params: Sequence = ()) -> list[tuple]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as error:
                raise self._explain(error, "read") from error

    def events_after(self, seq: int) -> list[StoredEvent]:
        rows = self._read(f"SELECT seq, {', '.join(EVENT_COLUMNS)} FROM events WHERE seq > ? ORDER BY seq", (seq,))
        return [StoredEvent.model_construct(seq=row[0], **dict(zip(EVENT_COLUMNS, row[1:]))) for row in rows]

    def generation(self) -> int:
        return self._read("SELECT value FROM meta WHERE name = 'generation'")[0][0]

    def count(self, user_id: str | None = None) -> int:
        if user_id is None:
            return self._read("SELECT count(*) FROM events")[0][0]
        return self._read("SELECT count(*) FROM events WHERE user_id = ?", (user_id,))[0][0]

    def forget_user(self, user_id: str) -> int:
        counts = self._write([
            ("DELETE FROM events WHERE user_id = ?", (user_id,)),
            ("DELETE FROM messages WHERE user_id = ?", (user_id,)),
            ("UPDATE meta SET value = value + 1 WHERE name = 'generation'", ()),
        ])
        self._read("PRAGMA wal_checkpoint(TRUNCATE)")  # the deleted rows must not linger in the WAL file
        self._read("VACUUM")  # nor in free pages
        return counts[0] + counts[1]

    def add_message(self, user_id: str, session_id: str, turn: int, text: str) -> None:
        self._write([("INSERT INTO messages VALUES (?, ?, ?, ?, ?)", (user_id, session_id, turn, text, time.time()))])

    def messages(self, user_id: str) -> list[str]:
        return [row[0] for row in self._read("SELECT text FROM messages WHERE user_id = ? ORDER BY rowid", (user_id,))]

    def backup(self, path: str | Path) -> None:
        """A consistent copy of the whole store at `path` (SQLite's online backup: safe while others write)."""
        with self._lock, sqlite3.connect(path) as target:
            self._db.backup(target)
        target.close()

    def close(self) -> None:
        with self._lock:
            self._db.close()
