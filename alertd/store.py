"""The state store: one SQLite file (SPEC section 7).

It keeps what a restart must not forget: alert states (so firing alerts stay firing without a
second notification and pending ones keep their start), each ELEMENT socket's replay position
(``after=``), the planner's inbox (notices waiting for their group or for the end of quiet
hours), the outbox (messages not yet delivered), runtime silences and the alert history.
The daemon calls the store from one thread of its own (``store_thread``, through
``app._in_store``: one call at a time) and, for a few reads at start, a reload or from the
web page, from the event loop thread;
``using``, one lock, serialises every use of the connection and of the writes held with it,
so the two never race. ``alertd alerts`` and ``alertd silence`` open the same file from
other processes (``Store.open``, with a busy timeout: they may wait). The daemon opens it
with ``Store.open_daemon``: a lock file next to it (``PATH.lock``, holding the daemon's
pid) keeps a second daemon out; the file runs with a write-ahead log and
``synchronous=NORMAL``, so a commit is written (a ``kill -9`` keeps it) without waiting for
the disk, and a notification never waits for an fsync; ``checkpoint``, every second in a
thread and on a connection of its own, syncs the log into the file, so a power cut loses at
most that last second of writes, and the file stays whole (docs/operations.md). The busy
timeout is short, so that a lock held elsewhere never holds the store's thread, or a read
on the loop, for long. No descriptor of the file is ever closed while the daemon runs:
closing one drops every POSIX lock the process holds on the file, SQLite's included.

A write that fails for a reason that may pass (the file is locked, the disk is full, an I/O
error, read-only) raises ``StoreUnavailable`` (``commit``), or is held in memory and
written with the next write that succeeds (the delivery side: ``plan``, ``delivered``,
``retry``; the outbox as ``pending`` reads it already shows the held changes). The first
such failure logs one line, the first success after it one more (``trouble`` is the cause
meanwhile). A corrupt file, or one that is no longer a database, raises ``StoreFailed``:
the daemon stops.

Writes are batched: one transaction (``commit``) takes every alert that changed, the replay
positions and the notices made since the last one (while a commit is in flight the engine
goes on and its work waits for the next); ``plan`` moves the planner's messages from the
inbox to the outbox in one transaction, so a crash in between loses nothing.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import update_wrapper
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from alertd.errors import AlertdError
from alertd.model import AlertState, Notification
from alertd.notify.plan import Entry, Outgoing
from alertd.records import Offer, Position
from alertd.records import StoredAlert as StoredAlert  # its home is records.py

log = logging.getLogger("alertd.store")
DAEMON_BUSY_TIMEOUT = 0.05  # seconds the daemon's event loop may wait for another's lock
SQLITE_HEADER = b"SQLite format 3\x00"  # how every SQLite database file begins
NOT_A_DATABASE = "it is not a SQLite database (not an alertd state file)"
WAL_KEPT = 4 << 20  # bytes of write-ahead log kept on disk after a checkpoint
CLI_BUSY_TIMEOUT = 5.0  # alertd alerts / silence: a person waits, the daemon's writes are short
FATAL = ("SQLITE_CORRUPT", "SQLITE_NOTADB")  # the file is not a usable state file any more
_STATES = frozenset(AlertState)  # a row in another state (written by hand) is not an alert
P = ParamSpec("P")
R = TypeVar("R")


class StoreError(AlertdError):
    """The state file cannot be used as it is; the message names the file and the cause."""


class StateFileLocked(StoreError):
    """Another ``alertd run`` has the state file (one daemon per state file)."""


class StoreUnavailable(StoreError):
    """A write failed for a reason that may pass (locked, disk full, I/O error, read-only);
    what was to be written is still in the caller's hands."""


class StoreFailed(StoreError):
    """The state file is unusable while the daemon runs (corrupt, replaced, or failing for
    longer than the daemon waits): the daemon stops."""


