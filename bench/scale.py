"""Beyond one process: `recchat serve` workers over the shared services (PostgreSQL feedback log, Chroma server)
against the embedded set-up (SQLite, embedded Chroma) in the same run, LLM off.

    python bench/scale.py [--workers 1 2 4] [--clients 16] [--turns 256] [--rounds 50] [--items 2000]

1. Turns per second through HTTP at 1, 2 and 4 workers (clients spread round-robin over them) against one embedded
   worker.
2. Event -> effect across workers: a dislike sent to worker A, then the same user's next turn asked of worker B;
   the time from sending the dislike until B's answer (which must hide the item). Target: p95 <= 100 ms.
3. Indexing into the Chroma server against the embedded store: upserts of precomputed vectors, items per second.

The services are started through recchat/services.py if they are down (and stopped again at the end).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
from core import scaled_catalog  # noqa: E402
from http_api import run  # noqa: E402

from recchat import services  # noqa: E402
from recchat.config import Settings  # noqa: E402
from recchat.embeddings import load_encoder  # noqa: E402
from recchat.evaluation.metrics import percentile  # noqa: E402
from recchat.retrieval import UPSERT_BATCH, VectorIndex, open_store, open_vector_store  # noqa: E402
from recchat.server.process import ApiServer  # noqa: E402

MESSAGES = ["I want a warm winter coat", "running shoes under $120", "a leather handbag", "a wool scarf",
            "a rain jacket", "waterproof hiking boots", "a backpack for travel", "a summer dress"]


def start_workers(stack: ExitStack, count: int, env: dict[str, str], folder: Path) -> list[str]:
    """`count` servers (each its own process and data folder), started one after another; their base URLs."""
    urls = []
    for n in range(count):
        worker_env = {"RECCHAT_DATA_DIR": str(folder / f"worker-{n}"), "RECCHAT_LLM__BACKEND": "none", **env}
        server = stack.enter_context(ApiServer(worker_env, folder / f"worker-{n}.log", args=("--no-ui",)))
        urls.append(server.base_url)
    return urls


async def throughput(urls: list[str], clients: int, turns: int) -> tuple[float, float, float]:
    """Turns per second, p50 and p95 ms, `clients` at once, each turn to the next worker in turn."""
    limits = httpx.Limits(max_connections=clients * len(urls))
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        async def turn(n: int) -> None:
            response = await http.post(f"{urls[n % len(urls)]}/v1/chat", json={"message": MESSAGES[n % 8]})
            response.raise_for_status()

        await run(4 * len(urls), 4 * len(urls) * 4, turn)  # warm-up: every worker's encoder kernels and connections
        rate, latencies = await run(clients, turns, turn)
        return rate, percentile(latencies, 50), percentile(latencies, 95)


def event_to_effect(first: str, second: str, rounds: int) -> list[float]:
    """ms from sending a dislike to worker `first` until worker `second` answers without the item."""
    samples = []
    with httpx.Client(timeout=60) as http:
        for n in range(rounds):
            user = f"bench-user-{n}"
            shown = http.post(f"{second}/v1/chat", json={"message": MESSAGES[n % 8], "user_id": user}).json()
            disliked = shown["items"][0]["id"]
            started = time.perf_counter()
            http.post(f"{first}/v1/feedback", json={"kind": "dislike", "item_id": disliked, "user_id": user})
            after = http.post(f"{second}/v1/chat", json={"message": MESSAGES[n % 8], "user_id": user}).json()
            samples.append((time.perf_counter() - started) * 1000)
            if disliked in [item["id"] for item in after["items"]]:
                raise AssertionError(f"round {n}: the disliked item came back from the other worker")
    return samples


def indexing(urls: dict[str, str], items: int, folder: Path) -> dict[str, float]:
    """Items per second upserted (vectors precomputed, so the store's own cost) into the server and embedded."""
    catalog = scaled_catalog(items)
    encoder = load_encoder(Settings().embedding)
    vectors = encoder.encode([item.embedding_text() for item in catalog])
    rates = {}
    clients = {
        "Chroma server": open_vector_store(Settings(vectorstore={"url": urls["RECCHAT_VECTORSTORE__URL"]})),
        "embedded Chroma": open_store(folder / "embedded-chroma"),
    }
    items_list = list(catalog)
    for name, client in clients.items():
        index = VectorIndex(client, f"bench-index-{uuid.uuid4().hex[:8]}", encoder)
        started = time.perf_counter()
        for start in range(0, len(items_list), UPSERT_BATCH):
            batch = items_list[start : start + UPSERT_BATCH]
            index.collection.upsert(ids=[item.id for item in batch], embeddings=vectors[start : start + len(batch)],
                                    metadatas=[{"hash": item.content_hash()} for item in batch])
        rates[name] = len(items_list) / (time.perf_counter() - started)
        client.delete_collection(index.collection.name)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--turns", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--items", type=int, default=2000)
    args = parser.parse_args()
    started_here = not services.running()
    urls = services.up()
    folder = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    try:
        with ExitStack() as stack:
            embedded = start_workers(stack, 1, {}, folder / "embedded")
            rate, p50, p95 = asyncio.run(throughput(embedded, args.clients, args.turns))
            print(f"turns over HTTP, {args.clients} clients, LLM off (2 CPUs: server and benchmark share them)")
            print("set-up | workers | turns/s | p50 ms | p95 ms | turns/s vs embedded")
            print(f"embedded (SQLite, embedded Chroma) | 1 | {rate:.1f} | {p50:.1f} | {p95:.1f} | 1.00x", flush=True)
            baseline = rate
        for count in args.workers:
            with ExitStack() as stack:
                env = {"RECCHAT_FEEDBACK__URL": services.fresh_schema(urls["RECCHAT_FEEDBACK__URL"], "bench"),
                       "RECCHAT_VECTORSTORE__URL": urls["RECCHAT_VECTORSTORE__URL"]}
                workers = start_workers(stack, count, env, folder / f"shared-{count}")
                rate, p50, p95 = asyncio.run(throughput(workers, args.clients, args.turns))
                print(f"services (PostgreSQL, Chroma server) | {count} | {rate:.1f} | {p50:.1f} | {p95:.1f} | "
                      f"{rate / baseline:.2f}x", flush=True)
                if count >= 2:
                    samples = event_to_effect(workers[0], workers[1], args.rounds)
                    print(f"  event -> effect across workers ({args.rounds} rounds): p50 "
                          f"{percentile(samples, 50):.1f} ms, p95 {percentile(samples, 95):.1f} ms (target p95 <= 100)",
                          flush=True)
        rates = indexing(urls, args.items, folder)
        print(f"indexing {args.items} items (vectors precomputed): " + ", ".join(
            f"{name} {rate:.0f} items/s" for name, rate in rates.items()
        ) + f"; server / embedded {rates['Chroma server'] / rates['embedded Chroma']:.2f}x")
    finally:
        if started_here:
            services.down()


if __name__ == "__main__":
    main()
