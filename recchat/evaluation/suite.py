"""Prompt regression suites: conversations on a catalog, with expectations checked on the typed replies.

A suite is a YAML file beside the prompts (prompts/recommend/cases/NAME.yaml):

    catalog: products          # a catalog name or file; `dataset: ml-100k` builds that movie catalog instead
    threshold: 0.9             # the run fails when the pass rate falls below this
    planted_items: [...]       # optional items added to the catalog for this suite (e.g. planted injections)
    cases:
      - id: winter-coat
        tags: [ci]             # `ci` cases run in the default test run
        turns:
          - say: I want a winter coat
            expect: {category: coats & jackets, min_items: 3}
          - say: cheaper
            expect: {cheaper_than_previous: true}

Every turn is also checked for grounding: each item is a real catalog item with its catalog title and
price, and no item appears twice. The expectation names are the fields of `Expect`.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from recchat.catalog import Catalog
from recchat.config import PROMPTS_DIR
from recchat.errors import RecChatError
from recchat.facts import fact_phrases
from recchat.grounding import content_words, item_words
from recchat.models import Item, RecommendationList, format_price

SUITES_DIR = PROMPTS_DIR / "recommend" / "cases"
CJK = re.compile(r"[\u4e00-\u9fff]")


class SuiteError(RecChatError, ValueError):
    """A suite file cannot be used as written."""


class Expect(BaseModel):
    """What one reply must satisfy. Every field is optional; unset fields are not checked."""

    model_config = ConfigDict(extra="forbid")

    min_items: int | None = Field(None, description="at least this many items")
    max_items: int | None = Field(None, description="at most this many items (0: an honest 'nothing matches')")
    category: str | None = Field(None, description="every item is in this category")
    max_price: float | None = Field(None, description="every item costs at most this")
    min_price: float | None = Field(None, description="every item costs at least this")
    all_with: dict[str, str | list[str]] = Field(
        default_factory=dict, description="every item has the attribute, containing the value (or one of the values)"
    )
    none_with: dict[str, str | list[str]] = Field(
        default_factory=dict, description="no item has the attribute containing the value (or any of the values)"
    )
    first_with: dict[str, str | list[str]] = Field(
        default_factory=dict,
        description="the first item has the attribute (or title, or category) containing the value (or one of them)",
    )
    includes_any: list[str] = Field(default_factory=list, description="at least one of these ids is listed")
    excludes_ids: list[str] = Field(default_factory=list, description="none of these ids is listed")
    reasons_cite_facts: bool = Field(False, description="each reason uses a word of its own item's facts")
    reasons_mention: list[str] = Field(
        default_factory=list,
        description="what the request asked for: where an item's facts hold some of these words, its reason says at "
        "least one of them",
    )
    reasons_exclude: list[str] = Field(default_factory=list, description="no reason or title contains these words")
    cheaper_than_previous: bool = Field(False, description="every item is cheaper than the previous turn's cheapest")
    pricier_than_previous: bool = Field(False, description="every item costs more than the previous turn's dearest")
    disjoint_from_previous: bool = Field(False, description="no item of the previous turn is listed again")
    language: Literal["en", "zh"] | None = Field(
        None, description="the request was read, and answered, in this language"
    )
    source: Literal["llm", "retrieval"] | None = Field(None, description="who chose the items")
    message_contains: str | None = Field(None, description="the reply's message contains this text")


class Turn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    say: str
    expect: Expect = Expect()
    error: str | None = Field(
        None, description="the turn must be refused with this error type, e.g. InvalidMessageError"
    )


class Case(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    tags: list[str] = Field(default_factory=list)
    note: str = ""
    turns: list[Turn] = Field(min_length=1)


class Suite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = ""
    catalog: str = "products"
    dataset: Literal["ml-1m", "ml-100k"] | None = None
    threshold: float = Field(ge=0, le=1)
    planted_items: list[Item] = Field(default_factory=list)
    cases: list[Case] = Field(min_length=1)

    def selected(self, tags: set[str] | None = None, ids: set[str] | None = None) -> list[Case]:
        return [
            case for case in self.cases
            if (not tags or tags & set(case.tags)) and (not ids or case.id in ids)
        ]


def suite_paths(names: list[str] | None = None, folder: Path = SUITES_DIR) -> list[Path]:
    """Suite files by name ('products') or path; all suites in the folder when none are named."""
    if not names:
        return sorted(folder.glob("*.yaml"))
    paths = []
    for name in names:
        path = Path(name) if name.endswith((".yaml", ".yml")) else folder / f"{name}.yaml"
        if not path.is_file():
            known = ", ".join(p.stem for p in sorted(folder.glob("*.yaml")))
            raise SuiteError(f"no suite {name!r}; the suites in {folder} are: {known}")
        paths.append(path)
    return paths


def load_suite(path: Path) -> Suite:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        suite = Suite.model_validate({"name": path.stem, **(data or {})})
    except (yaml.YAMLError, ValidationError) as error:
        raise SuiteError(f"{path} is not a valid suite: {error}") from error
    ids = [case.id for case in suite.cases]
    repeated = sorted({case_id for case_id in ids if ids.count(case_id) > 1})
    if repeated:
        raise SuiteError(f"{path}: case ids must be unique; repeated: {', '.join(repeated)}")
    return suite


def suite_catalog(suite: Suite, settings) -> Catalog:
    """The suite's catalog, with its planted items (under a name of its own, so the real index stays clean)."""
    from recchat.catalog import load_catalog, load_configured_catalog
    from recchat.movies import ensure_movie_catalog

    if suite.dataset:
        catalog = load_catalog(ensure_movie_catalog(settings.generated_catalog_dir, suite.dataset))
    else:
        catalog = load_configured_catalog(settings.model_copy(update={"catalog": suite.catalog}))
    if not suite.planted_items:
        return catalog
    return Catalog(f"{catalog.name}-{suite.name}", [*catalog, *suite.planted_items])