def cause(error: sqlite3.Error | OSError) -> str:
    """Why SQLite (or the OS) refused, in words an operator can act on."""
    if isinstance(error, OSError):
        return error.strerror or str(error)
    name = getattr(error, "sqlite_errorname", "") or ""
    if name.startswith("SQLITE_BUSY") or name.startswith("SQLITE_LOCKED"):
        return "it is locked by another process (a long transaction elsewhere?)"
    if name.startswith("SQLITE_FULL"):
        return "the disk is full"
    if name == "SQLITE_READONLY_DBMOVED":
        return "the file was deleted or replaced"
    if name.startswith("SQLITE_READONLY"):
        return "it is read-only (check its permissions, its folder's and the file system's)"
    if name.startswith("SQLITE_NOTADB"):
        return NOT_A_DATABASE
    if name.startswith("SQLITE_CORRUPT"):
        return "it is corrupt (restore a backup, or move it away to start clean)"
    if name.startswith("SQLITE_CANTOPEN"):
        return "it cannot be opened (a missing folder, or no permission)"
    if name.startswith("SQLITE_IOERR"):
        return f"an I/O error ({error})"
    return str(error)

SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    rule TEXT NOT NULL, entity TEXT NOT NULL, state TEXT NOT NULL, since REAL NOT NULL,
    data TEXT NOT NULL, updated REAL NOT NULL, PRIMARY KEY (rule, entity));
CREATE TABLE IF NOT EXISTS cursors (
    source TEXT NOT NULL, socket TEXT NOT NULL, after TEXT NOT NULL,
    PRIMARY KEY (source, socket));
CREATE TABLE IF NOT EXISTS silences (
    id TEXT PRIMARY KEY, match TEXT NOT NULL, starts REAL NOT NULL, ends REAL NOT NULL,
    comment TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, channel TEXT NOT NULL, url TEXT NOT NULL,
    title TEXT NOT NULL, body TEXT NOT NULL, created REAL NOT NULL, due REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, notify_type TEXT NOT NULL DEFAULT 'info');
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (channel, due);
CREATE TABLE IF NOT EXISTS inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, channel TEXT NOT NULL, note TEXT NOT NULL,
    created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS history (
    at REAL NOT NULL, rule TEXT NOT NULL, entity TEXT NOT NULL, state TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS history_at ON history (at);
"""


def _data_version(db: sqlite3.Connection) -> int:
    """Changes when another connection commits (``PRAGMA data_version``), never by db's own."""
    return int(db.execute("PRAGMA data_version").fetchone()[0])


def _restart_log(db: sqlite3.Connection) -> int | None:
    """After a checkpoint that copied the whole log: one small write on the checkpointer's
    connection, so that SQLite starts the log over here, in the checkpoint's thread. The first
    write after a full checkpoint does that, and syncs the log's new header to the disk
    (1-2 ms); otherwise it is the daemon's next commit, and a notification waits for it.
    Returns ``_data_version`` as it was before the write (a write by anyone else since
    changes it), or None when the write did not happen: another connection was writing (the
    timeout is 0), or the write failed (a full disk), which is the daemon's next write's to
    report; the checkpoint itself succeeded. A damaged file is raised (``FATAL``)."""
    version = _data_version(db)
    try:
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT OR REPLACE INTO meta VALUES ('checkpointed_at', ?)",
                   (f"{time.time():.3f}",))
        db.execute("COMMIT")
    except sqlite3.Error as error:
        if db.in_transaction:
            db.execute("ROLLBACK")
        if (getattr(error, "sqlite_errorname", "") or "").startswith(FATAL):
            raise
        return None
    return version


