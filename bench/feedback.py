"""Event -> effect: how long from a feedback call until the next ranking reflects it, at 10k items.

    python bench/feedback.py [--items 10000] [--rounds 200] [--history-users 2000]

Each round: a user asks, dislikes the first item and likes the last, and asks again; the round times the
feedback calls and the next turn (llm.backend 'none': ranking only, which is all the event changes) and checks
that the disliked item is gone. The baseline is the same turn in the same process with feedback off (no
store, no re-ranking). The store starts with a history of `history-users` users x 30 likes, so co-occurrence
and profiles have real sizes.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import tempfile
import time
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
    print(f"rebuilding profiles and co-occurrence from {args.history_users} x 30 history likes: {rebuild_s:.2f} s")
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
    print(f"max RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
