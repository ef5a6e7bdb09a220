"""The lock that lets one process at a time sync a Chroma collection, between the processes of one machine and the
workers of several sharing a Chroma server.

Creating a collection is atomic in Chroma (embedded or server), so a marker collection is the lock; its metadata
says who holds it (process id, its start time where the system tells it, host name) and since when. A holder can die
without releasing it (killed, or a `recchat chat` quit mid-indexing before exits stopped background work). A lock
whose holder was on this machine and is gone (no such process, or another process that got its id since) is taken
over at once; one held from another machine, whose process cannot be looked at, is broken once it is
older than `STALE_S`. A wait longer than `WAIT_LOG_S` says in the log what it waits for."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import chromadb
from chromadb.errors import ChromaError, NotFoundError

logger = logging.getLogger(__name__)

STALE_S = 600.0
"""A sync of 100k items takes minutes; a lock this old, held from another machine, is a worker that died holding it."""
POLL_S = 0.2
WAIT_LOG_S = 5.0
"""How long a wait goes unsaid: then, and every `WAIT_LOG_EVERY_S` after, the log names the holder."""
WAIT_LOG_EVERY_S = 60.0


@contextmanager
def collection_lock(client: chromadb.ClientAPI, name: str) -> Iterator[None]:
    """Hold the lock `name` (a collection of that name) for the block, waiting for its holder or taking it over."""
    waiting_since, next_log = time.monotonic(), WAIT_LOG_S
    host, pid = socket.gethostname(), os.getpid()
    me = {"pid": pid, "host": host} | ({"started": started} if (started := process_started(pid)) else {})
    while True:
        try:
            client.create_collection(name, embedding_function=None, metadata={"since": time.time(), **me})
            break
        except ChromaError:
            try:
                holder = client.get_collection(name, embedding_function=None).metadata or {}
                held_s = time.time() - float(holder["since"])
            except (NotFoundError, KeyError, ValueError):
                continue  # released (or half made) just now: try again
            gone = holder.get("host") == host and not process_alive(holder.get("pid"), holder.get("started"))
            if gone or held_s > STALE_S:
                why = f"its process {holder.get('pid')} has ended" if gone else f"it is {held_s:.0f} s old"
                logger.warning("breaking a sync lock on %s held by %s: %s", name, holder_text(holder), why)
                release(client, name)
                continue
            waited = time.monotonic() - waiting_since
            if waited >= next_log:
                logger.warning(
                    "waited %.0f s for the sync lock on %s, held by %s for %.0f s: it is taken over when that process "
                    "ends, or after %.0f s", waited, name, holder_text(holder), held_s, STALE_S,
                )
                next_log += WAIT_LOG_EVERY_S
            time.sleep(POLL_S)
    try:
        yield
    finally:
        release(client, name)


def release(client: chromadb.ClientAPI, name: str) -> None:
    try:
        client.delete_collection(name)
    except NotFoundError:
        pass


def process_alive(pid: object, started: object = None) -> bool:
    """Whether process `pid` of this machine runs, and is the one that started at `started` (when recorded: a pid
    can be given to a new process once its holder ended). True where it cannot be told: a lock is only taken from
    the dead."""
    if not isinstance(pid, int) or pid <= 0:
        return True  # a lock written before holders were recorded: only its age tells
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, run by another user
        pass
    now = process_started(pid)
    return started is None or now is None or now == started


def process_started(pid: int) -> str | None:
    """When process `pid` started, in clock ticks since boot (Linux's /proc/PID/stat, field 22), with the boot's id,
    so a pid given to another process reads differently; None where the system does not say."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # after the command name, which may hold spaces and parentheses
    return f"{boot}:{fields[19]}"


def holder_text(holder: dict) -> str:
    pid, host = holder.get("pid"), holder.get("host")
    return f"process {pid} on {host}" if pid is not None else "an older recchat (no process recorded)"
