"""Replays of recordings (``alertd replay``, and ``alertd explain --replay``): a backtest.

The recorded frames go through the real decoders (``ElementDecoder`` per socket,
``NavixyDecoder`` per source, started where the recording says the live ones started) and
the real ``Engine`` on a simulated clock: each record's arrival time is the engine's
``now``, timers run at their deadlines in between, and the sockets' recorded standing makes
``SourceUp``/``SourceDown`` as the live clients did. Frames that the live client handed on
together (one ``t``, one socket) are evaluated together in measurement order, as live. So
the notifications equal what the daemon made live on the same frames, at the same times
(within the moment the daemon's loop took to wake).

Nothing is sent and no state is written; notifications are printed by the caller.
``--from`` starts an empty engine at that time (as a daemon started then, with the sockets
that were open then counted up); ``--to`` stops there.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alertd.config import schema as s
from alertd.engine import Engine, notices
from alertd.model import AlertEvent, AlertState, Event, Message, Notification, SourceDown, SourceUp
from alertd.record import recordings
from alertd.sources.element import ElementDecoder
from alertd.sources.element_client import FUTURE_CURSOR
from alertd.sources.navixy import NavixyDecoder

log = logging.getLogger("alertd.replay")


@dataclass(frozen=True, slots=True)
class Record:
    t: float
    source: str
    socket: str
    frame: str | bytes | None = None
    event: str | None = None  # start | open | closed; None for a frame
    state: dict[str, Any] = field(default_factory=dict)


def read_records(folder: str | Path, bad: list[str] | None = None) -> Iterator[Record]:
    """The records of a recording folder, oldest file first. A line that is not a record
    (a file cut by a crash) is skipped; its place is added to ``bad``."""
    for path in recordings(Path(folder)):
        with open(path, encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                record = _record(line)
                if record is None:
                    if bad is not None and line.strip():
                        bad.append(f"{path.name}:{number}")
                    continue
                yield record


def _record(line: str) -> Record | None:
    try:
        data = json.loads(line)
        t, source, socket = float(data["t"]), str(data["source"]), str(data["socket"])
    except (ValueError, KeyError, TypeError):
        return None
    if "frame" in data and isinstance(data["frame"], str):
        return Record(t, source, socket, frame=data["frame"])
    if "frame_b64" in data:
        try:
            return Record(t, source, socket, frame=base64.b64decode(data["frame_b64"]))
        except (ValueError, TypeError):
            return None
    event = data.get("event")
    if event not in ("start", "open", "closed"):
        return None
    state = {k: v for k, v in data.items() if k not in ("t", "source", "socket", "event")}
    return Record(t, source, socket, event=event, state=state)


@dataclass(slots=True)
class RuleSummary:
    fired: int = 0
    firing_seconds: float = 0.0
    by_entity: dict[str, int] = field(default_factory=dict)


class Replay:
    """An engine fed with records in order. ``feed`` one record (timers up to its time run
    first); ``advance`` runs timers up to a time; ``notes`` holds every notification made."""

    def __init__(self, config: s.Config, start: float, *, open_sockets: Iterable[
            tuple[str, str]] = ()) -> None:
        self.config = config
        self.now = start
        self.engine = Engine(config.rules, config.sources, start, connected=False)
        self.decoders: dict[tuple[str, str], ElementDecoder | NavixyDecoder] = {}
        self.open: set[tuple[str, str]] = set()
        self.notes: list[Notification] = []
        self.summary: dict[str, RuleSummary] = {rule.name: RuleSummary()
                                               for rule in config.rules}
        self._firing_since: dict[tuple[str, str], float] = {}
        self._pending: list[Record] = []  # frames of one hand-on (one t, one socket)
        for key in open_sockets:
            self._standing(Record(start, *key, event="open"))

    # ---- input -----------------------------------------------------------------------

    def feed(self, record: Record) -> None:
        if self._pending and (record.t, record.source, record.socket) != (
                self._pending[0].t, self._pending[0].source, self._pending[0].socket):
            self._flush()
        self.advance(record.t)
        if record.source not in self.config.sources:
            return  # a source no longer configured
        if record.frame is not None:
            self._pending.append(record)
        elif record.event == "start":
            self._start(record)
        else:
            self._standing(record)

    def advance(self, until: float) -> None:
        """Run the timers due up to ``until`` (frames waiting first)."""
        if self._pending and self._pending[0].t <= until:
            self._flush()
        while (deadline := self.engine.next_deadline()) is not None and deadline <= until:
            self.now = max(self.now, deadline)
            self._made(self.engine.on_timer(self.now))
        self.now = max(self.now, until)

    def finish(self) -> None:
        self._flush()

    def _start(self, record: Record) -> None:
        source = self.config.sources[record.source]
        key = (record.source, record.socket)
        if isinstance(source, s.ElementSource):
            after = record.state.get("after")
            decoder = ElementDecoder(record.source, after=after if isinstance(after, str)
                                     else None)
            decoder.latest = lambda: self.now + FUTURE_CURSOR
            self.decoders[key] = decoder
        else:
            positions = record.state.get("positions") or {}
            self.decoders[key] = NavixyDecoder(record.source, {
                str(t): {str(a): float(v) for a, v in p.items()}
                for t, p in positions.items() if isinstance(p, dict)})
        self.open.discard(key)  # a new run of the client: its sockets start closed

    def _decoder(self, source: str, socket: str) -> ElementDecoder | NavixyDecoder:
        key = (source, socket)
        if key not in self.decoders:  # a replay that starts after the socket's start
            self._start(Record(self.now, source, socket, event="start"))
            self.open.add(key)
        return self.decoders[key]

    def _standing(self, record: Record) -> None:
        was_up = any(src == record.source for src, _ in self.open)
        if record.event == "open":
            self.open.add((record.source, record.socket))
        else:
            self.open.discard((record.source, record.socket))
        up = any(src == record.source for src, _ in self.open)
        if up != was_up:
            event: Event = SourceUp(record.source) if up else SourceDown(record.source)
            self._made(self.engine.receive(event, record.t))

    def _flush(self) -> None:
        frames, self._pending = self._pending, []
        if not frames:
            return
        first = frames[0]
        decoder = self._decoder(first.source, first.socket)
        events: list[Event] = []
        for record in frames:
            assert record.frame is not None
            decoded = decoder.decode(record.frame)
            if isinstance(decoder, ElementDecoder):
                events.extend(e for e in decoded.events if isinstance(e, Message))
            else:
                events.extend(decoded.events)
        if isinstance(decoder, NavixyDecoder):
            decoder.take_positions()
        elif len(frames) > 1:
            events.sort(key=lambda e: e.msg_time if isinstance(e, Message) else 0.0)
        for event in events:
            self._made(self.engine.receive(event, first.t))

    # ---- output ----------------------------------------------------------------------

    def _made(self, events: list[AlertEvent]) -> None:
        self.notes.extend(notices(events))
        for alert in self.engine.take_changed():
            key = (alert.rule, alert.entity)
            summary = self.summary.get(alert.rule)
            if summary is None:
                continue
            firing = alert.state == AlertState.FIRING
            if firing and key not in self._firing_since:
                self._firing_since[key] = self.now
                summary.fired += 1
                summary.by_entity[alert.entity] = summary.by_entity.get(alert.entity, 0) + 1
            elif not firing and key in self._firing_since:
                summary.firing_seconds += self.now - self._firing_since.pop(key)

    def close_summary(self) -> dict[str, RuleSummary]:
        """The per-rule summary, counting alerts still firing up to now."""
        for (rule, _entity), since in self._firing_since.items():
            self.summary[rule].firing_seconds += self.now - since
        self._firing_since = {key: self.now for key in self._firing_since}
        return self.summary


def window(records: Iterable[Record], start: float | None, end: float | None,
           open_before: set[tuple[str, str]]) -> Iterator[Record]:
    """The records from ``start`` to ``end``; the sockets open at ``start`` are added to
    ``open_before`` (a replay that starts there counts them up)."""
    for record in records:
        if start is not None and record.t < start:
            if record.event == "open":
                open_before.add((record.source, record.socket))
            elif record.event in ("closed", "start"):
                open_before.discard((record.source, record.socket))
            continue
        if end is not None and record.t > end:
            return
        yield record


def run(config: s.Config, records: Iterable[Record], *, start: float | None = None,
        end: float | None = None) -> Replay | None:
    """Replay ``records`` from ``start`` to ``end`` (timers up to ``end`` included); None
    when no record falls between."""
    replay: Replay | None = None
    open_before: set[tuple[str, str]] = set()
    for record in window(records, start, end, open_before):
        if replay is None:
            replay = Replay(config, start if start is not None else record.t,
                            open_sockets=sorted(open_before))
        replay.feed(record)
    if replay is not None:
        replay.finish()
        if end is not None:
            replay.advance(end)
    return replay
