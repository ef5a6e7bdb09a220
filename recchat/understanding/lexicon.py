"""The catalog's own vocabulary, built when a catalog loads: its facets and its kinds of product.

- A *facet* is an attribute a shopper can ask for: one with few distinct values (who it is for, colour, material,
  season, genres, country...), a boolean named by its attribute (`waterproof`), or a number whose unit is read off
  the attribute's name (`weight_g`, `battery_life_hours`, `storage_gb`, `runtime_min`, a film's `year`).
- A *kind* is a title word that belongs to one category ("parka", "boots", "羽绒服"): a message naming a kind of
  another category starts a new subject; one without a kind refines the current one.

Nothing here names a catalog's columns. What is written by hand is how people say values of a *kind* of facet
(audience words, colour families, unit spellings), so that "for my wife" finds whatever value the catalog uses for
women and "dark blue" finds its navy.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from recchat.models import AttributeValue, Item

FacetKind = Literal["audience", "colour", "value", "boolean", "numeric", "name"]
AudienceGroup = Literal["women", "men", "kids", "unisex"]

MAX_VALUE_SHARE = 0.5
"""An attribute whose distinct values are more than this share of the items holding it is not a facet (an id, a
director, a description): nobody asks for one of a thousand values."""
MAX_VALUE_CHARS = 40
MAX_NAME_WORDS = 4
NAME_SHARE = 0.8
"""An attribute with too many values to be a facet is a name attribute (a film's director or cast, a book's author)
when at least this share of its values are names: two to four words, no digits, no commas."""
MIN_KIND_ITEMS = 2
KIND_PURITY = 0.8
"""A title word is a kind when at least this share of the items holding it are in one category: "parka" is,
a brand or a product line that spans the catalog is not."""

# Words inside a catalog's value that say whom it is for; the first group found wins ("girls" is kids, not women).
CATALOG_AUDIENCE: list[tuple[AudienceGroup, str]] = [
    ("kids", r"\b(?:kids?|child(?:ren)?|boys?|girls?|youth|junior|toddlers?|baby)\b|童|儿童|孩"),
    ("unisex", r"\b(?:unisex|all|everyone|adults?)\b|中性|通用"),
    ("women", r"\b(?:women|woman|ladies|lady|female|womens)\b|女"),
    ("men", r"\b(?:men|man|male|gentlemen|mens)\b|男"),
]
# How shoppers say whom it is for.
SAID_AUDIENCE: dict[AudienceGroup, list[str]] = {
    "kids": [
        "kids", "kid", "kid's", "kids'", "children", "children's", "child", "child's", "toddler", "toddlers", "baby",
        "boys", "boy", "girls", "son", "my son", "youth", "junior", "儿童", "童款", "童装", "孩子", "小孩", "儿子",
        "宝宝", "女童", "男童",
    ],
    "women": [
        "women", "woman", "women's", "womens", "ladies", "lady", "ladies'", "female", "wife", "mother", "mom", "mum",
        "mommy", "daughter", "sister", "girlfriend", "grandmother", "grandma", "granny", "aunt", "for her",
        "女士", "女款", "女性", "女生", "女式", "女装", "女的", "妈妈", "母亲", "老婆", "妻子", "太太", "女朋友",
        "女儿", "姐姐", "妹妹", "奶奶", "女",
    ],
    "men": [
        "men", "man", "men's", "mens", "man's", "gentlemen", "gents", "male", "husband", "father", "dad", "daddy",
        "brother", "boyfriend", "grandfather", "grandpa", "uncle", "for him", "男士", "男款", "男性", "男生", "男式",
        "男装", "男的", "爸爸", "父亲", "老公", "丈夫", "男朋友", "哥哥", "弟弟", "爷爷", "男",
    ],
    "unisex": ["unisex", "anyone", "everyone", "中性", "男女通用"],
}
COMPATIBLE: dict[str, set[str]] = {"women": {"women", "unisex"}, "men": {"men", "unisex"}, "kids": {"kids"}}
"""Which groups satisfy a stated audience: a unisex scarf is for women too; a child is not an adult."""

# Colour families: what a shopper may say, the colour names of the family first. A catalog without the colour said
# offers its colours of the same family instead ("fuchsia" -> its pink).
COLOUR_FAMILIES: dict[str, list[str]] = {
    "black": ["black", "jet", "onyx", "ebony"],
    "white": ["white", "off-white", "snow", "ivory", "cream"],
    "grey": ["grey", "gray", "charcoal", "silver", "slate", "heather grey", "graphite", "ash"],
    "blue": ["blue", "navy", "sky blue", "light blue", "royal blue", "cobalt", "indigo", "denim", "dark blue", "teal"],
    "red": ["red", "burgundy", "maroon", "wine", "crimson", "scarlet", "cherry", "oxblood"],
    "pink": ["pink", "fuchsia", "magenta", "rose", "blush", "hot pink", "coral"],
    "purple": ["purple", "violet", "lavender", "lilac", "plum", "mauve"],
    "green": ["green", "olive", "forest green", "sage", "khaki", "mint", "emerald", "neon green", "teal"],
    "brown": ["brown", "tan", "camel", "chocolate", "cognac", "chestnut", "rust", "mocha"],
    "beige": ["beige", "oatmeal", "natural", "sand", "stone", "ecru", "taupe", "cream"],
    "yellow": ["yellow", "mustard", "gold", "lemon"],
    "orange": ["orange", "rust", "amber", "coral"],
    "黑": ["黑色", "黑"], "白": ["白色", "白", "米白色"], "灰": ["灰色", "灰", "炭灰色"],
    "蓝": ["蓝色", "蓝", "藏青色", "藏青", "深蓝色", "深蓝", "浅蓝色"], "红": ["红色", "红", "酒红色", "酒红"],
    "绿": ["绿色", "绿", "军绿色", "军绿"], "黄": ["黄色", "黄"], "紫": ["紫色", "紫"], "粉": ["粉色", "粉红色", "粉"],
    "棕": ["棕色", "咖啡色", "驼色", "褐色"], "米": ["米色", "米白色"],
}
COLOUR_SYNONYMS: dict[str, list[str]] = {
    "navy": ["dark blue", "navy blue", "midnight blue", "深蓝色", "深蓝"],
    "grey": ["gray"], "gray": ["grey"], "charcoal": ["dark grey", "dark gray"],
    "burgundy": ["wine red", "maroon", "oxblood"], "藏青色": ["深蓝色", "深蓝", "navy"],
}
"""Other ways of saying a colour, used where the catalog has that colour."""

# Units by dimension, each spelling with its factor to the dimension's base unit.
UNITS: dict[str, dict[str, float]] = {
    "mass": {"g": 1, "gram": 1, "grams": 1, "kg": 1000, "kilo": 1000, "kilos": 1000, "kilograms": 1000,
             "lb": 453.6, "lbs": 453.6, "pounds": 453.6, "oz": 28.35, "ounces": 28.35, "克": 1, "公斤": 1000,
             "千克": 1000, "斤": 500},
    "data": {"mb": 1e-3, "gb": 1, "tb": 1000, "megabytes": 1e-3, "gigabytes": 1, "terabytes": 1000},
    "time": {"h": 60, "hr": 60, "hrs": 60, "hour": 60, "hours": 60, "min": 1, "mins": 1, "minute": 1,
             "minutes": 1, "小时": 60, "分钟": 1},
    "length": {"mm": 0.1, "cm": 1, "m": 100, "in": 2.54, "inch": 2.54, "inches": 2.54, '"': 2.54, "厘米": 1,
               "毫米": 0.1, "米": 100, "英寸": 2.54},
    "capacity": {"ml": 1, "l": 1000, "liter": 1000, "liters": 1000, "litre": 1000, "litres": 1000, "毫升": 1,
                 "升": 1000},
    "power": {"w": 1, "watt": 1, "watts": 1, "kw": 1000},
    "charge": {"mah": 1},
    "frequency": {"hz": 1, "khz": 1000},
}
UNIT_OF_NAME: dict[str, tuple[str, float]] = {
    "g": ("mass", 1), "grams": ("mass", 1), "kg": ("mass", 1000), "lb": ("mass", 453.6), "oz": ("mass", 28.35),
    "mb": ("data", 1e-3), "gb": ("data", 1), "tb": ("data", 1000), "h": ("time", 60), "hours": ("time", 60),
    "hrs": ("time", 60), "min": ("time", 1), "minutes": ("time", 1), "mm": ("length", 0.1), "cm": ("length", 1),
    "m": ("length", 100), "in": ("length", 2.54), "inch": ("length", 2.54), "inches": ("length", 2.54),
    "ml": ("capacity", 1), "l": ("capacity", 1000), "w": ("power", 1), "mah": ("charge", 1), "hz": ("frequency", 1),
}
"""The unit an attribute's name ends with (`weight_g`, `battery_life_hours`, `runtime_min`)."""
TRUE_WORDS = {"true", "yes", "y", "1", "是", "有"}
FALSE_WORDS = {"false", "no", "n", "0", "否", "无", "没有"}
STOP = {"and", "with", "the", "for", "of", "in", "very", "made", "from", "or", "a", "an", "to", "on"}


