"""Thresholds per field compiled into sorted bounds: which rules a value can start.

Most readings change no alert. A rule without a live alert matters to a reading only if
its condition now holds; for a plain ``threshold`` (``above`` and/or ``below`` given as
numbers) that is a range test, so the rules of one field are kept as two sorted lists of
bounds and a value finds the ones it passes with a binary search, instead of an evaluation
per rule. Live alerts (pending, firing, flapping) are always evaluated by the engine, so
hysteresis (``clear_*``) never needs to be compiled: it applies only once firing.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence

from alertd.config import schema as s

VIRTUAL = ("_lag", "_age")


def compilable(condition: s.Condition) -> bool:
    """A threshold whose start depends on one number: ``above``/``below`` as numbers."""
    return isinstance(condition, s.Threshold) and condition.field not in VIRTUAL \
        and condition.equals is None and condition.in_ is None \
        and (condition.above is not None or condition.below is not None) \
        and not isinstance(condition.above, s.FieldBound) \
        and not isinstance(condition.below, s.FieldBound)


class FieldThresholds:
    """The compiled thresholds of one field: ``starting(value)`` lists the rules (by number)
    whose condition holds for that value. A band rule (both bounds) is in both lists."""

    __slots__ = ("_above", "_above_rules", "_below", "_below_rules", "_highest_below",
                 "_lowest_above")

    def __init__(self, rules: Iterable[tuple[int, s.Threshold]]) -> None:
        listed = list(rules)
        self._set(sorted((float(c.above), n) for n, c in listed
                         if isinstance(c.above, float | int)),
                  sorted((float(c.below), n) for n, c in listed
                         if isinstance(c.below, float | int)))

    def _set(self, above: list[tuple[float, int]], below: list[tuple[float, int]]) -> None:
        self._above = [bound for bound, _ in above]
        self._above_rules = [number for _, number in above]
        self._below = [bound for bound, _ in below]
        self._below_rules = [number for _, number in below]
        # between these no rule holds (most readings): no search, no list
        self._lowest_above = self._above[0] if above else math.inf
        self._highest_below = self._below[-1] if below else -math.inf

    @classmethod
    def merged(cls, first: FieldThresholds, second: FieldThresholds) -> FieldThresholds:
        """One field's thresholds of two indexes (an entity's layers) as one."""
        both = cls(())
        both._set(sorted((*zip(first._above, first._above_rules),
                          *zip(second._above, second._above_rules))),
                  sorted((*zip(first._below, first._below_rules),
                          *zip(second._below, second._below_rules))))
        return both

    def starting(self, value: float) -> Sequence[int]:
        """Rules with ``above`` < value, and rules with ``below`` > value."""
        if self._highest_below <= value <= self._lowest_above:
            return ()
        found = self._above_rules[:bisect.bisect_left(self._above, value)]
        if self._below:
            found += self._below_rules[bisect.bisect_right(self._below, value):]
        return found


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
