"""How a reply states the request back to the shopper, in their language."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Sequence

from recchat.catalog import Catalog
from recchat.models import ParsedRequest, ShoppingState, format_price
from recchat.understanding.lexicon import CatalogLexicon, is_cjk_text

PRICE_MARGIN = 1.1
AUDIENCE_WORDS = {
    "en": {"women": "for women", "men": "for men", "kids": "for kids"},
    "zh": {"women": "女款", "men": "男款", "kids": "儿童"},
}


def price_ceiling(price: float) -> int:
    """A round budget just above the price: 10% more, up to the next 10 (under 1000), 50 (under 5000) or 100."""
    raw = price * PRICE_MARGIN
    step = 10 if raw < 1000 else 50 if raw < 5000 else 100
    return int(math.ceil(raw / step) * step)


def example_requests(catalog: Catalog, lexicon: CatalogLexicon, currency: str | None, count: int = 3) -> list[str]:
    """What a shopper of this catalog might ask, from its own data (the UI shows them): the commonest kind of each
    of its largest categories, whom most of those are for, and a budget just above their median price ("down
    parka for women under $300", "女款羽绒服，2700元以内"); a catalog without kinds (films) gets its commonest
    values ("drama movies") and, where it has names, one of them ("movies by Alfred Hitchcock")."""
    by_category: dict[str, list] = {}
    for item in catalog:
        by_category.setdefault(item.category, []).append(item)
    largest = sorted(by_category.values(), key=len, reverse=True)[:count]
    examples = []
    for items in largest:
        kind_of = {item.id: lexicon.kind_words(item) for item in items}  # read once: a title's kind takes a search
        kinds = Counter(kind for kind in kind_of.values() if kind)
        if kinds:
            kind = kinds.most_common(1)[0][0]
            examples.append(_example(kind, [item for item in items if kind_of[item.id] == kind], lexicon, currency))
    if not examples:
        values = Counter(
            value for item in catalog for facet in lexicon.facets.values() if facet.kind == "value"
            for value in lexicon.item_values(item, facet.name) if "," not in value
        )
        noun = catalog.categories()[0] if len(catalog.categories()) == 1 else "items"
        examples = [f"{value.lower()} {noun}" for value, _ in values.most_common(count - 1)]
        names = Counter(value for item in catalog for facet in lexicon.facets.values() if facet.kind == "name"
                        for value in lexicon.item_values(item, facet.name) if value.lower() in lexicon.names)
        examples += [f"{noun} by {name}" for name, _ in names.most_common(1)]
    if not examples:  # no kinds, no values: the categories themselves
        examples = [_example(items[0].category, items, lexicon, currency) for items in largest]
    return examples[:count]


def _example(kind: str, items: list, lexicon: CatalogLexicon, currency: str | None) -> str:
    chinese = is_cjk_text(kind)
    words = AUDIENCE_WORDS["zh" if chinese else "en"]
    groups = Counter(
        group for item in items if lexicon.audience is not None
        for value in lexicon.item_values(item, lexicon.audience.name) if (group := lexicon.audience_group(value))
    )
    said = next((words[group] for group, _ in groups.most_common() if group in words), "")
    prices = [item.price for item in items if item.price is not None]
    if chinese:
        budget = f"，{price_ceiling(statistics.median(prices))}元以内" if prices else ""
        return f"{said}{kind}{budget}"
    budget = f" under {format_price(price_ceiling(statistics.median(prices)), currency)}" if prices else ""
    return " ".join(part for part in (kind.lower(), said) if part) + budget


def wish(request: ParsedRequest, catalog: Catalog) -> str:
    """The request in words, as the LLM and the reply's message state it."""
    liked = [catalog[i].title for i in request.similar_to if i in catalog]
    if not liked:
        return request.query
    return f"{request.query or 'something'} like {', '.join(liked)}"


def intro(
    request: ParsedRequest, wished: str, found: bool, catalog_name: str, currency: str | None, multilingual: bool,
    lexicon: CatalogLexicon | None = None, nearest: bool = False, missed: Sequence[str] = (),
) -> str:
    """The reply's opening line: what was looked for (and what nothing matched), with any notices. `nearest`: the
    items shown miss a hard facet, since none has them all; `missed`: wished facets none of them has."""
    constraints = request.constraints
    chinese = request.language == "zh"  # answer in the shopper's language; item facts stay as the catalog has them
    wanted = [wished]
    if constraints.category:
        wanted.append(f"in {constraints.category}")
    limits = [_range(lexicon, facet, low, high) for facet, (low, high) in constraints.ranges.items()]
    wanted.extend(limit for limit in limits if limit)
    if constraints.min_price is not None:
        wanted.append(f"from {format_price(constraints.min_price, currency)}")
    if constraints.max_price is not None:
        wanted.append(f"up to {format_price(constraints.max_price, currency)}")
    if constraints.excluded_terms:
        wanted.append("without " + ", ".join(constraints.excluded_terms))
    described = " ".join(wanted)
    notices = []
    if request.language != "en" and not multilingual:
        notices.append(
            "注意：搜索模型只懂英文，我按能翻译的词做了匹配；用英文提问效果更好。" if chinese else
            "Note: the search model is English-only, so I matched the words I could translate; "
            "for best results ask in English."
        )
    notices.extend(note[0].upper() + note[1:] + "." for note in request.notes if not note.startswith("Chinese"))
    if found and (missing := _missed_wishes(request.state, missed, chinese)):
        notices.append(missing)
    if found and nearest:
        text = (
            f"没有完全符合（{described}）的商品，这些最接近：" if chinese else
            f"Nothing in the {catalog_name} catalog matches all of {described}; these are the nearest, each marked "
            "with what it misses."
        )
    elif found:
        text = f"为您找到这些（{described}）：" if chinese else f"Here is what I found for {described}."
    elif chinese:
        text = f"{catalog_name} 目录里没有符合（{described}）的商品。请减少条件或换个说法。"
    else:
        text = f"Nothing in the {catalog_name} catalog matches {described}. Try fewer constraints or other words."
    return " ".join([text, *notices])


def _missed_wishes(state: ShoppingState, missed: Sequence[str], chinese: bool) -> str:
    """"None of the closest matches is blue.": said of the candidates only, as a wished item may exist further away
    (among other kinds, or past the price limit)."""
    said = ["/".join(state.wants[name]) for name in missed if state.wants.get(name)]
    if not said:
        return ""
    if chinese:
        return f"最接近的商品都不是{'或'.join(said)}的。"
    return f"None of the closest matches is {' or '.join(said)}."


def _range(lexicon: CatalogLexicon | None, name: str, low: float | None, high: float | None) -> str:
    """A numeric limit as said back: "weight up to 300", "year 1990-1999"."""
    facet = lexicon.facets.get(name) if lexicon is not None else None
    label = facet.label if facet is not None and facet.label else name.replace("_", " ")
    if low is not None and high is not None:
        return f"{label} {low:g}-{high:g}"
    return f"{label} from {low:g}" if low is not None else f"{label} up to {high:g}" if high is not None else ""


def state_labels(state: ShoppingState, lexicon: CatalogLexicon, currency: str | None) -> list[tuple[str, str]]:
    """What a conversation's state holds, as (entry, label) pairs a shopper reads and may take away one by one (the
    UI's chips; `RecChat.release` takes the entry)."""
    labels = [("subject", f"Looking for: {state.subject}")] if state.subject else []
    labels += [("category", f"Category: {state.category}")] if state.category else []
    for name, values in state.wants.items():
        facet = lexicon.facets.get(name)
        label = "for" if facet is not None and facet.kind == "audience" else facet.label if facet else name
        shown = "yes" if facet is not None and facet.kind == "boolean" else ", ".join(values)
        only = " (only)" if name in state.required else ""
        labels.append((name, f"{label[:1].upper()}{label[1:]}: {shown}{only}"))
    low, high = state.min_price, state.max_price
    if low is not None or high is not None:
        limit = [f"from {format_price(low, currency)}"] if low is not None else []
        limit += [f"up to {format_price(high, currency)}"] if high is not None else []
        labels.append(("price", "Price: " + " ".join(limit)))
    for name, (low, high) in state.ranges.items():
        labels.append((name, _range(lexicon, name, low, high).capitalize()))
    labels += [("excluded_terms", "Not: " + ", ".join(state.excluded_terms))] if state.excluded_terms else []
    if state.order in ("price_low", "price_high"):
        labels.append(("order", "Cheapest first" if state.order == "price_low" else "Most expensive first"))
    elif state.order:
        name, direction = state.order.rsplit(":", 1)
        facet = lexicon.facets.get(name)
        label = facet.label if facet else name
        labels.append(("order", f"{label[:1].upper()}{label[1:]}: {'lowest' if direction == 'low' else 'highest'} "
                                "first"))
    return labels
