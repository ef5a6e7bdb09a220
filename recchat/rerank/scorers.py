"""The weighted parts of the ranking: one `Scorer` per weight in `RerankSettings`.

Each scorer gives every candidate a score of about 0..1; the ranking is their sum, each times its weight (0 turns a
scorer off). A `CatalogScorer` scores the whole catalog first, so that its best items can join the candidates."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from recchat.collaborative import history_weights
from recchat.config import RerankSettings
from recchat.models import Item
from recchat.rerank.profiles import Profile, Scaled
from recchat.retrieval import wished_first

if TYPE_CHECKING:
    from recchat.rerank.state import FeedbackModel


@dataclass
class RankingContext:
    """What one ranking reads: the feedback state (its lock held), the asker's profiles and request, and, once
    drawn, the candidates."""

    model: FeedbackModel
    settings: RerankSettings
    user: Profile | None
    profiles: Scaled
    references: list[str]
    """Items the request names as liked."""
    query_vector: np.ndarray
    catalog_scores: dict[str, np.ndarray | None] = field(default_factory=dict)
    """Per `CatalogScorer` (by weight), its scores of every catalog item."""
    positions: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    """The candidates' catalog positions."""
    similarity: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """The candidates' cosine similarity to the request, clipped to 0..1."""
    preferences: dict[str, list[str]] = field(default_factory=dict)
    """The request's soft facets: the catalog values wished for, by attribute."""
    in_kind: Callable[[Item], bool] | None = None
    """Whether an item is of the kind the request names; wished facets count among those (`wished_first`)."""


class Scorer(Protocol):
    weight: str
    """The `RerankSettings` field that weighs this scorer."""
    personal: bool
    """Whether it reads the asker's opinions, so that a move it causes can be explained by a liked item."""

    def reads_likes(self, settings: RerankSettings) -> bool:
        """Whether, so weighted, the asker's likes move its scores (and so may explain a move)."""

    def score(self, context: RankingContext) -> np.ndarray:
        """One score per candidate (`context.positions`)."""


class ImpersonalScorer:
    personal = False

    def reads_likes(self, settings: RerankSettings) -> bool:
        return False


class PersonalScorer:
    personal = True
    weight: str

    def reads_likes(self, settings: RerankSettings) -> bool:
        return getattr(settings, self.weight) > 0


class Similarity(ImpersonalScorer):
    """Cosine similarity of the item to the request."""

    weight = "similarity"

    def score(self, context: RankingContext) -> np.ndarray:
        return context.similarity


class Preferences(ImpersonalScorer):
    """The share of the facets the request wishes for (colour, material...) that the item matches: what the shopper
    said "preferably" of ranks first."""

    weight = "preferences"

    def score(self, context: RankingContext) -> np.ndarray:
        if not context.preferences:
            return np.zeros(len(context.positions))
        items = [context.model.catalog[context.model.ids[p]] for p in context.positions]
        return np.array(wished_first(items, context.preferences, context.in_kind))


class Preference(PersonalScorer):
    """Match with the asker's Rocchio preference vector (liked item vectors minus disliked ones)."""

    weight = "profile"

    def score(self, context: RankingContext) -> np.ndarray:
        parts = [(profile.preference, scale) for profile, scale in context.profiles if profile.preference is not None]
        preference = sum(scale * value for value, scale in parts) if parts else None
        norm = np.linalg.norm(preference) if preference is not None else 0.0
        if not norm:
            return np.zeros(len(context.positions))
        return context.model.vectors[context.positions] @ (preference / norm)


class Category(PersonalScorer):
    """Likes minus dislikes in the item's category over all the asker's opinions: -1..1."""

    weight = "category"

    def score(self, context: RankingContext) -> np.ndarray:
        total = sum(scale * profile.weight_total for profile, scale in context.profiles)
        if total <= 0:
            return np.zeros(len(context.positions))
        model = context.model
        categories = [model.catalog[model.ids[p]].category for p in context.positions]
        return np.array([
            sum(scale * profile.categories[category] for profile, scale in context.profiles) / total
            for category in categories
        ])


class Price(PersonalScorer):
    """How close the price is to those of the items the asker liked, on a log scale: 1 at their centre, 1/e at a
    factor e (2.7x) away; 0 without a price or liked prices."""

    weight = "price"

    def score(self, context: RankingContext) -> np.ndarray:
        log_sum = sum(scale * profile.log_price_sum for profile, scale in context.profiles)
        weight = sum(scale * profile.priced_weight for profile, scale in context.profiles)
        model = context.model
        prices = [model.catalog[model.ids[p]].price for p in context.positions]
        if weight <= 0:
            return np.zeros(len(prices))
        return np.array([math.exp(-abs(math.log(price) - log_sum / weight)) if price else 0.0 for price in prices])


