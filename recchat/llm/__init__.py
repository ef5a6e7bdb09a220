"""LLM backends: one protocol, an in-process transformers engine and an OpenAI-compatible client."""

from recchat.llm.base import LLMBackend, Message, make_backend

__all__ = ["LLMBackend", "Message", "make_backend"]
