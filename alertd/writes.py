"""What the engine loop has yet to write, and when it writes it (pure: time is passed in).

The loop (``app._evaluate``) adds each wake-up's alert changes, events and replay positions
to an ``Unwritten`` and asks its ``WriteSchedule`` whether to write now:

  * alert changes and notices are written at once (the planner sees a notice only once it
    is written, so a crash never loses one);
  * replay positions that come with nothing else wait up to ``wait`` seconds and go with
    the next write: re-reading a second of readings that changed nothing after a crash
    costs nothing, while a transaction per frame was the largest cost per message. The
    first position of each socket is written at once, so a kill in the first second still
    finds one;
  * a failed write keeps everything in the ``Unwritten`` (in the order it happened) and is
    tried again after ``retry[0]`` seconds, doubling to ``retry[1]``; meanwhile nothing is
    written, so a replay position is only ever written with the alert changes it covers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from alertd.model import AlertEvent, AlertSettled, Batch, Notification
from alertd.records import Offer, Position, StoredAlert


@dataclass
class Unwritten:
    """Alert changes (the newest of each alert), replay positions (the newest of each
    socket) and the engine's events, in the order they happened."""

    alerts: dict[tuple[str, str], StoredAlert] = field(default_factory=dict)
    positions: dict[tuple[str, str], Position] = field(default_factory=dict)
    events: list[AlertEvent] = field(default_factory=list)

    def add(self, changed: Iterable[StoredAlert], events: Iterable[AlertEvent]) -> None:
        for alert in changed:
            self.alerts[(alert.rule, alert.entity)] = alert
        self.events += events

    def put_back(self, failed: Unwritten) -> None:
        """A write of ``failed`` did not happen: its work goes before what came meanwhile
        (newer alert states and positions win, events keep the order they happened)."""
        self.alerts = {**failed.alerts, **self.alerts}
        self.positions = {**failed.positions, **self.positions}
        self.events = failed.events + self.events

    @property
    def alerting(self) -> bool:
        return bool(self.alerts or self.events)

    def notes(self) -> list[Notification]:
        """The notifications made: the alert history."""
        return [event.note for event in self.events if not isinstance(event, AlertSettled)]

    def offers(self) -> list[Offer]:
        """Each notification for each of its channels, in the order the inbox gets them."""
        return [Offer(channel, event.note) for event in self.events
                if not isinstance(event, AlertSettled) for channel in event.channels]


def positions_of(batch: Batch) -> list[Position]:
    """The replay positions a batch reaches: its socket's, and its trackers' queues'."""
    found = [Position(batch.source, batch.socket, batch.cursor)] if batch.cursor else []
    return found + list(batch.positions)


class WriteSchedule:
    """When the engine loop writes (see the module's docstring). Times are daemon seconds."""

    def __init__(self, wait: float, retry: tuple[float, float]) -> None:
        self.wait = wait
        self.retry = retry
        self.positions_due = math.inf  # when positions alone must be written
        self.retry_at = math.inf  # while writes fail: when to try again
        self.delay = retry[0]
        self.positioned: set[tuple[str, str]] = set()  # sockets with a position written

    def next_deadline(self) -> float:
        """When the loop must wake to write, with no new input (inf: never)."""
        return self.positions_due if self.retry_at == math.inf else self.retry_at

    def position(self, key: tuple[str, str], now: float) -> None:
        """A socket reached a position: its first one is due at once."""
        if key not in self.positioned:
            self.positions_due = min(self.positions_due, now)

    def due(self, work: Unwritten, now: float) -> bool:
        """Whether to write ``work`` now."""
        if self.retry_at != math.inf:
            return now >= self.retry_at
        return work.alerting or (bool(work.positions) and now >= self.positions_due)

    def hold(self, work: Unwritten, now: float) -> None:
        """``work`` was not written now: positions alone wait at most ``wait`` seconds."""
        if work.positions and self.positions_due == math.inf:
            self.positions_due = now + self.wait

    def failed(self, now: float) -> None:
        self.retry_at, self.delay = now + self.delay, min(self.delay * 2, self.retry[1])

    def written(self, work: Unwritten) -> None:
        self.positioned.update(work.positions)
        self.positions_due = self.retry_at = math.inf
        self.delay = self.retry[0]
