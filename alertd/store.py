"""The state store: one SQLite file (SPEC section 7).

It keeps what a restart must not forget: alert states (so firing alerts stay firing without a
second notification and pending ones keep their start), each ELEMENT socket's replay position
(``after=``), the planner's inbox (notices waiting for their group or for the end of quiet
hours), the outbox (messages not yet delivered), runtime silences and the alert history.
The daemon writes from its one event loop thread; ``alertd alerts`` and ``alertd silence``
open the same file from another process, so the database runs in WAL mode with a busy
timeout.

Writes are batched per wake-up of the loop: one transaction (``commit``) takes every alert
that changed, the replay positions and the notices made, so a million messages do not mean
a million fsyncs; ``plan`` moves the planner's messages from the inbox to the outbox in one
transaction, so a crash in between loses nothing.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alertd.model import Notification

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


def note_json(note: Notification) -> str:
    fields = {f: getattr(note, f) for f in Notification.__dataclass_fields__}
    fields["labels"] = dict(note.labels)
    return json.dumps(fields, default=str)


def note_from_json(text: str) -> Notification:
    fields = json.loads(text)
    known = {k: v for k, v in fields.items() if k in Notification.__dataclass_fields__}
    return Notification(**known)


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """An alert as persisted: its state and the engine's data to resume it (JSON-able)."""

    rule: str
    entity: str
    state: str
    since: float
    data: dict[str, Any]


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


