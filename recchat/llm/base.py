"""The contract every LLM backend keeps: `stream` is the one method a backend must write."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Protocol, TypedDict, TypeVar, runtime_checkable

T = TypeVar("T")


class Message(TypedDict):
    role: str
    content: str


@runtime_checkable
class LLMBackend(Protocol):
    """Chat with optional structured output. Failures raise `BackendUnavailableError`.

    `schema` is a JSON schema the reply must follow; backends that can enforce it during decoding do, and callers
    validate the text either way. Closing a stream early (or cancelling `astream`) ends the generation, so an
    abandoned answer does not keep the model busy. A backend subclasses this protocol, writes `stream`, and gets
    `generate` and `astream` (driven from a thread of its own); a backend with a native async client overrides it.
    """

    name: str

    def stream(self, messages: list[Message], *, schema: dict | None = None, max_tokens: int = 256) -> Iterator[str]:
        raise NotImplementedError

    def generate(self, messages: list[Message], *, schema: dict | None = None, max_tokens: int = 256) -> str:
        return "".join(self.stream(messages, schema=schema, max_tokens=max_tokens))

    def astream(
        self, messages: list[Message], *, schema: dict | None = None, max_tokens: int = 256
    ) -> AsyncIterator[str]:
        return iterate_in_thread(lambda _abandoned: self.stream(messages, schema=schema, max_tokens=max_tokens))


def usable_cores() -> int:
    """The CPU cores this process may run on (a container's share, not the host's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


async def iterate_in_thread(open_iterator: Callable[[threading.Event], Iterator[T]]) -> AsyncIterator[T]:
    """A blocking iterator driven from a thread of its own, its items handed to the event loop as they come.

    A thread of its own, not the loop's executor: an iterator may wait long for a shared resource (the
    in-process model), and waiting there would starve the executor that retrieval runs on. Closing or
    cancelling the async iterator sets the event given to `open_iterator` (so the blocking side can give up
    a wait) and closes the blocking iterator at its next item."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, object]] = asyncio.Queue()
    stop = threading.Event()

    def hand_over(kind: str, value: object) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, (kind, value))
        except RuntimeError:  # the loop is gone; nobody is listening
            stop.set()

    def run() -> None:
        try:
            iterator = open_iterator(stop)
            try:
                for item in iterator:
                    if stop.is_set():
                        break
                    hand_over("item", item)
            finally:
                close = getattr(iterator, "close", None)
                if close is not None:
                    close()
        except BaseException as error:  # re-raised on the loop's side
            hand_over("error", error)
        else:
            hand_over("end", None)

    threading.Thread(target=run, daemon=True, name="recchat-stream").start()
    try:
        while True:
            kind, value = await queue.get()
            if kind == "end":
                return
            if kind == "error":
                assert isinstance(value, BaseException)
                raise value
            yield value  # type: ignore[misc]
    finally:
        stop.set()
