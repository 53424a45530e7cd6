"""The life of one alert (one rule, one entity): inactive -> pending -> firing -> resolved.

Invariants:
  * one Alert per (rule, entity); it is only ever moved by ``Alert.step``;
  * ``since`` is set whenever the alert enters pending or firing from inactive/resolved, and
    a firing alert keeps the ``since`` of its pending start; ``started`` is that start too,
    and survives the resolve, so a resolved notice can say how long the episode lasted;
  * a notification is produced only by a transition (fired, resolved, flapping started or
    ended) or by a due repeat; never twice for the same transition;
  * while flapping, fired/resolved/repeat notifications are held back; when the alert has been
    stable for the flapping window, its current state is notified if it differs from the
    last state notified;
  * times are the entity's event clock (seconds); the engine converts to daemon time.

The transitions are the table ``_TABLE``: (state, condition holds?) -> handler. A state that
is not in the table is a bug and raises, naming the state and the signal.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from alertd.config import schema as s

INACTIVE, PENDING, FIRING, RESOLVED = "inactive", "pending", "firing", "resolved"
STATES = (INACTIVE, PENDING, FIRING, RESOLVED)
EPS = 1e-6  # float slack when a deadline computed in one clock is met in another


@dataclass(slots=True)
class Alert:
    rule: s.Rule
    entity: str
    state: str = INACTIVE
    since: float = 0.0
    clearing_since: float | None = None
    last_notified: float | None = None
    notified_state: str | None = None  # firing | resolved: the last one sent
    flapping: bool = False
    changes: deque[float] = dataclasses.field(default_factory=deque)
    field: str = ""
    value: Any = None
    started: float = 0.0  # when the current or last episode began pending (kept on resolve)
    # daemon time minus event time when the episode began, frozen: what a notice, the
    # store and `alertd alerts` add to event times, so all of them show the same moment
    shift: float = 0.0
    change: tuple[float, float, float] | None = None  # the change that fired it, if any

    def step(self, holds: bool, t: float) -> list[str]:
        """Advance with the condition's answer at event time ``t``; return notices due."""
        handler = _TABLE.get((self.state, holds))
        if handler is None:
            raise RuntimeError(f"alert {self.rule.name} {self.entity}: no transition from "
                               f"state {self.state!r} on holds={holds}")
        out: list[str] = []
        handler(self, t, out)
        if self.flapping and self.changes and t - self.changes[-1] >= self._flap_window - EPS:
            self._end_flapping(t, out)
        return out

    def deadline(self) -> float | None:
        """The event time at which, without new input, this alert may change."""
        times = []
        if self.state == PENDING:
            times.append(self.since + self.rule.for_)
        if self.state == FIRING:
            if self.clearing_since is not None:
                times.append(self.clearing_since + self.rule.clear_for)
            if self.rule.repeat is not None and self.last_notified is not None \
                    and not self.flapping:
                times.append(self.last_notified + self.rule.repeat)
        if self.flapping and self.changes:
            times.append(self.changes[-1] + self._flap_window)
        return min(times) if times else None

    def to_data(self) -> dict[str, Any]:
        """What a restart needs to resume this alert, as JSON-able values."""
        return {"state": self.state, "since": self.since, "clearing_since": self.clearing_since,
                "last_notified": self.last_notified, "notified_state": self.notified_state,
                "flapping": self.flapping, "changes": list(self.changes),
                "field": self.field, "value": self.value,
                "severity": self.rule.severity, "labels": dict(self.rule.labels),
                "started": self.started, "shift": self.shift}

    @classmethod
    def from_data(cls, rule: s.Rule, entity: str, data: dict[str, Any]) -> Alert:
        state = data.get("state", INACTIVE)
        if state not in STATES:
            raise ValueError(f"unknown alert state {state!r}")
        return cls(rule, entity, state, float(data.get("since", 0.0)),
                   data.get("clearing_since"), data.get("last_notified"),
                   data.get("notified_state"), bool(data.get("flapping", False)),
                   deque(float(t) for t in data.get("changes", ())),
                   str(data.get("field", "")), data.get("value"),
                   float(data.get("started", data.get("since", 0.0))),
                   float(data.get("shift", 0.0)))

    def fingerprint(self) -> tuple[Any, ...]:
        """Changes whenever something a restart needs has changed."""
        return (self.state, self.since, self.clearing_since, self.last_notified,
                self.notified_state, self.flapping, len(self.changes))

    @property
    def _flap_window(self) -> float:
        return self.rule.flapping.within if self.rule.flapping else 0.0

    # ---- transitions -------------------------------------------------------------------

    def _start(self, t: float, out: list[str]) -> None:
        self.since = self.started = t
        self.clearing_since = None
        if self.rule.for_ <= 0:
            self._fire(t, out)
        else:
            self.state = PENDING

    def _rest(self, t: float, out: list[str]) -> None:
        return None

    def _pending(self, t: float, out: list[str]) -> None:
        if t - self.since >= self.rule.for_ - EPS:
            self._fire(t, out)

    def _pending_broken(self, t: float, out: list[str]) -> None:
        self.state = INACTIVE

    def _firing(self, t: float, out: list[str]) -> None:
        self.clearing_since = None
        self._repeat_if_due(t, out)

    def _clearing(self, t: float, out: list[str]) -> None:
        if self.clearing_since is None:
            self.clearing_since = t
        if t - self.clearing_since >= self.rule.clear_for - EPS:
            self._resolve(t, out)
        else:  # still firing until clear_for has passed: reminders are still due
            self._repeat_if_due(t, out)

    def _repeat_if_due(self, t: float, out: list[str]) -> None:
        repeat = self.rule.repeat
        if repeat is not None and not self.flapping and self.last_notified is not None \
                and t - self.last_notified >= repeat - EPS:
            self.last_notified = t
            out.append("repeat")

    def _fire(self, t: float, out: list[str]) -> None:
        self.state = FIRING
        self.clearing_since = None
        self.last_notified = t
        if not self._changed(t, out):
            self.notified_state = FIRING
            out.append(FIRING)

    def _resolve(self, t: float, out: list[str]) -> None:
        self.state = RESOLVED
        self.since = t
        self.clearing_since = None
        if not self._changed(t, out) and self.rule.resolved:
            self.notified_state = RESOLVED
            out.append(RESOLVED)

    def _changed(self, t: float, out: list[str]) -> bool:
        """Count a state change for flapping; True when notices are held back."""
        flapping = self.rule.flapping
        if flapping is None:
            return False
        self.changes.append(t)
        while self.changes and self.changes[0] < t - flapping.within:
            self.changes.popleft()
        if self.flapping:
            return True
        if len(self.changes) >= flapping.changes:
            self.flapping = True
            out.append("flapping")
            return True
        return False

    def _end_flapping(self, t: float, out: list[str]) -> None:
        self.flapping = False
        self.changes.clear()
        if self.state == FIRING and self.notified_state != FIRING:
            self.notified_state = FIRING
            self.last_notified = t
            out.append(FIRING)
        elif self.state != FIRING and self.notified_state == FIRING and self.rule.resolved:
            self.notified_state = RESOLVED
            out.append(RESOLVED)


_Handler = Callable[[Alert, float, list[str]], None]
_TABLE: dict[tuple[str, bool], _Handler] = {
    (INACTIVE, True): Alert._start,
    (INACTIVE, False): Alert._rest,
    (RESOLVED, True): Alert._start,
    (RESOLVED, False): Alert._rest,
    (PENDING, True): Alert._pending,
    (PENDING, False): Alert._pending_broken,
    (FIRING, True): Alert._firing,
    (FIRING, False): Alert._clearing,
}
