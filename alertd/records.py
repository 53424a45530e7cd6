"""What crosses the boundary between the engine, its loop and the state store (evaluate side).

The engine hands the loop ``StoredAlert``s (``Engine.take_changed``) and takes them back at
a restart (``Engine.restore``); ``Engine.alerts`` lists ``AlertView``s for ``/metrics``,
``/alerts`` and the web page. The loop writes, in one transaction (``Store.commit``), the
changed ``StoredAlert``s, the replay ``Position``s their frames reached, the notifications
made (the history) and one ``Offer`` per (channel, notification) for the planner's inbox.
Pure values: no I/O here, so the engine may import this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alertd.model import AlertState, Notification
from alertd.model import Position as Position  # defined with Batch, which carries it


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """An alert as persisted: its state as shown (CLEARING shows as FIRING), when its
    episode began (daemon time), and the engine's data to resume it (JSON-able)."""

    rule: str
    entity: str
    state: AlertState
    since: float
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AlertView:
    """One alert that is not inactive, as ``alertd alerts``, /alerts and /metrics show it."""

    rule: str
    entity: str
    state: AlertState
    since: float


@dataclass(frozen=True, slots=True)
class Offer:
    """One notification for one channel, to be written to the planner's inbox."""

    channel: str
    note: Notification
