"""A shop's catalog at 2k, 20k (and 100k) items on this machine (issue #26): a generated electronics export with
typed columns (bench/hybrid.py's), loaded, indexed and asked, LLM off.

For each size: loading the file (the schema inferred), indexing (items/s, with the configured encoder or
`--backend onnx-int8`), the process's peak memory, the engine's start (lexicon, BM25, feedback model), a turn's p50
and p95 over 40 requests, and filtered retrieval (a category and a price limit) p50:

    HF_HUB_OFFLINE=1 python bench/catalog_scale.py [--sizes 2000 20000] [--backend torch|onnx-int8]
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hybrid import LINES, write_export  # noqa: E402

REQUESTS = [
    "wireless noise cancelling headphones", "the lightest earbuds", "a laptop under $800", "Sony WH-1000XM6",
    "a smartwatch with the longest battery", "a speaker for the beach", "a gaming mouse", "a fast router",
    "a camera for travel", "a keyboard in white",
]


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--backend", default="torch", choices=["torch", "onnx-int8"])
    args = parser.parse_args()

    from recchat.catalog import load_catalog
    from recchat.chat import RecChat
    from recchat.config import Settings
    from recchat.models import Constraints
    from recchat.retrieval import synced_index

    print(f"{'items':>7} {'load s':>7} {'index s':>8} {'items/s':>8} {'start s':>8} {'turn p50':>9} {'p95 ms':>7} "
          f"{'filtered p50':>13} {'peak MiB':>9}")
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "electronics.csv"
            write_export(path, size)
            settings = Settings(catalog=str(path), data_dir=Path(folder), cache_dir=Path(folder) / "cache",
                                embedding={"bridge": "", "backend": args.backend}, llm={"backend": "none"},
                                chat={"clarify": False})
            started = time.perf_counter()
            catalog = load_catalog(path)
            loaded = time.perf_counter() - started
            started = time.perf_counter()
            synced_index(settings, catalog)
            indexed = time.perf_counter() - started
            started = time.perf_counter()
            bot = RecChat.from_settings(settings, catalog=catalog)
            ready = time.perf_counter() - started
            turns = []
            for n in range(40):
                message = REQUESTS[n % len(REQUESTS)]
                started = time.perf_counter()
                bot.chat(message)
                turns.append(1000 * (time.perf_counter() - started))
            rng = random.Random(0)
            filtered = []
            for _ in range(40):
                category = rng.choice(list(LINES))
                started = time.perf_counter()
                bot.retriever.search(f"{category.lower()} on sale", Constraints(category=category, max_price=300))
                filtered.append(1000 * (time.perf_counter() - started))
            print(f"{size:>7} {loaded:>7.1f} {indexed:>8.1f} {size / indexed:>8.0f} {ready:>8.1f} "
                  f"{percentile(turns, 0.5):>9.1f} {percentile(turns, 0.95):>7.1f} {percentile(filtered, 0.5):>13.1f} "
                  f"{peak_mib():>9.0f}", flush=True)


if __name__ == "__main__":
    main()
