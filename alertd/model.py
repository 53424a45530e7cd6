"""The immutable vocabulary that crosses alertd's boundaries.

Sources turn frames into events (``Message``, ``StatusChanged``, ``SourceUp``,
``SourceDown``); the engine turns events into ``Notification``s. Times are seconds since the
Unix epoch (floats), read once per wake-up by the loop and passed in.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True, init=False)
class Message:
    """One reading or packet of an entity.

    ``fields`` maps names to values (None for an explicit null). ``absent_is_null`` says
    whether a field the message lacks counts as null in the history (ELEMENT readings: yes;
    ELEMENT packets: no, a packet is not a reading; Navixy's merged per-attribute queues:
    no, each attribute carries its own nulls).
    """

    source: str
    entity: str
    msg_time: float
    fields: Mapping[str, Any]
    srv_time: float | None = None
    entity_name: str | None = None
    absent_is_null: bool = True
    history_only: bool = False  # evaluated by an earlier run (a window resent after a
    # restart): it rebuilds the entity's history but is not evaluated again

    def __init__(self, source: str, entity: str, msg_time: float, fields: Mapping[str, Any],
                 srv_time: float | None = None, entity_name: str | None = None,
                 absent_is_null: bool = True, history_only: bool = False) -> None:
        # what a frozen dataclass's own __init__ does, through each slot's setter: that one
        # looks object.__setattr__ up again for every field, 1.8 us a message against 0.84
        # (a decoder makes one per reading: a fifth of an ELEMENT reading's decoding)
        _source(self, source)
        _entity(self, entity)
        _msg_time(self, msg_time)
        _fields(self, fields)
        _srv_time(self, srv_time)
        _entity_name(self, entity_name)
        _absent_is_null(self, absent_is_null)
        _history_only(self, history_only)


(_source, _entity, _msg_time, _fields, _srv_time, _entity_name, _absent_is_null,
 _history_only) = (getattr(Message, name).__set__ for name in Message.__slots__)


@dataclass(frozen=True, slots=True)
class StatusChanged:
    """A Navixy tracker's status: normal, blocked, unknown or disallowed."""

    source: str
    entity: str
    status: str


@dataclass(frozen=True, slots=True)
class SourceUp:
    source: str


@dataclass(frozen=True, slots=True)
class SourceDown:
    source: str
    reason: str = ""


Event = Message | StatusChanged | SourceUp | SourceDown


class AlertState(enum.StrEnum):
    """Where one alert (one rule, one entity) stands. CLEARING is a firing alert whose
    condition stopped holding less than ``clear_for`` ago: operators, the store's ``state``
    column and ``alertd alerts`` see it as FIRING (``shown``)."""

    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"
    CLEARING = "clearing"
    RESOLVED = "resolved"

    @property
    def shown(self) -> AlertState:
        return AlertState.FIRING if self is AlertState.CLEARING else self


# the states an operator sees (`alertd alerts`, the page, /metrics); inactive is not listed
SHOWN_STATES = (AlertState.PENDING, AlertState.FIRING, AlertState.RESOLVED)
# what `alertd alerts` lists without --all: the alerts that are live
LISTED = (AlertState.PENDING, AlertState.FIRING)


class NoticeKind(enum.StrEnum):
    """What a ``Notification`` says (its ``state``): the alert fired (or fires again, with
    ``repeat``), resolved, or started flapping."""

    FIRING = "firing"
    RESOLVED = "resolved"
    FLAPPING = "flapping"


@dataclass(frozen=True, slots=True)
class Notification:
    """What an alert has to say: it fired (again, when ``repeat``), resolved, or flaps.

    ``entity`` is ``source/id`` for entity alerts and the source's name for ``source_down``.
    ``since`` is when the alert's episode began (when it started pending), for firing and
    resolved notices alike, so ``at - since`` is how long the problem lasted. Times are
    daemon-clock seconds.
    """

    rule: str
    entity: str
    state: NoticeKind
    at: float
    since: float
    severity: str
    source: str
    entity_name: str = ""
    field: str = ""
    value: Any = None
    repeat: bool = False
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    description: str = ""
    # for a `change` rule: (how much the field changed, from what value, within how many
    # seconds), as found when the alert fired
    change: tuple[float, float, float] | None = None


@dataclass(frozen=True, slots=True)
class Position:
    """A replay position to save: an ELEMENT socket's ``after=`` (``socket`` is its path), or
    a Navixy tracker's queue positions (``socket`` is ``tracker/ID``)."""

    source: str
    socket: str
    after: str


@dataclass(frozen=True, slots=True)
class Batch:
    """The events of one frame (or one connection change), as a source hands them to the
    engine loop. ``cursor`` is the socket's replay position (ELEMENT ``after=``), saved only
    once the events have been evaluated, so a crash in between replays them."""

    source: str
    events: tuple[Event, ...]
    socket: str = ""
    cursor: str | None = None
    received: float | None = None  # trio time the frame arrived (for the latency metric)
    # more positions to save with the events: a Navixy tracker's queues
    positions: tuple[Position, ...] = ()


# ---- what the engine reports (``Engine.receive``/``on_timer``) --------------------------
# Each notice carries the channels its rule routes it to, so the loop only writes and
# forwards it; AlertSettled is an alert that stopped firing without a notice of its own
# (``resolved: false``, or held back while flapping): the planner stops counting it.


@dataclass(frozen=True, slots=True)
class _Notice:
    note: Notification
    channels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AlertFired(_Notice):
    """The alert fired (or fires again after flapping)."""


@dataclass(frozen=True, slots=True)
class AlertRepeated(_Notice):
    """A reminder: still firing ``repeat`` after the last notice."""


@dataclass(frozen=True, slots=True)
class AlertResolved(_Notice):
    """The alert resolved."""


@dataclass(frozen=True, slots=True)
class AlertFlapping(_Notice):
    """The alert started flapping: its notices are held back until it is stable."""


@dataclass(frozen=True, slots=True)
class AlertSettled:
    rule: str
    entity: str


AlertNotice = AlertFired | AlertRepeated | AlertResolved | AlertFlapping
AlertEvent = AlertNotice | AlertSettled
