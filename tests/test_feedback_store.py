"""The feedback stores, with real files, a real PostgreSQL and real processes. The contract (idempotency, arrival
order, concurrent writers, kill -9, forgetting a user) runs on both stores; then the SQLite store's own cases
(migrations, and the bad files: corrupted, read-only, from a newer recchat)."""

from __future__ import annotations

import ctypes
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recchat.errors import FeedbackError, FeedbackStoreError
from recchat.feedback import SQLiteFeedbackStore, make_event, user_digest
from recchat.feedback.postgres import PostgresFeedbackStore
from recchat.feedback.sqlite import MIGRATIONS, SCHEMA_VERSION

WRITER = """
import sys
from recchat.feedback import SQLiteFeedbackStore, make_event
from recchat.feedback.postgres import PostgresFeedbackStore
where = sys.argv[1]
store = PostgresFeedbackStore(where) if where.startswith("postgresql://") else SQLiteFeedbackStore(where)
for n in range(int(sys.argv[3])):
    event = make_event(kind="like", user_id=sys.argv[2], item_id=f"item-{n}", key=f"{sys.argv[2]}-{n}")
    store.add([event])
    print(n, flush=True)  # only after the commit returned
"""


def writer(where: str | Path, user: str, count: int) -> subprocess.Popen:
    command = [sys.executable, "-c", WRITER, str(where), user, str(count)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)


@pytest.fixture(params=["sqlite", "postgres"])
def where(request, tmp_path) -> str:
    """Where a store lives: a SQLite file, or a fresh schema in the local PostgreSQL."""
    return str(tmp_path / "f.sqlite3") if request.param == "sqlite" else request.getfixturevalue("postgres_url")


def open_store(where: str):
    return PostgresFeedbackStore(where) if where.startswith("postgresql://") else SQLiteFeedbackStore(where)


def test_a_repeated_idempotency_key_is_stored_once(where):
    store = open_store(where)
    event = make_event(kind="like", user_id="u1", item_id="i1", key="retry-me")
    assert store.add([event]) == [True]
    assert store.add([event, make_event(kind="dislike", user_id="u1", item_id="i1", key="retry-me")]) == [False, False]
    assert store.count() == 1
    assert store.events_after(0)[0].kind == "like"  # the first write wins


def test_the_same_key_from_two_users_stores_both_events(where):
    store = open_store(where)
    assert store.add([make_event(kind="like", user_id="ann", item_id="i1", key="click-1")]) == [True]
    assert store.add([make_event(kind="dislike", user_id="bob", item_id="i2", key="click-1")]) == [True]
    assert store.add([make_event(kind="like", user_id="ann", item_id="i3", key="click-1")]) == [False]
    assert [(e.user_id, e.item_id) for e in store.events_after(0)] == [("ann", "i1"), ("bob", "i2")]


def test_a_users_events_are_read_back_in_arrival_order_and_the_log_is_paged_user_by_user(where):
    """What bounded profiles read: one user's clicks and opinions before an arrival number, and the whole log
    user by user up to one, page after page (a page may end inside a user's events)."""
    store = open_store(where)
    store.add([make_event(kind=kind, user_id=user, item_id=f"i{n}")
               for n, (user, kind) in enumerate([("bob", "like"), ("ann", "click"), ("bob", "impression"),
                                                 ("ann", "dislike"), ("bob", "purchase"), ("cy", "like")])])
    seqs = [event.seq for event in store.events_after(0)]
    assert store.last_seq() == seqs[-1]
    assert [e.item_id for e in store.user_events("bob", seqs[4])] == ["i0"]  # the impression is not an opinion
    assert [e.item_id for e in store.user_events("bob", seqs[4] + 1)] == ["i0", "i4"]
    assert store.user_events("nobody", seqs[-1] + 1) == []
    paged, after = [], ("", 0)
    while page := store.events_by_user(after, seqs[4], limit=2):
        paged += [(e.user_id, e.item_id) for e in page]
        after = (page[-1].user_id, page[-1].seq)
    assert paged == [("ann", "i1"), ("ann", "i3"), ("bob", "i0"), ("bob", "i2"), ("bob", "i4")]  # cy came later


def test_kill_9_in_the_middle_of_thousands_of_writes_loses_no_committed_event(where):
    process = writer(where, "killed", 20_000)
    confirmed = -1
    assert process.stdout is not None
    for line in process.stdout:  # each line: an event whose commit had returned
        confirmed = int(line)
        if confirmed >= 3000:
            break
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    store = open_store(where)
    keys = {event.key for event in store.events_after(0)}
    assert {f"killed-{n}" for n in range(confirmed + 1)} <= keys  # every confirmed event survived
    assert len(keys) < 20_000  # it really was killed mid-way
    if not where.startswith("postgresql://"):
        assert sqlite3.connect(where).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_two_processes_writing_at_once_both_land_and_a_reader_catching_up_misses_none(where):
    open_store(where).close()
    processes = [writer(where, "first", 400), writer(where, "second", 400)]
    reader, seen, last = open_store(where), [], 0
    while any(process.poll() is None for process in processes):  # catching up as a worker does before each turn
        for event in reader.events_after(last):
            seen.append(event.key)
            last = event.seq
    for process in processes:
        process.communicate(timeout=120)
        assert process.returncode == 0
    seen += [event.key for event in reader.events_after(last)]
    store = open_store(where)
    assert store.count("first") == store.count("second") == 400
    assert [e.seq for e in store.events_after(0)] == sorted(e.seq for e in store.events_after(0))
    assert sorted(seen) == sorted(event.key for event in store.events_after(0))  # no event skipped, none twice


