"""Feedback replay on MovieLens: does feedback on what was shown improve the next answers?

Simulated users new to the system ask, see a list, react to the shown items as their real ratings
say, and ask again. Each system is scored at every turn on the same users; the protocol is
written into the report (PROTOCOL below).
"""

from __future__ import annotations

import json
import random
import re
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from recchat.catalog import Catalog
from recchat.evaluation import SYSTEMS
from recchat.evaluation.metrics import Rank, hit_rate, ndcg, percentile, rank_of
from recchat.evaluation.offline import POSITIVE_RATING, history_store, request_text
from recchat.evaluation.systems import (
    EmbeddingSimilarity,
    ItemKNN,
    Popularity,
    RecChatSystem,
    System,
    learned_baselines,
)
from recchat.movies import Rating, load_ratings, rating_kind

TURNS = 4
SHOWN = 5
DEPTH = 20

PROTOCOL = """\
Users are sampled (seeded) among those with more than {liked} positive ratings (4-5) whose last positive
is in the catalog; that last positive is the target, held out. The sampled users are new to every
system: their ratings are not in the imported history (every other user's ratings are: 4-5 as likes,
3 as clicks, 1-2 as dislikes), which seeds recchat's co-occurrence and the baselines. Each user asks 'I liked "A", "B"
and "C"; what should I watch next?' naming their {liked} most recent positives before the target, {turns}
times in one session. At each turn a system ranks {depth} items, never the named ones nor any it showed
at an earlier turn; its top {shown} are shown. The user then reacts to the shown items from their real
ratings before the target: like for 4-5, click for 3, dislike for 1-2, nothing for an unrated item (the target is
never rated this way). 'After n feedback turns' is turn n+1. Metrics at a turn use the rank of the target
in that turn's list; once the target has been shown, it is found, and later turns keep the rank it was
shown at. recchat runs through its public API (chat with user_id and exclude_ids, then feedback for each
reaction) with llm.backend 'none' and chat.ranking 'retrieval': the LLM only writes reasons in that mode,
so the items are the same with it; the reply is asked for {depth} items (retrieval.candidates and
max_items) so that its whole ranking is scored. 'feedback off' is the same system and session without
the feedback calls. Baselines, with the same information: popularity (ratings in the imported history),
embedding (the request text against the item vectors in Chroma), item-kNN (cosine co-occurrence over the
imported likes (4-5), summed over the named films and every film liked so far in the session), and the
learned models of the offline evaluation (ease, ease-recency, als, sequential-rules: fitted on every imported
rating; the history is the named films, then each film liked in the session, latest first)."""


@dataclass(frozen=True)
class ReplayCase:
    user: str
    request: str
    target: str
    references: tuple[str, ...]
    opinions: dict[str, str]
    """What the user thinks of items they rated before the target: 'like' or 'dislike'."""


def replay_split(
    ratings: dict[str, list[Rating]], catalog: Catalog, users: int, seed: int = 0, liked_in_request: int = 3
) -> tuple[list[ReplayCase], dict[str, list[Rating]]]:
    """Sampled users' cases, and the history of everyone else (imported into the systems)."""
    eligible = []
    for user, history in ratings.items():
        positives = [r for r in history if r.rating >= POSITIVE_RATING]
        if len(positives) > liked_in_request and positives[-1].item in catalog:
            eligible.append(user)
    sampled = random.Random(seed).sample(sorted(eligible), min(users, len(eligible)))
    cases = []
    for user in sampled:
        history = ratings[user]
        target_at = max(i for i, r in enumerate(history) if r.rating >= POSITIVE_RATING)
        before = [r for r in history[:target_at] if r.item in catalog]
        references = [r.item for r in before if r.rating >= POSITIVE_RATING][-liked_in_request:]
        opinions = {r.item: rating_kind(r.rating) for r in before if r.item not in references}
        cases.append(ReplayCase(
            user=user, request=request_text([catalog[i].title for i in references]), target=history[target_at].item,
            references=tuple(references), opinions=opinions,
        ))
    chosen = set(sampled)
    return cases, {user: history for user, history in ratings.items() if user not in chosen}


@dataclass
class ReplayResult:
    name: str
    ranks: list[list[Rank]] = field(default_factory=lambda: [[] for _ in range(TURNS)])
    """Per turn, per user: the target's rank."""
    reactions: Counter = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)

    def summary(self) -> dict:
        figures: dict = {}
        for turn, ranks in enumerate(self.ranks):
            label = "turn 1 (no feedback yet)" if turn == 0 else f"after {turn} feedback turn{'s' * (turn > 1)}"
            figures[label] = {"HR@10": hit_rate(ranks, 10), "NDCG@10": ndcg(ranks, 10), "HR@20": hit_rate(ranks, 20)}
        users = max(1, len(self.ranks[0]))
        figures["reactions per user"] = {kind: count / users for kind, count in self.reactions.items()}
        figures["latency_p50_ms"] = percentile(self.latencies_ms, 50)
        return figures


def replay(cases: list[ReplayCase], systems: list[System], progress: bool = False) -> list[ReplayResult]:
    from tqdm import tqdm

    results = []
    for system in systems:
        result = ReplayResult(system.name)
        for case in tqdm(cases, desc=system.name, unit="user", disable=not progress):
            system.start(case.user, case.references)
            excluded = set(case.references)
            found: Rank = None
            for turn in range(TURNS):
                started = time.perf_counter()
                ranking = system.rank(case.request, excluded, DEPTH)
                result.latencies_ms.append((time.perf_counter() - started) * 1000)
                rank = found if found is not None else rank_of(case.target, ranking)
                result.ranks[turn].append(rank)
                shown = ranking[:SHOWN]
                if found is None and case.target in shown:
                    found = rank
                excluded.update(shown)
                for item in shown:
                    kind = case.opinions.get(item)
                    if kind:
                        result.reactions[kind] += 1
                        system.react(item, kind)
        results.append(result)
    return results


