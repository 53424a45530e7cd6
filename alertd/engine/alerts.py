"""The life of one alert (one rule, one entity), as two small state machines.

Flapping (``Flapping``, below first): STEADY -> FLAPPING when the alert changes state
``changes`` times within ``within`` seconds (a FLAPPING notice), and back to STEADY once the
state has stood still for ``within``. While FLAPPING, fired and resolved notices and repeats
are held back; on return to STEADY the current state is notified if it differs from the last
one notified.

The alert (``Alert``): INACTIVE -> PENDING -> FIRING -> CLEARING -> RESOLVED, one step per
signal, from the table ``TABLE``: (state, signal) -> (next state, notice). A pair that is
not in the table is a bug and raises, naming the state and the signal.

  * The condition's answer is the first signal of a step: HOLDS or CLEAR.
  * Time gives the next ones, in this order, while they apply: FOR_ELAPSED (pending for
    ``for``), CLEAR_FOR_ELAPSED (clearing for ``clear_for``), REPEAT_DUE (``repeat`` since
    the last notice, not flapping).
  * CLEARING is a firing alert whose condition stopped holding less than ``clear_for`` ago:
    reminders are still due, and operators see it as firing (``AlertState.shown``).

Invariants:
  * one Alert per (rule, entity); it is only ever moved by ``Alert.step``;
  * ``since`` is set whenever the alert enters pending from inactive/resolved; a firing alert
    keeps the ``since`` of its pending start; ``started`` is that start too, and survives the
    resolve, so a resolved notice can say how long the episode lasted;
  * a notification is produced only by a transition or a due repeat, never twice for the
    same transition;
  * times are the entity's event clock (seconds); the engine converts to daemon time.
"""

from __future__ import annotations

import dataclasses
import enum
from collections import deque
from dataclasses import dataclass
from typing import Any

from alertd.config import schema as s
from alertd.model import AlertState

INACTIVE, PENDING, FIRING, CLEARING, RESOLVED = (
    AlertState.INACTIVE, AlertState.PENDING, AlertState.FIRING, AlertState.CLEARING,
    AlertState.RESOLVED)
EPS = 1e-6  # float slack when a deadline computed in one clock is met in another


class Notice(enum.StrEnum):
    """What a step has to say (the engine makes each a Notification event)."""

    FIRED = "firing"
    REPEATED = "repeat"
    RESOLVED = "resolved"
    FLAPPING = "flapping"


# ---- flapping --------------------------------------------------------------------------


@dataclass(slots=True)
class Flapping:
    """Whether an alert flaps: the times of its recent state changes, and whether they were
    too many (``on``). Only used when the rule has a ``flapping`` block."""

    rule: s.Flapping
    on: bool = False
    changes: deque[float] = dataclasses.field(default_factory=deque)

    def changed(self, t: float) -> tuple[bool, bool]:
        """Count a state change at ``t``: (notices are held back, flapping starts now)."""
        self.changes.append(t)
        while self.changes and self.changes[0] < t - self.rule.within:
            self.changes.popleft()
        if self.on:
            return True, False
        if len(self.changes) >= self.rule.changes:
            self.on = True
            return True, True
        return False, False

    def settled(self, t: float) -> bool:
        """Whether flapping ends at ``t``: the state has stood still for ``within``."""
        if self.on and self.changes and t - self.changes[-1] >= self.rule.within - EPS:
            self.on = False
            self.changes.clear()
            return True
        return False

    def deadline(self) -> float | None:
        return self.changes[-1] + self.rule.within if self.on and self.changes else None


# ---- the alert -------------------------------------------------------------------------


class Signal(enum.Enum):
    HOLDS = "holds"
    CLEAR = "clear"
    FOR_ELAPSED = "for elapsed"
    CLEAR_FOR_ELAPSED = "clear_for elapsed"
    REPEAT_DUE = "repeat due"


