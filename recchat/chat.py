"""The chat engine: sessions, feedback, and each turn from message to a grounded `RecommendationList`.

A turn: check the message -> understand it -> catch up with the feedback log -> retrieve a pool of
candidates (without the user's disliked and bought items) -> re-rank it with feedback -> the LLM
picks and explains (streamed) -> every pick validated against the candidates -> short lists topped
up from retrieval -> the shown items logged as impressions. If the LLM is down or its answer
unusable, the reply comes from retrieval with fact-built reasons and says so in `metadata.source`.

The same steps serve the blocking API (`chat`, `stream`) and the asyncio one (`achat`, `astream`): `_begin` (all
before the LLM), `Turn.read` (each piece of the LLM's answer) and `_finish` (all after it).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, closing
from dataclasses import dataclass, field
from functools import cached_property

from recchat.catalog import Catalog, load_configured_catalog
from recchat.config import Settings
from recchat.embeddings import Encoder, cached_encoder
from recchat.errors import BackendUnavailableError, FeedbackError, FeedbackStoreError, InvalidMessageError, SessionError
from recchat.feedback import FeedbackEvent, FeedbackKind, FeedbackStore, SQLiteFeedbackStore, item_event
from recchat.grounding import (
    Pick, PickReader, alias, candidate_lines, fact_reason, reason_is_grounded, reply_schema,
)
from recchat.llm import LLMBackend, Message, make_backend
from recchat.models import (
    Constraints,
    Item,
    ParsedRequest,
    RecommendationList,
    RecommendedItem,
    ReplyMetadata,
    StreamEvent,
    format_price,
)
from recchat.prompts import Prompt, load_prompt
from recchat.rerank import FeedbackModel, Reranker
from recchat.retrieval import Candidate, Retriever, VectorIndex, open_store
from recchat.understanding import RequestParser

logger = logging.getLogger(__name__)

@dataclass
class Session:
    id: str
    user_id: str
    turns: list[RecommendationList] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def check_user(self, user_id: str | None) -> None:
        if user_id is not None and user_id != self.user_id:
            raise SessionError(f"session {self.id!r} belongs to user {self.user_id!r}, not {user_id!r}")

    @property
    def last_request(self) -> ParsedRequest | None:
        return self.turns[-1].metadata.request if self.turns else None


@dataclass
class Turn:
    """One turn between its steps: what was asked and retrieved, and the LLM's picks as they are read."""

    message: str
    session: Session
    request: ParsedRequest
    candidates: list[Candidate]
    because: dict[str, str]
    hidden: set[str]
    intro: str
    started: float
    llm_ranks: bool
    max_items: int
    messages: list[Message]
    schema: dict
    max_tokens: int
    llm_started: float
    timings: dict[str, float]
    chosen: list[RecommendedItem] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    repeated: list[str] = field(default_factory=list)
    fallback_reason: str | None = None
    reader: PickReader = field(default_factory=PickReader)

    @cached_property
    def by_alias(self) -> dict[str, Candidate]:
        return {alias(position): candidate for position, candidate in enumerate(self.candidates)}

    @property
    def full(self) -> bool:
        return len(self.chosen) >= self.max_items

    def read(self, chunk: str) -> list[StreamEvent]:
        """Take a piece of the LLM's answer; every pick it completes is checked against the candidates and its
        reason against the item's facts. Returns the items to show now (when the LLM decides the ranking)."""
        self.timings.setdefault("first_token_ms", _ms(self.llm_started))
        events = []
        by_alias = self.by_alias
        for pick in self.reader.feed(chunk):
            if self.full:
                break
            candidate = by_alias.get(pick.alias) if isinstance(pick, Pick) else None
            if candidate is None:
                self.dropped.append(pick.alias if isinstance(pick, Pick) else str(pick)[:80])
                continue
            if any(item.id == candidate.item.id for item in self.chosen):
                self.repeated.append(pick.alias)
                continue
            others = [other.item for other in self.candidates if other is not candidate]
            if reason_is_grounded(pick.reason, candidate.item, others, self.request.query, list(by_alias)):
                item = _recommended(candidate, pick.reason.strip(), "llm")
            else:
                item = _fact_item(candidate, self.request)
            self.chosen.append(item)
            if self.llm_ranks:
                events.append(StreamEvent(kind="item", item=self.personal(item)))
        return events

    def personal(self, item: RecommendedItem) -> RecommendedItem:
        """The item with why feedback moved it up, if it did."""
        because = self.because.get(item.id)
        return item.model_copy(update={"because": because}) if because else item


