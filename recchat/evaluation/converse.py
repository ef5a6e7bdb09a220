"""Simulated shoppers over any catalog: does a system find the item a shopper has in mind, turn by turn?

Target items are drawn from the catalog (seeded). Each gets a script that reveals one more of its attributes per
turn, in wordings drawn among paraphrases, and never its title: a title in the request makes the search trivial
(iEvaLM's warning). Every system answers the same scripts in one run, and the figures follow multi-turn
conversational recommendation (EAR, UNICORN): success at each turn and the average turns to success.

What a script says is found in the catalog's lexicon by the kind of facet (who it is for, colour, a year), never
by a column's name, so a catalog recchat has never seen gets scripts too.
"""

from __future__ import annotations

import json
import random
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Protocol

from recchat.catalog import Catalog
from recchat.models import ClarifyingQuestion, Item, format_price
from recchat.understanding import CatalogLexicon, Facet, detect_language
from recchat.understanding.lexicon import COMPATIBLE, number
from recchat.wording import PRICE_MARGIN, price_ceiling

CATALOGS = ("products", "products-zh", "movies")
"""What `--catalog all` runs: the two bundled shops and the movie catalog built from MovieLens."""
SLOTS = ("subject", "audience", "detail", "kind", "limit")
"""What each turn reveals, in this order; a catalog without what a slot needs has no such turn."""
CREATOR_KEYS = ("director", "author", "artist", "creator", "designer", "maker")
"""Who made an item is not a facet (too many values to ask for by kind), so it is found by the words people use
for such a column; a catalog without a price says it instead of a budget ("by Michael Mann")."""
FITS = {**COMPATIBLE, "unisex": {"unisex"}}
"""Which audience groups meet a stated one: a unisex item is for women and for men too; an adult's is not a
child's, and "for anyone" asks for what anyone can use."""

PROTOCOL = """\
Targets: {targets} items drawn (seed {seed}) from the catalog's items whose script covers every turn the catalog
allows ({slots}). A script reveals one more attribute of the target per turn, worded by a seeded choice among
paraphrases, and never its title: 1 subject (a multi-category catalog: the head noun of the target's kind, "I
need a jacket", or in Chinese its category, "我想买外套"; a one-category one: one of the target's values of its most
held facet, "any good comedy movies?"); 2 audience (who it is for, as a group: "for my wife", "男款"; unisex
items: "for anyone"; without an audience facet, the decade of a year facet: "from the 1990s"); 3 detail (the
target's colour: "preferably in navy"; without a colour facet, another of its facet values: a second genre, a
language); 4 kind (the target's kind words from its title: "actually, a parka"); 5 limit (a price ceiling
{margin:.0%} above its price, rounded up to the next 10, 50 or 100: "under $460"; without prices, who made it:
"by Michael Mann"). The one-message variant says it all at once ("I'm looking for a parka for women in navy
under $460"), in a new session. Facets are found by kind in the catalog's lexicon, never by column name.
Systems: recchat (the engine through its chat API, one session per target, LLM {llm}, feedback on an empty
temporary SQLite log), recchat-no-questions (the same with chat.clarify = false), recchat-stateless (with
chat.dialogue_state = false and no questions: each message read alone),
embedding (the conversation so far joined by spaces, embedded with the engine's encoder, its {shown} nearest
items in the engine's Chroma index; no parsing, no filters). A shopper asked a clarifying question answers it
when one of its options is the target's (a click: the option's message), saying early what a later turn of its
script says, which it then skips; otherwise it goes on with its script. Every conversation has as many turns as
its script. success@t: the target is among the {shown} items
shown after turn t; found by t: it was shown at some turn up to t (MCR's SR@t); AT: the first turn that shows
it, a failure counting {failed}. Contradictions: the share of shown items that contradict a hard facet said so
far (the audience: a unisex item meets women and men, nothing adult meets kids; the price ceiling; a year
range), among items shown once one was said. Colour match: the share of shown items in the colour said, once
said, counted against what the catalog makes possible: of a list, as many as there are items of the target's
category in that colour meeting what was said."""


