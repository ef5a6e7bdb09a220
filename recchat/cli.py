"""`recchat` command line: chat (one-shot or interactive), index, catalog inspect / build-movies, eval, feedback."""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from pathlib import Path

from recchat.errors import RecChatError
from recchat.evaluation import SYSTEMS as OFFLINE_SYSTEMS
from recchat.models import is_utf8_text

FEEDBACK_COMMAND = re.compile(r"/(?P<kind>like|dislike|buy|click)\s+(?P<number>\d+)")


def _settings(args: argparse.Namespace):
    from recchat.config import Settings

    overrides = {"catalog": args.catalog} if getattr(args, "catalog", None) else {}
    return Settings.load(args.config, **overrides)


def _print_reply(reply) -> None:
    from recchat.models import format_price

    print(reply.message)
    for rank, item in enumerate(reply.items, start=1):
        price = f" — {format_price(item.price, item.currency)}" if item.price is not None else ""
        because = f" ({item.because})" if item.because else ""
        print(f"{rank}. {item.title}{price}  [{item.id}]\n   {item.reason}{_origin(item)}{because}")
    _print_source(reply)
    _print_question(reply)


def _origin(item) -> str:
    """Marks a reason the model did not choose."""
    return " [from the item's facts]" if item.reason_source == "facts" else ""


def _print_source(reply) -> None:
    meta = reply.metadata
    if meta.source == "retrieval":
        why = meta.fallback_reason or "no item matched, so the model had nothing to explain"
        print(f"(answered from search results only: {why})")
    else:
        counts = ", ".join(f"{n} {kind}" for kind, n in meta.reason_sources.items() if n)
        print(f"(reasons: {counts}; model {meta.backend})")


def _print_question(reply) -> None:
    """The clarifying question with its options, each as the message that answers it."""
    if reply.question is not None:
        print(f"{reply.question.text} " + " / ".join(f'"{option.message}"' for option in reply.question.options))


def cmd_chat(args: argparse.Namespace) -> int:
    from recchat.chat import RecChat
    from recchat.understanding import detect_language

    bot = RecChat.from_settings(_settings(args), progress=sys.stderr.isatty())
    if args.message:
        message = " ".join(args.message)
        if detect_language(message) != "en":  # one request, no later turn: read it in its own words now
            bot.read_other_languages(wait=True)
        reply = bot.chat(message, user_id=args.user)
        if args.json:
            print(reply.model_dump_json(indent=2))
        else:
            _print_reply(reply)
        return 0
    bot.read_other_languages()  # in the background, while the shopper types
    session = bot.new_session(user_id=args.user)
    print(f"recchat on the {bot.catalog.name} catalog ({len(bot.catalog)} items). Ask for something; "
          f"'/like N', '/dislike N', '/buy N' rate item N of the last answer; empty line or Ctrl-D quits.")
    last: list = []
    while True:
        try:
            message = input("> ")
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        if not message.strip():
            return 0
        try:
            rating = FEEDBACK_COMMAND.fullmatch(message.strip())
            if rating:
                number = int(rating["number"])
                if not 1 <= number <= len(last):
                    print(f"sorry: the last answer has {len(last)} item(s)")
                    continue
                kind = "purchase" if rating["kind"] == "buy" else rating["kind"]
                bot.feedback(kind, last[number - 1].id, session_id=session)
                print(f"noted: {kind} {last[number - 1].title}; the next answer takes it into account")
                continue
            number = 0
            for event in bot.stream(message, session):
                if event.kind == "message":
                    print(event.message, flush=True)
                elif event.kind == "item" and event.item is not None:
                    number += 1
                    because = f" ({event.item.because})" if event.item.because else ""
                    reason = f"{event.item.reason}{_origin(event.item)}{because}"
                    print(f"{number}. {event.item.title}: {reason}", flush=True)
                elif event.kind == "done" and event.reply:
                    last = event.reply.items
                    _print_source(event.reply)
                    _print_question(event.reply)
        except RecChatError as error:
            print(f"sorry: {error}")


