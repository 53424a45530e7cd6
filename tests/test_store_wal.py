"""The daemon's state file runs with a write-ahead log (docs/operations.md, "The state
file"): a commit is written, not synced, so a notification never waits for the disk; a
checkpoint in its own thread syncs the log into the file every second. These tests read the
file as a power cut would leave it: the main file alone, without its log."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from alertd.store import Store, StoreFailed


def silences_in_the_file_alone(state: Path, tmp_path: Path) -> list[str]:
    """The silences a copy of the main file holds without its write-ahead log: what a power
    cut would leave once the operating system's cache is gone."""
    alone = tmp_path / "alone.db"
    shutil.copyfile(state, alone)
    db = sqlite3.connect(alone)
    try:
        rows = db.execute("SELECT comment FROM silences").fetchall()
    except sqlite3.OperationalError:  # no such table: even the schema is in the log only
        rows = []
    finally:
        db.close()
    return [row[0] for row in rows]


def test_a_checkpoint_puts_the_writes_into_the_file_itself(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    store = Store.open_daemon(state)
    try:
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        store.add_silence({"rule": "warm"}, 0.0, 3600.0, "maintenance", 0.0)
        assert [s.comment for s in store.silences()] == ["maintenance"]  # written
        assert silences_in_the_file_alone(state, tmp_path) == []  # in the log only
        store.checkpoint()
        assert silences_in_the_file_alone(state, tmp_path) == ["maintenance"]
    finally:
        store.close()


def test_a_state_file_with_a_rollback_journal_is_switched_to_a_log_and_keeps_its_data(
        tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    older = Store.open(state)  # as an older alertd, or a command, made it
    older.db.execute("PRAGMA journal_mode=TRUNCATE")
    older.add_silence({"rule": "warm"}, 0.0, 3600.0, "kept", 0.0)
    older.close()
    store = Store.open_daemon(state)
    try:
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert [s.comment for s in store.silences()] == ["kept"]
    finally:
        store.close()


def test_a_state_file_overwritten_under_the_daemon_stops_it_at_the_next_checkpoint(
        tmp_path: Path) -> None:
    """A checkpoint would copy the pages the log holds over the damage and leave the rest:
    it refuses instead, and the daemon stops with the same line as at a failed write."""
    state = tmp_path / "state.db"
    store = Store.open_daemon(state)
    try:
        store.add_silence({"rule": "warm"}, 0.0, 3600.0, "x", 0.0)
        with open(state, "r+b") as file:
            file.write(b"this is not a database any more" * 200)
        with pytest.raises(StoreFailed, match="it is not a SQLite database"):
            store.checkpoint()
    finally:
        store.close()


FAILING_CHECKPOINT = textwrap.dedent("""\
    import logging, os, resource, shutil, sqlite3, sys
    from alertd.store import Store
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    state = sys.argv[1]
    store = Store.open_daemon(state)
    store.add_silence({"rule": "warm"}, 0.0, 3600.0, "after the trouble", 0.0)
    size = os.path.getsize(state)  # the file may not grow: the checkpoint cannot write
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, resource.RLIM_INFINITY))
    store.checkpoint()
    store.checkpoint()
    print("wrote", store.silences()[0].comment)  # the daemon's writes went on meanwhile
    resource.setrlimit(resource.RLIMIT_FSIZE,
                       (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    store.checkpoint()
    shutil.copyfile(state, state + ".alone")
    with sqlite3.connect(state + ".alone") as db:
        print("file", db.execute("SELECT comment FROM silences").fetchall())
    store.close()
""")


def test_a_checkpoint_that_cannot_write_says_so_once_and_catches_up(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    done = subprocess.run([sys.executable, "-c", FAILING_CHECKPOINT, str(state)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "write-ahead log" in line]
    assert len(warnings) == 1, done.stderr
    assert warnings[0].startswith(f"state file {state}: cannot copy the write-ahead log into "
                                  "the file: "), warnings
    assert done.stdout.splitlines() == ["wrote after the trouble",
                                        "file [('after the trouble',)]"], done.stdout


def log_header(state: Path) -> bytes:
    """The write-ahead log's checkpoint sequence number and salts: new each time SQLite
    starts the log over (and syncs that header to the disk)."""
    with open(f"{state}-wal", "rb") as log:
        return log.read(24)[12:]


@pytest.fixture
def daemon_store(tmp_path: Path) -> Iterator[tuple[Path, Store]]:
    """A state file as the daemon opens it, and its path."""
    state = tmp_path / "state.db"
    store = Store.open_daemon(state)
    yield state, store
    store.close()


def test_the_checkpoint_starts_the_log_over_so_the_next_write_does_not_wait_for_the_disk(
        daemon_store: tuple[Path, Store], tmp_path: Path) -> None:
    """The first write after a checkpoint that emptied the log starts it over and syncs its
    header: the checkpoint's thread does that itself, not the daemon's next commit (which a
    notification may be waiting for)."""
    state, store = daemon_store
    store.add_silence({"rule": "warm"}, 0.0, 3600.0, "first", 0.0)
    before = log_header(state)
    store.checkpoint()
    restarted = log_header(state)
    assert restarted != before
    store.add_silence({"rule": "warm"}, 0.0, 3600.0, "second", 0.0)
    assert log_header(state) == restarted  # appended to the log as it was
    store.checkpoint()
    assert silences_in_the_file_alone(state, tmp_path) == ["first", "second"]


def test_an_idle_checkpoint_writes_nothing_and_a_commands_write_is_still_synced(
        daemon_store: tuple[Path, Store], tmp_path: Path) -> None:
    state, store = daemon_store
    store.add_silence({"rule": "warm"}, 0.0, 3600.0, "daemon", 0.0)
    store.checkpoint()
    log = Path(f"{state}-wal").read_bytes()
    store.checkpoint()
    store.checkpoint()
    assert Path(f"{state}-wal").read_bytes() == log  # nothing new: nothing done
    command = Store.open(state)  # `alertd silence add`, while the daemon is idle
    command.add_silence({"rule": "cold"}, 0.0, 3600.0, "command", 0.0)
    command.close()
    store.checkpoint()
    assert silences_in_the_file_alone(state, tmp_path) == ["daemon", "command"]


def test_a_checkpoint_beside_a_write_in_progress_leaves_the_log_to_that_write(
        daemon_store: tuple[Path, Store], tmp_path: Path) -> None:
    """The checkpoint never waits for the write lock: another process writing (a command, a
    long transaction) keeps it, and the log is started over by that write instead."""
    state, store = daemon_store
    other = sqlite3.connect(state, isolation_level=None)
    try:
        store.add_silence({"rule": "warm"}, 0.0, 3600.0, "daemon", 0.0)
        other.execute("BEGIN IMMEDIATE")
        store.checkpoint()  # copies the log; cannot start it over: no error, no wait
        assert silences_in_the_file_alone(state, tmp_path) == ["daemon"]
        other.execute("UPDATE silences SET comment = 'changed'")
        other.execute("COMMIT")
        store.checkpoint()
        assert silences_in_the_file_alone(state, tmp_path) == ["changed"]
    finally:
        other.close()


def test_a_checkpoint_whose_restart_write_fails_still_counts_and_says_nothing(
        daemon_store: tuple[Path, Store], tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    """The log's restart is the checkpoint's own small write; when it fails (a full disk,
    here a trigger refusing it), the copy into the file still happened and no checkpoint
    trouble is reported: the daemon's next write restarts the log, and reports its own."""
    state, store = daemon_store
    store.db.execute("CREATE TRIGGER refuse BEFORE INSERT ON meta WHEN NEW.key = "
                     "'checkpointed_at' BEGIN SELECT RAISE(FAIL, 'refused'); END")
    store.add_silence({"rule": "warm"}, 0.0, 3600.0, "kept", 0.0)
    store.checkpoint()
    assert silences_in_the_file_alone(state, tmp_path) == ["kept"]
    assert not [r for r in caplog.records if "write-ahead log" in r.getMessage()]
    store.add_silence({"rule": "warm"}, 0.0, 3600.0, "after", 0.0)
    store.checkpoint()
    assert silences_in_the_file_alone(state, tmp_path) == ["kept", "after"]


def test_a_write_meeting_the_logs_restart_on_a_slow_disk_waits_for_it_and_fails_not(
        daemon_store: tuple[Path, Store], caplog: pytest.LogCaptureFixture) -> None:
    """The checkpoint's restart of the log holds SQLite's write lock while it syncs the log's
    header: on a slow disk longer than the daemon's busy timeout (50 ms). A write of the
    daemon meanwhile waits for it and succeeds, instead of failing, logging that the file
    is locked by another process, and coming back a quarter of a second later with the
    notifications it carries. The disk is made slow by the restart's own write (0.3 s)."""
    state, store = daemon_store
    restarting = threading.Event()

    def slow() -> None:
        restarting.set()
        time.sleep(0.3)

    assert store._checkpointer is not None  # private: the restart's connection
    store._checkpointer.create_function("slow_disk", 0, slow)
    store.db.execute("CREATE TRIGGER slow BEFORE INSERT ON meta WHEN NEW.key = "
                     "'checkpointed_at' BEGIN SELECT slow_disk(); END")
    store.add_silence({"rule": "warm"}, 0.0, 3600.0, "before", 0.0)
    checkpoint = threading.Thread(target=store.checkpoint)
    checkpoint.start()
    try:
        assert restarting.wait(10)
        started = time.monotonic()
        assert store.commit([], [], [], 1.0) == []  # raised StoreUnavailable before
        assert time.monotonic() - started >= 0.1  # it did wait for the restart
    finally:
        checkpoint.join()
    assert store.trouble is None
    assert not [r for r in caplog.records if "cannot write" in r.getMessage()]


def wal_size(state: Path) -> int:
    return Path(f"{state}-wal").stat().st_size


def test_the_log_is_cut_back_by_the_checkpoint_and_never_by_a_commit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a burst of writes the log is longer than alertd keeps (``WAL_KEPT``). The write
    that starts the log over cuts it back to that size, and cutting a file short can take
    milliseconds (4-6 ms on this machine's disk, every other second in the latency run): the
    checkpoint's own restart does it. When a commit of the daemon restarts the log instead (a
    command held the write lock during the checkpoint), the commit leaves the log's length
    as it is, and the next checkpoint cuts it."""
    monkeypatch.setattr("alertd.store.WAL_KEPT", 64 << 10)
    state = tmp_path / "state.db"
    store = Store.open_daemon(state)
    try:
        def burst(comment: str) -> None:
            for n in range(40):
                store.add_silence({"rule": "warm"}, 0.0, 3600.0, f"{comment} {n} " + "x" * 8000,
                                  0.0)

        burst("first")
        assert wal_size(state) > 4 * (64 << 10)
        store.checkpoint()  # copies the log, starts it over: and cuts it back
        assert wal_size(state) <= 64 << 10
        burst("second")
        grown = wal_size(state)
        other = sqlite3.connect(state, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            store.checkpoint()  # copies the log; cannot start it over
            other.execute("COMMIT")
        finally:
            other.close()
        header = log_header(state)
        store.add_silence({"rule": "warm"}, 0.0, 3600.0, "restarts the log", 0.0)
        assert log_header(state) != header  # this commit started the log over ...
        assert wal_size(state) == grown  # ... and did not cut it
        store.checkpoint()
        assert wal_size(state) <= 64 << 10
        assert len(silences_in_the_file_alone(state, tmp_path)) == 81
    finally:
        store.close()