# --- how a shopper says it -------------------------------------------------------------------------

ENGLISH = {
    "category": ["I'm looking for {noun}", "I need {noun}", "do you have {noun}?"],
    "value subject": ["I'm looking for {value} {noun}", "show me some {value} {noun}", "any good {value} {noun}?"],
    "women": ["it's for women", "it's for my wife", "something for my mother", "for ladies", "women's, please"],
    "men": ["it's for my husband", "for men", "for my dad", "men's, please"],
    "kids": ["for my son", "it's for kids", "for children"],
    "unisex": ["for anyone", "it's for everyone", "unisex, please"],
    "decade": ["from the {short}", "something from the {decade}", "made in the {decade}"],
    "colour": ["preferably in {value}", "something in {value}", "{value} if possible", "ideally {value}"],
    "value": ["it should be {value} too", "ideally {value} as well", "{value} would be good"],
    "kind": ["actually, {kind}", "it should be {kind}", "ideally {kind}"],
    "price": ["under {money}", "not too pricey, under {money}", "my budget is {money}"],
    "creator": ["by {value}", "something by {value}", "ideally by {value}"],
}
CHINESE = {
    "category": ["我想买{noun}", "给我看看{noun}", "有没有{noun}？"],
    "value subject": ["我想要{value}的{noun}", "有没有{value}的{noun}？"],
    "women": ["是给我老婆买的", "女款", "要女士的"],
    "men": ["男款", "给我老公的", "要男士的"],
    "kids": ["儿童的", "给孩子买的"],
    "unisex": ["男女通用的", "中性款"],
    "decade": ["{short}年代的", "要{decade}年代的"],
    "colour": ["要{value}的", "最好是{value}"],
    "value": ["也要{value}的", "最好是{value}的"],
    "kind": ["其实我要的是{kind}", "要{kind}", "最好是{kind}"],
    "price": ["{money}以内", "预算{money}", "不要超过{money}"],
    "creator": ["要{value}的", "最好是{value}的作品"],
}
AUDIENCE_FRAGMENTS = {
    "en": {"women": "for women", "men": "for men", "kids": "for kids", "unisex": "for anyone"},
    "zh": {"women": "女款", "men": "男款", "kids": "儿童", "unisex": "男女通用"},
}


def with_article(phrase: str) -> str:
    """ "a parka", "an overcoat"; a plural ("boots", "jeans") goes without one."""
    if is_plural(phrase.split()[-1]):
        return phrase
    return f"{'an' if phrase[:1].lower() in 'aeiou' else 'a'} {phrase}"


def is_plural(word: str) -> bool:
    return word.endswith("s") and not word.endswith(("ss", "'s"))


def category_noun(category: str) -> str:
    """What a shopper calls a category: its first part ("coats & jackets" -> "coats")."""
    return category.replace("&", ",").replace("/", ",").split(",")[0].strip()


def decade_words(year: int, language: str) -> tuple[str, str]:
    """(short, full) names of a year's decade: ("90s", "1990s"); ("90", "1990") in Chinese, before 年代."""
    decade = year // 10 * 10
    suffix = "" if language == "zh" else "s"
    short = f"{decade % 100:02d}" if 1900 <= decade < 2000 else str(decade)
    return short + suffix, f"{decade}{suffix}"


# --- scripts ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Said:
    """What the shopper has asked for so far that a shown item can be checked against."""

    audience: str | None = None
    """A group: women, men, kids or unisex."""
    colour: str | None = None
    """The catalog's colour value."""
    max_price: float | None = None
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Numeric facet -> (low, high), both included: a decade."""


@dataclass(frozen=True)
class Turn:
    slot: str
    message: str
    fragment: str
    """How the one-message variant says the same."""
    said: Said
    """Everything asked for up to this turn, this one included."""
    facet: str | None = None
    """The facet this turn states ('for', 'color'), which a system's clarifying question may ask for earlier."""
    update: dict = field(default_factory=dict)
    """What this turn adds to `Said`."""


