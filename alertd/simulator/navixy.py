"""A fake Navixy event-subscription server on 127.0.0.1: ``iot_monitor`` over Atmosphere.

The upgrade needs the Atmosphere query parameters (recorded in ``connections``). The first
frame is the Atmosphere handshake ``<uuid>|<heartbeat_ms>|X|``, then a bare ``X`` every
heartbeat; a client that sends nothing (no ``X``, no action) for 3 heartbeats is closed.
A subscribe action with a known ``hash`` gets the ``subscription/subscribe`` response
(each tracker's status; ``success`` omitted, as real traffic does, unless
``include_success``) and at once one ``iot_monitor`` event with the windows of its
trackers; a wrong hash gets error 3, more than 10 trackers in one request error 7.
``add_message`` appends to a tracker's windows (``windows.py``) and resends the whole
windows of every changed tracker, at most once per the subscription's ``rate_limit`` per
connection: the first change after a quiet spell goes out at once, later ones are
coalesced and sent, latest windows only, when the limit allows.

Both sides of what the record leaves open can be chosen: ``replace_subscriptions`` makes a
subscribe action replace the connection's earlier subscriptions instead of adding to them;
``list_queues`` sends ``nonnull_fields``/``all_fields`` as a list of one-attribute objects
(the seed's text) instead of one object keyed by attribute (its sample); ``refuse_next``
answers that many subscribe actions with ``{"success": false}`` and no ``value``.
``block``/``unblock`` change a tracker's status and send the ``lifecycle`` event, naming
the device's source id (not the tracker id), as the real server does.

Decisions where the public record is silent: only trackers whose status is ``normal`` get
windows (``blocked`` ones are excluded by the seed page; ``unknown`` and ``disallowed``
ones are not the session's to see); trackers without any message are left out of an
event, and no event is sent when none has one; unblocking (``set_status`` from
``blocked`` to ``normal``) sends the tracker's windows, as the seed page says for state;
a missing Atmosphere parameter is refused with HTTP 400; an unreadable action gets error 5.
Message times come from ``clock`` (epoch seconds); heartbeats and rate limits run on trio
time, so ``autojump_clock`` runs them in milliseconds.
"""

from __future__ import annotations

import json
import logging
import math
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import trio
import trio_websocket

from alertd.config.schema import NAVIXY_MAX_TRACKERS_PER_REQUEST as MAX_TRACKERS
from alertd.config.schema import STATUSES
from alertd.simulator.base import Connection, FakeServer
from alertd.simulator.windows import TrackerWindows, parse_rate_limit

log = logging.getLogger("alertd.simulator.navixy")

ATMOSPHERE_PARAMS = ("X-Atmosphere-tracking-id", "X-Atmosphere-Framework",
                     "X-Atmosphere-Transport", "Content-Type", "X-atmo-protocol")
SUBSCRIBE = "subscription/subscribe"


class _Refused(Exception):
    """A subscribe action the server answers with an error frame."""

    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


@dataclass(eq=False)
class _Subscriber:
    """One connection's subscriptions and its rate-limit bookkeeping (trio time)."""
    connection: Connection
    heard: float
    rates: dict[int, float] = field(default_factory=dict)  # tracker -> rate_limit, seconds
    last_sent: dict[int, float] = field(default_factory=dict)
    pending: set[int] = field(default_factory=set)  # changed since last sent
    wake: trio.Event = field(default_factory=trio.Event)

    def due(self, tracker: int) -> float:
        return self.last_sent.get(tracker, -math.inf) + self.rates.get(tracker, 0.0)

    def mark_changed(self, tracker: int) -> None:
        if tracker in self.rates:
            self.pending.add(tracker)
            self.wake.set()


