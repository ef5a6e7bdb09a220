"""Real-time personalization: feedback events -> online profiles and item statistics -> re-ranked candidates.

`FeedbackModel` holds everything the events imply, updated on every event (microseconds) and
caught up from the store before every ranking, so what another process wrote counts too:
- per user (long-term) and per session (short-term), the opinion of each item: the latest like,
  dislike or purchase by event time (a late-arriving older event never overrides a newer one), else
  a click; from these a Rocchio preference vector and category affinities;
- per item, how many users hold it positive or negative, and how often it was shown;
- item-item co-occurrence of positive opinions (users who liked both), built in one sparse product
  from the store at start-up and updated pair by pair as opinions change.

`Reranker` blends, per candidate, the weighted components of `RerankSettings`.
"""

from __future__ import annotations

import math
import threading
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from recchat.catalog import Catalog
from recchat.collaborative import LearnedModel, history_weights
from recchat.config import LearnedSettings, RerankSettings
from recchat.feedback import FeedbackEvent, FeedbackStore
from recchat.models import Constraints, Item
from recchat.retrieval import Candidate, item_matches

if TYPE_CHECKING:
    from scipy.sparse import csr_matrix

OPINION_WEIGHTS = {"like": 1.0, "purchase": 1.0, "dislike": -1.0}
CLICK_WEIGHT = 0.5
"""A click says less than a like; it counts only while the item has no like, dislike or purchase."""
MAX_SESSIONS = 10_000


@dataclass
class Profile:
    """One user's or one session's opinions of items, and the sums the ranking reads."""

    explicit: dict[str, tuple[float, float]] = field(default_factory=dict)
    """item -> (weight, event time) of the latest like, dislike or purchase."""
    clicked: set[str] = field(default_factory=set)
    purchased: set[str] = field(default_factory=set)
    preference: np.ndarray | None = None
    """Sum of liked item vectors minus `disliked` x the disliked ones (Rocchio)."""
    categories: Counter = field(default_factory=Counter)
    weight_total: float = 0.0
    log_price_sum: float = 0.0
    """Sum over liked items with a price of weight x log(price): the centre of the prices the user likes."""
    priced_weight: float = 0.0

    def weight(self, item_id: str) -> float:
        if item_id in self.explicit:
            return self.explicit[item_id][0]
        return CLICK_WEIGHT if item_id in self.clicked else 0.0

    def positives(self) -> list[str]:
        return [item for item in {*self.explicit, *self.clicked} if self.weight(item) > 0]

    def engaged(self) -> set[str]:
        """Every item with an opinion or a click: liked, disliked, bought or clicked."""
        return {*self.explicit, *self.clicked}

    def recent_likes(self) -> list[str]:
        """Liked and bought items, latest first; of two at the same time, the one that arrived later."""
        liked = [(time, item) for item, (weight, time) in reversed(self.explicit.items()) if weight > 0]
        return [item for _, item in sorted(liked, key=lambda pair: pair[0], reverse=True)]  # stable: keeps ties

    def disliked(self) -> set[str]:
        return {item for item, (weight, _) in self.explicit.items() if weight < 0}


