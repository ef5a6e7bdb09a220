"""The dialogue state: each message becomes a `StateChange`, merged into the session's `ShoppingState` by `merge`, a
pure function; `request_of` turns the state into what retrieval reads.

The rules, in one place:
- A message that names a kind of product of another category ("now some boots" after a parka), names items as
  references, or quotes a title starts a new subject. Who it is for and the budget carry over; the rest starts over.
- Any other message refines: its words join the subject (a kind of the same category replaces the old kind:
  "a coat" then "a down parka"), and what it says of a facet replaces what was said of that facet before (the last
  one wins: "for men... actually for women"). "any colour" clears the colour.
- Hard: who it is for, price, numeric limits, exclusions, and any facet said with "only"; they filter. Soft: every
  other facet (colour, material, season...), which ranks matching items first.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from recchat.errors import InvalidArgumentError
from recchat.models import Constraints, ShoppingState
from recchat.understanding.lexicon import CatalogLexicon, is_cjk_text

MAX_SUBJECT_WORDS = 32
"""Refinements add to the subject; past this many words the oldest go, so a long conversation cannot grow it."""
MAX_VALUES = 8
"""Values kept per facet, and terms excluded: the newest."""
MAX_EXCLUDED_IDS = 500
"""Items left out by "something else" over a long conversation: the newest this many."""


@dataclass
class StateChange:
    """What one message changes."""

    new_subject: bool
    subject: str = ""
    dropped_words: set[str] = field(default_factory=set)
    """Words of the current subject this message replaces (its kind, when it names another of the same category)."""
    category: str | None = None
    wants: dict[str, list[str]] = field(default_factory=dict)
    required: set[str] = field(default_factory=set)
    clears: set[str] = field(default_factory=set)
    min_price: float | None = None
    max_price: float | None = None
    drops_min_price: bool = False
    drops_max_price: bool = False
    ranges: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    excluded_terms: list[str] = field(default_factory=list)
    excluded_ids: list[str] = field(default_factory=list)
    references: list[str] | None = None
    """Items the message names as references; None keeps the current ones."""
    order: str | None = None
    """'price_low' for "the cheapest", 'price_high' for "the most expensive"; None keeps the current one."""


def merge(state: ShoppingState | None, change: StateChange, carried: Collection[str] = ()) -> ShoppingState:
    """The state after a message. `carried`: the facets a new subject keeps (who it is for)."""
    if state is None or change.new_subject:
        old = state or ShoppingState()
        state = ShoppingState(
            wants={facet: values for facet, values in old.wants.items() if facet in carried},
            min_price=old.min_price, max_price=old.max_price, liked=old.liked,
        )
        subject = change.subject
    else:
        state = state.model_copy(deep=True)
        kept = [word for word in state.subject.split() if word.lower() not in change.dropped_words]
        subject = " ".join(dict.fromkeys([*kept, *change.subject.split()]))
    state.subject = " ".join(subject.split()[-MAX_SUBJECT_WORDS:])
    state.category = change.category or state.category
    for facet in change.clears:
        state.wants.pop(facet, None)
    for facet, values in change.wants.items():
        state.wants[facet] = list(dict.fromkeys(values))[-MAX_VALUES:]
    state.waived = sorted((set(state.waived) - set(change.wants)) | change.clears)
    state.order = change.order or state.order  # a new subject starts without one (see above)
    state.required = sorted(
        (set(state.required) - set(change.wants) - change.clears | change.required) & set(state.wants)
    )
    said = {value.lower() for values in change.wants.values() for value in values}
    excluded = [term for term in state.excluded_terms if term.lower() not in said]
    state.excluded_terms = list(dict.fromkeys([*excluded, *change.excluded_terms]))[-MAX_VALUES:]
    unwanted = {term.lower() for term in change.excluded_terms}
    for facet in list(state.wants):
        state.wants[facet] = [value for value in state.wants[facet] if value.lower() not in unwanted]
        if not state.wants[facet]:
            del state.wants[facet]
    state.required = [facet for facet in state.required if facet in state.wants]
    if change.drops_min_price:
        state.min_price = None
    if change.drops_max_price:
        state.max_price = None
    state.min_price = change.min_price if change.min_price is not None else state.min_price
    state.max_price = change.max_price if change.max_price is not None else state.max_price
    for facet, (low, high) in change.ranges.items():
        old_low, old_high = state.ranges.get(facet, (None, None))
        state.ranges[facet] = (low if low is not None else old_low, high if high is not None else old_high)
    state.excluded_ids = joined_ids(state.excluded_ids, change.excluded_ids)
    if change.references is not None:
        state.references = change.references
    return state


def joined_ids(kept: list[str], added: Collection[str]) -> list[str]:
    """Excluded item ids after `added` join `kept`: each once, the newest `MAX_EXCLUDED_IDS`."""
    return list(dict.fromkeys([*kept, *added]))[-MAX_EXCLUDED_IDS:]


LISTS = ("excluded_terms", "excluded_ids", "references")


def entries(state: ShoppingState) -> list[str]:
    """What a state holds that a shopper can take out: its facets, and 'category', 'price', 'subject' and the lists
    that are not empty."""
    held = [*state.wants, *state.ranges]
    held += ["category"] if state.category else []
    held += ["price"] if state.min_price is not None or state.max_price is not None else []
    held += ["subject"] if state.subject else []
    held += ["order"] if state.order else []
    return held + [name for name in LISTS if getattr(state, name)]


def release(state: ShoppingState, entry: str) -> ShoppingState:
    """The state without one entry (see `entries`), as a chip taken away in the UI; `InvalidArgumentError` naming
    what it holds, for an entry it does not."""
    if entry not in entries(state):
        held = ", ".join(entries(state)) or "nothing"
        raise InvalidArgumentError(f"the session's state holds no {entry!r}; it holds: {held}")
    state = state.model_copy(deep=True)
    state.wants.pop(entry, None)
    state.ranges.pop(entry, None)
    state.required = [facet for facet in state.required if facet != entry]
    if entry == "category":
        state.category = None
    elif entry == "price":
        state.min_price = state.max_price = None
    elif entry == "subject":
        state.subject = ""
    elif entry == "order":
        state.order = None
    elif entry in LISTS:
        setattr(state, entry, [])
    return state


def request_parts(state: ShoppingState, lexicon: CatalogLexicon) -> tuple[str, Constraints, dict[str, list[str]]]:
    """What retrieval reads of a state: the query (the wished values, the subject, whom it is for), the constraints
    (hard facets as the catalog values that satisfy them) and the preferences (soft facets, likewise)."""
    hard: dict[str, list[str]] = {}
    soft: dict[str, list[str]] = {}
    named: dict[str, list[str]] = {}
    before, after = [], []
    for name, said in state.wants.items():
        facet = lexicon.facets.get(name)
        if facet is None:
            continue
        values = list(dict.fromkeys(value for term in said for value in lexicon.values_for(name, term)))
        if facet.kind == "name" and not values:  # a name the catalog no longer holds: no filter that lets none pass
            continue
        (named if facet.kind == "name" else hard if facet.hard or name in state.required else soft)[name] = values
        if facet.kind == "audience":
            value = (lexicon.values_for(name, said[0])[:1] or said)[0]
            after.append(value if is_cjk_text(value) else f"for {value}")  # "navy sweater for men"
        elif facet.kind == "boolean":
            before.append(facet.label)
        elif facet.kind == "colour":  # "navy down parka": the colour first, as people say it
            before[:0] = said
        else:
            before.extend(said)
    if is_cjk_text(state.subject):  # a subject in its own words: glossary terms in English would only add noise
        before = [term for term in before if is_cjk_text(term)]
        after = [term for term in after if is_cjk_text(term)]
    facet_words = " ".join([*before, *after]).split()
    room = MAX_SUBJECT_WORDS - len(facet_words)
    subject = state.subject.split()[-room:] if room > 0 else []
    query = " ".join([*before, *subject, *after])
    constraints = Constraints(
        category=state.category, min_price=state.min_price, max_price=state.max_price,
        excluded_terms=sorted(state.excluded_terms), excluded_ids=sorted(state.excluded_ids), facets=hard,
        ranges=dict(state.ranges), named=named,
    )
    return query, constraints, soft