def is_cjk_text(text: str) -> bool:
    return any("\u4e00" <= char <= "\u9fff" for char in text)


def words(text: str) -> list[str]:
    """Lower-cased words of a Latin text, keeping inner hyphens and apostrophes ("t-shirt", "women's")."""
    return re.findall(r"[a-z0-9]+(?:['-][a-z0-9]+)*", text.lower())


def phrase_pattern(phrase: str) -> str:
    """A regex for a phrase as said: Latin words at word boundaries ("women" never inside "womenswear"), Chinese
    anywhere (it runs words together)."""
    escaped = re.escape(phrase.lower())
    return escaped if is_cjk_text(phrase) else rf"(?<![\w'-]){escaped}(?![\w-])"


def audience_group(value: str) -> AudienceGroup | None:
    """The group a catalog's audience value belongs to ("Women's" -> women, "女款" -> women, "童款" -> kids)."""
    lowered = value.lower()
    for group, pattern in CATALOG_AUDIENCE:
        if re.search(pattern, lowered):
            return group
    return None


def colour_family(value: str) -> str | None:
    lowered = value.lower()
    for family, names in COLOUR_FAMILIES.items():
        if any(re.search(phrase_pattern(name), lowered) for name in names):
            return family
    return None


def flat(value: AttributeValue) -> list[str]:
    """An attribute's values as strings (a list attribute gives each of its values)."""
    return [str(part) for part in value] if isinstance(value, list) else [str(value)]