def cmd_index(args: argparse.Namespace) -> int:
    import time

    from recchat.catalog import load_configured_catalog
    from recchat.embeddings import cached_encoder
    from recchat.retrieval import VectorIndex, catalog_texts, open_vector_store

    settings = _settings(args)
    catalog = load_configured_catalog(settings)
    encoder = cached_encoder(settings, texts=catalog_texts(catalog))
    client = open_vector_store(settings)
    index = VectorIndex(client, catalog.index_name, encoder)
    if args.rebuild:
        client.delete_collection(index.collection.name)
        index = VectorIndex(client, catalog.index_name, encoder)
    started = time.perf_counter()
    report = index.sync(catalog, progress=True)
    print(
        f"{catalog.name}: {len(catalog)} items; added {report.added}, updated {report.updated}, "
        f"removed {report.removed}, unchanged {report.unchanged} ({encoder.computed} embedded, "
        f"{time.perf_counter() - started:.1f} s) -> {settings.vectorstore.url or settings.store_dir}"
    )
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from recchat.catalog import load_resolved, schema_of
    from recchat.facts import fact_phrases

    settings = _settings(args)
    path = Path(args.file)
    print(f"{path}: the columns as recchat reads them (correct any in {path.stem}.schema.toml beside it)\n")
    print(schema_of(path, settings.catalog_columns).table())
    catalog = load_resolved(args.file, path, settings.catalog_columns)
    item = next(iter(catalog))
    print(f"\n{len(catalog)} items in {len(catalog.categories())} categories. The first one, as a card shows it:")
    print(f"  {item.title} ({item.category}): {', '.join(fact_phrases(item))}")
    return 0


def cmd_build_movies(args: argparse.Namespace) -> int:
    from recchat.movies import build_movie_catalog, movie_catalog_path

    settings = _settings(args)
    out = Path(args.out) if args.out else movie_catalog_path(settings.generated_catalog_dir, args.dataset)
    counts = build_movie_catalog(args.dataset, out)
    print(
        f"wrote {counts['movies']} movies to {out} ({counts['with_details']} with director/cast, "
        f"{counts['with_plot']} with a plot synopsis). Use it with --catalog {out.stem}."
    )
    return 0


def cmd_eval_prompts(args: argparse.Namespace) -> int:
    """Run prompt regression suites; exit 1 when a suite's pass rate (of the first variant) is below its threshold."""
    from recchat.chat import RecChat
    from recchat.embeddings import cached_encoder, chosen_model
    from recchat.evaluation.suite import load_suite, run_suite, suite_catalog, suite_paths, table, write_report

    base = _settings(args)

    def variant(prompt_version: int | None, model: str | None):
        chat = base.chat.model_copy(update={"prompt_version": prompt_version or base.chat.prompt_version})
        llm = base.llm.model_copy(update={"model": model or base.llm.model})
        return base.model_copy(update={"chat": chat, "llm": llm})

    variants = [variant(args.prompt_version, args.model)]
    if args.against is not None or args.against_model is not None:
        variants.append(variant(args.against or args.prompt_version, args.against_model or args.model))
    encoders: dict = {}  # one loaded encoder per model: 'auto' may choose another for another suite's catalog
    all_results = []
    below = []
    backends: dict = {}  # one loaded model per (backend, model), shared by every suite and prompt variant
    for path in suite_paths(args.suite):
        suite = load_suite(path)
        cases = suite.selected(set(args.tag or []), set(args.case or []))
        catalog = suite_catalog(suite, base)
        texts = [item.embedding_text() for item in catalog]
        model = chosen_model(base.embedding, texts)
        encoder = encoders[model] = encoders.get(model) or cached_encoder(base, texts=texts)
        results = []
        for settings in variants:
            key = (settings.llm.backend, settings.llm.model)
            bot = RecChat.from_settings(settings, encoder=encoder, catalog=catalog, backend=backends.get(key))
            bot.read_other_languages(wait=True)  # every case as a shopper meets it once the engine is ready
            backends[key] = bot.backend
            print(f"{suite.name}: {len(cases)} cases, {bot.prompt.label} on {bot.backend.name}", file=sys.stderr)
            results.append(run_suite(bot, suite, cases, progress=lambda case: print(
                f"  {'pass' if case.passed else 'FAIL'} {case.case_id} ({case.seconds:.1f} s)", file=sys.stderr)))
        print(table(results))
        all_results.extend(results)
        if not results[0].ok:
            below.append(suite.name)
    out = Path(args.out)
    write_report(all_results, out)
    print(f"report: {out}")
    if below:
        print(f"recchat: pass rate below the threshold in: {', '.join(below)}", file=sys.stderr)
        return 1
    return 0


def cmd_eval_offline(args: argparse.Namespace) -> int:
    from recchat.evaluation.offline import run_offline

    _, paths = run_offline(
        _settings(args), args.dataset, args.users, seed=args.seed, liked_in_request=args.liked,
        genre_hint=args.genre_hint, systems=args.systems.split(","), progress=sys.stderr.isatty(),
        out_dir=Path(args.out) if args.out else None,
    )
    print(paths["markdown"].read_text(encoding="utf-8").split("## Protocol")[0].rstrip())
    print(f"\nreport: {paths['json']}, {paths['markdown']}, {paths['plot']}")
    return 0