def test_a_corrupted_file_is_a_clear_error_and_is_left_as_it_was(tmp_path):
    path = tmp_path / "f.sqlite3"
    garbage = os.urandom(8192)
    path.write_bytes(garbage)
    with pytest.raises(FeedbackStoreError, match="corrupted"):
        SQLiteFeedbackStore(path)
    assert path.read_bytes() == garbage


def test_a_read_only_file_is_a_clear_error_and_its_events_stay(tmp_path):
    path = tmp_path / "f.sqlite3"
    store = SQLiteFeedbackStore(path)
    store.add([make_event(kind="like", user_id="u1", item_id="i1", key="kept")])
    store.close()
    path.chmod(0o444)
    tmp_path.chmod(0o555)  # no -wal or -shm file can be made either
    attempt = (
        "import sys\nfrom recchat.feedback import SQLiteFeedbackStore, make_event\n"
        "from recchat.errors import FeedbackStoreError\n"
        "try:\n    s = SQLiteFeedbackStore(sys.argv[1])\n"
        "    s.add([make_event(kind='like', user_id='u2', item_id='i2')])\n"
        "except FeedbackStoreError as error:\n    print(error)\n    sys.exit(3)\n"
    )
    try:
        result = subprocess.run(
            [sys.executable, "-c", attempt, str(path)], capture_output=True, text=True, preexec_fn=_obey_file_modes
        )
    finally:
        tmp_path.chmod(0o755)
        path.chmod(0o644)
    assert result.returncode == 3, result.stderr
    assert "read-only" in result.stdout or "readonly" in result.stdout
    assert [e.key for e in SQLiteFeedbackStore(path).events_after(0)] == ["kept"]


def _obey_file_modes() -> None:
    """Root writes through file modes; without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH it obeys them."""
    if os.geteuid() == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
            if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
                raise OSError(ctypes.get_errno(), "cannot drop CAP_DAC_OVERRIDE for the read-only test")


def test_an_older_schema_is_migrated_with_its_events(tmp_path):
    path = tmp_path / "f.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(MIGRATIONS[0])
    old.execute(
        "INSERT INTO events (key, kind, user_id, item_id, time, recorded_at) VALUES ('k', 'like', 'u', 'i', 1, 1)"
    )
    old.execute("PRAGMA user_version=1")
    old.commit()
    old.close()
    store = SQLiteFeedbackStore(path)
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert [e.key for e in store.events_after(0)] == ["k"]
    assert store.log_turn("u", [], ("s", 1, "a warm coat"), forgotten_seen=0)  # the table version 2 added
    assert store.messages("u") == ["a warm coat"]


def test_the_migration_to_per_user_keys_keeps_events_and_never_reuses_an_arrival_number(tmp_path):
    path = tmp_path / "f.sqlite3"
    old = sqlite3.connect(path)
    for version, script in enumerate(MIGRATIONS[:2], start=1):
        old.executescript(script)
        old.execute(f"PRAGMA user_version={version}")
    insert = "INSERT INTO events (key, kind, user_id, item_id, time, recorded_at) VALUES (?, 'like', ?, ?, 1, 1)"
    old.executemany(insert, [("k1", "ann", "i1"), ("k2", "bob", "i2"), ("k3", "cid", "i3")])
    old.execute("DELETE FROM events WHERE key = 'k3'")  # the newest arrival was forgotten before the upgrade
    old.commit()
    old.close()
    store = SQLiteFeedbackStore(path)
    assert [(e.seq, e.key, e.user_id) for e in store.events_after(0)] == [(1, "k1", "ann"), (2, "k2", "bob")]
    assert store.add([make_event(kind="like", user_id="bob", item_id="i1", key="k1")]) == [True]  # scoped per user
    assert store.add([make_event(kind="like", user_id="ann", item_id="i9", key="k1")]) == [False]
    assert store.events_after(2)[0].seq == 4  # 3 was used before the migration; readers past it must see this


