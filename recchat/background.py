"""One piece of background work at a time (a refit of the learned models, a replay of the feedback log after a
deletion): started beside turns, asked whether it still runs, waited for by tests, benchmarks and shutdown."""

from __future__ import annotations

import threading
from collections.abc import Callable


class BackgroundJob:
    """A daemon thread at most at a time; the owner starts one only when `running` is False."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None

    def start(self, work: Callable[..., object], *args: object) -> None:
        thread = threading.Thread(target=work, args=args, daemon=True)
        self._thread = thread
        thread.start()

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def wait(self, timeout: float | None = None) -> None:
        """Until the work started last has finished (at most `timeout` seconds)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