class FeedbackModel:
    """What the feedback log implies, kept current event by event."""

    def __init__(
        self, catalog: Catalog, vectors: np.ndarray, settings: RerankSettings, learned: LearnedSettings | None = None
    ):
        """`vectors`: unit-length item vectors in catalog order; `learned`: the model fitted on the whole log."""
        self.catalog = catalog
        self.settings = settings
        self.learned = LearnedModel(learned or LearnedSettings())
        self.ids: list[str] = [item.id for item in catalog]
        self.position: dict[str, int] = {item_id: i for i, item_id in enumerate(self.ids)}
        self.vectors = np.asarray(vectors, dtype=np.float32)
        self.users: dict[str, Profile] = {}
        self.sessions: OrderedDict[str, Profile] = OrderedDict()
        self._reset_counts()
        self.lock = threading.RLock()
        self.last_seq = 0
        self.generation: int | None = None

    def _reset_counts(self) -> None:
        n = len(self.ids)
        self.liked_by = np.zeros(n)
        self.disliked_by = np.zeros(n)
        self.impressions = np.zeros(n)
        self.co_base = None  # sparse counts from the last rebuild
        self.co_live: defaultdict[int, Counter] = defaultdict(Counter)

    def add_items(self, items: Sequence[Item], vectors: np.ndarray) -> None:
        """New catalog items: rankable at once, with empty statistics (exploration gives them their chance)."""
        with self.lock:
            for item in items:
                self.position[item.id] = len(self.ids)
                self.ids.append(item.id)
            grow = len(items)
            self.vectors = np.vstack([self.vectors, np.asarray(vectors, dtype=np.float32)])
            for name in ("liked_by", "disliked_by", "impressions"):
                setattr(self, name, np.concatenate([getattr(self, name), np.zeros(grow)]))

    # --- keeping current ------------------------------------------------------------------

    def sync(self, store: FeedbackStore) -> None:
        """Apply what arrived in the store since the last call; rebuild when events were deleted."""
        with self.lock:
            generation = store.generation()
            if generation != self.generation:
                self.rebuild(store)
                return
            events = store.events_after(self.last_seq)
            for event in events:
                self.apply(event)
                self.last_seq = event.seq
        learned = sum(event.kind != "impression" for event in events)
        if learned:
            self.learned.note(learned, self.learned_interactions)

    def rebuild(self, store: FeedbackStore) -> None:
        """Everything from the store: opinions event by event, co-occurrence in one sparse product, and the learned
        model (fitted now at start-up; refitted in the background after deletions)."""
        with self.lock:
            self.generation = store.generation()
            self.users, self.sessions = {}, OrderedDict()
            self._reset_counts()
            self.last_seq = 0
            for event in store.events_after(0):
                self.apply(event, pairs=False)
                self.last_seq = event.seq
            users_by_items = self.interactions(Profile.positives)
            co = (users_by_items.T @ users_by_items).tocsr()
            co.setdiag(0)
            co.eliminate_zeros()
            self.co_base = co
        if self.learned.current is None:  # at start-up: fitted before the first turn
            self.learned.fit(self.learned_interactions())
        else:  # events were deleted: refit in the background, turns go on with the current model
            self.learned.note(self.learned.settings.refit_events, self.learned_interactions)

    def learned_interactions(self) -> csr_matrix:
        """What the learned model is fitted on: every item each user engaged with, liked or not. Which items a user
        chose to look at says much about what they look at next: on ML-1M, EASE fitted on likes and dislikes
        reached HR@10 0.245 against 0.232 on likes alone (recency-weighted likes as the history in both)."""
        return self.interactions(Profile.engaged)

    def interactions(self, items_of: Callable[[Profile], Iterable[str]]) -> csr_matrix:
        """Users x items, 1 where `items_of(profile)` holds the item. The lock is taken per user, so a background
        refit copying a large log never holds up a turn for long."""
        from scipy.sparse import csr_matrix

        rows, cols = [], []
        with self.lock:
            users = list(self.users.values())
            items = len(self.ids)
        for row, profile in enumerate(users):
            with self.lock:
                positions = [self.position[item] for item in items_of(profile) if item in self.position]
            rows.extend([row] * len(positions))
            cols.extend(positions)
        return csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(max(1, len(users)), items))

    def apply(self, event: FeedbackEvent, pairs: bool = True) -> None:
        """One event's effect. `pairs=False` skips co-occurrence (a rebuild computes it in bulk)."""
        with self.lock:
            position = self.position.get(event.item_id)
            if event.kind == "impression":
                if position is not None:
                    self.impressions[position] += 1
                return
            user = self.users.setdefault(event.user_id, Profile())
            before, after = self._update(user, event)
            if position is not None and before != after:
                self.liked_by[position] += (after > 0) - (before > 0)
                self.disliked_by[position] += (after < 0) - (before < 0)
                if pairs and (before > 0) != (after > 0):
                    change = 1 if after > 0 else -1
                    for other in user.positives():
                        other_position = self.position.get(other)
                        if other_position is not None and other_position != position:
                            self.co_live[position][other_position] += change
                            self.co_live[other_position][position] += change
            if event.session_id:
                session = self.sessions.get(event.session_id) or Profile()
                self.sessions[event.session_id] = session
                self.sessions.move_to_end(event.session_id)
                while len(self.sessions) > MAX_SESSIONS:
                    self.sessions.popitem(last=False)
                self._update(session, event)

    def _update(self, profile: Profile, event: FeedbackEvent) -> tuple[float, float]:
        item = event.item_id
        before = profile.weight(item)
        if event.kind == "click":
            profile.clicked.add(item)
        else:
            if event.kind == "purchase":
                profile.purchased.add(item)
            latest = profile.explicit.get(item)
            if latest is None or event.time >= latest[1]:
                profile.explicit[item] = (OPINION_WEIGHTS[event.kind], event.time)
        after = profile.weight(item)
        position = self.position.get(item)
        if position is not None and before != after:
            vector = self.vectors[position]
            contribution = self._rocchio(after) - self._rocchio(before)
            profile.preference = (profile.preference if profile.preference is not None else 0) + contribution * vector
            catalog_item = self.catalog[item]
            profile.categories[catalog_item.category] += after - before
            profile.weight_total += abs(after) - abs(before)
            if catalog_item.price:
                liked_change = max(after, 0) - max(before, 0)
                profile.log_price_sum += liked_change * math.log(catalog_item.price)
                profile.priced_weight += liked_change
        return before, after

    def _rocchio(self, weight: float) -> float:
        return weight if weight >= 0 else weight * self.settings.disliked

    # --- reading --------------------------------------------------------------------------

    def session_likes(self, session_id: str) -> list[str]:
        """Items liked or bought in this session, latest first."""
        with self.lock:
            session = self.sessions.get(session_id)
            return session.recent_likes() if session else []

    def hidden(self, user_id: str) -> set[str]:
        """Items not to show this user again: disliked and bought ones, as the settings say."""
        with self.lock:
            profile = self.users.get(user_id)
            if profile is None:
                return set()
            hidden = profile.disliked() if self.settings.hide_disliked else set()
            return hidden | (profile.purchased if self.settings.hide_purchased else set())

    def co_occurrence(self, a: int, b: int) -> float:
        """Cosine co-occurrence of two items: users who liked both over sqrt(likers of a x likers of b)."""
        count = self.co_live.get(a, {}).get(b, 0)
        if self.co_base is not None and max(a, b) < self.co_base.shape[0]:
            count += self.co_base[a, b]
        return max(0.0, float(count)) / math.sqrt(max(self.liked_by[a], 1) * max(self.liked_by[b], 1))

    def co_occurrence_scores(self, positives: dict[int, float]) -> np.ndarray:
        """Per item, the weighted sum over the positive items of cosine co-occurrence (users who liked both,
        over the square root of each item's number of likers)."""
        n = len(self.ids)
        likers = np.maximum(self.liked_by, 0)
        scores = np.zeros(n)
        if not positives:
            return scores
        base_rows = [p for p in positives if self.co_base is not None and p < self.co_base.shape[0]]
        if base_rows:
            weights = np.array([positives[p] / math.sqrt(max(likers[p], 1)) for p in base_rows])
            summed = np.asarray(self.co_base[base_rows].T @ weights).ravel()
            scores[: len(summed)] += summed
        for p, weight in positives.items():
            live = self.co_live.get(p)
            if live:
                scale = weight / math.sqrt(max(likers[p], 1))
                for other, count in live.items():
                    scores[other] += count * scale
        with np.errstate(divide="ignore", invalid="ignore"):
            scores = np.where(likers > 0, scores / np.sqrt(np.maximum(likers, 1)), 0.0)
        return np.maximum(scores, 0)


