"""What every model run inside this process shares: one generation at a time, and abandoned answers stop."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator

from recchat.llm.base import LLMBackend, Message, iterate_in_thread

LOCK_POLL_S = 0.05
"""How often a request waiting for the in-process model checks whether its reader has left."""


class InProcessBackend(LLMBackend):
    """A model held by this process. A generation holds the model (neither torch modules, grammar compilers nor a
    llama.cpp context are safe to share between threads), and concurrent callers queue for it. Subclasses write
    `_generate`, which must stop at its next token once `abandoned` is set."""

    name: str

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def _generate(
        self, messages: list[Message], schema: dict | None, max_tokens: int, abandoned: threading.Event
    ) -> Iterator[str]:
        raise NotImplementedError

    def stream(self, messages: list[Message], *, schema: dict | None = None, max_tokens: int = 256) -> Iterator[str]:
        return self._queued(messages, schema, max_tokens, threading.Event())

    def astream(
        self, messages: list[Message], *, schema: dict | None = None, max_tokens: int = 256
    ) -> AsyncIterator[str]:
        """`stream` from a thread: turns wait their turn for the model there, not on the event loop."""
        return iterate_in_thread(lambda abandoned: self._queued(messages, schema, max_tokens, abandoned))

    def _queued(
        self, messages: list[Message], schema: dict | None, max_tokens: int, abandoned: threading.Event
    ) -> Iterator[str]:
        """Wait for the model, then generate. Once `abandoned` is set (the reader left), a request still waiting
        leaves the queue without touching the model, and a running generation stops at the next token."""
        while not self._lock.acquire(timeout=LOCK_POLL_S):
            if abandoned.is_set():
                return
        try:
            try:
                yield from self._generate(messages, schema, max_tokens, abandoned)
            finally:  # a reader that stopped early (closed this generator) frees the model at the next token
                abandoned.set()
        finally:
            self._lock.release()
