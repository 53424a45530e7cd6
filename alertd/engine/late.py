"""Late messages: a message measured before others already seen (SPEC section 5).

ELEMENT replays arrive in insertion order, so a reading measured earlier can arrive after
newer ones. Conditions read the newest value, so such a message cannot change what holds
*now*; but it can break a period that had to hold throughout:

  * while an alert is pending, the plain condition must hold on every message since the
    pending start: a late message inside that period that breaks it restarts ``for`` at the
    first later message from which the condition held again; so does one measured before
    the period whose value was still the newest of its field at a moment inside it;
  * while a firing alert is clearing (``clear_for``), the condition must stay clear: a late
    message inside that period on which it still held restarts ``clear_for`` the same way.

The condition is judged "as of" each message time: on the entity's history cut at that
time (values measured later are not seen), with the event clock at that time. Results
without data say nothing and are skipped. Only the moments the history still holds (the 12
newest values per field) can be judged; a late message older than all of them is judged
on its own values. A period that none of the judged moments breaks keeps its start, even
one older than the moments kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from alertd.config import schema as s
from alertd.engine.alerts import CLEARING, EPS, PENDING, Alert
from alertd.engine.conditions import VIRTUAL_FIELDS, evaluate
from alertd.engine.history import FieldHistory, normalise


class _Entity(Protocol):
    status: str | None
    fields: dict[str, FieldHistory]


class _AsOf:
    """An entity as it looked at event time ``at`` (an ``EntityView``)."""

    __slots__ = ("status", "last_msg_time", "last_srv_time", "_entity", "_at", "_own")

    def __init__(self, entity: _Entity, at: float, own: Mapping[str, Any] | None) -> None:
        self.status = entity.status
        self.last_msg_time: float | None = at
        self.last_srv_time: float | None = None  # unknown: `_lag` says nothing here
        self._entity = entity
        self._at = at
        self._own = own  # the late message's own fields, at `at`

    @property
    def offset(self) -> float:
        return 0.0  # the event clock is `at` itself

    def history(self, field: str) -> FieldHistory | None:
        found = self._entity.fields.get(field)
        own = self._own is not None and field in self._own
        if found is None and not own:
            return None
        cut = found.cut(self._at + EPS) if found is not None else FieldHistory()
        if own and self._own is not None:
            cut.record(self._at, normalise(self._own[field]))
        return cut


def _times(entity: _Entity, condition: s.Condition) -> set[float]:
    """Every message time the histories of the condition's fields remember."""
    times: set[float] = set()
    for field in s.condition_fields(condition):
        if field in VIRTUAL_FIELDS:
            continue
        history = entity.fields.get(field)
        if history is not None:
            times.update(history.times())
    return times


def restart_periods(entity: _Entity, alerts: Mapping[int, Alert],
                    conditions: Mapping[int, s.Condition], numbers: Iterable[int],
                    late: float, fields: Mapping[str, Any]) -> list[Alert]:
    """Move the start of pending and clearing periods that the late message at event time
    ``late`` (with ``fields``) breaks; return the alerts changed."""
    changed = []
    for number in numbers:
        alert = alerts.get(number)
        if alert is None:
            continue
        if alert.state is PENDING:
            start, wanted = alert.since, True  # looking for the condition to hold throughout
        elif alert.state is CLEARING and alert.clearing_since is not None:
            start, wanted = alert.clearing_since, False  # ... to stay clear throughout
        else:
            continue
        condition = conditions.get(number, alert.rule.condition)
        if isinstance(condition, (s.Silent, s.SourceDown)):
            continue
        run = _final_run(entity, condition, alert.firing, start, wanted, late, fields)
        if run is None:
            continue  # unbroken, or the newest breaks it: the ordinary evaluation decides
        if wanted:
            alert.since = alert.started = run
        else:
            alert.clearing_since = run
        changed.append(alert)
    return changed


def _final_run(entity: _Entity, condition: s.Condition, firing: bool, start: float,
               wanted: bool, late: float, fields: Mapping[str, Any]) -> float | None:
    """Where the final unbroken run of ``wanted`` results began, judged as of each remembered
    message time from ``start`` on, and the late one if it is not older than ``start`` (one
    older is judged through the moments after it, where its value may still be in force);
    None when nothing broke the period (the oldest moment judged is then only the oldest one
    kept, not a restart) or when the newest moment breaks it."""
    run: float | None = None
    broken = False
    moments = {t for t in _times(entity, condition) if t >= start - EPS}
    if late >= start - EPS:
        moments.add(late)
    for at in sorted(moments):
        result = evaluate(condition, _AsOf(entity, at, fields if at == late else None),
                          firing, at)
        if not result.known:
            continue
        if result.holds == wanted:
            run = at if run is None else run
        else:
            run, broken = None, True
    return run if broken else None
