"""What both fakes share: a loopback WebSocket server, and one ``Connection`` per client.

Test code drives a fake from plain synchronous calls (``add_reading``, ``drop_all``), so
nothing a test calls may await. Each connection therefore has an outbox that the test side
fills without blocking and that one writer task drains in order: frames reach the client in
the order they were queued, and a close queued after them is sent after them.

Two things trio-websocket does not offer are done with its public API only:

- *Seeing keep-alive pings.* It answers RFC 6455 pings internally, with no hook. The fakes
  accept TCP through ``WatchedListener``, whose streams note when the client last sent a
  byte: on a server-to-client socket (ELEMENT), bytes from the client are pings.
- *An abrupt drop.* ``Connection.cut()`` closes the TCP stream without a close frame, as a
  network cut looks to the client (close code 1006), rather than a polite close.

A handler finds its stream through ``request.remote``: trio-websocket reports a stream
that is not a socket by its ``repr()``, which ``WatchedStream`` makes unique.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

import trio
import trio_websocket
import wsproto.utilities

log = logging.getLogger("alertd.simulator")

OUTBOX_LIMIT = 10_000  # frames queued for one client before it counts as too slow and is cut
CLOSE_TIMEOUT = 5.0  # seconds a polite close waits for the client's close frame
_numbers = itertools.count(1)


class WatchedStream(trio.abc.Stream):
    """A TCP stream that records when the client last sent anything."""

    def __init__(self, inner: trio.SocketStream, forget: Callable[[str], None]) -> None:
        self._inner = inner
        self._forget = forget
        self._name = f"<fake-server stream {next(_numbers)}>"
        self.last_heard = trio.current_time()

    def __repr__(self) -> str:
        return self._name

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        data = await self._inner.receive_some(max_bytes)
        if data:
            self.last_heard = trio.current_time()
        return data

    async def aclose(self) -> None:
        self._forget(self._name)
        await self._inner.aclose()


class WatchedListener(trio.abc.Listener[WatchedStream]):
    """Accepts TCP connections as ``WatchedStream``s, registered by name until claimed."""

    def __init__(self, inner: trio.SocketListener) -> None:
        self._inner = inner
        self.unclaimed: dict[str, WatchedStream] = {}

    async def accept(self) -> WatchedStream:
        stream = WatchedStream(await self._inner.accept(), self._forget)
        self.unclaimed[repr(stream)] = stream
        return stream

    def _forget(self, name: str) -> None:
        self.unclaimed.pop(name, None)

    async def aclose(self) -> None:
        await self._inner.aclose()


@dataclass(frozen=True, slots=True)
class _Close:
    code: int
    reason: str | None


class Connection:
    """One open client socket, as a test sees it: its path and query, and ways to end it.

    ``raw_path`` is the request target as sent (query still percent-encoded); ``path`` is
    the decoded path, ``query`` the decoded parameters (first value of each).
    """

    def __init__(self, raw_path: str, stream: WatchedStream) -> None:
        parts = urlsplit(raw_path)
        self.raw_path = raw_path
        self.path = unquote(parts.path)
        self.query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        self.opened_at = trio.current_time()
        self.stream = stream
        self._outbox, self._pending = trio.open_memory_channel[str | _Close](OUTBOX_LIMIT)
        self._scope = trio.CancelScope()
        self._cut = False

    def __repr__(self) -> str:
        return f"Connection({self.raw_path!r})"

    @property
    def last_heard(self) -> float:
        """trio time of the last bytes from the client (a frame of any kind, a ping)."""
        return self.stream.last_heard

    def send(self, text: str) -> None:
        """Queue a text frame; a client that lets ``OUTBOX_LIMIT`` pile up is cut."""
        try:
            self._outbox.send_nowait(text)
        except trio.WouldBlock:
            if not self._cut:  # say it once; the frames after it go nowhere
                log.warning("%r reads too slowly: %d frames queued, dropping it", self,
                            OUTBOX_LIMIT)
            self.cut()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # already gone: a test may send while the client leaves

    def close(self, code: int = 1000, reason: str | None = None) -> None:
        """Close politely, with a close frame, once the frames queued before are sent."""
        try:
            self._outbox.send_nowait(_Close(code, reason))
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            self.cut()

    def cut(self) -> None:
        """Drop the TCP connection without a close frame (the client sees 1006)."""
        self._cut = True
        self._scope.cancel()

    async def run(self, ws: trio_websocket.WebSocketConnection,
                  read: Callable[[], Awaitable[None]],
                  *tasks: Callable[[], Awaitable[None]]) -> None:
        """Serve the socket until either side ends it: ``read`` consumes client frames
        (returning when the client is gone), ``tasks`` run beside it, the writer sends."""
        try:
            with self._scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._write, ws, nursery.cancel_scope)
                    for task in tasks:
                        nursery.start_soon(task)
                    try:
                        await read()
                    except trio_websocket.ConnectionClosed:
                        pass
                    nursery.cancel_scope.cancel()
        finally:
            self._outbox.close()
            if self._cut:
                with trio.CancelScope(shield=True):
                    await self.stream.aclose()

    async def _write(self, ws: trio_websocket.WebSocketConnection,
                     done: trio.CancelScope) -> None:
        async with self._pending:
            try:
                async for item in self._pending:
                    if isinstance(item, _Close):
                        # A client that never answers the close frame loses the TCP
                        # connection anyway (aclose closes the stream when cancelled).
                        with trio.move_on_after(CLOSE_TIMEOUT):
                            await ws.aclose(item.code, item.reason)
                        break
                    await ws.send_message(item)
            except trio_websocket.ConnectionClosed:
                pass
        done.cancel()


class _SturdyServer(trio_websocket.WebSocketServer):
    """A server whose connections fail alone. trio-websocket answers a ping that arrives
    while the server closes the socket (a client late with its keep-alive, as on a loaded
    machine) with a pong the closing state refuses: ``LocalProtocolError`` out of that
    connection's tasks, which would end the whole fake server and every other socket."""

    async def _handle_connection(self, stream: trio.abc.Stream) -> None:
        try:
            await super()._handle_connection(stream)
        except* (wsproto.utilities.LocalProtocolError, trio.BrokenResourceError,
                 trio.ClosedResourceError) as group:
            log.debug("a connection ended badly: %r", group.exceptions)


