"""recchat's served LLM path on a GPU (issue #28): real recchat requests, replayed at 1, 8, 32 and 64 concurrent users
against an OpenAI-compatible server (vLLM with recchat's structured outputs, `transformers serve`, llama.cpp's server).

    python bench/gpu_serving.py record [--out bench/data/requests.jsonl]     # CPU machine, recchat installed
    python bench/gpu_serving.py convert GGUF DIR                              # GGUF -> bf16 safetensors folder
    python bench/gpu_serving.py replay --base-url URL --model NAME --engine vllm|transformers|llamacpp \
        [--kind recommend|read-state] [--users 1 8 32 64] [--requests 64] [--tokenizer DIR] [--out FILE]
    python bench/gpu_serving.py stream-check --base-url URL --model NAME [--out FILE]
    python bench/gpu_serving.py table bench/results/gpu-*.json               # the figures as a Markdown table

`record` runs recchat itself (default settings, the bundled products catalog) and writes each LLM request as
recchat would send it to vLLM
(`llm.backend = "openai"`, `llm.engine = "vllm"`): the chat-completions body from `OpenAICompatibleBackend.request`,
the schema, max_tokens and the candidates the answer may name. Also the model-read state requests
(`chat.state_reader = "model"`, prompts/read-state) for the same messages.

Everything else runs on the GPU machine's image, which has torch and transformers but none of recchat's own
dependencies: it needs only openai, pydantic(-settings), httpx2 and jsonschema (carried as wheels). recchat's LLM
modules are imported without `recchat/__init__.py` (which loads the catalog, chromadb, ...): see `light_recchat`.
So each engine gets the body that recchat's own `request()` builds for it (vllm: `response_format` json_schema plus
the `structured_outputs` extra; transformers: `generic`, the standard fields; llamacpp: its own `json_object` form).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECCHAT_ROOT = Path(os.environ.get("GPU_BENCH_RECCHAT", ROOT))
"""Where recchat's modules are read from: a snapshot of a commit (`git archive`), so that the run does not depend
on uncommitted edits in the working tree."""
DATA = ROOT / "bench" / "data" / "requests.jsonl"
RESULTS = ROOT / "bench" / "results"
MODEL_NAME = "smollm2-135m"
"""The served model's name recorded in the bodies; `replay --model` replaces it with the server's."""


# --- recchat's LLM modules without recchat/__init__.py ------------------------------------------------------------

def light_recchat():
    """`recchat.llm.openai_compatible` and `recchat.config` need only openai, httpx2, pydantic and pydantic-settings,
    but `import recchat` runs recchat/__init__.py, which imports the chat engine (chromadb, sentence-transformers...).
    An empty package object stands in for it, so that only the submodules asked for are imported."""
    if "recchat" not in sys.modules:
        package = types.ModuleType("recchat")
        package.__path__ = [str(RECCHAT_ROOT / "recchat")]
        sys.modules["recchat"] = package
    from recchat.config import LLMSettings
    from recchat.llm.openai_compatible import OpenAICompatibleBackend

    return LLMSettings, OpenAICompatibleBackend


def body_for(record: dict, engine: str, model: str) -> dict:
    """The request recchat sends to this engine (`llm.engine`: vllm, llamacpp, or generic for transformers)."""
    LLMSettings, OpenAICompatibleBackend = light_recchat()
    settings = LLMSettings(backend="openai", engine="generic" if engine == "transformers" else engine, model=model)
    return OpenAICompatibleBackend(settings).request(record["messages"], record["schema"], record["max_tokens"])


# --- record (CPU machine, recchat installed) -------------------------------------------------------------------

CONVERSATIONS = [  # each a shopper's turns, on the bundled products catalog; follow-ups refine the state
    ["I want a winter coat", "it's for my wife", "cheaper"],
    ["waterproof hiking boots", "for men", "under $200"],
    ["running shoes", "in black", "something lighter"],
    ["a gift for a hiker", "more like that", "under $50"],
    ["a backpack for travel", "cheaper", "a daypack instead"],
    ["a warm sweater", "for my son", "in blue"],
    ["jeans", "for women", "slim fit"],
    ["a summer dress", "something for the beach", "in white"],
    ["a tent for two people", "lightweight", "under $300"],
    ["leggings for yoga", "for women", "with pockets"],
    ["a rain jacket", "for kids", "bright colours"],
    ["sunglasses", "for men", "polarized"],
    ["warm gloves", "for skiing", "mittens instead"],
    ["a wool scarf", "in red", "something cheaper"],
    ["slippers", "for my dad", "any colour"],
    ["a camping stove", "a headlamp too", "a sleeping pad"],
]
SINGLE_MESSAGES = [  # asked with chat.ranking = "llm": the model names its picks by id
    "a parka for the coldest days", "comfortable loafers for the office", "a cardigan for my grandmother",
    "trail running shoes under $150", "a water bottle for hiking", "a swimsuit for my daughter",
    "chinos for work, not too expensive", "a hoodie for a teenager", "trekking poles", "a belt in brown leather",
    "a beanie for winter", "an umbrella that fits in a bag", "a sports bra for running",
    "sneakers for everyday, in white", "我想买一件冬季外套", "给我儿子买一双靴子",
]


def allowed_ids(schema: dict) -> list[str]:
    """What the answer may name: the ids (`A1`...) of an answer that names its picks; else, for an answer that
    explains the ranking's items in order, their positions' aliases; for a read-state answer, nothing (its enums
    are checked by the schema)."""
    items = schema.get("properties", {}).get("items", {})
    inner = items.get("items", {})
    ids = [value for option in inner.get("anyOf", [inner]) if isinstance(option, dict)
           for value in ([option.get("properties", {}).get("id", {}).get("const")]
                         + option.get("properties", {}).get("id", {}).get("enum", [])) if value]
    if ids:
        return ids
    return [f"A{position + 1}" for position in range(len(items.get("prefixItems", [])))]


def record(args: argparse.Namespace) -> None:
    import tempfile

    sys.path.insert(0, str(RECCHAT_ROOT))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from recchat.chat import RecChat
    from recchat.config import Settings
    from recchat.llm import LLMBackend, make_backend
    from recchat.llm.openai_compatible import OpenAICompatibleBackend
    from recchat.understanding.model_reading import read_with_model

    records: list[dict] = []
    context: dict = {}

    class Recorder(LLMBackend):
        """Writes down the request recchat would send to vLLM, and answers with the in-process model (`--answer
        llamacpp`) or not at all (`none`: the turn then gives fact-built reasons). The requests are the same either
        way: with `chat.ranking = "retrieval"` the items shown, and so the follow-ups, do not depend on the answer."""

        def __init__(self, real: LLMBackend | None, shape: OpenAICompatibleBackend):
            self.real, self.shape, self.name = real, shape, real.name if real else "recorder"

        def stream(self, messages, *, schema=None, max_tokens=256):
            body = self.shape.request(messages, schema, max_tokens)
            pieces: list[str] = []
            try:
                for piece in self.real.stream(messages, schema=schema, max_tokens=max_tokens) if self.real else ():
                    pieces.append(piece)
                    yield piece
            finally:
                kind = "recommend" if "items" in (schema or {}).get("properties", {}) else "read-state"
                records.append({
                    "id": f"{kind}-{len(records):03d}", "kind": kind, **context,
                    "messages": messages, "schema": schema, "max_tokens": max_tokens,
                    "candidates": allowed_ids(schema or {}) if kind == "recommend" else [],
                    "body": body, **({"cpu_answer": "".join(pieces)} if self.real else {}),
                })

    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    context["recchat_commit"] = args.commit or commit
    workdir = Path(tempfile.mkdtemp(prefix="recchat-record-"))
    base = Settings(data_dir=workdir, embedding={"bridge": ""}, llm={"timeout_s": 600, "retry_after_s": 0})
    shape = OpenAICompatibleBackend(base.llm.model_copy(update={
        "backend": "openai", "engine": "vllm", "model": MODEL_NAME,
    }))
    real = make_backend(base) if args.answer == "llamacpp" else None
    print(f"answering with {real.name if real else 'nothing'}; recording the vllm-shaped requests", flush=True)

    def bot_for(ranking: str) -> RecChat:
        settings = base.model_copy(update={
            "chat": base.chat.model_copy(update={"ranking": ranking}),
            "feedback": base.feedback.model_copy(update={"path": workdir / f"{ranking}.sqlite3"}),
        })
        return RecChat.from_settings(settings, backend=Recorder(real, shape))

    bot = bot_for("retrieval")
    for number, turns in enumerate(CONVERSATIONS):
        session = bot.new_session()
        for turn, message in enumerate(turns):
            context.update(conversation=number, turn=turn, message=message, ranking="retrieval")
            reply = bot.chat(message, session)
            print(f"  [{number}.{turn}] {message!r}: {len(reply.items)} items, source {reply.metadata.source}",
                  flush=True)
    for number, message in enumerate(SINGLE_MESSAGES):
        context.update(conversation=100 + number, turn=0, message=message, ranking="llm")
        bot = bot_for("llm") if number == 0 else bot
        reply = bot.chat(message, bot.new_session())
        print(f"  [llm {number}] {message!r}: {len(reply.items)} items, source {reply.metadata.source}", flush=True)
    for number, turns in enumerate(CONVERSATIONS):  # what chat.state_reader = "model" asks of the model, per message
        for turn, message in enumerate(turns):
            context.update(conversation=number, turn=turn, message=message, ranking="read-state")
            read_with_model(bot.llm, bot.state_prompt, bot.lexicon, message)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w") as file:
        for row in records:
            file.write(json.dumps(row, ensure_ascii=False) + "\n")
    kinds = {kind: sum(r["kind"] == kind for r in records) for kind in ("recommend", "read-state")}
    print(f"{len(records)} requests ({kinds}) written to {out}")


# --- convert (GPU machine or here) -------------------------------------------------------------------------------

def convert(args: argparse.Namespace) -> None:
    """The bundled GGUF to a bf16 safetensors folder, with recchat's own conversion (recchat.llm.local)."""
    light_recchat()
    from recchat.llm.local import _convert_gguf

    target = Path(args.target)
    if (target / "config.json").is_file():
        print(f"{target} is there already")
        return
    started = time.perf_counter()
    _convert_gguf(Path(args.gguf), target)
    size = sum(path.stat().st_size for path in target.iterdir())
    print(f"converted {args.gguf} to {target} ({size / 2**20:.0f} MiB) in {time.perf_counter() - started:.1f} s")


