"""The LLM as a turn uses it: made on first use, held to a deadline, and rested after a failure; or off, when none is
configured."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import closing, contextmanager

from recchat.config import LLMSettings, Settings
from recchat.errors import BackendUnavailableError, LLMBusyError, LLMOffError
from recchat.llm.base import LLMBackend, Message
from recchat.llm.factory import make_backend

IN_PROCESS_MAX_WAITING = 4
"""`llm.max_waiting` unset, for a model in this process: it answers one turn at a time, so each turn waiting adds a
whole answer (about 2 s for SmolLM2 on a CPU); four keep the last one's wait under about 10 s."""
SERVER_MAX_WAITING = 64
"""`llm.max_waiting` unset, for a server (`openai`): its batching answers many turns at once (bench/gpu_serving.py
served 64 concurrent users)."""
ANSWER_SMOOTHING = 0.2
"""Weight of the latest answer's duration in the running estimate that Retry-After gives."""


class GuardedBackend:
    """Wraps the configured backend for the chat engine, the same way for the blocking and the async API:
    - the backend is made on the first answer that needs it (loading a model takes seconds);
    - a whole answer gets `llm.timeout_s`, else `BackendUnavailableError`;
    - after a failure, answers are refused at once for `llm.retry_after_s`, so users are not each made to wait for
      a dead server; then the backend is tried again;
    - with `llm.backend = "none"` and no backend given, it is off: every answer is refused with `LLMOffError`, which
      is not a failure (nothing is rested);
    - at most `llm.max_waiting` turns are at the model at once; one more is refused with `LLMBusyError` (no failure
      either), which a turn answers from retrieval, or, with `llm.when_busy = "refuse"`, `admit` raises before it
      starts."""

    def __init__(self, settings: Settings, backend: LLMBackend | None = None):
        self.settings = settings
        self._backend = backend
        self._lock = threading.Lock()
        self._retry_at = 0.0
        self._counting = threading.Lock()
        self._at_model = 0
        self._answer_s = 1.0
        """A running estimate of one answer's duration: what a refused turn is told to wait."""

    @property
    def llm(self) -> LLMSettings:
        return self.settings.llm

    @property
    def loaded(self) -> LLMBackend | None:
        return self._backend

    @property
    def name(self) -> str:
        return self._backend.name if self._backend is not None else self.llm.backend

    @property
    def off(self) -> bool:
        """No model is configured: turns answer from retrieval by design."""
        return self._backend is None and self.llm.backend == "none"

    @property
    def status(self) -> str:
        """'off' (none configured), 'resting' (it failed recently), 'loaded', or 'not loaded' (no turn needed it)."""
        if self.off:
            return "off"
        if self.resting:
            return "resting"
        return "loaded" if self._backend is not None else "not loaded"

    @property
    def max_waiting(self) -> int:
        """`llm.max_waiting`, or its default for the kind of backend."""
        default = SERVER_MAX_WAITING if self.llm.backend == "openai" else IN_PROCESS_MAX_WAITING
        return self.llm.max_waiting or default

    @property
    def waiting(self) -> int:
        """Turns at the model now: being answered or waiting to be."""
        return self._at_model

    def admit(self) -> None:
        """With `llm.when_busy = "refuse"`, `LLMBusyError` for a turn that would find the model full: raised before
        the turn does any work. (One admitted in a race with others may still find it full; it is answered from
        retrieval.)"""
        if self.llm.when_busy == "refuse" and not self.off and self._at_model >= self.max_waiting:
            raise self._busy()

    @property
    def resting(self) -> bool:
        """Whether answers are refused at once after a recent failure."""
        return time.monotonic() < self._retry_at

    def get(self) -> LLMBackend:
        """The backend, made now if it was not yet."""
        with self._lock:
            if self._backend is None:
                self._backend = make_backend(self.settings)
            return self._backend

    def stream(self, messages: list[Message], schema: dict | None, max_tokens: int) -> Iterator[str]:
        """The answer in pieces. The deadline is checked between pieces; a reader that stops early closes the
        backend's stream at once, which ends the generation."""
        self._check()
        with self._place():
            started = time.monotonic()
            deadline = started + self.llm.timeout_s
            try:
                with closing(self.get().stream(messages, schema=schema, max_tokens=max_tokens)) as chunks:
                    for chunk in chunks:
                        if time.monotonic() > deadline:
                            raise self._too_slow()
                        yield chunk
            except BackendUnavailableError:
                self._failed()
                raise
            self._answered(started)

    async def astream(self, messages: list[Message], schema: dict | None, max_tokens: int) -> AsyncIterator[str]:
        """`stream` for asyncio: the deadline holds exactly, and loading the model does not block the loop."""
        self._check()
        with self._place():
            started = time.monotonic()
            deadline = started + self.llm.timeout_s
            try:
                backend = await asyncio.to_thread(self.get)
                chunks = backend.astream(messages, schema=schema, max_tokens=max_tokens)
                try:
                    while True:
                        try:
                            chunk = await asyncio.wait_for(anext(chunks), deadline - time.monotonic())
                        except StopAsyncIteration:
                            break
                        except TimeoutError:
                            raise self._too_slow() from None
                        yield chunk
                finally:
                    await chunks.aclose()  # ends the generation at once if the answer was abandoned
            except BackendUnavailableError:
                self._failed()
                raise
            self._answered(started)

    @contextmanager
    def _place(self) -> Iterator[None]:
        """A place at the model for one answer, or `LLMBusyError` when all `max_waiting` are taken."""
        with self._counting:
            if self._at_model >= self.max_waiting:
                raise self._busy()
            self._at_model += 1
        try:
            yield
        finally:
            with self._counting:
                self._at_model -= 1

    def _answered(self, started: float) -> None:
        self._retry_at = 0.0
        self._answer_s += ANSWER_SMOOTHING * (time.monotonic() - started - self._answer_s)

    def _busy(self) -> LLMBusyError:
        retry_after_s = max(1, math.ceil(self._answer_s))
        return LLMBusyError(
            f"the language model is busy: {self._at_model} turns are at it (llm.max_waiting = {self.max_waiting}); "
            f"it may have room again in about {retry_after_s} s",
            retry_after_s=retry_after_s,
        )

    def _check(self) -> None:
        if self.off:
            raise LLMOffError("the language model is off (llm.backend = 'none'): items in ranking order, reasons from "
                              "their facts")
        if self.resting:
            raise BackendUnavailableError(f"it failed recently; retrying after {self.llm.retry_after_s:g} s")

    def _too_slow(self) -> BackendUnavailableError:
        return BackendUnavailableError(f"no complete answer within {self.llm.timeout_s:g} s (llm.timeout_s)")

    def _failed(self) -> None:
        now = time.monotonic()
        if now >= self._retry_at:  # a turn refused during the rest does not prolong it
            self._retry_at = now + self.llm.retry_after_s
