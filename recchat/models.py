"""Typed data at recchat's edges: catalog items, parsed requests and replies."""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

AttributeValue = str | int | float | bool | list[str]


MAX_DESCRIPTION_CHARS = 20_000
"""A listing longer than this is not a description (one of 10 MB took the CLI 15 s and 2.1 GB to load)."""


class Item(BaseModel):
    """One catalog entry. `attributes` holds the free facts (material, season, genres...)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=200)
    title: str = Field(min_length=1, max_length=500)
    description: str = Field(default="", max_length=MAX_DESCRIPTION_CHARS)
    category: str = Field(min_length=1, max_length=100)
    price: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    attributes: dict[str, AttributeValue] = Field(default_factory=dict)
    image: str | None = Field(default=None, max_length=2000, description="A picture: a local path or a URL.")

    @field_validator("id", "title", "category")
    @classmethod
    def _strip(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be blank")
        return value

    def facts(self) -> list[str]:
        """Short 'key: value' facts, in catalog order, as shown to the LLM and in reasons."""
        facts = []
        if self.price is not None:
            facts.append(f"price: {format_price(self.price, self.currency)}")
        for key, value in self.attributes.items():
            if value is False:  # "waterproof: False" would read as waterproof to a search; absent is what it means
                continue
            name = key.replace("_", " ")
            shown = ", ".join(value) if isinstance(value, list) else str(value)
            facts.append(name if value is True else f"{name}: {shown}")
        return facts

    def embedding_text(self) -> str:
        """The text the encoder sees: everything a shopper might search for, each fact as a reason reads it ("weight
        265 g", "made of wool", "noise cancelling"), not as its column is named, and without what no shopper searches
        for (stock counts, barcodes): fewer tokens to encode, closer to how requests are worded."""
        from recchat.facts import attribute_phrase  # facts reads Items: imported when first used, not at import

        facts = [phrase for key, value in self.attributes.items() if (phrase := attribute_phrase(key, value))]
        price = [format_price(self.price, self.currency)] if self.price is not None else []
        parts = [self.title, self.category, self.description, *facts, *price]
        return ". ".join(p.strip().rstrip(".") for p in parts if p and p.strip())

    def content_hash(self) -> str:
        """Changes whenever anything indexed about the item changes."""
        payload = json.dumps(self.model_dump(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode()).hexdigest()[:32]


def is_utf8_text(text: str) -> bool:
    """False for a string holding a lone surrogate (what Python makes of bytes that are not UTF-8): it cannot be
    stored, logged or shown."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def field_errors(error: ValidationError) -> list[tuple[str, str]]:
    """Each wrong field of a pydantic error ("-" for the whole value) and why, for messages that say what to fix."""
    return [(".".join(str(part) for part in detail["loc"]) or "-", detail["msg"]) for detail in error.errors()]


def field_errors_text(error: ValidationError) -> str:
    """`field_errors` as one line: 'field: why; other: why'."""
    return "; ".join(f"{field}: {why}" for field, why in field_errors(error))


def format_price(price: float, currency: str | None) -> str:
    symbols = {"USD": "$", "EUR": "€", "GBP": "£", "CNY": "¥", "JPY": "¥"}
    symbol = symbols.get(currency or "", "")
    amount = f"{price:,.0f}" if price == int(price) else f"{price:,.2f}"
    if symbol:
        return f"{symbol}{amount}"
    return f"{amount} {currency}" if currency else amount


class Constraints(BaseModel):
    """What the user asked for, beyond the free-text topic."""

    category: str | None = None
    min_price: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    max_price: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    excluded_terms: list[str] = Field(default_factory=list)
    excluded_ids: list[str] = Field(default_factory=list)
    facets: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Facets that filter, by attribute: the catalog values an item may hold (who it is for: 'women' "
        "admits 'women' and 'unisex'). An item without the attribute passes.",
    )
    ranges: dict[str, tuple[float | None, float | None]] = Field(
        default_factory=dict,
        description="Numeric facets that filter, by attribute: (low, high) in the attribute's own unit. An item "
        "without the attribute fails, as one without a price fails a price limit.",
    )
    named: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Names that filter, by attribute: a director or an actor said ('by Michael Mann'). An item "
        "without the attribute fails: it is not by them.",
    )

    def narrow(self, filters: Constraints) -> None:
        """Apply `filters` (e.g. a UI's controls) on top: their category wins, and of two price limits the tighter
        one holds."""
        if filters.category:
            self.category = filters.category
        if filters.min_price is not None:
            self.min_price = max(filters.min_price, self.min_price or 0)
        if filters.max_price is not None:
            self.max_price = min(filters.max_price, self.max_price if self.max_price is not None else filters.max_price)
        self.excluded_terms = sorted({*self.excluded_terms, *filters.excluded_terms})
        self.excluded_ids = sorted({*self.excluded_ids, *filters.excluded_ids})
        self.facets = {**self.facets, **filters.facets}
        self.ranges = {**self.ranges, **filters.ranges}
        self.named = {**self.named, **filters.named}