def number(value: AttributeValue) -> float | None:
    """The number an attribute holds ("265", 265, "1.5 kg" -> 1.5), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    match = re.match(r"\s*(-?\d+(?:\.\d+)?)", str(value).replace(",", ""))
    return float(match.group(1)) if match else None


def truth(value: AttributeValue) -> bool | None:
    if isinstance(value, bool):
        return value
    lowered = str(value).strip().lower()
    return True if lowered in TRUE_WORDS else False if lowered in FALSE_WORDS else None


@dataclass
class Facet:
    """One attribute a shopper can ask for."""

    name: str
    """The attribute's key, as in the catalog ("color", "for", "颜色", "weight_g")."""
    kind: FacetKind
    values: list[str] = field(default_factory=list)
    """Its distinct values, most common first (numeric facets: none)."""
    label: str = ""
    """How it reads: the key without its unit and underscores ("weight", "battery life")."""
    dimension: str | None = None
    """Numeric facets: what the unit measures ("mass", "data", "time"...), or "year"."""
    scale: float = 1.0
    """Numeric facets: the attribute's unit in the dimension's base unit (grams, GB, minutes, cm...)."""

    @property
    def hard(self) -> bool:
        """Whether a stated value filters (who it is for, a director named, "pet safe") rather than ranks first
        (colour...). A feature said is one the item must have: a shopper who asks for "noise cancelling" headphones
        is not served by others shown as if they were (none has it: the nearest, marked with what they miss)."""
        return self.kind in ("audience", "numeric", "name", "boolean")


@dataclass(frozen=True)
class Mention:
    """A facet value found in a message: the span said, and the catalog values it stands for."""

    facet: str
    said: str
    values: tuple[str, ...]
    start: int
    end: int
    missing: bool = False
    """The catalog has no such value ("fuchsia"): `values` are its nearest (same colour family), maybe none."""