# --- checking an answer ----------------------------------------------------------------------------------------

def check(answer: str, record: dict) -> dict[str, bool]:
    """Whether the answer parses, follows the schema, and names only what it was given: for a recommendation, only
    candidate ids (an answer in ranking order: no more entries than items shown, each one of that item's allowed
    reasons); for a read-state answer, only the catalog's values."""
    import jsonschema

    try:
        value = json.loads(answer)
    except ValueError:
        return {"parsed": False, "valid": False, "grounded": False}
    if not isinstance(value, dict):
        return {"parsed": False, "valid": False, "grounded": False}
    schema = record["schema"]
    valid = jsonschema.Draft202012Validator(schema).is_valid(value)
    properties = schema.get("properties", {})
    if record["kind"] == "read-state":
        grounded = all(name in properties and item in properties[name].get("enum", []) for name, item in value.items())
        return {"parsed": True, "valid": valid, "grounded": grounded}
    picks = value.get("items")
    if not isinstance(picks, list):
        return {"parsed": True, "valid": valid, "grounded": False}
    prefix = properties.get("items", {}).get("prefixItems")
    if prefix is not None:  # explains the ranking's items in order: entry i must be one of item i's reasons
        grounded = len(picks) <= len(prefix) and all(
            any(pick == option.get("const") for option in prefix[i].get("anyOf", [])) for i, pick in enumerate(picks)
        )
    else:
        grounded = all(isinstance(pick, dict) and pick.get("id") in record["candidates"] for pick in picks)
    return {"parsed": True, "valid": valid, "grounded": grounded}


