"""How much one turn may ask for, and why each bound is where it is. Past a bound a turn is refused with
`LimitExceededError` (HTTP 400) saying what to send, before anything is searched: without them, 6,000 excluded terms
took a turn 4.4 s instead of 50 ms, and thousands of excluded ids made replies of megabytes (each reply repeats what
its request excluded, in `metadata.request`)."""

from __future__ import annotations

from collections.abc import Collection

from recchat.errors import LimitExceededError
from recchat.models import Constraints
from recchat.understanding.state import MAX_EXCLUDED_IDS

MAX_EXCLUDE_IDS = MAX_EXCLUDED_IDS
"""Items one turn may exclude by default (`exclude_ids` and `filters.excluded_ids` together; `chat.max_exclude_ids`):
as many as a conversation's state keeps from "something else" (500). Each takes one more place in the retrieval
window and about 20 bytes in the reply."""
MAX_FILTER_TERMS = 32
"""Terms in a turn's `filters`, in all: excluded terms, and the attributes and values of facets, names and ranges.
Each excluded term is matched against every item of the retrieval window; 32 cost a few milliseconds. A UI's controls
set a handful."""
MAX_TERM_CHARS = 100
"""Characters in one filter term or value: a word or a product's name, not a paragraph."""


def check_turn_bounds(
    exclude_ids: Collection[str], filters: Constraints | None, max_exclude_ids: int = MAX_EXCLUDE_IDS
) -> None:
    """`LimitExceededError` when a turn asks for more than the bounds above (`max_exclude_ids`: the settings')."""
    excluded = len(exclude_ids) + (len(filters.excluded_ids) if filters is not None else 0)
    if excluded > max_exclude_ids:
        raise LimitExceededError(
            f"a turn excludes at most {max_exclude_ids} items (exclude_ids and filters.excluded_ids together; "
            f"chat.max_exclude_ids); this one excludes {excluded:,}. Send the ones that matter most."
        )
    if filters is None:
        return
    terms = [*filters.excluded_terms, *filters.ranges]
    for by_attribute in (filters.facets, filters.named):
        terms += [*by_attribute, *(value for values in by_attribute.values() for value in values)]
    if len(terms) > MAX_FILTER_TERMS:
        raise LimitExceededError(
            f"filters hold at most {MAX_FILTER_TERMS} terms in all (excluded_terms, and the attributes and values of "
            f"facets, named and ranges); these hold {len(terms):,}."
        )
    longest = max(terms, key=len, default="")
    if len(longest) > MAX_TERM_CHARS:
        raise LimitExceededError(
            f"a filter term has at most {MAX_TERM_CHARS} characters; {longest[:40]!r}... has {len(longest):,}"
        )
