"""Many users at once: simulated shoppers, each holding a 3-turn conversation, all at the same time, through the
async chat API (`RecChat.achat`) on the bundled catalog.

    python bench/serving.py [--users 1 8 32] [--engines transformers llamacpp served-llamacpp served-transformers]
                            [--max-tokens 200] [--vllm-url http://HOST:8000/v1 --vllm-model NAME] [--device cpu]

Engines: `transformers` and `llamacpp` are the model in this process (one generation at a time); `served-llamacpp`
is llama.cpp's server and `served-transformers` is `transformers serve --continuous-batching`, each started here as
`recchat serve-llm` starts it; `vllm` is a running `vllm serve` given by --vllm-url (it needs a GPU and its own
environment). Per engine and number of users it prints
p50/p95 turn latency, time to first token (from the message, so retrieval and any queueing count), output tokens/s
over the whole run, and failed turns (the LLM's answer missing: error or past --timeout). Ratios compare each
engine with the in-process transformers engine at the same number of users, run in the same process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recchat.chat import RecChat  # noqa: E402
from recchat.config import Settings  # noqa: E402
from recchat.embeddings import load_encoder  # noqa: E402
from recchat.evaluation.metrics import percentile  # noqa: E402
from recchat.llm import LLMBackend, make_backend  # noqa: E402
from recchat.llm.local import gguf_file, prepare_model_dir  # noqa: E402
from recchat.llm.openai_compatible import OpenAICompatibleBackend  # noqa: E402
from recchat.llm.server import LLMServer, free_port  # noqa: E402

CONVERSATIONS = [
    ["I want a winter coat", "cheaper", "waterproof hiking boots under $200"],
    ["running shoes", "under $100", "a rain jacket"],
    ["a gift for a hiker", "more like that", "a wool scarf"],
    ["a backpack for travel", "cheaper", "sunglasses"],
]


class Metered(LLMBackend):
    """The backend under test, keeping each answer's text so its tokens can be counted."""

    def __init__(self, real: LLMBackend):
        self.real, self.name = real, real.name
        self.outputs: list[str] = []

    def stream(self, messages, **options):
        return self.real.stream(messages, **options)

    async def astream(self, messages, **options):
        pieces: list[str] = []
        try:
            async for chunk in self.real.astream(messages, **options):
                pieces.append(chunk)
                yield chunk
        finally:
            self.outputs.append("".join(pieces))


@dataclass
class Result:
    users: int
    turns: int
    latency_ms: list[float]
    first_token_ms: list[float]
    output_tokens: int
    failures: int
    wall_s: float

    @property
    def tokens_per_s(self) -> float:
        return self.output_tokens / self.wall_s


async def conversation(bot: RecChat, user: int, results: list[tuple[float, float | None, bool]]) -> None:
    session = bot.new_session(user_id=f"shopper-{user}-{time.monotonic_ns()}")
    for message in CONVERSATIONS[user % len(CONVERSATIONS)]:
        started = time.perf_counter()
        try:
            reply = await bot.achat(message, session)
        except Exception:  # counted, not hidden: any exception out of a turn is a failure
            results.append(((time.perf_counter() - started) * 1000, None, True))
            continue
        timings = reply.metadata.timings_ms
        first = timings["retrieval_ms"] + timings["first_token_ms"] if "first_token_ms" in timings else None
        failed = "unavailable" in (reply.metadata.fallback_reason or "")
        results.append(((time.perf_counter() - started) * 1000, first, failed))


