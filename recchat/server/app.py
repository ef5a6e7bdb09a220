"""The HTTP API: a thin ASGI shell over one `RecChat`. Turns run on the async API (`achat`, `astream`), so
concurrent turns reach an LLM server together; feedback and search run in FastAPI's thread pool.

    POST /v1/chat            a turn -> RecommendationList
    POST /v1/chat/stream     the same turn as server-sent events (the `astream` events)
    POST /v1/sessions        a new session id
    POST /v1/feedback        click / like / dislike / purchase
    DELETE /v1/users/{id}    forget a user
    POST /v1/users/{id}/token  a token that acts for that user only (the key holder mints it)
    GET /v1/items/{id}       one catalog item
    GET /v1/items?q=...      catalog search, no chat
    GET /healthz, /metrics   status (LLM, store) and Prometheus metrics
    /docs, /redoc, /ui       OpenAPI docs (assets served here, no CDN); the Gradio UI over the same engine
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import sys
import time
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

from fastapi import APIRouter, FastAPI, Query, Request, Security
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from fastapi.security import HTTPBearer
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import ValidationError

from recchat.chat import RecChat
from recchat.config import PROJECT_ROOT, ApiSettings
from recchat.errors import (
    FeedbackStoreError,
    ForbiddenError,
    InvalidArgumentError,
    RecChatError,
    UnknownItemError,
    UnknownSessionError,
)
from recchat.feedback import KIND_ALIASES
from recchat.models import Constraints, Item, RecommendationList, ShoppingState, field_errors_text
from recchat.retrieval import item_matches
from recchat.server import errors
from recchat.server.auth import TOKEN_USER, KeyGate, user_token
from recchat.server.hosts import HostGate, answered_hosts
from recchat.server.metrics import Metrics
from recchat.server.schemas import (
    ChatRequest,
    ErrorBody,
    ErrorDetail,
    FeedbackRecorded,
    FeedbackRequest,
    Found,
    SearchResults,
    SessionCreated,
    SessionRequest,
    TokenRequest,
    UserForgotten,
    UserToken,
)
from recchat.session import check_id
from recchat.session_postgres import PostgresSessions

logger = logging.getLogger("recchat.server")
T = TypeVar("T")
MAX_SEARCH_RESULTS = 100
DISCONNECT_POLL_S = 0.1
"""How often a non-streamed turn checks that its client is still there: an abandoned turn stops within this."""
CLIENT_GONE = 499
"""The status logged for a turn whose client left before its answer (nginx's 'client closed request'); nobody reads
it."""
EVENT_STREAM = "text/event-stream"
ERROR_RESPONSES = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (400, "Bad input: the message says what to send"), (401, "Missing or wrong API key"),
        (403, "A user token used for another user"),
        (404, "Unknown item or session"), (409, "The session belongs to another user"),
        (413, "Body too large"), (422, "Fields of the wrong type"),
        (429, "The language model is busy (llm.when_busy = 'refuse'); Retry-After says when to try again"),
        (503, "No feedback store available"),
    )
}


def create_app(bot: RecChat, settings: ApiSettings | None = None) -> FastAPI:
    """The API over `bot`; with `settings.ui`, the Gradio UI at /ui over the same engine."""
    settings = settings or bot.settings.api
    metrics = Metrics(model_off=bot.llm.off)
    app = FastAPIOffline(  # /docs and /redoc with their scripts served from here: the pages work with no internet
        title="recchat", version="0.1.0",
        description="Conversational recommendations that name only real catalog items.",
        swagger_ui_parameters={"validatorUrl": None},  # its badge is an image from swagger.io's validator
    )
    count_error = metrics.errors.labels
    errors.install(app, on_error=lambda kind: count_error(kind).inc())
    app.add_middleware(errors.BodyLimit, limit=settings.max_body_bytes)
    # added last, so it runs first: a caller without the key is refused before any body is read
    app.add_middleware(KeyGate, key=settings.key, on_refused=lambda kind: count_error(kind).inc())
    # outermost: a page that rebinds its own name to this server is refused before the key is even looked at
    app.add_middleware(HostGate, hosts=answered_hosts(settings), on_refused=lambda kind: count_error(kind).inc())
    # with a key, the schema says every /v1 call needs it, so /docs can send it (KeyGate checks it, before this runs)
    stated_key = [Security(HTTPBearer(auto_error=False))] if settings.key is not None else []
    routes = api_routes(bot, metrics, settings)
    app.include_router(routes, prefix="/v1", dependencies=stated_key, responses=ERROR_RESPONSES)

    @app.get("/healthz", responses={503: {"description": "The feedback store does not answer"}})
    def health() -> JSONResponse:
        """The engine's parts: 200 when the feedback store answers (or feedback is off), else 503. The LLM's status is
        'off' (llm.backend 'none'), 'resting' (it failed recently), 'loaded' or 'not loaded' (until a turn needs it)."""
        store: dict = {"enabled": bot.feedback_store is not None}
        if bot.feedback_store is not None:
            try:
                bot.feedback_store.generation()
                store["status"] = "ok"
            except FeedbackStoreError as error:
                store |= {"status": "unavailable", "error": str(error)}
        llm = {
            "backend": bot.llm.name, "status": bot.llm.status, "loaded": bot.llm.loaded is not None,
            "resting": bot.llm.resting,
        }
        healthy = store.get("status", "ok") == "ok"
        body = {
            "status": "ok" if healthy else "unavailable", "llm": llm, "store": store,
            "catalog": {"name": bot.catalog.name, "items": len(bot.catalog)},
        }
        return JSONResponse(body, status_code=200 if healthy else 503)

    @app.get("/metrics", response_class=PlainTextResponse)
    def prometheus() -> Response:
        """Prometheus's text exposition format."""
        return Response(metrics.text(), media_type=CONTENT_TYPE_LATEST)

    if settings.ui:
        mount_ui(app, bot)
    return app


def caller(request: Request) -> str | None:
    """The user a user token acts for (`auth.py`); None for the key holder, or when no key is set."""
    return request.scope.get("state", {}).get(TOKEN_USER)


def acting_for(request: Request, user_id: str | None) -> str | None:
    """The user a call acts for: the one it names, which a user token must leave out or name as its own."""
    user = caller(request)
    if user is None:
        return user_id
    if user_id is not None and user_id != user:
        raise ForbiddenError(f"this token acts for user {user!r} only, not for {user_id!r}")
    return user


def api_routes(bot: RecChat, metrics: Metrics, settings: ApiSettings) -> APIRouter:
    routes = APIRouter()

    shared = isinstance(bot.sessions, PostgresSessions)
    elsewhere = (
        "" if shared else " (with several workers, sessions are shared only when feedback is on and feedback.url "
        "names a PostgreSQL database: set it, or serve with one worker)"
    )

    def known_session(session_id: str | None) -> str | None:
        """A turn continues a session this server made; an unknown one (expired, made elsewhere, lost in a
        restart) is refused rather than silently started afresh without its context."""
        if session_id is not None and check_id(session_id, "session id") not in bot.sessions:
            raise UnknownSessionError(
                f"unknown session {session_id!r}: it expired or was not made by this server{elsewhere}; start one "
                "with POST /v1/sessions or leave session_id out"
            )
        return session_id

    def known_category(category: str | None) -> None:
        """A category filter names one of the catalog's: an unknown one would silently match nothing."""
        known = {name.lower() for name in bot.catalog.categories()}
        if category is not None and category.lower() not in known:
            raise InvalidArgumentError(f"no category {category!r}; choose one of {', '.join(bot.catalog.categories())}")

    def turn_arguments(body: ChatRequest, request: Request) -> dict:
        """A session of another user than the token's is refused by the engine (`SessionOwnerError`)."""
        known_category(body.filters.category if body.filters is not None else None)
        return {
            "session_id": known_session(body.session_id), "user_id": acting_for(request, body.user_id),
            "exclude_ids": body.exclude_ids, "include_hidden": body.include_hidden, "filters": body.filters,
        }

    @routes.post("/chat")
    async def chat(body: ChatRequest, request: Request) -> RecommendationList:
        """One turn: the message in, the reply (items, reasons, and where they came from) out. A client that leaves
        before the answer stops its turn, as a closed stream does: the model is not kept busy for nobody."""
        started = time.perf_counter()
        try:
            reply = await unless_abandoned(bot.achat(body.message, **turn_arguments(body, request)), request)
        except ClientGone:
            metrics.errors.labels("ClientGone").inc()
            return Response(status_code=CLIENT_GONE)
        metrics.turn(reply, time.perf_counter() - started)
        return reply

    @routes.post("/chat/stream", response_class=StreamingResponse, responses={200: {"content": {EVENT_STREAM: {}}}})
    async def chat_stream(body: ChatRequest, request: Request) -> StreamingResponse:
        """The turn as server-sent events: `message`, then each `item`, then `done` with the whole reply; each
        event's data is the `StreamEvent` as JSON. Bad input is refused before the stream starts."""
        started = time.perf_counter()
        events = bot.astream(body.message, **turn_arguments(body, request))
        first = await anext(events)  # checks the message and arguments: an error is still a plain JSON answer

        async def encoded() -> AsyncIterator[str]:
            event = first
            try:
                while True:
                    if event.kind == "done" and event.reply is not None:
                        metrics.turn(event.reply, time.perf_counter() - started)
                    yield f"event: {event.kind}\ndata: {event.model_dump_json()}\n\n"
                    event = await anext(events)
            except StopAsyncIteration:
                return
            except Exception as error:  # the status is sent: say it in the stream, keep the traceback in the log
                logger.exception("stream failed")
                kind = type(error).__name__ if isinstance(error, RecChatError) else "InternalError"
                metrics.errors.labels(kind).inc()
                message = str(error) if isinstance(error, RecChatError) else "internal error; it is logged"
                body = ErrorBody(error=ErrorDetail(type=kind, message=message))
                yield f"event: error\ndata: {body.model_dump_json()}\n\n"
            finally:
                await events.aclose()

        return StreamingResponse(encoded(), media_type=EVENT_STREAM, headers={"Cache-Control": "no-cache"})

    @routes.post("/sessions", status_code=201)
    def new_session(request: Request, body: SessionRequest | None = None) -> SessionCreated:
        return SessionCreated(session_id=bot.new_session(user_id=acting_for(request, body.user_id if body else None)))

    @routes.delete("/sessions/{session_id}/state/{entry}")
    def release_state(session_id: str, entry: str, request: Request) -> ShoppingState:
        """Take one entry out of the session's dialogue state (a facet such as 'color', or 'category', 'price',
        'subject'...): the next turn no longer reads it. Answers with the state as it is now."""
        session = bot.sessions.get(known_session(session_id))
        if session is not None and (user := caller(request)) is not None:
            session.check_user(user)
        return bot.release(session_id, entry)

    @routes.post("/feedback")
    def feedback(body: FeedbackRequest, request: Request) -> FeedbackRecorded:
        """What the user did with a shown item; the next ranking for them reflects it. A session this server does not
        know is refused as a turn naming it is: its user is unknown, and the event would outlive their deletion."""
        recorded = bot.feedback(
            body.kind, body.item_id, session_id=known_session(body.session_id),
            user_id=acting_for(request, body.user_id), turn=body.turn, key=body.key, time=body.time,
        )
        if recorded:
            metrics.feedback.labels(KIND_ALIASES.get(body.kind, body.kind)).inc()
        return FeedbackRecorded(recorded=recorded)

    @routes.delete("/users/{user_id:path}")  # ids may hold "/" (sent as %2F)
    def forget_user(user_id: str, request: Request) -> UserForgotten:
        """Delete everything kept about a user: events, messages, profile and sessions (a user token: its own)."""
        acting_for(request, user_id)  # a user token forgets its own user only
        return UserForgotten(deleted=bot.forget_user(user_id))

    @routes.post("/users/{user_id:path}/token", status_code=201)
    def mint_token(user_id: str, request: Request, body: TokenRequest | None = None) -> UserToken:
        """A token that acts for this user only, minted with the key: a shop's server hands it to the shopper's
        app, which can then ask, give feedback, and read or forget that user's data, and nobody else's."""
        if settings.key is None:
            raise InvalidArgumentError("user tokens need api.key: without a key every caller may act for any user")
        if caller(request) is not None:
            raise ForbiddenError("a user token cannot mint tokens: mint them with the key")
        ttl_s = settings.user_token_ttl_s if body is None or body.ttl_s is None else body.ttl_s
        if ttl_s > settings.user_token_ttl_s:
            raise InvalidArgumentError(f"ttl_s is at most {settings.user_token_ttl_s:g} s (api.user_token_ttl_s)")
        expires_at = float(int(time.time() + ttl_s))
        token = user_token(settings.key.get_secret_value().encode(), check_id(user_id, "user id"), expires_at)
        return UserToken(token=token, user_id=user_id, expires_at=expires_at)

    @routes.get("/items/{item_id:path}")
    def item(item_id: str) -> Item:
        found = bot.catalog.get(item_id)
        if found is None:
            raise UnknownItemError(f"no item {item_id!r} in catalog {bot.catalog.name!r}")
        return found

    @routes.get("/items")
    def search(
        q: str | None = Query(default=None, max_length=bot.settings.chat.max_message_chars),
        category: str | None = None,
        min_price: float | None = Query(default=None, json_schema_extra={"minimum": 0}),  # a 400 below, stated here
        max_price: float | None = Query(default=None, json_schema_extra={"minimum": 0}),
        limit: int = Query(default=10, ge=1, le=MAX_SEARCH_RESULTS),
    ) -> SearchResults:
        """Catalog search without chat: by similarity to `q` if given, else in catalog order; always filtered."""
        try:
            constraints = Constraints(category=category, min_price=min_price, max_price=max_price)
        except ValidationError as error:
            raise InvalidArgumentError(field_errors_text(error)) from None
        known_category(category)
        if q is not None and q.strip():
            found = bot.retriever.search(q, constraints, k=limit)
            return SearchResults(items=[Found(item=hit.item, score=hit.score) for hit in found])
        matching = (item for item in bot.catalog if item_matches(item, constraints))
        return SearchResults(items=[Found(item=item, score=None) for item, _ in zip(matching, range(limit))])

    return routes


class ClientGone(Exception):
    """The client of a request closed its connection before the answer."""


async def unless_abandoned(work: Awaitable[T], request: Request) -> T:
    """`work`'s result, unless the client goes away first: then `work` is cancelled (a turn's LLM answer is closed,
    which ends its generation) and `ClientGone` raised."""
    task = asyncio.ensure_future(work)
    try:
        while not task.done():
            await asyncio.wait({task}, timeout=DISCONNECT_POLL_S)
            if not task.done() and await request.is_disconnected():
                raise ClientGone
        return task.result()
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)  # its clean-up runs before the request ends


def mount_ui(app: FastAPI, bot: RecChat) -> None:
    """The Gradio UI of `ui/app.py` at /ui, sharing this server's engine (a like given in the page counts in the
    API's next answer). Where the UI's source is not present (an installed wheel), the API runs without it."""
    path = PROJECT_ROOT / "ui" / "app.py"
    if not path.is_file():
        logger.warning("no UI at %s: serving the API alone", path)
        return
    import gradio as gr

    spec = importlib.util.spec_from_file_location("recchat_ui", path)
    assert spec is not None and spec.loader is not None
    ui = sys.modules[spec.name] = importlib.util.module_from_spec(spec)  # registered first: its dataclasses look it up
    spec.loader.exec_module(ui)
    engines = ui.Engines(bot.settings, ready={bot.settings.catalog: bot})
    blocks = ui.build_app(engines, [bot.settings.catalog]).queue(default_concurrency_limit=None)
    gr.mount_gradio_app(app, blocks, path="/ui", **ui.launch_options(bot.settings))
