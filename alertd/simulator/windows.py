"""The Navixy fake's per-tracker ``iot_monitor`` windows, and its ``rate_limit`` parser.

Pure state, no I/O. For each attribute ever seen on a tracker the server keeps two queues
of the last ``DEPTH`` messages, newest ``msg_time`` first (seed page, DSA):
``all_fields`` records a null when a message lacked the attribute, ``nonnull_fields`` only
the messages that carried a value. Queues of different attributes need not line up: an
attribute first seen late has a shorter ``all_fields`` queue.
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from typing import Any

from alertd.config.schema import HISTORY_DEPTH as DEPTH

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}

Entry = dict[str, Any]  # {"msg_time": ISO, "srv_time": ISO, "value": ...}


def navixy_time(epoch: float) -> str:
    """ISO 8601 UTC with ``Z`` and whole seconds, as Navixy writes message times."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rate_limit(text: object) -> float:
    """Seconds in a ``rate_limit`` such as ``"5s"``, ``"500ms"``, ``"1m"``; absent is 0.

    Raises ``ValueError`` for anything else, which the fake answers with error 7.
    """
    if text is None:
        return 0.0
    match = _RATE.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"invalid rate_limit {text!r}")
    return float(match[1]) * _UNIT_SECONDS[match[2]]


class TrackerWindows:
    """The two queues per attribute of one tracker."""

    def __init__(self, tracker_id: int) -> None:
        self.tracker_id = tracker_id
        self._all: dict[str, list[tuple[float, Entry]]] = {}
        self._nonnull: dict[str, list[tuple[float, Entry]]] = {}

    def add(self, fields: dict[str, Any], msg_time: float, srv_time: float) -> None:
        """Record one message: every known attribute gets the value or null."""
        for attribute in [*self._all, *(name for name in fields if name not in self._all)]:
            value = fields.get(attribute)
            entry = {"msg_time": navixy_time(msg_time), "srv_time": navixy_time(srv_time),
                     "value": value}
            _push(self._all.setdefault(attribute, []), msg_time, entry)
            if value is not None:
                _push(self._nonnull.setdefault(attribute, []), msg_time, dict(entry))

    def snapshot(self) -> dict[str, Any]:
        """The tracker's item of ``iot_last_values``: whole windows, copied."""
        return {"tracker_id": self.tracker_id,
                "nonnull_fields": _export(self._nonnull),
                "all_fields": _export(self._all)}


def _push(queue: list[tuple[float, Entry]], msg_time: float, entry: Entry) -> None:
    """Insert newest-first by msg_time (a late, older message lands further back; among
    equal times the newer arrival comes first), then keep the newest ``DEPTH``."""
    queue.insert(0, (msg_time, entry))
    queue.sort(key=lambda item: item[0], reverse=True)
    del queue[DEPTH:]


def _export(queues: dict[str, list[tuple[float, Entry]]]) -> dict[str, list[Entry]]:
    return {name: [copy.deepcopy(entry) for _, entry in queue]
            for name, queue in queues.items() if queue}
