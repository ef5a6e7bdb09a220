"""The default feedback store: one SQLite file. WAL mode (readers never block the writer; several processes can
write, each waiting `busy_timeout_s` for the lock); the schema carries its version in `PRAGMA user_version` with
forward-only migrations."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

from recchat.errors import FeedbackStoreError
from recchat.feedback.events import EVENT_COLUMNS, FORGOTTEN_KEEP_S, FeedbackEvent, TurnMessage, user_digest
from recchat.feedback.sql import SqlReads

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
    # the rebuild above dropped the user index with the old table; a user's events in arrival order serve profiles
    # read back and the replay by user (recchat/rerank/state.py)
    """
    CREATE INDEX events_user_seq ON events (user_id, seq);
    """,
    # users forgotten, as digests, for the workers that hold sessions in memory (FeedbackStore.forgotten_after)
    """
    CREATE TABLE forgotten (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        user_digest TEXT NOT NULL,
        time REAL NOT NULL
    );
    CREATE INDEX forgotten_user ON forgotten (user_digest, seq);
    CREATE INDEX forgotten_time ON forgotten (time);
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)
INSERT_EVENT = (
    f"INSERT OR IGNORE INTO events ({', '.join(EVENT_COLUMNS)}, recorded_at) "
    f"VALUES ({', '.join('?' * (len(EVENT_COLUMNS) + 1))})"
)
INSERT_MESSAGE = "INSERT INTO messages VALUES (?, ?, ?, ?, ?)"
Result = TypeVar("Result")


class SQLiteFeedbackStore(SqlReads):
    """The default store: one SQLite file (WAL), safe for threads and for several processes."""

    marker, meta_table, message_order = "?", "meta", "rowid"

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
            self._db.execute("PRAGMA secure_delete=ON")  # forgotten rows are overwritten, not left in free pages
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

    @property
    def where(self) -> str:
        return str(self.path)

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

    def _transaction(self, work: Callable[[sqlite3.Connection], Result]) -> Result:
        """`work` in one immediate transaction (the write lock taken at its start)."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    result = work(self._db)
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                return result
            except sqlite3.Error as error:
                raise self._explain(error, "write to") from error

    def _write(self, statements: Iterable[tuple[str, Sequence]]) -> list[int]:
        """Run the statements in one immediate transaction; their row counts."""
        return self._transaction(lambda db: [db.execute(sql, params).rowcount for sql, params in statements])

    def add(self, events: Sequence[FeedbackEvent]) -> list[bool]:
        now = time.time()
        counts = self._write((INSERT_EVENT, (*(getattr(e, c) for c in EVENT_COLUMNS), now)) for e in events)
        return [count == 1 for count in counts]

    def log_turn(
        self, user_id: str, events: Sequence[FeedbackEvent], message: TurnMessage | None, forgotten_seen: int
    ) -> bool:
        def log(db: sqlite3.Connection) -> bool:
            forgotten = "SELECT 1 FROM forgotten WHERE user_digest = ? AND seq > ?"
            if db.execute(forgotten, (user_digest(user_id), forgotten_seen)).fetchone():
                return False
            now = time.time()
            db.executemany(INSERT_EVENT, [(*(getattr(e, c) for c in EVENT_COLUMNS), now) for e in events])
            if message is not None:
                db.execute(INSERT_MESSAGE, (user_id, *message, now))
            return True

        return self._transaction(log)

    def _read(self, sql: str, params: Sequence = ()) -> list[tuple]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as error:
                raise self._explain(error, "read") from error

    def forget_user(self, user_id: str) -> int:
        """Deleting nothing changes nothing: the generation stays, so no reader rebuilds. The deleted rows are zeroed
        where they lay (`secure_delete`), so there is no VACUUM to rewrite the whole file while writers wait."""
        held = "EXISTS (SELECT 1 FROM events WHERE user_id = ?) OR EXISTS (SELECT 1 FROM messages WHERE user_id = ?)"
        now = time.time()
        counts = self._write([  # one transaction: no reader sees the rows gone under the old generation
            (f"UPDATE meta SET value = value + 1 WHERE name = 'generation' AND ({held})", (user_id, user_id)),
            ("DELETE FROM events WHERE user_id = ?", (user_id,)),
            ("DELETE FROM messages WHERE user_id = ?", (user_id,)),
            ("INSERT INTO forgotten (user_digest, time) VALUES (?, ?)", (user_digest(user_id), now)),
            ("DELETE FROM forgotten WHERE time < ?", (now - FORGOTTEN_KEEP_S,)),
        ])
        deleted = counts[1] + counts[2]
        if deleted:
            self._read("PRAGMA wal_checkpoint(TRUNCATE)")  # the rows' earlier copies must not linger in the WAL file
        return deleted

    def backup(self, path: str | Path) -> None:
        """A consistent copy of the whole store at `path` (SQLite's online backup: safe while others write)."""
        with self._lock, sqlite3.connect(path) as target:
            self._db.backup(target)
        target.close()

    def close(self) -> None:
        with self._lock:
            self._db.close()
