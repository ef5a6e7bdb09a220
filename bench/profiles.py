"""Memory per user profile, bounded by `rerank.max_profiles`, against keeping every profile (the old behaviour).

    python bench/profiles.py [--users 75000] [--items 2000] [--bound 20000]

A SQLite log of `users` distinct users, each with a like and a click (plus an impression) on a catalog of `items`
items with 384-d vectors, as the hostile probe of #27 had. Both runs are in this process, the unbounded one first
(`max_profiles` = `users`): the memory the feedback state keeps after start-up (tracemalloc, so numpy arrays
count), the peak during the replay, the replay's time, then a user's profile read when it is in memory and when it
comes back from the store, and the catch-up of new events from users who are not in memory.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from core import percentiles, scaled_catalog  # noqa: E402

from recchat.config import LearnedSettings, RerankSettings  # noqa: E402
from recchat.feedback import SQLiteFeedbackStore, add_in_batches, make_event  # noqa: E402
from recchat.rerank import FeedbackModel  # noqa: E402

DIMENSIONS = 384


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=75_000)
    parser.add_argument("--items", type=int, default=2_000)
    parser.add_argument("--bound", type=int, default=RerankSettings().max_profiles)
    args = parser.parse_args()
    catalog = scaled_catalog(args.items)
    vectors = np.random.default_rng(0).normal(size=(len(catalog), DIMENSIONS)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [item.id for item in catalog]
    store = SQLiteFeedbackStore(Path(tempfile.mkdtemp(prefix="recchat-bench-profiles-")) / "feedback.sqlite3")
    rng = random.Random(0)
    add_in_batches(store, (
        make_event(kind=kind, user_id=f"user-{user}", item_id=rng.choice(ids), time=float(user))
        for user in range(args.users) for kind in ("impression", "like", "click")
    ))
    print(f"log: {args.users:,} users, {store.count():,} events, {len(catalog):,} items x {DIMENSIONS} dimensions")
    baseline = run(catalog, vectors, store, args.users, "every profile kept (the old behaviour)")
    bounded = run(catalog, vectors, store, args.bound, f"max_profiles = {args.bound:,}")
    ratio = {name: bounded[name] / baseline[name] for name in baseline}
    print(f"kept memory: {ratio['kept_mib']:.2f}x the baseline; replay peak {ratio['peak_mib']:.2f}x; replay time "
          f"{ratio['replay_s']:.2f}x")


def run(catalog, vectors: np.ndarray, store: SQLiteFeedbackStore, bound: int, label: str) -> dict[str, float]:
    gc.collect()
    # the learned models off: their fit is not what is measured here (bench/feedback.py times it)
    learned = LearnedSettings(model="none", sequence_window=0)
    model = FeedbackModel(catalog, vectors, RerankSettings(max_profiles=bound), learned)
    started = time.perf_counter()
    model.rebuild(store)
    replay_s = time.perf_counter() - started
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    model.rebuild(store)  # the same replay again, traced: what it holds at its peak and what it keeps
    gc.collect()
    kept, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    users = len(model.users)
    in_memory = list(model.users)[-200:]
    elsewhere = [f"user-{n}" for n in range(200)]  # the earliest: left out of memory when the bound is below
    cached_ms = [timed_ms(model.hidden, user) for user in in_memory]
    read_back_ms = [timed_ms(model.user, user) for user in elsewhere]
    new_events = [make_event(kind="dislike", user_id=f"user-{n}", item_id=model.ids[0]) for n in range(1000, 2000)]
    store.add(new_events)
    started = time.perf_counter()
    model.sync(store)
    sync_ms = (time.perf_counter() - started) * 1000
    kept_mib, peak_mib = (kept - before) / 2**20, (peak - before) / 2**20
    print(f"{label}: {users:,} profiles in memory, {kept_mib:.1f} MiB kept ({kept_mib * 2**20 / max(users, 1):,.0f} "
          f"B each), replay {replay_s:.2f} s at peak {peak_mib:.1f} MiB")
    print(f"  a profile in memory: p50 {percentiles(cached_ms)[0]:.3f} ms; read back from the store: p50 "
          f"{percentiles(read_back_ms)[0]:.3f} ms, p95 {percentiles(read_back_ms)[1]:.3f} ms; 1,000 new events "
          f"from users not in memory caught up in {sync_ms:.0f} ms")
    return {"kept_mib": kept_mib, "peak_mib": peak_mib, "replay_s": replay_s}


def timed_ms(read, user_id: str) -> float:
    started = time.perf_counter()
    read(user_id)
    return (time.perf_counter() - started) * 1000


if __name__ == "__main__":
    main()
