"""What both protocol decoders share: their result, time parsing, log excerpts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import orjson

from alertd.model import Event

EXCERPT = 200


@dataclass(frozen=True, slots=True)
class Decoded:
    """What one frame held: events for the engine, problems to log and count (each a reason
    with an excerpt), and protocol notices for the client (handshakes, errors, logout)."""

    events: tuple[Event, ...] = ()
    problems: tuple[str, ...] = ()
    notices: tuple[object, ...] = ()


EMPTY = Decoded()


def parse_time(value: Any) -> float | None:
    """Epoch seconds of an ISO 8601 time (``2017-08-02T09:11:04.910127Z``); None if not one.
    Not cached here: an ELEMENT reading's times are its own (a cache only cost each one a
    miss), and the Navixy decoder keeps the texts of its window (``navixy._time``)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:  # the services send UTC; a time without offset is UTC too
        return parsed.replace(tzinfo=timezone.utc).timestamp()
    return parsed.timestamp()


def cut(text: str | bytes | object, limit: int = EXCERPT) -> str:
    """At most ``limit`` characters of a frame, for a log line."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = str(text)
    return text if len(text) <= limit else text[:limit] + "..."


def excerpt(item: Any) -> str:
    """``cut`` of one decoded JSON item, for a problem line; never raises, however deep."""
    try:
        return cut(json.dumps(item, default=str))
    except (RecursionError, ValueError):
        return "<nested too deeply to show>"


def load_json(text: str) -> tuple[Any, str | None]:
    """The parsed frame, or the reason it is none: not JSON, or nested beyond the
    interpreter's recursion limit (``json.loads`` raises RecursionError there, which no
    caller expects from bad input).

    orjson parses a frame 2-3 times faster than the standard library (it is most of a
    Navixy event's cost); what it refuses (NaN literals, integers beyond 64 bits, deep
    nesting) goes to ``json`` so that both accept and reject exactly what they did."""
    try:
        return orjson.loads(text), None
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(text), None
    except ValueError:
        return None, f"frame is not JSON: {cut(text)}"
    except RecursionError:
        return None, f"frame is nested too deeply: {cut(text)}"


def dump_json(value: Any, sort_keys: bool = False) -> str:
    """``value`` as compact JSON, for a replay position written once per batch: orjson takes
    a fifth to a tenth of ``json``'s time. A text holding a lone surrogate (a ``"\\ud800"``
    escape in a frame, which only ``json`` reads) cannot be written by orjson; ``json``
    writes that one. Both are read back by ``json.loads``."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS if sort_keys else None).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value, sort_keys=sort_keys)


def as_text(frame: str | bytes) -> str | None:
    if isinstance(frame, bytes):
        try:
            return frame.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return frame

