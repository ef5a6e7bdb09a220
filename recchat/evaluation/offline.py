"""Offline evaluation on MovieLens: does recchat put the film a user really watched next near the top?

The same seeded sample of users is ranked by recchat and by three baselines in one run, so
their figures are comparable. The protocol is written into every report (PROTOCOL below).
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from recchat.catalog import Catalog
from recchat.evaluation import SYSTEMS
from recchat.evaluation.metrics import Rank, hit_rate, mrr, ndcg, percentile, rank_of
from recchat.evaluation.systems import (
    EmbeddingSimilarity,
    ItemKNN,
    Popularity,
    RecChatSystem,
    ReplyQuality,
    System,
    learned_baselines,
)
from recchat.movies import Rating, load_ratings, rating_events

KS = (1, 5, 10, 20)
POSITIVE_RATING = 4
EXCLUDE_EVERY_RATED = 10_000
"""`chat.max_exclude_ids` for the run: every film a user rated before the target is excluded (ML-1M's most active
user rated 2,314), past the 500 an API caller may send."""

PROTOCOL = """\
Per sampled user (seeded), ratings are sorted by time. Ratings of 4-5 are positives; the user's last
positive is the target. The request names the {liked} most recent earlier positives as a user would say
it: 'I liked "A", "B" and "C"; what should I watch next?'{genre}. Every item the user rated before the
target is excluded from every system's ranking. Each system ranks {depth} items; a hit is the target
in the top K. Training data for the baselines is every rating except each sampled user's target and
what they rated after it. Baselines: popularity (count of training ratings), item-kNN (cosine between
items over users' training positives; a user's score is the summed similarity to all their earlier
positives), embedding (the request text embedded and matched against the item vectors in Chroma,
no parsing, no LLM), and learned models fitted on the same ratings recchat's log holds (every rating as an
interaction; a user's 4-5s as the history): ease (EASE, every liked film alike), ease-recency (each earlier
like counting half every 5 likes), als (`implicit` ALS, recency-weighted history) and sequential-rules (what
followed each film in users' rating sequences, scored for the user's 10 latest rated films). recchat knows the
training ratings as feedback history (4-5 likes, 3 clicks, 1-2 dislikes; the user's own under their id) and
answers the request through its chat API as configured (parsing, which recognises the quoted titles as
references: it searches near their vectors and never offers them back; retrieval of a pool re-ranked
with the rerank settings, e.g. co-occurrence with the quoted films, the learned model's score of the
user's history and what follows their latest films, to {candidates} candidates; the LLM call); its list is
the reply's items, ordered as its
chat.ranking setting ('{ranking}') says, then its ranked candidates for the same parsed request down to the depth.
Hallucination, duplicate and format-error rates count replies whose raw LLM output named a
non-candidate, repeated a pick, or had no usable pick; 'outside catalog' counts final replies naming an
item not in the catalog."""


@dataclass(frozen=True)
class EvalCase:
    """One test user: what they asked, what they watched next, and what they had seen."""

    user: str
    request: str
    target: str
    liked: list[str]
    seen: frozenset[str]
    """Every item rated before the target: excluded from all rankings."""


@dataclass
class Split:
    cases: list[EvalCase]
    training: dict[str, list[Rating]]
    """Every user's ratings without the sampled users' targets and what came after them."""


def split(
    ratings: dict[str, list[Rating]], catalog: Catalog, users: int, seed: int = 0, liked_in_request: int = 3,
    genre_hint: bool = False,
) -> Split:
    """Sample test users and build their requests; everything else is training data."""
    eligible = []
    for user, history in ratings.items():
        positives = [position for position, rating in enumerate(history) if rating.rating >= POSITIVE_RATING]
        if len(positives) > liked_in_request and history[positives[-1]].item in catalog:
            eligible.append(user)
    sampled = random.Random(seed).sample(sorted(eligible), min(users, len(eligible)))
    training = dict(ratings)
    cases = []
    for user in sampled:
        history = ratings[user]
        target_at = max(position for position, rating in enumerate(history) if rating.rating >= POSITIVE_RATING)
        before = history[:target_at]
        training[user] = before
        liked = [rating.item for rating in before if rating.rating >= POSITIVE_RATING][-liked_in_request:]
        target = catalog[history[target_at].item]
        genre = target.attributes.get("genres") if genre_hint else None
        cases.append(EvalCase(
            user=user,
            request=request_text([catalog[item].title for item in liked], genre[0] if genre else None),
            target=target.id,
            liked=liked,
            seen=frozenset(rating.item for rating in before),
        ))
    return Split(cases, training)


def request_text(titles: list[str], genre: str | None = None) -> str:
    quoted = [f'"{title}"' for title in titles]
    named = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]
    wish = f"what {genre.lower()} film should I watch next?" if genre else "what should I watch next?"
    return f"I liked {named}; {wish}"


def history_store(history: dict[str, list[Rating]], dataset: str, folder: Path):
    """A fresh feedback store in `folder` holding the ratings as likes and dislikes; and how many it took."""
    from recchat.feedback import SQLiteFeedbackStore, add_in_batches

    store = SQLiteFeedbackStore(folder / "history.sqlite3", synchronous="normal")
    return store, add_in_batches(store, rating_events(history, dataset))


# --- running and reporting -----------------------------------------------------------------------------

@dataclass
class SystemResult:
    name: str
    ranks: list[Rank] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    quality: ReplyQuality | None = None

    def summary(self, ks: Iterable[int] = KS) -> dict[str, float]:
        figures: dict[str, float] = {}
        for k in ks:
            figures[f"HR@{k}"] = hit_rate(self.ranks, k)
        for k in ks:
            figures[f"NDCG@{k}"] = ndcg(self.ranks, k)
        figures["MRR"] = mrr(self.ranks)
        figures["latency_p50_ms"] = percentile(self.latencies_ms, 50)
        figures["latency_p95_ms"] = percentile(self.latencies_ms, 95)
        if self.quality is not None:
            figures.update(self.quality.rates())
        return figures


def evaluate(
    cases: list[EvalCase], systems: list[System], depth: int = max(KS), progress: bool = False
) -> list[SystemResult]:
    """Rank every case with every system; time each ranking."""
    from tqdm import tqdm

    results = []
    for system in systems:
        result = SystemResult(system.name, quality=getattr(system, "quality", None))
        for case in tqdm(cases, desc=system.name, unit="user", disable=not progress):
            started = time.perf_counter()
            system.start(case.user, case.liked)
            ranking = system.rank(case.request, case.seen, depth)
            result.latencies_ms.append((time.perf_counter() - started) * 1000)
            result.ranks.append(rank_of(case.target, ranking))
        results.append(result)
    return results


def write_report(results: list[SystemResult], out_dir: Path, info: dict) -> dict[str, Path]:
    """report.json (figures, protocol, settings), report.md (a table) and metrics.png (metric by K)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    summaries = {result.name: result.summary() for result in results}
    paths = {"json": out_dir / "report.json", "markdown": out_dir / "report.md", "plot": out_dir / "metrics.png"}
    ranks = {result.name: result.ranks for result in results}  # per user, for paired comparisons of systems
    paths["json"].write_text(json.dumps({**info, "systems": summaries, "ranks": ranks}, indent=2), encoding="utf-8")
    paths["markdown"].write_text(markdown_table(summaries, info), encoding="utf-8")
    _plot(summaries, paths["plot"], info)
    return paths


def markdown_table(summaries: dict[str, dict[str, float]], info: dict) -> str:
    columns = [f"HR@{k}" for k in KS] + [f"NDCG@{k}" for k in KS] + ["MRR", "latency_p50_ms"]
    lines = [
        f"# Offline evaluation: {info['dataset']}, {info['users']} users (seed {info['seed']})",
        "",
        "| system | " + " | ".join(columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for name, figures in summaries.items():
        cells = [f"{figures[c]:.1f}" if c.startswith("latency") else f"{figures[c]:.4f}" for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    quality = {name: figures for name, figures in summaries.items() if "hallucination_rate" in figures}
    for name, figures in quality.items():
        lines += ["", f"{name} replies: " + ", ".join(
            f"{key.removesuffix('_rate').replace('_', ' ')} {figures[key]:.1%}"
            for key in (
                "llm_answered_rate", "hallucination_rate", "duplicate_rate", "format_error_rate", "outside_catalog_rate"
            )
        ) + "."]
    lines += ["", "## Protocol", "", info["protocol"], ""]
    return "\n".join(lines)


def _plot(summaries: dict[str, dict[str, float]], path: Path, info: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, metric in zip(axes, ("HR", "NDCG")):
        for name, figures in summaries.items():
            axis.plot(KS, [figures[f"{metric}@{k}"] for k in KS], marker="o", label=name)
        axis.set_xticks(KS)
        axis.set_xlabel("K")
        axis.set_title(f"{metric}@K")
        axis.grid(alpha=0.3)
    axes[0].legend()
    figure.suptitle(f"{info['dataset']}, {info['users']} users (seed {info['seed']})")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def run_offline(
    settings, dataset: str, users: int, seed: int = 0, liked_in_request: int = 3, genre_hint: bool = False,
    systems: Iterable[str] = SYSTEMS, out_dir: Path | None = None, progress: bool = False, backend=None, encoder=None,
) -> tuple[list[SystemResult], dict[str, Path]]:
    """The whole run: build/load the movie catalog and its index, split, rank with each system, write the report."""
    from recchat.catalog import load_catalog
    from recchat.chat import RecChat
    from recchat.movies import ensure_movie_catalog

    wanted = list(systems)
    unknown = set(wanted) - set(SYSTEMS)
    if unknown:
        raise ValueError(f"unknown systems {sorted(unknown)}; choose from {', '.join(SYSTEMS)}")
    catalog_path = ensure_movie_catalog(settings.generated_catalog_dir, dataset)
    chat = settings.chat.model_copy(update={"max_exclude_ids": EXCLUDE_EVERY_RATED})
    settings = settings.model_copy(update={"catalog": str(catalog_path), "chat": chat})
    catalog = load_catalog(catalog_path)
    data = split(load_ratings(dataset), catalog, users, seed, liked_in_request, genre_hint)
    out_dir = out_dir or Path("eval-results") / f"offline-{dataset}"
    out_dir.mkdir(parents=True, exist_ok=True)
    scratch = tempfile.TemporaryDirectory(prefix="offline-store-", dir=out_dir)
    store, imported = history_store(data.training, dataset, Path(scratch.name))
    bot = RecChat.from_settings(settings, encoder=encoder, backend=backend, progress=progress, feedback_store=store)
    makers: dict[str, Callable[[], System]] = {
        "recchat": lambda: RecChatSystem(bot, user_id=lambda user: f"{dataset}:{user}"),
        "popularity": lambda: Popularity(data.training),
        "item-knn": lambda: ItemKNN(data.training),
        "embedding": lambda: EmbeddingSimilarity(bot.retriever.index),
        **learned_baselines(data.training, wanted),
    }
    try:
        results = evaluate(data.cases, [makers[name]() for name in wanted], progress=progress)
    finally:
        store.close()
        scratch.cleanup()
    info = {
        "dataset": dataset,
        "users": len(data.cases),
        "user_ids": [case.user for case in data.cases],
        "seed": seed,
        "liked_in_request": liked_in_request,
        "genre_hint": genre_hint,
        "prompt": bot.prompt.label,
        "llm_backend": bot.settings.llm.backend,
        "imported_events": imported,
        "rerank": settings.rerank.model_dump(),
        "candidates": settings.retrieval.candidates,
        "ranking": settings.chat.ranking,
        "protocol": PROTOCOL.format(
            liked=liked_in_request, depth=max(KS), candidates=settings.retrieval.candidates,
            ranking=settings.chat.ranking,
            genre=" (plus the target's first genre: 'what comedy film should I watch next?')" if genre_hint else "",
        ),
        "example_cases": [asdict(case) | {"seen": len(case.seen)} for case in data.cases[:3]],
    }
    return results, write_report(results, out_dir, info)
