"""LLM backends: one protocol; llama.cpp and transformers in-process, and an OpenAI-compatible client."""

from recchat.llm.base import LLMBackend, Message
from recchat.llm.factory import make_backend

__all__ = ["LLMBackend", "Message", "make_backend"]