@dataclass
class Script:
    target: str
    title: str
    turns: list[Turn]
    one_message: str


class ScriptWriter:
    """Writes a shopper's script for any item of one catalog, from the catalog's lexicon."""

    def __init__(self, catalog: Iterable[Item], lexicon: CatalogLexicon):
        items = list(catalog)
        self.lexicon = lexicon
        self.language = "zh" if detect_language(" ".join(item.title for item in items[:200])) == "zh" else "en"
        self.wording = CHINESE if self.language == "zh" else ENGLISH
        self.one_category = len({item.category for item in items}) == 1
        held = Counter(key for item in items for key in item.attributes)
        self.value_facets = sorted(
            (facet for facet in lexicon.facets.values() if facet.kind == "value"), key=lambda facet: -held[facet.name]
        )
        """Most held first: for a one-category catalog the first says what the subject is (a film's genres)."""
        self.year = next((facet for facet in lexicon.facets.values() if facet.dimension == "year"), None)
        self.creator = next((key for key in CREATOR_KEYS if held[key]), None)
        self.priced = any(item.price is not None for item in items)
        has_kinds = not self.one_category and any(lexicon.kind_words(item) for item in items)
        offered = {
            "subject": True,
            "audience": lexicon.audience is not None or self.year is not None,
            "detail": lexicon.colour is not None or bool(self.value_facets),
            "kind": has_kinds,
            "limit": self.priced or self.creator is not None,
        }
        self.slots = [slot for slot in SLOTS if offered[slot]]

    def script(self, item: Item, seed: int) -> Script | None:
        """The item's script, reproducible from the seed and its id alone; None when the item lacks what one of the
        catalog's turns needs (it is then no target)."""
        rng = random.Random(f"{seed}:{item.id}")
        said = Said()
        turns: list[Turn] = []
        parts: dict[str, str] = {}
        reveal = {
            "subject": self._subject, "audience": self._audience, "detail": self._detail, "kind": self._kind,
            "limit": self._limit,
        }
        for slot in self.slots:
            revealed = reveal[slot](item, rng, parts)
            if revealed is None:
                return None
            template, values, fragment, update = revealed
            said = replace(said, **update)
            message = rng.choice(self.wording[template]).format(**values)
            turns.append(Turn(slot, message, fragment, said, parts.pop("facet", None), update))
        return Script(item.id, item.title, turns, self._one_message(parts, turns))

    # Each slot: (template name, its fields, the one-message fragment, what it adds to `Said`), or None.
    # `parts` keeps what later slots and the one-message variant build on.

    def _subject(self, item: Item, rng: random.Random, parts: dict[str, str]):
        noun = category_noun(item.category)
        parts["noun"] = noun
        if not self.one_category or not self.value_facets:
            # The kind's head noun ("jacket" of "insulated ski jacket"), as a shopper starts; a Chinese title's kind
            # has no separate head, so its category stands for it ("外套").
            head = self.lexicon.kind_words(item).split()[-1:] if self.language == "en" else []
            said = with_article(head[0]) if head else noun
            return "category", {"noun": said}, said, {}
        values = self.lexicon.item_values(item, self.value_facets[0].name)
        if not values:
            return None
        value = parts["subject value"] = self._said_value(rng.choice(values))
        return "value subject", {"value": value, "noun": noun}, value, {}

    def _audience(self, item: Item, rng: random.Random, parts: dict[str, str]):
        audience = self.lexicon.audience
        if audience is None:
            return self._decade(item)
        groups = [self.lexicon.audience_group(value) for value in self.lexicon.item_values(item, audience.name)]
        groups = [group for group in groups if group is not None]
        if not groups:
            return None
        group = "unisex" if "unisex" in groups else groups[0]  # what anyone can use is said to be for anyone
        parts["facet"] = audience.name
        return group, {}, AUDIENCE_FRAGMENTS[self.language][group], {"audience": group}

    def _decade(self, item: Item):
        assert self.year is not None  # the slot is offered only with an audience or a year facet
        years = [value for value in self.lexicon.item_values(item, self.year.name) if value.isdigit()]
        if not years:
            return None
        short, decade = decade_words(int(years[0]), self.language)
        low = int(years[0]) // 10 * 10
        fragment = f"{short}年代" if self.language == "zh" else f"from the {decade}"
        return "decade", {"short": short, "decade": decade}, fragment, {"ranges": {self.year.name: (low, low + 9)}}

    def _detail(self, item: Item, rng: random.Random, parts: dict[str, str]):
        colour = self.lexicon.colour
        if colour is not None:
            values = self.lexicon.item_values(item, colour.name)
            if not values:
                return None
            value = rng.choice(values)
            parts["facet"] = colour.name
            shown = self._said_value(value)
            fragment = shown if self.language == "zh" else f"in {shown}"
            return "colour", {"value": shown}, fragment, {"colour": value}
        chosen = next(
            ((facet, values) for facet in self.value_facets if (values := self._other_values(item, facet, parts))),
            None,
        )
        if chosen is None:
            return None
        parts["facet"] = chosen[0].name
        value = parts["detail value"] = self._said_value(rng.choice(chosen[1]))
        return "value", {"value": value}, value, {}

    def _other_values(self, item: Item, facet: Facet, parts: dict[str, str]) -> list[str]:
        """The item's values of a facet that a shopper could say as a word or two, not said yet: a second genre
        before a language ("English, Spanish" is a list in one value, not something to ask for)."""
        said = {parts.get("subject value")}
        return [
            value for value in self.lexicon.item_values(item, facet.name)
            if self._said_value(value) not in said and "," not in value and len(value.split()) <= 2
        ]

    def _kind(self, item: Item, rng: random.Random, parts: dict[str, str]):
        kind = self.lexicon.kind_words(item)
        if not kind:
            return None
        parts["kind"] = kind
        said = kind if self.language == "zh" else with_article(kind)
        return "kind", {"kind": said}, said, {}

    def _limit(self, item: Item, rng: random.Random, parts: dict[str, str]):
        if self.priced:
            if item.price is None:
                return None
            ceiling = price_ceiling(item.price)
            chinese_yuan = self.language == "zh" and item.currency == "CNY"
            money = f"{ceiling}元" if chinese_yuan else format_price(ceiling, item.currency)
            fragment = f"{money}以内" if self.language == "zh" else f"under {money}"
            return "price", {"money": money}, fragment, {"max_price": float(ceiling)}
        made_by = item.attributes.get(self.creator) if self.creator else None
        if isinstance(made_by, list):
            made_by = made_by[0] if made_by else None
        if not made_by:
            return None
        fragment = f"{made_by}的" if self.language == "zh" else f"by {made_by}"
        return "creator", {"value": made_by}, fragment, {}

    def _said_value(self, value: str) -> str:
        """A catalog value as a shopper types it: English in lower case ("Sci-Fi" -> "sci-fi")."""
        return value if self.language == "zh" else value.lower()

    def _one_message(self, parts: dict[str, str], turns: list[Turn]) -> str:
        """Everything the script says, in one sentence: "I'm looking for a parka for women in navy under $460",
        "I'm looking for romance comedy movies from the 1990s by Michael Mann", "我想要女款黑色羽绒服，2700元以内".
        Values said as words (a genre, a material) go before the noun; the rest after it, as the turns say it."""
        fragment = {turn.slot: turn.fragment for turn in turns}
        if "detail value" in parts:  # said as an adjective
            del fragment["detail"]
        head = parts.get("kind") or parts["noun"]
        adjectives = [parts[part] for part in ("detail value", "subject value") if part in parts]
        if self.language == "zh":
            before = [fragment[slot] for slot in ("audience", "detail") if slot in fragment]
            after = f"，{fragment['limit']}" if "limit" in fragment else ""
            return "我想要" + "".join([*before, *adjectives, head]) + after
        after = [fragment[slot] for slot in ("audience", "detail", "limit") if slot in fragment]
        return " ".join(["I'm looking for", with_article(" ".join([*adjectives, head])), *after])


