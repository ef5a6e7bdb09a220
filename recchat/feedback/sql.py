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
        return self._events(f"seq > {self.marker}", (seq,), "seq", limit)

    def user_events(self, user_id: str, before_seq: int) -> list[StoredEvent]:
        """One user's clicks and opinions (impressions aside) that arrived before `before_seq`, in arrival order:
        what their profile holds once events up to `before_seq` are applied."""
        where = f"user_id = {self.marker} AND seq < {self.marker} AND kind <> 'impression'"
        return self._events(where, (user_id, before_seq), "seq")

    def events_by_user(self, after: tuple[str, int], through_seq: int, limit: int) -> list[StoredEvent]:
        """The events numbered up to `through_seq`, ordered by user and then arrival: the first `limit` after
        `after`, a (user_id, seq) pair (`("", 0)` starts at the beginning). One indexed range per page."""
        where = f"(user_id, seq) > ({self.marker}, {self.marker}) AND seq <= {self.marker}"
        return self._events(where, (*after, through_seq), "user_id, seq", limit)

    def _events(self, where: str, params: Sequence, order: str, limit: int | None = None) -> list[StoredEvent]:
        columns = ", ".join(EVENT_COLUMNS)
        first = "" if limit is None else f" LIMIT {int(limit)}"
        rows = self._read(f"SELECT seq, {columns} FROM events WHERE {where} ORDER BY {order}{first}", params)
        return [StoredEvent.model_construct(seq=row[0], **dict(zip(EVENT_COLUMNS, row[1:]))) for row in rows]

    def forgotten_after(self, marker: int) -> list[tuple[int, str]]:
        """The users forgotten after `marker`, oldest first: (marker, digest of the user id)."""
        rows = self._read(f"SELECT seq, user_digest FROM forgotten WHERE seq > {self.marker} ORDER BY seq", (marker,))
        return [(row[0], row[1]) for row in rows]

    def last_seq(self) -> int:
        """The arrival number of the newest stored event (0 for none)."""
        return self._read("SELECT coalesce(max(seq), 0) FROM events")[0][0]

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