# --- checking -------------------------------------------------------------------------------------------

def check_reply(
    expect: Expect, reply: RecommendationList, previous: RecommendationList | None, catalog: Catalog
) -> list[str]:
    """Why the reply falls short; empty when it passes. Grounding is always checked."""
    why: list[str] = []
    items = reply.items
    ids = [item.id for item in items]
    for item in items:
        real = catalog.get(item.id)
        if real is None:
            why.append(f"{item.id} is not in the catalog")
        elif item.title != real.title or item.price != real.price:
            why.append(f"{item.id} is shown as {item.title!r} at {item.price}, not as in the catalog")
    if len(set(ids)) != len(ids):
        why.append(f"an item is listed twice: {ids}")
    known = [catalog[item_id] for item_id in ids if item_id in catalog]

    if expect.min_items is not None and len(items) < expect.min_items:
        why.append(f"{len(items)} items, expected at least {expect.min_items}")
    if expect.max_items is not None and len(items) > expect.max_items:
        why.append(f"{len(items)} items, expected at most {expect.max_items}")
    if expect.category and (off := [i.id for i in known if i.category.lower() != expect.category.lower()]):
        why.append(f"not in {expect.category}: {off}")
    if expect.max_price is not None and (off := [i.id for i in known if i.price is None or i.price > expect.max_price]):
        why.append(f"over {expect.max_price}: {off}")
    if expect.min_price is not None and (off := [i.id for i in known if i.price is None or i.price < expect.min_price]):
        why.append(f"under {expect.min_price}: {off}")
    for attribute, wanted in expect.all_with.items():
        if off := [i.id for i in known if not _has(i, attribute, wanted)]:
            why.append(f"{attribute} not {wanted}: {off}")
    for attribute, unwanted in expect.none_with.items():
        if off := [i.id for i in known if _has(i, attribute, unwanted)]:
            why.append(f"{attribute} is {unwanted}: {off}")
    for attribute, wanted in expect.first_with.items():
        if not known or not _has(known[0], attribute, wanted):
            why.append(f"the first item's {attribute} is not {wanted}: {known[0].id if known else 'no items'}")
    if expect.includes_any and not set(expect.includes_any) & set(ids):
        why.append(f"none of {expect.includes_any} listed")
    if listed := set(expect.excludes_ids) & set(ids):
        why.append(f"listed although excluded: {sorted(listed)}")
    if expect.reasons_cite_facts:
        for item in items:
            if item.id in catalog and not _cites_facts(item.reason, catalog[item.id]):
                why.append(f"{item.id}'s reason cites none of its facts: {item.reason!r}")
    for item in items if expect.reasons_mention else ():
        facts = " ".join(fact_phrases(catalog[item.id])).lower() if item.id in catalog else ""
        has = [word for word in expect.reasons_mention if word in facts]
        if has and not any(word in item.reason.lower() for word in has):
            why.append(f"{item.id} is {' and '.join(has)} but its reason does not say so: {item.reason!r}")
    for word in expect.reasons_exclude:
        if off := [i.id for i in items if word.lower() in f"{i.title} {i.reason}".lower()]:
            why.append(f"{word!r} appears in {off}")
    why.extend(_against_previous(expect, known, previous, catalog))
    if expect.language:
        # The reply's own words: an English answer quotes the catalog's words and the request's as they are.
        request = reply.metadata.request
        own_words = reply.message
        quoted = [*catalog.categories(), *(item.title for item in items), *request.constraints.excluded_terms]
        for words in sorted(quoted, key=len, reverse=True):
            own_words = own_words.replace(words, " ")
        answered_in = "zh" if CJK.search(own_words) else "en"
        if (reply.metadata.request.language, answered_in) != (expect.language, expect.language):
            read_as = reply.metadata.request.language
            why.append(f"read as {read_as!r} and answered in {answered_in!r}, not {expect.language!r}")
    if expect.source and reply.metadata.source != expect.source:
        why.append(f"answered by {reply.metadata.source} ({reply.metadata.fallback_reason}), not {expect.source}")
    if expect.message_contains and expect.message_contains.lower() not in reply.message.lower():
        why.append(f"message lacks {expect.message_contains!r}: {reply.message!r}")
    return why


