"""What the dialogue state's rules add to a turn (issue #25: at most 5 ms at p50).

In one process, on the bundled catalogs: each message of a set of conversations is read by the parser with the
catalog's lexicon (facets, kinds, numeric limits, the state and its merge) and by the same parser without one
(prices, exclusions and categories only, as before the state), and a whole turn (LLM off) is timed for scale.

    python bench/dialogue.py [--rounds 30]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from recchat.catalog import load_catalog
from recchat.chat import RecChat
from recchat.config import BUNDLED_CATALOG_DIR, Settings
from recchat.understanding import CatalogLexicon, RequestParser

CONVERSATIONS = {
    "products": [
        ["I'm looking for a down parka", "it's for women", "preferably in navy", "under $400"],
        ["a navy sweater for men", "any colour is fine", "only in black", "cheaper"],
        ["winter boots for women in black under $190", "now a scarf", "something else"],
        ["I need a tent", "for 2 people", "not orange", "a sleeping bag for my son"],
    ],
    "products-zh": [
        ["我想买羽绒服", "是给我老婆买的", "最好是藏青色", "2000元以内"],
        ["一件黑色的男款毛衣", "不限颜色", "便宜一点"],
    ],
}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def parse_times(parser: RequestParser, conversations: list[list[str]], rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        for messages in conversations:
            previous = None
            for message in messages:
                started = time.perf_counter()
                previous = parser.parse(message, previous)
                times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__)
    arguments.add_argument("--rounds", type=int, default=30)
    rounds = arguments.parse_args().rounds
    for name, conversations in CONVERSATIONS.items():
        catalog = load_catalog(BUNDLED_CATALOG_DIR / f"{name}.jsonl")
        started = time.perf_counter()
        lexicon = CatalogLexicon.from_items(catalog)
        build_ms = (time.perf_counter() - started) * 1000
        titles = [(item.id, item.title) for item in catalog]
        plain = RequestParser(catalog.categories(), titles)
        stated = RequestParser(catalog.categories(), titles, lexicon=lexicon)
        before = parse_times(plain, conversations, rounds)
        after = parse_times(stated, conversations, rounds)
        print(f"{name}: lexicon built in {build_ms:.1f} ms ({len(lexicon.facets)} facets, "
              f"{len(lexicon.kinds) + len(lexicon.cjk_kinds)} kinds)")
        for label, times in (("without the lexicon", before), ("with the state", after)):
            print(f"  parse {label:<20} p50 {statistics.median(times):.2f} ms  p95 {percentile(times, 0.95):.2f} ms")
        added = statistics.median(after) - statistics.median(before)
        ratio = statistics.median(after) / statistics.median(before)
        print(f"  added by the state at p50: {added:.2f} ms ({ratio:.2f}x)")
    settings = Settings(data_dir=tempfile.mkdtemp(), llm={"backend": "none"}, embedding={"bridge": ""})
    bot = RecChat.from_settings(settings)
    turns = []
    for _ in range(max(1, rounds // 3)):
        for messages in CONVERSATIONS["products"]:
            session = bot.new_session()
            for message in messages:
                started = time.perf_counter()
                bot.chat(message, session)
                turns.append((time.perf_counter() - started) * 1000)
    p50, p95 = statistics.median(turns), percentile(turns, 0.95)
    print(f"whole turn, LLM off (products): p50 {p50:.1f} ms  p95 {p95:.1f} ms")


if __name__ == "__main__":
    main()
