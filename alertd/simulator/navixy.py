"""A fake Navixy event-subscription server on 127.0.0.1 (Atmosphere over WebSocket).

First frame ``<uuid>|<heartbeat_ms>|X|``, then a bare ``X`` every heartbeat; a client that
sends nothing for 3 heartbeats is closed. A subscribe action with a known hash gets the
``subscription/subscribe`` response (statuses of the trackers, ``success`` omitted as real
traffic does) and at once an ``iot_monitor`` event with the windows of its non-blocked
trackers; a wrong hash gets error 3; more than 10 trackers in one request gets error 7.
``add_message`` appends to a tracker's per-attribute queues (12 newest, newest first; nulls
in ``all_fields`` only) and resends the whole windows, as the real server does.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

import trio
import trio_websocket

from alertd.simulator.base import FakeServer

DEPTH = 12


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Client:
    ws: trio_websocket.WebSocketConnection
    query: dict[str, str]
    trackers: set[int] = field(default_factory=set)
    heard: float = 0.0


@dataclass
class FakeNavixy(FakeServer):
    hashes: set[str] = field(default_factory=set)
    trackers: dict[int, str] = field(default_factory=dict)  # id -> status
    heartbeat_ms: int = 25000
    path: str = "/v2/event/subscription"
    include_success: bool = False
    clock: Callable[[], float] = time.time
    subscribe_actions: list[dict[str, Any]] = field(default_factory=list)
    handshakes: int = 0
    port: int = 0
    _all: dict[int, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)
    _nonnull: dict[int, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)
    _clients: list[_Client] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{self.path}"

    @property
    def connections(self) -> list[dict[str, str]]:
        return [client.query for client in self._clients]

    @property
    def subscribe_count(self) -> int:
        return len(self.subscribe_actions)

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
                    ) -> None:
        async with trio.open_nursery() as nursery:
            server = await nursery.start(trio_websocket.serve_websocket, self._handle,
                                         "127.0.0.1", 0, None)
            self.port = server.port
            self._nursery = nursery
            task_status.started(self.port)

    # ---- test controls -----------------------------------------------------------------

    def add_message(self, tracker: int, fields: dict[str, Any], msg_time: float | None = None,
                    srv_time: float | None = None) -> None:
        now = self.clock()
        msg, srv = iso(msg_time or now), iso(srv_time or now)
        all_queues = self._all.setdefault(tracker, {})
        nonnull = self._nonnull.setdefault(tracker, {})
        for attribute in set(all_queues) | set(fields):
            value = fields.get(attribute)
            entry = {"msg_time": msg, "srv_time": srv, "value": value}
            all_queues.setdefault(attribute, []).insert(0, entry)
            del all_queues[attribute][DEPTH:]
            if value is not None:
                nonnull.setdefault(attribute, []).insert(0, entry)
                del nonnull[attribute][DEPTH:]
        for client in list(self._clients):
            if tracker in client.trackers and self.trackers.get(tracker) != "blocked":
                self._send(client, self._windows([tracker]))

    def set_status(self, tracker: int, status: str) -> None:
        self.trackers[tracker] = status

    def send_raw(self, text: str) -> None:
        for client in list(self._clients):
            self._send(client, text)

    def send_logout(self) -> None:
        self.send_raw(json.dumps({"type": "event", "event": "logout", "data": "session closed"}))

    def send_lifecycle(self, source_id: int, event: str) -> None:
        self.send_raw(json.dumps({"type": "event", "event": "lifecycle",
                                  "data": {"source_id": source_id, "lifecycle_event": event}}))

    def drop_all(self) -> None:
        for client in list(self._clients):
            self._spawn(client.ws.aclose, 1011, "dropped")
        self._clients.clear()

    # ---- the server --------------------------------------------------------------------

    def _windows(self, trackers: list[int]) -> str:
        items = [{"tracker_id": t, "nonnull_fields": self._nonnull.get(t, {}),
                  "all_fields": self._all.get(t, {})} for t in trackers if t in self._all]
        return json.dumps({"type": "event", "event": "iot_monitor",
                           "data": {"iot_last_values": items}})

    def _send(self, client: _Client, text: str) -> None:
        self._send_to(client.ws, text)

    async def _handle(self, request: trio_websocket.WebSocketRequest) -> None:
        parts = urlsplit(request.path)
        self.handshakes += 1
        if parts.path != self.path:
            await request.reject(404, body=b"not found")
            return
        ws = await request.accept()
        client = _Client(ws, {k: v[0] for k, v in parse_qs(parts.query).items()},
                         heard=trio.current_time())
        self._clients.append(client)
        interval = self.heartbeat_ms / 1000
        try:
            await ws.send_message(f"{uuid.uuid4()}|{self.heartbeat_ms}|X|")
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._heartbeats, client, interval)
                while True:
                    with trio.move_on_after(3 * interval) as idle:
                        message = await ws.get_message()
                    if idle.cancelled_caught:
                        await ws.aclose(1000, "idle")
                        break
                    client.heard = trio.current_time()
                    if isinstance(message, str) and message != "X":
                        await self._action(client, message)
                nursery.cancel_scope.cancel()
        except* trio_websocket.ConnectionClosed:
            pass  # the client went away, on its own or dropped by the test
        finally:
            if client in self._clients:
                self._clients.remove(client)

    async def _heartbeats(self, client: _Client, interval: float) -> None:
        try:
            while True:
                await trio.sleep(interval)
                await client.ws.send_message("X")
        except trio_websocket.ConnectionClosed:
            pass

    async def _action(self, client: _Client, text: str) -> None:
        try:
            action = json.loads(text)
        except ValueError:
            await client.ws.send_message(json.dumps({"type": "error", "status": {
                "code": 5, "description": "Wrong request format"}}))
            return
        if not isinstance(action, dict) or action.get("action") != "subscribe":
            return
        self.subscribe_actions.append(action)
        error = None
        if action.get("hash") not in self.hashes:
            error = (3, "Wrong hash")
        requested: list[int] = []
        for request in action.get("requests", []):
            ids = request.get("target", {}).get("tracker_ids", [])
            if len(ids) > 10:
                error = error or (7, "Invalid parameters")
            requested.extend(ids)
        if error:
            await client.ws.send_message(json.dumps({
                "type": "error", "action": "subscription/subscribe",
                "status": {"code": error[0], "description": error[1]}, "data": {}}))
            return
        client.trackers.update(requested)
        result: dict[str, Any] = {"value": {str(t): self.trackers.get(t, "unknown")
                                            for t in requested}}
        if self.include_success:
            result["success"] = True
        await client.ws.send_message(json.dumps({
            "type": "response", "action": "subscription/subscribe", "events": ["iot_monitor"],
            "data": {"iot_monitor": result}}))
        visible = [t for t in requested if self.trackers.get(t) == "normal"]
        if visible:
            await client.ws.send_message(self._windows(visible))
