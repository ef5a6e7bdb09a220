"""One user message -> a change of the conversation's state -> a `ParsedRequest`: the retrieval query, the hard
constraints and the soft preferences.

Rules, not the LLM: they are instant, deterministic and testable, and a 135M model cannot be trusted with "under
$100". What a message says of the catalog's facets is read with the catalog's lexicon (`lexicon.py`, `facets.py`,
`specs.py`); how it changes the state is `state.py`.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable

from recchat.models import Item, ParsedRequest
from recchat.movies import normalise_title
from recchat.understanding.chinese import (
    ENGLISH_TO_ZH,
    YUAN_SIGN,
    ZH_CATEGORIES,
    ZH_EXCLUDE,
    ZH_FILLER,
    ZH_MAX,
    ZH_MIN,
    ZH_RANGE,
    detect_language,
    is_cjk,
    leading_word,
    translate_zh,
    without_exclusions,
)
from recchat.understanding.facets import read_facets
from recchat.understanding.lexicon import CatalogLexicon, singular
from recchat.understanding.meaning import CategoryMeaning
from recchat.understanding.specs import read_specs
from recchat.understanding.state import MAX_VALUES, StateChange, merge, request_parts

# An amount: 1,500 / 1.500 / 1 500 / 1,500.00 / 99.99 / 1,5 / 1.5k / 1e3, with an optional currency before or after.
NUMBER = (
    r"(?:[$€£¥￥]\s*)?(\d{1,3}(?:[,. \u00a0]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d+)?(?:e\d+)?)\s*(k\b)?\s*"
    r"(?:dollars?|usd|eur|euros?|gbp|pounds?|bucks|元|块)?"
)
MAX_AMOUNT = 1e12
"""A limit above this is not a price anyone means ("under 1e308"): it is left out, with a note."""
ZERO_WIDTH = re.compile("[\u200b-\u200f\u2060\ufeff]")
MAX_TITLE_WORDS = 12
"""Longest title looked for unquoted in a message."""
MAX_PRICE = re.compile(
    rf"\b(?:under|below|less than|cheaper than|no more than|at most|up to|max(?:imum)?|within|<=?"
    rf"|budget(?: is| of)?|(?:can|could|want to) spend(?: up to| at most)?)\s*{NUMBER}",
    re.I,
)
MIN_PRICE = re.compile(rf"\b(?:over|above|more than|at least|min(?:imum)?|>=?)\s*{NUMBER}", re.I)
RANGE = re.compile(rf"\bbetween\s*{NUMBER}\s*(?:and|-|to)\s*{NUMBER}", re.I)
OR_LESS = re.compile(rf"{NUMBER}\s*or (less|under|cheaper)", re.I)
EXCLUDE = re.compile(
    r"\b(?:not|no|without|except|but not|anything but|don'?t want|nothing|avoid|never)\s+(?:in\s+|a\s+|any\s+)?"
    r"([a-z][a-z-]+)",
    re.I,
)
NEGATION = r"\b(?:not|no|without|except|but not|anything but|nothing|avoid|never|don'?t want)"
NEGATED_NAME = re.compile(
    NEGATION + r"\s+"
    r"(?:(?:films?|movies?|anything|something|one)\s+)?(?:(?:directed\s+)?by\s+|with\s+|starring\s+|from\s+)?$",
    re.I,
)
"""Said right before a name ("not by Michael Mann", "nothing with Jack Black"), it excludes the name."""
# What is excluded stops before 的 ("除了黑色的毛衣" leaves out black, not "黑色的毛").
NOT_A_TERM = {
    "more", "less", "longer", "than", "too", "very", "idea", "need", "thanks", "thank", "problem", "one",
    "other", "sure", "much", "really", "matter", "way", "worries", "budget", "limit", "expensive", "cheap",
    "so", "the", "that", "this", "it", "i", "want", "like", "just", "only", "else",
}
QUOTED = re.compile(r'"[^"]+"|“[^”]+”|「[^」]+」')
NOT_TOO = re.compile(r"\bnot (?:too|very|that|so) (?:pricey|expensive|costly|dear)\b", re.I)
"""A wish about price that sets no limit ("not too pricey, under $460"): neither an exclusion nor "cheaper"."""
PRICE_ORDERS = ("price_low", "price_high")
CHEAPEST = re.compile(r"\b(?:cheapest|least expensive|lowest[- ]priced|most affordable)\b|最便宜", re.I)
PRICIEST = re.compile(r"\b(?:most expensive|priciest|highest[- ]priced|dearest)\b|最贵", re.I)
"""Said of a kind, they show the best matches by price ("the cheapest earbuds")."""
CHEAPER = re.compile(r"\b(cheaper|less expensive|lower price|more affordable|too expensive|budget)\b|便宜", re.I)
PRICIER = re.compile(r"\b(more expensive|pricier|higher[- ]end|premium|fancier)\b|更贵|高档", re.I)
MORE_LIKE_THIS = re.compile(
    r"\bmore (?:like|of) (?:that|this|these|those|it|them)\b|\bsimilar ones?\b|更多类似|类似的", re.I
)
SOMETHING_ELSE = re.compile(
    r"\b(something else|other options?|others|different ones?|show me more|more options|anything else|else)\b"
    r"|换|其他|别的",
    re.I,
)
FILLER = re.compile(
    r"\b(i(?:'m| am)? (?:want|need|would like|'d like|looking for|am looking for|search(?:ing)? for)|looking for|"
    r"i want|i need|can you|could you|please|show me|recommend(?: me)?|suggest|give me|find me|get me|"
    r"i(?:'d| would) like|something|some|any|a|an|the|me|for me|what about|how about|do you have|one|ones|"
    r"instead|maybe|thanks?|thank you|hi|hello|and|i (?:liked|loved|enjoyed)|like|liked|loved|enjoyed|similar to|"
    r"such as|what (?:should|can|could) i (?:watch|see|read|buy|get)(?: next)?|next|"
    # words that only refine: "it's for my wife", "preferably in navy", "actually, it should be..."
    r"it'?s|it is|it|is|for|my|our|in|of|with|preferably|ideally|if possible|should be|would be|be|actually|"
    r"rather|prefer|i'?d prefer|also|too|colou?r|made|gift|present|please|ok|okay|fine|great|sure|now|then|"
    r"only|must|has to|have to|strictly)\b",
    re.I,
)
# Wording that makes the items a shopper names references ("I liked "Heat"", "similar to "Heat"") rather than
# the item they ask for ("do you have "Heat"?"). References are searched near and never offered back.
REFERENCE = re.compile(
    r"\b(?:like|liked|loved|enjoyed|similar to|such as|reminds? me of|in the style of)\b|喜欢|类似|像", re.I
)

MIN_ENDING = 5


"""The fewest letters of a category word's ending that name the category on their own ("phone" in "smartphones")."""
CATEGORY_WORDS = {
    "coat": "coats & jackets", "parka": "coats & jackets", "jacket": "coats & jackets", "overcoat": "coats & jackets",
    "peacoat": "coats & jackets", "trench": "coats & jackets", "vest": "coats & jackets", "anorak": "coats & jackets",
    "sweater": "sweaters", "jumper": "sweaters", "cardigan": "sweaters", "hoodie": "sweaters", "turtleneck": "sweaters",
    "pullover": "sweaters", "shirt": "tops", "t-shirt": "tops", "tee": "tops", "blouse": "tops", "top": "tops",
    "jeans": "trousers & jeans", "trousers": "trousers & jeans", "pants": "trousers & jeans",
    "chinos": "trousers & jeans",
    "shorts": "trousers & jeans", "leggings": "trousers & jeans", "dress": "dresses", "boots": "shoes", "boot": "shoes",
    "sneakers": "shoes", "trainers": "shoes", "sandals": "shoes", "loafers": "shoes", "slippers": "shoes",
    "shoe": "shoes", "wellies": "shoes", "scarf": "accessories", "beanie": "accessories", "hat": "accessories",
    "gloves": "accessories", "mittens": "accessories", "sunglasses": "accessories", "belt": "accessories",
    "bag": "accessories", "tote": "accessories", "umbrella": "accessories", "socks": "accessories",
    "cap": "accessories", "tent": "outdoor gear", "sleeping bag": "outdoor gear", "backpack": "outdoor gear",
    "daypack": "outdoor gear", "headlamp": "outdoor gear", "stove": "outdoor gear", "bottle": "outdoor gear",
    "flask": "outdoor gear", "trekking poles": "outdoor gear", "sleeping pad": "outdoor gear", "swimsuit": "activewear",
    "bikini": "activewear", "swim": "activewear", "yoga": "activewear", "sports bra": "activewear",
}


