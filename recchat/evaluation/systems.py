"""The systems the offline evaluation (`offline.py`) and the feedback replay (`replay.py`) compare, behind one
protocol: a user starts, the system ranks items for their request, and hears their reactions.

A user the training data knows is ranked from their own history (the offline protocol); a new user from the films
their request names and what they liked since (the replay)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from recchat.movies import LIKE_AT, Rating

if TYPE_CHECKING:
    from scipy.sparse import csr_matrix


class System(Protocol):
    name: str

    def start(self, user: str, named: Sequence[str]) -> None:
        """A user begins; `named` are the films their request names, oldest first."""

    def rank(self, request: str, excluded: Collection[str], depth: int) -> list[str]:
        """The `depth` best items for the request, none of the `excluded`."""

    def react(self, item: str, kind: str) -> None:
        """The user liked, clicked or disliked a shown item."""


class Baseline:
    """A system that needs no start and hears no reactions."""

    name: str

    def start(self, user: str, named: Sequence[str]) -> None:
        pass

    def react(self, item: str, kind: str) -> None:
        pass


class Popularity(Baseline):
    name = "popularity"

    def __init__(self, training: dict[str, list[Rating]]):
        counts = Counter(rating.item for ratings in training.values() for rating in ratings)
        self._ranked = [item for item, _ in counts.most_common()]

    def rank(self, request: str, excluded: Collection[str], depth: int) -> list[str]:
        return take_unseen(self._ranked, excluded, depth)


class EmbeddingSimilarity(Baseline):
    """A plain vector search: the request text, embedded, against the same Chroma index recchat uses."""

    name = "embedding"

    def __init__(self, index):
        self._index = index

    def rank(self, request: str, excluded: Collection[str], depth: int) -> list[str]:
        hits = self._index.nearest(self._index.encoder.encode_queries([request])[0], depth + len(excluded))
        return take_unseen((item for item, _ in hits), excluded, depth)


class ItemKNN:
    """Item-based collaborative filtering: cosine similarity of items' positive-rating user vectors, summed over the
    user's liked films (their training likes, else the films they named) and every film they like since."""

    name = "item-knn"

    def __init__(self, training: dict[str, list[Rating]]):
        self._items, self._position, matrix = rating_matrix(training, lambda rating: rating >= LIKE_AT)
        self._liked = {
            user: sorted({r.item for r in ratings if r.rating >= LIKE_AT}) for user, ratings in training.items()
        }
        overlap = (matrix.T @ matrix).toarray()
        norms = np.sqrt(np.diag(overlap)).astype(np.float32)
        norms[norms == 0] = 1
        self.similarity = overlap / norms[:, None] / norms[None, :]
        np.fill_diagonal(self.similarity, 0)
        self.liked: list[str] = []

    def start(self, user: str, named: Sequence[str]) -> None:
        self.liked = list(self._liked.get(user) or named)

    def rank(self, request: str, excluded: Collection[str], depth: int) -> list[str]:
        rows = [self._position[item] for item in self.liked if item in self._position]
        if not rows:
            return []
        return _best(self.similarity[rows].sum(axis=0), self._items, self._position, excluded, depth)

    def react(self, item: str, kind: str) -> None:
        if kind == "like":
            self.liked.append(item)

    def similarity_of(self, a: str, b: str) -> float:
        return float(self.similarity[self._position[a], self._position[b]])


class Learned:
    """A learned model of `recchat.collaborative` fitted on the same training ratings recchat's log holds: every
    rating (likes, clicks, dislikes) as an interaction, in time order. A user's history: their likes latest first
    (`sequence=False`) or every film they rated latest first (`sequence=True`), else the films they named, the last
    named first; at most `length`, each earlier one halving every `half_life` (0: all alike); a film liked since
    goes first."""

    def __init__(
        self, name: str, model, training: dict[str, list[Rating]], half_life: float, sequence: bool = False,
        length: int | None = None,
    ):
        from recchat.collaborative import TrainingLog

        self.name, self.model, self.half_life, self.length = name, model, half_life, length
        self._items, self._position, matrix = rating_matrix(training, lambda rating: True)
        self._history = {
            user: [r.item for r in reversed(ratings) if sequence or r.rating >= LIKE_AT]
            for user, ratings in training.items()
        }
        sequences = [np.array([self._position[r.item] for r in ratings]) for ratings in training.values()]
        model.fit(TrainingLog(matrix, sequences))
        self.history: list[str] = []

    def start(self, user: str, named: Sequence[str]) -> None:
        self.history = list(self._history.get(user) or reversed(named))

    def rank(self, request: str, excluded: Collection[str], depth: int) -> list[str]:
        from recchat.collaborative import history_weights

        history = [self._position[item] for item in self.history if item in self._position][: self.length]
        if not history:
            return []
        scores = self.model.score(history_weights(history, len(self._items), self.half_life)).astype(np.float64)
        return _best(scores, self._items, self._position, excluded, depth)

    def react(self, item: str, kind: str) -> None:
        if kind == "like":
            self.history.insert(0, item)