class CatalogLexicon:
    """Facets and kinds of one catalog. Build with `from_items` (again when the catalog changes)."""

    def __init__(
        self, facets: dict[str, Facet], kinds: dict[str, str], cjk_kinds: dict[str, str],
        spread: frozenset[str] = frozenset(), names: dict[str, tuple[str, str]] | None = None,
    ):
        self.facets = facets
        self.names = names or {}
        """A name as said, in lower case ("michael mann") -> (its attribute, the catalog's value): the values of the
        name facets, too many to match one pattern each, so they are looked up by the words of a message."""
        self.spread = spread
        """Latin title words found across the categories: brands and product lines, which come before the kind."""
        self.kinds = kinds
        """Latin title word -> its category."""
        self.cjk_kinds = cjk_kinds
        """Chinese title ending (after the catalog's brand and line words) -> its category."""
        self.audience = next((facet for facet in facets.values() if facet.kind == "audience"), None)
        self.colour = next((facet for facet in facets.values() if facet.kind == "colour"), None)
        self._phrases = self._said_phrases()

    @classmethod
    def from_items(cls, items: Iterable[Item], name: str = "") -> CatalogLexicon:
        """`name`: the catalog's, whose words say what every item is ("plants"), so none is a kind of one category
        (titled "Jade Plant", succulents alone may hold "plant", which names no kind of plant)."""
        items = list(items)
        held: dict[str, list[AttributeValue]] = defaultdict(list)
        for item in items:
            for key, value in item.attributes.items():
                held[key].append(value)
        facets = {}
        names: dict[str, tuple[str, str, int]] = {}
        for key, values in held.items():
            facet = _facet(key, values)
            if facet is None and (named := _names(values)):
                facet = Facet(key, "name", label=" ".join(_key_words(key)))
                for value, count in named.items():  # a name in two attributes: the one it is most often in
                    said = said_name(value)
                    if count > names.get(said, ("", "", 0))[2]:
                        names[said] = (key, value, count)
            if facet is not None:
                facets[key] = facet
        value_words = {
            word for facet in facets.values() for value in facet.values for word in words(value)
        } | {word for facet in facets.values() if facet.kind == "boolean" for word in words(facet.label)}
        named = {name: (key, value) for name, (key, value, _) in names.items()}
        domain = {form for word in words(name) for form in (word, singular(word))}
        return cls(facets, _kinds(items, value_words | domain), _cjk_kinds(items), _spread(items), named)

    # --- what a catalog item holds -----------------------------------------------------------

    def item_values(self, item: Item, facet_name: str) -> list[str]:
        value = item.attributes.get(facet_name)
        return [] if value is None else flat(value)

    def audience_group(self, value: str) -> AudienceGroup | None:
        return audience_group(value)

    def kind_words(self, item: Item) -> str:
        """The item's kind from its title ("down parka", "羽绒服"); "" when its title names none."""
        title = item.title
        if is_cjk_text(title):
            return next((kind for kind in sorted(self.cjk_kinds, key=len, reverse=True) if title.endswith(kind)), "")
        said = words(title)
        after = max((position + 1 for position, word in enumerate(said) if word in self.spread), default=0)
        tail = said[after:]  # "Northwind Summit | Down Parka": what follows the brand and the line
        if any(self.kinds.get(_singular(word, self.kinds)) == item.category for word in tail):
            return " ".join(tail)
        return " ".join(word for word in said if self.kinds.get(_singular(word, self.kinds)) == item.category)

    # --- what a message says ------------------------------------------------------------------

    def kinds_in(self, text: str) -> list[tuple[int, str, str]]:
        """(position, kind, category) of each kind named in a text, in order."""
        found = []
        lowered = text.lower()
        for match in re.finditer(r"[a-z0-9]+(?:['-][a-z0-9]+)*", lowered):
            kind = _singular(match.group(), self.kinds)
            if kind in self.kinds:
                found.append((match.start(), kind, self.kinds[kind]))
        for kind, category in self.cjk_kinds.items():
            position = lowered.find(kind)
            if position >= 0:
                found.append((position, kind, category))
        return sorted(found)

    def of_kind(self, text: str) -> Callable[[Item], bool] | None:
        """Whether an item is of the kind a text names (its head noun: "down parka" -> parka; a title naming it
        says so); None when the text names no kind."""
        named = self.kinds_in(text)
        if not named:
            return None
        kind = named[-1][1]
        return lambda item: any(found == kind for _, found, _ in self.kinds_in(item.title))

    def kind_category(self, text: str) -> str | None:
        """The category of the kind a text names, its head noun: the last kind named ("a down parka" -> the
        parka's), since a word before it qualifies it."""
        named = self.kinds_in(text)
        return named[-1][2] if named else None

    def mentions(self, text: str) -> list[Mention]:
        """The facet values a text says, longest phrase first, none overlapping, in text order. An audience word
        maps to the catalog's values of that group; a colour the catalog lacks, to its colours of the same family."""
        lowered = text.lower()
        taken: list[tuple[int, int]] = []
        found: list[Mention] = []
        for pattern, facet, values, missing in self._phrases:
            for match in pattern.finditer(lowered):
                start, end = match.span()
                if _overlaps(start, end, taken):
                    continue
                taken.append((start, end))
                found.append(Mention(facet, text[start:end], values, start, end, missing))
        found += self._named(text, taken)
        return sorted(found, key=lambda mention: mention.start)

    def _named(self, text: str, taken: list[tuple[int, int]]) -> list[Mention]:
        """The names a text says ("by Michael Mann"), longest first, by looking up its runs of words."""
        if not self.names:
            return []
        spans = [match.span() for match in NAME_WORD.finditer(text)]
        said = [POSSESSIVE.sub("", text[start:end].lower()) for start, end in spans]  # "Kubrick's films"
        found = []
        for size in range(MAX_NAME_WORDS, 1, -1):
            for first in range(len(spans) - size + 1):
                named = self.names.get(" ".join(said[first:first + size]))
                start, end = spans[first][0], spans[first + size - 1][1]
                if named is None or _overlaps(start, end, taken):
                    continue
                taken.append((start, end))
                found.append(Mention(named[0], text[start:end], (named[1],), start, end))
        return found

    def values_for(self, facet_name: str, said: str) -> list[str]:
        """The catalog values a said term stands for: values holding it as a word ("blue" -> "blue", "sky blue";
        "cashmere" -> "wool and cashmere blend"), audience groups with what is compatible with them."""
        facet = self.facets[facet_name]
        if facet.kind == "boolean":
            return sorted(TRUE_WORDS)
        if facet.kind == "name":
            named = self.names.get(said_name(said))
            return [named[1]] if named is not None and named[0] == facet_name else []
        if facet.kind == "audience":  # the group's own values first: they are what the query says
            groups = COMPATIBLE.get(said, {said})
            return sorted((value for value in facet.values if audience_group(value) in groups),
                          key=lambda value: audience_group(value) != said)
        pattern = phrase_pattern(said)
        return [value for value in facet.values if re.search(pattern, value.lower())]

    def _said_phrases(self) -> list[tuple[re.Pattern[str], str, tuple[str, ...], bool]]:
        """Every phrase that names a facet value, compiled once (every message is matched against all of them):
        (pattern, facet, what it stands for (a group, a value or a term), missing), longest phrase first so that
        "forest green" wins over "green" and "very warm" over "warm"."""
        phrases: dict[str, tuple[str, tuple[str, ...], bool]] = {}
        for facet in self.facets.values():
            if facet.kind in ("numeric", "name"):
                continue
            if facet.kind == "boolean":
                label = facet.label.lower()
                for phrase in {label, label.replace(" ", "-"), facet.name.lower()}:
                    phrases.setdefault(phrase, (facet.name, ("true",), False))
                continue
            if facet.kind == "audience":
                present = {audience_group(value) for value in facet.values}
                for group, said in SAID_AUDIENCE.items():
                    if group in present or group in COMPATIBLE and COMPATIBLE[group] & present:
                        for phrase in said:
                            phrases.setdefault(phrase, (facet.name, (group,), False))
            for term in _terms(facet):
                phrases.setdefault(term, (facet.name, (term,), False))
            if facet.kind == "colour":
                for value in list(facet.values):
                    for synonym in COLOUR_SYNONYMS.get(value.lower(), []):
                        phrases.setdefault(synonym, (facet.name, (value.lower(),), False))
                for family, names in COLOUR_FAMILIES.items():
                    nearest = tuple(value.lower() for value in facet.values if colour_family(value) == family)
                    for name in names:
                        phrases.setdefault(name, (facet.name, nearest, True))
        longest_first = sorted(phrases.items(), key=lambda entry: -len(entry[0]))
        return [
            (re.compile(phrase_pattern(phrase)), facet, said, missing)
            for phrase, (facet, said, missing) in longest_first
        ]


