"""recchat in LangChain applications, on LangChain's own base classes:

- `RecChatRetriever`: catalog search (`BaseRetriever`), with the same filters as a chat turn; each `Document`'s
  metadata carries the item's id, title, category, price and similarity score;
- `RecChatRunnable`: a turn as a `Runnable`: a message (or `{message, session_id, user_id, filters}`) in, a
  `RecommendationList` out; `stream`/`astream` give the engine's `StreamEvent`s as `RecChat.stream` does, the last
  one carrying the reply; `batch` answers several messages at once;
- `recommend_items_tool(bot)`: the tool an agent calls ("recommend_items"); the model reads a short text, and the
  typed reply comes along as the tool message's artifact.

`bot` is a `RecChat`, or a `RecChatClient` for a remote server (the runnable and the tool; the retriever needs the
index, so an engine in this process)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from recchat.errors import InvalidArgumentError
from recchat.models import Constraints, RecommendationList, StreamEvent, field_errors_text

MAX_K = 100
FILTER_KEYS = list(Constraints.model_fields)


class RecChatRetriever(BaseRetriever):
    """The catalog items nearest a query, as Documents (the item's indexed text; its facts in the metadata)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    bot: Any = Field(description="A RecChat engine.")
    k: int = Field(default=5, ge=1, le=MAX_K, description="How many items; a call may give its own (`k=`).")
    filters: Constraints | None = Field(default=None, description="Category and price limits.")

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, k: int | None = None,
        filters: Constraints | dict | None = None,
    ) -> list[Document]:
        """`k` and `filters` given to one call (`retriever.invoke(query, k=1)`, as LangChain's retrievers take them)
        replace the retriever's own for that call."""
        return self._documents(query, k, filters)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, k: int | None = None,
        filters: Constraints | dict | None = None,
    ) -> list[Document]:
        return await asyncio.to_thread(self._documents, query, k, filters)

    def _documents(self, query: str, k: int | None, filters: Constraints | dict | None) -> list[Document]:
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K):
            raise InvalidArgumentError(f"k must be a whole number from 1 to {MAX_K}; got {k!r}")
        if filters is not None and not isinstance(filters, Constraints):
            unknown = sorted(set(filters) - set(Constraints.model_fields)) if isinstance(filters, dict) else []
            if unknown:
                raise InvalidArgumentError(f"filters: unknown {', '.join(unknown)}; known: {', '.join(FILTER_KEYS)}")
            try:
                filters = Constraints.model_validate(filters)
            except ValidationError as error:
                raise InvalidArgumentError(f"filters: {field_errors_text(error)}") from error
        hits = self.bot.retriever.search(query, filters or self.filters, k=k or self.k)
        return [
            Document(
                page_content=hit.item.embedding_text(), id=hit.item.id,
                metadata={
                    "id": hit.item.id, "title": hit.item.title, "category": hit.item.category,
                    "price": hit.item.price, "currency": hit.item.currency, "score": hit.score,
                },
            )
            for hit in hits
        ]


class TurnInput(BaseModel):
    """What a turn takes besides a plain message."""

    model_config = ConfigDict(extra="forbid")
    message: str
    session_id: str | None = None
    user_id: str | None = None
    filters: Constraints | None = None


def _turn(value: str | dict | TurnInput) -> TurnInput:
    if isinstance(value, TurnInput):
        return value
    if isinstance(value, str):
        return TurnInput(message=value)
    if isinstance(value, dict):
        return TurnInput.model_validate(value)
    raise InvalidArgumentError(f"a turn is a message or a dict with 'message'; got {type(value).__name__}")


