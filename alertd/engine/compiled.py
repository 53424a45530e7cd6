"""Thresholds per field compiled into sorted bounds: which rules a value can start.

Most readings change no alert. A rule without a live alert matters to a reading only if
its condition now holds; for a plain ``threshold`` (``above`` and/or ``below`` given as
numbers) that is a range test, so the rules of one field are kept as two sorted lists of
bounds and a value finds the ones it passes with a binary search, instead of an evaluation
per rule. Live alerts (pending, firing, flapping) are always evaluated by the engine, so
hysteresis (``clear_*``) never needs to be compiled: it applies only once firing.

Thresholds with ``equals`` or ``in`` are kept as a table from the values they name to their
rules (``FieldMatches``), and ``all``/``any`` of such thresholds (and of `missing` and
`change` conditions, reached as such rules of their own are) under each part's field: a
rule with no live alert can start holding only when a part on a field the message carries
holds with its new value, a `missing` part's field is newly null, or a `change` part's
field spreads as far as its amount (a part that held already made the rule hold, and its
alert is live).

A bound read from a field of the entity (per-device bounds) differs between entities and
cannot be sorted: the thresholds alike in their bounds are kept together
(``BoundedThresholds``), reached through their field and each bound field, and a message
that carries one of these checks whether they hold with the entity's newest values.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from alertd.config import schema as s
from alertd.engine.history import FieldHistory, is_number, newest_number, normalise

VIRTUAL = ("_lag", "_age")
_finite = math.isfinite


def compilable(condition: s.Condition) -> bool:
    """A condition whose start depends on the new values of its fields alone: a threshold
    with ``above``/``below`` (numbers, or fields of the entity), or with ``equals``/``in``;
    or ``all`` or ``any`` of such conditions and of `missing` and `change` ones, each of
    which can start holding only as a rule of its own can: a `missing` part when its
    field's newest entry is null, a `change` part when its field's spread reaches its
    amount (time alone only narrows its window). A `status` part is not compiled: a
    status that held before a reload holds after it, unchanged, and its rule must be
    reached by the messages of its other parts' fields, as it was."""
    if isinstance(condition, s.AllOf | s.AnyOf):
        return all(isinstance(part, s.Missing)
                   or isinstance(part, s.Change) and part.field not in VIRTUAL
                   or compilable(part) for part in condition.conditions)
    return isinstance(condition, s.Threshold) and condition.field not in VIRTUAL and (
        condition.equals is not None or condition.in_ is not None
        or condition.above is not None or condition.below is not None)


def bounded(condition: s.Threshold) -> bool:
    """A threshold with a bound read from a field of the entity (``above: {field: max}``):
    compiled as ``BoundedThresholds``, not into sorted bounds."""
    return isinstance(condition.above, s.FieldBound) or isinstance(condition.below, s.FieldBound)


def parts(condition: s.Condition) -> Iterator[s.Threshold | s.Missing | s.Change]:
    """The conditions a compilable condition is made of (itself, or its parts')."""
    if isinstance(condition, s.AllOf | s.AnyOf):
        for part in condition.conditions:
            yield from parts(part)
    elif isinstance(condition, s.Threshold | s.Missing | s.Change):
        yield condition


def _keys(value: Any) -> tuple[Any, ...]:
    """What a value is looked up by in ``FieldMatches``: a value that ``equals`` or ``in``
    matches (``conditions._equal``: numbers as numbers, true/false as themselves, the rest
    as text) shares a key with what they name. A number is also its text ("5.0" names it)."""
    if value.__class__ is bool:
        return ((bool, value),)
    if is_number(value):
        return value, str(value)
    return (str(value),)


