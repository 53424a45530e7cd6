"""Per-entity, per-field history, exactly as Navixy's Data Stream Analyzer defines it.

For each field a rule reads, an entity keeps the last 12 values in ``msg_time`` order in two
queues: ``nonnull`` (only messages where the field had a value) and ``all`` (a null where a
message lacked the field). A field read by a ``change`` rule also keeps a time window of its
numeric values, as long as the longest ``within`` that reads it, because 12 values may span
only a minute of a fast stream.

Values are normalised once on the way in: numeric strings ("262.9138") become floats, so
every comparison later is a number comparison.
"""

from __future__ import annotations

import bisect
from collections import deque
from typing import Any

DEPTH = 12
WINDOW_CAP = 4096  # bounds memory for a chatty device; at 1 message/s that is over an hour


def normalise(value: Any) -> Any:
    """Numbers as floats, numeric strings as floats, everything else unchanged."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        return number if number == number and abs(number) != float("inf") else value
    return value


def is_number(value: Any) -> bool:
    return isinstance(value, float) or (isinstance(value, int) and not isinstance(value, bool))


def _insert(queue: deque[tuple[float, Any]], item: tuple[float, Any], depth: int) -> None:
    """Insert in msg_time order, keeping only the newest ``depth`` entries. An entry with
    the same msg_time is the same message seen again (a resend, a replay): it is merged,
    never counted twice."""
    if not queue or item[0] > queue[-1][0]:
        queue.append(item)
    elif item[0] == queue[-1][0]:
        queue[-1] = _merge(queue[-1], item)
    else:  # out of order: rare, so a linear rebuild is fine
        items = list(queue)
        index = bisect.bisect_left(items, item[0], key=lambda entry: entry[0])
        if index < len(items) and items[index][0] == item[0]:
            items[index] = _merge(items[index], item)
        else:
            items.insert(index, item)
        queue.clear()
        queue.extend(items[-depth:])


def _merge(old: tuple[float, Any], new: tuple[float, Any]) -> tuple[float, Any]:
    """Two entries at one msg_time: the same message again, or two readings of one packet
    (ELEMENT runs several parsers). A null never hides a value measured at that time."""
    return old if new[1] is None and old[1] is not None else new


class FieldHistory:
    """The two 12-deep queues of one field of one entity, plus an optional time window."""

    __slots__ = ("all", "nonnull", "window", "horizon")

    def __init__(self, horizon: float = 0.0) -> None:
        self.all: deque[tuple[float, Any]] = deque(maxlen=DEPTH)
        self.nonnull: deque[tuple[float, Any]] = deque(maxlen=DEPTH)
        self.horizon = horizon  # seconds of numeric values kept for change rules; 0: none
        self.window: deque[tuple[float, float]] | None = deque(maxlen=WINDOW_CAP) \
            if horizon > 0 else None

    def record(self, msg_time: float, value: Any) -> None:
        _insert(self.all, (msg_time, value), DEPTH)
        if value is not None:
            _insert(self.nonnull, (msg_time, value), DEPTH)
            if self.window is not None and is_number(value):
                _insert(self.window, (msg_time, value), WINDOW_CAP)
                self.prune(self.window[-1][0])

    def rehorizoned(self, horizon: float) -> FieldHistory:
        """A copy keeping another window horizon (a reload changed a `change` rule's
        `within`): the queues as they are, the window as far as it reaches."""
        copy = FieldHistory(horizon)
        copy.all.extend(self.all)
        copy.nonnull.extend(self.nonnull)
        if copy.window is not None and self.window:
            copy.window.extend(self.window)
            copy.prune(self.window[-1][0])
        return copy

    def prune(self, newest: float) -> None:
        """Forget window values older than the horizon (they can no longer matter)."""
        window = self.window
        if window is None:
            return
        limit = newest - self.horizon
        while window and window[0][0] < limit:
            window.popleft()

    def newest(self) -> Any:
        """The newest non-null value, or None."""
        return self.nonnull[-1][1] if self.nonnull else None

    def nulls(self, count: int) -> int:
        """How many of the ``count`` newest entries of the queue with gaps are null."""
        queue = self.all
        start = max(0, len(queue) - count)
        return sum(1 for index in range(start, len(queue)) if queue[index][1] is None)