def test_a_file_from_a_newer_recchat_is_refused_untouched(tmp_path):
    path = tmp_path / "f.sqlite3"
    SQLiteFeedbackStore(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(FeedbackStoreError, match="newer"):
        SQLiteFeedbackStore(path)


def test_forgetting_a_user_removes_their_rows(where):
    store = open_store(where)
    store.add([make_event(kind="like", user_id="alice-7f3e", item_id=f"i{n}") for n in range(50)])
    store.add([make_event(kind="like", user_id="bob", item_id="i1")])
    assert store.log_turn("alice-7f3e", [], ("s1", 1, "secret-wish-for-a-red-coat"), forgotten_seen=0)
    generation = store.generation()
    assert store.forget_user("alice-7f3e") == 51
    assert store.count("alice-7f3e") == 0 and store.count("bob") == 1
    assert store.generation() == generation + 1  # readers rebuild instead of catching up
    assert store.messages("alice-7f3e") == [] and store.forget_user("alice-7f3e") == 0
    if not where.startswith("postgresql://"):  # and not left in the file's free pages or WAL
        folder = Path(where).parent
        on_disk = b"".join(p.read_bytes() for p in folder.iterdir() if p.name.startswith("f.sqlite3"))
        assert b"alice-7f3e" not in on_disk and b"secret-wish" not in on_disk


def test_a_forgotten_user_leaves_a_digest_for_other_workers_and_a_turn_they_began_before_logs_nothing(where):
    store, other_worker = open_store(where), open_store(where)
    assert store.forget_user("nobody") == 0  # a marker even so: another worker may hold a session of theirs
    seen = other_worker.forgotten_after(0)[-1][0]
    store.add([make_event(kind="like", user_id="ann", item_id="i1")])
    store.forget_user("ann")
    (marker, digest), = other_worker.forgotten_after(seen)
    assert digest == user_digest("ann") and "ann" not in digest
    impression = make_event(kind="impression", user_id="ann", item_id="i2")
    assert not other_worker.log_turn("ann", [impression], ("s", 2, "in navy"), forgotten_seen=seen)
    assert store.count("ann") == 0 and store.messages("ann") == []
    assert other_worker.log_turn("ann", [impression], None, forgotten_seen=marker)  # ann came back afterwards
    assert store.count("ann") == 1


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        ({"kind": "love"}, "kind"),
        ({"time": time.time() * 1000}, "milliseconds"),  # a JavaScript timestamp
        ({"time": float("nan")}, "Unix time"),
        ({"user_id": ""}, "user_id"),
        ({"rank": 0}, "rank"),
    ],
)
def test_malformed_events_are_refused_with_the_field_named(fields, complaint):
    with pytest.raises(FeedbackError, match=complaint):
        make_event(**{"kind": "like", "user_id": "u", "item_id": "i", **fields})


def test_accept_means_purchase_and_late_timestamps_are_kept_as_given(where):
    store = open_store(where)
    store.add([make_event(kind="accept", user_id="u", item_id="i", time=200.0)])
    store.add([make_event(kind="like", user_id="u", item_id="i", time=100.0)])  # arrives later, happened earlier
    events = store.events_after(0)
    assert [(e.kind, e.time) for e in events] == [("purchase", 200.0), ("like", 100.0)]


def test_postgres_a_database_from_a_newer_recchat_is_refused_untouched(postgres_url):
    import psycopg

    PostgresFeedbackStore(postgres_url).add([make_event(kind="like", user_id="u", item_id="i", key="kept")])
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute("UPDATE recchat_meta SET value = 99 WHERE name = 'schema_version'")
    with pytest.raises(FeedbackStoreError, match="newer"):
        PostgresFeedbackStore(postgres_url)
    with psycopg.connect(postgres_url) as db:
        assert db.execute("SELECT key FROM events").fetchall() == [("kept",)]


def test_postgres_several_processes_opening_a_new_database_at_once_migrate_it_once(postgres_url):
    opener = "import sys\nfrom recchat.feedback.postgres import PostgresFeedbackStore as S\nS(sys.argv[1])"
    processes = [subprocess.Popen([sys.executable, "-c", opener, postgres_url], stderr=subprocess.PIPE, text=True)
                 for _ in range(4)]
    for process in processes:
        _, errors = process.communicate(timeout=120)
        assert process.returncode == 0, errors
    store = PostgresFeedbackStore(postgres_url)
    assert store.add([make_event(kind="like", user_id="u", item_id="i")]) == [True] and store.generation() == 0


def test_postgres_unreachable_is_a_clear_error_that_says_what_to_do():
    started = time.monotonic()
    with pytest.raises(FeedbackStoreError, match="services-up"):
        PostgresFeedbackStore("postgresql://recchat@127.0.0.1:1/recchat", connect_timeout_s=2)
    assert time.monotonic() - started < 10


def test_postgres_restarted_mid_run_loses_no_event_and_the_store_reconnects(postgres_url):
    from recchat import services as local

    store = PostgresFeedbackStore(postgres_url)
    assert store.add([make_event(kind="like", user_id="u", item_id="before", key="before")]) == [True]
    local.stop_postgres()
    try:
        with pytest.raises(FeedbackStoreError, match="services-up"):  # down: refused with a clear error, not lost
            store.add([make_event(kind="like", user_id="u", item_id="down", key="down")])
    finally:
        local.start_postgres(local.saved_state())
    assert store.add([make_event(kind="like", user_id="u", item_id="after", key="after")]) == [True]
    assert store.add([make_event(kind="like", user_id="u", item_id="down", key="down")]) == [True]  # the retry
    assert [event.key for event in store.events_after(0)] == ["before", "after", "down"]
