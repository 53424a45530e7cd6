"""The optional HTTP endpoint (``http: HOST:PORT``): ``/metrics``, ``/healthz``, ``/alerts``.

h11 (already under trio-websocket) speaks HTTP/1.1, so no parser is written here; one
request per connection, answered and closed, which is all Prometheus and a load balancer's
health check need. What clients may cost (connections, time, descriptors, renders) is
bounded in ``http_limits.py``; a slow or broken client costs nothing else.

``routes`` answer GET without looking at the request (cached per path). ``handlers`` get
the ``Request`` (query, form body up to ``MAX_BODY`` bytes, cookies, the peer's address)
and answer any method; a key ending in ``/`` takes every path below it. ``guard`` sees
every request first and may refuse it (the web page's access rules, ``web.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from urllib.parse import parse_qsl

import h11
import trio

from alertd.http_limits import HEADER_TIMEOUT, REQUEST_TIMEOUT, Cache, Gate

log = logging.getLogger("alertd.http")
CLIENT_TIMEOUT = 10.0
# () -> (content type, body), or (content type, body, status) for a status other than 200
Route = Callable[[], tuple[str, str] | tuple[str, str, int]]
REASONS = {200: b"OK", 303: b"See Other", 400: b"Bad Request", 403: b"Forbidden",
           404: b"Not Found", 405: b"Method Not Allowed", 413: b"Content Too Large",
           503: b"Service Unavailable"}
MAX_BODY = 16 * 1024  # a form's body; a larger one is refused (413)


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    form: dict[str, str] = field(default_factory=dict)
    cookies: dict[str, str] = field(default_factory=dict)
    peer: str = ""  # the client's IP address


# (status, content type, body, extra headers)
Answer = tuple[int, str, str, list[tuple[str, str]]]
Handler = Callable[[Request], Answer]
Guard = Callable[[Request], Answer | None]
REFUSED = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


async def serve(host: str, port: int, routes: dict[str, Route],
                task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED, *,
                gate: Gate | None = None,
                cache: Cache[tuple[int, str, bytes]] | None = None,
                handlers: dict[str, Handler] | None = None, guard: Guard | None = None) -> None:
    """Serve ``routes`` and ``handlers`` until cancelled; reports the port it listens on
    (for port 0). ``gate`` and ``cache`` default to the limits of ``http_limits``."""
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound = listeners[0].socket.getsockname()[1]
    log.info("serving %s on http://%s:%d", ", ".join([*routes, *(handlers or {})]), host,
             bound)
    task_status.started(bound)
    await trio.serve_listeners(partial(_answer, routes=routes, gate=gate or Gate(),
                                       cache=cache or Cache[tuple[int, str, bytes]](),
                                       handlers=handlers or {}, guard=guard),
                               listeners)


async def _answer(stream: trio.SocketStream, routes: dict[str, Route], gate: Gate,
                  cache: Cache[tuple[int, str, bytes]], handlers: dict[str, Handler] | None = None,
                  guard: Guard | None = None) -> None:
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
            extra: list[tuple[str, str]] = []
            refused = await _guarded(stream, connection, request, guard, handlers or {})
            if refused is not None:
                status, kind, text, extra = refused
                body = text.encode()
            else:
                status, kind, body = cache.get(path, partial(_route, request, routes)) \
                    if request.method == b"GET" and path in routes else \
                    _route(request, routes)
            headers = [("Content-Type", kind), ("Content-Length", str(len(body))),
                       ("Connection", "close"), *extra]
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


def _handler(path: str, handlers: dict[str, Handler]) -> Handler | None:
    found = handlers.get(path)
    if found is None:
        prefixes = [key for key in handlers if key.endswith("/") and key != "/"
                    and path.startswith(key)]
        found = handlers[max(prefixes, key=len)] if prefixes else None
    return found


async def _guarded(stream: trio.SocketStream, connection: h11.Connection,
                   request: h11.Request, guard: Guard | None,
                   handlers: dict[str, Handler]) -> Answer | None:
    """The answer of the guard (a refusal) or of a handler; None: a plain route answers."""
    path = request.target.decode("ascii", "replace").split("?", 1)[0]
    handler = _handler(path, handlers)
    if handler is None and (guard is None or request.method != b"GET"):
        return None  # a plain route: GET only (405 otherwise)
    headers = {name.decode("latin-1").lower(): value.decode("latin-1")
               for name, value in request.headers}
    body = b""
    if request.method == b"POST":
        length = headers.get("content-length", "")
        if not length.isdigit() or int(length) > MAX_BODY:
            return 413, "text/plain", f"a body of at most {MAX_BODY} bytes\n", []
        body = await _body(stream, connection)
    try:
        peer = str(stream.socket.getpeername()[0])
    except OSError:
        peer = ""
    query = request.target.decode("ascii", "replace").partition("?")[2]
    cookies = dict(part.strip().partition("=")[::2]
                   for part in headers.get("cookie", "").split(";") if "=" in part)
    seen = Request(request.method.decode("ascii", "replace"), path,
                   dict(parse_qsl(query)),
                   dict(parse_qsl(body.decode("utf-8", "replace"))), cookies, peer)
    if guard is not None:
        refused = guard(seen)
        if refused is not None:
            return refused
    return handler(seen) if handler is not None else None


async def _body(stream: trio.SocketStream, connection: h11.Connection) -> bytes:
    body = b""
    while len(body) <= MAX_BODY:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            data = await stream.receive_some(65536)
            if not data:
                break
            connection.receive_data(data)
        elif isinstance(event, h11.Data):
            body += bytes(event.data)
        else:
            break
    return body[:MAX_BODY]


def _route(request: h11.Request, routes: dict[str, Route]) -> tuple[int, str, bytes]:
    path = request.target.decode("ascii", "replace").split("?", 1)[0]
    if request.method != b"GET":
        return 405, "text/plain", b"only GET\n"
    route = routes.get(path)
    if route is None:
        return 404, "text/plain", ("not found; try " + ", ".join(routes) + "\n").encode()
    answer = route()
    return (answer[2] if len(answer) == 3 else 200), answer[0], answer[1].encode()
