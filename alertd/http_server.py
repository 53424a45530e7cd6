"""The optional HTTP endpoint (``http: HOST:PORT``): ``/metrics``, ``/healthz``, ``/alerts``.

h11 (already under trio-websocket) speaks HTTP/1.1, so no parser is written here; one
request per connection, answered and closed, which is all Prometheus and a load balancer's
health check need. What clients may cost (connections, time, descriptors, renders) is
bounded in ``http_limits.py``; a slow or broken client costs nothing else.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial

import h11
import trio

from alertd.http_limits import HEADER_TIMEOUT, REQUEST_TIMEOUT, Cache, Gate

log = logging.getLogger("alertd.http")
CLIENT_TIMEOUT = 10.0
# () -> (content type, body), or (content type, body, status) for a status other than 200
Route = Callable[[], tuple[str, str] | tuple[str, str, int]]
REASONS = {200: b"OK", 404: b"Not Found", 405: b"Method Not Allowed",
           503: b"Service Unavailable"}
REFUSED = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


async def serve(host: str, port: int, routes: dict[str, Route],
                task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED, *,
                gate: Gate | None = None,
                cache: Cache[tuple[int, str, bytes]] | None = None) -> None:
    """Serve ``routes`` until cancelled; reports the port it listens on (for port 0).
    ``gate`` and ``cache`` default to the limits of ``http_limits``."""
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound = listeners[0].socket.getsockname()[1]
    log.info("serving /metrics, /healthz and /alerts on http://%s:%d", host, bound)
    task_status.started(bound)
    await trio.serve_listeners(partial(_answer, routes=routes, gate=gate or Gate(),
                                       cache=cache or Cache[tuple[int, str, bytes]]()),
                               listeners)


async def _answer(stream: trio.SocketStream, routes: dict[str, Route], gate: Gate,
                  cache: Cache[tuple[int, str, bytes]]) -> None:
    connection = h11.Connection(h11.SERVER)
    with trio.move_on_after(REQUEST_TIMEOUT) as scope:  # also cancelled by the gate
        token = gate.admit(scope)
        request = None
        try:
            if token is None:
                scope.deadline = min(scope.deadline, trio.current_time() + 1)
                await stream.send_all(REFUSED)
                return
            with trio.move_on_after(HEADER_TIMEOUT):
                request = await _request(stream, connection)
            if request is None:
                return
            gate.answering(token)
            path = request.target.decode("ascii", "replace").split("?", 1)[0]
            status, kind, body = cache.get(path, partial(_route, request, routes)) \
                if request.method == b"GET" and path in routes else _route(request, routes)
            headers = [("Content-Type", kind), ("Content-Length", str(len(body))),
                       ("Connection", "close")]
            data = connection.send(h11.Response(status_code=status, headers=headers,
                                                reason=REASONS.get(status, b"")))
            data = (data or b"") + (connection.send(h11.Data(data=body)) or b"")
            data += connection.send(h11.EndOfMessage()) or b""
            await stream.send_all(data)
        except (h11.ProtocolError, trio.BrokenResourceError, trio.ClosedResourceError,
                OSError) as error:
            log.debug("http: client dropped: %s", error)
        finally:
            if token is not None:
                gate.leave(token)
    with trio.CancelScope(shield=True):  # an evicted client's socket is closed all the same
        await stream.aclose()


async def _request(stream: trio.SocketStream, connection: h11.Connection) -> h11.Request | None:
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            data = await stream.receive_some(65536)
            connection.receive_data(data)
            if not data:
                return None
            continue
        return event if isinstance(event, h11.Request) else None


def _route(request: h11.Request, routes: dict[str, Route]) -> tuple[int, str, bytes]:
    path = request.target.decode("ascii", "replace").split("?", 1)[0]
    if request.method != b"GET":
        return 405, "text/plain", b"only GET\n"
    route = routes.get(path)
    if route is None:
        return 404, "text/plain", ("not found; try " + ", ".join(routes) + "\n").encode()
    answer = route()
    return (answer[2] if len(answer) == 3 else 200), answer[0], answer[1].encode()
