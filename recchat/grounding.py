"""Keeping the LLM honest: what it may name, how its output is read, and which reasons are kept.

Candidates are shown to the model under short aliases (A1, A2, ...): one or two tokens each
whatever the catalog's id format, and the decoding grammar allows only those. Every pick is
validated anyway, because a server may ignore the schema.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from recchat.facts import FactOptions, asks_about_price, fact_phrases, offer, ordered_phrase
from recchat.models import Item, ParsedRequest, format_price
from recchat.retrieval import Candidate

REASON_MAX_CHARS = 200
WORD = re.compile(r"[a-z0-9]+(?:[.,][0-9]+)?")
GENERIC_WORDS = {
    "this", "that", "with", "your", "for", "and", "the", "great", "good", "perfect", "nice", "item",
    "choice", "pick", "option", "request", "recommend", "recommended", "because", "will", "keep", "you",
    "from", "made", "very", "also", "has", "have", "are", "its", "it's", "which", "would", "like",
}


def alias(position: int) -> str:
    return f"A{position + 1}"


def reply_schema(aliases: list[str], min_items: int, max_items: int, reason_max_chars: int = REASON_MAX_CHARS) -> dict:
    """JSON schema of the LLM's answer: 1..max_items picks among the given aliases."""
    return {
        "type": "object",
        "properties": {
            "items": {
                "type": "array",
                "minItems": min(min_items, len(aliases)),
                "maxItems": min(max_items, len(aliases)),
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string", "enum": aliases},
                        "reason": {
                            "type": "string", "minLength": 10, "maxLength": min(reason_max_chars, REASON_MAX_CHARS)
                        },
                    },
                    "required": ["id", "reason"],
                    "additionalProperties": False,
                },
            }
        },
        "required": ["items"],
        "additionalProperties": False,
    }


def choice_schema(options: list[FactOptions], min_items: int, max_items: int, fixed_order: bool) -> dict:
    """JSON schema of an answer that chooses, for each pick, one of that candidate's allowed reasons
    (`options[i].choices` for alias i). `fixed_order`: the ranking has chosen the items, so the answer explains exactly
    the first `max_items` candidates in order, each as the bare list of its phrases (an id would cost a dozen forced
    tokens a pick, about a quarter of a second each on 2 cores); otherwise the model also chooses 1..max_items of
    them, each named by its id."""

    def reasons(position: int) -> dict:
        # Spelled out as constants: JSON schema cannot say "no repeats" (grammars ignore uniqueItems).
        return {"anyOf": [{"const": choice} for choice in options[position].choices]}

    def pick(position: int) -> dict:
        return {
            "type": "object",
            "properties": {"id": {"const": alias(position)}, "facts": reasons(position)},
            "required": ["id", "facts"],
            "additionalProperties": False,
        }

    if fixed_order:
        shown = min(max_items, len(options))
        explained = [reasons(p) for p in range(shown)]
        picks = {"type": "array", "prefixItems": explained, "minItems": shown, "maxItems": shown}
    else:
        picks = {
            "type": "array", "items": {"anyOf": [pick(p) for p in range(len(options))]},
            "minItems": min(min_items, len(options)), "maxItems": min(max_items, len(options)),
        }
    return {"type": "object", "properties": {"items": picks}, "required": ["items"], "additionalProperties": False}


def candidate_options(candidates: list[Candidate], request: ParsedRequest, wish: str) -> list[FactOptions]:
    """What a choosing answer may say of each candidate: its fact phrases (its category, if it has none), those that
    answer the request (`wish`: its words) first, its price too if it asks about price, and the column it orders by
    ("the lightest": the weight)."""
    price_asked = asks_about_price(request)
    options = []
    for candidate in candidates:
        item = candidate.item
        price = format_price(item.price, item.currency) if price_asked and item.price is not None else None
        options.append(offer(fact_phrases(item) or [item.category], wish, price, ordered_phrase(item, request)))
    return options


def option_lines(candidates: list[Candidate], options: list[FactOptions]) -> str:
    """The candidates as a choosing prompt shows them: the phrases to choose from, nothing else. Each token here costs
    about 4 ms on 2 cores before the first item can show; without titles, categories and quotes the first item came
    0.25 s sooner (bench/chat_turn.py), and the model's choices were as relevant: its job is choosing among one
    item's facts for the request, and the grammar holds each list to its item."""
    return "\n".join(
        f"[{alias(position)}] " + "; ".join(_clean(p) for p in option.phrases)
        for position, (candidate, option) in enumerate(zip(candidates, options, strict=True))
    )


def candidate_lines(candidates: list[Candidate], max_facts: int = 5) -> str:
    lines = []
    for position, candidate in enumerate(candidates):
        item = candidate.item
        facts = " | ".join(item.facts()[:max_facts])
        lines.append(f"[{alias(position)}] {_clean(item.title)} | {item.category} | {_clean(facts)}")
    return "\n".join(lines)


def _clean(text: str) -> str:
    """Catalog text goes into the prompt as data: keep it on one line and out of our bracket syntax."""
    return re.sub(r"[\[\]\n\r]+", " ", text)[:300]