# (state, signal) -> (next state, notice). FIRED and RESOLVED notices may be held back by
# flapping or (RESOLVED) by `resolved: false`: see Alert._enter.
TABLE: dict[tuple[AlertState, Signal], tuple[AlertState, Notice | None]] = {
    (INACTIVE, Signal.CLEAR): (INACTIVE, None),
    (INACTIVE, Signal.HOLDS): (PENDING, None),
    (RESOLVED, Signal.CLEAR): (RESOLVED, None),
    (RESOLVED, Signal.HOLDS): (PENDING, None),
    (PENDING, Signal.HOLDS): (PENDING, None),
    (PENDING, Signal.CLEAR): (INACTIVE, None),
    (PENDING, Signal.FOR_ELAPSED): (FIRING, Notice.FIRED),
    (FIRING, Signal.HOLDS): (FIRING, None),
    (FIRING, Signal.CLEAR): (CLEARING, None),
    (FIRING, Signal.REPEAT_DUE): (FIRING, Notice.REPEATED),
    (CLEARING, Signal.HOLDS): (FIRING, None),
    (CLEARING, Signal.CLEAR): (CLEARING, None),
    (CLEARING, Signal.CLEAR_FOR_ELAPSED): (RESOLVED, Notice.RESOLVED),
    (CLEARING, Signal.REPEAT_DUE): (CLEARING, Notice.REPEATED),
}