def _lock(path: Path) -> int:
    """Take ``PATH.lock`` (an OS lock: released when the process ends, even by kill -9) and
    write our pid in it; raise ``StateFileLocked`` naming the other daemon's pid."""
    name = f"{path}.lock"
    try:
        fd = os.open(name, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise StoreError(f"state file {path}: cannot create the lock file {name}: "
                         f"{cause(error)}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        other = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise StateFileLocked(f"state file {path} is in use by another alertd run "
                              f"(pid {other}); one daemon per state file") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def note_json(note: Notification) -> str:
    fields = {f: getattr(note, f) for f in Notification.__dataclass_fields__}
    fields["labels"] = dict(note.labels)
    return json.dumps(fields, default=str)


def note_from_json(text: str) -> Notification:
    fields = json.loads(text)
    known = {k: v for k, v in fields.items() if k in Notification.__dataclass_fields__}
    return Notification(**known)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message for one URL of one channel, kept until it is delivered or given up."""

    id: int
    channel: str
    url: str
    title: str
    body: str
    created: float
    due: float
    attempts: int
    notify_type: str = "info"  # apprise's: info, success, warning or failure


@dataclass(frozen=True, slots=True)
class StoredSilence:
    id: str
    match: dict[str, str]
    starts: float
    ends: float
    comment: str
    created: float


def _add_outbox_notify_type(db: sqlite3.Connection) -> None:
    """Files written before the outbox kept apprise's notify type get the column (rows
    already queued are sent as "info", as they would have been)."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(outbox)")}
    if "notify_type" not in columns:
        db.execute("ALTER TABLE outbox ADD COLUMN notify_type TEXT NOT NULL DEFAULT 'info'")


