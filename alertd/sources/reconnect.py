"""Reconnecting: the I/O around one connection's state machine (``connection.py``).

A source's ``run()`` keeps one socket open for weeks. ``open_socket`` opens it (the same
way for both clients, with ``websocket.py``: a deadline, sizes, the mapping of a refused
handshake to rejected credentials); ``run_forever`` runs sessions one after another,
classifies how each ended (transient, rejected credentials, or a bug that must crash),
feeds the ``Connection`` and sleeps until its deadline; ``Standing`` reports a socket up
once the machine says it proved itself, and down when it ends.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar, cast

import trio
import trio_websocket
import wsproto.utilities
from h11 import ProtocolError as HttpProtocolError

from alertd.errors import CredentialsRejected
from alertd.model import Batch, Event, SourceDown, SourceUp
from alertd.sources.connection import Connection, Lost, Proven, Refused, Retry
from alertd.sources.stats import SourceStats
from alertd.sources.websocket import WebSocket, open_websocket

HEARTBEAT_RANGE = (1.0, 300.0)  # seconds: what a server may ask of alertd's heartbeats
CONNECT_TIMEOUT = 15.0  # connecting and the handshake: a silent server must not hang it
DISCONNECT_TIMEOUT = 5.0  # leaving a socket waits this long for the server's close at most
MAX_MESSAGE = 16 * 1024 * 1024
RECEIVE_BUFFER = 1024 * 1024  # bytes read at most at once, under a flood (64 KiB at a time
# otherwise, websocket.QUIET_READ): one read is then one batch of up to 256 messages (~60
# Navixy events of 17 KB, where 64 KiB held 3): one trip through the loop, one engine pass
# and one position write for all (docs/performance.md)

# What a reconnect loop may catch: transient by nature, never a bug of ours.
TRANSIENT = (trio_websocket.HandshakeError, trio_websocket.ConnectionClosed, OSError,
             trio.TooSlowError, HttpProtocolError, wsproto.utilities.ProtocolError)

C = TypeVar("C", bound=Connection)


def clamp_heartbeat(seconds: float) -> float:
    """A server's advertised heartbeat interval, held to ``HEARTBEAT_RANGE``: 1 ms would be a
    thousand frames a second and a socket declared dead after 3 ms of quiet."""
    low, high = HEARTBEAT_RANGE
    return min(max(seconds, low), high)


def _retry(status: int | None) -> str | None:
    return None


COALESCE = 256  # frames already received that are handed on as one batch, at most


def already_received(ws: WebSocket) -> list[str | bytes]:
    """Frames the socket has already received, without waiting, at most ``COALESCE``:
    handed on as one batch, they cost one engine pass (and for ELEMENT, a replay's frames
    taken together are evaluated in measurement order, so a reading inserted late in the
    next frame is then not late)."""
    return ws.received(COALESCE)


@asynccontextmanager
async def open_socket(url: str, refused: Callable[[int | None], str | None] = _retry
                      ) -> AsyncIterator[WebSocket]:
    """The WebSocket at ``url``, open within ``CONNECT_TIMEOUT`` (else ``trio.TooSlowError``).
    A handshake refused with an HTTP status for which ``refused(status)`` gives a reason
    raises ``CredentialsRejected(reason)``; any other failure is raised as it came."""
    with trio.CancelScope(deadline=trio.current_time() + CONNECT_TIMEOUT) as connecting:
        try:
            async with open_websocket(url, max_message=MAX_MESSAGE, receive_size=RECEIVE_BUFFER,
                                      close_wait=DISCONNECT_TIMEOUT) as ws:
                connecting.deadline = math.inf
                yield ws
        except trio_websocket.ConnectionRejected as error:
            reason = refused(error.status_code)
            if reason is not None:
                raise CredentialsRejected(reason) from None
            raise
    if connecting.cancelled_caught:
        raise trio.TooSlowError


def describe(error: BaseException) -> str:
    """A short reason for the log, without URLs (they carry credentials)."""
    if isinstance(error, trio_websocket.ConnectionRejected):
        return f"handshake rejected with HTTP {error.status_code}"
    if isinstance(error, trio_websocket.ConnectionClosed):
        reason = error.reason
        text = f": {reason.reason}" if reason is not None and reason.reason else ""
        return f"connection closed (code {getattr(reason, 'code', '?')}{text})"
    if isinstance(error, trio_websocket.ConnectionTimeout):
        return "connection timed out"
    if isinstance(error, trio_websocket.HandshakeError):
        cause = error.__cause__ or error.__context__
        return f"handshake failed ({type(cause).__name__ if cause else 'no reply'})"
    if isinstance(error, trio.TooSlowError):
        return "no answer in time"
    if isinstance(error, OSError):
        return f"network error ({error.strerror or type(error).__name__})"
    return type(error).__name__


class Connectivity:
    """Counts a source's open sockets: the source is up while any is open, down when none
    is (SPEC: source_down means every socket of it is down). Returns the event to report."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.open = 0

    def opened(self) -> list[Event]:
        self.open += 1
        return [SourceUp(self.source)] if self.open == 1 else []

    def closed(self, reason: str) -> list[Event]:
        self.open -= 1
        return [SourceDown(self.source, reason)] if self.open == 0 else []