@dataclass(slots=True)
class Alert:
    rule: s.Rule
    entity: str
    state: AlertState = INACTIVE
    since: float = 0.0
    clearing_since: float | None = None  # set exactly while CLEARING
    last_notified: float | None = None
    notified_state: AlertState | None = None  # FIRING | RESOLVED: the last one sent
    flap: Flapping | None = None
    field: str = ""
    value: Any = None
    started: float = 0.0  # when the current or last episode began pending (kept on resolve)
    # daemon time minus event time when the episode began, frozen: what a notice, the
    # store and `alertd alerts` add to event times, so all of them show the same moment
    shift: float = 0.0
    change: tuple[float, float, float] | None = None  # the change that fired it, if any

    def __post_init__(self) -> None:
        self.state = AlertState(self.state)  # a state that does not exist fails here
        if self.flap is None and self.rule.flapping is not None:
            self.flap = Flapping(self.rule.flapping)

    @property
    def firing(self) -> bool:
        """Firing as operators see it (CLEARING included)."""
        return self.state is FIRING or self.state is CLEARING

    @property
    def flapping(self) -> bool:
        return self.flap is not None and self.flap.on

    def step(self, holds: bool, t: float) -> list[Notice]:
        """Advance with the condition's answer at event time ``t``; return notices due."""
        out: list[Notice] = []
        signal: Signal | None = Signal.HOLDS if holds else Signal.CLEAR
        while signal is not None:
            self._apply(signal, t, out)
            signal = self._due(t)
        if self.flap is not None and self.flap.settled(t):
            self._end_flapping(t, out)
        return out

    def deadline(self) -> float | None:
        """The event time at which, without new input, this alert may change."""
        times = []
        if self.state is PENDING:
            times.append(self.since + self.rule.for_)
        if self.state is CLEARING and self.clearing_since is not None:
            times.append(self.clearing_since + self.rule.clear_for)
        if self.firing and self.rule.repeat is not None and self.last_notified is not None \
                and not self.flapping:
            times.append(self.last_notified + self.rule.repeat)
        flap_end = self.flap.deadline() if self.flap is not None else None
        if flap_end is not None:
            times.append(flap_end)
        return min(times) if times else None

    def to_data(self) -> dict[str, Any]:
        """What a restart needs to resume this alert, as JSON-able values. The state is
        written as operators see it (CLEARING as firing, with ``clearing_since``)."""
        return {"state": str(self.state.shown), "since": self.since,
                "clearing_since": self.clearing_since, "last_notified": self.last_notified,
                "notified_state": None if self.notified_state is None
                else str(self.notified_state),
                "flapping": self.flapping,
                "changes": list(self.flap.changes) if self.flap is not None else [],
                "field": self.field, "value": self.value,
                "severity": self.rule.severity, "labels": dict(self.rule.labels),
                "started": self.started, "shift": self.shift}

    @classmethod
    def from_data(cls, rule: s.Rule, entity: str, data: dict[str, Any]) -> Alert:
        try:
            state = AlertState(data.get("state", INACTIVE))
        except ValueError:
            raise ValueError(f"unknown alert state {data.get('state')!r}") from None
        clearing_since = data.get("clearing_since")
        if state is FIRING and clearing_since is not None:
            state = CLEARING
        elif state is not CLEARING:
            clearing_since = None
        notified = data.get("notified_state")
        alert = cls(rule, entity, state=state, since=float(data.get("since", 0.0)),
                    clearing_since=clearing_since, last_notified=data.get("last_notified"),
                    notified_state=None if notified is None else AlertState(notified),
                    field=str(data.get("field", "")), value=data.get("value"),
                    started=float(data.get("started", data.get("since", 0.0))),
                    shift=float(data.get("shift", 0.0)))
        if alert.flap is not None:
            alert.flap.on = bool(data.get("flapping", False))
            alert.flap.changes.extend(float(t) for t in data.get("changes", ()))
        return alert

    def fingerprint(self) -> tuple[Any, ...]:
        """Changes whenever something a restart needs has changed."""
        return (self.state, self.since, self.clearing_since, self.last_notified,
                self.notified_state, self.flapping,
                len(self.flap.changes) if self.flap is not None else 0)

    # ---- transitions -------------------------------------------------------------------

    def _due(self, t: float) -> Signal | None:
        """The signal time gives at ``t``, if any."""
        if self.state is PENDING and t - self.since >= self.rule.for_ - EPS:
            return Signal.FOR_ELAPSED
        if self.state is CLEARING and self.clearing_since is not None \
                and t - self.clearing_since >= self.rule.clear_for - EPS:
            return Signal.CLEAR_FOR_ELAPSED
        repeat = self.rule.repeat
        if self.firing and repeat is not None and not self.flapping \
                and self.last_notified is not None and t - self.last_notified >= repeat - EPS:
            return Signal.REPEAT_DUE
        return None

    def _apply(self, signal: Signal, t: float, out: list[Notice]) -> None:
        found = TABLE.get((self.state, signal))
        if found is None:
            raise RuntimeError(f"alert {self.rule.name} {self.entity}: no transition from "
                               f"state {self.state.value!r} on {signal.value!r}")
        state, notice = found
        if state is not self.state:
            self._enter(state, t)
        if notice is Notice.REPEATED:
            self.last_notified = t
            out.append(notice)
        elif notice is not None:
            self._say(notice, t, out)

    def _enter(self, state: AlertState, t: float) -> None:
        if state is PENDING:
            self.since = self.started = t
        elif state is FIRING:
            if self.state is PENDING:
                self.last_notified = t
        elif state is RESOLVED:
            self.since = t
        self.clearing_since = t if state is CLEARING else None
        self.state = state

    def _say(self, notice: Notice, t: float, out: list[Notice]) -> None:
        """A fired or resolved notice, unless flapping holds it back (or ``resolved:
        false``): the change is counted for flapping either way."""
        held = False
        if self.flap is not None:
            held, started = self.flap.changed(t)
            if started:
                out.append(Notice.FLAPPING)
        if held or (notice is Notice.RESOLVED and not self.rule.resolved):
            return
        self.notified_state = FIRING if notice is Notice.FIRED else RESOLVED
        out.append(notice)

    def _end_flapping(self, t: float, out: list[Notice]) -> None:
        if self.firing and self.notified_state is not FIRING:
            self.notified_state = FIRING
            self.last_notified = t
            out.append(Notice.FIRED)
        elif not self.firing and self.notified_state is FIRING and self.rule.resolved:
            self.notified_state = RESOLVED
            out.append(Notice.RESOLVED)
