"""Numbers with units in a message -> limits on the catalog's numeric facets ("at least 512GB", "under 1.5 kg",
"over 20 hours", "from the 90s"). Read before prices, so that "under 1.5 kg" is never "up to $1.50"."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from recchat.understanding.lexicon import UNITS, CatalogLexicon, Facet

Range = tuple[float | None, float | None]

NUMBER = r"(\d+(?:[.,]\d+)?)"
AT_MOST = r"under|below|less than|at most|up to|max(?:imum)?|no more than|lighter than|shorter than|smaller than|<=?"
AT_LEAST = r"over|above|more than|at least|min(?:imum)?|no less than|longer than|bigger than|larger than|>=?"
MEASURES = {"mass": "weight", "data": "storage", "time": "duration", "length": "size", "capacity": "capacity",
            "power": "power", "charge": "battery capacity", "frequency": "frequency"}
"""What a shopper calls what a unit measures, for the note when the catalog does not list it."""
EXACT_TOLERANCE = 0.05
"""A bare "512GB" or "27 inch" means about that much: within 5% either way (1TB holds 1,024 GB)."""
SPELLINGS = sorted(((spelling, dimension, factor) for dimension, units in UNITS.items()
                    for spelling, factor in units.items()), key=lambda entry: -len(entry[0]))
UNIT = "|".join(re.escape(spelling) for spelling, _, _ in SPELLINGS)
AFTER_UNIT = r"(?![a-z])"
LIMITED = re.compile(
    rf"(?:(?P<most>{AT_MOST})|(?P<least>{AT_LEAST}))\s*{NUMBER}\s*(?P<unit>{UNIT}){AFTER_UNIT}"
    rf"|{NUMBER}\s*(?P<unit2>{UNIT}){AFTER_UNIT}\s*(?:(?P<most2>or (?:less|under|below)|以下|以内)"
    rf"|(?P<least2>or (?:more|over|above)|\+|plus|以上))?",
    re.I,
)
BETWEEN = re.compile(rf"between\s*{NUMBER}\s*(?:and|-|to)\s*{NUMBER}\s*(?P<unit>{UNIT}){AFTER_UNIT}", re.I)
DECADE = re.compile(r"\b(?:from |in )?(?:the )?'?(19|20)?(\d)0'?s\b|(\d{2}|\d{4})年代", re.I)
YEAR = re.compile(
    r"\b(?:(?P<before>before|earlier than|older than)|(?P<after>after|newer than|later than)|(?P<since>since)"
    r"|(?P<exact>from|in|made in))\s+(?P<year>(?:19|20)\d\d)\b",
    re.I,
)


SUPERLATIVE = re.compile(
    r"\b(?:the\s+)?(?P<word>lightest|heaviest|longest|shortest|biggest|largest|smallest|most|least|highest|lowest"
    r"|newest|oldest|latest)(?P<after>(?:\s+[a-z]+){0,3})",
    re.I,
)
"""A superlative and the words after it: "the lightest", "the longest battery", "most storage"."""
PLAIN_ORDERS: list[tuple[re.Pattern[str], str, tuple[str, ...], str]] = [
    (re.compile(r"\b(?:light|lightweight|ultralight|ultra-light)\b", re.I), "mass", (), "low"),
    (re.compile(r"\b(?:tall|tallest)\b", re.I), "length", ("height", "tall"), "high"),
]
"""Plain adjectives that order by what they measure (pattern, dimension, words the column's name must hold, if any,
direction): "a light road bike" lightest first, "a tall plant" tallest first; only where one column measures it so
and the adjective is none of the catalog's values (a jacket's warmth "light" is a value, and reads as one)."""
LOWEST_FIRST = {"lightest", "shortest", "smallest", "least", "lowest", "oldest"}
MEASURED_BY = {"lightest": "mass", "heaviest": "mass", "newest": "year", "oldest": "year", "latest": "year"}
"""Superlatives that say what they measure on their own ("the lightest laptop" orders by weight)."""


@dataclass
class Specs:
    """What a message says about numeric facets, and the text left for the rest of the reading."""

    ranges: dict[str, Range] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    remainder: str = ""
    order: str | None = None
    """A numeric facet to show the best matches by: 'weight_g:low' for "the lightest"."""


def read_specs(text: str, lexicon: CatalogLexicon) -> Specs:
    specs = Specs()
    numeric = [facet for facet in lexicon.facets.values() if facet.kind == "numeric"]
    year = next((facet for facet in numeric if facet.dimension == "year"), None)

    def limit(span: str, facet: Facet | None, low: float | None, high: float | None, said: str) -> str:
        if facet is None:
            measure = MEASURES.get(said, said)
            specs.notes.append(f'these items do not list their {measure}, so "{span.strip()}" was left out')
        else:
            old_low, old_high = specs.ranges.get(facet.name, (None, None))
            specs.ranges[facet.name] = (low if low is not None else old_low, high if high is not None else old_high)
        return " "

    def unit_limit(match: re.Match) -> str:
        groups = match.groupdict()
        spelling = (groups.get("unit") or groups.get("unit2") or "").lower()
        dimension, factor = next((d, f) for s, d, f in SPELLINGS if s == spelling)
        facet = _facet_for(dimension, numeric, text)
        amounts = [float(value.replace(",", ".")) for value in match.groups() if _is_amount(value)]
        if facet is not None:
            amounts = [amount * factor / facet.scale for amount in amounts]
        if len(amounts) == 2:
            return limit(match.group(0), facet, min(amounts), max(amounts), dimension)
        amount = amounts[0]
        bare = not any(groups.get(name) for name in ("most", "most2", "least", "least2"))
        if bare and (facet is None or len(spelling) < 2 or spelling == "in"):
            return match.group(0)  # "size 10 in black", "a 27 inch monitor" where no facet measures it: words
        if groups.get("most") or groups.get("most2"):
            return limit(match.group(0), facet, None, amount, dimension)
        if groups.get("least") or groups.get("least2"):
            return limit(match.group(0), facet, amount, None, dimension)
        low, high = amount * (1 - EXACT_TOLERANCE), amount * (1 + EXACT_TOLERANCE)
        return limit(match.group(0), facet, low, high, dimension)

    text = BETWEEN.sub(unit_limit, text)
    text = LIMITED.sub(unit_limit, text)
    if year is not None:
        text = DECADE.sub(lambda match: limit(match.group(0), year, *_decade(match), "years"), text)
        text = YEAR.sub(lambda match: limit(match.group(0), year, *_year_limit(match), "years"), text)
    text = SUPERLATIVE.sub(lambda match: _superlative(match, numeric, specs), text)
    for pattern, dimension, named, direction in PLAIN_ORDERS:
        said = pattern.search(text)
        if specs.order is not None or said is None or lexicon.mentions(said.group(0)):
            continue
        measuring = [facet for facet in numeric if facet.dimension == dimension
                     and (not named or set(named) & set(facet.label.lower().split()))]
        if len(measuring) == 1:
            _order_by(specs, measuring[0], direction)
            text = text[: said.start()] + " " + text[said.end() :]  # read as the order: not a word to search for
    specs.remainder = text
    return specs


def _superlative(match: re.Match, numeric: list[Facet], specs: Specs) -> str:
    """The superlative as an order over the numeric facet it speaks of: the one whose name follows it ("longest
    battery" -> battery life), else the only one it measures ("lightest" -> weight); else the words stay."""
    word = match.group("word").lower()
    after = set(match.group("after").lower().split())
    if specs.order is not None:  # the first one said wins
        return match.group(0)
    facet = next((f for f in numeric if after & set(f.label.lower().split())), None)
    if facet is None and word in MEASURED_BY:
        measured = [f for f in numeric if f.dimension == MEASURED_BY[word]]
        facet = measured[0] if len(measured) == 1 else None
    if facet is None:
        return match.group(0)
    _order_by(specs, facet, "low" if word in LOWEST_FIRST else "high")
    named = set(facet.label.lower().split())
    return " " + " ".join(w for w in match.group("after").split() if w.lower() not in named)


def _order_by(specs: Specs, facet: Facet, direction: str) -> None:
    """Show the best matches by `facet`, lowest or highest first, and say so in the reply's notes."""
    specs.order = f"{facet.name}:{direction}"
    specs.notes.append(f"{facet.label}: {'lowest' if direction == 'low' else 'highest'} first")


def _is_amount(value: str | None) -> bool:
    return bool(value) and bool(re.fullmatch(r"\d+(?:[.,]\d+)?", value))


def _facet_for(dimension: str, numeric: list[Facet], text: str) -> Facet | None:
    """The numeric facet a unit speaks of: of those measured so, the one whose name the message says, else the
    first."""
    measured = [facet for facet in numeric if facet.dimension == dimension]
    named = [facet for facet in measured if facet.label and facet.label.lower() in text.lower()]
    return (named or measured or [None])[0]


def _decade(match: re.Match) -> Range:
    century, decade, chinese = match.group(1), match.group(2), match.group(3)
    if chinese:
        start = int(chinese) if len(chinese) == 4 else (1900 if int(chinese) >= 30 else 2000) + int(chinese)
    else:
        start = int(century or ("19" if int(decade) >= 3 else "20")) * 100 + int(decade) * 10
    return float(start), float(start + 9)


def _year_limit(match: re.Match) -> Range:
    year = float(match.group("year"))
    if match.group("before"):
        return None, year - 1
    if match.group("after"):
        return year + 1, None
    if match.group("since"):
        return year, None
    return year, year