class FakeServer:
    """The server half both fakes share; a subclass handles each upgrade request.

    ``handshakes`` counts every upgrade request (refused ones too) and ``connections_log``
    keeps their raw paths; ``connections`` lists the sockets open now.
    """

    def __init__(self) -> None:
        self.port = 0
        self.handshakes = 0
        self.connections_log: list[str] = []
        self.connections: list[Connection] = []
        self._listener: WatchedListener | None = None
        self._changed = trio.Event()

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
                    ) -> None:
        """Listen on 127.0.0.1 (a free port) until cancelled; ``nursery.start`` gives the
        port. Every connection's tasks live under this call."""
        [tcp] = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self._listener = WatchedListener(tcp)
        # WebSocketServer annotates its listeners as socket listeners but only accepts from
        # them (trio.serve_listeners), which any trio Listener supports.
        server = _SturdyServer(
            self._handle, [self._listener],  # type: ignore[list-item]
            connect_timeout=10, disconnect_timeout=5)
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(server.run)
                self.port = tcp.socket.getsockname()[1]
                log.debug("%s listening on %s", type(self).__name__, self.url)
                task_status.started(self.port)
        finally:
            with trio.CancelScope(shield=True):
                await self._listener.aclose()

    @property
    def url(self) -> str:
        raise NotImplementedError

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Return once ``predicate()`` holds, checked again whenever a handshake arrives, a
        socket opens or closes, or a client sends something: no polling in tests."""
        while not predicate():
            await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def send_raw(self, text: str) -> None:
        """Push an arbitrary text frame to every open socket (malformed-frame tests)."""
        for connection in list(self.connections):
            connection.send(text)

    def drop_all(self) -> None:
        """Abruptly close every socket: to the client, a network cut."""
        for connection in list(self.connections):
            connection.cut()

    async def _handle(self, request: trio_websocket.WebSocketRequest) -> None:
        assert self._listener is not None
        stream = self._listener.unclaimed.pop(str(request.remote))
        self.handshakes += 1
        self.connections_log.append(request.path)
        self._notify()
        try:
            await self._on_request(request, Connection(request.path, stream))
        except trio_websocket.ConnectionClosed:
            pass  # the client left during the handshake; an error here would stop the server

    async def _on_request(self, request: trio_websocket.WebSocketRequest,
                          connection: Connection) -> None:
        raise NotImplementedError

    async def _serve_connection(self, connection: Connection,
                                ws: trio_websocket.WebSocketConnection,
                                read: Callable[[], Awaitable[None]],
                                *tasks: Callable[[], Awaitable[None]]) -> None:
        """Run an accepted socket, listed in ``connections`` while it is open. Callers
        append it themselves, in the same step as any frames it must get first."""
        if connection not in self.connections:
            self.connections.append(connection)
        self._notify()
        try:
            await connection.run(ws, read, *tasks)
        finally:
            if connection in self.connections:
                self.connections.remove(connection)
            self._notify()