def _title_key(title: str) -> str:
    return " ".join(re.sub(r"[^\w]+", " ", title.lower()).split())


def _amount(value: str, thousands: str | None) -> float | None:
    """The amount `NUMBER` matched, or None when it is not a price anyone means (infinite, or over `MAX_AMOUNT`).
    A separator followed by three digits groups thousands ("1,500", "1.500"); one followed by one or two digits at
    the end is the decimal point ("99.99", "1,5")."""
    text = value.replace(" ", "").replace("\u00a0", "")
    decimal = re.fullmatch(r"(.*?)[.,](\d{1,2})", text)
    whole, fraction = (decimal.group(1), decimal.group(2)) if decimal else (text, "")
    amount = float(re.sub(r"[.,]", "", whole) + (f".{fraction}" if fraction else ""))
    amount *= 1000 if thousands else 1
    return amount if math.isfinite(amount) and amount <= MAX_AMOUNT else None


class RequestParser:
    """Knows the catalog's categories; turns messages into requests, given the previous turn."""

    def __init__(
        self, categories: Iterable[str], titles: Iterable[tuple[str, str]] = (), multilingual: bool = False,
        lexicon: CatalogLexicon | None = None, meaning: CategoryMeaning | None = None,
    ):
        """`titles` are (item id, title) pairs, so quoted titles can be told apart from other words; `multilingual`:
        whether the encoder understands the request's own language, so that its query is the request itself rather
        than its glossary keywords in English; `lexicon`: the catalog's facets and kinds (none: prices, exclusions
        and categories only); `meaning`: which category a follow-up's words mean when none of them names one (none:
        only words name categories)."""
        self.multilingual = multilingual
        self.meaning = meaning
        self.lexicon = lexicon or CatalogLexicon({}, {}, {})
        self.categories = {category.lower(): category for category in categories}
        self.chinese_catalog = any(is_cjk(category[:1]) for category in self.categories.values())
        """Whether the catalog states its facts in Chinese (its categories are Chinese), so English exclusions are
        looked for in Chinese too."""
        self.titles: dict[str, str] = {}
        self.title_of: dict[str, str] = {}
        without_year: dict[str, list[str]] = {}
        for item_id, title in titles:
            self.titles.setdefault(_title_key(title), item_id)
            self.title_of[item_id] = title
            without_year.setdefault(normalise_title(title), []).append(item_id)
        for key, ids in without_year.items():  # "Heat" finds "Heat (1995)" only when no other film is called that
            if len(ids) == 1:
                self.titles.setdefault(key, ids[0])
        # Each category under its English name: its own, or the demo one a Chinese category stands for (in a catalog
        # with both, an English word means the English category).
        named = self.categories.values()
        english = {ZH_CATEGORIES[category]: category for category in named if category in ZH_CATEGORIES}
        english |= {category.lower(): category for category in named if category.isascii()}
        self.category_words: dict[str, str] = {}
        endings: dict[str, set[str]] = defaultdict(set)
        for lowered, category in english.items():
            for word in re.findall(r"[a-z][a-z-]+", lowered):
                if word not in {"and", "gear"}:
                    self.category_words[word] = category
                    self.category_words[singular(word)] = category
                    for start in range(1, len(word) - MIN_ENDING + 1):  # "smartphones": "phones", "phone"
                        endings[word[start:]].add(category)
                        endings[singular(word[start:])].add(category)
        # The ending of one category's word names it ("phone" finds Smartphones); one two share ("phones" of
        # Headphones and Smartphones) names neither.
        for ending, categories in endings.items():
            if len(categories) == 1 and len(ending) >= MIN_ENDING:
                self.category_words.setdefault(ending, next(iter(categories)))
        # The catalog's own titles outrank the demo's word list: "leggings" in titles of two categories names neither.
        title_words = {word for title in self.title_of.values() for word in re.findall(r"[a-z][a-z-]+", title.lower())}
        for word, category in CATEGORY_WORDS.items():
            if category in english and word not in title_words:
                self.category_words[word] = english[category]

    def parse(
        self, message: str, previous: ParsedRequest | None = None, shown: list[Item] | None = None,
        liked: list[str] | None = None, model_read: dict[str, list[str]] | None = None, model_only: bool = False,
    ) -> ParsedRequest:
        """The message as a change of the previous turn's state (`previous.state`), merged (see `state.py`).
        `shown`: the previous reply's items; `liked`: items liked in this session, latest first, which "more like
        that" refers to (else the first item shown). `model_read`: the facet values the model read in the message
        (`model_reading.py`): they fill the facets the rules did not find, or with `model_only` replace the rules'."""
        shown = shown or []
        state = previous.state if previous is not None else None
        # Full-width letters, digits and signs read as their plain forms; zero-width characters are dropped.
        message = ZERO_WIDTH.sub("", unicodedata.normalize("NFKC", message))
        language = detect_language(message)
        notes: list[str] = []
        text = message.strip()
        native = None
        chinese = ""
        excluded_native: list[str] = []  # a Chinese catalog states its facts in Chinese: exclude in both languages
        native_category = None
        if language == "zh":
            chinese = YUAN_SIGN.sub("", text)  # "￥150以下" is "150元以下": the sign is read as 元
            english = translate_zh(chinese)
            excluded_native = [leading_word(match) for match in ZH_EXCLUDE.findall(chinese)]
            excluded_zh = [translate_zh(word) for word in excluded_native]
            for word in excluded_zh:
                english = english.replace(word, "", 1)
            native_category = self._native_category(without_exclusions(chinese))
            if self.multilingual:
                native = self._native_query(chinese)
            else:
                notes.append(f"Chinese request read as keywords: {english.strip() or '(none recognised)'}")
            text = english + " " + " ".join(f"not {word}" for term in excluded_zh for word in term.split()[:1])
            text += " " + " ".join(f"under {a or b}" for a, b in ZH_MAX.findall(chinese))
            text += " " + " ".join(f"over {a or b}" for a, b in ZH_MIN.findall(chinese))
            text += " " + " ".join(f"between {low} and {high}" for low, high in ZH_RANGE.findall(chinese))
            if re.search(r"便宜", chinese):
                text += " cheaper"
            if PRICIER.search(chinese):
                text += " more expensive"
            if SOMETHING_ELSE.search(chinese):
                text += " something else"

        quoted = [match.group(0)[1:-1].strip() for match in QUOTED.finditer(text)]
        remainder, titled = self._titles_in(QUOTED.sub(" ", text))  # a named item is looked for, not read
        quoted += titled
        named = [self.titles[_title_key(title)] for title in quoted if _title_key(title) in self.titles]
        similar_to = list(dict.fromkeys(named)) if named and REFERENCE.search(remainder) else []
        if similar_to:  # the references are searched by their own vectors, not their title words
            quoted = [title for title in quoted if self.titles.get(_title_key(title)) not in similar_to]
        specs = read_specs(remainder, self.lexicon)  # before prices: "under 1.5 kg" is not "up to $1.50"
        remainder = specs.remainder
        notes += specs.notes
        limits: list[tuple[str, float | None]] = []
        if match := RANGE.search(remainder):
            limits += [("min_price", _amount(match.group(1), match.group(2)))]
            limits += [("max_price", _amount(match.group(3), match.group(4)))]
            remainder = remainder.replace(match.group(0), " ")
        for pattern, bound in ((MAX_PRICE, "max_price"), (OR_LESS, "max_price"), (MIN_PRICE, "min_price")):
            if match := pattern.search(remainder):
                limits.append((bound, _amount(match.group(1), match.group(2))))
                remainder = remainder.replace(match.group(0), " ")
        stated: dict[str, float] = {}
        for bound, amount in limits:
            if amount is None:
                notes.append("a price limit that is not a real amount was left out")
            else:
                stated[bound] = amount
        remainder, excluded_terms = self._negated_names(remainder)
        remainder = NOT_TOO.sub(" ", remainder)
        for match in EXCLUDE.finditer(remainder):
            term = match.group(1).lower()
            if term not in NOT_A_TERM:
                if term not in excluded_terms:
                    excluded_terms.append(term)
                remainder = remainder.replace(match.group(0), " ", 1)
        if self.chinese_catalog:
            excluded_native += [ENGLISH_TO_ZH[term] for term in excluded_terms if term in ENGLISH_TO_ZH]
        excluded_terms += [term for term in excluded_native if term not in excluded_terms]
        said = read_facets(self.lexicon, remainder, chinese, native)
        remainder, native = said.remainder, said.native
        if model_read is not None:
            # the model cannot read names (too many for a schema): the rules' stay
            names = {facet: values for facet, values in said.wants.items() if self.lexicon.facets[facet].kind == "name"}
            said.wants = {**names, **model_read} if model_only else {**model_read, **said.wants}
        notes += said.notes

        more_like = bool(MORE_LIKE_THIS.search(remainder)) and previous is not None and bool(liked or shown)
        if more_like:
            similar_to = list(liked or [])[:3] or [shown[0].id]
            remainder = MORE_LIKE_THIS.sub(" ", remainder)
            notes.append("more like " + ", ".join(self.title_of.get(item, item) for item in similar_to))
        order = "price_low" if CHEAPEST.search(message) else "price_high" if PRICIEST.search(message) else specs.order
        remainder = PRICIEST.sub(" ", CHEAPEST.sub(" ", remainder))
        cheaper, pricier, something_else = (bool(p.search(remainder)) for p in (CHEAPER, PRICIER, SOMETHING_ELSE))
        cheaper = cheaper and order is None  # 最便宜 holds 便宜
        for pattern in (CHEAPER, PRICIER, SOMETHING_ELSE):
            remainder = pattern.sub(" ", remainder)
        content = " ".join(FILLER.sub(" ", re.sub(r"[^\w\s&'-]", " ", remainder)).split())
        kinds = self.lexicon.kinds_in(f"{content} {native or ''}")
        category = (kinds[-1][2] if kinds else None) or self._category(content) or native_category
        follow_up_words = more_like or cheaper or pricier or something_else
        if category is None and state is not None and state.category and not follow_up_words and not quoted:
            if self.meaning is not None and language == "en":  # "a phone" after a monitor, in titles without kinds
                category = self.meaning.moved_to(message, content, state.category)
                if category is not None:
                    notes.append(f"moving on to {category}")
        content = " ".join([content, *quoted]).strip()
        # What the encoder reads: the request in its own words when the encoder understands them.
        searched = " ".join([native, *quoted]).strip() if native is not None else content

        new_subject = state is None or not follow_up_words and (
            bool(similar_to) or bool(quoted)
            # a category named when none was known refines ("leggings", then "activewear" to a clarifying question)
            or (category is not None and state.category is not None and category != state.category)
            # read in its own words: words the glossary does not know ("泳衣" after "冬季外套") are a new subject
            or (native is not None and bool(native) and not content and not said.wants
                and not (category is not None and state.category is None))  # 配饰 to "which of these?" refines
        )
        if new_subject and not searched and not said.wants and not specs.ranges and not similar_to:
            searched = " ".join(excluded_terms) or message.strip()
        change = StateChange(
            new_subject=new_subject, subject=searched, category=category, wants=said.wants, required=said.required,
            clears=said.clears, min_price=stated.get("min_price"), max_price=stated.get("max_price"),
            ranges=specs.ranges, excluded_terms=excluded_terms, excluded_ids=similar_to,
            references=similar_to if new_subject or more_like else None, order=order,
        )
        if order in PRICE_ORDERS:  # an order over a numeric facet was noted as specs were read
            notes.append("cheapest first" if order == "price_low" else "most expensive first")
        if kinds and state is not None and not new_subject:  # "a coat", then "a down parka": the kind is replaced
            change.dropped_words = {word.lower() for word in state.subject.split() if self.lexicon.kinds_in(word)}
        prices = [item.price for item in shown if item.price is not None]
        # "cheaper" drops a lower limit from earlier turns ("more expensive" then "cheaper" turns round), and "more
        # expensive" an upper one; a limit this message states stays.
        if cheaper and prices:
            change.max_price = round(min(prices) - 0.01, 2)
            change.drops_min_price = "min_price" not in stated
            notes.append(f"cheaper than the cheapest item shown ({min(prices):g})")
        if pricier and prices:
            change.min_price = round(max(prices) + 0.01, 2)
            change.drops_max_price = "max_price" not in stated
            notes.append(f"pricier than the most expensive item shown ({max(prices):g})")
        if something_else and shown:
            change.excluded_ids += [item.id for item in shown]
            notes.append("leaving out the items already shown")
        audience = [self.lexicon.audience.name] if self.lexicon.audience is not None else []
        state = merge(state, change, carried=audience)
        state.liked = list(liked or [])[:MAX_VALUES]
        query, constraints, preferences = request_parts(state, self.lexicon)
        low, high = constraints.min_price, constraints.max_price
        if low is not None and high is not None and low > high:
            notes.append("the price limits contradict each other")
        return ParsedRequest(
            query=query, constraints=constraints, preferences=preferences, state=state, follow_up=not new_subject,
            language=language, notes=notes, similar_to=state.references,
        )

    def _titles_in(self, text: str) -> tuple[str, list[str]]:
        """Catalog titles of three words or more said without quotes ("the Women's Day Tote"), taken out of the text:
        a name is looked for as a name, and its words ("Women's") are not read as what the shopper wants."""
        found = []
        tokens = list(re.finditer(r"\S+", text))
        start = 0
        while start < len(tokens):
            for end in range(min(len(tokens), start + MAX_TITLE_WORDS), start + 2, -1):
                span = text[tokens[start].start() : tokens[end - 1].end()]
                if _title_key(span) in self.titles:
                    found.append(span.strip())
                    text = text.replace(span, " " * len(span), 1)
                    start = end - 1
                    break
            start += 1
        return text, found

    @staticmethod
    def _native_query(text: str) -> str:
        """A Chinese request as the encoder should read it: without its quoted titles, price limits, exclusions,
        follow-up words and filler, which are constraints rather than what is looked for."""
        text = without_exclusions(text)
        for pattern in (QUOTED, ZH_RANGE, ZH_MAX, ZH_MIN, RANGE, MAX_PRICE, MIN_PRICE, OR_LESS, EXCLUDE, CHEAPER,
                        PRICIER, MORE_LIKE_THIS, SOMETHING_ELSE, ZH_FILLER):
            text = pattern.sub(" ", text)
        text = FILLER.sub(" ", re.sub(r"[^\w\s&'-]", " ", text))
        return " ".join(text.split())

    def _negated_names(self, text: str) -> tuple[str, list[str]]:
        """The names a message rules out ("not by Michael Mann"), as whole excluded terms, and the text without them
        (read on, the name would filter for what the shopper ruled out)."""
        excluded: list[str] = []
        if not self.lexicon.names or not re.search(NEGATION, text, re.I):  # most messages: no second reading
            return text, excluded
        for mention in reversed(self.lexicon.mentions(text)):
            negation = NEGATED_NAME.search(text[: mention.start])
            if self.lexicon.facets[mention.facet].kind == "name" and negation:
                excluded.insert(0, mention.values[0].lower())
                text = text[: negation.start()] + " " + text[mention.end :]
        return text, excluded

    def _native_category(self, chinese: str) -> str | None:
        """The catalog's Chinese category named first in the request ("跑鞋" names 鞋, "羊绒毛衣" 毛衣)."""
        found = [(chinese.find(category), category) for category in self.categories.values() if is_cjk(category[:1])]
        named = sorted((position, -len(category), category) for position, category in found if position >= 0)
        return named[0][2] if named else None

    def _category(self, content: str) -> str | None:
        lowered = content.lower()
        best: tuple[int, str] | None = None
        for word, category in self.category_words.items():
            match = re.search(rf"\b{re.escape(word)}\b", lowered)
            if match and (best is None or match.start() < best[0]):
                best = (match.start(), category)
        return best[1] if best else None