STOCK_WORDS = {"stock", "instock", "inventory", "available", "availability", "qty", "quantity"}
"""Words of a column's name that say whether an item can be bought now ("stock_qty", "in_stock", "availability")."""
SOLD_OUT = re.compile(r"\b(?:out of stock|sold out|unavailable|discontinued)\b|缺货|售罄", re.I)


def is_stock_key(key: str) -> bool:
    return bool(STOCK_WORDS & set(_key_words(key)))


def in_stock(item: Item) -> bool:
    """False when a stock column says the item cannot be bought: a count of 0 or less, a false flag, or "out of
    stock"; an item without such a column is in stock."""
    for key, value in item.attributes.items():
        if not is_stock_key(key):
            continue
        count = number(value)
        if truth(value) is False or count is not None and count <= 0 or SOLD_OUT.search(str(value)):
            return False
    return True


def _overlaps(start: int, end: int, taken: list[tuple[int, int]]) -> bool:
    return any(start < other_end and other_start < end for other_start, other_end in taken)


def _key_words(key: str) -> list[str]:
    """An attribute's name as words ("battery_life_hours" -> battery, life, hours)."""
    return [token for token in re.split(r"[_\s]+", key.lower()) if token]


def _facet(key: str, values: list[AttributeValue]) -> Facet | None:
    tokens = _key_words(key)
    label = " ".join(tokens)
    truths = [truth(value) for value in values]
    if all(value is not None for value in truths):
        return Facet(key, "boolean", label=label)
    numbers = [number(value) for value in values]
    unit = UNIT_OF_NAME.get(tokens[-1]) if len(tokens) > 1 else None
    if tokens and tokens[-1] in ("year", "years") and all(n is not None and 1800 < n < 2200 for n in numbers):
        return Facet(key, "numeric", label=label, dimension="year")
    if unit and sum(n is not None for n in numbers) >= 0.8 * len(numbers):
        return Facet(key, "numeric", label=" ".join(tokens[:-1]), dimension=unit[0], scale=unit[1])
    if all(n is not None for n in numbers):
        return None  # a number without a unit a shopper could say: it would match any number in a message
    counts = Counter(part.strip() for value in values for part in flat(value) if part.strip())
    if not counts or len(counts) > max(2, MAX_VALUE_SHARE * len(values)):
        return None
    if sum(len(value) > MAX_VALUE_CHARS for value in counts) > 0.1 * len(counts):
        return None  # prose, not values
    ordered = [value for value, _ in counts.most_common()]
    groups = [audience_group(value) for value in ordered]
    if sum(group is not None for group in groups) >= 0.8 * len(ordered) and len(set(groups) - {None}) >= 2:
        kind: FacetKind = "audience"
    elif sum(colour_family(value) is not None for value in ordered) >= 0.6 * len(ordered):
        kind = "colour"
    else:
        kind = "value"
    return Facet(key, kind, ordered, label=label)


