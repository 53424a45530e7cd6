"""The optional HTTP endpoint (``http: HOST:PORT``): ``/metrics``, ``/healthz``, ``/alerts``.

h11 (already under trio-websocket) speaks HTTP/1.1, so no parser is written here; one
request per connection, answered and closed, which is all Prometheus and a load balancer's
health check need. Each client gets 10 s; a slow or broken one costs nothing else.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial

import h11
import trio

log = logging.getLogger("alertd.http")
CLIENT_TIMEOUT = 10.0
# () -> (content type, body), or (content type, body, status) for a status other than 200
Route = Callable[[], tuple[str, str] | tuple[str, str, int]]
REASONS = {200: b"OK", 404: b"Not Found", 405: b"Method Not Allowed",
           503: b"Service Unavailable"}


async def serve(host: str, port: int, routes: dict[str, Route],
                task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve ``routes`` until cancelled; reports the port it listens on (for port 0)."""
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound = listeners[0].socket.getsockname()[1]
    log.info("serving /metrics, /healthz and /alerts on http://%s:%d", host, bound)
    task_status.started(bound)
    await trio.serve_listeners(partial(_answer, routes=routes), listeners)


async def _answer(stream: trio.SocketStream, routes: dict[str, Route]) -> None:
    connection = h11.Connection(h11.SERVER)
    with trio.move_on_after(CLIENT_TIMEOUT):
        try:
            request = await _request(stream, connection)
            if request is None:
                return
            status, kind, body = _route(request, routes)
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
