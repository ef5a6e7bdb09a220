"""`recchat` command line: chat (one-shot or interactive), index, catalog build-movies."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from recchat.errors import RecChatError


def _settings(args: argparse.Namespace):
    from recchat.config import Settings

    overrides = {"catalog": args.catalog} if getattr(args, "catalog", None) else {}
    return Settings.load(args.config, **overrides)


def _print_reply(reply) -> None:
    from recchat.models import format_price

    print(reply.message)
    for rank, item in enumerate(reply.items, start=1):
        price = f" — {format_price(item.price, item.currency)}" if item.price is not None else ""
        print(f"{rank}. {item.title}{price}  [{item.id}]\n   {item.reason}")
    if reply.metadata.source == "retrieval":
        print(f"(answered from search results only: {reply.metadata.fallback_reason})")


def cmd_chat(args: argparse.Namespace) -> int:
    from recchat.chat import RecChat

    bot = RecChat.from_settings(_settings(args), progress=sys.stderr.isatty())
    if args.message:
        reply = bot.chat(" ".join(args.message))
        if args.json:
            print(reply.model_dump_json(indent=2))
        else:
            _print_reply(reply)
        return 0
    session = bot.new_session()
    print(f"recchat on the {bot.catalog.name} catalog ({len(bot.catalog)} items). Ask for something; empty line or Ctrl-D quits.")
    while True:
        try:
            message = input("> ")
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        if not message.strip():
            return 0
        try:
            for event in bot.stream(message, session):
                if event.kind == "message":
                    print(event.message, flush=True)
                elif event.kind == "item" and event.item is not None:
                    print(f"- {event.item.title}: {event.item.reason}", flush=True)
                elif event.kind == "done" and event.reply and event.reply.metadata.source == "retrieval":
                    print(f"(answered from search results only: {event.reply.metadata.fallback_reason})")
        except RecChatError as error:
            print(f"sorry: {error}")


def cmd_index(args: argparse.Namespace) -> int:
    import time

    from recchat.catalog import load_configured_catalog
    from recchat.embeddings import cached_encoder
    from recchat.retrieval import VectorIndex, open_store

    settings = _settings(args)
    catalog = load_configured_catalog(settings)
    encoder = cached_encoder(settings)
    client = open_store(settings.store_dir)
    index = VectorIndex(client, catalog.name, encoder)
    if args.rebuild:
        client.delete_collection(index.collection.name)
        index = VectorIndex(client, catalog.name, encoder)
    started = time.perf_counter()
    report = index.sync(catalog, progress=True)
    print(
        f"{catalog.name}: {len(catalog)} items; added {report.added}, updated {report.updated}, "
        f"removed {report.removed}, unchanged {report.unchanged} ({encoder.computed} embedded, "
        f"{time.perf_counter() - started:.1f} s) -> {settings.store_dir}"
    )
    return 0


def cmd_build_movies(args: argparse.Namespace) -> int:
    from recchat.movies import build_movie_catalog

    settings = _settings(args)
    out = Path(args.out) if args.out else settings.generated_catalog_dir / "movies.jsonl"
    counts = build_movie_catalog(args.dataset, out)
    print(
        f"wrote {counts['movies']} movies to {out} ({counts['with_details']} with director/cast, "
        f"{counts['with_plot']} with a plot synopsis). Use it with --catalog movies."
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recchat", description="Conversational recommendations from your catalog.")
    parser.add_argument("--config", help="TOML settings file (default: $RECCHAT_CONFIG or ./recchat.toml)")
    commands = parser.add_subparsers(dest="command", required=True)

    chat = commands.add_parser("chat", help="ask for recommendations; no message starts an interactive chat")
    chat.add_argument("message", nargs="*", help="what you are looking for")
    chat.add_argument("--json", action="store_true", help="print the typed reply as JSON")
    chat.add_argument("--catalog", help="catalog name (products, movies) or .jsonl/.csv path")
    chat.set_defaults(run=cmd_chat)

    index = commands.add_parser("index", help="build or update a catalog's vector index (only changes are embedded)")
    index.add_argument("--catalog", help="catalog name or file")
    index.add_argument("--rebuild", action="store_true", help="drop the index and embed everything again")
    index.set_defaults(run=cmd_index)

    catalog = commands.add_parser("catalog", help="catalog tools")
    catalog_commands = catalog.add_subparsers(dest="catalog_command", required=True)
    movies = catalog_commands.add_parser("build-movies", help="build the movie catalog from MovieLens + OMDb data")
    movies.add_argument("--dataset", choices=["ml-1m", "ml-100k"], default="ml-1m")
    movies.add_argument("--out", help="output .jsonl (default: DATA_DIR/generated/movies.jsonl)")
    movies.set_defaults(run=cmd_build_movies)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        return args.run(args)
    except RecChatError as error:
        print(f"recchat: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
