"""The reading queries the SQL stores share (SQLite and PostgreSQL differ in their parameter marker and little else)."""

from __future__ import annotations

from collections.abc import Sequence

from recchat.feedback.events import EVENT_COLUMNS, StoredEvent


class SqlReads:
    """Mixed into a store that supplies `_read(sql, params) -> rows` and these names."""

    marker: str
    """The driver's parameter placeholder: '?' (sqlite3) or '%s' (psycopg)."""
    meta_table: str
    """The table holding the generation counter."""
    message_order: str
    """The column that orders a user's messages by arrival."""

    def _read(self, sql: str, params: Sequence = ()) -> list[tuple]:
        raise NotImplementedError

    def events_after(self, seq: int, limit: int | None = None) -> list[StoredEvent]:
        """Every stored event that arrived after `seq` (the first `limit` of them), in arrival order."""
        columns = ", ".join(EVENT_COLUMNS)
        first = "" if limit is None else f" LIMIT {int(limit)}"
        rows = self._read(f"SELECT seq, {columns} FROM events WHERE seq > {self.marker} ORDER BY seq{first}", (seq,))
        return [StoredEvent.model_construct(seq=row[0], **dict(zip(EVENT_COLUMNS, row[1:]))) for row in rows]

    def generation(self) -> int:
        """Changes whenever events are deleted, so readers know to rebuild rather than catch up."""
        return self._read(f"SELECT value FROM {self.meta_table} WHERE name = 'generation'")[0][0]

    def count(self, user_id: str | None = None) -> int:
        if user_id is None:
            return self._read("SELECT count(*) FROM events")[0][0]
        return self._read(f"SELECT count(*) FROM events WHERE user_id = {self.marker}", (user_id,))[0][0]

    def messages(self, user_id: str) -> list[str]:
        query = f"SELECT text FROM messages WHERE user_id = {self.marker} ORDER BY {self.message_order}"
        return [row[0] for row in self._read(query, (user_id,))]
