"""One turn between its steps: what was asked and retrieved, the LLM's picks as they are read and checked, and the
final list with where each part of it came from."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing, closing
from dataclasses import dataclass, field
from functools import cached_property

from recchat.config import Settings
from recchat.errors import BackendUnavailableError, LLMBusyError, LLMOffError
from recchat.facts import FactOptions, fact_reason, ordered_phrase, reason_from
from recchat.grounding import (
    Pick,
    PickReader,
    alias,
    candidate_lines,
    candidate_options,
    choice_schema,
    option_lines,
    reason_is_grounded,
    reply_schema,
)
from recchat.llm import Message
from recchat.llm.guard import GuardedBackend
from recchat.models import (
    ClarifyingQuestion,
    Item,
    ParsedRequest,
    RecommendationList,
    RecommendedItem,
    ReplyMetadata,
    StreamEvent,
)
from recchat.prompts import Prompt
from recchat.retrieval import Candidate
from recchat.session import Session
from recchat.understanding.lexicon import in_stock


@dataclass
class LLMTask:
    """What the LLM is asked in a turn: the messages, the schema its answer must follow, and, when it chooses
    reasons, each candidate's fact phrases by alias."""

    messages: list[Message]
    schema: dict
    options: dict[str, FactOptions]
    in_ranking_order: bool = False
    """The answer explains the ranking's items in its order, so each can be shown as soon as it is explained."""


def llm_task(
    prompt: Prompt, candidates: list[Candidate], request: ParsedRequest, wish: str, settings: Settings
) -> LLMTask:
    retrieval, llm_ranks = settings.retrieval, settings.chat.ranking == "llm"
    if prompt.job == "choose":
        if not llm_ranks:  # the ranking already chose the items: show only those, and the answer explains them
            candidates = candidates[: retrieval.max_items]
        options = candidate_options(candidates, request, wish)
        return LLMTask(
            prompt.messages(candidates=option_lines(candidates, options), request=wish),
            choice_schema(options, retrieval.min_items, retrieval.max_items, fixed_order=not llm_ranks),
            {alias(position): option for position, option in enumerate(options)},
            in_ranking_order=not llm_ranks,
        )
    aliases = [alias(position) for position in range(len(candidates))]
    return LLMTask(
        prompt.messages(candidates=candidate_lines(candidates), request=wish),
        reply_schema(aliases, retrieval.min_items, retrieval.max_items, prompt.reason_max_chars),
        {},
    )