def draw_scripts(
    catalog: Catalog, lexicon: CatalogLexicon, targets: int, seed: int
) -> tuple[ScriptWriter, list[Script]]:
    """`targets` scripts for items drawn with the seed among those whose script covers every turn."""
    writer = ScriptWriter(catalog, lexicon)
    eligible = [script for item in sorted(catalog, key=lambda item: item.id) if (script := writer.script(item, seed))]
    return writer, random.Random(seed).sample(eligible, min(targets, len(eligible)))


# --- systems ---------------------------------------------------------------------------------------

class ConversationalSystem(Protocol):
    """A system a simulated shopper talks to: a new conversation, then each message gets the items shown and,
    maybe, a clarifying question."""

    name: str

    def start(self) -> None: ...

    def reply(self, message: str) -> tuple[list[str], ClarifyingQuestion | None]: ...


class ChatEngine:
    """recchat through its chat API: a session per conversation."""

    def __init__(self, name: str, bot):
        self.name = name
        self.bot = bot
        self.session = ""

    def start(self) -> None:
        self.session = self.bot.new_session()

    def reply(self, message: str) -> tuple[list[str], ClarifyingQuestion | None]:
        reply = self.bot.chat(message, session_id=self.session)
        return [item.id for item in reply.items], reply.question


class DenseSearch:
    """The conversation so far, joined and embedded, against the engine's item vectors: no parsing, no filters."""

    name = "embedding"

    def __init__(self, index, shown: int):
        self.index = index
        self.count = shown
        self.messages: list[str] = []

    def start(self) -> None:
        self.messages = []

    def reply(self, message: str) -> tuple[list[str], ClarifyingQuestion | None]:
        self.messages.append(message)
        vector = self.index.encoder.encode_queries([" ".join(self.messages)])[0]
        return [item for item, _ in self.index.nearest(vector, self.count)], None


