"""The feedback log: typed events (`events.py`), the `FeedbackStore` protocol, and its stores: SQLite, the default
(`sqlite.py`), and PostgreSQL for several workers on several machines (`postgres.py`). `open_feedback_store` opens
the one the settings name."""

from recchat.feedback.events import (
    EVENT_COLUMNS,
    KIND_ALIASES,
    POSITIVE_KINDS,
    FeedbackEvent,
    FeedbackKind,
    FeedbackStore,
    StoredEvent,
    TurnMessage,
    add_in_batches,
    impressions,
    item_event,
    make_event,
    user_digest,
)
from recchat.feedback.sqlite import SQLiteFeedbackStore

__all__ = [
    "EVENT_COLUMNS", "KIND_ALIASES", "POSITIVE_KINDS", "FeedbackEvent", "FeedbackKind", "FeedbackStore",
    "SQLiteFeedbackStore", "StoredEvent", "TurnMessage", "add_in_batches", "impressions", "item_event", "make_event",
    "open_feedback_store", "user_digest",
]


def open_feedback_store(settings) -> FeedbackStore:
    """The store `settings.feedback` names: PostgreSQL when `feedback.url` is set, else the SQLite file."""
    if settings.feedback.url:
        from recchat.feedback.postgres import PostgresFeedbackStore

        return PostgresFeedbackStore.from_settings(settings)
    return SQLiteFeedbackStore.from_settings(settings)
