"""Per-entity, per-field history, exactly as Navixy's Data Stream Analyzer defines it.

For each field a rule reads, an entity keeps the last 12 values in ``msg_time`` order in two
queues: ``nonnull`` (only messages where the field had a value) and ``all`` (a null where a
message lacked the field). A field read by a ``change`` rule also keeps a time window of its
numeric values, as long as the longest ``within`` that reads it, because 12 values may span
only a minute of a fast stream.

Values are normalised once on the way in: numeric strings ("262.9138") become floats, so
every comparison later is a number comparison.

Compact storage (a fleet of 100,000 entities keeps 500,000 of these): both queues and the
window are one array of doubles, ``[t0, v0, t1, v1, ...]`` oldest first, holding every entry
that is among the 12 newest (the queue with gaps), among the 12 newest with a value (the
queue without), or a number within the horizon (the window); ``all`` is its last 12
entries, ``nonnull`` its last 12 with a value, ``window`` its numbers since the horizon's
start. A null is NaN; a value that is not a finite number (text, true/false) is kept aside
in ``_other`` and marked -inf. The history is itself that array (one object per field, seen
as one by the garbage collector), and holds no object per value.
"""

from __future__ import annotations

import math
from array import array
from typing import TYPE_CHECKING, Any, Self

from alertd.config.schema import HISTORY_DEPTH as DEPTH

WINDOW_CAP = 4096  # bounds memory for a chatty device; at 1 message/s that is over an hour
NULL = math.nan
OTHER = -math.inf  # the value is in ``_other``
# A history's first buffer: a full one (12 entries) and the one recorded before the oldest
# is dropped. Grown an entry at a time instead, an array passes through four buffers and
# settles at 34 doubles (CPython over-allocates), 64 bytes more per field.
_FULL = array("d", bytes(8 * (2 * DEPTH + 2)))
_QUEUE = 2 * DEPTH  # doubles in 12 entries
_MOST = 2 * (WINDOW_CAP + DEPTH)  # doubles in the longest window and a queue
_finite = math.isfinite
# a null as the array holds it (only ``NULL`` itself is ever stored), for the longest window
_NULLS = array("d", (NULL,)).tobytes() * (WINDOW_CAP + DEPTH)
# entries older than the 12 newest, in doubles, that ``_trim`` walks one by one: past 24 of
# them, it searches the rest in C (``_value_at``)
_WALKED = 2 * 2 * DEPTH
_ONES = bytes([0] + [1] * 255)  # a byte that is not zero made 1
_ABOVE, _BELOW = array("d", (math.inf,)), array("d", (-math.inf,))  # (``spread``)
# numbers kept beyond which the extremes are kept in running order (``_Running``) instead of
# found again by passes over them whenever one leaves
LONG = 64
# ``_hi`` while the extremes are not kept because a null may be (``_running`` holds them)
NULL_KEPT = -2


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


def newest_number(history: FieldHistory | None) -> float | None:
    """A field's newest non-null value if it is a number (a per-device bound, a compiled
    check's value); None when the field has none, or its newest value is text."""
    value = None if history is None else history.newest()
    return value if is_number(value) else None


if TYPE_CHECKING:
    _Doubles = array[float]
else:
    _Doubles = array