class FakeNavixy(FakeServer):
    """Navixy's subscription endpoint, with its state in attributes a test may change.

    ``hashes`` are valid; ``trackers`` maps tracker ids to their status (an id missing
    from it is ``unknown``); ``subscribe_actions`` records every subscribe action
    received, as sent, so tests can check chunking and ``flow_id``.
    """

    def __init__(self, *, hashes: set[str] | None = None,
                 trackers: dict[int, str] | None = None,
                 heartbeat_ms: int = 25000,
                 path: str = "/v2/event/subscription",
                 include_success: bool = False,
                 require_atmosphere: bool = True,
                 replace_subscriptions: bool = False,
                 list_queues: bool = False,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.hashes: set[str] = set(hashes or ())
        self.trackers: dict[int, str] = dict(trackers or {})
        self.heartbeat_ms = heartbeat_ms
        self.path = path
        self.include_success = include_success
        self.require_atmosphere = require_atmosphere
        self.replace_subscriptions = replace_subscriptions
        self.list_queues = list_queues
        self.refuse_next = 0
        self.clock = clock
        self.subscribe_actions: list[dict[str, Any]] = []
        self._windows: dict[int, TrackerWindows] = {}
        self._subscribers: dict[Connection, _Subscriber] = {}

    @property
    def url(self) -> str:
        """The endpoint to configure alertd with (``ws://127.0.0.1:PORT/v2/...``)."""
        return f"ws://127.0.0.1:{self.port}{self.path}"

    @property
    def subscribe_count(self) -> int:
        return len(self.subscribe_actions)

    def status(self, tracker_id: int) -> str:
        return self.trackers.get(tracker_id, "unknown")

    def windows(self, tracker_id: int) -> dict[str, Any]:
        """The tracker's current ``iot_last_values`` item (empty windows if none)."""
        item = self._windows.get(tracker_id, TrackerWindows(tracker_id)).snapshot()
        if self.list_queues:
            for key in ("nonnull_fields", "all_fields"):
                item[key] = [{attribute: queue} for attribute, queue in item[key].items()]
        return item

    def subscribed(self) -> set[int]:
        """The trackers some open connection is subscribed to now."""
        return {t for subscriber in self._subscribers.values() for t in subscriber.rates}

    # ---- test controls -------------------------------------------------------------------

    def add_message(self, tracker_id: int, fields: dict[str, Any],
                    msg_time: float | None = None, srv_time: float | None = None) -> None:
        """Record one message of a tracker (epoch seconds; both default to the clock) and
        let every connection subscribed to it know, within its rate limit."""
        now = self.clock()
        windows = self._windows.setdefault(tracker_id, TrackerWindows(tracker_id))
        windows.add(fields, now if msg_time is None else msg_time,
                    now if srv_time is None else srv_time)
        if self.status(tracker_id) != "normal":
            log.debug("tracker %s is %s: its messages are kept, not sent", tracker_id,
                      self.status(tracker_id))
        for subscriber in self._subscribers.values():
            subscriber.mark_changed(tracker_id)

    def set_status(self, tracker_id: int, status: str) -> None:
        """Change a tracker's status, reported by later subscribe responses; an unblocked
        tracker's windows are sent to its subscribers."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, not {status!r}")
        unblocked = self.status(tracker_id) == "blocked" and status == "normal"
        self.trackers[tracker_id] = status
        if unblocked and tracker_id in self._windows:
            for subscriber in self._subscribers.values():
                subscriber.mark_changed(tracker_id)

    def send_logout(self) -> None:
        """Tell every client its session ended (the socket stays open)."""
        self.send_raw(json.dumps({"type": "event", "event": "logout",
                                  "data": "session closed"}))

    def block(self, tracker_id: int, source_id: int) -> None:
        """Block a tracker: later responses say ``blocked``, its data stops, and a
        ``lifecycle`` ``block`` event names its source id."""
        self.set_status(tracker_id, "blocked")
        self.send_lifecycle(source_id, "block")

    def unblock(self, tracker_id: int, source_id: int) -> None:
        """Unblock it: a ``lifecycle`` ``unblock`` event, then its windows (seed page)."""
        self.send_lifecycle(source_id, "unblock")
        self.set_status(tracker_id, "normal")

    def send_lifecycle(self, source_id: int, event: str) -> None:
        """A ``lifecycle`` event (``block``, ``unblock``, ``corrupt``) for a source id."""
        self.send_raw(json.dumps({"type": "event", "event": "lifecycle",
                                  "data": {"source_id": source_id, "lifecycle_event": event}}))

    # ---- subscribing ---------------------------------------------------------------------

    def _on_action(self, subscriber: _Subscriber, text: str) -> None:
        try:
            action = json.loads(text)
        except ValueError:
            action = None
        if not isinstance(action, dict):
            subscriber.connection.send(_error(None, 5, "Wrong request format"))
            return
        if action.get("action") != "subscribe":
            log.debug("ignoring action %r", action.get("action"))
            return
        self.subscribe_actions.append(action)
        try:
            requested = self._check(action)
        except _Refused as refused:
            log.debug("subscribe refused: %s", refused.description)
            subscriber.connection.send(_error(SUBSCRIBE, refused.code, refused.description))
            return
        if self.refuse_next > 0:
            self.refuse_next -= 1
            subscriber.connection.send(json.dumps({
                "type": "response", "action": SUBSCRIBE, "events": ["iot_monitor"],
                "data": {"iot_monitor": {"success": False}}}))
            return
        if self.replace_subscriptions:
            subscriber.rates.clear()
        value: dict[str, str] = {}
        for trackers, rate in requested:
            for tracker in trackers:
                subscriber.rates[tracker] = rate
                value[str(tracker)] = self.status(tracker)
        result: dict[str, Any] = {"value": value}
        if self.include_success:
            result["success"] = True
        subscriber.connection.send(json.dumps({
            "type": "response", "action": SUBSCRIBE, "events": ["iot_monitor"],
            "data": {"iot_monitor": result}}))
        self._send_windows(subscriber, (int(tracker) for tracker in value))

    def _check(self, action: dict[str, Any]) -> list[tuple[list[int], float]]:
        """The trackers and rate limit of each request, or ``_Refused``."""
        if action.get("hash") not in self.hashes:
            raise _Refused(3, "Wrong hash")
        requests = action.get("requests")
        if not isinstance(requests, list) or not requests:
            raise _Refused(5, "Wrong request format")
        checked = []
        for request in requests:
            if not isinstance(request, dict) or request.get("type") != "iot_monitor":
                raise _Refused(7, "Invalid parameters")
            target = request.get("target")
            ids = target.get("tracker_ids") if isinstance(target, dict) else None
            if (not isinstance(target, dict) or target.get("type") != "selected"
                    or not isinstance(ids, list)
                    or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids)):
                raise _Refused(5, "Wrong request format")
            if len(ids) > MAX_TRACKERS:
                raise _Refused(7, "Invalid parameters")
            try:
                rate = parse_rate_limit(request.get("rate_limit"))
            except ValueError:
                raise _Refused(7, "Invalid parameters") from None
            checked.append((ids, rate))
        return checked

    def _send_windows(self, subscriber: _Subscriber, trackers: Iterable[int]) -> None:
        """One ``iot_monitor`` event with the whole windows of those trackers that may be
        seen and have data; counts as a send for their rate limits."""
        visible = [t for t in dict.fromkeys(trackers)
                   if self.status(t) == "normal" and t in self._windows]
        now = trio.current_time()
        for tracker in visible:
            subscriber.last_sent[tracker] = now
            subscriber.pending.discard(tracker)
        if visible:
            subscriber.connection.send(json.dumps({
                "type": "event", "event": "iot_monitor",
                "data": {"iot_last_values": [self.windows(t) for t in visible]}}))

    # ---- the server ----------------------------------------------------------------------

    async def _on_request(self, request: trio_websocket.WebSocketRequest,
                          connection: Connection) -> None:
        if connection.path != self.path:
            await request.reject(404, body=b"not found")
            return
        missing = [name for name in ATMOSPHERE_PARAMS if name not in connection.query]
        if missing and self.require_atmosphere:
            log.debug("refusing %s: no %s", connection.raw_path, ", ".join(missing))
            await request.reject(400, body=f"missing {', '.join(missing)}".encode())
            return
        ws = await request.accept()
        interval = self.heartbeat_ms / 1000
        subscriber = _Subscriber(connection, heard=trio.current_time())
        connection.send(f"{uuid.uuid4()}|{self.heartbeat_ms}|X|")
        self._subscribers[connection] = subscriber
        self.connections.append(connection)

        async def read() -> None:
            while True:
                message = await ws.get_message()
                subscriber.heard = trio.current_time()
                if isinstance(message, str) and message.strip() != "X":
                    self._on_action(subscriber, message)
                self._notify()

        async def heartbeat() -> None:
            while True:
                await trio.sleep(interval)
                connection.send("X")

        async def watch_idle() -> None:
            while True:
                deadline = subscriber.heard + 3 * interval
                if trio.current_time() >= deadline:
                    log.debug("closing %s: silent for 3 heartbeats", connection.raw_path)
                    connection.close(1000)
                    return
                await trio.sleep_until(deadline)

        try:
            await self._serve_connection(connection, ws, read, heartbeat, watch_idle,
                                         lambda: self._flush(subscriber))
        finally:
            del self._subscribers[connection]

    async def _flush(self, subscriber: _Subscriber) -> None:
        """Send changed trackers' windows as their rate limits allow, coalescing: all
        trackers due at one moment go in one event, with their latest windows."""
        while True:
            subscriber.wake = trio.Event()
            now = trio.current_time()
            due = [t for t in sorted(subscriber.pending) if subscriber.due(t) <= now]
            if due:
                subscriber.pending.difference_update(due)
                self._send_windows(subscriber, due)
                continue
            deadline = min((subscriber.due(t) for t in subscriber.pending), default=math.inf)
            with trio.move_on_at(deadline):
                await subscriber.wake.wait()


def _error(action: str | None, code: int, description: str) -> str:
    frame: dict[str, Any] = {"type": "error"}
    if action is not None:
        frame["action"] = action
    frame.update({"status": {"code": code, "description": description}, "data": {}})
    return json.dumps(frame)