# --- replay ----------------------------------------------------------------------------------------------------

def device_name() -> str:
    try:
        names = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                               capture_output=True, text=True, timeout=20).stdout.strip()
        if names:
            return names
    except (OSError, subprocess.SubprocessError):
        pass
    return f"no GPU: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


async def one(client, body: dict, count_tokens) -> dict:
    """Send one request, streamed; the answer, time to first token, total time, and how it ended."""
    started = time.perf_counter()
    first = None
    pieces: list[str] = []
    finish = None
    usage = None
    try:
        stream = await client.chat.completions.create(**body)
        async with stream:
            async for chunk in stream:
                if getattr(chunk, "usage", None):
                    usage = chunk.usage.completion_tokens
                if not chunk.choices:
                    continue
                choice = chunk.choices[0]
                if choice.delta.content:
                    if first is None:
                        first = time.perf_counter()
                    pieces.append(choice.delta.content)
                finish = choice.finish_reason or finish
    except Exception as error:  # counted, not hidden
        return {"error": f"{type(error).__name__}: {str(error)[:300]}", "ms": (time.perf_counter() - started) * 1000}
    ended = time.perf_counter()
    result = {"answer": "".join(pieces), "ms": (ended - started) * 1000, "finish": finish, "usage": usage,
              "chunks": len(pieces), "ttft_ms": None if first is None else (first - started) * 1000}
    if finish is None:
        result["error"] = "stream ended without a finish_reason"
    else:
        result["tokens"] = count_tokens(result["answer"])
    return result