@dataclass
class Turn:
    message: str
    session: Session
    request: ParsedRequest
    """What this turn searched for: the message as understood, with the turn's filters and hidden items."""
    parsed: ParsedRequest
    """The message as understood, without this turn's filters: what the next follow-up refines."""
    candidates: list[Candidate]
    because: dict[str, str]
    unmet: dict[str, list[str]]
    """Candidates shown as the nearest, since none meets every hard facet: what each misses."""
    hidden: set[str]
    intro: str
    started: float
    llm_ranks: bool
    min_items: int
    max_items: int
    task: LLMTask
    timings: dict[str, float]
    question: ClarifyingQuestion | None = None
    """Asked with the items when they split on a facet not stated yet (`understanding/clarify.py`)."""
    llm_started: float = field(default_factory=time.perf_counter)
    chosen: list[RecommendedItem] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    repeated: list[str] = field(default_factory=list)
    picked: int = 0
    """Candidates the LLM named validly (before any top-up)."""
    shown: int = 0
    """Items already streamed in ranking order (with chat.ranking 'retrieval')."""
    fallback_reason: str | None = None
    reader: PickReader = field(default_factory=PickReader)

    @cached_property
    def by_alias(self) -> dict[str, Candidate]:
        return {alias(position): candidate for position, candidate in enumerate(self.candidates)}

    @property
    def full(self) -> bool:
        return len(self.chosen) >= self.max_items

    def explain(self, llm: GuardedBackend, max_tokens: int) -> Iterator[StreamEvent]:
        """Ask the LLM, and yield each item as its pick is read and checked. An LLM that is down or too slow leaves
        the turn to retrieval, with the reason noted."""
        if not self.candidates:
            return
        try:
            with closing(llm.stream(self.task.messages, self.task.schema, max_tokens)) as chunks:
                for chunk in chunks:
                    yield from self.read(chunk)
                    if self.full:
                        break
        except BackendUnavailableError as error:
            self.fallback_reason = why_no_model(error)

    async def aexplain(self, llm: GuardedBackend, max_tokens: int) -> AsyncIterator[StreamEvent]:
        """`explain` for asyncio: the answer is closed at once when the turn is, so an abandoned generation stops."""
        if not self.candidates:
            return
        try:
            async with aclosing(llm.astream(self.task.messages, self.task.schema, max_tokens)) as chunks:
                async for chunk in chunks:
                    for event in self.read(chunk):
                        yield event
                    if self.full:
                        break
        except BackendUnavailableError as error:
            self.fallback_reason = why_no_model(error)

    def read(self, chunk: str) -> list[StreamEvent]:
        """Take a piece of the LLM's answer; every pick it completes is checked against the candidates and its
        reason against the item's facts. Returns the items to show now (when the LLM decides the ranking)."""
        self.timings.setdefault("first_token_ms", elapsed_ms(self.llm_started))
        events = []
        for pick in self.reader.feed(chunk):
            if self.full:
                break
            candidate = self.by_alias.get(pick.alias) if isinstance(pick, Pick) else None
            if candidate is None:
                self.dropped.append(pick.alias if isinstance(pick, Pick) else str(pick)[:80])
                continue
            if any(item.id == candidate.item.id for item in self.chosen):
                self.repeated.append(pick.alias)
                continue
            self.chosen.append(self._explained(pick, candidate))
            self.picked += 1
            if self.llm_ranks:
                events.append(StreamEvent(kind="item", item=self.personal(self.chosen[-1])))
        if self.task.in_ranking_order:
            explained = {item.id: item for item in self.chosen}
            while self.shown < self.max_items and self.shown < len(self.candidates):
                item = explained.get(self.candidates[self.shown].item.id)
                if item is None:
                    break
                events.append(StreamEvent(kind="item", item=self.personal(item)))
                self.shown += 1
        return events

    def _explained(self, pick: Pick, candidate: Candidate) -> RecommendedItem:
        """The pick with the model's reason where it holds: one of the reasons its grammar allowed (a server may
        ignore the grammar), or written text that passes the grounding check; else a reason built from facts."""
        if pick.facts:
            option = self.task.options.get(pick.alias)
            if option is not None and list(pick.facts) in option.choices:
                return recommended(candidate, reason_from(list(pick.facts)), "llm-facts")
        elif pick.reason is not None:
            others = [other.item for other in self.candidates if other is not candidate]
            if reason_is_grounded(pick.reason, candidate.item, others, self.request.query, list(self.by_alias)):
                return recommended(candidate, pick.reason.strip(), "llm")
        return fact_item(candidate, self.request)

    def personal(self, item: RecommendedItem) -> RecommendedItem:
        """The item with why feedback moved it up, if it did, and what it misses of the hard facets, if anything (it is
        shown as the nearest, when nothing has them all)."""
        update: dict = {"because": self.because[item.id]} if item.id in self.because else {}
        if item.id in self.unmet:
            update["unmet"] = self.unmet[item.id]
        return item.model_copy(update=update) if update else item

    def finish(self) -> Iterator[StreamEvent]:
        """The final list, its items yielded as they are settled: the LLM's picks topped up in ranking order (when
        it ranks), or the ranking's items with the LLM's reasons where they held."""
        if not self.candidates:
            return
        self.timings["llm_ms"] = elapsed_ms(self.llm_started)
        if self.llm_ranks:  # the LLM's picks stand (already streamed); a short list is topped up in ranking order
            usable = self.chosen and not self.fallback_reason
            want = min(self.min_items if usable else self.max_items, len(self.candidates))
            for candidate in self.candidates:
                if len(self.chosen) >= want:
                    break
                if all(candidate.item.id != item.id for item in self.chosen):
                    self.chosen.append(fact_item(candidate, self.request))
                    yield StreamEvent(kind="item", item=self.personal(self.chosen[-1]))
            self.chosen = [self.personal(item) for item in self.chosen]
        else:
            explained = {item.id: item for item in self.chosen}
            self.chosen = [
                self.personal(explained.get(c.item.id) or fact_item(c, self.request))
                for c in self.candidates[: self.max_items]
            ]
            for item in self.chosen[self.shown :]:  # those not streamed already
                yield StreamEvent(kind="item", item=item)

    def reply(self, backend: str, prompt: str) -> RecommendationList:
        """The reply, saying what of it came from the model: `source` is 'llm' only when the model chose the items
        or a shown reason."""
        self.timings["total_ms"] = elapsed_ms(self.started)
        sources = Counter(item.reason_source for item in self.chosen)
        from_model = sources["llm"] + sources["llm-facts"] > 0 or (self.llm_ranks and self.picked > 0)
        if self.candidates and not from_model and not self.fallback_reason:
            self.fallback_reason = (
                "none of the LLM's reasons held against the items' facts" if self.picked
                else "the LLM's answer had no usable pick"
            )
        return RecommendationList(
            message=self.intro,
            items=self.chosen,
            question=self.question,
            metadata=ReplyMetadata(
                session_id=self.session.id,
                user_id=self.session.user_id,
                turn=self.session.turns + 1,
                backend=backend,
                prompt=prompt,
                source="llm" if from_model else "retrieval",
                reason_sources={kind: sources[kind] for kind in ("llm", "llm-facts", "facts")},
                fallback_reason=self.fallback_reason,
                dropped_ids=self.dropped,
                repeated_ids=self.repeated,
                candidates=len(self.candidates),
                hidden_ids=sorted(self.hidden),
                request=self.request,
                timings_ms=self.timings,
            ),
        )


def why_no_model(error: BackendUnavailableError) -> str:
    """The reply's `fallback_reason` when the model gave no answer: a model that is off or busy is not said to have
    failed."""
    return str(error) if isinstance(error, LLMOffError | LLMBusyError) else f"LLM backend unavailable: {error}"


def fact_item(candidate: Candidate, request: ParsedRequest) -> RecommendedItem:
    item = candidate.item
    return recommended(candidate, fact_reason(item, request.query, ordered_phrase(item, request)), "facts")


def recommended(candidate: Candidate, reason: str, source: str) -> RecommendedItem:
    item: Item = candidate.item
    return RecommendedItem(
        id=item.id, title=item.title, reason=reason, score=round(candidate.score, 4), category=item.category,
        price=item.price, currency=item.currency, reason_source=source, in_stock=in_stock(item),
    )


def elapsed_ms(since: float) -> float:
    """Milliseconds since a `time.perf_counter()` reading, as timings record them."""
    return round((time.perf_counter() - since) * 1000, 1)
