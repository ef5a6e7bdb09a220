"""The HTTP API's throughput and latency: `POST /v1/chat` against a real `recchat serve` process at 1, 8, 32 and 64
concurrent clients (LLM off: the turn is understanding, retrieval and re-ranking), against the same turns through
the in-process async API (`RecChat.achat`) in the same run. The ratio is what HTTP, JSON and the server cost.

    python bench/http_api.py [--clients 1 8 32 64] [--turns 256]

Each client sends turns back to back (new sessions, messages from a fixed list) until `turns` are done.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from recchat.chat import RecChat  # noqa: E402
from recchat.config import Settings  # noqa: E402
from recchat.evaluation.metrics import percentile  # noqa: E402
from recchat.server.process import ApiServer  # noqa: E402

HEADER = "clients | HTTP turns/s | p50 ms | p95 ms | in-process turns/s | p50 ms | p95 ms | HTTP/in-process p50"
MESSAGES = [
    "I want a warm winter coat", "running shoes under $120", "a leather handbag", "a wool scarf", "a rain jacket",
    "waterproof hiking boots", "a gift for a hiker", "a backpack for travel",
]


async def run(clients: int, turns: int, turn: Callable[[int], Awaitable[None]]) -> tuple[float, list[float]]:
    """Turns per second and each turn's latency (ms), `clients` at a time; `turn(n)` takes the n-th turn."""
    latencies: list[float] = []
    remaining = iter(range(turns))

    async def client() -> None:
        for n in remaining:
            started = time.perf_counter()
            await turn(n)
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return turns / (time.perf_counter() - started), latencies


async def main_async(args: argparse.Namespace) -> None:
    data = Path(tempfile.mkdtemp(prefix="bench-http-"))
    sessions = 100_000  # every turn opens one
    env = {
        "RECCHAT_DATA_DIR": str(data / "served"), "RECCHAT_LLM__BACKEND": "none",
        "RECCHAT_CHAT__MAX_SESSIONS": str(sessions),
    }
    local = Settings(data_dir=data / "local", llm={"backend": "none"}, chat={"max_sessions": sessions})
    bot = RecChat.from_settings(local)

    async def in_process(n: int) -> None:
        await bot.achat(MESSAGES[n % len(MESSAGES)])

    with ApiServer(env, data / "server.log", args=("--no-ui",)) as server:
        limits = httpx.Limits(max_connections=max(args.clients), max_keepalive_connections=max(args.clients))
        async with httpx.AsyncClient(base_url=server.base_url, timeout=120, limits=limits) as http:
            async def over_http(n: int) -> None:
                response = await http.post("/v1/chat", json={"message": MESSAGES[n % len(MESSAGES)]})
                response.raise_for_status()

            await run(4, 16, over_http)  # warm both up: the first turns load the encoder's kernels
            await run(4, 16, in_process)
            print(HEADER)
            for clients in args.clients:
                http_rate, http_ms = await run(clients, args.turns, over_http)
                local_rate, local_ms = await run(clients, args.turns, in_process)
                ratio = percentile(http_ms, 50) / percentile(local_ms, 50)
                print(f"{clients:>7} | {http_rate:>12.1f} | {percentile(http_ms, 50):>6.1f} | "
                      f"{percentile(http_ms, 95):>6.1f} | {local_rate:>18.1f} | {percentile(local_ms, 50):>6.1f} | "
                      f"{percentile(local_ms, 95):>6.1f} | {ratio:>18.2f}x", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--turns", type=int, default=256)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