async def level(
    client, bodies: list[tuple[dict, dict]], users: int, count: int, timeout_s: float, grace_s: float, count_tokens
) -> dict:
    """`users` shoppers at once, each sending its next request when the last is answered, until `count` requests
    were sent; none is started after `timeout_s`, and those still running `timeout_s` + `grace_s` after the start
    are cancelled (reported as unfinished)."""
    queue = asyncio.Queue()
    for index in range(count):
        queue.put_nowait(bodies[index % len(bodies)])
    results: list[tuple[dict, dict]] = []
    started, cpu_started = time.perf_counter(), time.process_time()
    deadline = started + timeout_s
    last_end = [started]

    async def shopper() -> None:
        while not queue.empty() and time.perf_counter() < deadline:
            record, body = queue.get_nowait()
            result = await one(client, body, count_tokens)
            last_end[0] = time.perf_counter()
            results.append((record, result))

    tasks = [asyncio.create_task(shopper()) for _ in range(users)]
    _, pending = await asyncio.wait(tasks, timeout=timeout_s + grace_s)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    wall_s = (time.perf_counter() if pending else last_end[0]) - started
    row = summarize(results, users, count, len(pending), wall_s)
    row["client_cpu_s"] = round(time.process_time() - cpu_started, 2)  # near wall_s: the client was the limit
    return row


def summarize(results: list[tuple[dict, dict]], users: int, count: int, cut: int, wall_s: float) -> dict:
    completed = [(record, result) for record, result in results if "error" not in result]
    failures = [result["error"] for _, result in results if "error" in result]
    checks = [check(result["answer"], record) for record, result in completed]
    tokens = [result["tokens"] for _, result in completed]
    latencies = [result["ms"] for _, result in completed]
    ttfts = [result["ttft_ms"] for _, result in completed if result["ttft_ms"] is not None]
    finishes: dict[str, int] = {}
    for _, result in completed:
        finishes[str(result["finish"])] = finishes.get(str(result["finish"]), 0) + 1

    def share(key: str) -> float | None:
        return round(sum(c[key] for c in checks) / len(checks), 4) if checks else None

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value, 1)

    return {
        "users": users, "requests": count, "sent": len(results) + cut, "completed": len(completed),
        "failures": len(failures), "unfinished": cut, "failure_examples": sorted(set(failures))[:3],
        "p50_ms": ms(percentile(latencies, 50)), "p95_ms": ms(percentile(latencies, 95)),
        "ttft_p50_ms": ms(percentile(ttfts, 50)), "ttft_p95_ms": ms(percentile(ttfts, 95)),
        "output_tokens": sum(tokens), "mean_output_tokens": round(statistics.mean(tokens), 1) if tokens else None,
        "wall_s": round(wall_s, 3),
        "output_tokens_per_s": round(sum(tokens) / wall_s, 1) if wall_s > 0 and tokens else 0.0,
        "parsed_share": share("parsed"), "schema_valid_share": share("valid"), "only_given_share": share("grounded"),
        "finish_reasons": finishes,
        "example_answer": completed[0][1]["answer"][:400] if completed else None,
    }


def load_records(path: Path, kind: str) -> list[dict]:
    return [row for row in map(json.loads, path.read_text().splitlines()) if row["kind"] == kind]


