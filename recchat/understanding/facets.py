"""What a message says of the catalog's facets: the values wanted ("for my wife", "preferably in navy"), those said
with "only", and those let go ("any colour is fine")."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from recchat.understanding.lexicon import CatalogLexicon, Mention, is_cjk_text

ONLY = re.compile(
    r"(?:\b(?:only|must be|has to be|have to be|strictly|nothing but)\s+(?:in\s+|for\s+|a\s+)?|只要|必须是?)$", re.I
)
"""Said right before a value, it makes the facet filter instead of rank ("only in black")."""
ANY = (
    r"(?:\bany\s+{label}(?:\s+(?:is|will do)(?:\s+(?:fine|ok|okay))?)?\b"
    r"|\b{label}\s+(?:doesn'?t|does not|don'?t|do not)\s+matter\b|\bwhatever\s+{label}\b"
    r"|\b{label}\s+is\s+(?:fine|ok|okay)\b|不限{label}|{label}(?:无所谓|都行|都可以|不限))"
)
"""Said of a facet's name, it lets the facet go ("any colour is fine")."""
COLOUR_WORDS = ("colou?r", "colou?rs", "颜色")
NAME_CUE = re.compile(r"\b(?:(?:directed\s+)?by|with|starring)\s+$", re.I)


@dataclass
class SaidFacets:
    wants: dict[str, list[str]] = field(default_factory=dict)
    required: set[str] = field(default_factory=set)
    clears: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)
    remainder: str = ""
    """The text without what was read here, for the rest of the reading (the subject's words)."""
    native: str | None = None
    """The Chinese query (when read in its own words), likewise."""


def read_facets(lexicon: CatalogLexicon, text: str, chinese: str = "", native: str | None = None) -> SaidFacets:
    """`text`: the message as read (a Chinese one through the glossary); `chinese`: a Chinese message as written,
    where a Chinese catalog's values and Chinese audience words are found; `native`: its query in its own words."""
    said = SaidFacets(native=native)
    for facet in lexicon.facets.values():
        labels = COLOUR_WORDS if facet.kind == "colour" else (re.escape(facet.label),) if facet.label else ()
        for label in labels:
            pattern = re.compile(ANY.format(label=label), re.I)
            if pattern.search(text) or chinese and pattern.search(chinese):
                said.clears.add(facet.name)
                text = pattern.sub(" ", text)
                said.native = pattern.sub(" ", said.native) if said.native else said.native
    mentions = [(mention, text) for mention in lexicon.mentions(text)]
    if chinese:
        mentions += [(mention, chinese) for mention in lexicon.mentions(chinese) if is_cjk_text(mention.said)]
    found = {mention.facet for mention, _ in mentions if not mention.missing}
    for mention, source in sorted(mentions, key=lambda pair: pair[0].start):
        if mention.missing and mention.facet in found:  # "黑色" found, its glossary word "black" is no miss
            continue
        if native is not None and source is not chinese and not lexicon.facets[mention.facet].hard:
            continue  # read in its own words, the encoder has the wish; the glossary serves only the constraints
        _want(said, lexicon, mention, source)
    said_text = text
    for mention, source in mentions:
        if source is said_text:
            start = mention.start
            if lexicon.facets[mention.facet].kind == "name" and (cue := NAME_CUE.search(text[:start])):
                start = cue.start()  # "by" of "by Michael Mann" goes with the name, not into the search words
            text = text[:start] + " " * (mention.end - start) + text[mention.end :]
        elif said.native:
            said.native = " ".join(said.native.replace(mention.said, " ").split())
    said.remainder = text
    return said


def _want(said: SaidFacets, lexicon: CatalogLexicon, mention: Mention, source: str) -> None:
    facet = lexicon.facets[mention.facet]
    if mention.facet in said.clears:
        return
    if mention.missing:
        nearest = ", ".join(mention.values)
        said.notes.append(
            f'no item here is "{mention.said}"' + (f"; the nearest colours are {nearest}" if nearest else "")
        )
        if not mention.values:
            return
    if facet.kind == "audience":  # one audience at a time: the last said wins ("for men... actually for women")
        said.wants[mention.facet] = list(mention.values)
    else:
        said.wants.setdefault(mention.facet, []).extend(
            value for value in mention.values if value not in said.wants.get(mention.facet, [])
        )
    if ONLY.search(source[: mention.start]):
        said.required.add(mention.facet)
