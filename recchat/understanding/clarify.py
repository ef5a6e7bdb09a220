"""A clarifying question: when a turn's candidates split on something the shopper has not said (the category, who it
is for, the colour; in a catalog with neither audience nor colour, its facets of short values), the reply may ask one
short question whose options are the values found among the candidates. The items are still shown, as best guesses;
answering is optional.

The facet asked about is the one whose answer is expected to rule out the most candidates: over the options offered,
the sum of p(1 - p), p being the share of the candidates holding the facet that have that value (Gini impurity),
times the share of candidates that hold the facet at all. Nothing is asked when the shopper has said it, when the
candidates are few or all alike, or when they are shown as the nearest (nothing matched). Facets are the catalog
lexicon's, so any catalog gets questions in its own values.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from recchat.models import ClarifyingQuestion, Item, QuestionOption, ShoppingState
from recchat.understanding.lexicon import CatalogLexicon, Facet, is_cjk_text

MIN_CANDIDATES = 4
"""Fewer candidates than this are not worth a question."""
MIN_HOLDING = 0.6
"""A facet is asked about only when at least this share of the candidates holds a value of it."""
MAX_OPTIONS = 8
"""Options offered: the values most held among the candidates (with the default 8 candidates, every value found:
seed 0 of the harness answered more questions, and found targets sooner, with 8 than with 5)."""
MAX_OPTION_WORDS = 2
"""A value is offered as an option only when it is this short ('navy', 'very warm'); a facet of long values
('nubuck leather with a waterproof membrane') is not asked about: nobody answers a question with that."""
CATEGORY = "category"

QUESTIONS = {
    "en": {"audience": "Who is it for?", "colour": "Any colour in mind?", "category": "Which of these do you mean?",
           "value": "Any {label} in mind?"},
    "zh": {"audience": "是给谁买的？", "colour": "想要什么颜色？", "category": "想看哪一类？",
           "value": "{label}有偏好吗？"},
}
AUDIENCE_ANSWERS = {
    "en": {"women": "for women", "men": "for men", "kids": "for kids"},
    "zh": {"women": "女款", "men": "男款", "kids": "儿童的"},
}


def clarifying_question(
    candidates: Sequence[Item], state: ShoppingState, lexicon: CatalogLexicon, language: str,
    asked_before: str | None = None,
) -> ClarifyingQuestion | None:
    """The question worth asking about these candidates, or None. `state`: what the shopper has said (a facet in it
    is not asked about); `language`: the request's ('zh' asks in Chinese); `asked_before`: the facet the previous
    turn asked about, not asked again straight away."""
    if len(candidates) < MIN_CANDIDATES:
        return None
    language = "zh" if language == "zh" else "en"
    scored = [
        (score, name, held, holding) for name, held, holding in _splits(candidates, state, lexicon)
        if name != asked_before and (score := _score(held, holding, len(candidates))) > 0
    ]
    if not scored:
        return None
    _, name, held, holding = max(scored, key=lambda split: split[0])  # the first of equals: category, then facets
    facet = lexicon.facets.get(name)
    kind = CATEGORY if facet is None else facet.kind
    options = []
    for value, count in held.most_common(MAX_OPTIONS):
        if count == holding:  # a genre every candidate has: choosing it would rule nothing out
            continue
        label, message = _wording(value, facet, language)
        options.append(QuestionOption(value=value, label=label, message=message, count=count))
    text = QUESTIONS[language][kind].format(label=facet.label if facet else "")
    return ClarifyingQuestion(facet=name, text=text, options=options)


def _splits(candidates: Sequence[Item], state: ShoppingState, lexicon: CatalogLexicon):
    """(facet, {value: candidates holding it}, candidates holding any) for each facet the shopper has not said that
    is worth a question: the category, who it is for (as groups; a unisex item fits either, so it tells nothing)
    and the colour; in a catalog with neither an audience nor a colour (films), its value facets (genres). Where a
    catalog has them, a question on season or warmth was found to cost more turns than it saved: a shopper who
    answers it says the kind of product later."""
    if state.category is None:
        yield CATEGORY, Counter(item.category for item in candidates), len(candidates)
    askable = ("audience", "colour") if lexicon.audience or lexicon.colour else ("value",)
    for facet in lexicon.facets.values():
        if facet.kind not in askable or facet.name in state.wants or facet.name in state.waived:
            continue
        held: Counter[str] = Counter()
        holding = 0
        for item in candidates:
            values = _values(item, facet, lexicon)
            held.update(set(values))
            holding += bool(values)
        if all(len(value.split()) <= MAX_OPTION_WORDS and "," not in value for value in held):
            yield facet.name, held, holding


def _values(item: Item, facet: Facet, lexicon: CatalogLexicon) -> list[str]:
    values = lexicon.item_values(item, facet.name)
    if facet.kind != "audience":
        return values
    groups = {lexicon.audience_group(value) for value in values}
    return [] if "unisex" in groups else [group for group in ("women", "men", "kids") if group in groups]


def _score(held: Counter[str], holding: int, candidates: int) -> float:
    """The share of the candidates an answer is expected to rule out (see the module); 0 when fewer than two values
    are found or too few candidates hold the facet."""
    if len(held) < 2 or holding < MIN_HOLDING * candidates:
        return 0.0
    offered = [count / holding for _, count in held.most_common(MAX_OPTIONS)]
    return holding / candidates * sum(share * (1 - share) for share in offered)


def _wording(value: str, facet: Facet | None, language: str) -> tuple[str, str]:
    """(the button's label, the message that answers with it): what the rules read back as that value."""
    if facet is not None and facet.kind == "audience":
        said = AUDIENCE_ANSWERS[language][value]
        return (said if language == "zh" else value.capitalize()), said
    if facet is not None and facet.kind == "colour":  # "要navy的" is no colour the rules can read: "in navy"
        return value, (f"要{value}的" if language == "zh" and is_cjk_text(value) else f"in {value}")
    return value, value