def replay(args: argparse.Namespace) -> None:
    import openai

    records = load_records(Path(args.data), args.kind)
    if args.limit:
        records = records[: args.limit]
    bodies = [(record, body_for(record, args.engine, args.model)) for record in records]
    if args.engine == "vllm":  # the recording is recchat's vllm request; rebuilding it must give the same body
        mismatched = [r["id"] for r, body in bodies if {**r["body"], "model": args.model} != body]
        assert not mismatched, f"recorded bodies differ from recchat's request(): {mismatched[:5]}"
    count_tokens = token_counter(args.tokenizer)
    client = openai.AsyncOpenAI(base_url=args.base_url, api_key="EMPTY", max_retries=0, timeout=args.request_timeout)
    out = Path(args.out) if args.out else RESULTS / f"gpu-{args.engine}-{args.kind}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "device": device_name(), "engine": args.engine, "kind": args.kind, "model": args.model,
        "base_url": args.base_url, "server": args.server_note, "recorded_requests": len(records),
        "request_shape": sorted(bodies[0][1]) if bodies else [],
        "max_tokens": records[0]["max_tokens"] if records else None,
        "tokens_counted_with": args.tokenizer or "characters / 4 (no tokenizer given)",
        "levels": [], "note": args.note,
        "method": "closed loop: each user sends its next recorded request when its last is answered; the "
                  "requests cycle through the recorded set; latency and TTFT from sending to the last and the "
                  "first streamed piece of text; output tokens counted with the model's tokenizer over completed "
                  "answers; tokens/s over the level's wall time (first send to last answer)",
    }

    async def run_all() -> None:
        for _ in range(args.warmup):  # not measured: the first answers load kernels and caches
            try:
                await asyncio.wait_for(one(client, bodies[0][1], count_tokens), 60)
            except TimeoutError:
                print("warm-up answer took over 60 s", flush=True)
        for index, users in enumerate(args.users):
            count = args.requests[min(index, len(args.requests) - 1)]
            row = await level(client, bodies, users, count, args.level_timeout, args.level_grace, count_tokens)
            report["levels"].append(row)
            out.write_text(json.dumps(report, indent=1, ensure_ascii=False))
            print(f"{args.engine} {args.kind} users={users:3d} sent={row['sent']:3d} ok={row['completed']:3d} "
                  f"fail={row['failures']} cut={row['unfinished']} p50={row['p50_ms']} p95={row['p95_ms']} "
                  f"ttft50={row['ttft_p50_ms']} tok/s={row['output_tokens_per_s']} "
                  f"valid={row['schema_valid_share']} given={row['only_given_share']} {row['finish_reasons']}",
                  flush=True)
            if row["failure_examples"]:
                print("   failures:", row["failure_examples"], flush=True)

    asyncio.run(run_all())
    print(f"written to {out}")


def token_counter(tokenizer_dir: str | None):
    if not tokenizer_dir:
        return lambda text: len(text) // 4 or 1  # no tokenizer: a rough count (only for a smoke test)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    return lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])


# --- stream-check: recchat's own backend against the server -------------------------------------------------------

def stream_check(args: argparse.Namespace) -> None:
    """recchat's `OpenAICompatibleBackend` (llm.engine as given) streams recorded requests, blocking and async."""
    LLMSettings, OpenAICompatibleBackend = light_recchat()
    records = load_records(Path(args.data), "recommend")[: args.limit] + load_records(Path(args.data), "read-state")[:2]
    settings = LLMSettings(backend="openai", engine=args.engine, base_url=args.base_url, model=args.model,
                           timeout_s=60, retry_after_s=0)
    backend = OpenAICompatibleBackend(settings)
    rows = []
    for record in records:
        started = time.perf_counter()
        row = {"id": record["id"], "kind": record["kind"]}
        try:
            pieces = list(backend.stream(record["messages"], schema=record["schema"], max_tokens=record["max_tokens"]))
            row.update(sync_pieces=len(pieces), sync_ms=round((time.perf_counter() - started) * 1000, 1),
                       **{f"sync_{k}": v for k, v in check("".join(pieces), record).items()})

            async def gather(record=record) -> list[str]:
                return [piece async for piece in backend.astream(
                    record["messages"], schema=record["schema"], max_tokens=record["max_tokens"])]

            started = time.perf_counter()
            apieces = asyncio.run(gather())
            row.update(async_pieces=len(apieces), async_ms=round((time.perf_counter() - started) * 1000, 1),
                       same_answer="".join(apieces) == "".join(pieces),
                       **{f"async_{k}": v for k, v in check("".join(apieces), record).items()},
                       answer="".join(pieces)[:300])
        except Exception as error:  # noqa: BLE001 - reported
            row["error"] = f"{type(error).__name__}: {str(error)[:300]}"
        rows.append(row)
        print(json.dumps(row, ensure_ascii=False)[:400], flush=True)
    summary = {
        "device": device_name(), "engine": args.engine, "model": args.model, "backend": "recchat.llm.openai_compatible."
        "OpenAICompatibleBackend (stream and astream), imported without recchat/__init__.py",
        "checked": len(rows), "errors": sum("error" in row for row in rows),
        "streamed": sum(row.get("sync_pieces", 0) > 1 and row.get("async_pieces", 0) > 1 for row in rows),
        "schema_valid": sum(bool(row.get("sync_valid")) and bool(row.get("async_valid")) for row in rows),
        "rows": rows,
    }
    out = Path(args.out) if args.out else RESULTS / f"gpu-{args.engine}-stream-check.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=1, ensure_ascii=False))
    print({k: v for k, v in summary.items() if k != "rows"})


