"""What the model adds to a turn, and what it costs: the llama.cpp engine against the transformers one, in one run.

    python bench/chat_turn.py [--baseline-requests 6] [--show] [--free-choice]

On the demo shop catalog with default settings, over everyday requests that are in no prompt suite:
- the share of shown reasons that came from the model (`reason_source` "llm" or "llm-facts");
- attribute mention: where a request names an attribute (warm, waterproof, cotton, white...) and a shown item has
  it, how often that item's reason says it;
- false facts: reasons stating a price or a phrase that is not their own item's (must be 0);
- turn latency (p50, p95) and the time to the first item of the stream, which is when the UI shows it;
- the same for the transformers engine on the first `--baseline-requests` requests (about 12 s a turn), and the
  ratio of the two medians.

`--free-choice` also measures the llama.cpp engine with the grammar allowing any of an item's phrases (not requiring
one the request named): how relevant the model's own choices are.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import recchat.grounding  # noqa: E402
from recchat.chat import RecChat  # noqa: E402
from recchat.config import Settings  # noqa: E402
from recchat.evaluation.metrics import percentile  # noqa: E402
from recchat.facts import FactOptions, fact_phrases, offer  # noqa: E402
from recchat.grounding import reason_is_grounded  # noqa: E402
from recchat.models import RecommendationList, format_price  # noqa: E402

# (request, the attribute words it names). None of these is in prompts/recommend/cases.
REQUESTS: list[tuple[str, list[str]]] = [
    ("a warm jacket for hiking", ["warm"]),
    ("a waterproof jacket for the rain", ["waterproof"]),
    ("a white cotton t-shirt", ["white", "cotton"]),
    ("leather boots for winter", ["leather", "winter"]),
    ("a light jacket for spring", ["light", "spring"]),
    ("wool socks to keep my feet warm", ["wool", "warm"]),
    ("a black dress for summer", ["black", "summer"]),
    ("a winter jacket for kids", ["kids", "winter"]),
    ("a red scarf", ["red"]),
    ("trail running shoes for men", ["men"]),
    ("a merino base layer", ["merino"]),
    ("a navy sweater for men", ["navy", "men"]),
    ("waterproof gloves for skiing", ["waterproof"]),
    ("a linen dress", ["linen"]),
    ("a down vest", ["down"]),
    ("warm boots for women", ["warm", "women"]),
    ("a grey hoodie", ["grey"]),
    ("a fleece jacket", ["fleece"]),
    ("shorts for running in summer", ["summer"]),
    ("a denim jacket", ["denim"]),
    ("a wool coat for women", ["wool", "women"]),
    ("a steel thermos for coffee", ["steel"]),
    ("a cheap raincoat", []),
    ("comfortable sneakers for everyday", []),
]
PRICE = re.compile(r"[$€£¥]\s?\d+(?:,\d{3})*(?:\.\d+)?")


def has_word(text: str, word: str) -> bool:
    return re.search(rf"\b{re.escape(word)}", text.lower()) is not None


def false_facts(reply: RecommendationList, bot: RecChat) -> list[str]:
    """Shown reasons that state what is not their item's: a price other than its own, chosen phrases that are not
    all its own, or free text that fails the grounding check."""
    wrong = []
    for shown in reply.items:
        item = bot.catalog[shown.id]
        own_price = format_price(item.price, item.currency) if item.price is not None else None
        if any(price != own_price for price in PRICE.findall(shown.reason)):
            wrong.append(f"{shown.id}: {shown.reason}")
        elif shown.reason_source == "llm-facts":
            said = shown.reason.rstrip(".").lower()
            phrases = [phrase.lower() for phrase in fact_phrases(item)]
            if any(part.strip() not in phrases for part in _split_known(said, phrases)):
                wrong.append(f"{shown.id}: {shown.reason}")
        elif shown.reason_source == "llm":
            others = [bot.catalog[other.id] for other in reply.items if other.id != shown.id]
            if not reason_is_grounded(shown.reason, item, others, reply.metadata.request.query, []):
                wrong.append(f"{shown.id}: {shown.reason}")
    return wrong


def _split_known(text: str, phrases: list[str]) -> list[str]:
    """A reason made of phrases, back into its phrases (a phrase may itself hold a comma: 'drama, romance')."""
    parts, rest = [], text
    while rest:
        known = next((p for p in sorted(phrases, key=len, reverse=True) if rest.startswith(p)), None)
        part = known or rest.split(", ")[0]
        parts.append(part)
        rest = rest[len(part):].removeprefix(", ")
    return parts


def run(bot: RecChat, requests: list[tuple[str, list[str]]], show: bool) -> dict:
    turns, first_items, sources, mentions, asked, wrong = [], [], {"llm": 0, "llm-facts": 0, "facts": 0}, 0, 0, []
    for message, words in requests:
        started = time.perf_counter()
        first = None
        reply = None
        for event in bot.stream(message):
            if event.kind == "item" and first is None:
                first = time.perf_counter() - started
            if event.kind == "done":
                reply = event.reply
        turns.append(time.perf_counter() - started)
        first_items.append(first if first is not None else turns[-1])
        assert reply is not None
        for item in reply.items:
            sources[item.reason_source] += 1
            facts = " ".join(fact_phrases(bot.catalog[item.id]))
            for word in words:
                if has_word(facts, word):
                    asked += 1
                    mentions += has_word(item.reason, word)
                    if show and not has_word(item.reason, word):
                        print(f"  not said: {word!r} of {item.title} ({message!r}): {item.reason}")
        wrong += false_facts(reply, bot)
        if show:
            print(f"\n{message}  ({turns[-1]:.1f} s, {reply.metadata.source})")
            for item in reply.items:
                print(f"  [{item.reason_source:9}] {item.title}: {item.reason}")
    shown = sum(sources.values())
    return {
        "turns": len(turns), "turn_times": turns, "p50_s": percentile(turns, 50), "p95_s": percentile(turns, 95),
        "first_item_p50_s": percentile(first_items, 50), "first_item_max_s": max(first_items),
        "model_share": (sources["llm"] + sources["llm-facts"]) / shown if shown else 0.0, "sources": sources,
        "mention": mentions / asked if asked else 1.0, "mention_counts": (mentions, asked), "false_facts": wrong,
    }


def report(name: str, figures: dict) -> None:
    mentioned, asked = figures["mention_counts"]
    print(
        f"{name:12} turns {figures['turns']:2}  p50 {figures['p50_s']:5.2f} s  p95 {figures['p95_s']:5.2f} s  "
        f"first item p50 {figures['first_item_p50_s']:4.2f} s (max {figures['first_item_max_s']:.2f} s)  "
        f"model reasons {figures['model_share']:5.1%} {figures['sources']}  "
        f"attribute mention {figures['mention']:5.1%} ({mentioned}/{asked})  false facts {len(figures['false_facts'])}"
    )
    for line in figures["false_facts"]:
        print(f"    false: {line}")


def free_offer(phrases: list[str], request: str, price: str | None = None) -> FactOptions:
    """`offer`'s order, without requiring an answering phrase."""
    return FactOptions(offer(phrases, request, price).phrases)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline-requests", type=int, default=6, help="requests for the transformers engine")
    parser.add_argument("--show", action="store_true", help="print every reply")
    parser.add_argument("--free-choice", action="store_true", help="also run without the grammar's requirement")
    args = parser.parse_args()
    settings = Settings(feedback={"enabled": False})  # every turn a first turn: no impression moves the next one
    engines = {"llamacpp": settings}
    if args.free_choice:
        engines["free choice"] = settings
    if args.baseline_requests:
        engines["transformers"] = settings.model_copy(
            update={"llm": settings.llm.model_copy(update={"backend": "transformers"})}
        )
    results = {}
    for name, engine_settings in engines.items():
        # the grammar's requirement of a phrase the request named, off for "free choice"
        recchat.grounding.offer = free_offer if name == "free choice" else offer
        bot = RecChat.from_settings(engine_settings)
        started = time.perf_counter()
        bot.backend  # noqa: B018 (load the model before timing turns)
        print(f"{name}: backend {bot.llm.name}, loaded in {time.perf_counter() - started:.1f} s")
        bot.chat("warm up")
        requests = REQUESTS[: args.baseline_requests] if name == "transformers" else REQUESTS
        results[name] = run(bot, requests, args.show)
    print()
    for name, figures in results.items():
        report(name, figures)
    if "transformers" in results:
        same = results["transformers"]["turns"]
        fast = percentile(results["llamacpp"]["turn_times"][:same], 50)
        ratio = fast / results["transformers"]["p50_s"]
        print(f"turn p50 on the same {same} requests: llamacpp {fast:.2f} s, transformers "
              f"{results['transformers']['p50_s']:.2f} s, ratio {ratio:.2f} (target <= 0.25)")


if __name__ == "__main__":
    main()
