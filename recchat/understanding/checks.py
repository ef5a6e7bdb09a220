"""The checks every turn's arguments pass before anything else reads them."""

from __future__ import annotations

from collections.abc import Iterable

from recchat.errors import InvalidArgumentError, InvalidMessageError
from recchat.models import Constraints, is_utf8_text


def check_message(message: str, limit: int) -> None:
    """`InvalidMessageError` for a message that is empty or longer than `limit` characters, saying what to do."""
    if not isinstance(message, str):
        raise InvalidMessageError(f"the message is text (a str), not {type(message).__name__}")
    if not message.strip():
        raise InvalidMessageError("the message is empty; say what you are looking for, e.g. 'a warm winter coat'")
    if len(message) > limit:
        raise InvalidMessageError(
            f"the message has {len(message):,} characters; the limit is {limit:,} "
            f"(RECCHAT_CHAT__MAX_MESSAGE_CHARS). Shorten it to what you are looking for."
        )
    if not is_utf8_text(message):
        raise InvalidMessageError("the message holds a character that is not valid text (a lone surrogate)")


def check_turn_arguments(exclude_ids: object, filters: object) -> set[str]:
    """The ids to exclude as a set, once the arguments of a turn are what they should be; else
    `InvalidArgumentError` saying what to pass (a lone string would otherwise be read as its characters)."""
    if isinstance(exclude_ids, str | bytes) or not isinstance(exclude_ids, Iterable):
        raise InvalidArgumentError(f"exclude_ids is a list of item ids, not {type(exclude_ids).__name__}")
    ids = list(exclude_ids)
    if not all(isinstance(item_id, str) for item_id in ids):
        raise InvalidArgumentError("exclude_ids holds item ids, which are strings")
    if filters is not None and not isinstance(filters, Constraints):
        raise InvalidArgumentError(f"filters is a recchat.Constraints or None, not {type(filters).__name__}")
    return set(ids)