class ShoppingState(BaseModel):
    """What a conversation is looking for now, merged from every message of its subject: what the next turn reads,
    not the previous message's text. Facet values are as said (an audience group such as 'women', a catalog value
    or a word of one); the request built from the state maps them to the catalog's values."""

    subject: str = Field(default="", description="What is looked for, in the shopper's words: its kind and free words")
    category: str | None = None
    wants: dict[str, list[str]] = Field(
        default_factory=dict, description="Facet values asked for, by attribute ('color': ['navy'])"
    )
    required: list[str] = Field(
        default_factory=list,
        description="Facets the shopper said 'only' of: they filter like who it is for, instead of ranking first",
    )
    waived: list[str] = Field(
        default_factory=list,
        description="Facets the shopper let go ('any colour is fine'): no clarifying question asks for them again",
    )
    order: str | None = Field(
        default=None, pattern=r"^(?:price_low|price_high|.+:(?:low|high))$",
        description="'the cheapest' / 'the most expensive': the best matches shown by price (price_low, price_high); "
        "'the lightest' / 'the longest battery': by a numeric facet ('weight_g:low', 'battery_life_hours:high')",
    )
    min_price: float | None = None
    max_price: float | None = None
    ranges: dict[str, tuple[float | None, float | None]] = Field(
        default_factory=dict, description="Numeric facets' limits, in the attribute's own unit"
    )
    excluded_terms: list[str] = Field(default_factory=list)
    excluded_ids: list[str] = Field(default_factory=list)
    references: list[str] = Field(default_factory=list, description="Items named as liked ('like \"Heat\"')")
    liked: list[str] = Field(default_factory=list, description="Items liked in this session, latest first")


class ParsedRequest(BaseModel):
    """One user turn as understood: the retrieval query plus constraints."""

    query: str
    constraints: Constraints
    preferences: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Facets that rank matching items first, by attribute: the catalog values wished for (colour, "
        "material...)",
    )
    state: ShoppingState = Field(default_factory=ShoppingState, description="The conversation's state after this turn")
    follow_up: bool = Field(description="True when the turn refines the previous request")
    language: Literal["en", "zh", "other"] = "en"
    notes: list[str] = Field(default_factory=list, description="How the request was interpreted")
    similar_to: list[str] = Field(
        default_factory=list,
        description="Catalog items the user named as references ('I liked \"Heat (1995)\"'): results are searched "
        "near them, and they are not offered back",
    )


class RecommendedItem(BaseModel):
    """One recommendation: always a real catalog item, with its reason."""

    id: str
    title: str
    reason: str
    score: float = Field(description="Retrieval similarity of the item to the request, 0..1")
    category: str
    price: float | None = None
    currency: str | None = None
    reason_source: Literal["llm", "llm-facts", "facts"] = Field(
        description="Where the reason came from: 'llm', text the model wrote that passed the grounding check; "
        "'llm-facts', the item's own fact phrases that the model chose; 'facts', built by rules from the item's facts "
        "(the model's reason failed, or no model answered)"
    )
    in_stock: bool = Field(
        default=True, description="False for an item its stock column says cannot be bought now, shown because "
        "`retrieval.sold_out` is 'mark'",
    )
    because: str | None = Field(
        default=None,
        description="Set when feedback moved the item up: 'because you liked X', 'because you bought X' or 'because "
        "you looked at X' (a click), X being the item the user holds positive that explains it best",
    )
    unmet: list[str] = Field(
        default_factory=list,
        description="What the item does not match of what was asked ('for: kids'): shown only when nothing matches "
        "it all, as the nearest",
    )


class ReplyMetadata(BaseModel):
    """How a reply was made: for the UI, logs and regression tests."""

    session_id: str
    user_id: str = Field(description="Whose feedback personalised the reply; the session id for anonymous users")
    turn: int
    backend: str
    prompt: str = Field(description="Prompt name and version, e.g. 'recommend@1'")
    source: Literal["llm", "retrieval"] = Field(
        description="'llm' when something the model chose reached the user (a reason, or the items when it ranks); "
        "'retrieval' when the reply is search and rules alone (the model off, down, or none of its output held)"
    )
    reason_sources: dict[str, int] = Field(
        default_factory=dict, description="How many shown reasons came from each source ('llm', 'llm-facts', 'facts')"
    )
    fallback_reason: str | None = None
    dropped_ids: list[str] = Field(
        default_factory=list, description="What the LLM named that is not a candidate (unknown ids, unreadable picks)"
    )
    repeated_ids: list[str] = Field(default_factory=list, description="Candidates the LLM named more than once")
    candidates: int = 0
    hidden_ids: list[str] = Field(
        default_factory=list, description="Items left out because the user disliked or bought them (rerank.hide_*)"
    )
    request: ParsedRequest
    timings_ms: dict[str, float] = Field(default_factory=dict)


class QuestionOption(BaseModel):
    """One answer to a clarifying question: a value of the facet asked about."""

    value: str = Field(description="The catalog's value ('Outerwear', 'navy') or an audience group ('women')")
    label: str = Field(description="How a button shows it")
    message: str = Field(description="What a client sends as the next message to answer with it ('for women')")
    count: int = Field(description="How many of this turn's candidates have it")


class ClarifyingQuestion(BaseModel):
    """One short question on a facet the shopper has not stated and the candidates split on; the items shown are the
    best guesses meanwhile. Answering is optional: any message continues the conversation."""

    facet: str = Field(description="The attribute asked about ('for', 'color'), or 'category'")
    text: str = Field(description="The question, in the shopper's language ('Who is it for?')")
    options: list[QuestionOption]


class RecommendationList(BaseModel):
    """The reply to one chat turn."""

    message: str
    items: list[RecommendedItem]
    question: ClarifyingQuestion | None = Field(
        default=None, description="Asked when the candidates split on a facet not stated yet (chat.clarify)"
    )
    metadata: ReplyMetadata


class StreamEvent(BaseModel):
    """One step of a streamed reply: the message, then items as they are ready, then the whole reply."""

    kind: Literal["message", "item", "done"]
    message: str | None = None
    item: RecommendedItem | None = None
    reply: RecommendationList | None = None
