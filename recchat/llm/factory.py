"""The one place that turns settings into an LLM backend."""

from __future__ import annotations

import logging
from functools import cache

from recchat.config import Settings
from recchat.errors import BackendUnavailableError
from recchat.llm.base import LLMBackend

logger = logging.getLogger(__name__)


def make_backend(settings: Settings) -> LLMBackend:
    """The configured backend, loaded. `llm.backend = "none"` has no backend: callers answer without one."""
    llm = settings.llm
    if llm.backend == "none":
        raise BackendUnavailableError("no LLM is configured (llm.backend = 'none')")
    if llm.backend == "openai":
        from recchat.llm.openai_compatible import OpenAICompatibleBackend

        return OpenAICompatibleBackend(llm)
    if llm.backend == "llamacpp":
        from recchat.llm.llamacpp import LlamaCppBackend, llama_cpp_missing

        missing = llama_cpp_missing()
        if missing is None:
            return LlamaCppBackend(llm)
        _warn_fallback(missing)
    from recchat.llm.local import TransformersBackend, prepare_model_dir

    model_dir = prepare_model_dir(llm.model, settings.cache_dir / "models")
    return TransformersBackend(model_dir, device=llm.device, dtype=llm.dtype, constrained=llm.constrained)


@cache  # once per process, however many engines are made
def _warn_fallback(missing: str) -> None:
    logger.warning(
        "llm.backend is 'llamacpp' but %s; answering with the transformers engine instead (about 5x slower on a CPU). "
        "`make setup` builds it (pip install llama-cpp-python==0.3.36).", missing,
    )
