"""Any OpenAI-compatible chat server: `vllm serve`, `transformers serve`, or a hosted API.

Synchronous calls go through one `openai.OpenAI` client and async ones through one `openai.AsyncOpenAI` per
event loop (an async connection pool belongs to its loop); each keeps a pool of connections, so concurrent
turns reach the server together and its batching can work. Retries with backoff are the client's.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Iterator

import httpx2
import openai

from recchat.config import LLMSettings
from recchat.errors import BackendUnavailableError
from recchat.llm.base import LLMBackend, Message

CONNECT_TIMEOUT_S = 5.0
"""A server that does not accept a connection this fast is not going to answer in time."""


class OpenAICompatibleBackend(LLMBackend):
    def __init__(self, settings: LLMSettings):
        self.settings = settings
        self._client_options = dict(
            base_url=settings.base_url,
            api_key=settings.api_key,
            timeout=httpx2.Timeout(settings.timeout_s, connect=min(CONNECT_TIMEOUT_S, settings.timeout_s)),
            max_retries=settings.max_retries,
        )
        self.client = openai.OpenAI(**self._client_options)
        self._async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, openai.AsyncOpenAI] = (
            weakref.WeakKeyDictionary()
        )
        self._model = settings.model
        self.name = f"openai:{settings.base_url}"

    def model_name(self) -> str:
        """The configured model, or the first the server lists."""
        if self._model is None:
            try:
                self._model = self.client.models.list().data[0].id
            except (openai.OpenAIError, IndexError) as error:
                raise BackendUnavailableError(f"cannot list models at {self.settings.base_url}: {error}") from error
        return self._model

    def request(self, messages: list[Message], schema: dict | None, max_tokens: int) -> dict:
        """The chat-completions request body, as sent (always streamed)."""
        body: dict = {
            "model": self.model_name(),
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": 0.0,
            "stream": True,
        }
        if schema is not None and self.settings.constrained and self.settings.engine == "llamacpp":
            body["response_format"] = {"type": "json_object", "schema": schema}  # its own form; it refuses json_schema
        elif schema is not None and self.settings.constrained:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "recommendations", "schema": schema, "strict": True},
            }
            if self.settings.engine == "vllm":
                body["extra_body"] = {"structured_outputs": {"json": schema}}
        return body

    def stream(self, messages: list[Message], *, schema: dict | None = None, max_tokens: int = 256) -> Iterator[str]:
        finished = False
        try:
            with self.client.chat.completions.create(**self.request(messages, schema, max_tokens)) as chunks:
                for chunk in chunks:
                    text, finished = _read(chunk, finished)
                    if text:
                        yield text
        except (openai.OpenAIError, httpx2.HTTPError) as error:  # a cut connection surfaces as httpx2
            raise BackendUnavailableError(f"{self.name} failed: {error}") from error
        self._check_finished(finished)

    async def astream(
        self, messages: list[Message], *, schema: dict | None = None, max_tokens: int = 256
    ) -> AsyncIterator[str]:
        finished = False
        try:
            if self._model is None:
                await asyncio.to_thread(self.model_name)
            body = self.request(messages, schema, max_tokens)
            async with await self._async_client().chat.completions.create(**body) as chunks:
                async for chunk in chunks:
                    text, finished = _read(chunk, finished)
                    if text:
                        yield text
        except (openai.OpenAIError, httpx2.HTTPError) as error:
            raise BackendUnavailableError(f"{self.name} failed: {error}") from error
        self._check_finished(finished)

    def _async_client(self) -> openai.AsyncOpenAI:
        loop = asyncio.get_running_loop()
        client = self._async_clients.get(loop)
        if client is None:
            client = self._async_clients[loop] = openai.AsyncOpenAI(**self._client_options)
        return client

    def _check_finished(self, finished: bool) -> None:
        if not finished:  # a server stopped mid-answer may close the stream cleanly: the answer is cut short
            raise BackendUnavailableError(f"{self.name} ended the stream before the answer was complete")


def _read(chunk, finished: bool) -> tuple[str, bool]:
    """A streamed chunk's text, and whether the answer is complete with it."""
    if not chunk.choices:
        return "", finished
    choice = chunk.choices[0]
    return choice.delta.content or "", finished or bool(choice.finish_reason)
