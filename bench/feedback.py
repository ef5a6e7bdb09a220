"""Event -> effect: how long from a feedback call until the next ranking reflects it, at 10k items.

    python bench/feedback.py [--items 10000] [--rounds 200] [--history-users 2000] [--ml-1m]

Each round: a user asks, dislikes the first item and likes the last, and asks again; the round times the
feedback calls and the next turn (llm.backend 'none': ranking only, which is all the event changes) and checks
that the disliked item is gone. The baseline is the same turn in the same process with feedback off (no
store, no re-ranking). The store starts with a history of `history-users` users x 30 likes, so co-occurrence
and profiles have real sizes. Then the learned model: one fit's time and peak memory, and turns taken while a
refit runs in the background (they must not wait for it). `--ml-1m` adds start-up on MovieLens-1M.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from core import QUERIES, percentiles, scaled_catalog  # noqa: E402

from recchat.chat import RecChat  # noqa: E402
from recchat.config import Settings  # noqa: E402
from recchat.embeddings import load_encoder  # noqa: E402
from recchat.feedback import SQLiteFeedbackStore, make_event  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--history-users", type=int, default=2000)
    parser.add_argument("--ml-1m", action="store_true", help="also time start-up on MovieLens-1M, with and without "
                        "the learned model")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="recchat-bench-feedback-"))
    settings = Settings(data_dir=workdir, llm={"backend": "none"})
    encoder = load_encoder(settings.embedding)
    catalog = scaled_catalog(args.items)

    store = SQLiteFeedbackStore(settings.feedback_path)
    rng = random.Random(0)
    ids = [item.id for item in catalog]
    store.add([
        make_event(kind="like", user_id=f"history-{user}", item_id=item, time=1.0)
        for user in range(args.history_users) for item in rng.sample(ids, 30)
    ])
    bot = RecChat.from_settings(settings, encoder=encoder, catalog=catalog, feedback_store=store)
    assert bot.feedback_model is not None
    started = time.perf_counter()
    bot.feedback_model.rebuild(store)  # what start-up spends on the log (the index sync is bench/core.py's)
    rebuild_s = time.perf_counter() - started
    plain = RecChat(settings, catalog, bot.retriever, feedback_store=None)  # same index, feedback off

    for query in QUERIES:  # warm the encoder's cache and Chroma: measure ranking, not first-call costs
        bot.chat(query)
        plain.chat(query)
    feedback_ms, next_turn_ms, effect_ms, baseline_ms, effective = [], [], [], [], 0
    for n in range(args.rounds):
        query = QUERIES[n % len(QUERIES)]
        session = bot.new_session(user_id=f"bench-{n}")
        shown = bot.chat(query, session).items
        start = time.perf_counter()
        bot.feedback("dislike", shown[0].id, session_id=session)
        bot.feedback("like", shown[-1].id, session_id=session)
        recorded = time.perf_counter()
        after = bot.chat(query, session)
        done = time.perf_counter()
        effective += shown[0].id not in {item.id for item in after.items}
        feedback_ms.append((recorded - start) * 1000)
        next_turn_ms.append((done - recorded) * 1000)
        effect_ms.append((done - start) * 1000)
        start = time.perf_counter()
        plain.chat(query)
        baseline_ms.append((time.perf_counter() - start) * 1000)

    print(f"# recchat feedback benchmark ({args.items} items, {os.cpu_count()} CPUs, "
          f"{store.count()} events in the store after the run)")
    print(f"rebuilding profiles and co-occurrence from {args.history_users} x 30 history likes: {rebuild_s:.2f} s "
          "(the learned model refits in the background meanwhile)")
    print("latency, ms                                    p50      p95")
    for label, samples in [
        ("2 feedback calls (store commit + apply)", feedback_ms),
        ("next turn, re-ranked (no LLM)", next_turn_ms),
        ("event -> effect (both)", effect_ms),
        ("same turn, feedback off (baseline)", baseline_ms),
    ]:
        p50, p95 = percentiles(samples)
        print(f"  {label:42s} {p50:7.2f}  {p95:7.2f}")
    print(f"  re-ranked turn / baseline, p50: {percentiles(next_turn_ms)[0] / percentiles(baseline_ms)[0]:.2f}x")
    print(f"disliked item gone from the next answer: {effective}/{args.rounds} rounds")
    refit(bot, plain, baseline_ms)
    print(f"max RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    if args.ml_1m:
        movielens_start_up(encoder, workdir)


def refit(bot: RecChat, plain: RecChat, baseline_ms: list[float]) -> None:
    """The learned models (EASE or ALS, and the sequential rules): one fit's time and peak memory, then turns taken
    while a refit runs in the background."""
    model = bot.feedback_model
    assert model is not None
    model.learned.wait()  # the refit the rebuild above started (the rounds ran beside it), so this fit runs alone
    log = model.training_log()
    interactions = log.interactions
    tracemalloc.start()
    started = time.perf_counter()
    model.learned.fit(log)
    fit_s = time.perf_counter() - started
    peak_mib = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    kind = " + ".join(type(fitted).__name__ for fitted in model.learned.models.values())
    print(f"learned models ({kind}) on {interactions.shape[0]} users x {interactions.shape[1]} items, "
          f"{interactions.nnz} interactions: fit {fit_s:.2f} s, peak {peak_mib:.0f} MiB allocated")
    fits = model.learned.fits
    model.learned.note(bot.settings.learned.refit_events, model.training_log)  # due at once
    during_ms = []
    while model.learned.refitting or not during_ms:
        started = time.perf_counter()
        bot.chat(QUERIES[len(during_ms) % len(QUERIES)], user_id="bench-during-refit")
        during_ms.append((time.perf_counter() - started) * 1000)
    model.learned.wait()
    p50, p95 = percentiles(during_ms)
    print(f"  turns during a background refit: {len(during_ms)}, p50 {p50:.2f} ms, p95 {p95:.2f} ms "
          f"({p50 / percentiles(baseline_ms)[0]:.2f}x the feedback-off baseline); refit done: "
          f"{model.learned.fits == fits + 1}")


def movielens_start_up(encoder, workdir: Path) -> None:
    """Start-up on ML-1M (import the ratings, then open the engine), without and with the learned model."""
    from recchat.evaluation.offline import history_store
    from recchat.movies import ensure_movie_catalog, load_ratings

    settings = Settings(data_dir=workdir / "ml-1m", llm={"backend": "none"})
    catalog_path = ensure_movie_catalog(settings.generated_catalog_dir, "ml-1m")
    settings = settings.model_copy(update={"catalog": str(catalog_path)})
    started = time.perf_counter()
    store, imported = history_store(load_ratings("ml-1m"), "ml-1m", workdir / "ml-1m")
    import_s = time.perf_counter() - started
    RecChat.from_settings(settings, encoder=encoder, feedback_store=store)  # indexes the catalog once, untimed
    opened = {}
    for model in ("none", "ease"):
        tuned = settings.model_copy(update={"learned": settings.learned.model_copy(update={"model": model})})
        started = time.perf_counter()
        RecChat.from_settings(tuned, encoder=encoder, feedback_store=store)
        opened[model] = time.perf_counter() - started
    print(f"start-up on ML-1M ({imported} events): import {import_s:.1f} s; opening the engine "
          f"{opened['none']:.1f} s without the learned models, {opened['ease']:.1f} s with them (EASE + sequential "
          f"rules); import + open: {(import_s + opened['ease']) / (import_s + opened['none']):.2f}x")


if __name__ == "__main__":
    main()