# --- figures ---------------------------------------------------------------------------------------

@dataclass
class Conversation:
    """What one system showed for one script: after each turn, and for the one-message variant."""

    target: str
    shown: list[list[str]]
    one_message: list[str]
    said: list[Said] = field(default_factory=list)
    """What had been said after each turn; empty: as the script says it (no question was answered)."""
    messages: list[str] = field(default_factory=list)
    """What the shopper sent: the script's turns, in its order unless it answered a question."""
    answered: list[bool] = field(default_factory=list)
    """Per turn: whether the message answered the system's question."""

    def first_hit(self) -> int | None:
        """The first turn (from 1) that showed the target."""
        return next((turn for turn, items in enumerate(self.shown, start=1) if self.target in items), None)


def converse(
    system: ConversationalSystem, scripts: list[Script], catalog: Catalog, lexicon: CatalogLexicon,
    progress: bool = False,
) -> list[Conversation]:
    """Each script's conversation with the system, as many turns as the script has. A shopper asked a question
    answers it when one option is its target's (a click on it), saying early what its script says later, if it
    does; otherwise it goes on with its script."""
    from tqdm import tqdm

    conversations = []
    for script in tqdm(scripts, desc=system.name, unit="target", disable=not progress):
        system.start()
        waiting = list(script.turns)
        question: ClarifyingQuestion | None = None
        said = Said()
        conversation = Conversation(script.target, [], [])
        for _ in script.turns:
            answer = answer_of(question, catalog[script.target], waiting, lexicon)
            message, update = answer if answer is not None else (waiting[0].message, waiting[0].update)
            if answer is None:
                waiting.pop(0)
            said = replace(said, **update)
            shown, question = system.reply(message)
            conversation.shown.append(shown)
            conversation.said.append(said)
            conversation.messages.append(message)
            conversation.answered.append(answer is not None)
        system.start()
        conversation.one_message = system.reply(script.one_message)[0]
        conversations.append(conversation)
    return conversations


