"""A fake ELEMENT IoT WebSocket server on 127.0.0.1, behaving as the seed page says.

Sockets ``/api/v1/{devices|tags|streams}/ID/{readings|packets}/socket`` and the mandate-wide
``/api/v1/{readings|packets}/socket`` with ``auth=``; a wrong key is refused with HTTP 401
(or, with ``reject_mode="close"``, accepted and closed at once). ``after=`` replays every
stored item inserted at or after that time (inclusive, so clients must de-duplicate) in one
frame, then the socket goes live. A text ``ping`` is answered with ``pong``; a socket that
sent no ping (neither kind) for ``idle_timeout`` seconds is closed, as the real service does.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import trio
import trio_websocket

from alertd.simulator.base import FakeServer

log = logging.getLogger("alertd.simulator.element")


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class _Client:
    ws: trio_websocket.WebSocketConnection
    path: str
    kind: str  # readings | packets
    scope: tuple[str, str]  # ("devices"|"tags"|"streams"|"mandate", id)
    preload: list[str]
    last_ping: float = 0.0


@dataclass
class FakeElement(FakeServer):
    api_keys: set[str] = field(default_factory=set)
    device_names: dict[str, str] = field(default_factory=dict)
    streams: dict[str, set[str]] = field(default_factory=dict)
    tags: dict[str, set[str]] = field(default_factory=dict)
    idle_timeout: float = 60.0
    reject_mode: str = "http"  # http: refuse with 401; close: accept, then close at once
    clock: Callable[[], float] = time.time
    items: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (kind, body)
    connections_log: list[str] = field(default_factory=list)
    handshakes: int = 0
    port: int = 0
    _clients: list[_Client] = field(default_factory=list)
    _paused: bool = False

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/api/v1"

    @property
    def connections(self) -> list[str]:
        return [client.path for client in self._clients]

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
                    ) -> None:
        _record_pings()
        async with trio.open_nursery() as nursery:
            server = await nursery.start(trio_websocket.serve_websocket, self._handle,
                                         "127.0.0.1", 0, None)
            self.port = server.port
            self._nursery = nursery
            nursery.start_soon(self._idle_reaper)
            task_status.started(self.port)

    # ---- test controls -----------------------------------------------------------------

    def add_reading(self, device_id: str, data: dict[str, Any],
                    measured_at: float | None = None) -> dict[str, Any]:
        now = self.clock()
        body = {"id": str(uuid.uuid4()), "device_id": device_id, "packet_id": str(uuid.uuid4()),
                "parser_id": str(uuid.uuid4()), "measured_at": iso(measured_at or now),
                "inserted_at": iso(now), "location": None, "meta": None, "data": data}
        return self._add("readings", body)

    def add_packet(self, device_id: str, payload: str, meta: dict[str, Any] | None = None,
                   transceived_at: float | None = None) -> dict[str, Any]:
        now = self.clock()
        body = {"id": str(uuid.uuid4()), "device_id": device_id, "interface_id": "if-1",
                "packet_type": "up", "payload": payload, "payload_encoding": "binary",
                "meta": meta, "transceived_at": iso(transceived_at or now),
                "inserted_at": iso(now)}
        return self._add("packets", body)

    def send_raw(self, text: str) -> None:
        for client in list(self._clients):
            self._send(client, text)

    def drop_all(self) -> None:
        """Abruptly close every socket (a network cut, from the client's point of view)."""
        for client in list(self._clients):
            self._spawn(client.ws.aclose, 1011, "dropped")
        self._clients.clear()

    def pause(self) -> None:
        self._paused = True

    def resume(self) -> None:
        self._paused = False

    # ---- the server --------------------------------------------------------------------

    def _add(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        self.items.append((kind, body))
        for client in list(self._clients):
            if client.kind == kind and self._matches(client, body["device_id"]):
                self._send(client, json.dumps([self._envelope(client, kind, body)]))
        return body

    def _matches(self, client: _Client, device: str) -> bool:
        scope, ident = client.scope
        if scope == "mandate":
            return True
        if scope == "devices":
            return device == ident
        groups = self.streams if scope == "streams" else self.tags
        return device in groups.get(ident, set())

    def _envelope(self, client: _Client, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        body = dict(body)
        if "device" in client.preload or any(p.startswith("device.") for p in client.preload):
            device = body["device_id"]
            body["device"] = {"id": device, "name": self.device_names.get(device, device)}
        return {"event": "reading_added" if kind == "readings" else "packet_added", "body": body}

    def _send(self, client: _Client, text: str) -> None:
        self._send_to(client.ws, text)

    async def _handle(self, request: trio_websocket.WebSocketRequest) -> None:
        parts = urlsplit(request.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        segments = [unquote(s) for s in parts.path.strip("/").split("/")]
        self.handshakes += 1
        self.connections_log.append(request.path)
        if self._paused:
            await request.reject(503, body=b"maintenance")
            return
        if segments[:2] != ["api", "v1"] or segments[-1] != "socket" or \
                segments[-2] not in ("readings", "packets") or len(segments) not in (4, 6):
            await request.reject(404, body=b"not found")
            return
        if query.get("auth") not in self.api_keys:
            if self.reject_mode == "close":
                ws = await request.accept()
                await ws.aclose(4001, "unauthorized")
            else:
                await request.reject(401, body=b'{"error": "unauthorized"}')
            return
        scope = (segments[2], segments[3]) if len(segments) == 6 else ("mandate", "")
        ws = await request.accept()
        client = _Client(ws, parts.path, segments[-2], scope,
                         [p for p in query.get("preload", "").split(",") if p],
                         trio.current_time())
        if "after" in query:
            after = datetime.fromisoformat(query["after"]).timestamp()
            replay = [self._envelope(client, kind, body) for kind, body in self.items
                      if kind == client.kind and self._matches(client, body["device_id"])
                      and datetime.fromisoformat(body["inserted_at"]).timestamp() >= after]
            if replay:
                await ws.send_message(json.dumps(replay))
        self._clients.append(client)
        try:
            while True:
                message = await ws.get_message()
                if message == "ping":
                    client.last_ping = trio.current_time()
                    await ws.send_message("pong")
        except trio_websocket.ConnectionClosed:
            pass
        finally:
            if client in self._clients:
                self._clients.remove(client)

    async def _idle_reaper(self) -> None:
        """Close sockets that sent no ping (text or WebSocket frame) for idle_timeout."""
        while True:
            await trio.sleep(1)
            now = trio.current_time()
            for client in list(self._clients):
                seen = max(client.last_ping, _ws_ping_time(client.ws))
                if now - seen > self.idle_timeout:
                    self._clients.remove(client)
                    self._spawn(client.ws.aclose, 1000, "idle")


def _ws_ping_time(ws: trio_websocket.WebSocketConnection) -> float:
    return float(getattr(ws, "_alertd_last_ping", 0.0))


def _record_pings() -> None:
    """Let the fake see WebSocket ping frames. trio-websocket answers them internally and
    offers no hook (its handler table is built before ``accept()`` returns), so its handler
    is wrapped once, process-wide, to note the time; the answer is unchanged."""
    cls = trio_websocket.WebSocketConnection
    original = cls._handle_ping_event
    if getattr(original, "_alertd_recording", False):
        return

    async def handle(self: trio_websocket.WebSocketConnection, event: Any) -> None:
        self._alertd_last_ping = trio.current_time()  # type: ignore[attr-defined]
        await original(self, event)

    handle._alertd_recording = True  # type: ignore[attr-defined]
    cls._handle_ping_event = handle  # type: ignore[method-assign]
