"""How a reply states the request back to the shopper, in their language."""

from __future__ import annotations

from recchat.catalog import Catalog
from recchat.models import ParsedRequest, format_price


def wish(request: ParsedRequest, catalog: Catalog) -> str:
    """The request in words, as the LLM and the reply's message state it."""
    liked = [catalog[i].title for i in request.similar_to if i in catalog]
    if not liked:
        return request.query
    return f"{request.query or 'something'} like {', '.join(liked)}"


def intro(
    request: ParsedRequest, wished: str, found: bool, catalog_name: str, currency: str | None, multilingual: bool
) -> str:
    """The reply's opening line: what was looked for (and what nothing matched), with any notices."""
    constraints = request.constraints
    wanted = [wished]
    if constraints.category:
        wanted.append(f"in {constraints.category}")
    if constraints.min_price is not None:
        wanted.append(f"from {format_price(constraints.min_price, currency)}")
    if constraints.max_price is not None:
        wanted.append(f"up to {format_price(constraints.max_price, currency)}")
    if constraints.excluded_terms:
        wanted.append("without " + ", ".join(constraints.excluded_terms))
    described = " ".join(wanted)
    chinese = request.language == "zh"  # answer in the shopper's language; item facts stay as the catalog has them
    notices = []
    if request.language != "en" and not multilingual:
        notices.append(
            "注意：搜索模型只懂英文，我按能翻译的词做了匹配；用英文提问效果更好。" if chinese else
            "Note: the search model is English-only, so I matched the words I could translate; "
            "for best results ask in English."
        )
    notices.extend(note[0].upper() + note[1:] + "." for note in request.notes if not note.startswith("Chinese"))
    if found:
        text = f"为您找到这些（{described}）：" if chinese else f"Here is what I found for {described}."
    elif chinese:
        text = f"{catalog_name} 目录里没有符合（{described}）的商品。请减少条件或换个说法。"
    else:
        text = f"Nothing in the {catalog_name} catalog matches {described}. Try fewer constraints or other words."
    return " ".join([text, *notices])