def answer_of(
    question: ClarifyingQuestion | None, target: Item, waiting: list[Turn], lexicon: CatalogLexicon
) -> tuple[str, dict] | None:
    """The shopper's answer to a question, (message, what it adds to `Said`): the option its target has. The turn
    of its script that states that facet, if one is still to come, is then taken out of `waiting`. None when there
    is no question, or no option is the target's."""
    if question is None:
        return None
    facet = lexicon.facets.get(question.facet)
    later = next((turn for turn in waiting if turn.facet == question.facet), None)
    if facet is not None and facet.kind == "audience":
        held = [later.said.audience] if later is not None else []  # the group the script says; not before it would
    elif facet is None:
        held = [target.category]
    else:
        held = lexicon.item_values(target, facet.name)
    option = next((option for option in question.options if option.value in held), None)
    if option is None:
        return None
    if later is not None:
        waiting.remove(later)
    said = {"colour": option.value} if facet is not None and facet.kind == "colour" else {}  # the colour clicked
    return option.message, {**later.update, **said} if later is not None else said


def contradicts(item: Item, said: Said, lexicon: CatalogLexicon) -> bool:
    """Whether the item goes against a hard facet said: who it is for, the price ceiling, a year range. An item
    without the attribute does not."""
    if said.audience is not None and lexicon.audience is not None:
        groups = {lexicon.audience_group(value) for value in lexicon.item_values(item, lexicon.audience.name)}
        groups.discard(None)
        if groups and not groups & FITS[said.audience]:
            return True
    if said.max_price is not None and item.price is not None and item.price > said.max_price:
        return True
    for facet, (low, high) in said.ranges.items():
        numbers = [n for value in lexicon.item_values(item, facet) if (n := number(value)) is not None]
        if numbers and not any(low <= number <= high for number in numbers):
            return True
    return False


def has_hard_facet(said: Said) -> bool:
    return said.audience is not None or said.max_price is not None or bool(said.ranges)


def in_colour(item: Item, colour: str, lexicon: CatalogLexicon) -> bool:
    assert lexicon.colour is not None  # a colour is said only in a catalog with a colour facet
    return colour.lower() in {value.lower() for value in lexicon.item_values(item, lexicon.colour.name)}


def share(hits: int, total: int) -> float | None:
    return hits / total if total else None


def list_figures(
    shown: list[list[str]], said: list[Said], targets: list[Item], catalog: Catalog, lexicon: CatalogLexicon
) -> dict:
    """Contradictions and colour match over lists shown, each with what had been said when it was shown and the
    target it was for. Colour match counts against what the catalog makes possible: of a list of five, as many as
    there are items of the target's category in that colour that meet what was said (the issue's "where the kind
    exists in that colour")."""
    contradicting = checked = matching = possible = 0
    for items, asked, target in zip(shown, said, targets):
        if has_hard_facet(asked):
            checked += len(items)
            contradicting += sum(contradicts(catalog[item], asked, lexicon) for item in items)
        if asked.colour is not None and items:
            available = sum(
                item.category == target.category and in_colour(item, asked.colour, lexicon)
                and not contradicts(item, asked, lexicon) for item in catalog
            )
            possible += min(len(items), available)
            matching += min(available, sum(in_colour(catalog[item], asked.colour, lexicon) for item in items))
    return {"contradictions": share(contradicting, checked), "colour_match": share(matching, possible)}


