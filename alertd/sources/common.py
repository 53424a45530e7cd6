"""What both protocol decoders share: their result, time parsing, log excerpts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

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
    """Epoch seconds of an ISO 8601 time (``2017-08-02T09:11:04.910127Z``); None if not one."""
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


def as_text(frame: str | bytes) -> str | None:
    if isinstance(frame, bytes):
        try:
            return frame.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return frame

