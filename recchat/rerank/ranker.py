"""Candidates from retrieval, plus the items the collaborative scorers put first -> ordered by the weighted sum of
the scorers, each moved-up item with the item the user liked (or bought, or looked at) that explains it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from recchat.config import RerankSettings
from recchat.models import Constraints, Item
from recchat.rerank.profiles import DONE_WITH
from recchat.rerank.scorers import CatalogScorer, RankingContext, Scorer, default_scorers
from recchat.rerank.state import FeedbackModel
from recchat.retrieval import Candidate, item_matches


@dataclass(frozen=True)
class Ranked:
    candidate: Candidate
    because: str | None


class Reranker:
    """Candidates from retrieval (plus collaborative followers) -> ordered by the weighted sum of the scorers."""

    def __init__(
        self, model: FeedbackModel, settings: RerankSettings, min_score: float, scorers: Sequence[Scorer] | None = None
    ):
        """`scorers`: the weighted parts (default: one per weight in `settings`); a weight of 0 skips one."""
        self.model = model
        self.settings = settings
        self.min_score = min_score
        self.scorers = list(scorers) if scorers is not None else default_scorers(settings)

    def rank(
        self, pool: Sequence[Candidate], query_vector: np.ndarray, constraints: Constraints, k: int,
        user_id: str | None = None, session_id: str | None = None, references: Iterable[str] = (),
        preferences: dict[str, list[str]] | None = None, in_kind: Callable[[Item], bool] | None = None,
    ) -> list[Ranked]:
        """The k best candidates. `references` are items the user named as liked in the request; `preferences` the
        facet values it wishes for, which count for the items of the kind it names (`in_kind`) when any is here."""
        model, settings = self.model, self.settings
        weighted = [(scorer, getattr(settings, scorer.weight)) for scorer in self.scorers]
        active = [(scorer, weight) for scorer, weight in weighted if weight]
        with model.lock:
            user = model.user(user_id) if user_id else None
            session = model.sessions.get(session_id) if session_id else None
            profiles = [(profile, scale) for profile, scale in ((user, 1.0), (session, settings.session)) if profile]
            context = RankingContext(
                model, settings, user, profiles, list(references), query_vector, preferences=preferences or {},
                in_kind=in_kind,
            )

            positions = [model.position[c.item.id] for c in pool if c.item.id in model.position]
            for scorer, _ in active:
                if isinstance(scorer, CatalogScorer):
                    followers = context.catalog_scores[scorer.weight] = scorer.catalog_scores(context)
                    if followers is not None and followers.any():
                        positions += self._following(followers, set(positions), constraints, query_vector)
            if not positions:
                return []
            context.positions = np.array(positions)
            similarity = model.vectors[context.positions] @ np.asarray(query_vector, dtype=np.float32)
            # plus what the request's exact words (a model number, a title) add to retrieval's own candidates
            words = [c.words for c in pool if c.item.id in model.position]
            similarity[: len(words)] += words
            similarity = context.similarity = np.clip(similarity, 0, 1)

            personal, impersonal = np.zeros(len(positions)), np.zeros(len(positions))
            for scorer, weight in active:
                part = weight * scorer.score(context)
                if scorer.personal:
                    personal += part
                else:
                    impersonal += part
            order = np.argsort(-(impersonal + personal), kind="stable")[:k]
            by_similarity = {p: rank for rank, p in enumerate(np.argsort(-similarity, kind="stable"))}
            explainers = self._explainers(context, active)
            pairs = "collaborative" in context.catalog_scores  # co-occurrence counts in this ranking
            ranked = []
            for rank, p in enumerate(order):
                item = model.catalog[model.ids[positions[p]]]
                moved_up = rank < by_similarity[p] and personal[p] > 0
                because = self._because(positions[p], explainers, pairs) if moved_up and explainers else None
                ranked.append(Ranked(Candidate(item, float(similarity[p])), because))
            return ranked

    def _following(
        self, scores: np.ndarray, taken: set[int], constraints: Constraints, query_vector: np.ndarray
    ) -> list[int]:
        """Items a collaborative scorer puts first that pass the constraints and are not far off the request."""
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

    @staticmethod
    def _explainers(context: RankingContext, active: list[tuple[Scorer, float]]) -> dict[str, str]:
        """Items the user holds positive that can move this ranking, so can explain a move, each with what the user
        did with it: the items the request names ('liked'), and, when a scorer reads them, the asker's purchases
        ('bought': a purchase may follow no like), likes and clicks ('looked at')."""
        model = context.model
        done: dict[str, str] = {}
        if any(scorer.reads_likes(context.settings) for scorer, _ in active):
            for profile, _ in context.profiles:
                for item in profile.positives():
                    if item in model.position:
                        strongest = max(done.get(item, DONE_WITH[0]), profile.done_with(item), key=DONE_WITH.index)
                        done[item] = strongest
        done.update((item, "liked") for item in context.references if item in model.position)  # as the request says
        return dict(sorted(done.items()))

    def _because(self, position: int, explainers: dict[str, str], pairs: bool) -> str | None:
        """The item the user holds positive that most explains this one: the strongest co-occurrence, else the closest
        vector; said with what the user did with it."""
        model = self.model

        def strength(item_id: str) -> float:
            p = model.position[item_id]
            pair = model.co_occurrence.pair(p, position, model.liked_by) if pairs else 0.0
            return pair if pair > 0 else 1e-3 * float(model.vectors[p] @ model.vectors[position])  # below any pair

        others = [item_id for item_id in explainers if model.position[item_id] != position]
        if not others:
            return None
        explaining = max(others, key=strength)
        return f"because you {explainers[explaining]} {model.catalog[explaining].title}"
