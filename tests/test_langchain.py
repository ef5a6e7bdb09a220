"""recchat in LangChain: the retriever, the Runnable (sync, async, stream, batch) and the agent tool, against the
real engine (real encoder, real Chroma, LLM off so that turns take milliseconds)."""

from __future__ import annotations

import asyncio

import pytest
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableLambda
from pydantic import ValidationError

from recchat.chat import RecChat
from recchat.config import Settings
from recchat.errors import InvalidArgumentError, InvalidMessageError
from recchat.langchain import RecChatRetriever, RecChatRunnable, recommend_items_tool, tool_text
from recchat.models import Constraints, RecommendationList


@pytest.fixture(scope="module")
def quick_bot(encoder, tmp_path_factory) -> RecChat:
    settings = Settings(data_dir=tmp_path_factory.mktemp("lc"), llm={"backend": "none"})
    return RecChat.from_settings(settings, encoder=encoder)


def test_the_retriever_returns_catalog_documents_with_the_items_facts(quick_bot):
    retriever = RecChatRetriever(bot=quick_bot, k=4, filters=Constraints(max_price=150))
    assert isinstance(retriever, BaseRetriever)
    documents = retriever.invoke("a warm winter coat")
    assert 0 < len(documents) <= 4 and all(isinstance(document, Document) for document in documents)
    for document in documents:
        item = quick_bot.catalog[document.metadata["id"]]
        assert document.metadata["title"] == item.title and document.metadata["price"] == item.price <= 150
        assert 0 <= document.metadata["score"] <= 1 and item.title in document.page_content
    assert [d.metadata["id"] for d in asyncio.run(retriever.ainvoke("a warm winter coat"))] == [
        d.metadata["id"] for d in documents
    ]


def test_the_runnable_answers_like_chat_sync_async_streamed_and_batched(quick_bot):
    runnable = RecChatRunnable(quick_bot)
    assert isinstance(runnable, Runnable)
    reply = runnable.invoke("a warm winter coat")
    assert isinstance(reply, RecommendationList) and reply.items
    expected = [item.id for item in reply.items]
    assert [item.id for item in asyncio.run(runnable.ainvoke("a warm winter coat")).items] == expected
    events = list(runnable.stream({"message": "a warm winter coat", "user_id": "lc-user"}))
    assert events[0].kind == "message" and events[-1].kind == "done"
    assert [item.id for item in events[-1].reply.items] == expected and events[-1].reply.metadata.user_id == "lc-user"

    async def streamed() -> list:
        return [event async for event in runnable.astream("a warm winter coat")]

    assert [item.id for item in asyncio.run(streamed())[-1].reply.items] == expected
    batch = runnable.batch(["a warm winter coat", "running shoes", "a leather handbag"])
    assert [item.id for item in batch[0].items] == expected
    assert len({reply.metadata.session_id for reply in batch}) == 3  # each input its own session
    follow_up = runnable.invoke({"message": "cheaper ones", "session_id": reply.metadata.session_id})
    assert follow_up.metadata.turn == 2 and follow_up.metadata.request.follow_up


def test_the_runnable_composes_with_other_runnables(quick_bot):
    chain = RecChatRunnable(quick_bot) | RunnableLambda(lambda reply: [item.title for item in reply.items])
    titles = chain.invoke("a wool scarf")
    assert titles and all(isinstance(title, str) for title in titles)


@pytest.mark.parametrize(
    ("what", "given", "error"),
    [
        ("an empty message", "", InvalidMessageError),
        ("a number", 42, InvalidArgumentError),
        ("a dict without message", {"text": "a coat"}, ValidationError),
        ("a misspelt key", {"message": "a coat", "sesion_id": "x"}, ValidationError),
    ],
)
def test_the_runnable_refuses_bad_input_with_a_typed_error(quick_bot, what, given, error):
    with pytest.raises(error):
        RecChatRunnable(quick_bot).invoke(given)


def test_an_agent_from_langchain_core_pieces_calls_the_tool_and_gets_real_items(quick_bot):
    """The README's example: a scripted chat model (no network) asks for the tool; the tool answers from the
    catalog; the model's next turn reads the tool's answer."""
    tool = recommend_items_tool(quick_bot, user_id="agent-user")
    model = GenericFakeChatModel(messages=iter([
        AIMessage(content="", tool_calls=[{
            "name": "recommend_items", "args": {"request": "a warm winter coat", "max_price": 200}, "id": "call-1",
        }]),
        AIMessage(content="Here are coats under $200 from the shop."),
    ]))
    messages = [HumanMessage("I need a winter coat, at most $200")]
    ai = model.invoke(messages)
    messages.append(ai)
    for call in ai.tool_calls:
        result = tool.invoke(call)
        assert isinstance(result, ToolMessage) and result.tool_call_id == "call-1"
        messages.append(result)
    final = model.invoke(messages)
    reply = messages[-1].artifact
    assert isinstance(reply, RecommendationList) and reply.items and reply.metadata.user_id == "agent-user"
    assert all(item.price <= 200 for item in reply.items)
    for item in reply.items:  # the model reads ids and titles, so it can name real items
        assert f"[{item.id}]" in messages[-1].content and item.title in messages[-1].content
    assert final.content.startswith("Here are coats")


def test_the_tool_validates_its_arguments_and_works_async(quick_bot):
    tool = recommend_items_tool(quick_bot)
    assert tool.name == "recommend_items" and "request" in tool.args
    with pytest.raises(ValidationError):
        tool.invoke({"request": "a coat", "max_price": -5})
    text = asyncio.run(tool.ainvoke({"request": "running shoes"}))
    assert "session_id:" in text and "[" in text


def test_the_tools_text_carries_the_clarifying_question_for_the_agent(quick_bot):
    reply = quick_bot.chat("I need a jacket")
    assert reply.question is not None
    text = tool_text(reply)
    assert f"ask the user: {reply.question.text}" in text and reply.question.options[0].message in text


def test_a_call_may_give_its_own_k_and_filters(quick_bot):
    retriever = RecChatRetriever(bot=quick_bot, k=4)
    assert len(retriever.invoke("a warm winter coat", k=1)) == 1 and len(retriever.invoke("a warm winter coat")) == 4
    cheap = retriever.invoke("a warm winter coat", filters={"max_price": 100})
    assert cheap and all(document.metadata["price"] <= 100 for document in cheap)
    assert len(asyncio.run(retriever.ainvoke("a warm winter coat", k=2))) == 2


@pytest.mark.parametrize("k", [0, -1, 101, 2.5, "3", True])
def test_bad_input_a_per_call_k_that_is_no_count_is_refused(quick_bot, k):
    with pytest.raises(InvalidArgumentError, match="k must be"):
        RecChatRetriever(bot=quick_bot).invoke("a coat", k=k)


def test_bad_input_per_call_filters_that_are_no_constraints_are_refused(quick_bot):
    with pytest.raises(InvalidArgumentError, match="max_price"):
        RecChatRetriever(bot=quick_bot).invoke("a coat", filters={"max_price": -5})
    with pytest.raises(InvalidArgumentError, match="unknown max_prize"):  # a misspelt key is not silently ignored
        RecChatRetriever(bot=quick_bot).invoke("a coat", filters={"max_prize": 1})
