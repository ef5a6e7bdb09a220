"""Which category a follow-up's words mean, when no word of them names one: "a phone with the most storage" after a
gaming monitor, in a shop whose titles hold no kind words ("Dell S19DGF (Green)") and whose "phone" ends both
Headphones and Smartphones.

Each category is the centre of its items' vectors (the catalog's own embeddings, nothing written for a shop). A
follow-up moves to another category only when its words are clearly about it: the message names a thing rather
than refining one (`refines`), its words sit near that category's centre (`MIN_SIMILARITY`) and clearly nearer than
the current category's (`MIN_GAIN`). Measured on a 1,500-item electronics export (MiniLM): "a phone with the most
storage" scores Smartphones 0.57 against Monitors 0.42, "gaming headset" Headphones 0.42 against Monitors about 0.3;
refinements such as "something for gaming" (Keyboards 0.34, Monitors 0.31) or "curved" (0.15) stay put.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from recchat.models import Item

MIN_SIMILARITY = 0.35
"""A category is meant only when the words' cosine with its centre reaches this (MiniLM: a kind named alone scores
0.5-0.7 with its own category, refinements 0.15-0.34 with any)."""
MIN_GAIN = 0.1
"""... and beats the current category's by this much."""
REFINES = re.compile(
    r"^\W*(?:(?:and|but|ok|okay|also|only|just|maybe|preferably)\s+)*"
    r"(?:with|without|in|for|under|over|below|above|from|by|that|which|not|no|more|less|same|similar|one|ones|it|its)\b"
    r"|\b(?:more|less|fewer|bigger|smaller|larger|lighter|heavier|faster|slower|better|longer|shorter|higher|lower|"
    r"cheaper|newer|older|thinner|thicker|wider|narrower|quieter|louder|brighter|darker|warmer|cooler|softer)\b",
    re.I,
)
"""A message that qualifies what is shown ("with more storage", "in white", "a bigger screen") rather than naming
another thing."""


class CategoryMeaning:
    """The catalog's categories as the centres of their items' vectors, and the query encoder that reads words."""

    def __init__(
        self, encode_queries: Callable[[list[str]], np.ndarray], categories: Sequence[str], vectors: np.ndarray,
        item_categories: Sequence[str],
    ):
        """`vectors`: unit item vectors, one per entry of `item_categories` (the item's category)."""
        self.encode_queries = encode_queries
        self.categories = list(categories)
        members = np.array(item_categories)
        centres = [np.asarray(vectors)[members == category].mean(axis=0) for category in self.categories]
        centres = np.stack(centres).astype(np.float32)
        self.centres = centres / np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-12)

    @classmethod
    def of_catalog(
        cls, catalog: Iterable[Item], vectors_in_order: Callable[[list[str]], np.ndarray],
        encode_queries: Callable[[list[str]], np.ndarray],
    ) -> CategoryMeaning | None:
        """The catalog's categories from its items' vectors (`vectors_in_order(ids)`); None for fewer than two."""
        items = list(catalog)
        categories = sorted({item.category for item in items})
        if len(categories) < 2:
            return None
        vectors = vectors_in_order([item.id for item in items])
        return cls(encode_queries, categories, vectors, [item.category for item in items])

    def moved_to(self, message: str, words: str, current: str) -> str | None:
        """The category `words` (what the message asks for, its follow-up and facet words read) clearly mean, when it
        is not `current` and the message names a thing rather than refining; else None."""
        if not words.strip() or REFINES.search(message) or current not in self.categories:
            return None
        query = np.asarray(self.encode_queries([words])[0], dtype=np.float32)
        scores = self.centres @ (query / max(float(np.linalg.norm(query)), 1e-12))
        best = int(np.argmax(scores))
        gain = scores[best] - scores[self.categories.index(current)]
        return self.categories[best] if scores[best] >= MIN_SIMILARITY and gain >= MIN_GAIN else None