class FieldHistory(_Doubles):
    """The two 12-deep queues of one field of one entity, plus an optional time window.

    It *is* its array of doubles (a subclass with six slots): one object per field, not a
    history object holding an array, saves 40 bytes a field, 200 an entity of five."""

    __slots__ = ("_hi", "_lo", "_other", "_running", "_start", "horizon")

    def __new__(cls, horizon: float = 0.0) -> Self:
        history: Self = super().__new__(cls, "d", _FULL)  # type: ignore[assignment]
        del history[:DEPTH + 2]  # emptied in two steps, each shorter than CPython's 16
        del history[:]  # (below which an array keeps its buffer): room for a full history
        return history

    def __init__(self, horizon: float = 0.0) -> None:
        self.horizon = horizon  # seconds of numeric values kept for change rules; 0: none
        self._start = -math.inf  # where the window begins: newest msg_time minus horizon
        self._other: dict[float, Any] | None = None
        # where the largest and the smallest number kept are (indexes of their values in
        # the array), kept up to date once ``spread`` has found them, while no null or text
        # value is kept; -1: not known; ``NULL_KEPT``: a null may be kept, and ``_running``
        # holds the extremes
        self._hi = self._lo = -1
        # a long window's numbers in running order, once its extremes were found again
        # (``LONG``); nulls are skipped, text values and late messages drop it
        self._running: _Running | None = None

    # ---- writing -------------------------------------------------------------------------

    def record(self, msg_time: float, value: Any) -> bool:
        """Add one message's value (None: null) in ``msg_time`` order. An entry with the same
        ``msg_time`` is the same message seen again (a resend, a replay) or another reading
        of it: merged, never counted twice, and a null never hides a value.

        True for the usual message (a finite number, newer than the newest, the extremes
        known): ``value`` is then the newest value, and the history is already pruned to
        ``msg_time`` (``prune(msg_time)`` would do nothing)."""
        size = len(self)
        hi = self._hi
        if hi >= 0 and value.__class__ is float and _finite(value) and msg_time > self[size - 2]:
            # the usual message: a number, newer than the newest, the extremes known (so
            # no null or text value is kept): the general path below, without its tests
            self.append(msg_time)
            self.append(value)
            if self._running is not None:
                self._running.add(msg_time, value)
            if value >= self[hi]:
                self._hi = hi = size + 1
            lo = self._lo
            if value <= self[lo]:
                self._lo = lo = size + 1
            horizon = self.horizon
            if horizon > 0:
                start = msg_time - horizon
                if start > self._start:
                    self._start = start
            if size >= _QUEUE:
                if hi != 1 and lo != 1 and not self._other and (
                        size == _QUEUE and (horizon <= 0 or self[0] < self._start)
                        or horizon > 0 and self[0] < self._start <= self[2]
                        and size + 2 <= _MOST):
                    # one entry too many, the oldest, an extreme of neither: in neither queue
                    # nor the window, or the one that left a window longer than the queues
                    # (a reading every 30 s, `within: 10m`): what ``_shorten`` drops
                    del self[:2]
                    self._hi, self._lo = hi - 2, lo - 2
                elif horizon <= 0 or self[0] < self._start or size + 2 > _MOST:
                    self._shorten()
            return True
        if value is None:
            code = NULL
        elif value.__class__ is float and _finite(value):
            code = value
        else:
            code = self._code(msg_time, value)
        newest = size == 0 or msg_time > self[size - 2]
        running = self._running
        if running is not None:  # kept for numbers that come in order (nulls skipped)
            if newest and code != OTHER:
                if code == code:
                    running.add(msg_time, code)
                    if self._hi == NULL_KEPT:
                        self._lo += 1
            else:
                self._running = running = None
        if newest:
            self.append(msg_time)
            self.append(code)
            hi = self._hi
            if code != code:  # a null: the extremes may no longer be kept (``_hi``)
                if running is not None:
                    if hi != NULL_KEPT:  # no null was kept: every other entry is a number
                        self._hi, self._lo = NULL_KEPT, size // 2
                elif hi >= 0:
                    self._hi = -1
            elif code == OTHER:
                self._hi = -1
            # (a number, newest, with the extremes known, took the usual path above)
        else:
            self._hi = -1
            self._merge(msg_time, code)
        horizon = self.horizon
        if horizon > 0 and code == code and code != OTHER:
            self._start = max(self._start, msg_time - horizon)
        elif newest and horizon > 0 and code != code and size - _QUEUE >= 0 \
                and self[size - _QUEUE] >= self._start and size + 2 <= _MOST:
            return False  # a null, newest: the window stays, and the entry that left the
            # 12 newest is inside it: nothing more can go (a field that few messages carry)
        if len(self) > _QUEUE and (horizon <= 0 or self[0] < self._start
                                   or len(self) > _MOST):
            self._shorten()
        if newest and code == code and code != OTHER and self._hi < 0:
            # a number, the newest, the extremes not known (the first value, or a null or
            # text value was kept): found if none is kept now, so that the next message
            # takes the usual path (a field no `change` rule reads never asks ``spread``)
            if running is not None:
                if self._hi == -1 or self._lo == len(self) // 2:  # no null is kept
                    self._from_running()
            else:
                values = self[1::2]
                total = sum(values)
                if total == total and total != OTHER:  # no null or text value kept
                    self._keep_extremes(values)
        return False

    def _merge(self, msg_time: float, code: float) -> None:
        """Record an entry not newer than the newest: the same message again, or a late one."""
        entries = self
        size = len(entries)
        index = size - 2
        while index >= 0 and entries[index] > msg_time:
            index -= 2
        if index >= 0 and entries[index] == msg_time:
            old = entries[index + 1]
            if code == code or old != old:  # a value, or a null over a null
                if old == OTHER and code != OTHER and self._other:
                    self._other.pop(msg_time, None)
                entries[index + 1] = code
        else:  # out of order: rare
            entries[index + 2:index + 2] = array("d", (msg_time, code))

    def _code(self, msg_time: float, value: Any) -> float:
        if value is None:
            return NULL
        if value.__class__ is float and math.isfinite(value):
            return float(value)
        if self._other is None:
            self._other = {}
        self._other[msg_time] = value
        return OTHER

    def _shorten(self) -> None:
        """``_trim``, with the usual cases first: one entry too many, the oldest in neither
        queue (no null is kept: the extremes are known; or it is null; or the 12 newest have
        no null: ``sum`` is NaN only if one is) and out of the window; or a longer window
        with no null kept, whose oldest entries left it."""
        entries = self
        if len(entries) == 2 * DEPTH + 2 and (self.horizon <= 0 or entries[0] < self._start):
            oldest = entries[1]
            if self._hi >= 0 or oldest != oldest or (newest := sum(entries[3::2])) == newest:
                if self._other:
                    self._other.pop(entries[0], None)
                del entries[:2]
                hi = self._hi
                if hi == NULL_KEPT and oldest == oldest:
                    self._lo -= 1  # a number fewer
                elif hi >= 0:  # the extremes moved down one entry, unless one was dropped
                    lo = self._lo
                    if hi == 1 or lo == 1:
                        self._hi = -1
                    else:
                        self._hi, self._lo = hi - 2, lo - 2
                return
        elif self._hi >= 0 and len(entries) > 2 * DEPTH + 2 and self.horizon > 0:
            # a window longer than 12 entries, no null or text value kept (the extremes are
            # known): what ``_trim`` drops is the oldest entries out of the window, none of
            # the 12 newest, and those over the window's cap
            size, start, drop = len(entries), self._start, 0
            while drop < size - _QUEUE and entries[drop] < start:
                drop += 2
            drop = max(drop, size - _MOST)
            if drop:
                if self._other:
                    self._drop(entries[:drop])
                del entries[:drop]
                hi, lo = self._hi, self._lo
                running = self._running
                if hi >= drop and lo >= drop:
                    self._hi, self._lo = hi - drop, lo - drop
                elif running is not None:  # one left: the next in running order
                    self._hi = hi - drop if hi >= drop else self._next(running.top)
                    self._lo = lo - drop if lo >= drop else self._next(running.bottom)
                else:
                    self._hi = -1
            return
        self._trim()

    def _trim(self) -> None:
        """Drop the entries that are in neither queue nor the window: older than the 12
        newest and the 12 newest with a value, and (for a field with a horizon) older than
        the window's start; and the nulls between the 12 newest with a value and the rest
        (a field that stops arriving keeps 24 entries, not one per message since). An old
        null or text value inside the window stays until it leaves the window (the window
        skips them). The window keeps at most ``WINDOW_CAP`` + 12 entries, never at the
        cost of the 12 newest values. Costs what it drops, a walk over the 12 newest entries
        and, past them and 24 more, a search in C (``_value_at``)."""
        entries = self
        size = len(entries)
        numbers = -1  # how many numbers are kept, if known (``_running``: no text value)
        if self._running is not None:
            numbers = self._lo if self._hi == NULL_KEPT else size // 2
            self._hi, self._lo = NULL_KEPT, numbers  # (nulls may stay)
        else:
            self._hi = -1
        newest_from = size - 2 * DEPTH  # the 12 newest
        if newest_from <= 0:
            return
        span_from = newest_from  # where the 12 newest, or the window, begin
        if self.horizon > 0:
            start, span_from = self._start, 0
            while span_from < newest_from and entries[span_from] < start:
                span_from += 2
        seen, index = 0, size - 1
        if 0 <= numbers - DEPTH < DEPTH:  # the 12 newest numbers begin near the oldest (a
            index, left = -1, numbers - DEPTH + 1  # field that few messages carry): walked
            stop = min(size, 2 * _WALKED)  # to from there, past those before them
            while left and index + 2 < stop:
                index += 2
                if entries[index] == entries[index]:
                    left -= 1
            if left:  # not near the oldest: found from the newest
                index = size - 1
            else:
                seen = DEPTH
        elif 0 <= numbers < DEPTH:
            index = -1  # fewer than 12 numbers: every one stays
        while index > 0 and seen < DEPTH:  # where the 12 newest with a value begin
            if entries[index] == entries[index]:
                seen += 1
                if seen == DEPTH:
                    break
            if index == newest_from + 1 and newest_from > _WALKED:
                # the rest are older than the 12 newest entries, in a long window of nulls
                # (a field that few messages carry, or none, read by a long `change`):
                # searched in C, not walked at each message
                index = self._value_at(newest_from, DEPTH - seen) + 1
                break
            index -= 2
        values_from = max(index - 1, 0)
        keep_from = min(span_from, values_from)
        if self.horizon > 0:
            cap_from = size - 2 * (WINDOW_CAP + DEPTH)  # the window holds at most the cap
            if cap_from > keep_from:
                if values_from < cap_from:  # the 12 newest values lie before the cap (a
                    keep_from = values_from  # run of nulls since): they stay, the nulls
                    span_from = max(span_from, cap_from)  # among them go (below)
                else:
                    keep_from = cap_from
        if max(keep_from, values_from) < span_from:
            self._drop_nulls(max(keep_from, values_from), span_from)
        if keep_from > 0:
            self._drop(entries[:keep_from])
            if numbers >= 0:  # (nulls dropped between values do not count)
                self._lo = numbers - sum(1 for v in entries[1:keep_from:2] if v == v)
            del entries[:keep_from]

    def _value_at(self, end: int, wanted: int) -> int:
        """Where the ``wanted``-th newest value before ``end`` is (the index of its time), 0
        if there are fewer. Searched in C, not walked: the codes, in stretches four times
        longer each time back, are XORed with a null's bits in one integer (a null becomes
        eight zero bytes, any other code keeps a byte that is not zero, made 1 by
        ``translate``), and each value is one ``rfind``."""
        stretch = 2 * _WALKED
        while end > 0:
            begin = max(end - stretch, 0)
            codes = self[begin + 1:end:2].tobytes()
            width = len(codes)
            marks = (int.from_bytes(codes, "little")
                     ^ int.from_bytes(_NULLS[:width], "little")).to_bytes(width, "little")
            marks = marks.translate(_ONES)
            while True:
                width = marks.rfind(1, 0, width)
                if width < 0:
                    break
                width -= width % 8  # the code's first byte: the next search ends there
                wanted -= 1
                if wanted == 0:
                    return begin + width // 4  # code n at byte 8n, its time at 2n
            end, stretch = begin, 4 * stretch
        return 0

    def _drop_nulls(self, begin: int, end: int) -> None:
        """Forget the nulls among the entries from ``begin`` to ``end`` (their values stay)."""
        entries = self
        kept = array("d")
        for index in range(begin, end, 2):
            if entries[index + 1] == entries[index + 1]:
                kept.append(entries[index])
                kept.append(entries[index + 1])
        if len(kept) < end - begin:
            entries[begin:end] = kept

    def _drop(self, gone: array[float]) -> None:
        """Forget the text values of entries no longer kept."""
        other = self._other
        if other:
            for time in gone[0::2]:
                other.pop(time, None)

    def prune(self, newest: float) -> None:
        """Forget window values older than the horizon (they can no longer matter)."""
        if self.horizon <= 0:
            return
        start = newest - self.horizon
        if start > self._start:
            self._start = start
            entries = self
            if len(entries) > 2 * DEPTH and entries[0] < start:
                self._shorten()

    # ---- reading -------------------------------------------------------------------------

    def _value(self, msg_time: float, code: float) -> Any:
        if code != code:
            return None
        if code == OTHER and self._other is not None:
            return self._other.get(msg_time)
        return code

    def newest(self) -> Any:
        """The newest non-null value, or None."""
        if self._running is not None:  # (no text value is kept; a number always is)
            return self._running.top[-1]
        entries = self
        index = len(entries) - 1
        while index > 0:
            code = entries[index]
            if code == code:
                return code if code != OTHER else self._value(entries[index - 1], code)
            index -= 2
        return None

    def count(self) -> int:  # type: ignore[override]  # array's count(x) is unused here
        """How many entries the queue with gaps holds (at most 12)."""
        return min(DEPTH, len(self) // 2)

    def last(self) -> tuple[float, Any] | None:
        """The newest entry of the queue with gaps: (msg_time, value or None)."""
        entries = self
        if not entries:
            return None
        return entries[-2], self._value(entries[-2], entries[-1])

    def nulls(self, count: int) -> int:
        """How many of the ``count`` newest entries of the queue with gaps are null."""
        entries = self
        start = max(len(entries) - 2 * min(count, DEPTH), 0)
        return sum(1 for i in range(start + 1, len(entries), 2) if entries[i] != entries[i])

    @property
    def all(self) -> list[tuple[float, Any]]:
        """The queue with gaps: the 12 newest entries, oldest first."""
        entries = self
        start = max(len(entries) - 2 * DEPTH, 0)
        return [(entries[i], self._value(entries[i], entries[i + 1]))
                for i in range(start, len(entries), 2)]

    @property
    def nonnull(self) -> list[tuple[float, Any]]:
        """The queue without gaps: the 12 newest entries with a value, oldest first."""
        entries = self
        found = [(entries[i], self._value(entries[i], entries[i + 1]))
                 for i in range(0, len(entries), 2) if entries[i + 1] == entries[i + 1]]
        return found[-DEPTH:]

    @property
    def window(self) -> list[tuple[float, float]] | None:
        """The numeric values within the horizon (None without a horizon), oldest first."""
        if self.horizon <= 0:
            return None
        entries, start = self, self._start
        return [(entries[i], entries[i + 1]) for i in range(0, len(entries), 2)
                if entries[i] >= start and entries[i + 1] == entries[i + 1]
                and entries[i + 1] != OTHER]

    def largest_change(self, since: float, falling: bool
                       ) -> tuple[float, float | None, float | None,
                                  tuple[float, float, float] | None]:
        """Over the window's numbers measured at ``since`` or later: the largest fall (or
        rise) from an earlier value to a later one, and the time of the oldest number used;
        the newest number in the whole window (None if it has none); and that largest
        change as (from value, its time, the time of the value it reached). One pass over
        the array, no tuple per value."""
        entries, window_start = self, self._start
        best = 0.0
        extreme = oldest = newest = None
        extreme_at = 0.0
        detail: tuple[float, float, float] | None = None
        for index in range(0, len(entries), 2):
            time = entries[index]
            value = entries[index + 1]
            if time < window_start or value != value or value == OTHER:
                continue
            newest = value
            if time < since:
                continue
            if oldest is None:
                oldest = time
            if extreme is None:
                extreme, extreme_at = value, time
            elif falling:
                if extreme - value > best:
                    best, detail = extreme - value, (extreme, extreme_at, time)
                if value > extreme:
                    extreme, extreme_at = value, time
            else:
                if value - extreme > best:
                    best, detail = value - extreme, (extreme, extreme_at, time)
                if value < extreme:
                    extreme, extreme_at = value, time
        return best, oldest, newest, detail

    def times(self) -> set[float]:
        """Every message time either queue remembers."""
        return set(self[0::2])

    # ---- copies --------------------------------------------------------------------------

    def cut(self, at: float) -> FieldHistory:
        """The history as it was at ``at``: entries measured later left out."""
        copy = FieldHistory(self.horizon)
        entries = self
        end = len(entries)
        while end > 0 and entries[end - 2] > at:
            end -= 2
        copy.extend(entries[:end])
        copy._start = min(self._start, at - self.horizon)
        if self._other:
            copy._other = dict(self._other)
        return copy

    def rehorizoned(self, horizon: float) -> FieldHistory:
        """A copy keeping another window horizon (a reload changed a `change` rule's
        `within`): the queues as they are, the window as far as it reaches."""
        copy = FieldHistory(horizon)
        copy.extend(self)
        copy._other = dict(self._other) if self._other else None
        if horizon > 0 and self:
            copy._start = self[-2] - horizon
            if self.horizon > 0:  # values before the old horizon are gone already
                copy._start = max(copy._start, self._start)
            if len(copy) > 2 * DEPTH:
                copy._trim()
        return copy

    # ---- bounds --------------------------------------------------------------------------

    def spread(self) -> float:
        """The largest number kept minus the smallest: no ``largest_change`` can be larger,
        so a `change` rule with no alert need not look further when it is below the rule's
        amount. Nulls are skipped, as ``largest_change`` skips them; infinite while a text
        value is kept (nothing is promised then).

        Cost: two lookups while the extremes are known. They are found by passes in C over
        the values, then kept as values come and go (``record``, ``_shorten``), and found
        again only when one of them leaves or a value comes out of order: past ``LONG``
        entries from the running order (``_Running``), not by passes over the window.
        While a null is kept (a field that few messages carry), a window past ``LONG``
        entries keeps its numbers in running order too, and the spread is two lookups in
        it; a shorter one is found by passes in C at each call."""
        hi = self._hi
        if hi >= 0:
            return self[hi] - self[self._lo]
        running = self._running
        if running is not None:
            if hi == NULL_KEPT:
                return running.spread(self[0])
            return self._from_running()
        values = self[1::2]
        if not values:
            return 0.0
        total = sum(values)
        if total == total:  # no null kept
            if total == OTHER:
                return math.inf
            return self._keep_extremes(values)
        # ``max`` and ``min`` keep the first item unless a later one is larger (smaller),
        # which a NaN never is: each begins with an infinity of the other side
        bottom = min(_ABOVE + values)
        if bottom == OTHER:
            return math.inf
        top = max(_BELOW + values)
        if top < bottom:
            return 0.0  # no number: no change
        if len(values) > LONG:  # a long window with nulls (a field that few messages
            self._hi, self._lo = NULL_KEPT, self._start_running()  # carry)
        return top - bottom

    def _keep_extremes(self, values: array[float]) -> float:
        """Find and keep the extremes of ``values`` (the codes kept, none of them a null or a
        text value); their spread. Past ``LONG`` numbers, they are kept in running order from
        now on: a steady rise or fall (a fuel drain, a counter), whose extreme leaves at every
        message, then costs a lookup, not passes over the whole window."""
        if len(values) > LONG:
            self._start_running()
            return self._from_running()
        top, bottom = max(values), min(values)
        self._hi, self._lo = 2 * values.index(top) + 1, 2 * values.index(bottom) + 1
        return top - bottom

    def _start_running(self) -> int:
        """Keep the numbers kept in running order from now on (``_running``; no text value
        is kept, nulls are skipped); how many there are."""
        running = self._running = _Running()
        numbers = 0
        for index in range(1, len(self), 2):
            if self[index] == self[index]:
                running.add(self[index - 1], self[index])
                numbers += 1
        return numbers

    def _from_running(self) -> float:
        """Keep the extremes that ``_running`` holds for the entries kept (every one a
        number, each added in order since it began); their spread."""
        running = self._running
        assert running is not None
        self._hi, self._lo = self._next(running.top), self._next(running.bottom)
        return self[self._hi] - self[self._lo]

    def _next(self, order: array[float]) -> int:
        """Where the extreme that ``order`` (``_Running.top`` or ``bottom``) holds first
        among the entries kept is: the index of its value."""
        return self._position(_Running.first(order, self[0])) + 1

    def _position(self, msg_time: float) -> int:
        """Where the entry of ``msg_time`` is (the index of its time; it is kept): searched
        from the oldest in growing steps, as the next extreme is most often near it."""
        size, bound = len(self) // 2, 1
        while bound < size and self[2 * bound] < msg_time:
            bound *= 2
        low, high = bound // 2, min(bound, size)
        while low < high:
            middle = (low + high) // 2
            if self[2 * middle] < msg_time:
                low = middle + 1
            else:
                high = middle
        return 2 * low


class _Running:
    """A long window's extremes in running order (the sliding-window maximum): ``top`` holds
    [time, value, ...] of each number larger than every later one, oldest first, so its
    first entry that is still kept is the largest kept; ``bottom`` the same for the smallest.
    Adding a number drops the entries it outdoes; each entry is added and dropped once."""

    __slots__ = ("bottom", "top")

    def __init__(self) -> None:
        self.top = array("d")
        self.bottom = array("d")

    def add(self, msg_time: float, value: float) -> None:
        top, bottom = self.top, self.bottom
        while top and top[-1] <= value:  # the newest of equal ones: it leaves last
            del top[-2:]
        top.append(msg_time)
        top.append(value)
        while bottom and bottom[-1] >= value:
            del bottom[-2:]
        bottom.append(msg_time)
        bottom.append(value)

    def spread(self, oldest: float) -> float:
        """The largest number kept minus the smallest, ``oldest`` the time of the oldest
        entry kept."""
        top, bottom = self.top, self.bottom
        _Running.first(top, oldest)
        _Running.first(bottom, oldest)
        return top[1] - bottom[1]

    @staticmethod
    def first(order: array[float], oldest: float) -> float:
        """The time of the first entry of ``order`` not older than ``oldest`` (those
        before it have left the history: forgotten here too)."""
        index = 0
        while order[index] < oldest:
            index += 2
        if index:
            del order[:index]
        return order[0]