def learned_baselines(training: dict[str, list[Rating]], names: Iterable[str]) -> dict[str, Callable[[], Learned]]:
    """The learned baselines asked for, by name, each made when called: 'ease' (plain), 'ease-recency' (history
    half-life 5, as recchat's default), 'als' (`implicit`) and 'sequential-rules' (what follows the latest films
    rated, as recchat's sequential scorer reads them)."""
    from recchat.collaborative import ALS, EASE, SequentialRules
    from recchat.config import LearnedSettings, RerankSettings

    learned, rerank = LearnedSettings(), RerankSettings()
    half_life = rerank.history_half_life
    makers = {
        "ease": lambda: Learned("ease", EASE(learned.ease_l2), training, 0),
        "ease-recency": lambda: Learned("ease-recency", EASE(learned.ease_l2), training, half_life),
        "als": lambda: Learned(
            "als", ALS(learned.als_factors, learned.als_regularization, learned.als_iterations), training, half_life
        ),
        "sequential-rules": lambda: Learned(
            "sequential-rules", SequentialRules(learned.sequence_window, learned.sequence_decay), training,
            rerank.sequence_half_life, sequence=True, length=rerank.sequence_length,
        ),
    }
    return {name: makers[name] for name in names if name in makers}


@dataclass
class ReplyQuality:
    """What was wrong with the raw LLM output, counted per reply (the user never sees these)."""

    replies: int = 0
    hallucinated: int = 0
    duplicated: int = 0
    format_errors: int = 0
    outside_catalog: int = 0
    llm_answered: int = 0

    def rates(self) -> dict[str, float]:
        n = max(1, self.replies)
        return {
            "hallucination_rate": self.hallucinated / n,
            "duplicate_rate": self.duplicated / n,
            "format_error_rate": self.format_errors / n,
            "outside_catalog_rate": self.outside_catalog / n,
            "llm_answered_rate": self.llm_answered / n,
        }


class RecChatSystem:
    """recchat through its public chat API, as configured: one session per user, the reply's picks, then its ranked
    candidates for the same parsed request down to the depth; reactions are feedback calls unless `feedback` is
    off. `user_id` maps a case's user to the user id the bot knows (e.g. the imported history's), or None."""

    def __init__(self, bot, name: str = "recchat", user_id: Callable[[str], str | None] = lambda user: None,
                 feedback: bool = True):
        self.bot, self.name, self.user_id, self.feedback = bot, name, user_id, feedback
        self.quality = ReplyQuality()
        self.session = ""

    def start(self, user: str, named: Sequence[str]) -> None:
        self.session = self.bot.new_session(user_id=self.user_id(user))

    def rank(self, request: str, excluded: Collection[str], depth: int) -> list[str]:
        reply = self.bot.chat(request, self.session, exclude_ids=list(excluded))
        meta = reply.metadata
        shown = [item.id for item in reply.items]
        self.quality.replies += 1
        self.quality.hallucinated += bool(meta.dropped_ids)
        self.quality.duplicated += bool(meta.repeated_ids)
        unusable = meta.source == "retrieval" and (meta.fallback_reason or "").endswith("no usable pick")
        self.quality.format_errors += unusable
        self.quality.outside_catalog += any(item_id not in self.bot.catalog for item_id in shown)
        self.quality.llm_answered += meta.source == "llm"
        if len(shown) >= depth:
            return shown[:depth]
        tail, _ = self.bot.candidates(meta.request, meta.user_id, meta.session_id, k=depth)
        return (shown + [candidate.item.id for candidate in tail if candidate.item.id not in shown])[:depth]

    def react(self, item: str, kind: str) -> None:
        if self.feedback:
            self.bot.feedback(kind, item, session_id=self.session)


def rating_matrix(
    training: dict[str, list[Rating]], keep: Callable[[float], bool]
) -> tuple[list[str], dict[str, int], csr_matrix]:
    """Every item rated in `training` (sorted), each one's position, and users x items: 1 where `keep(rating)`."""
    from scipy.sparse import csr_matrix

    items = sorted({rating.item for ratings in training.values() for rating in ratings})
    position = {item: number for number, item in enumerate(items)}
    rows, cols = [], []
    for row, ratings in enumerate(training.values()):
        kept = {position[r.item] for r in ratings if keep(r.rating)}
        rows.extend([row] * len(kept))
        cols.extend(kept)
    ones = np.ones(len(rows), dtype=np.float32)
    return items, position, csr_matrix((ones, (rows, cols)), shape=(len(training), len(items)))


def take_unseen(ranked: Iterable[str], excluded: Collection[str], depth: int) -> list[str]:
    out = []
    for item in ranked:
        if item not in excluded:
            out.append(item)
            if len(out) == depth:
                break
    return out


def _best(
    scores: np.ndarray, items: list[str], position: dict[str, int], excluded: Iterable[str], depth: int
) -> list[str]:
    """The `depth` best-scored items, leaving out the `excluded`."""
    for item in excluded:
        if item in position:
            scores[position[item]] = -np.inf
    depth = min(depth, len(scores) - 1)
    top = np.argpartition(-scores, depth)[:depth]
    return [items[i] for i in top[np.argsort(-scores[top])] if np.isfinite(scores[i])]