def run(bot: RecChat, metered: Metered, users: int, tokenizer) -> Result:
    turns: list[tuple[float, float | None, bool]] = []
    metered.outputs.clear()

    async def everyone() -> None:
        await asyncio.gather(*(conversation(bot, user, turns) for user in range(users)))

    started = time.perf_counter()
    asyncio.run(everyone())
    wall_s = time.perf_counter() - started
    tokens = sum(len(tokenizer(text, add_special_tokens=False)["input_ids"]) for text in metered.outputs)
    return Result(
        users=users, turns=len(turns), latency_ms=[t[0] for t in turns],
        first_token_ms=[t[1] for t in turns if t[1] is not None], output_tokens=tokens,
        failures=sum(t[2] for t in turns), wall_s=wall_s,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, nargs="+", default=[1, 8, 32])
    engines = ["transformers", "llamacpp", "served-llamacpp", "served-transformers"]
    parser.add_argument("--engines", nargs="+", default=engines, choices=engines)
    defaults = Settings()
    parser.add_argument("--max-tokens", type=int, default=defaults.llm.max_new_tokens)
    parser.add_argument("--timeout", type=float, default=600.0, help="llm.timeout_s: past it a turn counts as failed")
    parser.add_argument("--device", default="cpu", help="torch device of the in-process model")
    parser.add_argument("--vllm-url", help="a running `vllm serve` (OpenAI API base URL) to measure too")
    parser.add_argument("--vllm-model", help="the model name vllm serves")
    args = parser.parse_args()

    from transformers import AutoTokenizer

    workdir = Path(tempfile.mkdtemp(prefix="recchat-serving-"))
    base = defaults.model_copy(update={"data_dir": workdir})
    llm = base.llm.model_copy(update={  # every user waits for the model: the queue is what is measured
        "max_new_tokens": args.max_tokens, "timeout_s": args.timeout, "retry_after_s": 0,
        "max_waiting": max(args.users),
    })
    model_dir = str(prepare_model_dir(llm.model, base.cache_dir / "models"))
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    encoder = load_encoder(base.embedding)

    def engine(name: str, settings_llm, backend: LLMBackend) -> tuple[RecChat, Metered]:
        metered = Metered(backend)
        settings = base.model_copy(update={
            "llm": settings_llm,
            "feedback": base.feedback.model_copy(update={"path": workdir / f"{name}.sqlite3"}),
        })
        bot = RecChat.from_settings(settings, encoder=encoder, backend=metered)
        asyncio.run(bot.achat("warm socks"))  # loads and warms the model; not measured
        return bot, metered

    results: dict[str, list[Result]] = {}
    server = None
    try:
        for name in args.engines:
            if name in ("transformers", "llamacpp"):
                served_llm = llm.model_copy(update={"backend": name, "device": args.device})
                bot, metered = engine(name, served_llm, make_backend(base.model_copy(update={"llm": served_llm})))
            else:
                kind = name.removeprefix("served-")
                model = str(gguf_file(llm.model)) if kind == "llamacpp" else model_dir
                server = LLMServer(kind, model, port=free_port(), log=workdir / f"{kind}.log").start()
                served_llm = llm.model_copy(update={
                    "backend": "openai", "base_url": server.base_url, "model": model,
                    "engine": "llamacpp" if kind == "llamacpp" else "generic",
                })
                bot, metered = engine(name, served_llm, OpenAICompatibleBackend(served_llm))
            results[name] = [run(bot, metered, users, tokenizer) for users in args.users]
            print(f"{name}: done", flush=True)
            if server is not None:
                server.stop()
                server = None
        if args.vllm_url:
            vllm_llm = llm.model_copy(update={
                "backend": "openai", "base_url": args.vllm_url, "model": args.vllm_model, "engine": "vllm",
            })
            bot, metered = engine("vllm", vllm_llm, OpenAICompatibleBackend(vllm_llm))
            results["vllm"] = [run(bot, metered, users, tokenizer) for users in args.users]
    finally:
        if server is not None:
            server.stop()

    print(f"\n# recchat serving benchmark ({os.cpu_count()} CPUs, in-process device {args.device}, "
          f"max {args.max_tokens} new tokens, {len(CONVERSATIONS[0])} turns per user)")
    print("engine              users turns  p50 ms  p95 ms  TTFT p50  TTFT p95  out tok/s  failures  wall s"
          "   vs transformers: p50  tok/s")
    for name, rows in results.items():
        for row in rows:
            p50, p95 = percentile(row.latency_ms, 50), percentile(row.latency_ms, 95)
            first50 = percentile(row.first_token_ms, 50) if row.first_token_ms else float("nan")
            first95 = percentile(row.first_token_ms, 95) if row.first_token_ms else float("nan")
            line = (f"{name:19s} {row.users:5d} {row.turns:5d} {p50:7.0f} {p95:7.0f} {first50:9.0f} {first95:9.0f} "
                    f"{row.tokens_per_s:10.1f} {row.failures:9d} {row.wall_s:7.1f}")
            baseline = next((r for r in results.get("transformers", []) if r.users == row.users), None)
            if baseline is not None and name != "transformers":
                slower = p50 / percentile(baseline.latency_ms, 50)
                line += f"   {slower:17.2f}x {row.tokens_per_s / baseline.tokens_per_s:5.2f}x"
            print(line)
    if not args.vllm_url:
        print("vllm: not measured (needs a GPU and its own environment; pass --vllm-url to a running `vllm serve`)")


if __name__ == "__main__":
    main()