def cmd_eval_converse(args: argparse.Namespace) -> int:
    from recchat.evaluation.converse import CATALOGS, run_converse

    names = CATALOGS if args.catalogs == "all" else (args.catalogs,)
    for name in names:
        out = Path(args.out) if args.out else None
        if out and len(names) > 1:  # one folder per catalog under the one given
            out = out / f"converse-{name}"
        _, paths = run_converse(
            _settings(args), name, targets=args.targets, seed=args.seed, llm=args.llm, out_dir=out,
            progress=sys.stderr.isatty(),
        )
        print(paths["markdown"].read_text(encoding="utf-8").split("## Protocol")[0].rstrip())
        print(f"\nreport: {paths['json']}, {paths['markdown']}, {paths['plot']}\n")
    return 0


def _feedback_store(settings):
    from recchat.feedback import open_feedback_store

    return open_feedback_store(settings)


def cmd_feedback_add(args: argparse.Namespace) -> int:
    from recchat.catalog import load_configured_catalog
    from recchat.feedback import item_event

    settings = _settings(args)
    event = item_event(
        load_configured_catalog(settings), kind=args.kind, item_id=args.item, user_id=args.user or args.session,
        session_id=args.session, turn=args.turn, key=args.key, time=args.time,
    )
    store = _feedback_store(settings)
    recorded = store.add([event])[0]
    status = "recorded" if recorded else "already recorded (same key)"
    print(f"{status}: {event.kind} {event.item_id} by {event.user_id} (key {event.key}) -> {store.where}")
    return 0


def cmd_feedback_import(args: argparse.Namespace) -> int:
    from recchat.feedback import add_in_batches
    from recchat.movies import load_ratings, rating_events

    settings = _settings(args)
    events = list(rating_events(load_ratings(args.dataset), args.dataset))
    store = _feedback_store(settings)
    added = add_in_batches(store, events)
    print(f"{args.dataset}: {added} events imported, {len(events) - added} already there -> {store.where}. "
          f"Use them with --catalog {'movies' if args.dataset == 'ml-1m' else 'movies-ml-100k'}.")
    return 0


def cmd_feedback_forget(args: argparse.Namespace) -> int:
    from recchat.session import open_session_store

    settings = _settings(args)
    store = _feedback_store(settings)
    # sessions first, as RecChat.forget_user does: those the servers share (in PostgreSQL) go, and a turn of the
    # user's still running on one of them then logs nothing
    open_session_store(settings, store).forget_user(args.user)
    deleted = store.forget_user(args.user)
    print(f"deleted {deleted} rows of user {args.user!r} from {store.where}")
    return 0


