"""The contract every LLM backend keeps, and the factory that picks one from settings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, TypedDict, runtime_checkable

from recchat.config import Settings


class Message(TypedDict):
    role: str
    content: str


@runtime_checkable
class LLMBackend(Protocol):
    """Chat with optional structured output. Failures raise `BackendUnavailableError`.

    `schema` is a JSON schema the reply must follow; backends that can enforce it during
    decoding do, and callers validate the text either way.
    """

    name: str

    def generate(self, messages: list[Message], *, schema: dict | None = None, max_tokens: int = 256) -> str: ...

    def stream(self, messages: list[Message], *, schema: dict | None = None, max_tokens: int = 256) -> Iterator[str]: ...


def make_backend(settings: Settings) -> LLMBackend:
    if settings.llm.backend == "openai":
        from recchat.llm.openai_compatible import OpenAICompatibleBackend

        return OpenAICompatibleBackend(settings.llm)
    from recchat.llm.local import TransformersBackend, prepare_model_dir

    model_dir: Path | str = prepare_model_dir(settings.llm.model, settings.cache_dir / "models")
    return TransformersBackend(
        model_dir, device=settings.llm.device, dtype=settings.llm.dtype, constrained=settings.llm.constrained
    )
