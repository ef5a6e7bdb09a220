"""Other projects' test suites, run against recchat: LangChain's standard tests for retrievers and tools
(`langchain-tests`), on the real engine (encoder, Chroma, the bundled catalog; the LLM off, so the tool answers from
retrieval in milliseconds). They were written by LangChain, not by recchat; a LangChain integration that passes them
behaves as LangChain's own retrievers and tools do (`k` per call, ToolCall in, ToolMessage out, async alike).

Their async tests are plain `async def`: the `anyio` mark on each class has AnyIO's plugin (which recchat's own tests
use) run them on asyncio."""

from __future__ import annotations

import pytest
from langchain_tests.integration_tests import RetrieversIntegrationTests, ToolsIntegrationTests
from langchain_tests.unit_tests import ToolsUnitTests

from recchat.chat import RecChat
from recchat.config import Settings
from recchat.langchain import RecChatRetriever, recommend_items_tool


@pytest.fixture(scope="module")
def engine(encoder, tmp_path_factory) -> RecChat:
    settings = Settings(data_dir=tmp_path_factory.mktemp("suites"), embedding={"bridge": ""}, llm={"backend": "none"})
    return RecChat.from_settings(settings, encoder=encoder)


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


class WithEngine:
    """The standard suites read their subject from properties, not fixtures: the engine is handed over first."""

    bot: RecChat

    @pytest.fixture(autouse=True)
    def _engine(self, engine: RecChat) -> None:
        type(self).bot = engine


@pytest.mark.anyio
class TestRetrieverStandard(WithEngine, RetrieversIntegrationTests):
    @property
    def retriever_constructor(self) -> type[RecChatRetriever]:
        return RecChatRetriever

    @property
    def retriever_constructor_params(self) -> dict:
        return {"bot": self.bot, "k": 4}

    @property
    def retriever_query_example(self) -> str:
        return "a warm winter coat"


class WithTool(WithEngine):
    @property
    def tool_constructor(self):
        return recommend_items_tool(self.bot)

    @property
    def tool_invoke_params_example(self) -> dict:
        return {"request": "waterproof hiking boots", "max_price": 200}


@pytest.mark.anyio
class TestToolStandard(WithTool, ToolsIntegrationTests):
    """LangChain's integration tests for tools: a ToolCall in, a ToolMessage out, sync and async."""


class TestToolStandardUnit(WithTool, ToolsUnitTests):
    """LangChain's unit tests for tools: its name, its input schema, built as given."""
