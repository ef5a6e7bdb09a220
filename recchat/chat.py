"""The chat engine: sessions, feedback, and each turn from message to a grounded `RecommendationList`.

A turn: check the message -> understand it -> catch up with the feedback log -> retrieve a pool of
candidates (without the user's disliked and bought items) -> re-rank it with feedback -> the LLM
explains (and, with chat.ranking = "llm", chooses), streamed -> every pick validated against the candidates
(`turn.py`) -> the shown items logged as impressions. If the LLM is down or its answer unusable, the reply comes
from retrieval with fact-built reasons and says so in `metadata.source`.

The same steps serve the blocking API (`chat`, `stream`) and the asyncio one (`achat`, `astream`): `_begin` (all
before the LLM), `Turn.explain` / `Turn.aexplain` (the LLM's answer, read piece by piece) and `_finish` (all after it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import aclosing

from recchat.bounds import check_turn_bounds
from recchat.catalog import Catalog, load_configured_catalog
from recchat.config import Settings
from recchat.crosslingual import bridge_for
from recchat.embeddings import Encoder
from recchat.errors import FeedbackError, FeedbackOffError, FeedbackStoreError, UnknownSessionError
from recchat.feedback import (
    FeedbackEvent,
    FeedbackKind,
    FeedbackStore,
    impressions,
    item_event,
    open_feedback_store,
)
from recchat.llm import LLMBackend
from recchat.llm.guard import GuardedBackend
from recchat.models import Constraints, Item, ParsedRequest, RecommendationList, ShoppingState, StreamEvent
from recchat.prompts import Prompt, load_prompt
from recchat.rerank import FeedbackModel, Reranker
from recchat.retrieval import (
    ORDER_DEPTH,
    Candidate,
    Retriever,
    in_order,
    missed_preferences,
    synced_index,
    unmet_facets,
    wished_first,
)
from recchat.session import Session, SessionStore, aheld, check_id, held, open_session_store
from recchat.turn import Turn, elapsed_ms, llm_task
from recchat.understanding import CatalogLexicon, RequestParser, check_message, check_turn_arguments, release
from recchat.understanding.clarify import clarifying_question
from recchat.understanding.meaning import CategoryMeaning
from recchat.understanding.model_reading import read_with_model
from recchat.understanding.state import joined_ids
from recchat.wording import intro, wish

logger = logging.getLogger(__name__)


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
            self.feedback_model = FeedbackModel(catalog, vectors, settings.rerank, settings.learned)
            self.feedback_model.rebuild(feedback_store)
            self.reranker = Reranker(self.feedback_model, settings.rerank, retriever.min_score)
        self.lexicon = CatalogLexicon.from_items(catalog, catalog.name)
        self.parser = self._parser()
        self.prompt = prompt or load_prompt(settings.chat.prompt, settings.chat.prompt_version)
        self.state_prompt = load_prompt("read-state")
        self.catalog_currency = next((item.currency for item in catalog if item.price is not None), None)
        self.llm = GuardedBackend(settings, backend)
        self.sessions: SessionStore = open_session_store(settings, feedback_store)

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
        index = synced_index(settings, catalog, encoder, progress)
        bridge = bridge_for(settings, catalog, index.encoder.multilingual)
        if feedback_store is None and settings.feedback.enabled:
            feedback_store = open_feedback_store(settings)
        return cls(
            settings, catalog, Retriever(catalog, index, settings.retrieval, bridge), backend=backend,
            feedback_store=feedback_store,
        )

    def read_other_languages(self, wait: bool = False) -> bool:
        """Start indexing the catalog for requests in other languages, where the catalog's encoder is English-only and
        `embedding.bridge` names a multilingual one (see `crosslingual.py`); `wait`: until it is ready. Whether
        requests in other languages are read in their own words now."""
        bridge = self.retriever.bridge
        if bridge is not None:
            bridge.wait() if wait else bridge.start()
        return self.retriever.multilingual

    @property
    def backend(self) -> LLMBackend:
        """The LLM backend, loaded now if no turn has needed it yet."""
        return self.llm.get()

    # --- sessions and feedback --------------------------------------------------------------

    def new_session(self, user_id: str | None = None) -> str:
        """A new session's id; `user_id` ties it to a user whose feedback lasts beyond the session."""
        return self.sessions.open(user_id=user_id).id

    def session(self, session_id: str | None = None, user_id: str | None = None) -> Session:
        """The session with this id, created if new (see `SessionStore.open`)."""
        return self.sessions.open(session_id, user_id)

    def feedback(
        self, kind: FeedbackKind | str, item_id: str, *, session_id: str | None = None, user_id: str | None = None,
        turn: int | None = None, key: str | None = None, time: float | None = None,
    ) -> bool:
        """Record what a user did with an item ('click', 'like', 'dislike', 'purchase'/'accept'); the next
        ranking for this user and session reflects it. Returns False when `key` was already recorded (a retry).

        The user is `user_id`, else the session's user. A session this process does not know (e.g. from before
        a restart) is accepted: the event counts for the user from now on."""
        if self.feedback_store is None:
            raise FeedbackOffError("feedback is off (feedback.enabled = false); nothing was recorded")
        if kind == "impression":
            raise FeedbackError("impressions are logged by each turn itself; send click, like, dislike or purchase")
        session_id = None if session_id is None else check_id(session_id, "session id")
        user_id = None if user_id is None else check_id(user_id, "user id")
        session = self.sessions.get(session_id)
        if session is not None:
            session.check_user(user_id)
            if turn is not None and turn > session.turns:
                raise FeedbackError(f"session {session_id!r} has {session.turns} turn(s); there is no turn {turn}")
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
        sessions. Returns the number of stored rows deleted. A turn of theirs still running logs nothing afterwards
        (see `SessionStore.end_turn`). Other users' turns go on meanwhile: the feedback state is replayed beside them
        and the learned models refit in the background; deleting nothing does neither."""
        check_id(user_id, "user id")
        self.sessions.forget_user(user_id)  # first: a running turn of theirs then finds no session to log into
        if self.feedback_store is None:
            return 0
        deleted = self.feedback_store.forget_user(user_id)
        if deleted:
            assert self.feedback_model is not None
            self.feedback_model.sync(self.feedback_store)
            self.feedback_model.wait()  # the caller is told "deleted" once rankings no longer use the rows
        return deleted

    def release(self, session_id: str, entry: str) -> ShoppingState:
        """Take one entry out of a session's dialogue state, as the UI's chips do: a facet ('color', 'for', a numeric
        facet), 'category', 'price', 'subject', 'excluded_terms', 'excluded_ids' or 'references'. The next turn no
        longer reads it. Returns the state; an unknown session or entry is refused, saying what there is."""
        session = self.sessions.get(check_id(session_id, "session id"))
        if session is None:
            raise UnknownSessionError(f"unknown session {session_id!r}: there is no state")
        with held(self.sessions, session) as session:
            if session.last_request is None:
                raise UnknownSessionError(f"session {session_id!r} has no turn yet: there is no state")
            state = release(session.last_request.state, entry)
            session.last_request = session.last_request.model_copy(update={"state": state})
            if not self.sessions.save(session):
                raise UnknownSessionError(f"session {session_id!r} was forgotten meanwhile: there is no state")
        return state

    def add_items(self, items: Iterable[Item]) -> None:
        """Add items to the catalog: indexed and recommendable from the next turn. All or nothing: if indexing fails,
        the catalog is as it was, and the same items can be added again."""
        items = self.catalog.add(items)
        try:
            self.retriever.index.upsert(items)
        except BaseException:
            self.catalog.remove([item.id for item in items])
            raise
        self.retriever.add_items(items)
        if self.feedback_model is not None:  # first: the parser's category centres read its vectors
            self.feedback_model.add_items(items, self.retriever.index.vectors_in_order([item.id for item in items]))
        self.lexicon = CatalogLexicon.from_items(self.catalog, self.catalog.name)
        self.parser = self._parser()

    def _parser(self, multilingual: bool | None = None) -> RequestParser:
        titles = ((item.id, item.title) for item in self.catalog)
        multilingual = self.retriever.multilingual if multilingual is None else multilingual
        state = self.feedback_model  # holds every item's vector already: the index is not read twice at start-up
        vectors_in_order = state.vectors_in_order if state is not None else self.retriever.index.vectors_in_order
        encode_queries = self.retriever.index.encoder.encode_queries
        meaning = CategoryMeaning.of_catalog(self.catalog, vectors_in_order, encode_queries)
        return RequestParser(self.catalog.categories(), titles, multilingual, self.lexicon, meaning)

    # --- turns ----------------------------------------------------------------------------

    def chat(
        self, message: str, session_id: str | None = None, *, user_id: str | None = None,
        exclude_ids: Iterable[str] = (), include_hidden: bool = False, filters: Constraints | None = None,
    ) -> RecommendationList:
        """Answer one message; the reply is remembered in the session for follow-ups, and its items are logged as
        impressions. `user_id` ties a new session to a user. `exclude_ids` are items never to offer in this turn
        and the follow-ups that refine it (e.g. ones the user already has): they join the dialogue state's
        `excluded_ids` (the newest 500 are kept; a new subject starts without them, as without every exclusion).
        Items the user disliked or bought are left out unless `include_hidden`. `filters` (a category, price limits:
        e.g. a UI's controls) apply on top of what the message says; of two price limits the tighter one holds."""
        events = self.stream(
            message, session_id, user_id=user_id, exclude_ids=exclude_ids, include_hidden=include_hidden,
            filters=filters,
        )
        return _reply_of([event for event in events if event.kind == "done"])

    async def achat(
        self, message: str, session_id: str | None = None, *, user_id: str | None = None,
        exclude_ids: Iterable[str] = (), include_hidden: bool = False, filters: Constraints | None = None,
    ) -> RecommendationList:
        """`chat` for asyncio servers: many turns at once, none blocking the event loop (see `astream`)."""
        events = self.astream(
            message, session_id, user_id=user_id, exclude_ids=exclude_ids, include_hidden=include_hidden,
            filters=filters,
        )
        return _reply_of([event async for event in events if event.kind == "done"])

    def stream(
        self, message: str, session_id: str | None = None, *, user_id: str | None = None,
        exclude_ids: Iterable[str] = (), include_hidden: bool = False, filters: Constraints | None = None,
    ) -> Iterator[StreamEvent]:
        """Answer one message step by step: the message, then each item as soon as it is ready, then the reply."""
        check_message(message, self.settings.chat.max_message_chars)
        excluded = check_turn_arguments(exclude_ids, filters)
        check_turn_bounds(excluded, filters, self.settings.chat.max_exclude_ids)
        self.llm.admit()
        with held(self.sessions, self.session(session_id, user_id)) as session:
            turn = self._begin(message, session, excluded, include_hidden, filters)
            yield StreamEvent(kind="message", message=turn.intro)
            yield from turn.explain(self.llm, self.settings.llm.max_new_tokens)
            yield from self._finish(turn)

    async def astream(
        self, message: str, session_id: str | None = None, *, user_id: str | None = None,
        exclude_ids: Iterable[str] = (), include_hidden: bool = False, filters: Constraints | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """`stream` for asyncio servers. Retrieval, re-ranking and logging run in worker threads and the LLM is
        awaited (`backend.astream`), so the event loop stays free and concurrent turns reach an LLM server
        together, where its batching serves them at once. Past `llm.timeout_s` the turn is answered from
        retrieval."""
        check_message(message, self.settings.chat.max_message_chars)
        excluded = check_turn_arguments(exclude_ids, filters)
        check_turn_bounds(excluded, filters, self.settings.chat.max_exclude_ids)
        self.llm.admit()
        async with aheld(self.sessions, self.session(session_id, user_id)) as session:
            turn = await asyncio.to_thread(self._begin, message, session, excluded, include_hidden, filters)
            yield StreamEvent(kind="message", message=turn.intro)
            async with aclosing(turn.aexplain(self.llm, self.settings.llm.max_new_tokens)) as events:
                async for event in events:
                    yield event
            for event in await asyncio.to_thread(lambda: list(self._finish(turn))):
                yield event

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
        last = session.last_reply
        shown = [self.catalog[i.id] for i in last.items if i.id in self.catalog] if last is not None else []
        liked = self.feedback_model.session_likes(session.id) if self.feedback_model is not None else []
        multilingual = self.retriever.multilingual  # once: the cross-lingual index may become ready meanwhile
        if self.parser.multilingual != multilingual:
            self.parser = self._parser(multilingual)
        previous = session.last_request if self.settings.chat.dialogue_state else None
        reader, model_read, timings = self.settings.chat.state_reader, None, {}
        if reader != "rules":  # the model reads the facets too (model_reading.py); the rules read all the rest
            reading = time.perf_counter()
            model_read = read_with_model(self.llm, self.state_prompt, self.lexicon, message)
            timings["state_reading_ms"] = elapsed_ms(reading)
        request = self.parser.parse(message, previous, shown, liked, model_read, model_only=reader == "model")
        if request.language != "en" and not multilingual:
            self.read_other_languages()  # for the next request: this one is read through the glossary
        if exclude_ids:  # in the dialogue state, so the follow-ups that refine this request leave them out too
            request.state.excluded_ids = joined_ids(request.state.excluded_ids, sorted(exclude_ids))
            # this turn leaves out all of them; the follow-ups, the newest the state keeps
            request.constraints.excluded_ids = sorted(exclude_ids.union(request.state.excluded_ids))
        parsed = request.model_copy(deep=True)  # what follow-ups refine
        if filters is not None:
            request.constraints.narrow(filters)
        hidden: set[str] = set()
        if self.feedback_model is not None and not include_hidden:
            hidden = self.feedback_model.hidden(session.user_id) - exclude_ids
            request.constraints.excluded_ids = sorted(hidden.union(request.constraints.excluded_ids))
        candidates, because = self.candidates(request, session.user_id, session.id)
        retrieval_ms = elapsed_ms(started)
        wished = wish(request, self.catalog)
        unmet = {c.item.id: missed for c in candidates if (missed := unmet_facets(c.item, request.constraints))}
        opening = intro(
            request, wished, bool(candidates), self.catalog.name, self.catalog_currency, multilingual, self.lexicon,
            bool(unmet), missed_preferences([c.item for c in candidates], request.preferences),
        )
        retrieval = self.settings.retrieval
        question = None
        if self.settings.chat.clarify and candidates and not unmet:
            before = last.question if last is not None else None
            question = clarifying_question(
                [c.item for c in candidates], request.state, self.lexicon, request.language, before and before.facet
            )
        return Turn(
            message=message, session=session, request=request, parsed=parsed, candidates=candidates, because=because,
            unmet=unmet, hidden=hidden, intro=opening, started=started, llm_ranks=self.settings.chat.ranking == "llm",
            min_items=retrieval.min_items, max_items=retrieval.max_items,
            timings={"retrieval_ms": retrieval_ms, **timings}, question=question,
            task=llm_task(self.prompt, candidates, request, wished, self.settings),
        )

    def _finish(self, turn: Turn) -> Iterator[StreamEvent]:
        """Everything after the LLM: the final list, the reply remembered in its session, the impressions logged."""
        yield from turn.finish()
        reply = turn.reply(self.llm.name, self.prompt.label)
        turn.session.ended(reply, turn.parsed)
        self._end_turn(turn.session, turn.message, reply)
        yield StreamEvent(kind="done", reply=reply)

    def candidates(
        self, request: ParsedRequest, user_id: str | None = None, session_id: str | None = None, k: int | None = None
    ) -> tuple[list[Candidate], dict[str, str]]:
        """The k (default `retrieval.candidates`) best items for a parsed request as this user's and session's
        feedback ranks them: what the LLM chooses from. Also, for items feedback moved up, why. When the hard facets
        leave nothing, the nearest items without them (each shown with what it does not meet)."""
        k = k or self.settings.retrieval.candidates
        order = request.state.order
        depth = k * ORDER_DEPTH if order else k
        found, because = self._ranked(request, user_id, session_id, depth)
        constraints = request.constraints
        if not found and (constraints.facets or constraints.ranges or constraints.named):
            relaxed = constraints.model_copy(update={"facets": {}, "ranges": {}, "named": {}})
            nearest = request.model_copy(update={"constraints": relaxed})
            found, because = self._ranked(nearest, user_id, session_id, depth)
        return in_order(found, order)[:k], because

    def _ranked(
        self, request: ParsedRequest, user_id: str | None, session_id: str | None, k: int
    ) -> tuple[list[Candidate], dict[str, str]]:
        in_kind = self.lexicon.of_kind(request.state.subject)
        if self.reranker is None:  # wished facets first, then similarity, over a pool as deep as the reranker's
            depth = max(k, self.settings.rerank.pool) if request.preferences else k
            found = self.retriever.search(request.query, request.constraints, k=depth, similar_to=request.similar_to)
            wished = wished_first([candidate.item for candidate in found], request.preferences, in_kind)
            order = sorted(range(len(found)), key=lambda n: -wished[n])  # stable: similarity next
            return [found[n] for n in order][:k], {}
        vector = self.retriever.query_vector(request.query, request.similar_to)
        pool = self.retriever.search(
            request.query, request.constraints, k=max(k, self.settings.rerank.pool), similar_to=request.similar_to,
            vector=vector,
        )
        ranked = self.reranker.rank(
            pool, vector, request.constraints, k, user_id=user_id, session_id=session_id, references=request.similar_to,
            preferences=request.preferences, in_kind=in_kind,
        )
        return [r.candidate for r in ranked], {r.candidate.item.id: r.because for r in ranked if r.because}

    def _end_turn(self, session: Session, message: str, reply: RecommendationList) -> None:
        """Keep the session as the turn left it, with impressions for every shown item (and the message text, if
        configured) logged at once; nothing when its user was forgotten during the turn."""
        logging_on = self.feedback_store is not None
        events = impressions(reply) if logging_on else []
        text = message if logging_on and self.settings.feedback.store_messages else None
        try:
            kept = self.sessions.end_turn(session, events, text)
            if kept and self.feedback_model is not None and self.feedback_store is not None:
                self.feedback_model.sync(self.feedback_store)
        except FeedbackStoreError as error:  # the user still gets the reply; the log misses this turn
            logger.warning("turn %s of session %s not logged: %s", session.turns, session.id, error)
            return
        if not kept:
            logger.info("session %s was forgotten during its turn: nothing of the turn is kept", session.id)


def _reply_of(done: list[StreamEvent]) -> RecommendationList:
    """The reply a finished stream ended with (every stream ends with exactly one 'done')."""
    assert len(done) == 1 and done[0].reply is not None, "stream ended without a reply"
    return done[0].reply
