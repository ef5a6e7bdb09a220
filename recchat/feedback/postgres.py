"""The feedback log in PostgreSQL (psycopg 3): one log for several workers on several machines, that a DBA can back
up, replicate and query. Same protocol and semantics as the SQLite store: per-user idempotency keys, arrival
numbers that readers catch up by, forward-only migrations, `forget_user`, a generation counter.

Writers take one transaction-scoped advisory lock, so arrival numbers commit in order: a reader that has seen
event N never misses an event numbered below N that commits later (with concurrent sequences it could). Writes are
short, so the lock costs little; readers never take it. Every worker catches up before each ranking by asking for
the events after the last one it saw: one indexed query (see bench/scale.py for what it costs).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from recchat.errors import FeedbackStoreError
from recchat.feedback.events import EVENT_COLUMNS, FORGOTTEN_KEEP_S, FeedbackEvent, TurnMessage, user_digest
from recchat.feedback.sql import SqlReads

WRITE_LOCK = 0x7265_6363_6861_7401  # "recchat" + 1: serialises writers (see the module's docstring)
MIGRATION_LOCK = 0x7265_6363_6861_7402
# Forward-only: schema version N is reached by running MIGRATIONS[:N] in order; the version is in recchat_meta.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE events (
        seq BIGSERIAL PRIMARY KEY,
        key TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('impression', 'click', 'like', 'dislike', 'purchase')),
        user_id TEXT NOT NULL,
        item_id TEXT NOT NULL,
        session_id TEXT,
        turn INTEGER,
        rank INTEGER,
        time DOUBLE PRECISION NOT NULL,
        recorded_at DOUBLE PRECISION NOT NULL,
        UNIQUE (user_id, key)
    );
    CREATE INDEX events_user ON events (user_id);
    CREATE TABLE messages (
        id BIGSERIAL PRIMARY KEY,
        user_id TEXT NOT NULL,
        session_id TEXT NOT NULL,
        turn INTEGER NOT NULL,
        text TEXT NOT NULL,
        time DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX messages_user ON messages (user_id);
    INSERT INTO recchat_meta VALUES ('generation', 0)
    """,
    # the conversations, when the workers share them (recchat/session_postgres.py)
    """
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        turns INTEGER NOT NULL DEFAULT 0,
        last_reply TEXT,
        last_request TEXT,
        used_at DOUBLE PRECISION NOT NULL,
        locked_by TEXT,
        locked_until DOUBLE PRECISION
    );
    CREATE INDEX sessions_user ON sessions (user_id);
    CREATE INDEX sessions_used ON sessions (used_at)
    """,
    # a user's events in arrival order, for profiles read back and the replay by user (recchat/rerank/state.py)
    """
    CREATE INDEX events_user_seq ON events (user_id, seq);
    DROP INDEX events_user
    """,
    # users forgotten, as digests, for the workers that hold sessions in memory (FeedbackStore.forgotten_after)
    """
    CREATE TABLE forgotten (
        seq BIGSERIAL PRIMARY KEY,
        user_digest TEXT NOT NULL,
        time DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX forgotten_user ON forgotten (user_digest, seq);
    CREATE INDEX forgotten_time ON forgotten (time)
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)
Result = TypeVar("Result")


class PostgresFeedbackStore(SqlReads):
    marker, meta_table, message_order = "%s", "recchat_meta", "id"

    def __init__(self, url: str, pool_size: int = 4, connect_timeout_s: float = 10.0):
        """`pool_size` connections at most, opened as needed; a call waits up to `connect_timeout_s` for one (the
        server unreachable, or all of them busy), then fails with `FeedbackStoreError`."""
        self.url = url
        self._pool = ConnectionPool(
            url, min_size=1, max_size=pool_size, timeout=connect_timeout_s, open=True, name="recchat-feedback",
            kwargs={"connect_timeout": max(1, round(connect_timeout_s))},
            check=ConnectionPool.check_connection,  # one the server dropped (a restart) is replaced before use
        )
        try:
            self.run(self._migrate, "open")
        except FeedbackStoreError:
            self._pool.close()  # else its workers go on trying to connect in the background
            raise

    @classmethod
    def from_settings(cls, settings) -> PostgresFeedbackStore:
        feedback = settings.feedback
        return cls(feedback.url, feedback.pool_size, feedback.busy_timeout_s)

    def __repr__(self) -> str:
        return f"PostgresFeedbackStore({self.where})"

    @property
    def where(self) -> str:
        """The database without any password, for messages."""
        info = psycopg.conninfo.conninfo_to_dict(self.url)
        where = f"{info.get('host', '')}:{info.get('port', 5432)}/{info.get('dbname', '')}"
        return f"postgresql://{info.get('user', '')}@{where}"

    def run(self, work: Callable[[psycopg.Connection], Result], doing: str, retry: bool = True) -> Result:
        """`work` in one transaction. A connection the server dropped (a restart) is replaced and the work tried
        once more: safe, as every write is idempotent (events by key, deletions by user)."""
        for attempt in (1, 2):
            try:
                with self._pool.connection() as connection, connection.transaction():
                    return work(connection)
            except PoolTimeout as error:  # the pool has kept trying to connect all this time: no retry
                raise self._explain(error, doing) from error
            except psycopg.OperationalError as error:
                if attempt == 2 or not retry:
                    raise self._explain(error, doing) from error
                time.sleep(0.2)
            except psycopg.Error as error:
                raise self._explain(error, doing) from error
        raise AssertionError("unreachable")

    def _explain(self, error: Exception, doing: str) -> FeedbackStoreError:
        text = str(error).strip() or type(error).__name__
        if isinstance(error, PoolTimeout):
            hint = (f"is the server running and reachable? `make services-up` starts a local one; or all "
                    f"{self._pool.max_size} connections stayed busy: raise feedback.pool_size")
        elif isinstance(error, psycopg.OperationalError):
            hint = "is the server running and reachable? `make services-up` starts a local one"
        else:
            hint = "check the database"
        return FeedbackStoreError(f"cannot {doing} the feedback store {self.where}: {text} ({hint})")

    def _migrate(self, db: psycopg.Connection) -> None:
        db.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))  # one process migrates, the others wait
        db.execute("CREATE TABLE IF NOT EXISTS recchat_meta (name TEXT PRIMARY KEY, value BIGINT NOT NULL)")
        row = db.execute("SELECT value FROM recchat_meta WHERE name = 'schema_version'").fetchone()
        version = row[0] if row else 0
        if version > SCHEMA_VERSION:
            raise FeedbackStoreError(
                f"{self.where} has schema version {version}, newer than this recchat understands ({SCHEMA_VERSION});"
                " upgrade recchat, or point feedback.url at another database"
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[target - 1].split(";"):
                if statement.strip():
                    db.execute(statement)
        db.execute(
            "INSERT INTO recchat_meta VALUES ('schema_version', %s) ON CONFLICT (name) DO UPDATE SET value = %s",
            (SCHEMA_VERSION, SCHEMA_VERSION),
        )

    def add(self, events: Sequence[FeedbackEvent]) -> list[bool]:
        if not events:
            return []
        inserted = self.run(lambda db: self.insert_events(db, events), "write to")
        recorded, seen = [], set()
        for event in events:  # of two events with one key in one call, the first is the one stored
            identity = (event.user_id, event.key)
            recorded.append(identity in inserted and identity not in seen)
            seen.add(identity)
        return recorded

    @staticmethod
    def insert_events(db: psycopg.Connection, events: Sequence[FeedbackEvent]) -> set[tuple[str, str]]:
        """Insert the events in `db`'s transaction (the caller's, when a write must commit with other rows); the
        (user id, key) of those stored."""
        if not events:
            return set()
        columns = [[getattr(event, column) for event in events] for column in EVENT_COLUMNS]
        types = ("text", "text", "text", "text", "text", "int", "int", "float8")
        insert = (
            f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}, recorded_at) "
            f"SELECT *, %s::float8 FROM unnest({', '.join(f'%s::{kind}[]' for kind in types)}) "
            "ON CONFLICT (user_id, key) DO NOTHING RETURNING user_id, key"
        )
        db.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
        return set(db.execute(insert, (time.time(), *columns)).fetchall())

    def _read(self, sql: str, params: Sequence = ()) -> list[tuple]:
        return self.run(lambda db: db.execute(sql, params).fetchall(), "read")

    def forget_user(self, user_id: str) -> int:
        def forget(db: psycopg.Connection) -> int:
            db.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            deleted = db.execute("DELETE FROM events WHERE user_id = %s", (user_id,)).rowcount
            deleted += db.execute("DELETE FROM messages WHERE user_id = %s", (user_id,)).rowcount
            now = time.time()  # the marker commits in order with the events, under the write lock
            db.execute("INSERT INTO forgotten (user_digest, time) VALUES (%s, %s)", (user_digest(user_id), now))
            db.execute("DELETE FROM forgotten WHERE time < %s", (now - FORGOTTEN_KEEP_S,))
            if deleted:  # deleting nothing leaves the generation, so no reader rebuilds
                db.execute("UPDATE recchat_meta SET value = value + 1 WHERE name = 'generation'")
            return deleted

        deleted = self.run(forget, "write to")
        if not deleted:
            return 0
        with self._pool.connection() as db:  # VACUUM runs outside a transaction: the rows must not linger on disk
            db.autocommit = True
            try:
                db.execute("VACUUM events, messages")
            finally:
                db.autocommit = False
        return deleted

    def log_turn(
        self, user_id: str, events: Sequence[FeedbackEvent], message: TurnMessage | None, forgotten_seen: int
    ) -> bool:
        def log(db: psycopg.Connection) -> bool:
            db.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))  # forget_user's marker is before or after
            forgotten = "SELECT 1 FROM forgotten WHERE user_digest = %s AND seq > %s"
            if db.execute(forgotten, (user_digest(user_id), forgotten_seen)).fetchone():
                return False
            self.insert_events(db, events)
            if message is not None:
                self.insert_message(db, user_id, *message)
            return True

        return self.run(log, "write to", retry=message is None)  # a retried message would be kept twice

    @staticmethod
    def insert_message(db: psycopg.Connection, user_id: str, session_id: str, turn: int, text: str) -> None:
        """Keep a chat message's text (only when configured) in `db`'s transaction."""
        insert = "INSERT INTO messages (user_id, session_id, turn, text, time) VALUES (%s, %s, %s, %s, %s)"
        db.execute(insert, (user_id, session_id, turn, text, time.time()))

    def close(self) -> None:
        self._pool.close()