@asynccontextmanager
async def _acquired(lock: threading.Lock) -> AsyncIterator[None]:
    """Hold a thread lock without blocking the event loop (turns of one session run one at a time)."""
    while not lock.acquire(blocking=False):
        await asyncio.sleep(0.01)
    try:
        yield
    finally:
        lock.release()


class RecChat:
    """Conversational recommendations over one catalog.

    >>> bot = RecChat.from_settings()
    >>> reply = bot.chat("I want a winter coat")
    >>> [item.title for item in reply.items]
    """

    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        retriever: Retriever,
        backend: LLMBackend | None = None,
        prompt: Prompt | None = None,
        feedback_store: FeedbackStore | None = None,
    ):
        """`feedback_store`: where events are logged; None answers from retrieval alone and takes no feedback."""
        self.settings = settings
        self.catalog = catalog
        self.retriever = retriever
        self.feedback_store = feedback_store
        self.feedback_model: FeedbackModel | None = None
        self.reranker: Reranker | None = None
        if feedback_store is not None:
            vectors = retriever.index.vectors_in_order([item.id for item in catalog])
            self.feedback_model = FeedbackModel(catalog, vectors, settings.rerank)
            self.feedback_model.rebuild(feedback_store)
            self.reranker = Reranker(self.feedback_model, settings.rerank, settings.retrieval.min_score)
        self.parser = RequestParser(catalog.categories(), ((item.id, item.title) for item in catalog))
        self.prompt = prompt or load_prompt(settings.chat.prompt, settings.chat.prompt_version)
        self._currency = next((item.currency for item in catalog if item.price is not None), None)
        self._backend = backend
        self._backend_lock = threading.Lock()
        self._backend_retry_at = 0.0
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._sessions_lock = threading.Lock()

    @classmethod
    def from_settings(
        cls, settings: Settings | None = None, *, encoder: Encoder | None = None, backend: LLMBackend | None = None,
        catalog: Catalog | None = None, progress: bool = False, feedback_store: FeedbackStore | None = None,
    ) -> RecChat:
        """Load the catalog (`settings.catalog`, unless one is given), bring its index up to date (only changed
        items are embedded), open the feedback store (`settings.feedback`, unless one is given) and catch up with
        it, and get ready. The LLM loads on the first turn that needs it."""
        settings = settings or Settings()
        catalog = catalog or load_configured_catalog(settings)
        index = VectorIndex(open_store(settings.store_dir), catalog.name, cached_encoder(settings, encoder))
        index.sync(catalog, progress=progress)
        if feedback_store is None and settings.feedback.enabled:
            feedback_store = SQLiteFeedbackStore.from_settings(settings)
        return cls(
            settings, catalog, Retriever(catalog, index, settings.retrieval), backend=backend, feedback_store=feedback_store
        )

    @property
    def backend(self) -> LLMBackend:
        with self._backend_lock:
            if self._backend is None:
                self._backend = make_backend(self.settings)
            return self._backend

    # --- sessions -------------------------------------------------------------------------

    def new_session(self, user_id: str | None = None) -> str:
        """A new session's id; `user_id` ties it to a user whose feedback lasts beyond the session."""
        return self.session(user_id=user_id).id

    def session(self, session_id: str | None = None, user_id: str | None = None) -> Session:
        """The session with this id, created if new; the least recently used is dropped past the limit.
        A session without a user id is anonymous: its feedback is kept under the session id."""
        with self._sessions_lock:
            session_id = session_id or uuid.uuid4().hex
            session = self._sessions.get(session_id)
            if session is None:
                session = self._sessions[session_id] = Session(session_id, user_id or session_id)
                while len(self._sessions) > self.settings.chat.max_sessions:
                    self._sessions.popitem(last=False)
            else:
                session.check_user(user_id)
            self._sessions.move_to_end(session_id)
            return session

    # --- feedback -------------------------------------------------------------------------

    def feedback(
        self, kind: FeedbackKind | str, item_id: str, *, session_id: str | None = None, user_id: str | None = None,
        turn: int | None = None, key: str | None = None, time: float | None = None,
    ) -> bool:
        """Record what a user did with an item ('click', 'like', 'dislike', 'purchase'/'accept'); the next
        ranking for this user and session reflects it. Returns False when `key` was already recorded (a retry).

        The user is `user_id`, else the session's user. A session this process does not know (e.g. from before
        a restart) is accepted: the event counts for the user from now on."""
        if self.feedback_store is None:
            raise FeedbackError("feedback is off (feedback.enabled = false); nothing was recorded")
        with self._sessions_lock:
            session = self._sessions.get(session_id) if session_id else None
        if session is not None:
            session.check_user(user_id)
            if turn is not None and turn > len(session.turns):
                raise FeedbackError(f"session {session_id!r} has {len(session.turns)} turn(s); there is no turn {turn}")
        event = item_event(
            self.catalog, kind=kind, item_id=item_id, user_id=user_id or (session.user_id if session else session_id),
            session_id=session_id, turn=turn, key=key, time=time,
        )
        return self.record([event])[0]

    def record(self, events: list[FeedbackEvent]) -> list[bool]:
        """Store events (already validated) and apply them; per event, False for a repeated key."""
        assert self.feedback_store is not None and self.feedback_model is not None
        stored = self.feedback_store.add(events)
        self.feedback_model.sync(self.feedback_store)
        return stored

    def forget_user(self, user_id: str) -> int:
        """Delete everything kept about a user: their events and messages in the store, their profile and their
        sessions in memory. Returns the number of stored rows deleted."""
        with self._sessions_lock:
            for session_id in [s.id for s in self._sessions.values() if s.user_id == user_id]:
                del self._sessions[session_id]
        if self.feedback_store is None:
            return 0
        deleted = self.feedback_store.forget_user(user_id)
        assert self.feedback_model is not None
        self.feedback_model.sync(self.feedback_store)
        return deleted

    def add_items(self, items: Iterable[Item]) -> None:
        """Add items to the catalog: indexed and recommendable from the next turn."""
        items = self.catalog.add(items)
        self.retriever.index.upsert(items)
        self.retriever.add_items(items)
        self.parser = RequestParser(self.catalog.categories(), ((item.id, item.title) for item in self.catalog))
        if self.feedback_model is not None:
            self.feedback_model.add_items(items, self.retriever.index.vectors_in_order([item.id for item in items]))

    # --- turns ----------------------------------------------------------------------------

    def chat(
        self, message: str, session_id: str | None = None, *, user_id: str | None = None,
        exclude_ids: Iterable[str] = (), include_hidden: bool = False, filters: Constraints | None = None,
    ) -> RecommendationList:
        """Answer one message; the reply is remembered in the session for follow-ups, and its items are logged as
        impressions. `user_id` ties a new session to a user. `exclude_ids` are items never to offer in this turn
        and its follow-ups (e.g. ones the user already has). Items the user disliked or bought are left out
        unless `include_hidden`. `filters` (a category, price limits: e.g. a UI's controls) apply on top of what the
        message says; of two price limits the tighter one holds."""
        for event in self.stream(
            message, session_id, user_id=user_id, exclude_ids=exclude_ids, include_hidden=include_hidden, filters=filters
        ):
            if event.kind == "done":
                assert event.reply is not None
                return event.reply
        raise AssertionError("stream ended without a reply")  # stream always ends with "done"

    async def achat(
        self, message: str, session_id: str | None = None, *, user_id: str | None = None,
        exclude_ids: Iterable[str] = (), include_hidden: bool = False, filters: Constraints | None = None,
    ) -> RecommendationList:
        """`chat` for asyncio servers: many turns at once, none blocking the event loop (see `astream`)."""
        async for event in self.astream(
            message, session_id, user_id=user_id, exclude_ids=exclude_ids, include_hidden=include_hidden, filters=filters
        ):
            if event.kind == "done":
                assert event.reply is not None
                return event.reply
        raise AssertionError("stream ended without a reply")

    def stream(
        self, message: str, session_id: str | None = None, *, user_id: str | None = None,
        exclude_ids: Iterable[str] = (), include_hidden: bool = False, filters: Constraints | None = None,
    ) -> Iterator[StreamEvent]:
        """Answer one message step by step: the message, then each item as soon as it is ready, then the reply."""
        self._check(message)
        session = self.session(session_id, user_id)
        with session.lock:
            turn = self._begin(message, session, set(exclude_ids), include_hidden, filters)
            yield StreamEvent(kind="message", message=turn.intro)
            if turn.candidates:
                deadline = time.monotonic() + self.settings.llm.timeout_s
                try:
                    self._check_backend()
                    stream = self.backend.stream(turn.messages, schema=turn.schema, max_tokens=turn.max_tokens)
                    with closing(stream) as chunks:  # closed at once, so an abandoned generation stops
                        for chunk in chunks:
                            yield from turn.read(chunk)
                            if turn.full:
                                break
                            if time.monotonic() > deadline:
                                raise self._too_slow()
                    self._backend_retry_at = 0.0
                except BackendUnavailableError as error:
                    self._backend_failed(turn, error)
            yield from self._finish(turn)

    async def astream(
        self, message: str, session_id: str | None = None, *, user_id: str | None = None,
        exclude_ids: Iterable[str] = (), include_hidden: bool = False, filters: Constraints | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """`stream` for asyncio servers. Retrieval, re-ranking and logging run in worker threads and the LLM is
        awaited (`backend.astream`), so the event loop stays free and concurrent turns reach an LLM server
        together, where its batching serves them at once. Past `llm.timeout_s` the turn is answered from
        retrieval."""
        self._check(message)
        session = self.session(session_id, user_id)
        async with _acquired(session.lock):
            turn = await asyncio.to_thread(self._begin, message, session, set(exclude_ids), include_hidden, filters)
            yield StreamEvent(kind="message", message=turn.intro)
            if turn.candidates:
                deadline = time.monotonic() + self.settings.llm.timeout_s
                try:
                    self._check_backend()
                    backend = await asyncio.to_thread(lambda: self.backend)  # the first turn loads the model
                    chunks = backend.astream(turn.messages, schema=turn.schema, max_tokens=turn.max_tokens)
                    try:
                        while not turn.full:
                            try:
                                chunk = await asyncio.wait_for(anext(chunks), deadline - time.monotonic())
                            except StopAsyncIteration:
                                break
                            except TimeoutError:
                                raise self._too_slow() from None
                            for event in turn.read(chunk):
                                yield event
                    finally:
                        await chunks.aclose()  # ends the generation at once if the answer was abandoned
                    self._backend_retry_at = 0.0
                except BackendUnavailableError as error:
                    self._backend_failed(turn, error)
            for event in await asyncio.to_thread(lambda: list(self._finish(turn))):
                yield event

    def _check(self, message: str) -> None:
        if not isinstance(message, str) or not message.strip():
            raise InvalidMessageError("the message is empty; say what you are looking for, e.g. 'a warm winter coat'")
        limit = self.settings.chat.max_message_chars
        if len(message) > limit:
            raise InvalidMessageError(
                f"the message has {len(message):,} characters; the limit is {limit:,} "
                f"(RECCHAT_CHAT__MAX_MESSAGE_CHARS). Shorten it to what you are looking for."
            )

    def _begin(
        self, message: str, session: Session, exclude_ids: set[str], include_hidden: bool, filters: Constraints | None
    ) -> Turn:
        """Everything before the LLM: understand the message, then retrieve and re-rank the candidates."""
        started = time.perf_counter()
        if self.feedback_model is not None and self.feedback_store is not None:
            try:  # first, so what other processes logged counts for "more like that", hiding and ranking alike
                self.feedback_model.sync(self.feedback_store)
            except FeedbackStoreError as error:  # answer from what is known; the reply matters more
                logger.warning("ranking without the newest feedback: %s", error)
        shown = [self.catalog[i.id] for i in session.turns[-1].items if i.id in self.catalog] if session.turns else []
        liked = self.feedback_model.session_likes(session.id) if self.feedback_model is not None else []
        request = self.parser.parse(message, session.last_request, shown, liked)
        if filters is not None:
            _apply_filters(request.constraints, filters)
        hidden: set[str] = set()
        if self.feedback_model is not None and not include_hidden:
            hidden = self.feedback_model.hidden(session.user_id) - exclude_ids
        if exclude_ids or hidden:
            constraints = request.constraints
            constraints.excluded_ids = sorted(exclude_ids.union(hidden, constraints.excluded_ids))
        candidates, because = self.candidates(request, session.user_id, session.id)
        retrieval_ms = _ms(started)
        wish = self._wish(request)
        retrieval = self.settings.retrieval
        aliases = [alias(position) for position in range(len(candidates))]
        return Turn(
            message=message, session=session, request=request, candidates=candidates, because=because,
            hidden=hidden, intro=self._intro(request, wish, candidates), started=started,
            llm_ranks=self.settings.chat.ranking == "llm", max_items=retrieval.max_items,
            messages=self.prompt.messages(candidates=candidate_lines(candidates), request=wish),
            schema=reply_schema(aliases, retrieval.min_items, retrieval.max_items, self.prompt.reason_max_chars),
            max_tokens=self.settings.llm.max_new_tokens, timings={"retrieval_ms": retrieval_ms},
            llm_started=time.perf_counter(),
        )

    def _check_backend(self) -> None:
        if self.settings.llm.backend == "none" and self._backend is None:
            raise BackendUnavailableError("no LLM is configured (llm.backend = 'none')")
        if time.monotonic() < self._backend_retry_at:
            raise BackendUnavailableError(f"it failed recently; retrying after {self.settings.llm.retry_after_s:g} s")

    def _too_slow(self) -> BackendUnavailableError:
        return BackendUnavailableError(f"no complete answer within {self.settings.llm.timeout_s:g} s (llm.timeout_s)")

    def _backend_failed(self, turn: Turn, error: BackendUnavailableError) -> None:
        """Picks made before a failure mid-answer stay (their reasons were checked); the LLM rests a while."""
        turn.fallback_reason = f"LLM backend unavailable: {error}"
        now = time.monotonic()
        if now >= self._backend_retry_at:  # a turn refused during the rest does not prolong it
            self._backend_retry_at = now + self.settings.llm.retry_after_s

    def _finish(self, turn: Turn) -> Iterator[StreamEvent]:
        """Everything after the LLM: the final list (topped up from the ranking), the reply, the log."""
        request, candidates, chosen = turn.request, turn.candidates, turn.chosen
        source = "llm"
        if candidates:
            turn.timings["llm_ms"] = _ms(turn.llm_started)
            if not chosen or turn.fallback_reason:
                source = "retrieval"
                turn.fallback_reason = turn.fallback_reason or "the LLM's answer had no usable pick"
            retrieval = self.settings.retrieval
            if turn.llm_ranks:  # the LLM's picks stand (already streamed); a short list is topped up in ranking order
                want = min(retrieval.min_items if source == "llm" else retrieval.max_items, len(candidates))
                for candidate in candidates:
                    if len(chosen) >= want:
                        break
                    if all(candidate.item.id != item.id for item in chosen):
                        chosen.append(_fact_item(candidate, request))
                        yield StreamEvent(kind="item", item=turn.personal(chosen[-1]))
                chosen = [turn.personal(item) for item in chosen]
            else:  # the ranking decides which items and their order; the LLM's picks lend their reasons
                explained = {item.id: item for item in chosen}
                chosen = [
                    turn.personal(explained.get(c.item.id) or _fact_item(c, request))
                    for c in candidates[: retrieval.max_items]
                ]
                for item in chosen:
                    yield StreamEvent(kind="item", item=item)

        turn.timings["total_ms"] = _ms(turn.started)
        session = turn.session
        reply = RecommendationList(
            message=turn.intro,
            items=chosen,
            metadata=ReplyMetadata(
                session_id=session.id,
                user_id=session.user_id,
                turn=len(session.turns) + 1,
                backend=self._backend.name if self._backend is not None else self.settings.llm.backend,
                prompt=self.prompt.label,
                source=source,
                fallback_reason=turn.fallback_reason,
                dropped_ids=turn.dropped,
                repeated_ids=turn.repeated,
                candidates=len(candidates),
                hidden_ids=sorted(turn.hidden),
                request=request,
                timings_ms=turn.timings,
            ),
        )
        session.turns.append(reply)
        self._log_turn(turn.message, reply)
        yield StreamEvent(kind="done", reply=reply)

    def candidates(
        self, request: ParsedRequest, user_id: str | None = None, session_id: str | None = None, k: int | None = None
    ) -> tuple[list[Candidate], dict[str, str]]:
        """The k (default `retrieval.candidates`) best items for a parsed request as this user's and session's
        feedback ranks them: what the LLM chooses from. Also, for items feedback moved up, why."""
        k = k or self.settings.retrieval.candidates
        if self.reranker is None:
            return self.retriever.search(request.query, request.constraints, k=k, similar_to=request.similar_to), {}
        vector = self.retriever.query_vector(request.query, request.similar_to)
        pool = self.retriever.search(
            request.query, request.constraints, k=max(k, self.settings.rerank.pool), similar_to=request.similar_to,
            vector=vector,
        )
        ranked = self.reranker.rank(
            pool, vector, request.constraints, k, user_id=user_id, session_id=session_id, references=request.similar_to
        )
        return [r.candidate for r in ranked], {r.candidate.item.id: r.because for r in ranked if r.because}

    def _log_turn(self, message: str, reply: RecommendationList) -> None:
        """Impressions for every shown item (and the message text, if configured)."""
        if self.feedback_store is None:
            return
        meta = reply.metadata
        try:
            self.record([
                FeedbackEvent(
                    kind="impression", user_id=meta.user_id, item_id=item.id, session_id=meta.session_id,
                    turn=meta.turn, rank=rank, key=f"impression:{meta.session_id}:{meta.turn}:{item.id}",
                )
                for rank, item in enumerate(reply.items, start=1)
            ])
            if self.settings.feedback.store_messages:
                self.feedback_store.add_message(meta.user_id, meta.session_id, meta.turn, message)
        except FeedbackStoreError as error:  # the user still gets the reply; the log misses this turn
            logger.warning("turn %s of session %s not logged: %s", meta.turn, meta.session_id, error)

    def _wish(self, request: ParsedRequest) -> str:
        """The request in words, as the LLM and the reply's message state it."""
        liked = [self.catalog[i].title for i in request.similar_to if i in self.catalog]
        if not liked:
            return request.query
        return f"{request.query or 'something'} like {', '.join(liked)}"

    def _intro(self, request: ParsedRequest, wish: str, candidates: list[Candidate]) -> str:
        constraints = request.constraints
        wanted = [wish]
        if constraints.category:
            wanted.append(f"in {constraints.category}")
        if constraints.min_price is not None:
            wanted.append(f"from {format_price(constraints.min_price, self._currency)}")
        if constraints.max_price is not None:
            wanted.append(f"up to {format_price(constraints.max_price, self._currency)}")
        if constraints.excluded_terms:
            wanted.append("without " + ", ".join(constraints.excluded_terms))
        described = " ".join(wanted)
        chinese = request.language == "zh"  # answer in the shopper's language; item facts stay as the catalog has them
        notices = []
        if request.language != "en" and not self.retriever.index.encoder.multilingual:
            notices.append(
                "注意：搜索模型只懂英文，我按能翻译的词做了匹配；用英文提问效果更好。" if chinese else
                "Note: the search model is English-only, so I matched the words I could translate; "
                "for best results ask in English."
            )
        notices.extend(note[0].upper() + note[1:] + "." for note in request.notes if not note.startswith("Chinese"))
        if candidates:
            text = f"为您找到这些（{described}）：" if chinese else f"Here is what I found for {described}."
        elif chinese:
            text = f"{self.catalog.name} 目录里没有符合（{described}）的商品。请减少条件或换个说法。"
        else:
            text = f"Nothing in the {self.catalog.name} catalog matches {described}. Try fewer constraints or other words."
        return " ".join([text, *notices])


def _apply_filters(constraints: Constraints, filters: Constraints) -> None:
    if filters.category:
        constraints.category = filters.category
    if filters.min_price is not None:
        constraints.min_price = max(filters.min_price, constraints.min_price or 0)
    if filters.max_price is not None:
        constraints.max_price = min(filters.max_price, constraints.max_price if constraints.max_price is not None else filters.max_price)
    constraints.excluded_terms = sorted({*constraints.excluded_terms, *filters.excluded_terms})
    constraints.excluded_ids = sorted({*constraints.excluded_ids, *filters.excluded_ids})


def _fact_item(candidate: Candidate, request: ParsedRequest) -> RecommendedItem:
    return _recommended(candidate, fact_reason(candidate.item, request.query), "facts")


def _recommended(candidate: Candidate, reason: str, source: str) -> RecommendedItem:
    item: Item = candidate.item
    return RecommendedItem(
        id=item.id, title=item.title, reason=reason, score=round(candidate.score, 4), category=item.category,
        price=item.price, currency=item.currency, reason_source=source,
    )


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 1)