def cmd_serve_llm(args: argparse.Namespace) -> int:
    """Serve the model with an OpenAI-compatible API until Ctrl-C, for `llm.backend = "openai"`."""
    import signal
    import threading

    from recchat.llm.local import gguf_file, prepare_model_dir
    from recchat.llm.server import LLMServer

    settings = _settings(args)
    wanted = args.model or settings.llm.model
    if args.engine == "llamacpp":
        from recchat.llm.llamacpp import llama_cpp_missing

        if missing := llama_cpp_missing():
            print(f"recchat: the llamacpp engine is not available: {missing}; `make setup` builds it", file=sys.stderr)
            return 2
        model = str(gguf_file(wanted))
    else:
        model = str(prepare_model_dir(wanted, settings.cache_dir / "models"))
    server = LLMServer(args.engine, model, args.host, args.port, vllm_python=args.vllm_python)
    print(f"starting {args.engine} with {model} ...", file=sys.stderr, flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    with server.start(timeout_s=args.start_timeout):
        print(f"serving at {server.base_url}; use it with: RECCHAT_LLM__BACKEND=openai "
              f"RECCHAT_LLM__BASE_URL={server.base_url} RECCHAT_LLM__MODEL={model}"
              + (f" RECCHAT_LLM__ENGINE={args.engine}" if args.engine != "transformers" else ""), flush=True)
        try:
            while not stopped.wait(1.0):
                if server.process is not None and server.process.poll() is not None:
                    code = server.process.returncode
                    print(f"recchat: the {args.engine} server exited with code {code}", file=sys.stderr)
                    return 1
        except KeyboardInterrupt:
            pass
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """The HTTP API (and the UI at /ui) until Ctrl-C. The flags go into the environment as RECCHAT_* settings, so
    that every worker process reads the same settings."""
    from recchat.server import serve

    flags = {
        "RECCHAT_CATALOG": args.catalog, "RECCHAT_API__HOST": args.host, "RECCHAT_API__PORT": args.port,
        "RECCHAT_API__WORKERS": args.workers, "RECCHAT_API__UI": "false" if args.no_ui else None,
        "RECCHAT_CONFIG": args.config,
    }
    os.environ.update({name: str(value) for name, value in flags.items() if value is not None})
    serve(_settings(args))
    return 0


def cmd_eval_replay(args: argparse.Namespace) -> int:
    import json

    from recchat.evaluation.replay import run_replay

    _, report = run_replay(
        _settings(args), args.dataset, args.users, seed=args.seed, systems=args.systems.split(","),
        variants=json.loads(args.variants) if args.variants else None, progress=sys.stderr.isatty(),
        out_dir=Path(args.out) if args.out else None,
    )
    print(report.read_text(encoding="utf-8").split("## Protocol")[0].rstrip())
    print(f"\nreport: {report.with_suffix('.json')}, {report}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recchat", description="Conversational recommendations from your catalog.")
    parser.add_argument("--config", help="TOML settings file (default: $RECCHAT_CONFIG or ./recchat.toml)")
    commands = parser.add_subparsers(dest="command", required=True)

    chat = commands.add_parser("chat", help="ask for recommendations; no message starts an interactive chat")
    chat.add_argument("message", nargs="*", help="what you are looking for")
    chat.add_argument("--json", action="store_true", help="print the typed reply as JSON")
    chat.add_argument("--catalog", help="catalog name (products, movies) or .jsonl/.csv path")
    chat.add_argument("--user", help="user id: earlier feedback of this user personalises the answers")
    chat.set_defaults(run=cmd_chat)

    index = commands.add_parser("index", help="build or update a catalog's vector index (only changes are embedded)")
    index.add_argument("--catalog", help="catalog name or file")
    index.add_argument("--rebuild", action="store_true", help="drop the index and embed everything again")
    index.set_defaults(run=cmd_index)

    catalog = commands.add_parser("catalog", help="catalog tools")
    catalog_commands = catalog.add_subparsers(dest="catalog_command", required=True)
    inspect = catalog_commands.add_parser("inspect", help="print the schema recchat infers for a catalog file")
    inspect.add_argument("file", help="the .csv or .jsonl file")
    inspect.set_defaults(run=cmd_inspect)
    movies = catalog_commands.add_parser("build-movies", help="build the movie catalog from MovieLens + OMDb data")
    movies.add_argument("--dataset", choices=["ml-1m", "ml-100k"], default="ml-1m")
    movies.add_argument("--out", help="output .jsonl (default: DATA_DIR/generated/movies.jsonl)")
    movies.set_defaults(run=cmd_build_movies)

    evaluate = commands.add_parser("eval", help="prompt regression suites and offline evaluation on MovieLens")
    eval_commands = evaluate.add_subparsers(dest="eval_command", required=True)
    prompts = eval_commands.add_parser("prompts", help="run the prompt regression suites (prompts/recommend/cases)")
    prompts.add_argument("--suite", action="append", help="suite name or .yaml path (repeatable; default: all)")
    prompts.add_argument("--tag", action="append", help="only cases with this tag, e.g. ci (repeatable)")
    prompts.add_argument("--case", action="append", help="only this case id (repeatable)")
    prompts.add_argument("--prompt-version", type=int, help="prompt version to test (default: the configured one)")
    prompts.add_argument("--against", type=int, help="a second prompt version to run side by side")
    prompts.add_argument("--model", help="LLM model to test (default: the configured one)")
    prompts.add_argument("--against-model", help="a second LLM model to run side by side")
    prompts.add_argument("--out", default="eval-results/prompts.json", help="JSON report path")
    prompts.set_defaults(run=cmd_eval_prompts)
    offline = eval_commands.add_parser(
        "offline", help="HR/NDCG/MRR on MovieLens against popularity, item-kNN, embedding"
    )
    offline.add_argument("--dataset", choices=["ml-1m", "ml-100k"], default="ml-1m")
    offline.add_argument("--users", type=int, default=50, help="seeded random sample of test users")
    offline.add_argument("--seed", type=int, default=0)
    offline.add_argument("--liked", type=int, default=3, help="liked films named in each request")
    offline.add_argument("--genre-hint", action="store_true", help="also name the target's first genre in the request")
    offline.add_argument("--systems", default=",".join(OFFLINE_SYSTEMS), help="comma-separated")
    offline.add_argument("--out", help="report folder (default: eval-results/offline-DATASET)")
    offline.set_defaults(run=cmd_eval_offline)
    converse = eval_commands.add_parser(
        "converse", help="simulated shoppers: success per turn as a target's attributes are revealed one by one"
    )
    converse.add_argument(  # not dest "catalog": that would become the configured catalog, and "all" is none
        "--catalog", dest="catalogs", default="products",
        help="products, products-zh, movies (built on first use), all (the three), or a .jsonl/.csv catalog file",
    )
    converse.add_argument("--targets", type=int, default=60, help="seeded random sample of target items")
    converse.add_argument("--seed", type=int, default=0)
    converse.add_argument("--llm", action="store_true", help="let the configured LLM explain (default: off)")
    converse.add_argument("--out", help="report folder (default: eval-results/converse-CATALOG)")
    converse.set_defaults(run=cmd_eval_converse)
    replay = eval_commands.add_parser(
        "replay", help="feedback replay on MovieLens: HR/NDCG@10 after 1-3 feedback turns"
    )
    replay.add_argument("--dataset", choices=["ml-1m", "ml-100k"], default="ml-1m")
    replay.add_argument("--users", type=int, default=500, help="seeded random sample of simulated users")
    replay.add_argument("--seed", type=int, default=0)
    replay.add_argument("--systems", default=",".join(OFFLINE_SYSTEMS), help="comma-separated")
    replay.add_argument(
        "--variants", help='extra recchat runs with other rerank weights, as JSON: {"no-collab": {"collaborative": 0}}'
    )
    replay.add_argument("--out", help="report folder (default: eval-results/replay-DATASET)")
    replay.set_defaults(run=cmd_eval_replay)

    api = commands.add_parser("serve", help="serve recchat over HTTP: the JSON API under /v1, docs at /docs, UI at /ui")
    api.add_argument("--host", help="address to listen on (default: api.host, 127.0.0.1)")
    api.add_argument("--port", type=int, help="port (default: api.port, 8080)")
    api.add_argument("--catalog", help="catalog name (products, movies) or .jsonl/.csv path")
    api.add_argument("--workers", type=int, help="server processes (default: api.workers, 1)")
    api.add_argument("--no-ui", action="store_true", help="do not mount the Gradio UI at /ui")
    api.set_defaults(run=cmd_serve)

    serve = commands.add_parser(
        "serve-llm",
        help="serve the LLM with an OpenAI-compatible API (llama.cpp or transformers on a CPU, vLLM on a GPU)"
    )
    serve.add_argument("--engine", choices=["llamacpp", "transformers", "vllm"], default="llamacpp")
    serve.add_argument("--model", help="model folder or id (default: the configured model, e.g. the bundled SmolLM2)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--vllm-python", help="python of the separate vLLM environment (default: $RECCHAT_VLLM_PYTHON)")
    serve.add_argument(
        "--start-timeout", type=float, default=600.0, help="seconds to wait for the server to be healthy"
    )
    serve.set_defaults(run=cmd_serve_llm)

    feedback = commands.add_parser("feedback", help="record, import or forget feedback (the SQLite log)")
    feedback.add_argument("--catalog", help="catalog name or file the items belong to")
    feedback_commands = feedback.add_subparsers(dest="feedback_command", required=True)
    add = feedback_commands.add_parser("add", help="record one event")
    add.add_argument("kind", help="click, like, dislike, purchase (or accept)")
    add.add_argument("item", help="item id")
    add.add_argument("--user", help="user id (default: the session id)")
    add.add_argument("--session", help="session id")
    add.add_argument("--turn", type=int, help="the reply that showed the item")
    add.add_argument("--key", help="idempotency key: recording the same key again does nothing")
    add.add_argument("--time", type=float, help="when, Unix seconds (default: now)")
    add.set_defaults(run=cmd_feedback_add)
    imported = feedback_commands.add_parser(
        "import", help="import MovieLens ratings: likes (4-5), clicks (3), dislikes (1-2)"
    )
    imported.add_argument("--dataset", choices=["ml-1m", "ml-100k"], default="ml-1m")
    imported.set_defaults(run=cmd_feedback_import)
    forget = feedback_commands.add_parser("forget", help="delete a user's events and messages")
    forget.add_argument("user")
    forget.set_defaults(run=cmd_feedback_forget)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.WARNING, format="recchat: %(levelname)s: %(message)s")  # e.g. an engine fallback
    for name, value in vars(args).items():  # a byte that is not UTF-8 arrives as a lone surrogate, unstorable
        parts = value if isinstance(value, list) else [value]
        if not all(is_utf8_text(part) for part in parts if isinstance(part, str)):
            print(f"recchat: error: {name} is not valid UTF-8 text: {value!r}", file=sys.stderr)
            return 2
    try:
        return args.run(args)
    except RecChatError as error:
        print(f"recchat: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
