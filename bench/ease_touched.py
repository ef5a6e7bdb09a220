"""EASE fitted on the items someone touched against EASE over the whole catalog, in the same process.

    python bench/ease_touched.py [--items 4000] [--big 20000]

1. A catalog of --items items, a log touching a quarter of them: fit time, peak memory (tracemalloc, which sees
   numpy's buffers) and the largest score difference, touched-only against the whole-catalog matrix (the baseline,
   which is what recchat fitted before).
2. A --big catalog with four events (issue #26: 13.4 GB and 218 s at start-up before): the touched-only fit alone;
   the whole-catalog one would need a --big x --big matrix.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np
from scipy import sparse

from recchat.collaborative import EASE, TrainingLog


def whole_catalog_scores(log: TrainingLog, l2: float, history: np.ndarray) -> np.ndarray:
    """The fit as it was: every catalog item in the Gram matrix."""
    interactions = log.interactions
    gram = (interactions.T @ interactions).toarray().astype(np.float64)
    gram[np.diag_indices_from(gram)] += l2
    precision = np.linalg.inv(gram)
    weights = (precision / -np.diag(precision)).astype(np.float32)
    np.fill_diagonal(weights, 0.0)
    return history @ weights


def measured(run) -> tuple[object, float, float]:
    tracemalloc.start()
    started = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return result, seconds, peak


def log_of(users: int, items: int, touched: int, per_user: int, seed: int = 0) -> TrainingLog:
    rng = np.random.default_rng(seed)
    pool = rng.choice(items, size=touched, replace=False)
    rows = np.repeat(np.arange(users), per_user)
    cols = rng.choice(pool, size=users * per_user)
    matrix = sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(users, items))
    matrix.sum_duplicates()
    return TrainingLog(matrix, [np.unique(matrix[user].indices) for user in range(users)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=4000)
    parser.add_argument("--big", type=int, default=20000)
    args = parser.parse_args()
    l2 = 500.0

    log = log_of(users=2000, items=args.items, touched=args.items // 4, per_user=20)
    history = np.zeros(args.items, np.float32)
    history[log.sequences[0]] = 1.0
    model = EASE(l2)
    _, fit_s, fit_mb = measured(lambda: model.fit(log))
    baseline, base_s, base_mb = measured(lambda: whole_catalog_scores(log, l2, history))
    difference = float(np.abs(model.score(history) - baseline).max())
    print(f"{args.items} items, {len(model.columns)} touched: touched-only fit {fit_s:.2f} s, peak {fit_mb:.0f} MiB; "
          f"whole catalog {base_s:.2f} s, peak {base_mb:.0f} MiB ({base_s / fit_s:.1f}x the time, "
          f"{base_mb / max(fit_mb, 1e-3):.1f}x the memory); largest score difference {difference:.2e}")

    small = log_of(users=2, items=args.big, touched=4, per_user=2)
    big = EASE(l2)
    _, big_s, big_mb = measured(lambda: big.fit(small))
    whole_gb = args.big**2 * 8 / 1e9
    print(f"{args.big} items, four events: touched-only fit {big_s * 1000:.1f} ms, peak {big_mb:.2f} MiB "
          f"(the whole-catalog Gram matrix alone would be {whole_gb:.1f} GB)")


if __name__ == "__main__":
    main()
