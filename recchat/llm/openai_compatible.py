"""Any OpenAI-compatible chat server: `vllm serve`, `transformers serve`, or a hosted API."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import openai

from recchat.config import LLMSettings
from recchat.errors import BackendUnavailableError
from recchat.llm.base import Message


class OpenAICompatibleBackend:
    def __init__(self, settings: LLMSettings):
        self.settings = settings
        self.client = openai.OpenAI(
            base_url=settings.base_url, api_key=settings.api_key, timeout=settings.timeout_s, max_retries=1
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

    def request(self, messages: list[Message], schema: dict | None, max_tokens: int, stream: bool) -> dict:
        """The chat-completions request body, as sent."""
        body: dict = {
            "model": self.model_name(),
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": 0.0,
            "stream": stream,
        }
        if schema is not None and self.settings.constrained:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "recommendations", "schema": schema, "strict": True},
            }
            if self.settings.engine == "vllm":
                body["extra_body"] = {"structured_outputs": {"json": schema}}
        return body

    def generate(self, messages: list[Message], *, schema: dict | None = None, max_tokens: int = 256) -> str:
        try:
            response = self.client.chat.completions.create(**self.request(messages, schema, max_tokens, stream=False))
        except openai.OpenAIError as error:
            raise BackendUnavailableError(f"{self.name} failed: {error}") from error
        if not response.choices:
            raise BackendUnavailableError(f"{self.name} returned no choices")
        return response.choices[0].message.content or ""

    def stream(self, messages: list[Message], *, schema: dict | None = None, max_tokens: int = 256) -> Iterator[str]:
        finished = False
        try:
            chunks = self.client.chat.completions.create(**self.request(messages, schema, max_tokens, stream=True))
            for chunk in chunks:
                if chunk.choices and chunk.choices[0].delta.content:
                    yield chunk.choices[0].delta.content
                finished = finished or bool(chunk.choices and chunk.choices[0].finish_reason)
        except (openai.OpenAIError, httpx2.HTTPError) as error:  # a cut connection surfaces as httpx2
            raise BackendUnavailableError(f"{self.name} failed: {error}") from error
        if not finished:  # a server stopped mid-answer may close the stream cleanly: the answer is cut short
            raise BackendUnavailableError(f"{self.name} ended the stream before the answer was complete")