NAME_WORD = re.compile(r"[^\W\d_]+(?:['.-][^\W\d_]+)*")
"""A word of a name: letters, with inner apostrophes, dots and hyphens ("O'Brien", "Hann-Byrd", "J.J")."""
POSSESSIVE = re.compile(r"'s$")
NAME_VALUE = re.compile(r"[^\W\d_]+(?:[\s'.-]+[^\W\d_]+)*\.?")


def _names(values: list[AttributeValue]) -> Counter[str]:
    """The names among an attribute's values (a string joining several gives each), with how many items hold each;
    empty when the attribute does not hold names (prose, ids, numbers, lists of languages, values in lower case).
    A name is two to four words of letters, written with capitals ("Michael Mann", "Agnès Varda")."""
    parts = [part.strip() for value in values for part in name_parts(value) if part.strip()]
    named: Counter[str] = Counter()
    for part in parts:
        said = NAME_WORD.findall(part.lower())
        written = part.split()
        capitals = written[0][:1].isupper() and written[-1][:1].isupper()
        if 2 <= len(said) <= MAX_NAME_WORDS and capitals and NAME_VALUE.fullmatch(part):
            named[part] += 1
    return named if parts and sum(named.values()) >= NAME_SHARE * len(parts) else Counter()


def name_parts(value: AttributeValue) -> list[str]:
    """An attribute's names: a list's values, and the names of a string that joins several ("Michael Cimino,
    Stuart Rosenberg")."""
    return [part for value in flat(value) for part in value.split(",")]


