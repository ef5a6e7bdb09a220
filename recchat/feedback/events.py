"""Feedback events and the store protocol every feedback store follows (SQLite: `sqlite.py`, PostgreSQL:
`postgres.py`). Every event is one row, appended in one transaction and identified by its user's idempotency key,
so a client retrying a call never counts twice (and one user's key never drops another's event)."""

from __future__ import annotations

import hashlib
import itertools
import math
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Literal, Protocol

from pydantic import BaseModel, Field, ValidationError, field_validator

from recchat.errors import FeedbackError, UnknownItemError
from recchat.models import RecommendationList, field_errors_text

FeedbackKind = Literal["impression", "click", "like", "dislike", "purchase"]
POSITIVE_KINDS = frozenset({"click", "like", "purchase"})
KIND_ALIASES = {"accept": "purchase", "buy": "purchase", "bought": "purchase", "view": "click"}
MAX_KEY_CHARS = 200
MAX_FUTURE_S = 24 * 3600
"""Clocks drift; an event dated further ahead than this is a bug in the caller, not drift."""


MAX_COUNT = 2**31 - 1
"""The largest turn or rank a store keeps (PostgreSQL's INTEGER; SQLite's is larger): one beyond is refused when the
event is made, not by the store mid-write."""


class FeedbackEvent(BaseModel):
    """One thing a user did with one item."""

    kind: FeedbackKind
    user_id: str = Field(min_length=1, max_length=200)
    item_id: str = Field(min_length=1, max_length=200)
    session_id: str | None = Field(default=None, max_length=200)
    turn: int | None = Field(
        default=None, ge=1, le=MAX_COUNT, description="The reply (1 = first) that showed the item"
    )
    rank: int | None = Field(default=None, ge=1, le=MAX_COUNT, description="Position in that reply (impressions)")
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
        raise FeedbackError(f"invalid feedback event ({field_errors_text(error)})") from None


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


EVENT_COLUMNS = ("key", "kind", "user_id", "item_id", "session_id", "turn", "rank", "time")
"""The stored fields of an event, in the stores' column order."""
FORGOTTEN_KEEP_S = 30 * 24 * 3600
"""How long a store keeps the marker of a forgotten user (see `FeedbackStore.forgotten_after`): a worker that served
no session for longer may not hear of a deletion."""
TurnMessage = tuple[str, int, str]
"""A chat message as kept (when configured): its session id, its turn, its text."""


def user_digest(user_id: str) -> str:
    """What marks a forgotten user in the store: a digest, so the marker does not keep the id itself."""
    return hashlib.sha256(user_id.encode()).hexdigest()


class StoredEvent(FeedbackEvent):
    seq: int = Field(description="Arrival order in the store")


class FeedbackStore(Protocol):
    """Where events live. Callers use only this, so a server database can replace SQLite."""

    def add(self, events: Sequence[FeedbackEvent]) -> list[bool]:
        """Store the events atomically; per event, False when its user already stored an event with its key."""

    def events_after(self, seq: int, limit: int | None = None) -> list[StoredEvent]:
        """Every stored event that arrived after `seq` (the first `limit` of them), in arrival order."""

    def user_events(self, user_id: str, before_seq: int) -> list[StoredEvent]:
        """One user's clicks and opinions (impressions aside) that arrived before `before_seq`, in arrival order."""

    def events_by_user(self, after: tuple[str, int], through_seq: int, limit: int) -> list[StoredEvent]:
        """The events numbered up to `through_seq`, ordered by user and then arrival: the first `limit` after
        `after`, a (user_id, seq) pair (`("", 0)` starts at the beginning)."""

    def last_seq(self) -> int:
        """The arrival number of the newest stored event (0 for none)."""

    def generation(self) -> int:
        """Changes whenever events are deleted, so readers know to rebuild rather than catch up."""

    def forget_user(self, user_id: str) -> int:
        """Delete the user's events and messages, and leave a marker for other workers (`forgotten_after`), in one
        transaction; the number of rows deleted."""

    def forgotten_after(self, marker: int) -> list[tuple[int, str]]:
        """The users forgotten after `marker` (0: all those kept, `FORGOTTEN_KEEP_S`), oldest first, each as its
        marker and `user_digest`: another worker drops their sessions from its memory."""

    def log_turn(
        self, user_id: str, events: Sequence[FeedbackEvent], message: TurnMessage | None, forgotten_seen: int
    ) -> bool:
        """A turn's events and message in one transaction, unless its user was forgotten after marker
        `forgotten_seen` (the last the caller acted on): then nothing is written, and the answer is False."""

    @property
    def where(self) -> str:
        """Where the log is, for messages (never with a password)."""

    def close(self) -> None: ...


