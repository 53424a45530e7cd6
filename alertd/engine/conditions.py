"""What each message condition says about one entity, now.

``evaluate`` is a pure function of the entity's state. ``firing`` selects the hysteresis
bounds: a ``clear_*`` bound applies only once the alert fires; while pending, the plain
condition must hold. The result's ``wake`` is the daemon time at which the answer may change
with no new message (a ``change`` window sliding, ``_age`` growing); None when only a message
can change it. ``silent`` and ``source_down`` are about the absence of messages and are
handled by the engine itself.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

from alertd.config import schema as s
from alertd.engine.alerts import EPS
from alertd.engine.history import FieldHistory, is_number, newest_number, normalise

VIRTUAL_FIELDS = ("_lag", "_age")


class EntityView(Protocol):
    """What conditions may read of an entity."""

    status: str | None
    last_msg_time: float | None
    last_srv_time: float | None

    @property
    def offset(self) -> float: ...  # daemon time minus event time

    def history(self, field: str) -> FieldHistory | None: ...


class Result(NamedTuple):
    """What a condition says now. A named tuple: one is built for every rule a message
    reaches that has no compiled path, and a frozen dataclass took three times as long."""

    holds: bool
    field: str = ""
    value: Any = None
    wake: float | None = None
    known: bool = True  # False: no data yet (e.g. just after a restart); the alert stays put
    # a `change` that holds: (how much, from what value, within how many seconds)
    change: tuple[float, float, float] | None = None


FALSE = Result(False)


def evaluate(condition: s.Condition, entity: EntityView, firing: bool, now: float) -> Result:
    match condition:
        case s.Threshold():
            return _threshold(condition, entity, firing, now)
        case s.Missing():
            return _missing(condition, entity)
        case s.Change():
            return _change(condition, entity, now)
        case s.Status():
            # fires on a listed status; once firing, only `normal` resolves it (SPEC 5)
            status = entity.status
            if status is None:
                return Result(False, "status", None, known=False)
            holds = status != "normal" if firing else status in condition.in_
            return Result(holds, "status", status)
        case s.AllOf() | s.AnyOf():
            # A part without data does not hold (a missing series drops out of PromQL's
            # and/or); the whole is unknown only when no part knows anything.
            results = [evaluate(c, entity, firing, now) for c in condition.conditions]
            wakes = [r.wake for r in results if r.wake is not None]
            wake = min(wakes) if wakes else None
            known = [r for r in results if r.known]
            changed = next((r.change for r in known if r.holds and r.change), None)
            if isinstance(condition, s.AllOf):
                holds = all(r.holds for r in results)
                shown = known[0] if known else results[0]
            else:
                holds = any(r.holds for r in known)
                shown = next((r for r in known if r.holds), known[0] if known else results[0])
            return Result(holds, shown.field, shown.value, wake, bool(known),
                          changed if holds else None)
    raise TypeError(f"not a message condition: {type(condition).__name__}")


def _value(field: str, entity: EntityView, now: float) -> Any:
    if field == "_lag":
        if entity.last_srv_time is None or entity.last_msg_time is None:
            return None
        return entity.last_srv_time - entity.last_msg_time
    if field == "_age":
        return None if entity.last_msg_time is None else now - entity.last_msg_time
    history = entity.history(field)
    return None if history is None else history.newest()


def _equal(value: Any, expected: Any) -> bool:
    expected = normalise(expected)
    if is_number(value) and is_number(expected):
        return bool(value == expected)
    if isinstance(value, bool) or isinstance(expected, bool):
        return value is expected
    return str(value) == str(expected)


def _bound(bound: s.Bound | None, entity: EntityView) -> float | None:
    """A number bound as written, or the entity's newest numeric value of a bound field."""
    if not isinstance(bound, s.FieldBound):
        return bound
    return newest_number(entity.history(bound.field))


def _bounds(c: s.Threshold, entity: EntityView, firing: bool) -> tuple[float | None, ...] | None:
    """(above-side bound, below-side bound) in force: the clear_* bound once firing. None
    when a bound the condition needs is a field with no value on this entity yet."""
    out: list[float | None] = []
    for plain, clear in ((c.above, c.clear_below), (c.below, c.clear_above)):
        if plain is None:
            out.append(None)
            continue
        chosen = clear if firing and clear is not None else plain
        value = _bound(chosen, entity)
        if value is None:
            return None
        out.append(value)
    return tuple(out)


def _threshold(c: s.Threshold, entity: EntityView, firing: bool, now: float) -> Result:
    value = _value(c.field, entity, now)
    if value is None:
        return Result(False, c.field, None, known=False)
    if c.equals is not None:
        return Result(_equal(value, c.equals), c.field, value)
    if c.in_ is not None:
        return Result(any(_equal(value, x) for x in c.in_), c.field, value)
    if not is_number(value):  # "error" from a sensor says nothing about the temperature
        return Result(False, c.field, value, known=False)
    bounds = _bounds(c, entity, firing)
    if bounds is None:  # a per-device bound this entity has not reported: does not hold
        return Result(False, c.field, value, known=False)
    high_bound, low_bound = bounds
    high = low = False
    if high_bound is not None:
        high = value >= high_bound if firing and c.clear_below is not None \
            else value > high_bound
    if low_bound is not None:
        low = value <= low_bound if firing and c.clear_above is not None \
            else value < low_bound
    wake = None
    if c.field == "_age" and entity.last_msg_time is not None and high_bound is not None \
            and not high:  # age only grows: it crosses `above` at a known time
        wake = entity.last_msg_time + high_bound + EPS
    return Result(high or low, c.field, value, wake)


def _missing(c: s.Missing, entity: EntityView) -> Result:
    history = entity.history(c.field)
    if history is None:
        return Result(False, c.field, None, known=False)
    last = history.last()
    if last is None or last[1] is not None:  # the field has a value again: resolved
        return Result(False, c.field, last[1] if last else None)
    size = history.count()
    if c.of is None:
        holds = size >= c.nulls and history.nulls(c.nulls) == c.nulls
        # too few messages to say (after a restart): only nulls so far, not yet N of them
        undecided = not holds and history.nulls(size) == size
    else:
        holds = history.nulls(c.of) >= c.nulls
        undecided = not holds and size < c.of and \
            history.nulls(size) + c.of - size >= c.nulls
    return Result(holds, c.field, None, known=not undecided)


def _change(c: s.Change, entity: EntityView, now: float) -> Result:
    history = entity.history(c.field)
    if history is None:
        return Result(False, c.field, None, known=False)
    start = (now - entity.offset) - c.within  # the window, on the entity's event clock
    best, oldest_used, newest, detail = history.largest_change(start, c.drop is not None)
    if newest is None:  # values were seen, and have all slid out: no change is left
        newest = history.newest()
    amount = c.amount
    if amount is None or best < amount or oldest_used is None:
        return Result(False, c.field, newest)
    change = None if detail is None else (best, detail[0], detail[2] - detail[1])
    return Result(True, c.field, newest, oldest_used + c.within + entity.offset + EPS,
                  change=change)