class FieldThresholds:
    """The compiled thresholds of one field: ``starting(value)`` lists the rules (by number)
    whose condition holds for that value. A band rule (both bounds) is in both lists."""

    __slots__ = ("_above", "_above_rules", "_below", "_below_rules", "_highest_below",
                 "_lowest_above")

    matches = False  # a value that is not a number can start none of its rules

    def __init__(self, rules: Iterable[tuple[int, s.Threshold]]) -> None:
        listed = list(rules)
        self._set(sorted((float(c.above), n) for n, c in listed
                         if isinstance(c.above, float | int)),
                  sorted((float(c.below), n) for n, c in listed
                         if isinstance(c.below, float | int)))

    @staticmethod
    def of(rules: Iterable[tuple[int, s.Threshold]]) -> FieldThresholds:
        """The compiled thresholds of one field: ``FieldMatches`` when some name values."""
        listed = list(rules)
        if any(c.equals is not None or c.in_ is not None for _, c in listed):
            return FieldMatches(listed)
        return FieldThresholds(listed)

    def _set(self, above: list[tuple[float, int]], below: list[tuple[float, int]]) -> None:
        self._above = [bound for bound, _ in above]
        self._above_rules = [number for _, number in above]
        self._below = [bound for bound, _ in below]
        self._below_rules = [number for _, number in below]
        # between these no rule holds (most readings): no search, no list
        self._lowest_above = self._above[0] if above else math.inf
        self._highest_below = self._below[-1] if below else -math.inf

    @staticmethod
    def merged(first: FieldThresholds, second: FieldThresholds) -> FieldThresholds:
        """One field's thresholds of two indexes (an entity's layers) as one."""
        both = FieldMatches(()) if first.matches or second.matches else FieldThresholds(())
        both._set(sorted((*zip(first._above, first._above_rules),
                          *zip(second._above, second._above_rules))),
                  sorted((*zip(first._below, first._below_rules),
                          *zip(second._below, second._below_rules))))
        if isinstance(both, FieldMatches):
            for each in (first, second):
                if isinstance(each, FieldMatches):
                    for key, numbers in each._rules.items():
                        both._rules[key] = both._rules.get(key, ()) + numbers
        return both

    def starting(self, value: float) -> Sequence[int]:
        """Rules with ``above`` < value, and rules with ``below`` > value."""
        if self._highest_below <= value <= self._lowest_above:
            return ()
        found = self._above_rules[:bisect.bisect_left(self._above, value)]
        if self._below:
            found += self._below_rules[bisect.bisect_right(self._below, value):]
        return found


class FieldMatches(FieldThresholds):
    """The compiled thresholds of a field some of which name values (``equals``, ``in``):
    ``starting(value)`` also lists those that name it, whatever the value is (then some it
    lists may not hold: a number and its text share a key; the engine evaluates each)."""

    __slots__ = ("_rules",)
    matches = True

    def __init__(self, rules: Iterable[tuple[int, s.Threshold]]) -> None:
        listed = list(rules)
        super().__init__(listed)
        self._rules: dict[Any, tuple[int, ...]] = {}
        for number, condition in listed:
            named = (condition.equals,) if condition.equals is not None else condition.in_
            for value in named or ():
                for key in _keys(normalise(value)):
                    if number not in self._rules.get(key, ()):
                        self._rules[key] = self._rules.get(key, ()) + (number,)

    def starting(self, value: Any) -> Sequence[int]:
        if value.__class__ is float:
            started = FieldThresholds.starting(self, value)
            # a finite number's text names no rule (it would have been read as the number)
            named = self._rules.get(value) if _finite(value) else self._named(value)
            return [*started, *named] if named else started
        return () if value is None else self._named(value)

    def _named(self, value: Any) -> list[int]:
        return [n for key in _keys(value) for n in self._rules.get(key, ())]


class BoundedThresholds:
    """Thresholds of one field alike in their bounds, one of which at least is read from a
    field of the entity (``above: {field: max_temp}``, per-device bounds): ``holds(fields)``
    says whether they hold now, as ``conditions._threshold`` says for an alert that is not
    firing. Only a message that carries the field or a bound field can make them start:
    they are reached through each (``fields``), and a check costs two or three lookups."""

    __slots__ = ("above", "below", "field", "fields", "rules")

    def __init__(self, field: str, above: s.Bound | None, below: s.Bound | None,
                 rules: Iterable[int]) -> None:
        self.field, self.above, self.below = field, above, below
        self.rules = tuple(rules)
        named = {b.field for b in (above, below) if isinstance(b, s.FieldBound)}
        self.fields = (field, *sorted(named - {field}))

    def holds(self, fields: dict[str, FieldHistory]) -> bool:
        value = newest_number(fields.get(self.field))
        if value is None:
            return False
        high, low = self.above, self.below
        if isinstance(high, s.FieldBound):
            high = newest_number(fields.get(high.field))
            if high is None:  # a bound this entity has not reported: does not hold
                return False
        if isinstance(low, s.FieldBound):
            low = newest_number(fields.get(low.field))
            if low is None:
                return False
        return high is not None and value > high or low is not None and value < low


class FieldChanges:
    """The `change` rules of one field, by amount: ``reaching(spread)`` lists the rules
    (by number) whose amount the field's spread (its largest number kept minus its
    smallest, ``FieldHistory.spread``) reaches; no other one can hold. On a steady stream
    the spread reaches none of them, and a reading costs them one comparison in all."""

    __slots__ = ("_amounts", "_rules", "least")

    def __init__(self, rules: Iterable[tuple[float, int]]) -> None:
        pairs = sorted(rules)
        self._amounts = [amount for amount, _ in pairs]
        self._rules = [number for _, number in pairs]
        self.least = self._amounts[0] if pairs else math.inf

    @classmethod
    def merged(cls, first: FieldChanges, second: FieldChanges) -> FieldChanges:
        """One field's `change` rules of two indexes (an entity's layers) as one."""
        return cls((*zip(first._amounts, first._rules), *zip(second._amounts, second._rules)))

    def reaching(self, spread: float) -> list[int]:
        return self._rules[:bisect.bisect_right(self._amounts, spread)]