@dataclass(frozen=True)
class Ranked:
    candidate: Candidate
    because: str | None


class Reranker:
    """Candidates from retrieval (plus co-occurring items) -> ordered by the blended score."""

    def __init__(self, model: FeedbackModel, settings: RerankSettings, min_score: float):
        self.model = model
        self.settings = settings
        self.min_score = min_score
        self.rng = np.random.default_rng(settings.seed)

    def rank(
        self, pool: Sequence[Candidate], query_vector: np.ndarray, constraints: Constraints, k: int,
        user_id: str | None = None, session_id: str | None = None, references: Iterable[str] = (),
    ) -> list[Ranked]:
        """The k best candidates. `references` are items the user named as liked in the request."""
        model, weights = self.model, self.settings
        with model.lock:
            user = model.users.get(user_id) if user_id else None
            session = model.sessions.get(session_id) if session_id else None
            profiles = [(profile, scale) for profile, scale in ((user, 1.0), (session, weights.session)) if profile]
            positives: dict[int, float] = defaultdict(float)
            explainers: set[str] = set()  # liked items that can move this ranking, so can explain a move
            likes_count = (
                weights.liked_collaborative or weights.profile or weights.category or weights.price or weights.learned
            )
            for profile, scale in profiles:
                for item in profile.positives():
                    if item in model.position:
                        positives[model.position[item]] += weights.liked_collaborative * scale * profile.weight(item)
                        if likes_count:
                            explainers.add(item)
            for item in references:
                if item in model.position:
                    positives[model.position[item]] += 1.0
                    explainers.add(item)
            collaborative = model.co_occurrence_scores(positives) if weights.collaborative else None
            learned = self._learned_scores(user, references) if weights.learned else None

            positions = [model.position[c.item.id] for c in pool if c.item.id in model.position]
            for followers in (collaborative, learned):
                if followers is not None and followers.any():
                    positions += self._following(followers, set(positions), constraints, query_vector)
            if not positions:
                return []
            index = np.array(positions)
            similarity = np.clip(model.vectors[index] @ np.asarray(query_vector, dtype=np.float32), 0, 1)
            score = weights.similarity * similarity
            personal = np.zeros(len(index))
            preference = _preference(profiles)
            if weights.profile and preference is not None and np.linalg.norm(preference) > 0:
                personal += weights.profile * (model.vectors[index] @ (preference / np.linalg.norm(preference)))
            if weights.category and profiles:
                personal += weights.category * np.array([
                    _category_affinity(model.catalog[model.ids[p]].category, profiles) for p in positions
                ])
            for weight, scores in ((weights.collaborative, collaborative), (weights.learned, learned)):
                if scores is not None:
                    top = scores[index].max()
                    if top > 0:
                        personal += weight * scores[index] / top
            if weights.price and profiles:
                personal += weights.price * np.array([
                    _price_affinity(model.catalog[model.ids[p]].price, profiles) for p in positions
                ])
            score = score + personal
            if weights.popularity:
                score += weights.popularity * np.log1p(model.liked_by[index]) / math.log1p(max(model.liked_by.max(), 1))
            if weights.exploration:
                failures = model.disliked_by[index] + weights.unclicked_impression * np.maximum(
                    model.impressions[index] - model.liked_by[index], 0
                )
                score += weights.exploration * self.rng.beta(1 + model.liked_by[index], 1 + failures)
            order = np.argsort(-score, kind="stable")[:k]
            by_similarity = {p: rank for rank, p in enumerate(np.argsort(-similarity, kind="stable"))}
            liked = sorted(explainers)
            ranked = []
            for rank, p in enumerate(order):
                item = model.catalog[model.ids[positions[p]]]
                moved_up = rank < by_similarity[p] and personal[p] > 0
                because = self._because(positions[p], liked, collaborative) if moved_up and liked else None
                ranked.append(Ranked(Candidate(item, float(similarity[p])), because))
            return ranked

    def _learned_scores(self, user: Profile | None, references: Iterable[str]) -> np.ndarray | None:
        """The learned model's scores for the user's history: their likes and purchases latest first (this
        session's included), each earlier one counting less, after the items the request names that are not among
        them (said now, so the latest). A named item the user already liked keeps its place: the order in which a
        request names films says nothing of when they were liked."""
        model = self.model
        liked = [model.position[item] for item in (user.recent_likes() if user else []) if item in model.position]
        known = set(liked)
        named = [model.position[item] for item in references if item in model.position]
        history = [*(position for position in named if position not in known), *liked]
        return model.learned.scores(history_weights(history, len(model.ids), self.settings.history_half_life))

    def _following(
        self, scores: np.ndarray, taken: set[int], constraints: Constraints, query_vector: np.ndarray
    ) -> list[int]:
        """Items a collaborative signal puts first (co-occurrence with the user's likes, the learned model) that
        pass the constraints and are not far off the request."""
        model = self.model
        # Deeper by the excluded items: for a user who has seen hundreds, the best-scored ones are mostly seen.
        depth = min(len(scores), self.settings.pool * 3 + len(constraints.excluded_ids))
        top = np.argpartition(-scores, depth - 1)[:depth]
        top = top[np.argsort(-scores[top])]
        similarity = model.vectors[top] @ np.asarray(query_vector, dtype=np.float32)
        found = []
        for p, sim in zip(top, similarity):
            if scores[p] <= 0 or len(found) >= self.settings.pool:
                break
            item = model.catalog.get(model.ids[p])
            if p not in taken and sim >= self.min_score and item is not None and item_matches(item, constraints):
                found.append(int(p))
        return found

    def _because(self, position: int, liked: list[str], collaborative: np.ndarray | None) -> str | None:
        """The liked item that most explains this one: the strongest co-occurrence, else the closest vector."""
        model = self.model
        def strength(item_id: str) -> float:
            p = model.position[item_id]
            pair = model.co_occurrence(p, position) if collaborative is not None else 0.0
            return pair if pair > 0 else 1e-3 * float(model.vectors[p] @ model.vectors[position])  # below any pair

        others = [item_id for item_id in liked if model.position[item_id] != position]
        if not others:
            return None
        return f"because you liked {model.catalog[max(others, key=strength)].title}"


Scaled = list[tuple[Profile, float]]
"""The user's long-term profile (x 1) and the session's (x `session`), those that exist."""


def _preference(profiles: Scaled) -> np.ndarray | None:
    parts = [(profile.preference, scale) for profile, scale in profiles if profile.preference is not None]
    return sum(scale * value for value, scale in parts) if parts else None


def _category_affinity(category: str, profiles: Scaled) -> float:
    """Likes minus dislikes in this category over all opinions: -1..1."""
    net = sum(scale * profile.categories[category] for profile, scale in profiles)
    total = sum(scale * profile.weight_total for profile, scale in profiles)
    return net / total if total > 0 else 0.0


def _price_affinity(price: float | None, profiles: Scaled) -> float:
    """How close a price is to the prices of the items the user liked, on a log scale: 1 at their centre, 1/e at a
    factor e (2.7x) away; 0 without a price or liked prices."""
    log_sum = sum(scale * profile.log_price_sum for profile, scale in profiles)
    weight = sum(scale * profile.priced_weight for profile, scale in profiles)
    if not price or weight <= 0:
        return 0.0
    return math.exp(-abs(math.log(price) - log_sum / weight))
