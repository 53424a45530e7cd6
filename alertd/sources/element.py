"""ELEMENT IoT frames -> messages: the pure half of the ELEMENT source (SPEC 4.1).

A frame is a JSON array of envelopes ``{"event": "reading_added" | "packet_added", "body"}``
(or one envelope object); ``pong`` answers a text ping and is not an event. Readings become
messages with ``data`` flattened with dots; packets with their scalar fields and ``meta``
flattened under ``meta.``; ``meta``, ``location`` and what ``preload=`` brings (``device.*``,
``packet.*``) are fields too. The events of one frame are handed on in ``measured_at``
order (a replay frame holds them in insertion order). Items already seen (same ``id``) are
skipped, so a replay that overlaps what was evaluated is not evaluated twice;
``newest_inserted_at`` is the replay position (``after=``) to resume from. Bad input is
described in ``problems``, never raised.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from collections.abc import Callable
from operator import attrgetter
from typing import Any

from alertd.model import Message
from alertd.sources.common import (
    EMPTY,
    Decoded,
    as_text,
    cut,
    dump_json,
    excerpt,
    load_json,
    parse_time,
)

_MSG_TIME = attrgetter("msg_time")
SEEN_IDS = 10_000  # enough to cover any replay overlap
PACKET_SKIP = frozenset({"id", "device_id", "transceived_at", "inserted_at", "meta", "device",
                         "interface", "packet"})


def flatten(data: dict[str, Any], prefix: str = "", out: dict[str, Any] | None = None
            ) -> dict[str, Any]:
    """``{"battery": {"voltage": 3}}`` -> ``{"battery.voltage": 3}``; lists stay values.
    Without ``out``, data with no nested object is returned as it is, not copied."""
    if not prefix and dict not in map(type, data.values()):  # flat, as readings usually
        if out is None:  # are (a parsed frame's objects are dicts): its names as they came
            return data
        out.update(data)
        return out
    out = {} if out is None else out
    for key, value in data.items():
        if isinstance(value, dict):
            flatten(value, f"{prefix}{key}.", out)
        else:  # a reading's own names as they came (the parser's, hashed once)
            out[f"{prefix}{key}" if prefix else key] = value
    return out


def read_cursor(cursor: str | None) -> tuple[str | None, set[str]]:
    """A saved replay position: its ``after=`` time and the ids evaluated at exactly that
    time (a bare time from older state files has none); (None, empty) when unreadable."""
    if not cursor or not cursor.startswith("{"):
        return cursor or None, set()
    try:
        saved = json.loads(cursor)
        return str(saved["after"]), {str(i) for i in saved.get("ids", ())}
    except (ValueError, KeyError, TypeError, AttributeError):
        return None, set()


class ElementDecoder:
    """``after`` resumes from a replay position: an ISO time, or a ``cursor`` saved earlier
    (the time plus the ids evaluated at exactly that time, which ``after=`` sends again)."""

    def __init__(self, source: str, after: str | None = None) -> None:
        self.source = source
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._boundary: set[str] = set()  # ids inserted at exactly newest_inserted_at
        # no replay position beyond this time (read once per frame)
        self.latest: Callable[[], float] | None = None
        after, self._boundary = read_cursor(after)
        self.newest_inserted_at = after
        self._newest = parse_time(after) if after else None
        for item_id in self._boundary:
            self._seen[item_id] = None

    @property
    def cursor(self) -> str | None:
        """The replay position to save: ``after=`` and the ids already evaluated there."""
        if self.newest_inserted_at is None:
            return None
        return dump_json({"after": self.newest_inserted_at, "ids": sorted(self._boundary)})

    def decode(self, frame: str | bytes) -> Decoded:
        text = as_text(frame)
        if text is None:
            return Decoded(problems=(f"frame is not UTF-8 text: {cut(frame)}",))
        if text.strip() == "pong":
            return EMPTY
        parsed, error = load_json(text)
        if error is not None:
            return Decoded(problems=(error,))
        envelopes = parsed if isinstance(parsed, list) else [parsed]
        events: list[Message] = []
        problems: list[str] = []
        latest = math.inf if self.latest is None else self.latest()  # once per frame
        for envelope in envelopes:
            try:
                problem = self._envelope(envelope, events, latest)
            except RecursionError:  # data nested deeper than flatten can follow
                problem = "envelope nested too deeply"
            if problem:
                problems.append(f"{problem}: {excerpt(envelope)}")
        if len(events) > 1:  # a replay frame: evaluate in measurement order, so a reading
            events.sort(key=_MSG_TIME)  # inserted late is not judged late
        return Decoded(tuple(events), tuple(problems))

    def _envelope(self, envelope: Any, events: list[Message], latest: float) -> str | None:
        if not isinstance(envelope, dict):
            return "item is not an event envelope"
        kind, body = envelope.get("event"), envelope.get("body")
        if kind not in ("reading_added", "packet_added"):
            return f"unknown event {cut(repr(kind), 40)}"
        if not isinstance(body, dict):
            return "event without a body"
        device = body.get("device_id")
        if not isinstance(device, str) or not device:
            return "body without device_id"
        reading = kind == "reading_added"
        time_key = "measured_at" if reading else "transceived_at"
        raw_time, raw_inserted = body.get(time_key), body.get("inserted_at")
        # the same text twice (a reading measured as it was stored) is parsed once
        msg_time = parse_time(raw_time)
        inserted = msg_time if raw_inserted == raw_time else parse_time(raw_inserted)
        if raw_time is not None and msg_time is None:
            return f"{time_key} is not an ISO 8601 time"
        if raw_inserted is not None and inserted is None:
            return "inserted_at is not an ISO 8601 time"
        if msg_time is None:  # absent: the server's time is the best one left
            msg_time = inserted
        if msg_time is None:
            return f"body without {time_key} or inserted_at"
        if reading:
            data = body.get("data")
            if not isinstance(data, dict):
                return "reading whose data is not an object"
            fields = _context(body)  # the reading's own data wins over any name clash
            fields = flatten(data, "", fields) if fields else flatten(data)
        else:
            fields = _context(body)
            fields.update((k, v) for k, v in body.items() if k not in PACKET_SKIP
                          and not isinstance(v, (dict, list)))
        item_id = body.get("id")
        if isinstance(item_id, str):
            if item_id in self._seen:
                return None  # already evaluated (a replay overlapping): skip quietly
            self._seen[item_id] = None
            if len(self._seen) > SEEN_IDS:
                self._seen.popitem(last=False)
        if inserted is not None and (self._newest is None or inserted >= self._newest) \
                and inserted <= latest:
            if self._newest is None or inserted > self._newest:
                self._boundary = set()
            self._newest = inserted
            self.newest_inserted_at = body["inserted_at"]
            if isinstance(item_id, str):
                self._boundary.add(item_id)
        preloaded = body.get("device")
        name = preloaded.get("name") if isinstance(preloaded, dict) else None
        events.append(Message(self.source, device, msg_time, fields, inserted,
                              name if isinstance(name, str) else None, reading))
        return None


def _context(body: dict[str, Any]) -> dict[str, Any]:
    """What a body carries beside its data, as fields: ``meta.*``, a reading's
    ``location.lat``/``location.lon`` (GeoJSON point, and ``location.*`` flattened), and what
    ``preload=`` added: ``device.*`` (``device.fields.*``, ``device.interfaces``, ...) and
    ``packet.*``. Lists stay values (``device.interfaces`` is the list)."""
    get = body.get
    if get("meta") is None and get("location") is None and get("device") is None \
            and get("packet") is None and get("interface") is None:
        return {}  # a reading as most come: half the time of the loop below
    fields: dict[str, Any] = {}
    for key in ("meta", "device", "packet", "interface"):
        value = body.get(key)
        if isinstance(value, dict):
            flatten(value, f"{key}.", fields)
    location = body.get("location")
    if isinstance(location, dict):
        flatten(location, "location.", fields)
        coordinates = location.get("coordinates")
        if location.get("type") == "Point" and isinstance(coordinates, list) \
                and 2 <= len(coordinates) <= 3 \
                and all(isinstance(c, (int, float)) and not isinstance(c, bool)
                        for c in coordinates):
            fields["location.lon"], fields["location.lat"] = coordinates[0], coordinates[1]
            if len(coordinates) == 3:
                fields["location.alt"] = coordinates[2]
    return fields