def summarise(
    conversations: list[Conversation], scripts: list[Script], catalog: Catalog, lexicon: CatalogLexicon
) -> dict:
    """Per turn: success@t, found by t, contradictions, colour match; AT; the one-message variant's figures."""
    turns = len(scripts[0].turns)
    targets = [catalog[script.target] for script in scripts]
    said = [c.said or [turn.said for turn in script.turns] for c, script in zip(conversations, scripts)]
    per_turn = []
    for turn in range(1, turns + 1):
        at = [conversation.shown[turn - 1] for conversation in conversations]
        per_turn.append({
            "turn": turn,
            "slot": scripts[0].turns[turn - 1].slot,
            "success": share(sum(c.target in items for c, items in zip(conversations, at)), len(conversations)),
            "found": share(sum((c.first_hit() or turns + 1) <= turn for c in conversations), len(conversations)),
            "answers": share(sum(c.answered[turn - 1] for c in conversations if c.answered), len(conversations)),
            **list_figures(at, [asked[turn - 1] for asked in said], targets, catalog, lexicon),
        })
    one_message = [conversation.one_message for conversation in conversations]
    return {
        "turns": per_turn,
        "average_turns": sum(c.first_hit() or turns + 1 for c in conversations) / len(conversations),
        "one_message": {
            "success": share(sum(c.target in c.one_message for c in conversations), len(conversations)),
            **list_figures(one_message, [script.turns[-1].said for script in scripts], targets, catalog, lexicon),
        },
    }


# --- running and reporting -------------------------------------------------------------------------

def percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def markdown_report(report: dict) -> str:
    systems = report["systems"]
    lines = [
        f"# Simulated shoppers: {report['catalog']}, {report['targets']} targets (seed {report['seed']})",
        "",
        "| system | turn | reveals | success@t | found by t | contradictions | colour match | answers |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for name, figures in systems.items():
        for turn in figures["turns"]:
            lines.append(f"| {name} | {turn['turn']} | {turn['slot']} | {percent(turn['success'])} | "
                         f"{percent(turn['found'])} | {percent(turn['contradictions'])} | "
                         f"{percent(turn['colour_match'])} | {percent(turn['answers'])} |")
    lines += [
        "",
        "| system | AT | one message: success | contradictions | colour match |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, figures in systems.items():
        one = figures["one_message"]
        lines.append(f"| {name} | {figures['average_turns']:.2f} | {percent(one['success'])} | "
                     f"{percent(one['contradictions'])} | {percent(one['colour_match'])} |")
    example = report["details"][0]
    lines += ["", f"Example script (target {example['target']}, {example['title']!r}):", ""]
    lines += [f"{number}. {message}" for number, message in enumerate(example["messages"], start=1)]
    lines += [f"One message: {example['one_message']}", "", "## Protocol", "", report["protocol"], ""]
    return "\n".join(lines)


def _plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4))
    for name, figures in report["systems"].items():
        turns = [turn["turn"] for turn in figures["turns"]]
        line = axis.plot(turns, [turn["success"] for turn in figures["turns"]], marker="o", label=name)[0]
        axis.axhline(figures["one_message"]["success"], color=line.get_color(), linestyle="--", alpha=0.6)
    axis.set_xticks(turns, [f"{turn['turn']}\n{turn['slot']}" for turn in figures["turns"]])
    axis.set_ylim(0, 1)
    axis.set_ylabel(f"success@t (target among the {report['shown']} shown)")
    axis.set_title(f"{report['catalog']}, {report['targets']} targets (seed {report['seed']}); dashed: one message")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def write_report(report: dict, out_dir: Path) -> dict[str, Path]:
    """report.json (protocol, seed, figures, every target's conversation), report.md and success.png."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "report.json", "markdown": out_dir / "report.md", "plot": out_dir / "success.png"}
    paths["json"].write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    paths["markdown"].write_text(markdown_report(report), encoding="utf-8")
    _plot(report, paths["plot"])
    return paths


def open_catalog(settings, name: str) -> Catalog:
    """A bundled or generated catalog by name, or a .jsonl/.csv file; "movies" is built first if missing."""
    from recchat.catalog import load_resolved, resolve_catalog_path
    from recchat.movies import ensure_movie_catalog

    if name == "movies":
        return load_resolved(name, ensure_movie_catalog(settings.generated_catalog_dir, "ml-1m"))
    return load_resolved(name, resolve_catalog_path(name, settings))


def run_converse(
    settings, catalog_name: str, targets: int = 60, seed: int = 0, llm: bool = False, out_dir: Path | None = None,
    progress: bool = False, encoder=None,
) -> tuple[dict, dict[str, Path]]:
    """The whole run on one catalog: draw the targets, write their scripts, have every system answer them, report."""
    from recchat.chat import RecChat
    from recchat.feedback import SQLiteFeedbackStore
    from recchat.llm import make_backend

    if not llm:
        settings = settings.model_copy(update={"llm": settings.llm.model_copy(update={"backend": "none"})})
    catalog = open_catalog(settings, catalog_name)
    lexicon = CatalogLexicon.from_items(catalog, catalog.name)
    writer, scripts = draw_scripts(catalog, lexicon, targets, seed)
    if not scripts:
        raise ValueError(f"no item of catalog {catalog.name!r} has every attribute a script reveals ({writer.slots})")
    out_dir = out_dir or Path("eval-results") / f"converse-{catalog.name}"
    out_dir.mkdir(parents=True, exist_ok=True)
    scratch = tempfile.TemporaryDirectory(prefix="converse-store-", dir=out_dir)
    store = SQLiteFeedbackStore(Path(scratch.name) / "feedback.sqlite3", synchronous="normal")
    backend = make_backend(settings) if llm else None  # one model for both engines
    bot = RecChat.from_settings(
        settings, encoder=encoder, backend=backend, catalog=catalog, progress=progress, feedback_store=store
    )
    stateless = settings.model_copy(
        update={"chat": settings.chat.model_copy(update={"dialogue_state": False, "clarify": False})}
    )
    stateless_bot = RecChat(stateless, catalog, bot.retriever, backend=backend, feedback_store=store)
    silent = settings.model_copy(update={"chat": settings.chat.model_copy(update={"clarify": False})})
    silent_bot = RecChat(silent, catalog, bot.retriever, backend=backend, feedback_store=store)
    systems: list[ConversationalSystem] = [
        ChatEngine("recchat", bot),
        ChatEngine("recchat-no-questions", silent_bot),
        ChatEngine("recchat-stateless", stateless_bot),
        DenseSearch(bot.retriever.index, settings.retrieval.max_items),
    ]
    try:
        conversations = {system.name: converse(system, scripts, catalog, lexicon, progress) for system in systems}
    finally:
        store.close()
        scratch.cleanup()
    report = {
        "catalog": catalog.name,
        "language": writer.language,
        "targets": len(scripts),
        "seed": seed,
        "slots": writer.slots,
        "shown": settings.retrieval.max_items,
        "llm_backend": settings.llm.backend,
        "protocol": PROTOCOL.format(
            targets=len(scripts), seed=seed, slots=", ".join(writer.slots), margin=PRICE_MARGIN - 1,
            llm="on" if llm else "off", shown=settings.retrieval.max_items, failed=len(writer.slots) + 1,
        ),
        "systems": {
            name: summarise(found, scripts, catalog, lexicon) for name, found in conversations.items()
        },
        "details": [
            {
                "target": script.target,
                "title": script.title,
                "messages": [turn.message for turn in script.turns],
                "one_message": script.one_message,
                "said": asdict(script.turns[-1].said),
                "systems": {
                    name: {"first_hit": found[number].first_hit(), "messages": found[number].messages,
                           "shown": found[number].shown, "one_message": found[number].one_message}
                    for name, found in conversations.items()
                },
            }
            for number, script in enumerate(scripts)
        ],
    }
    return report, write_report(report, out_dir)