async def run_forever(label: str, session: Callable[[C], Awaitable[None]],
                      log: logging.Logger, connection: C | None = None) -> None:
    """Run ``session(connection)`` again and again. A session opens one socket, feeds the
    connection ``opened`` and ``proven``, and returns or raises when the socket ends. How it
    ended is the connection's ``closed`` (transient errors, logged with the delay) or
    ``rejected`` (logged once); then the loop waits for the connection's deadline."""
    if connection is None:
        connection = cast(C, Connection())
    while True:
        try:
            await session(connection)
            ended: Lost | Refused = connection.closed(trio.current_time(), "closed by the server")
        except (Exception, BaseExceptionGroup) as error:  # noqa: B902 - classified below
            leaf = _leaf(error)
            if isinstance(leaf, CredentialsRejected):
                ended = connection.rejected(trio.current_time(), str(leaf))
            elif isinstance(leaf, TRANSIENT):
                ended = connection.closed(trio.current_time(), describe(leaf))
            else:
                raise  # a bug, or a cancellation: not ours to swallow
        _log_end(label, ended, log)
        await _wake(connection)


def _log_end(label: str, ended: Lost | Refused, log: logging.Logger) -> None:
    if isinstance(ended, Refused):
        if ended.first:
            log.error("%s: %s; retrying every %d minutes", label, ended.reason,
                      ended.delay // 60)
    else:
        log.warning("%s: %s; reconnecting in %.1f s", label, ended.reason, ended.delay)


async def _wake(connection: Connection) -> Proven | Retry | None:
    """Sleep until the connection's deadline and hand it the timer; None when it has none
    (any more)."""
    deadline = connection.next_deadline()
    if deadline is None:
        return None
    await trio.sleep_until(deadline)
    if connection.next_deadline() != deadline:
        return None  # something else moved the machine meanwhile
    return connection.on_timer(trio.current_time())


def _leaf(error: BaseException) -> BaseException:
    """The error that ended a session, looking inside nurseries' exception groups.

    A dropped socket often fails two tasks at once (the reader's ``get_message`` and the
    keep-alive's ``ping`` both raise ConnectionClosed): a group whose errors are all
    transient is one transient failure, not a bug."""
    leaves: list[BaseException] = []
    pending = [error]
    while pending:
        current = pending.pop(0)
        if isinstance(current, BaseExceptionGroup):
            pending[:0] = current.exceptions
        elif not isinstance(current, trio.Cancelled):
            leaves.append(current)
    rejected = [e for e in leaves if isinstance(e, CredentialsRejected)]
    if rejected and all(isinstance(e, (CredentialsRejected, *TRANSIENT)) for e in leaves):
        return rejected[0]
    if len(leaves) == 1 or leaves and all(isinstance(e, TRANSIENT) for e in leaves):
        return leaves[0]
    return error


async def report_closed(send: trio.MemorySendChannel[Batch], connectivity: Connectivity,
                        socket: str = "") -> None:
    """Tell the engine a socket closed, even while being cancelled. At shutdown the engine
    loop has already stopped listening: then there is nobody to tell."""
    with trio.CancelScope(shield=True):
        try:
            await send.send(Batch(connectivity.source, tuple(
                connectivity.closed("socket closed")), socket))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass


class Standing:
    """One socket's standing with the engine, the stats and a recording: reported up when
    its connection proves itself, down when it ends if it was up. Whether it is up is the
    connection's to say (``Connection.is_open``); this class only tells."""

    def __init__(self, label: str, log: logging.Logger, send: trio.MemorySendChannel[Batch],
                 connectivity: Connectivity, stats: SourceStats, connection: Connection,
                 socket: str = "", recorded: Callable[[bool], None] | None = None) -> None:
        self.label, self.log, self.send = label, log, send
        self.connectivity, self.stats, self.connection = connectivity, stats, connection
        self.socket = socket
        self.recorded = recorded  # told True when proven, False when ended (recordings)

    async def up(self, proven: Proven | Retry | None) -> None:
        """Report what the connection said on a signal: up, if it was just proven."""
        if not isinstance(proven, Proven):
            return
        if proven.recovered:
            self.log.info("%s: connected", self.label)
        self.stats.sockets_up(self.connectivity.source, +1)
        if self.recorded is not None:
            self.recorded(True)
        await self.send.send(Batch(self.connectivity.source, tuple(self.connectivity.opened()),
                                   self.socket))

    async def proven(self, now: float) -> None:
        """What only an accepted socket receives arrived: tell the connection, report it."""
        await self.up(self.connection.proven(now))

    async def prove_by_waiting(self) -> None:
        """The connection's proving deadline (ELEMENT's), as a task beside the reader."""
        while self.connection.next_deadline() is not None:
            await self.up(await _wake(self.connection))

    async def down(self) -> None:
        """The socket ended: report it down if it was up (before the connection is told)."""
        if self.connection.is_open:
            self.stats.sockets_up(self.connectivity.source, -1)
            if self.recorded is not None:
                self.recorded(False)
            await report_closed(self.send, self.connectivity, self.socket)
