"""One user message -> a `ParsedRequest`: the retrieval query and hard constraints.

Rules, not the LLM: they are instant, deterministic and testable, and a 135M model cannot be
trusted with "under $100". Follow-ups ("cheaper", "something else", "not black") refine the
previous request; a message with a new subject starts a new one.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable

from recchat.errors import InvalidArgumentError, InvalidMessageError
from recchat.models import Constraints, Item, ParsedRequest, is_utf8_text
from recchat.movies import normalise_title

# An amount: 1,500 / 1.500 / 1 500 / 1,500.00 / 99.99 / 1,5 / 1.5k / 1e3, with an optional currency before or after.
NUMBER = (
    r"(?:[$€£¥￥]\s*)?(\d{1,3}(?:[,. \u00a0]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d+)?(?:e\d+)?)\s*(k\b)?\s*"
    r"(?:dollars?|usd|eur|euros?|gbp|pounds?|bucks|元|块)?"
)
MAX_AMOUNT = 1e12
"""A limit above this is not a price anyone means ("under 1e308"): it is left out, with a note."""
MAX_QUERY_WORDS = 32
"""Follow-ups add to the query; past this many words the oldest go, so a long conversation cannot grow it forever."""
MAX_PRICE = re.compile(
    rf"\b(?:under|below|less than|cheaper than|no more than|at most|up to|max(?:imum)?|within|<=?)\s*{NUMBER}", re.I
)
MIN_PRICE = re.compile(rf"\b(?:over|above|more than|at least|min(?:imum)?|>=?)\s*{NUMBER}", re.I)
RANGE = re.compile(rf"\bbetween\s*{NUMBER}\s*(?:and|-|to)\s*{NUMBER}", re.I)
OR_LESS = re.compile(rf"{NUMBER}\s*or (less|under|cheaper)", re.I)
ZH_YUAN = r"(?:元|块钱?|美元|美金)?"
ZH_MAX = re.compile(rf"(?:低于|不超过|少于|以内)\s*(\d+){ZH_YUAN}|(\d+)\s*{ZH_YUAN}\s*(?:以下|以内)")
ZH_MIN = re.compile(rf"(?:高于|(?<!不)超过|至少)\s*(\d+){ZH_YUAN}|(\d+)\s*{ZH_YUAN}\s*以上")
# "100到200元", "100-200元之间", "价格在100和200之间": two amounts joined by 到/至/和/-, then 元 or 之间, which make
# them a price range (a bare "100-200" may be a size or a model number).
ZH_RANGE = re.compile(
    rf"(?:价格)?在?\s*(\d+)\s*{ZH_YUAN}\s*(?:到|至|和|与|-|~|—)\s*(\d+)\s*(?:(?:元|块钱?)\s*(?:之间)?|之间)"
)
EXCLUDE = re.compile(
    r"\b(?:not|no|without|except|but not|anything but|don'?t want|nothing|avoid|never)\s+(?:in\s+|a\s+|any\s+)?"
    r"([a-z][a-z-]+)",
    re.I,
)
# What is excluded stops before 的 ("除了黑色的毛衣" leaves out black, not "黑色的毛").
ZH_EXCLUDE = re.compile(r"(?:不要|不想要|除了|别要?|不是)\s*((?:(?!的)[\u4e00-\u9fff]){1,4})")
NOT_A_TERM = {
    "more", "less", "longer", "than", "too", "very", "idea", "need", "thanks", "thank", "problem", "one",
    "other", "sure", "much", "really", "matter", "way", "worries", "budget", "limit", "expensive", "cheap",
    "so", "the", "that", "this", "it", "i", "want", "like", "just", "only", "else",
}
LATIN_WORD = re.compile(  # a number followed by 元/以下... is read by ZH_MAX/ZH_MIN instead
    r"[A-Za-z$€£¥￥][A-Za-z0-9$€£¥￥.,'-]*"
    r"|(?<![\d.,])(?<!低于)(?<!少于)(?<!高于)(?<!超过)(?<!至少)(?<!到|至|和|与|-|~|—)\d[\d.,]*"
    r"(?![\d.,]|\s*(?:元|块|美元|美金|以下|以上|以内|到|至|和|与|-|~|—))"
)
YUAN_SIGN = re.compile(r"[¥￥]\s*(?=\d)")
ZERO_WIDTH = re.compile("[\u200b-\u200f\u2060\ufeff]")
ZH_FILLER = re.compile(
    r"我想(?:要|买|買)?|我要|请|帮我|给我|推荐|找|有没有|一件|一双|一个|一条|一顶|一点儿?|一些|一批|再|些|的|吗|呢|吧"
)
QUOTED = re.compile(r'"[^"]+"|“[^”]+”|「[^」]+」')
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
    r"such as|what (?:should|can|could) i (?:watch|see|read|buy|get)(?: next)?|next)\b",
    re.I,
)
# Wording that makes the items a shopper names references ("I liked "Heat"", "similar to "Heat"") rather than
# the item they ask for ("do you have "Heat"?"). References are searched near and never offered back.
REFERENCE = re.compile(
    r"\b(?:like|liked|loved|enjoyed|similar to|such as|reminds? me of|in the style of)\b|喜欢|类似|像", re.I
)

# Shopping words in English: the constraints a Chinese request sets (its category and the terms it excludes) are
# matched against an English catalog's facts, and an English-only encoder gets the request as these keywords.
ZH_GLOSSARY = {
    "羽绒服": "down parka", "冬季": "winter", "冬天": "winter", "夏季": "summer", "夏天": "summer", "春": "spring",
    "秋": "autumn", "外套": "coat jacket", "大衣": "overcoat", "夹克": "jacket", "雨衣": "rain jacket",
    "运动鞋": "sneakers", "跑鞋": "running shoes", "靴子": "boots", "雪地靴": "winter boots", "凉鞋": "sandals",
    "鞋": "shoes", "毛衣": "sweater", "开衫": "cardigan", "卫衣": "hoodie", "围巾": "scarf", "帽子": "beanie hat",
    "手套": "gloves", "连衣裙": "dress", "裙子": "dress", "牛仔裤": "jeans", "裤子": "trousers", "短裤": "shorts",
    "衬衫": "shirt", "T恤": "t-shirt", "帐篷": "tent", "睡袋": "sleeping bag", "背包": "backpack", "头灯": "headlamp",
    "水壶": "water bottle", "太阳镜": "sunglasses", "墨镜": "sunglasses", "雨伞": "umbrella", "袜子": "socks",
    "保暖": "warm", "暖和": "warm", "防水": "waterproof", "轻": "lightweight", "黑色": "black", "黑": "black",
    "白色": "white", "红色": "red", "蓝色": "blue", "绿色": "green", "灰色": "grey", "羊毛": "wool",
    "羊绒": "cashmere", "皮": "leather", "棉": "cotton", "亚麻": "linen", "女": "women", "男": "men",
    "儿童": "kids", "电影": "movie", "喜剧": "comedy", "恐怖": "horror", "动作": "action", "爱情": "romance",
    "科幻": "sci-fi", "动画": "animation", "纪录片": "documentary", "悬疑": "thriller", "战争": "war",
}
# The glossary the other way ("black" -> 黑色, its first Chinese word), so "not black" holds in a Chinese catalog.
ENGLISH_TO_ZH = {english: chinese for chinese, english in reversed(ZH_GLOSSARY.items())}

# Words that name a category, for catalogs whose category names are different words.
# The demo categories in Chinese, so an English request ("a winter coat") finds its category in a Chinese catalog.
ZH_CATEGORIES = {
    "外套": "coats & jackets", "毛衣": "sweaters", "上衣": "tops", "裤子": "trousers & jeans", "连衣裙": "dresses",
    "鞋": "shoes", "配饰": "accessories", "户外装备": "outdoor gear", "运动服": "activewear",
}
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


def check_message(message: str, limit: int) -> None:
    """`InvalidMessageError` for a message that is empty or longer than `limit` characters, saying what to do."""
    if not isinstance(message, str):
        raise InvalidMessageError(f"the message is text (a str), not {type(message).__name__}")
    if not message.strip():
        raise InvalidMessageError("the message is empty; say what you are looking for, e.g. 'a warm winter coat'")
    if len(message) > limit:
        raise InvalidMessageError(
            f"the message has {len(message):,} characters; the limit is {limit:,} "
            f"(RECCHAT_CHAT__MAX_MESSAGE_CHARS). Shorten it to what you are looking for."
        )
    if not is_utf8_text(message):
        raise InvalidMessageError("the message holds a character that is not valid text (a lone surrogate)")


def check_turn_arguments(exclude_ids: object, filters: object) -> set[str]:
    """The ids to exclude as a set, once the arguments of a turn are what they should be; else
    `InvalidArgumentError` saying what to pass (a lone string would otherwise be read as its characters)."""
    if isinstance(exclude_ids, str | bytes) or not isinstance(exclude_ids, Iterable):
        raise InvalidArgumentError(f"exclude_ids is a list of item ids, not {type(exclude_ids).__name__}")
    ids = list(exclude_ids)
    if not all(isinstance(item_id, str) for item_id in ids):
        raise InvalidArgumentError("exclude_ids holds item ids, which are strings")
    if filters is not None and not isinstance(filters, Constraints):
        raise InvalidArgumentError(f"filters is a recchat.Constraints or None, not {type(filters).__name__}")
    return set(ids)


def is_cjk(character: str) -> bool:
    """Whether a character is a Chinese one (CJK unified ideograph); False for the empty string."""
    return "\u4e00" <= character <= "\u9fff"


def detect_language(text: str) -> str:
    letters = [char for char in text if char.isalpha()]
    if not letters:
        return "en"
    cjk = sum(1 for char in letters if is_cjk(char))
    if cjk / len(letters) > 0.2:  # mixed messages too ("我想要一件 winter coat"): the Chinese path keeps Latin words
        return "zh"
    ascii_letters = sum(1 for char in letters if char.isascii())
    return "en" if ascii_letters / len(letters) > 0.8 else "other"


def _title_key(title: str) -> str:
    return " ".join(re.sub(r"[^\w]+", " ", title.lower()).split())


def translate_zh(text: str) -> str:
    """Glossary words found in a Chinese text, in English, longest match first, in their places among the text's own
    Latin words and amounts ("我想要一件 winter coat 不要黑色 under $200" keeps "winter coat" and "under $200")."""
    found: list[tuple[int, str]] = [(match.start(), match.group()) for match in LATIN_WORD.finditer(text)]
    remaining = text
    for word in sorted(ZH_GLOSSARY, key=len, reverse=True):
        position = remaining.find(word)
        while position >= 0:
            found.append((position, ZH_GLOSSARY[word]))
            remaining = remaining[:position] + "\0" * len(word) + remaining[position + len(word) :]
            position = remaining.find(word)
    return " ".join(english for _, english in sorted(found))


def _leading_word(chinese: str) -> str:
    """What "不要黑色羽绒服" excludes: the longest glossary word it starts with (黑色), else the whole capture, since
    Chinese runs words together and ZH_EXCLUDE takes up to four characters."""
    known = [word for word in ZH_GLOSSARY if chinese.startswith(word)]
    return max(known, key=len) if known else chinese


def _without_exclusions(chinese: str) -> str:
    """The request without "不要" and what it excludes ("不要黑色羽绒服" keeps "羽绒服")."""
    return ZH_EXCLUDE.sub(lambda match: " " + match.group(1)[len(_leading_word(match.group(1))) :], chinese)


def _follow_up_query(previous: str, added: str) -> str:
    """The previous query refined by the new words: each word once, at most `MAX_QUERY_WORDS`, the newest kept."""
    words = list(dict.fromkeys(f"{previous} {added}".split()))
    return " ".join(words[-MAX_QUERY_WORDS:])


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
        self, categories: Iterable[str], titles: Iterable[tuple[str, str]] = (), multilingual: bool = False
    ):
        """`titles` are (item id, title) pairs, so quoted titles can be told apart from other words; `multilingual`:
        whether the encoder understands the request's own language, so that its query is the request itself rather
        than its glossary keywords in English."""
        self.multilingual = multilingual
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
        for lowered, category in english.items():
            for word in re.findall(r"[a-z][a-z-]+", lowered):
                if word not in {"and", "gear"}:
                    self.category_words[word] = category
                    self.category_words[word.rstrip("s")] = category
        for word, category in CATEGORY_WORDS.items():
            if category in english:
                self.category_words[word] = english[category]

    def parse(
        self, message: str, previous: ParsedRequest | None = None, shown: list[Item] | None = None,
        liked: list[str] | None = None,
    ) -> ParsedRequest:
        """`shown`: the previous reply's items; `liked`: items liked in this session, latest first, which "more like
        that" refers to (else the first item shown)."""
        shown = shown or []
        # Full-width letters, digits and signs read as their plain forms; zero-width characters are dropped.
        message = ZERO_WIDTH.sub("", unicodedata.normalize("NFKC", message))
        language = detect_language(message)
        notes: list[str] = []
        text = message.strip()
        native = None
        excluded_native: list[str] = []  # a Chinese catalog states its facts in Chinese: exclude in both languages
        native_category = None
        if language == "zh":
            chinese = YUAN_SIGN.sub("", text)  # "￥150以下" is "150元以下": the sign is read as 元
            english = translate_zh(chinese)
            excluded_native = [_leading_word(match) for match in ZH_EXCLUDE.findall(chinese)]
            excluded_zh = [translate_zh(word) for word in excluded_native]
            for word in excluded_zh:
                english = english.replace(word, "", 1)
            native_category = self._native_category(_without_exclusions(chinese))
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

        constraints = Constraints()
        quoted = [match.group(0)[1:-1].strip() for match in QUOTED.finditer(text)]
        remainder = QUOTED.sub(" ", text)  # a quoted title is a name to look for, never a constraint
        named = [self.titles[_title_key(title)] for title in quoted if _title_key(title) in self.titles]
        similar_to = list(dict.fromkeys(named)) if named and REFERENCE.search(remainder) else []
        if similar_to:  # the references are searched by their own vectors, not their title words
            quoted = [title for title in quoted if self.titles.get(_title_key(title)) not in similar_to]
        limits: list[tuple[str, float | None]] = []
        if match := RANGE.search(remainder):
            limits += [("min_price", _amount(match.group(1), match.group(2)))]
            limits += [("max_price", _amount(match.group(3), match.group(4)))]
            remainder = remainder.replace(match.group(0), " ")
        for pattern, bound in ((MAX_PRICE, "max_price"), (OR_LESS, "max_price"), (MIN_PRICE, "min_price")):
            if match := pattern.search(remainder):
                limits.append((bound, _amount(match.group(1), match.group(2))))
                remainder = remainder.replace(match.group(0), " ")
        for bound, amount in limits:
            if amount is None:
                notes.append("a price limit that is not a real amount was left out")
            else:
                setattr(constraints, bound, amount)
        for match in EXCLUDE.finditer(remainder):
            term = match.group(1).lower()
            if term not in NOT_A_TERM:
                if term not in constraints.excluded_terms:
                    constraints.excluded_terms.append(term)
                remainder = remainder.replace(match.group(0), " ", 1)
        if self.chinese_catalog:
            excluded_native += [ENGLISH_TO_ZH[term] for term in constraints.excluded_terms if term in ENGLISH_TO_ZH]
        constraints.excluded_terms += [term for term in excluded_native if term not in constraints.excluded_terms]

        more_like = bool(MORE_LIKE_THIS.search(remainder)) and previous is not None and bool(liked or shown)
        if more_like:
            similar_to = list(liked or [])[:3] or [shown[0].id]
            remainder = MORE_LIKE_THIS.sub(" ", remainder)
            notes.append("more like " + ", ".join(self.title_of.get(item, item) for item in similar_to))
        cheaper, pricier, something_else = (bool(p.search(remainder)) for p in (CHEAPER, PRICIER, SOMETHING_ELSE))
        for pattern in (CHEAPER, PRICIER, SOMETHING_ELSE):
            remainder = pattern.sub(" ", remainder)
        content = " ".join(FILLER.sub(" ", re.sub(r"[^\w\s&'-]", " ", remainder)).split())
        category = self._category(content) or native_category
        content = " ".join([content, *quoted]).strip()
        # What the encoder reads: the request in its own words when the encoder understands them.
        searched = " ".join([native, *quoted]).strip() if native is not None else content

        # A request read in its own words refines the last only when it says nothing to search for, or a word or two
        # the glossary knows ("羊毛的": wool); one the glossary does not know ("泳衣") is a new subject.
        refines = previous is not None and (more_like or not similar_to) and (
            more_like or cheaper or pricier or something_else or not searched
            or (bool(content) and len(content.split()) <= 2
                and (category is None or category == previous.constraints.category))
        )
        if refines:
            assert previous is not None
            merged = previous.constraints.model_copy(deep=True)
            merged.category = category or merged.category
            merged.min_price = constraints.min_price if constraints.min_price is not None else merged.min_price
            merged.max_price = constraints.max_price if constraints.max_price is not None else merged.max_price
            merged.excluded_terms = sorted({*merged.excluded_terms, *constraints.excluded_terms})
            constraints = merged
            query = _follow_up_query(previous.query, searched)
            similar_to = similar_to if more_like else previous.similar_to
        else:
            constraints.category = category
            query = searched or " ".join(constraints.excluded_terms) or ("" if similar_to else message.strip())
        if similar_to:
            constraints.excluded_ids = sorted({*constraints.excluded_ids, *similar_to})

        prices = [item.price for item in shown if item.price is not None]
        # "cheaper" drops a lower limit from earlier turns ("more expensive" then "cheaper" turns round), and "more
        # expensive" an upper one; a limit this message states stays.
        stated = {bound for bound, amount in limits if amount is not None}
        if cheaper and prices:
            constraints.max_price = round(min(prices) - 0.01, 2)
            constraints.min_price = constraints.min_price if "min_price" in stated else None
            notes.append(f"cheaper than the cheapest item shown ({min(prices):g})")
        if pricier and prices:
            constraints.min_price = round(max(prices) + 0.01, 2)
            constraints.max_price = constraints.max_price if "max_price" in stated else None
            notes.append(f"pricier than the most expensive item shown ({max(prices):g})")
        if something_else and shown:
            constraints.excluded_ids = sorted({*constraints.excluded_ids, *(item.id for item in shown)})
            notes.append("leaving out the items already shown")
        low, high = constraints.min_price, constraints.max_price
        if low is not None and high is not None and low > high:
            notes.append("the price limits contradict each other")
        return ParsedRequest(
            query=query, constraints=constraints, follow_up=refines, language=language, notes=notes,
            similar_to=similar_to,
        )

    @staticmethod
    def _native_query(text: str) -> str:
        """A Chinese request as the encoder should read it: without its quoted titles, price limits, exclusions,
        follow-up words and filler, which are constraints rather than what is looked for."""
        text = _without_exclusions(text)
        for pattern in (QUOTED, ZH_RANGE, ZH_MAX, ZH_MIN, RANGE, MAX_PRICE, MIN_PRICE, OR_LESS, EXCLUDE, CHEAPER,
                        PRICIER, MORE_LIKE_THIS, SOMETHING_ELSE, ZH_FILLER):
            text = pattern.sub(" ", text)
        text = FILLER.sub(" ", re.sub(r"[^\w\s&'-]", " ", text))
        return " ".join(text.split())

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