def said_name(text: str) -> str:
    return " ".join(NAME_WORD.findall(text.lower()))


def _terms(facet: Facet) -> set[str]:
    """What a shopper may say of a facet's values: each whole value, and each word that is a whole value or is found
    in two values or more ("cashmere" in "wool and cashmere blend"; not "very" of "very warm" alone)."""
    terms = {value.lower() for value in facet.values if len(value) <= MAX_VALUE_CHARS}
    if facet.kind == "audience":
        return terms
    seen: Counter[str] = Counter()
    for value in facet.values:
        if is_cjk_text(value):
            stem = re.sub(r"[色款系]$", "", value)
            if len(stem) >= 2:
                terms.add(stem)
            continue
        for word in set(re.split(r"[^a-z-]+", value.lower())) - STOP:
            if len(word) >= 3:
                seen[word] += 1
    terms |= {word for word, count in seen.items() if count >= 2 or word in terms}
    return terms


def _singular(word: str, vocabulary: dict[str, str]) -> str:
    """A word as the vocabulary holds it: "parkas" -> "parka" when only the singular is known (and the reverse)."""
    if word in vocabulary:
        return word
    for candidate in (word[:-1] if word.endswith("s") else "", word[:-2] if word.endswith("es") else "", word + "s"):
        if candidate and candidate in vocabulary:
            return candidate
    return word


def singular(word: str) -> str:
    """An English plural's singular, as far as endings tell, without a vocabulary to check it against: "watches" ->
    "watch", "phones" -> "phone", "plants" -> "plant"."""
    if re.search(r"(?:ch|sh|x|ss|z)es$", word):
        return word[:-2]
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word


def _kinds(items: list[Item], value_words: set[str]) -> dict[str, str]:
    """Latin title words that belong to one category (at least `KIND_PURITY` of the items holding them, and two items
    or more), without words that name a facet value ("winter", "cashmere" are what items are, not kinds)."""
    categories = {item.category for item in items}
    if len(categories) < 2:
        return {}  # one category: a title word says nothing about the kind ("Heat" is a film, not a genre)
    per_word: dict[str, Counter[str]] = defaultdict(Counter)
    for item in items:
        if not is_cjk_text(item.title):
            for word in set(words(item.title)):
                per_word[word][item.category] += 1
    kinds = {}
    for word, counts in per_word.items():
        category, count = counts.most_common(1)[0]
        total = sum(counts.values())
        if total >= MIN_KIND_ITEMS and count >= KIND_PURITY * total and word not in value_words and len(word) > 2:
            kinds[word] = category
    return kinds


def _spread(items: list[Item]) -> frozenset[str]:
    """Latin title words found in half the categories or more (two at least): brands and lines, not kinds."""
    categories = {item.category for item in items}
    seen: dict[str, set[str]] = defaultdict(set)
    for item in items:
        for word in words(item.title):
            seen[word].add(item.category)
    return frozenset(word for word, found in seen.items() if len(found) >= max(2, len(categories) / 2))


def _cjk_kinds(items: list[Item]) -> dict[str, str]:
    """Chinese title endings that name a kind: what follows the last pair of characters found in titles of most
    categories (a brand's or line's "系列"), when at least two titles end so, in one category."""
    titles = [item for item in items if is_cjk_text(item.title) and " " not in item.title.strip()]
    categories = {item.category for item in titles}
    if len(categories) < 2:
        return {}
    spread: dict[str, set[str]] = defaultdict(set)
    for item in titles:
        for start in range(len(item.title) - 1):
            spread[item.title[start : start + 2]].add(item.category)
    common = {pair for pair, seen in spread.items() if len(seen) >= max(2, len(categories) // 2)}
    endings: dict[str, Counter[str]] = defaultdict(Counter)
    for item in titles:
        cut = max((item.title.rfind(pair) + 2 for pair in common if pair in item.title), default=0)
        ending = item.title[cut:]
        if 2 <= len(ending) <= 6:
            endings[ending][item.category] += 1
    kinds = {}
    for ending, counts in endings.items():
        category, count = counts.most_common(1)[0]
        if sum(counts.values()) >= MIN_KIND_ITEMS and count >= KIND_PURITY * sum(counts.values()):
            kinds[ending] = category
    return kinds
