"""Core figures: index build rate, query latency at 10k items (with and without filters), chat-turn latency, and
each bundled encoder's indexing rate and query latency.

    python bench/core.py [--items 10000] [--queries 200] [--turns 3]

The filtered query is compared with Chroma's own `where` filter (the baseline) in the same process; the multilingual
encoder with all-MiniLM-L6-v2 (the baseline) on the same texts.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recchat.catalog import Catalog, load_catalog  # noqa: E402
from recchat.chat import RecChat  # noqa: E402
from recchat.config import BUNDLED_CATALOG_DIR, Settings  # noqa: E402
from recchat.embeddings import E5, MINILM, CachedEncoder, load_encoder  # noqa: E402
from recchat.evaluation.metrics import percentile  # noqa: E402
from recchat.models import Constraints  # noqa: E402
from recchat.retrieval import Retriever, VectorIndex, open_store, where_filter  # noqa: E402

QUERIES = ["warm winter coat", "waterproof hiking boots", "summer dress", "merino sweater", "tent for two",
           "running shoes", "gift for a hiker", "cashmere scarf", "rain jacket", "kids sandals"]
SELECTIVE = Constraints(category="shoes", max_price=120)  # ~8% of items: goes to Chroma `where`
BROAD = Constraints(max_price=150, excluded_terms=["black"])  # ~half the items: filtered in a window
COLOURS = ["red", "blue", "green", "black", "white", "grey", "navy", "olive", "tan", "plum"]


def scaled_catalog(n: int) -> Catalog:
    """n distinct items made from the demo catalog: new colour, price and edition per copy."""
    base = list(load_catalog(BUNDLED_CATALOG_DIR / "products.jsonl"))
    items = []
    for i in range(n):
        item = base[i % len(base)]
        copy = i // len(base)
        items.append(item.model_copy(update={
            "id": f"{item.id}-{copy}",
            "title": f"{item.title} ({COLOURS[copy % len(COLOURS)]}, edition {copy})",
            "price": round((item.price or 10) * (0.7 + (copy % 7) * 0.1), 2),
            "attributes": {**item.attributes, "color": COLOURS[copy % len(COLOURS)]},
        }))
    return Catalog("bench", items)


def percentiles(samples: list[float]) -> tuple[float, float]:
    return percentile(samples, 50), percentile(samples, 95)


def timed(fn, repeats: int) -> list[float]:
    out = []
    for i in range(repeats):
        start = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - start) * 1000)
    return out


ENCODER_QUERIES = [*QUERIES, "我想买一件冬季外套", "跑鞋", "适合下雨天的外套", "羊绒毛衣", "帐篷"]


def compare_encoders(settings: Settings, texts: list[str], queries: int) -> None:
    """Passages/s and query p50 of each bundled encoder on the same texts, in this process."""
    print("encoders (same texts, uncached)     passages/s   query p50 ms   query p95 ms")
    rates = {}
    for name in (MINILM, E5):
        encoder = load_encoder(settings.embedding.model_copy(update={"model": name}))
        encoder.encode(texts[:8])  # loads and warms; not timed
        start = time.perf_counter()
        encoder.encode(texts)
        rates[name] = len(texts) / (time.perf_counter() - start)
        latency = timed(
            lambda i, encoder=encoder: encoder.encode_queries([ENCODER_QUERIES[i % len(ENCODER_QUERIES)]]), queries
        )
        p50, p95 = percentiles(latency)
        print(f"  {name:34s} {rates[name]:10.1f}   {p50:12.2f}   {p95:12.2f}")
    print(f"  {E5} / {MINILM} indexing rate: {rates[E5] / rates[MINILM]:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--turns", type=int, default=3)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="recchat-bench-"))
    settings = Settings(data_dir=workdir, cache_dir=Settings().cache_dir)
    encoder = load_encoder(settings.embedding)
    catalog = scaled_catalog(args.items)

    cached = CachedEncoder(encoder, workdir / "embeddings.sqlite")
    index = VectorIndex(open_store(workdir / "chroma"), "bench", cached)
    start = time.perf_counter()
    index.sync(catalog)
    build_s = time.perf_counter() - start
    start = time.perf_counter()
    resync = index.sync(catalog)
    resync_s = time.perf_counter() - start
    start = time.perf_counter()
    texts = [item.embedding_text() for item in list(catalog)[:512]]
    encoder.encode(texts)
    encode_rate = len(texts) / (time.perf_counter() - start)

    compare_encoders(settings, [item.embedding_text() for item in list(catalog)[:256]], min(args.queries, 100))

    retriever = Retriever(catalog, index, settings.retrieval)
    vectors = {q: cached.encode_queries([q])[0] for q in QUERIES}  # encoded once: measure search, not encoding

    def query_vector(i: int):
        return vectors[QUERIES[i % len(QUERIES)]]

    def search(i: int, constraints: Constraints | None = None):
        return retriever.search(QUERIES[i % len(QUERIES)], constraints, k=8, vector=query_vector(i))

    plain = timed(search, args.queries)
    selective = timed(lambda i: search(i, SELECTIVE), args.queries)

    where = timed(lambda i: index.nearest(query_vector(i), 8, where=where_filter(SELECTIVE)), args.queries)
    broad = timed(lambda i: search(i, BROAD), args.queries)
    broadwhere_filter = timed(lambda i: index.nearest(query_vector(i), 8, where=where_filter(BROAD)), args.queries)
    raw = timed(lambda i: index.nearest(query_vector(i), 8), args.queries)

    print(f"# recchat core benchmark ({args.items} items, {os.cpu_count()} CPUs)")
    print(f"index build (embed + upsert): {args.items / build_s:8.1f} items/s  ({build_s:.1f} s)")
    print(f"encoder alone:                {encode_rate:8.1f} items/s")
    print(f"re-sync unchanged catalog:    {resync_s:8.2f} s  ({resync.unchanged} unchanged, "
          f"ratio to build {resync_s / build_s:.3f})")
    print(f"filters' share of the catalog: selective {retriever.share(SELECTIVE):.3f}, "
          f"broad {retriever.share(BROAD):.3f}")
    print("query latency, ms                       p50      p95")
    for label, samples in [("chroma nearest only (baseline)", raw), ("search, no filter", plain),
                           ("search, selective filter", selective), ("chroma `where`, selective (baseline)", where),
                           ("search, broad filter", broad), ("chroma `where`, broad (baseline)", broadwhere_filter)]:
        p50, p95 = percentiles(samples)
        print(f"  {label:36s} {p50:7.2f}  {p95:7.2f}")
    print(f"  search / chroma where, p50: selective {percentiles(selective)[0] / percentiles(where)[0]:.2f}x, "
          f"broad {percentiles(broad)[0] / percentiles(broadwhere_filter)[0]:.2f}x")

    if args.turns:
        bot = RecChat.from_settings(Settings(data_dir=workdir), encoder=encoder)  # asked in English: no bridge started
        bot.chat("warm socks")  # loads the LLM; not timed
        firsts, totals, sources = [], [], []
        session = bot.new_session()
        for message in ["I want a winter coat", "cheaper", "waterproof hiking boots under $200"][: args.turns]:
            reply = bot.chat(message, session)
            firsts.append(reply.metadata.timings_ms.get("first_token_ms", float("nan")))
            totals.append(reply.metadata.timings_ms["total_ms"])
            sources.append(reply.metadata.source)
        print(f"chat turn on {bot.backend.name} ({settings.llm.device}), {len(totals)} turns:")
        print(f"  first token p50 {statistics.median(firsts):8.0f} ms   total p50 {statistics.median(totals):8.0f} ms"
              f"   max {max(totals):8.0f} ms   sources {sources}")


if __name__ == "__main__":
    main()
