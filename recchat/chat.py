"""The chat engine: sessions, feedback, and each turn from message to a grounded `RecommendationList`.

A turn: check the message -> understand it -> catch up with the feedback log -> retrieve a pool of
candidates (without the user's disliked and bought items) -> re-rank it with feedback -> the LLM
picks and explains (streamed) -> every pick validated against the candidates -> short lists topped
up from retrieval -> the shown items logged as impressions. If the LLM is down or its answer
unusable, the reply comes from retrieval with fact-built reasons and says so in `metadata.source`.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from recchat.catalog import Catalog, load_configured_catalog
from recchat.config import Settings
from recchat.embeddings import Encoder, cached_encoder
from recchat.errors import BackendUnavailableError, FeedbackError, FeedbackStoreError, InvalidMessageError, SessionError
from recchat.feedback import FeedbackEvent, FeedbackKind, FeedbackStore, SQLiteFeedbackStore, item_event
from recchat.grounding import Pick, alias, candidate_lines, fact_reason, iter_picks, reason_is_grounded, reply_schema
from recchat.llm import LLMBackend, make_backend
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

BACKEND_RETRY_S = 30.0
"""After a backend failure, turns skip the LLM this long, so users are not each made to wait for a timeout."""


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

    def stream(
        self, message: str, session_id: str | None = None, *, user_id: str | None = None,
        exclude_ids: Iterable[str] = (), include_hidden: bool = False, filters: Constraints | None = None,
    ) -> Iterator[StreamEvent]:
        """Answer one message step by step: the message, then each item as soon as it is ready, then the reply."""
        self._check(message)
        session = self.session(session_id, user_id)
        with session.lock:
            yield from self._turn(message, session, set(exclude_ids), include_hidden, filters)

    def _check(self, message: str) -> None:
        if not isinstance(message, str) or not message.strip():
            raise InvalidMessageError("the message is empty; say what you are looking for, e.g. 'a warm winter coat'")
        limit = self.settings.chat.max_message_chars
        if len(message) > limit:
            raise InvalidMessageError(
                f"the message has {len(message):,} characters; the limit is {limit:,} "
                f"(RECCHAT_CHAT__MAX_MESSAGE_CHARS). Shorten it to what you are looking for."
            )

    def _turn(
        self, message: str, session: Session, exclude_ids: set[str], include_hidden: bool, filters: Constraints | None
    ) -> Iterator[StreamEvent]:
        started = time.perf_counter()
        timings: dict[str, float] = {}
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
        timings["retrieval_ms"] = _ms(started)
        wish = self._wish(request)

        intro = self._intro(request, wish, candidates)
        yield StreamEvent(kind="message", message=intro)

        chosen: list[RecommendedItem] = []
        dropped: list[str] = []
        repeated: list[str] = []
        fallback_reason = None
        source = "llm"
        llm_ranks = self.settings.chat.ranking == "llm"

        def personal(item: RecommendedItem) -> RecommendedItem:
            return item.model_copy(update={"because": because.get(item.id)}) if item.id in because else item

        if candidates:
            llm_started = time.perf_counter()
            try:
                if self.settings.llm.backend == "none" and self._backend is None:
                    raise BackendUnavailableError("no LLM is configured (llm.backend = 'none')")
                for event in self._llm_items(request, wish, candidates, chosen, dropped, repeated, timings, llm_started):
                    if llm_ranks and event.item is not None:
                        yield StreamEvent(kind="item", item=personal(event.item))
            except BackendUnavailableError as error:  # picks made before a failure mid-answer stay, reasons checked
                fallback_reason = f"LLM backend unavailable: {error}"
            timings["llm_ms"] = _ms(llm_started)
            if not chosen or fallback_reason:
                source = "retrieval"
                fallback_reason = fallback_reason or "the LLM's answer had no usable pick"
            retrieval = self.settings.retrieval
            if llm_ranks:  # the LLM's picks stand (already streamed); a short list is topped up in ranking order
                want = min(retrieval.min_items if source == "llm" else retrieval.max_items, len(candidates))
                for candidate in candidates:
                    if len(chosen) >= want:
                        break
                    if all(candidate.item.id != item.id for item in chosen):
                        chosen.append(_fact_item(candidate, request))
                        yield StreamEvent(kind="item", item=personal(chosen[-1]))
                chosen = [personal(item) for item in chosen]
            else:  # the ranking decides which items and their order; the LLM's picks lend their reasons
                explained = {item.id: item for item in chosen}
                chosen = [
                    personal(explained.get(c.item.id) or _fact_item(c, request)) for c in candidates[: retrieval.max_items]
                ]
                for item in chosen:
                    yield StreamEvent(kind="item", item=item)

        timings["total_ms"] = _ms(started)
        reply = RecommendationList(
            message=intro,
            items=chosen,
            metadata=ReplyMetadata(
                session_id=session.id,
                user_id=session.user_id,
                turn=len(session.turns) + 1,
                backend=self._backend.name if self._backend is not None else self.settings.llm.backend,
                prompt=self.prompt.label,
                source=source,
                fallback_reason=fallback_reason,
                dropped_ids=dropped,
                repeated_ids=repeated,
                candidates=len(candidates),
                hidden_ids=sorted(hidden),
                request=request,
                timings_ms=timings,
            ),
        )
        session.turns.append(reply)
        self._log_turn(message, reply)
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

    def _llm_items(
        self, request: ParsedRequest, wish: str, candidates: list[Candidate], chosen: list[RecommendedItem],
        dropped: list[str], repeated: list[str], timings: dict[str, float], llm_started: float,
    ) -> Iterator[StreamEvent]:
        if time.monotonic() < self._backend_retry_at:
            raise BackendUnavailableError(f"it failed recently; retrying after {BACKEND_RETRY_S:.0f} s")
        aliases = [alias(position) for position in range(len(candidates))]
        by_alias = dict(zip(aliases, candidates))
        messages = self.prompt.messages(candidates=candidate_lines(candidates), request=wish)
        retrieval = self.settings.retrieval
        schema = reply_schema(aliases, retrieval.min_items, retrieval.max_items, self.prompt.reason_max_chars)
        try:
            chunks = self.backend.stream(messages, schema=schema, max_tokens=self.settings.llm.max_new_tokens)
            for pick in iter_picks(_first_chunk_timed(chunks, timings, llm_started)):
                if len(chosen) >= self.settings.retrieval.max_items:
                    break
                candidate = by_alias.get(pick.alias) if isinstance(pick, Pick) else None
                if candidate is None:
                    dropped.append(pick.alias if isinstance(pick, Pick) else str(pick)[:80])
                    continue
                if any(item.id == candidate.item.id for item in chosen):
                    repeated.append(pick.alias)
                    continue
                others = [other.item for other in candidates if other is not candidate]
                if reason_is_grounded(pick.reason, candidate.item, others, request.query, aliases):
                    item = _recommended(candidate, pick.reason.strip(), "llm")
                else:
                    item = _fact_item(candidate, request)
                chosen.append(item)
                yield StreamEvent(kind="item", item=item)
        except BackendUnavailableError:
            self._backend_retry_at = time.monotonic() + BACKEND_RETRY_S
            raise
        self._backend_retry_at = 0.0

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


def _first_chunk_timed(chunks: Iterator[str], timings: dict[str, float], started: float) -> Iterator[str]:
    for chunk in chunks:
        timings.setdefault("first_token_ms", _ms(started))
        yield chunk


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