def run_replay(
    settings, dataset: str = "ml-1m", users: int = 500, seed: int = 0, liked_in_request: int = 3,
    systems: Iterable[str] = SYSTEMS,
    variants: dict[str, dict] | None = None,
    out_dir: Path | None = None, progress: bool = False, encoder=None,
) -> tuple[list[ReplayResult], Path]:
    """The whole replay: catalog and index, history imported into a fresh store, each system, the report.
    `variants` adds recchat runs with other rerank weights: {"name": {"collaborative": 0, ...}}."""
    from recchat.catalog import load_catalog
    from recchat.chat import RecChat
    from recchat.feedback import SQLiteFeedbackStore
    from recchat.movies import ensure_movie_catalog

    out_dir = out_dir or Path("eval-results") / f"replay-{dataset}"
    out_dir.mkdir(parents=True, exist_ok=True)
    catalog_path = ensure_movie_catalog(settings.generated_catalog_dir, dataset)
    catalog = load_catalog(catalog_path)
    cases, history = replay_split(load_ratings(dataset), catalog, users, seed, liked_in_request)
    scratch = tempfile.TemporaryDirectory(prefix="replay-stores-", dir=out_dir)  # ~150 MB per store for ML-1M
    store, imported = history_store(history, dataset, Path(scratch.name))
    retrieval = settings.retrieval.model_copy(update={"candidates": DEPTH, "max_items": DEPTH})
    chat = settings.chat.model_copy(update={"ranking": "retrieval"})
    llm = settings.llm.model_copy(update={"backend": "none"})
    base = settings.model_copy(update={"catalog": str(catalog_path), "retrieval": retrieval, "chat": chat, "llm": llm})

    def bot(name: str, **weights) -> RecChat:
        """A bot on its own copy of the imported history, so no run sees another's simulated feedback."""
        copy = Path(scratch.name) / f"{re.sub(r'[^a-z0-9]+', '-', name.lower())}.sqlite3"
        store.backup(copy)
        tuned = base.model_copy(update={"rerank": base.rerank.model_copy(update=weights)})
        return RecChat.from_settings(
            tuned, encoder=encoder, catalog=catalog, feedback_store=SQLiteFeedbackStore(copy, synchronous="normal")
        )

    def recchat_run(name: str, feedback: bool, weights: dict) -> System:
        return RecChatSystem(bot(name, **weights), name, lambda user: f"replay:{name}:{user}", feedback)

    def hearing(system: System) -> System:
        system.name = f"{system.name} + feedback"
        return system

    wanted = list(systems)
    runs: list[Callable[[], System]] = []  # made one at a time: each recchat holds its own model in memory
    if "recchat" in wanted:
        runs.append(lambda: recchat_run("recchat + feedback", True, {}))
        runs.append(lambda: recchat_run("recchat, feedback off", False, {}))
    for name, weights in (variants or {}).items():
        runs.append(lambda name=name, weights=weights: recchat_run(f"recchat + feedback, {name}", True, weights))
    if "popularity" in wanted:
        runs.append(lambda: Popularity(history))
    if "item-knn" in wanted:
        runs.append(lambda: hearing(ItemKNN(history)))
    for make_learned in learned_baselines(history, wanted).values():
        runs.append(lambda make_learned=make_learned: hearing(make_learned()))
    if "embedding" in wanted:
        from recchat.embeddings import cached_encoder
        from recchat.retrieval import VectorIndex, catalog_texts, open_vector_store

        encoder = cached_encoder(base, encoder, catalog_texts(catalog))
        index = VectorIndex(open_vector_store(base), catalog.index_name, encoder)
        runs.append(lambda: EmbeddingSimilarity(index))
    results = []
    try:
        for make in runs:
            system = make()
            results += replay(cases, [system], progress=progress)
            if isinstance(system, RecChatSystem) and system.bot.feedback_store is not None:
                system.bot.feedback_store.close()
    finally:
        store.close()
        scratch.cleanup()
    info = {
        "dataset": dataset, "users": len(cases), "seed": seed, "imported_events": imported,
        "rerank": base.rerank.model_dump(), "variants": variants or {},
        "protocol": PROTOCOL.format(liked=liked_in_request, turns=TURNS, depth=DEPTH, shown=SHOWN),
    }
    summaries = {result.name: result.summary() for result in results}
    (out_dir / "report.json").write_text(
        json.dumps({**info, "systems": summaries, "ranks": {r.name: r.ranks for r in results}}, indent=2),
        encoding="utf-8",
    )
    (out_dir / "report.md").write_text(replay_table(summaries, info), encoding="utf-8")
    return results, out_dir / "report.md"


def replay_table(summaries: dict[str, dict], info: dict) -> str:
    turns = [key for key in next(iter(summaries.values())) if key.startswith(("turn", "after"))]
    lines = [
        f"# Feedback replay: {info['dataset']}, {info['users']} users (seed {info['seed']})",
        "",
        "HR@10 / NDCG@10 per turn.",
        "",
        "| system | " + " | ".join(turns) + " | likes, dislikes heard per user | p50 ms |",
        "|---|" + "---:|" * (len(turns) + 2),
    ]
    for name, figures in summaries.items():
        cells = [f"{figures[t]['HR@10']:.4f} / {figures[t]['NDCG@10']:.4f}" for t in turns]
        heard = figures["reactions per user"]
        cells.append(f"{heard.get('like', 0):.2f}, {heard.get('dislike', 0):.2f}")
        cells.append(f"{figures['latency_p50_ms']:.1f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "## Protocol", "", info["protocol"], ""]
    return "\n".join(lines)

