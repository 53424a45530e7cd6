"""A fake ELEMENT IoT WebSocket server on 127.0.0.1, behaving as the seed page says.

Sockets ``/api/v1/{devices|tags|streams}/ID/{readings|packets}/socket`` and the
mandate-wide ``/api/v1/{readings|packets}/socket``, with ``auth=KEY``, optional ``after=``
(an ISO time) and ``preload=``. The socket is server-to-client: every stored reading or
packet is pushed as ``[{"event": "reading_added" | "packet_added", "body": {...}}]`` to
each open socket it matches. ``after=T`` first replays every stored match inserted at or
after T (inclusive, so clients must de-duplicate by ``id``), earliest first, in one frame.
A text ``ping`` is answered with ``pong``; a socket that sent no ping of either kind for
``idle_timeout`` seconds is closed, as the real service does after 60 s.

Decisions on PROTOCOL-NOTES' [guess] points: a wrong key is refused at the handshake with
HTTP 401 (``reject_mode="close"``: accepted, then closed with 4001); an ``after`` that is
not an ISO time is refused with 400 (an unencoded ``+`` decodes to a space, as in any
form-decoding server); an unknown path with 404; a paused fake answers 503. Any frame
from the client keeps the socket alive: the socket is server-to-client, so a client only
ever sends pings. The idle close is a normal close (1000), as Cowboy's idle timeout does.
Timestamps come from ``clock`` (epoch seconds) so tests and the demo control them;
keep-alive and idle time are trio time, so ``autojump_clock`` runs them in milliseconds.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import trio
import trio_websocket

from alertd.simulator.base import Connection, FakeServer

log = logging.getLogger("alertd.simulator.element")

Kind = Literal["readings", "packets"]
_KINDS: dict[str, Kind] = {"readings": "readings", "packets": "packets"}
_EVENTS: dict[str, str] = {"readings": "reading_added", "packets": "packet_added"}
_SCOPES = ("devices", "tags", "streams")


def element_time(epoch: float) -> str:
    """ISO 8601 UTC with microseconds and ``Z``, as ELEMENT writes timestamps."""
    return _format(datetime.fromtimestamp(epoch, UTC))


def _parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class _Stored:
    kind: Kind
    inserted: datetime
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Subscription:
    """What one socket asked for: which items, and how to dress them."""
    kind: Kind
    scope: str  # devices | tags | streams | mandate
    scope_id: str
    preload: frozenset[str]


class FakeElement(FakeServer):
    """ELEMENT's socket API, with its state in plain attributes a test may change.

    ``api_keys`` are accepted; ``device_names`` feed ``preload=device``; ``streams`` and
    ``tags`` map a stream or tag id to the device ids it holds; ``readings`` and
    ``packets`` are the stored bodies. ``replay_batch`` is the number of envelopes per
    replay frame (None: the whole replay in one frame; 1: one per frame).
    """

    def __init__(self, *, api_keys: set[str] | None = None,
                 device_names: dict[str, str] | None = None,
                 streams: dict[str, set[str]] | None = None,
                 tags: dict[str, set[str]] | None = None,
                 idle_timeout: float = 60.0,
                 reject_mode: Literal["http", "close"] = "http",
                 replay_batch: int | None = None,
                 group_keys: set[str] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.api_keys: set[str] = set(api_keys or ())
        # keys with group permissions: accepted on device, tag and stream sockets; the
        # mandate-wide ones take read_only and admin keys only (seed page), so HTTP 403
        self.group_keys: set[str] = set(group_keys or ())
        self.device_names: dict[str, str] = dict(device_names or {})
        self.streams: dict[str, set[str]] = dict(streams or {})
        self.tags: dict[str, set[str]] = dict(tags or {})
        self.idle_timeout = idle_timeout
        self.reject_mode = reject_mode
        self.replay_batch = replay_batch
        self.clock = clock
        self.paused = False
        self._stored: list[_Stored] = []
        self._subscriptions: dict[Connection, _Subscription] = {}

    @property
    def url(self) -> str:
        """The base URL to configure alertd with (``ws://127.0.0.1:PORT/api/v1``)."""
        return f"ws://127.0.0.1:{self.port}/api/v1"

    @property
    def readings(self) -> list[dict[str, Any]]:
        return [item.body for item in self._stored if item.kind == "readings"]

    @property
    def packets(self) -> list[dict[str, Any]]:
        return [item.body for item in self._stored if item.kind == "packets"]

    # ---- test controls -------------------------------------------------------------------

    def add_reading(self, device_id: str, data: dict[str, Any],
                    measured_at: float | str | None = None, *,
                    inserted_at: float | None = None,
                    location: dict[str, Any] | None = None,
                    meta: dict[str, Any] | None = None,
                    packet_id: str | None = None,
                    parser_id: str | None = None) -> dict[str, Any]:
        """Store a reading and push it to every matching socket; returns its body.

        Times are epoch seconds (``measured_at`` may also be a string, sent verbatim);
        ``inserted_at`` defaults to the fake's clock, ``measured_at`` to ``inserted_at``.
        """
        inserted = self._inserted(inserted_at)
        body = {"id": str(uuid.uuid4()), "device_id": device_id,
                "packet_id": packet_id or str(uuid.uuid4()),
                "parser_id": parser_id or str(uuid.uuid4()),
                "measured_at": _stamp(measured_at, inserted),
                "inserted_at": _format(inserted), "location": location, "meta": meta,
                "data": data}
        return self._store("readings", inserted, body)

    def add_packet(self, device_id: str, payload: str, *,
                   payload_encoding: Literal["binary", "json", "utf8"] = "binary",
                   packet_type: Literal["up", "down", "other"] = "up",
                   interface_id: str | None = None,
                   meta: dict[str, Any] | None = None,
                   transceived_at: float | str | None = None,
                   inserted_at: float | None = None) -> dict[str, Any]:
        """Store a packet and push it to every matching socket; returns its body."""
        inserted = self._inserted(inserted_at)
        body = {"id": str(uuid.uuid4()), "device_id": device_id,
                "interface_id": interface_id or str(uuid.uuid5(uuid.NAMESPACE_OID, device_id)),
                "packet_type": packet_type, "payload": payload,
                "payload_encoding": payload_encoding, "meta": meta,
                "transceived_at": _stamp(transceived_at, inserted),
                "inserted_at": _format(inserted)}
        return self._store("packets", inserted, body)

    def pause(self) -> None:
        """Refuse new connections with HTTP 503 (maintenance) until ``resume()``."""
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    # ---- storing and pushing ---------------------------------------------------------------

    def _inserted(self, epoch: float | None) -> datetime:
        return datetime.fromtimestamp(self.clock() if epoch is None else epoch, UTC)

    def _store(self, kind: Kind, inserted: datetime, body: dict[str, Any]) -> dict[str, Any]:
        self._stored.append(_Stored(kind, inserted, body))
        for connection, subscription in list(self._subscriptions.items()):
            if self._matches(subscription, kind, body["device_id"]):
                connection.send(json.dumps([self._envelope(subscription, body)]))
        return dict(body)

    def _matches(self, subscription: _Subscription, kind: str, device_id: str) -> bool:
        if subscription.kind != kind:
            return False
        if subscription.scope == "mandate":
            return True
        if subscription.scope == "devices":
            return device_id == subscription.scope_id
        groups = self.streams if subscription.scope == "streams" else self.tags
        return device_id in groups.get(subscription.scope_id, set())

    def _envelope(self, subscription: _Subscription, body: dict[str, Any]) -> dict[str, Any]:
        body = dict(body)
        if any(p == "device" or p.startswith("device.") for p in subscription.preload):
            device_id = body["device_id"]
            body["device"] = {"id": device_id,
                              "name": self.device_names.get(device_id, device_id)}
        return {"event": _EVENTS[subscription.kind], "body": body}

    def _replay(self, subscription: _Subscription, after: datetime) -> list[str]:
        """The replay frames for ``after=``: every match inserted at or after it."""
        items = sorted((item for item in self._stored
                        if item.inserted >= after and self._matches(
                            subscription, item.kind, item.body["device_id"])),
                       key=lambda item: item.inserted)
        envelopes = [self._envelope(subscription, item.body) for item in items]
        size = self.replay_batch or len(envelopes) or 1
        return [json.dumps(envelopes[start:start + size])
                for start in range(0, len(envelopes), size)]

    # ---- the server ----------------------------------------------------------------------

    async def _on_request(self, request: trio_websocket.WebSocketRequest,
                          connection: Connection) -> None:
        if self.paused:
            await request.reject(503, body=b"service unavailable")
            return
        subscription = _subscription(connection)
        if subscription is None:
            await request.reject(404, body=b'{"error": "not found"}')
            return
        if subscription.scope == "mandate" and connection.query.get("auth") in self.group_keys:
            log.debug("rejecting %s: a group-permission key on a mandate socket",
                      connection.path)
            await request.reject(403, body=b'{"error": "forbidden"}')
            return
        if connection.query.get("auth") not in self.api_keys | self.group_keys:
            log.debug("rejecting %s: unknown API key", connection.path)
            if self.reject_mode == "close":
                ws = await request.accept()
                await ws.aclose(4001, "unauthorized")
            else:
                await request.reject(401, body=b'{"error": "unauthorized"}')
            return
        after: datetime | None = None
        if "after" in connection.query:
            try:
                after = _parse_time(connection.query["after"])
            except ValueError:
                await request.reject(400, body=b'{"error": "invalid after"}')
                return
        ws = await request.accept()
        # Replay and going live happen in one step, so nothing added meanwhile is lost.
        for frame in self._replay(subscription, after) if after is not None else []:
            connection.send(frame)
        self._subscriptions[connection] = subscription
        self.connections.append(connection)

        async def read() -> None:
            while True:
                message = await ws.get_message()
                self._notify()
                if message == "ping":
                    connection.send("pong")

        async def watch_idle() -> None:
            while True:
                deadline = connection.last_heard + self.idle_timeout
                if trio.current_time() >= deadline:
                    log.debug("closing %s: no ping for %s s", connection.path,
                              self.idle_timeout)
                    connection.close(1000)
                    return
                await trio.sleep_until(deadline)

        try:
            await self._serve_connection(connection, ws, read, watch_idle)
        finally:
            del self._subscriptions[connection]


def _subscription(connection: Connection) -> _Subscription | None:
    """What a socket path asks for, or None for a path ELEMENT does not have."""
    segments = connection.path.strip("/").split("/")
    if segments[:2] != ["api", "v1"] or segments[-1:] != ["socket"]:
        return None
    middle = segments[2:-1]
    preload = frozenset(p for p in connection.query.get("preload", "").split(",") if p)
    if len(middle) == 1 and middle[0] in _KINDS:
        return _Subscription(_KINDS[middle[0]], "mandate", "", preload)
    if len(middle) == 3 and middle[0] in _SCOPES and middle[1] and middle[2] in _KINDS:
        return _Subscription(_KINDS[middle[2]], middle[0], middle[1], preload)
    return None


def _format(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _stamp(value: float | str | None, default: datetime) -> str:
    if value is None:
        return _format(default)
    return value if isinstance(value, str) else element_time(value)