class CatalogScorer(PersonalScorer):
    """A collaborative scorer: it scores every catalog item, its best ones join the candidates, and a candidate's
    score is its share of the best candidate's."""

    def catalog_scores(self, context: RankingContext) -> np.ndarray | None:
        """A score per catalog item, None when it has nothing to say (no model, no history)."""
        raise NotImplementedError

    def score(self, context: RankingContext) -> np.ndarray:
        scores = context.catalog_scores.get(self.weight)
        if scores is None or not len(context.positions):
            return np.zeros(len(context.positions))
        scores = scores[context.positions]
        top = scores.max()
        return scores / top if top > 0 else np.zeros(len(scores))


class CoOccurrenceScorer(CatalogScorer):
    """Co-occurrence with the items the request names and, by `liked_collaborative`, the ones the asker liked."""

    weight = "collaborative"

    def reads_likes(self, settings: RerankSettings) -> bool:
        return settings.liked_collaborative > 0

    def catalog_scores(self, context: RankingContext) -> np.ndarray:
        model, liked_weight = context.model, context.settings.liked_collaborative
        positives: dict[int, float] = defaultdict(float)
        for profile, scale in context.profiles:
            for item in profile.positives():
                if item in model.position:
                    positives[model.position[item]] += liked_weight * scale * profile.weight(item)
        for item in context.references:
            if item in model.position:
                positives[model.position[item]] += 1.0
        return model.co_occurrence.scores(positives, model.liked_by)


def named_then(context: RankingContext, own: list[str]) -> list[int]:
    """Catalog positions of the items the request names that are not in `own` (said now, so the latest), then of
    `own` (latest first). A named item already in `own` keeps its place: the order in which a request names films
    says nothing of when the asker met them."""
    model = context.model
    mine = [model.position[item] for item in own if item in model.position]
    known = set(mine)
    named = [model.position[item] for item in context.references if item in model.position]
    return [*(position for position in named if position not in known), *mine]


class LearnedScorer(CatalogScorer):
    """The learned model's scores for the asker's history: their likes and purchases latest first (this session's
    included), each earlier one counting less, after the items the request names."""

    weight = "learned"

    def catalog_scores(self, context: RankingContext) -> np.ndarray | None:
        history = named_then(context, context.user.recent_likes() if context.user else [])
        weights = history_weights(history, len(context.model.ids), context.settings.history_half_life)
        return context.model.learned.scores("learned", weights)


class SequentialScorer(CatalogScorer):
    """What tends to follow the items the asker engaged with last (sequential rules): their latest
    `sequence_length` clicks, likes, dislikes and purchases (a user's, else this session's), each earlier one
    counting less, after the items the request names. A disliked film was still watched: on ML-1M what came next
    followed the whole rating sequence better than the likes alone (HR@10 0.314 against 0.279 beside EASE)."""

    weight = "sequential"

    def catalog_scores(self, context: RankingContext) -> np.ndarray | None:
        asker = context.profiles[0][0] if context.profiles else None
        own = asker.in_time_order()[::-1][: context.settings.sequence_length] if asker else []
        history = named_then(context, own)[: context.settings.sequence_length]
        weights = history_weights(history, len(context.model.ids), context.settings.sequence_half_life)
        return context.model.learned.scores("sequential", weights)


class Popularity(ImpersonalScorer):
    """How many users hold the item positive, on a log scale against the most liked item."""

    weight = "popularity"

    def score(self, context: RankingContext) -> np.ndarray:
        liked_by = context.model.liked_by
        return np.log1p(liked_by[context.positions]) / math.log1p(max(liked_by.max(), 1))


class Exploration(ImpersonalScorer):
    """A Thompson sample from the item's Beta(1 + positives, 1 + negatives) posterior, so new and little-shown
    items get a chance; an impression without a positive event counts `unclicked_impression` of a negative."""

    weight = "exploration"

    def __init__(self, seed: int | None):
        self.rng = np.random.default_rng(seed)

    def score(self, context: RankingContext) -> np.ndarray:
        model, index = context.model, context.positions
        liked = model.liked_by[index]
        failures = model.disliked_by[index] + context.settings.unclicked_impression * np.maximum(
            model.impressions[index] - liked, 0
        )
        return self.rng.beta(1 + liked, 1 + failures)


def default_scorers(settings: RerankSettings) -> list[Scorer]:
    """Every weighted part of `RerankSettings`; the collaborative ones draw candidates in this order."""
    return [
        Similarity(), Preferences(), Preference(), Category(), CoOccurrenceScorer(), LearnedScorer(),
        SequentialScorer(), Price(), Popularity(), Exploration(settings.seed),
    ]