class RecChatRunnable(Runnable[str | dict, RecommendationList]):
    """One chat turn per input. Sessions carry follow-ups: pass the `session_id` of an earlier reply."""

    def __init__(self, bot: Any):
        self.bot = bot

    @property
    def InputType(self) -> Any:  # noqa: N802 (LangChain's name)
        return str | TurnInput

    @property
    def OutputType(self) -> Any:  # noqa: N802
        return RecommendationList

    def _chat(self, value: str | dict) -> RecommendationList:
        turn = _turn(value)
        return self.bot.chat(turn.message, turn.session_id, user_id=turn.user_id, filters=turn.filters)

    async def _achat(self, value: str | dict) -> RecommendationList:
        turn = _turn(value)
        return await self.bot.achat(turn.message, turn.session_id, user_id=turn.user_id, filters=turn.filters)

    def invoke(self, input: str | dict, config: RunnableConfig | None = None, **kwargs: Any) -> RecommendationList:
        return self._call_with_config(self._chat, input, config)

    async def ainvoke(
        self, input: str | dict, config: RunnableConfig | None = None, **kwargs: Any
    ) -> RecommendationList:
        return await self._acall_with_config(self._achat, input, config)

    def stream(  # type: ignore[override]  (events, as RecChat.stream gives them)
        self, input: str | dict, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[StreamEvent]:
        turn = _turn(input)
        yield from self.bot.stream(turn.message, turn.session_id, user_id=turn.user_id, filters=turn.filters)

    async def astream(  # type: ignore[override]
        self, input: str | dict, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[StreamEvent]:
        turn = _turn(input)
        async for event in self.bot.astream(turn.message, turn.session_id, user_id=turn.user_id, filters=turn.filters):
            yield event


class RecommendArgs(BaseModel):
    request: str = Field(description="What the shopper wants, in their words, e.g. 'a warm winter coat'.")
    max_price: float | None = Field(default=None, ge=0, description="Highest price, if the shopper gave one.")
    category: str | None = Field(default=None, description="A catalog category, if the shopper named one.")
    session_id: str | None = Field(default=None, description="The session of an earlier call, for a follow-up.")


def recommend_items_tool(bot: Any, user_id: str | None = None) -> BaseTool:
    """The `recommend_items` tool over `bot`, for the user `user_id` (whose feedback personalises answers)."""

    def arguments(request, max_price, category, session_id) -> tuple[tuple, dict]:
        wanted = max_price is not None or category is not None
        filters = Constraints(max_price=max_price, category=category) if wanted else None
        return (request, session_id), {"user_id": user_id, "filters": filters}

    def recommend(request: str, max_price: float | None = None, category: str | None = None,
                  session_id: str | None = None) -> tuple[str, RecommendationList]:
        args, kwargs = arguments(request, max_price, category, session_id)
        reply = bot.chat(*args, **kwargs)
        return tool_text(reply), reply

    async def arecommend(request: str, max_price: float | None = None, category: str | None = None,
                         session_id: str | None = None) -> tuple[str, RecommendationList]:
        args, kwargs = arguments(request, max_price, category, session_id)
        reply = await bot.achat(*args, **kwargs)
        return tool_text(reply), reply

    return StructuredTool.from_function(
        func=recommend, coroutine=arecommend, name="recommend_items", args_schema=RecommendArgs,
        response_format="content_and_artifact",
        description="Recommend real items from the shop's catalog for a shopper's request. Returns a numbered list "
        "with each item's id, title, price and why it fits, and the session id for follow-ups ('cheaper', 'more "
        "like the first one').",
    )


def tool_text(reply: RecommendationList) -> str:
    """What the agent's model reads: short, with ids, so it can name items without inventing them."""
    lines = [reply.message]
    for rank, item in enumerate(reply.items, start=1):
        price = f", {item.price:g} {item.currency or ''}".rstrip() if item.price is not None else ""
        lines.append(f"{rank}. {item.title} [{item.id}]{price}: {item.reason}")
    if not reply.items:
        lines.append("No item in the catalog matches.")
    if reply.question is not None:  # the agent may put it to the user, or answer it from what the user said
        options = ", ".join(option.message for option in reply.question.options)
        lines.append(f"To narrow it down, ask the user: {reply.question.text} ({options})")
    lines.append(f"(session_id: {reply.metadata.session_id})")
    return "\n".join(lines)