# --- table ---------------------------------------------------------------------------------------------------------

def table(args: argparse.Namespace) -> None:
    def seconds(ms):
        return "-" if ms is None else f"{ms / 1000:.2f} s"

    def pct(x):
        return "-" if x is None else f"{x * 100:.0f}%"

    print("| engine | requests | users | sent | p50 | p95 | TTFT p50 | output tok/s | failures | parsed | "
          "schema-valid | names only given |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for path in args.files:
        report = json.loads(Path(path).read_text())
        if "levels" not in report:
            continue
        for row in report["levels"]:
            failures = f"{row['failures']}" + (f" (+{row['unfinished']} cut)" if row["unfinished"] else "")
            print(f"| {report['engine']} | {report['kind']} | {row['users']} | {row['sent']} | "
                  f"{seconds(row['p50_ms'])} | {seconds(row['p95_ms'])} | {seconds(row['ttft_p50_ms'])} | "
                  f"{row['output_tokens_per_s']:.0f} | "
                  f"{failures} | {pct(row['parsed_share'])} | {pct(row['schema_valid_share'])} | "
                  f"{pct(row['only_given_share'])} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("record")
    p.add_argument("--out", default=str(DATA))
    p.add_argument("--answer", choices=["none", "llamacpp"], default="none",
                   help="who answers the recorded requests here (the requests do not depend on it)")
    p.add_argument("--commit", help="the commit recchat's modules come from (default: this checkout's HEAD)")
    p.set_defaults(run=record)
    p = commands.add_parser("convert")
    p.add_argument("gguf")
    p.add_argument("target")
    p.set_defaults(run=convert)
    for name, run in (("replay", replay), ("stream-check", stream_check)):
        p = commands.add_parser(name)
        p.add_argument("--base-url", required=True)
        p.add_argument("--model", required=True, help="the model name the server answers to")
        p.add_argument("--engine", default="vllm", choices=["vllm", "transformers", "llamacpp"])
        p.add_argument("--data", default=str(DATA))
        p.add_argument("--limit", type=int, default=0 if name == "replay" else 4, help="use the first N records")
        p.add_argument("--out")
        p.set_defaults(run=run)
        if name == "stream-check":
            continue
        p.add_argument("--kind", default="recommend", choices=["recommend", "read-state"])
        p.add_argument("--users", type=int, nargs="+", default=[1, 8, 32, 64])
        p.add_argument("--requests", type=int, nargs="+", default=[64], help="per level (one, or one per level)")
        p.add_argument("--level-timeout", type=float, default=60.0, help="no request is sent later in a level")
        p.add_argument("--level-grace", type=float, default=30.0, help="then requests still running are cancelled")
        p.add_argument("--request-timeout", type=float, default=120.0)
        p.add_argument("--warmup", type=int, default=2)
        p.add_argument("--tokenizer", help="model folder whose tokenizer counts output tokens")
        p.add_argument("--server-note", default="", help="how the server was started (kept in the JSON)")
        p.add_argument("--note", default="")
    p = commands.add_parser("table")
    p.add_argument("files", nargs="+")
    p.set_defaults(run=table)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