@dataclass(frozen=True)
class Pick:
    """One pick as the model wrote it: a reason in its own words, or the fact phrases it chose."""

    alias: str
    reason: str | None = None
    facts: tuple[str, ...] = ()


class PickReader:
    """Reads the LLM's JSON as it streams: `feed` each chunk, get each pick as soon as its element of the items
    array closes. An element is an object naming its candidate (`{"id": "A2", "reason": ...}` or `{"id": "A2",
    "facts": [...]}`), or a list of fact phrases for the candidate at its position (the ranking fixed the items).

    Anything in the items array that is not a valid pick comes back as its raw text, so the caller can count it as
    dropped. Text that never forms the expected JSON gives nothing.
    """

    def __init__(self) -> None:
        self._buffer = ""
        self._scan = 0  # where the next array element may begin
        self._in_array = False
        self._elements = 0

    def feed(self, chunk: str) -> list[Pick | str]:
        self._buffer += chunk
        if not self._in_array:
            match = re.search(r'"items"\s*:\s*\[', self._buffer)
            if not match:
                return []
            self._in_array, self._scan = True, match.end()
        picks: list[Pick | str] = []
        while (start := _next_element(self._buffer, self._scan)) >= 0:
            end = _element_end(self._buffer, start)
            if end < 0:
                break
            self._scan = end
            raw = self._buffer[start:end]
            position, self._elements = self._elements, self._elements + 1
            try:
                picks.append(_pick(json.loads(raw), position))
            except (ValueError, KeyError, TypeError, AttributeError):
                picks.append(raw)
        return picks


def _pick(data: object, position: int) -> Pick:
    if isinstance(data, list):
        if not all(isinstance(fact, str) for fact in data):
            raise TypeError("fact phrases are strings")
        return Pick(alias(position), facts=tuple(data))
    if isinstance(data.get("facts"), list):
        return Pick(str(data["id"]), facts=tuple(str(fact) for fact in data["facts"]))
    return Pick(str(data["id"]), str(data["reason"]))


_ELEMENT_OR_END = re.compile(r"[{\[\]]")


def _next_element(text: str, scan: int) -> int:
    """Where the next object or list of the items array opens, or -1 (none yet, or the array has closed)."""
    match = _ELEMENT_OR_END.search(text, scan)
    return match.start() if match and match.group() != "]" else -1


def _element_end(text: str, start: int) -> int:
    """Index just past the JSON object or list that opens at `start`, or -1 if it is not closed yet."""
    depth = 0
    in_string = False
    escaped = False
    for index in range(start, len(text)):
        char = text[index]
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
            if depth == 0:
                return index + 1
    return -1


def content_words(text: str) -> set[str]:
    """Content words, lightly stemmed so 'coats' and 'coat' meet (the grounding check and regression suites
    compare reasons with items by these)."""
    words = (word for word in WORD.findall(text.lower()) if len(word) >= 3 and word not in GENERIC_WORDS)
    return {word[:-1] if word.endswith("s") and not word.endswith("ss") else word for word in words}


def _numbers(text: str) -> set[float]:
    found = set()
    for raw in re.findall(r"(?<![a-z0-9])\d[\d,]*(?:\.\d+)?", text.lower()):
        try:
            found.add(round(float(raw.replace(",", "")), 2))
        except ValueError:
            continue
    return found


def _pairs(text: str) -> set[tuple[str, str]]:
    words = [word for word in WORD.findall(text.lower()) if word not in GENERIC_WORDS]
    return set(zip(words, words[1:]))


def item_words(item: Item) -> set[str]:
    return content_words(" ".join([item.title, item.category, item.description, *item.facts()]))


def reason_is_grounded(reason: str, item: Item, others: list[Item], query: str, aliases: list[str]) -> bool:
    """Keep a reason only if it is a finished sentence that quotes a fact of its item, is mostly made of
    the item's own words, names no other candidate (a word pair from its title), claims nothing that
    belongs to another candidate or to the request but not to this item (a denim jacket called 'winter'
    because the shopper asked for winter), and states no number the item lacks."""
    reason = reason.strip()
    if not 10 <= len(reason) < REASON_MAX_CHARS or not reason.endswith((".", "!")):
        return False
    if any(re.search(rf"\b{a}\b", reason) for a in aliases):
        return False
    own = item_words(item)
    said = content_words(reason)
    if not said & (own - content_words(item.title)):
        return False
    said_words = {word for word in said if not word[0].isdigit()}  # a copied price proves nothing
    if len(said_words & own) * 2 <= len(said_words):
        return False
    claimable = content_words(query).union(*(item_words(other) for other in others))
    if (said & claimable) - own:
        return False
    reason_pairs = _pairs(reason)
    own_pairs = _pairs(" ".join([item.title, item.description]))
    if any((_pairs(other.title) - own_pairs) & reason_pairs for other in others):
        return False
    known_numbers = _numbers(" ".join([item.title, item.description, *item.facts()]))
    if item.price is not None:
        known_numbers |= {round(item.price, 2), float(round(item.price))}
    return _numbers(reason) <= known_numbers


