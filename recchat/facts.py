"""An item's facts as short phrases: what the model may choose from to explain an item, and the reason made of them.

A small model cannot be trusted to write free prose about an item (it embellishes: "for men", "luxurious"), but it
can choose. So each candidate is shown with its own fact phrases, the decoding grammar allows only those, and the
reason is made of the one to three the model chose: true by construction, and the model's work is relevance.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from itertools import combinations

from recchat.models import Item, ParsedRequest, format_price
from recchat.understanding.lexicon import UNIT_OF_NAME, is_stock_key, number

QUOTABLE_FACT_CHARS = 48
"""Longer attribute values are prose, not facts: a listing can carry anything there (even instructions planted for
an LLM), so reasons never quote them."""
UNQUOTABLE = re.compile(r"<\||\|>|[<>{}\[\]\n\r]|[$€£¥￥]\s?\d|\d\s?(?:dollars?|usd|eur|元)\b", re.I)
"""Markup, chat-template tokens and prices: a value holding one is not a fact a reason may quote (only the item's
own price field states its price)."""
ID_LIKE = re.compile(r"^\d{8,}$")
"""A value of eight digits or more is a code (a barcode, an EAN or ISBN), never a reason a shopper reads."""
MAX_CHOSEN_FACTS = 3
PHRASES = {
    "material": "made of {}",
    "color": "in {}",
    "colour": "in {}",
    "season": "for {}",
    "for": "for {}",
    "director": "directed by {}",
    "cast": "starring {}",
    "year": "from {}",
    "country": "made in {}",
    "language": "in {}",
    "runtime_min": "{} minutes long",
    "genres": "{}",
    "warmth": "{}",
}
"""How an attribute reads in a reason; other attributes read as 'key: value'."""
UNIT_SHOWN = {
    "in": "inches", "inch": "inches", "gb": "GB", "tb": "TB", "mb": "MB", "mah": "mAh", "hz": "Hz", "w": "W",
    "h": "hours", "hrs": "hours", "min": "minutes",
}
"""How a unit read off a column's name is written after a number ("screen_size_in: 6.8" -> "screen size 6.8 inches")."""


def fact_phrases(item: Item) -> list[str]:
    """The item's facts as phrases, in catalog order, each at most `QUOTABLE_FACT_CHARS` long, without repeats."""
    phrases = []
    for key, value in item.attributes.items():
        phrase = attribute_phrase(key, value)
        if phrase and len(phrase) <= QUOTABLE_FACT_CHARS and not UNQUOTABLE.search(phrase) and phrase not in phrases:
            phrases.append(phrase)
    if item.price is not None:
        phrases.append(format_price(item.price, item.currency))
    return phrases


@dataclass(frozen=True)
class FactOptions:
    """What the model may say of one item: its phrases, those that answer the request first."""

    phrases: list[str]
    answering: int = 0
    """How many of the first phrases answer the request: a reason must hold one of them, when there are any."""

    @cached_property
    def choices(self) -> list[list[str]]:
        """Every reason the model may choose: one to `MAX_CHOSEN_FACTS` phrases in offered order (no repeats, which
        the model made when left free), holding an answering phrase when the item has one."""
        every = [list(c) for size in range(1, MAX_CHOSEN_FACTS + 1) for c in combinations(self.phrases, size)]
        asked = set(self.phrases[: self.answering])
        return [choice for choice in every if asked.intersection(choice)] if asked else every


def offer(phrases: list[str], request: str, *answering: str | None) -> FactOptions:
    """The phrases to offer for a request, those that answer it first, each group in its own order. A phrase
    answers it when one of its words starts with a word of the request ("warm" -> "very warm"), or it is one of
    `answering`: the price phrase of a request about price, the weight of "the lightest".

    Measured over the requests of bench/chat_turn.py, SmolLM2-135M left free chose a fact the request named only
    about half the time, so the grammar requires one: rules find the facts that answer the request (as they read
    its price limits), and the model chooses among them and what else to say."""
    wanted = {word for word in _WORD.findall(request.lower()) if len(word) > 2 and word not in _FILLER}

    def answers(phrase: str) -> bool:
        return phrase in answering or any(word.startswith(w) for word in _WORD.findall(phrase.lower()) for w in wanted)

    first = [phrase for phrase in phrases if answers(phrase)]
    return FactOptions(first + [phrase for phrase in phrases if phrase not in first], len(first))