def _against_previous(
    expect: Expect, known: list[Item], previous: RecommendationList | None, catalog: Catalog
) -> list[str]:
    wanted = expect.cheaper_than_previous or expect.pricier_than_previous or expect.disjoint_from_previous
    if not wanted:
        return []
    if previous is None or not previous.items:
        return ["a comparison with the previous turn was asked, but it showed nothing"]
    why = []
    before = [item.price for item in previous.items if item.price is not None]
    prices = [item.price for item in known if item.price is not None]
    if expect.cheaper_than_previous and (not prices or max(prices) >= min(before)):
        why.append(f"not cheaper: {prices} against the previous cheapest {min(before)}")
    if expect.pricier_than_previous and (not prices or min(prices) <= max(before)):
        why.append(f"not pricier: {prices} against the previous dearest {max(before)}")
    if expect.disjoint_from_previous and (again := {i.id for i in known} & {i.id for i in previous.items}):
        why.append(f"shown again: {sorted(again)}")
    return why


def _has(item: Item, attribute: str, values: str | list[str]) -> bool:
    """Whether the attribute (or 'title', or 'category') contains the value or one of the values, ignoring case."""
    value = {"title": item.title, "category": item.category}.get(attribute, item.attributes.get(attribute))
    if value is None:
        return False
    text = " ".join(value) if isinstance(value, list) else str(value)
    return any(wanted.lower() in text.lower() for wanted in ([values] if isinstance(values, str) else values))


def _cites_facts(reason: str, item: Item) -> bool:
    """A word of the item's facts beyond its title, or its own price ("$90." answers "running shoes under $100")."""
    own_price = item.price is not None and format_price(item.price, item.currency) in reason
    return own_price or bool(content_words(reason) & (item_words(item) - content_words(item.title)))


# --- running -------------------------------------------------------------------------------------------

@dataclass
class CaseResult:
    case_id: str
    passed: bool
    why: list[str]
    replies: list[dict]
    seconds: float