class Store:
    """The SQLite state file. Open with ``Store.open(path)``; close with ``close()``."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self.db = connection
        self.path = path

    @classmethod
    def open(cls, path: str | Path) -> Store:
        path = Path(path)
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(str(path), timeout=5.0, isolation_level=None,
                             check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(SCHEMA)
        _add_outbox_notify_type(db)
        return cls(db, path)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # ---- alerts ------------------------------------------------------------------------

    def commit(self, alerts: Iterable[StoredAlert], cursors: dict[tuple[str, str], str],
               history: Iterable[tuple[float, str, str, str]], now: float,
               inbox: Iterable[tuple[str, Notification]] = ()) -> list[int]:
        """One wake-up of the engine loop in one transaction: changed alerts (inactive ones
        removed), the replay positions of the frames evaluated, the notifications made, and
        each (channel, notification) for the planner's inbox. Returns the inbox ids."""
        ids: list[int] = []
        with self.transaction() as db:
            for channel, note in inbox:
                done = db.execute("INSERT INTO inbox (channel, note, created) VALUES (?, ?, ?)",
                                  (channel, note_json(note), now))
                ids.append(int(done.lastrowid or 0))
            for alert in alerts:
                if alert.state == "inactive":
                    db.execute("DELETE FROM alerts WHERE rule = ? AND entity = ?",
                               (alert.rule, alert.entity))
                else:
                    db.execute("INSERT OR REPLACE INTO alerts VALUES (?, ?, ?, ?, ?, ?)",
                               (alert.rule, alert.entity, alert.state, alert.since,
                                json.dumps(alert.data), now))
            db.executemany("INSERT OR REPLACE INTO cursors VALUES (?, ?, ?)",
                           [(source, socket, after) for (source, socket), after
                            in cursors.items()])
            db.executemany("INSERT INTO history VALUES (?, ?, ?, ?)", history)
        return ids

    def prune(self, before: float) -> int:
        """Forget notifications, and silences that ended, before ``before``; how many
        notifications went."""
        with self.transaction() as db:
            db.execute("DELETE FROM silences WHERE ends < ?", (before,))
            return db.execute("DELETE FROM history WHERE at < ?", (before,)).rowcount

    def load_alerts(self) -> list[StoredAlert]:
        rows = self.db.execute("SELECT rule, entity, state, since, data FROM alerts "
                               "ORDER BY rule, entity").fetchall()
        return [StoredAlert(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]

    # ---- the planner's inbox and the outbox -----------------------------------------------

    def inbox(self) -> list[tuple[int, str, Notification]]:
        """Notifications offered to the planner and not yet sent or dropped, oldest first."""
        rows = self.db.execute("SELECT id, channel, note FROM inbox ORDER BY id").fetchall()
        return [(row[0], row[1], note_from_json(row[2])) for row in rows]

    def plan(self, deliveries: Iterable[tuple[str, ...]], consumed: Iterable[int],
             now: float) -> None:
        """The planner's step in one transaction: messages into the outbox, and the inbox
        rows they (or a silence) used up removed, so a crash in between loses nothing.
        Each delivery is (channel, url, title, body[, notify type]); the type is "info"
        when not given."""
        with self.transaction() as db:
            db.executemany("INSERT INTO outbox (channel, url, title, body, created, due, "
                           "notify_type) VALUES (?, ?, ?, ?, ?, ?, ?)",
                           [(*d[:4], now, now, d[4] if len(d) > 4 else "info")
                            for d in deliveries])
            db.executemany("DELETE FROM inbox WHERE id = ?", [(i,) for i in consumed])

    def pending(self, channel: str, url: str | None = None) -> list[Delivery]:
        """The channel's deliveries (to one of its URLs, if given), soonest due first."""
        query = "SELECT id, channel, url, title, body, created, due, attempts, notify_type " \
                "FROM outbox WHERE channel = ?"
        args: tuple[str, ...] = (channel,)
        if url is not None:
            query, args = query + " AND url = ?", (channel, url)
        rows = self.db.execute(query + " ORDER BY due, id", args).fetchall()
        return [Delivery(*row) for row in rows]

    def queued(self) -> dict[str, int]:
        """How many messages wait in the outbox, per channel."""
        rows = self.db.execute("SELECT channel, COUNT(*) FROM outbox GROUP BY channel")
        return {channel: count for channel, count in rows.fetchall()}

    def delivered(self, delivery_id: int) -> None:
        self.db.execute("DELETE FROM outbox WHERE id = ?", (delivery_id,))

    def retry(self, delivery_id: int, due: float) -> None:
        self.db.execute("UPDATE outbox SET due = ?, attempts = attempts + 1 WHERE id = ?",
                        (due, delivery_id))

    def orphans(self, channels: Mapping[str, Iterable[str]]) -> int:
        """Drop what waits for a channel (or a channel's URL) no longer configured; how many
        outbox deliveries were dropped. ``channels`` maps each channel to its URLs."""
        names = list(channels)
        pairs = {(name, url) for name, urls in channels.items() for url in urls}
        marks = ",".join("?" * len(names)) or "''"
        self.db.execute(f"DELETE FROM inbox WHERE channel NOT IN ({marks})", names)
        gone = [(row[0],) for row in self.db.execute("SELECT id, channel, url FROM outbox")
                if (row[1], row[2]) not in pairs]
        self.db.executemany("DELETE FROM outbox WHERE id = ?", gone)
        return len(gone)

    # ---- replay positions --------------------------------------------------------------

    def save_cursor(self, source: str, socket: str, after: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO cursors VALUES (?, ?, ?)",
                        (source, socket, after))

    def load_cursor(self, source: str, socket: str) -> str | None:
        row = self.db.execute("SELECT after FROM cursors WHERE source = ? AND socket = ?",
                              (source, socket)).fetchone()
        return None if row is None else str(row[0])

    def load_cursors(self, source: str) -> dict[str, str]:
        """Every position saved for one source, by socket (or ``tracker/ID`` for Navixy)."""
        rows = self.db.execute("SELECT socket, after FROM cursors WHERE source = ?",
                               (source,)).fetchall()
        return {str(socket): str(after) for socket, after in rows}

    # ---- runtime silences ---------------------------------------------------------------

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
        rows = self.db.execute(query + " ORDER BY starts, id", args).fetchall()
        return [StoredSilence(r[0], json.loads(r[1]), r[2], r[3], r[4], r[5]) for r in rows]

    def expire_silence(self, silence_id: str, now: float) -> bool:
        """End a silence now; False when no active silence has that id."""
        done = self.db.execute("UPDATE silences SET ends = ? WHERE id = ? AND ends > ?",
                               (now, silence_id, now))
        return done.rowcount > 0