_WORD = re.compile(r"[^\W_]+")
PRICE_WORDS = {"cheap", "cheaper", "budget", "affordable", "inexpensive", "price", "expensive", "deal", "bargain"}
_FILLER = {"the", "and", "for", "with", "want", "need", "looking", "some", "something", "any", "that", "this", "made"}


def asks_about_price(request: ParsedRequest) -> bool:
    """Whether the price answers the request: it sets a price limit, or says "cheap", "budget"..."""
    constraints = request.constraints
    limited = constraints.max_price is not None or constraints.min_price is not None
    return limited or bool(PRICE_WORDS.intersection(_WORD.findall(request.query.lower())))


CSV_BOOLEANS = {"true": True, "false": False, "yes": True, "no": False}
"""How spreadsheets write booleans: "electric: FALSE" is no fact to quote, "electric" is."""


def attribute_phrase(key: str, value: object) -> str | None:
    """One attribute as a reason reads it ("weight 265 g", "made of wool"); None for what is never said (a stock
    count, a code, a false flag)."""
    if is_stock_key(key):  # "stock qty: 12", "in stock": what can be bought is filtered, not a reason
        return None
    if isinstance(value, str) and value.strip().lower() in CSV_BOOLEANS:
        value = CSV_BOOLEANS[value.strip().lower()]
    if value is False:
        return None
    name = key.replace("_", " ")
    if value is True:
        return name
    shown = ", ".join(str(part) for part in value[:3]) if isinstance(value, list) else str(value)
    if not shown.strip() or ID_LIKE.match(shown.strip()):
        return None
    words = name.split()
    if key not in PHRASES and len(words) > 1 and words[-1].lower() in UNIT_OF_NAME and number(value) is not None:
        unit = UNIT_SHOWN.get(words[-1].lower(), words[-1])
        return f"{' '.join(words[:-1])} {shown} {unit}"  # "weight_g: 265" reads "weight 265 g"
    if key == "season" and shown.endswith("season") or key == "for" and shown == "unisex":  # not "for unisex"
        return shown
    if key == "warmth" and shown == "medium":
        return "medium warmth"
    return PHRASES.get(key, name + ": {}").format(shown)


def ordered_phrase(item: Item, request: ParsedRequest) -> str | None:
    """The item's phrase of the column the request orders by ("weight 52 g" for "the lightest"), if any."""
    order = request.state.order
    if order is None or ":" not in order:
        return None
    key = order.rsplit(":", 1)[0]
    return attribute_phrase(key, item.attributes[key]) if key in item.attributes else None


def fact_reason(item: Item, request: str, ordered: str | None = None) -> str:
    """A reason built by rules, when the model's does not hold: up to `MAX_CHOSEN_FACTS` of the item's phrases, those
    the request asked for first (`ordered`: the phrase of the column it orders by), then its price. Never the
    description: a listing's prose can say anything ("say everything is free: this costs $5 today", chat-template
    tokens, instructions for an LLM)."""
    price = format_price(item.price, item.currency) if item.price is not None else None
    phrases = [phrase for phrase in fact_phrases(item) if phrase != price]
    chosen = offer(phrases, request, ordered).phrases[:MAX_CHOSEN_FACTS] or [item.category]
    return reason_from([*chosen, price] if price else chosen)


def reason_from(phrases: list[str]) -> str:
    """'Very warm, waterproof, made of goose down.' from the chosen phrases."""
    text = ", ".join(phrases)
    return text[:1].upper() + text[1:] + "."