@dataclass
class SuiteResult:
    suite: str
    label: str
    """What ran: prompt version and backend."""
    threshold: float
    cases: list[CaseResult] = field(default_factory=list)

    @property
    def pass_rate(self) -> float:
        return sum(case.passed for case in self.cases) / len(self.cases) if self.cases else 0.0

    @property
    def ok(self) -> bool:
        return self.pass_rate >= self.threshold

    def to_dict(self) -> dict:
        return {
            "suite": self.suite, "label": self.label, "threshold": self.threshold, "pass_rate": self.pass_rate,
            "passed": sum(case.passed for case in self.cases), "total": len(self.cases), "ok": self.ok,
            "cases": [case.__dict__ for case in self.cases],
        }


def run_case(bot, case: Case) -> CaseResult:
    """One conversation in a fresh session; a typed error from the engine fails the case, with its message."""
    started = time.perf_counter()
    session = bot.new_session()
    why: list[str] = []
    replies: list[dict] = []
    previous = None
    for number, turn in enumerate(case.turns, start=1):
        try:
            reply = bot.chat(turn.say, session)
        except RecChatError as error:
            if type(error).__name__ != turn.error:
                why.append(f"turn {number}: {type(error).__name__}: {error}")
            replies.append({"say": turn.say, "error": f"{type(error).__name__}: {error}"})
            continue
        if turn.error:
            why.append(f"turn {number}: answered, but {turn.error} was expected")
        replies.append({
            "say": turn.say, "message": reply.message, "source": reply.metadata.source,
            "items": [{"id": i.id, "title": i.title, "price": i.price, "reason": i.reason} for i in reply.items],
        })
        why.extend(f"turn {number}: {reason}" for reason in check_reply(turn.expect, reply, previous, bot.catalog))
        previous = reply
    return CaseResult(case.id, not why, why, replies, round(time.perf_counter() - started, 2))


def run_suite(bot, suite: Suite, cases: list[Case] | None = None, progress=None) -> SuiteResult:
    backend = bot.backend.name
    result = SuiteResult(suite.name, f"{bot.prompt.label} on {backend}", suite.threshold)
    for case in cases if cases is not None else suite.cases:
        result.cases.append(run_case(bot, case))
        if progress:
            progress(result.cases[-1])
    return result


def flips(first: SuiteResult, second: SuiteResult) -> dict[str, list[str]]:
    """Cases whose outcome differs between two runs of the same suite."""
    before = {case.case_id: case.passed for case in second.cases}
    return {
        "fixed": [case.case_id for case in first.cases if case.passed and before.get(case.case_id) is False],
        "broken": [case.case_id for case in first.cases if not case.passed and before.get(case.case_id) is True],
    }


def table(results: list[SuiteResult]) -> str:
    """A plain-text table: one row per case, one pass/fail column per run, and why the first run failed."""
    first = results[0]
    others = {result.label: {case.case_id: case for case in result.cases} for result in results[1:]}
    header = ["case", first.label, *others]
    rows = []
    for case in first.cases:
        marks = ["pass" if case.passed else "FAIL"]
        marks += ["pass" if other[case.case_id].passed else "FAIL" for other in others.values()]
        rows.append([case.case_id, *marks, "; ".join(case.why)[:160]])
    widths = [max(len(str(row[i])) for row in [header + [""], *rows]) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header + ["why"], widths + [0]))]
    lines += ["  ".join(str(cell).ljust(w) for cell, w in zip(row, widths + [0])).rstrip() for row in rows]
    for result in results:
        lines.append(
            f"{result.suite} · {result.label}: {sum(c.passed for c in result.cases)}/{len(result.cases)} passed "
            f"({result.pass_rate:.0%}; threshold {result.threshold:.0%}) -> {'ok' if result.ok else 'BELOW THRESHOLD'}"
        )
    if len(results) > 1:
        changed = flips(results[0], results[1])
        fixed, broken = changed["fixed"] or "none", changed["broken"] or "none"
        lines.append(f"flipped against {results[1].label}: fixed {fixed}; broken {broken}")
    return "\n".join(lines)


def write_report(results: list[SuiteResult], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    report = {"runs": [result.to_dict() for result in results]}
    if len(results) > 1:
        report["flips"] = flips(results[0], results[1])
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
