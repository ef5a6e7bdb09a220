"""Background work beside turns (a refit of the learned models, a replay of the feedback log after a deletion, the
cross-lingual index): started, asked whether it still runs, waited for by tests, benchmarks and shutdown.

A process that exits while such work runs in C code (an encoder, a fit) could crash as the interpreter tore down what
the thread used. So at exit every job is asked to stop (`stop_requested`, which long work checks between batches) and
waited for, up to `STOP_AT_EXIT_S` for all of them together."""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections.abc import Callable

logger = logging.getLogger(__name__)

STOP_AT_EXIT_S = 10.0
"""How long an exiting process waits for its background work in all: a step of indexing takes seconds at most."""
_jobs: weakref.WeakSet[BackgroundJob] = weakref.WeakSet()
_registered = False
_registering = threading.Lock()


class BackgroundJob:
    """A daemon thread at most at a time; the owner starts one only when `running` is False."""

    def __init__(self, name: str = "background") -> None:
        self.name = name
        self.stop_requested = threading.Event()
        """Set when the process exits: work that takes long checks it between batches and ends early."""
        self._thread: threading.Thread | None = None

    def start(self, work: Callable[..., object], *args: object) -> None:
        stop_all_at_exit()
        _jobs.add(self)
        thread = threading.Thread(target=work, args=args, name=self.name, daemon=True)
        self._thread = thread
        thread.start()

    @property
    def started(self) -> bool:
        return self._thread is not None

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def wait(self, timeout: float | None = None) -> None:
        """Until the work started last has finished (at most `timeout` seconds)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)


def stop_all_at_exit() -> None:
    """Register `stop_all` to run at exit, once. Registered when the first job starts, after the libraries that the
    work uses were imported: exit handlers run last-registered first, so the work stops before those libraries'
    own handlers close them."""
    global _registered
    with _registering:
        if not _registered:
            atexit.register(stop_all)
            _registered = True


def stop_all(timeout: float = STOP_AT_EXIT_S) -> None:
    """Ask every running job to stop, and wait for them (at most `timeout` seconds in all)."""
    running = [job for job in list(_jobs) if job.running]
    for job in running:
        job.stop_requested.set()
    deadline = time.monotonic() + timeout
    for job in running:
        job.wait(max(0.0, deadline - time.monotonic()))
        if job.running:
            logger.warning("background work %r still runs at exit after %.0f s; exiting anyway", job.name, timeout)