def _serialised(method: Callable[Concatenate[Store, P], R]) -> Callable[Concatenate[Store, P], R]:
    """One use of the connection (and of the writes held with it) at a time: the daemon's
    writer thread and the event loop thread share them."""
    def serialised(self: Store, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with self.using:
            return method(self, *args, **kwargs)
    update_wrapper(serialised, method)
    return serialised


class Store:
    """The SQLite state file. Open with ``Store.open(path)`` (commands) or
    ``Store.open_daemon(path)`` (``alertd run``); close with ``close()``."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self.db = connection
        self.path = path
        self.trouble: str | None = None  # why writes fail, while they do
        self.identity: tuple[int, int] | None = None  # (device, inode) of the file opened
        self._lock: int | None = None  # the daemon's lock file descriptor
        self._held: list[tuple[str, list[tuple[Any, ...]]]] = []  # writes not yet written
        self._gone: set[int] = set()  # outbox rows delivered, their delete held
        self._due: dict[int, tuple[float, int]] = {}  # retries held: (due, attempts added)
        self._read: dict[object, Any] = {}  # the last answer of a read, for when one fails
        self._checkpointer: sqlite3.Connection | None = None  # checkpoint()'s connection
        self._checkpoint_trouble: str | None = None  # why the last checkpoint failed
        self._checkpointing = threading.Lock()  # held by checkpoint(), its own thread
        # the checkpointer's PRAGMA data_version after it restarted the log: unchanged, no
        # other connection has written since, and there is nothing to checkpoint
        self._restarted: int | None = None
        self._file: int | None = None  # the daemon's descriptor of the file (checkpoint)
        self.using = threading.RLock()  # held by whichever thread uses the connection
        # held by a write of this connection, and by the checkpointer while it starts the log
        # over (its write syncs the log's header, under SQLite's write lock): each waits for
        # the other here, instead of a write failing at the busy timeout when the disk is
        # slow (it was then retried a quarter of a second later, its notifications with it)
        self._restarting = threading.RLock()

    @classmethod
    def open(cls, path: str | Path, busy_timeout: float = CLI_BUSY_TIMEOUT) -> Store:
        path = Path(path)
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(str(path), timeout=busy_timeout, isolation_level=None,
                             check_same_thread=False)
        db.executescript(SCHEMA)
        _add_outbox_notify_type(db)
        return cls(db, path)

    @classmethod
    def open_daemon(cls, path: str | Path) -> Store:
        """The daemon's store: locked against a second daemon, a write-ahead log, a short
        busy timeout, and a write tried at once. Raises ``StoreError`` (one line naming the
        file and the cause) when it cannot be used."""
        path = Path(path)
        if path.is_dir():
            raise StoreError(f"state file {path}: it is a folder")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreError(f"state file {path}: cannot create its folder {path.parent}: "
                             f"{cause(error)}") from None
        lock = _lock(path)
        try:
            db = sqlite3.connect(str(path), timeout=DAEMON_BUSY_TIMEOUT,
                                 isolation_level=None, check_same_thread=False)
            store = cls(db, path)
            store._lock = lock
        except sqlite3.Error as error:
            os.close(lock)
            raise StoreError(f"state file {path}: {cause(error)}") from None
        try:
            store._prepare()
            # checkpoint()'s own connection, opened now: opened later, after the file was
            # deleted, it would create a new one at the path
            store._checkpointer = sqlite3.connect(str(path), timeout=0, isolation_level=None,
                                                  check_same_thread=False)
            # its log restart syncs the log's header, not its commit as well (FULL would)
            store._checkpointer.execute("PRAGMA synchronous=NORMAL")
            # the write that starts the log over cuts it back to WAL_KEPT at its commit
            # (SQLite's journal_size_limit, per connection), and cutting a file short takes
            # milliseconds: the restart's, in the checkpoint's thread (``_prepare``)
            store._checkpointer.execute(f"PRAGMA journal_size_limit={WAL_KEPT}")
            # the file's first bytes, read through a descriptor kept open: closing any
            # descriptor of the file would drop every POSIX lock this process holds on it,
            # SQLite's included, and another connection could then reset the log under us
            store._file = os.open(path, os.O_RDONLY)
        except (sqlite3.Error, OSError) as error:
            store.close()
            raise StoreError(f"state file {path}: {cause(error)}") from None
        return store

    def _prepare(self) -> None:
        for attempt in range(40):  # a command may have the file open for a moment
            try:
                mode = self.db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                break
            except sqlite3.OperationalError as error:
                if attempt == 39 or not cause(error).startswith("it is locked"):
                    raise
                time.sleep(0.05)
        if mode != "wal":  # a file system without shared memory: every commit syncs
            log.warning("state file %s: cannot use a write-ahead log (journal mode %s); "
                        "each write waits for the disk", self.path, mode)
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA wal_autocheckpoint=0")  # checkpoint() does it, off the writes
        # never cut by a commit that a notification waits for: the checkpoint cuts it
        self.db.execute("PRAGMA journal_size_limit=-1")
        self.db.execute("PRAGMA mmap_size=0")
        self.db.executescript(SCHEMA)
        with self.transaction() as db:  # a state file the daemon cannot write fails now
            db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            db.execute("INSERT OR REPLACE INTO meta VALUES ('daemon_pid', ?)",
                       (str(os.getpid()),))
        status = os.stat(self.path)
        self.identity = (status.st_dev, status.st_ino)

    def checkpoint(self) -> None:
        """Copy what the write-ahead log holds into the file, syncing both to the disk: the
        writes before it now survive a power cut. Runs on its own connection, in its own
        thread, beside the writes (which never wait for the disk themselves); a failure is
        logged once per cause and tried again at the next checkpoint."""
        with self._checkpointing:
            self._checkpoint()

    def _checkpoint(self) -> None:
        if self._checkpointer is None or self.replaced() is not None:
            return  # not the daemon's store, or closed; a file gone stops the daemon anyway
        try:
            head = os.pread(self._file, len(SQLITE_HEADER), 0) if self._file is not None \
                else SQLITE_HEADER
        except OSError:
            head = SQLITE_HEADER  # unreadable for a moment: the checkpoint below says why
        if head != SQLITE_HEADER:  # overwritten: a checkpoint would mend only some pages
            raise StoreFailed(f"state file {self.path}: {NOT_A_DATABASE}")
        db = self._checkpointer
        try:
            if self._restarted is not None and _data_version(db) == self._restarted:
                return  # nothing written since but its own restart (below): an idle daemon
            busy, frames, copied = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            self._restarted = None
            if not busy and frames > 0 and copied == frames:
                with self._restarting:
                    self._restarted = _restart_log(db)
        except sqlite3.Error as error:
            fatal = self._fatal(error)
            if fatal is not None:
                raise fatal from None
            if cause(error) != self._checkpoint_trouble:
                self._checkpoint_trouble = cause(error)
                log.warning("state file %s: cannot copy the write-ahead log into the file: "
                            "%s; writes go on, and it is tried again", self.path,
                            self._checkpoint_trouble)
            return
        self._checkpoint_trouble = None

    @_serialised
    def close(self) -> None:
        with self._checkpointing:  # one in flight in its thread ends first
            if self._checkpointer is not None:
                self._checkpointer.close()
                self._checkpointer = None
        self.db.close()
        if self._file is not None:  # after SQLite's connections (see open_daemon)
            os.close(self._file)
            self._file = None
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def replaced(self) -> str | None:
        """Why the path no longer leads to the file the daemon has open (deleted, replaced),
        or None while it does."""
        if self.identity is None:
            return None
        try:
            status = os.stat(self.path)
        except FileNotFoundError:
            return "the file was deleted"
        except OSError as error:
            return f"the file cannot be checked: {cause(error)}"
        if (status.st_dev, status.st_ino) != self.identity:
            return "the file was replaced by another one"
        return None

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.using, self._restarting:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
                self.db.execute("COMMIT")
            except BaseException:
                if self.db.in_transaction:  # a failed COMMIT may have rolled back already
                    try:
                        self.db.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass  # the error being raised says more
                raise

    # ---- failures ----------------------------------------------------------------------

    def _fatal(self, error: sqlite3.Error) -> StoreFailed | None:
        """The daemon's end, when the error says the file is no longer a usable database."""
        if (getattr(error, "sqlite_errorname", "") or "").startswith(FATAL):
            return StoreFailed(f"state file {self.path}: {cause(error)}")
        return None

    def _failed(self, error: sqlite3.Error) -> StoreError:
        """The exception to raise for a failed write, after logging its first line."""
        fatal = self._fatal(error)
        if fatal is not None:
            return fatal
        if self.trouble is None:
            self.trouble = cause(error)
            log.error("state file %s: cannot write: %s; keeping the work in memory and "
                      "retrying", self.path, self.trouble)
        return StoreUnavailable(f"state file {self.path}: {cause(error)}")

    def _written(self) -> None:
        if self.trouble is not None:
            log.warning("state file %s: writing again (%s no longer)", self.path,
                        "locked" if self.trouble.startswith("it is locked") else "failing")
            self.trouble = None
        self._held.clear()
        self._gone.clear()
        self._due.clear()

    def _write(self, statements: list[tuple[str, list[tuple[Any, ...]]]]) -> None:
        """Write now, with whatever is held; if that fails for a reason that may pass, hold
        it all for the next write (``flush``). Raises ``StoreFailed`` for a corrupt file."""
        self._held.extend(statements)
        self.flush()

    @_serialised
    def flush(self) -> bool:
        """Write what is held; True when nothing is held any more."""
        if not self._held:
            return True
        try:
            with self.transaction() as db:
                for sql, rows in self._held:
                    db.executemany(sql, rows)
        except sqlite3.Error as error:
            failure = self._failed(error)
            if isinstance(failure, StoreFailed):
                raise failure from None
            return False
        self._written()
        return True

    @property
    def held(self) -> bool:
        return bool(self._held)

    @_serialised
    def _reading(self, key: object, query: str, args: tuple[Any, ...] = ()) -> list[Any]:
        """Rows of a read; when the file is locked for reading (an exclusive lock elsewhere)
        or failing, the last rows read for the same question, so the daemon goes on."""
        try:
            rows = self.db.execute(query, args).fetchall()
        except sqlite3.OperationalError as error:
            if key not in self._read:
                raise self._failed(error) from None
            rows = self._read[key]
        else:
            self._read[key] = rows
        return list(rows)

    # ---- alerts ------------------------------------------------------------------------

    @_serialised
    def commit(self, alerts: Iterable[StoredAlert], positions: Iterable[Position],
               made: Iterable[Notification], now: float,
               offers: Iterable[Offer] = ()) -> list[int]:
        """One wake-up of the engine loop in one transaction: changed alerts (inactive ones
        removed), the replay positions of the frames evaluated, the notifications made (the
        history), and each offer of a notification to a channel for the planner's inbox.
        Returns the inbox ids, in the order of ``offers``."""
        ids: list[int] = []
        try:
            with self.transaction() as db:
                for sql, rows in self._held:
                    db.executemany(sql, rows)
                self._commit(db, ids, alerts, positions, made, now, offers)
        except sqlite3.Error as error:
            raise self._failed(error) from None
        self._written()
        return ids

    @staticmethod
    def _commit(db: sqlite3.Connection, ids: list[int], alerts: Iterable[StoredAlert],
                positions: Iterable[Position], made: Iterable[Notification], now: float,
                offers: Iterable[Offer]) -> None:
        for offer in offers:
            done = db.execute("INSERT INTO inbox (channel, note, created) VALUES (?, ?, ?)",
                              (offer.channel, note_json(offer.note), now))
            ids.append(int(done.lastrowid or 0))
        for alert in alerts:
            if alert.state == AlertState.INACTIVE:
                db.execute("DELETE FROM alerts WHERE rule = ? AND entity = ?",
                           (alert.rule, alert.entity))
            else:
                db.execute("INSERT OR REPLACE INTO alerts VALUES (?, ?, ?, ?, ?, ?)",
                           (alert.rule, alert.entity, str(alert.state), alert.since,
                            json.dumps(alert.data), now))
        db.executemany("INSERT OR REPLACE INTO cursors VALUES (?, ?, ?)",
                       [(p.source, p.socket, p.after) for p in positions])
        db.executemany("INSERT INTO history VALUES (?, ?, ?, ?)",
                       [(n.at, n.rule, n.entity, str(n.state)) for n in made])

    @_serialised
    def prune(self, before: float) -> int:
        """Forget notifications, and silences that ended, before ``before``; how many
        notifications went."""
        try:
            with self.transaction() as db:
                db.execute("DELETE FROM silences WHERE ends < ?", (before,))
                return db.execute("DELETE FROM history WHERE at < ?", (before,)).rowcount
        except sqlite3.Error as error:
            raise self._failed(error) from None

    def load_alerts(self) -> list[StoredAlert]:
        rows = self._reading("alerts", "SELECT rule, entity, state, since, data FROM alerts "
                             "ORDER BY rule, entity")
        return [StoredAlert(r[0], r[1], AlertState(r[2]), r[3], json.loads(r[4]))
                for r in rows if r[2] in _STATES]

    # ---- the planner's inbox and the outbox -----------------------------------------------

    def inbox(self) -> list[Entry]:
        """Notifications offered to the planner and not yet sent or dropped, oldest first."""
        rows = self._reading("inbox", "SELECT id, channel, note FROM inbox ORDER BY id")
        return [Entry(row[0], row[1], note_from_json(row[2])) for row in rows]

    @_serialised
    def plan(self, deliveries: Iterable[Outgoing], consumed: Iterable[int],
             now: float) -> None:
        """The planner's step in one transaction: messages into the outbox (due now), and
        the inbox rows they (or a silence) used up removed, so a crash in between loses
        nothing."""
        self._write([("INSERT INTO outbox (channel, url, title, body, created, due, "
                      "notify_type) VALUES (?, ?, ?, ?, ?, ?, ?)",
                      [(d.channel, d.url, d.title, d.body, now, now, str(d.notify_type))
                       for d in deliveries]),
                     ("DELETE FROM inbox WHERE id = ?", [(i,) for i in consumed])])

    @_serialised
    def pending(self, channel: str, url: str | None = None) -> list[Delivery]:
        """The channel's deliveries (to one of its URLs, if given), soonest due first."""
        query = "SELECT id, channel, url, title, body, created, due, attempts, notify_type " \
                "FROM outbox WHERE channel = ?"
        args: tuple[str, ...] = (channel,)
        if url is not None:
            query, args = query + " AND url = ?", (channel, url)
        rows = self._reading(("pending", channel, url), query + " ORDER BY due, id", args)
        found = [Delivery(*row) for row in rows if row[0] not in self._gone]
        if self._due:  # retries held in memory: their new due times
            found = sorted((replace(d, due=self._due[d.id][0],
                                    attempts=d.attempts + self._due[d.id][1])
                            if d.id in self._due else d for d in found),
                           key=lambda d: (d.due, d.id))
        return found

    def queued(self) -> dict[str, int]:
        """How many messages wait in the outbox, per channel. ``/metrics`` asks from the event
        loop: while the store's thread is in a call (a commit), the last count."""
        if not self.using.acquire(blocking=False):
            if "queued" in self._read:
                return {channel: count for channel, count in self._read["queued"]}
            self.using.acquire()
        try:
            rows = self._reading("queued",
                                 "SELECT channel, COUNT(*) FROM outbox GROUP BY channel")
        finally:
            self.using.release()
        return {channel: count for channel, count in rows}

    @_serialised
    def delivered(self, delivery_id: int) -> None:
        self._forget_read(delivery_id)
        self._gone.add(delivery_id)
        self._write([("DELETE FROM outbox WHERE id = ?", [(delivery_id,)])])

    @_serialised
    def retry(self, delivery_id: int, due: float) -> None:
        self._forget_read(delivery_id)
        self._write([("UPDATE outbox SET due = ?, attempts = attempts + 1 WHERE id = ?",
                      [(due, delivery_id)])])
        if self._held:
            self._due[delivery_id] = (due, self._due.get(delivery_id, (0.0, 0))[1] + 1)

    def _forget_read(self, delivery_id: int) -> None:
        """An outbox row that changed is dropped from the answers kept for a failed read, so
        that a locked file never makes a delivered message look pending again."""
        for key, rows in self._read.items():
            if isinstance(key, tuple) and key[0] == "pending":
                self._read[key] = [row for row in rows if row[0] != delivery_id]

    @_serialised
    def orphans(self, channels: Mapping[str, Iterable[str]]) -> int:
        """Drop what waits for a channel (or a channel's URL) no longer configured; how many
        outbox deliveries were dropped. ``channels`` maps each channel to its URLs."""
        names = list(channels)
        pairs = {(name, url) for name, urls in channels.items() for url in urls}
        marks = ",".join("?" * len(names)) or "''"
        try:
            with self.transaction() as db:
                db.execute(f"DELETE FROM inbox WHERE channel NOT IN ({marks})", names)
                gone = [(row[0],) for row in db.execute("SELECT id, channel, url FROM outbox")
                        if (row[1], row[2]) not in pairs]
                db.executemany("DELETE FROM outbox WHERE id = ?", gone)
        except sqlite3.Error as error:
            raise self._failed(error) from None
        return len(gone)

    # ---- replay positions --------------------------------------------------------------

    @_serialised
    def save_cursor(self, source: str, socket: str, after: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO cursors VALUES (?, ?, ?)",
                        (source, socket, after))

    @_serialised
    def load_cursor(self, source: str, socket: str) -> str | None:
        row = self.db.execute("SELECT after FROM cursors WHERE source = ? AND socket = ?",
                              (source, socket)).fetchone()
        return None if row is None else str(row[0])

    @_serialised
    def load_cursors(self, source: str) -> dict[str, str]:
        """Every position saved for one source, by socket (or ``tracker/ID`` for Navixy)."""
        rows = self.db.execute("SELECT socket, after FROM cursors WHERE source = ?",
                               (source,)).fetchall()
        return {str(socket): str(after) for socket, after in rows}

    # ---- runtime silences ---------------------------------------------------------------

    @_serialised
    def add_silence(self, match: dict[str, str], starts: float, ends: float, comment: str,
                    now: float) -> StoredSilence:
        silence = StoredSilence(uuid.uuid4().hex[:8], dict(match), starts, ends, comment, now)
        self.db.execute("INSERT INTO silences VALUES (?, ?, ?, ?, ?, ?)",
                        (silence.id, json.dumps(silence.match), starts, ends, comment, now))
        return silence

    def silences(self, now: float | None = None) -> list[StoredSilence]:
        """All silences, or those not yet ended at ``now``."""
        query = "SELECT id, match, starts, ends, comment, created FROM silences"
        args: tuple[Any, ...] = ()
        if now is not None:
            query += " WHERE ends > ?"
            args = (now,)
        rows = self._reading("silences" if now is None else "silences-active",
                             query + " ORDER BY starts, id", args)
        return [StoredSilence(r[0], json.loads(r[1]), r[2], r[3], r[4], r[5]) for r in rows]

    @_serialised
    def expire_silence(self, silence_id: str, now: float) -> bool:
        """End a silence now; False when no active silence has that id."""
        done = self.db.execute("UPDATE silences SET ends = ? WHERE id = ? AND ends > ?",
                               (now, silence_id, now))
        return done.rowcount > 0
