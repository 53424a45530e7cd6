"""Reconnecting: exponential backoff with jitter, and the errors worth a reconnect.

A source's ``run()`` keeps one socket open for weeks; every transient failure (refused,
dropped, timed out, a garbage handshake) waits a little longer, up to a minute, then tries
again. Jitter keeps a fleet of sockets from reconnecting in lock-step after an outage.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable

import trio
import trio_websocket
import wsproto.utilities
from h11 import ProtocolError as HttpProtocolError

from alertd.errors import CredentialsRejected
from alertd.model import Batch, Event, SourceDown, SourceUp
from alertd.sources.stats import SourceStats

INITIAL_DELAY = 1.0
MAX_DELAY = 60.0
AUTH_RETRY = 300.0  # a rejected key or hash is not retried faster than every 5 minutes
STABLE_SESSION = 30.0  # a session that lasted this long resets the backoff; a shorter one not
HEARTBEAT_RANGE = (1.0, 300.0)  # seconds: what a server may ask of alertd's heartbeats

# What a reconnect loop may catch: transient by nature, never a bug of ours.
TRANSIENT = (trio_websocket.HandshakeError, trio_websocket.ConnectionClosed, OSError,
             trio.TooSlowError, HttpProtocolError, wsproto.utilities.ProtocolError)


def clamp_heartbeat(seconds: float) -> float:
    """A server's advertised heartbeat interval, held to ``HEARTBEAT_RANGE``: 1 ms would be a
    thousand frames a second and a socket declared dead after 3 ms of quiet."""
    low, high = HEARTBEAT_RANGE
    return min(max(seconds, low), high)


class Backoff:
    """1 s doubling to 60 s, each delay drawn from its upper half (jitter)."""

    def __init__(self, initial: float = INITIAL_DELAY, maximum: float = MAX_DELAY,
                 rng: random.Random | None = None) -> None:
        self.initial = initial
        self.maximum = maximum
        self.failures = 0
        self.rng = rng or random.Random()

    def next(self) -> float:
        ceiling = min(self.maximum, self.initial * 2 ** min(self.failures, 16))
        self.failures += 1
        return self.rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.failures = 0


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


CONNECT_TIMEOUT = 15.0  # trio-websocket's own connect_timeout misses a silent server


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


async def run_forever(label: str, session: Callable[[Callable[[], None]], Awaitable[None]],
                      log: logging.Logger, backoff: Backoff | None = None) -> None:
    """Run ``session`` again and again. ``session(opened)`` opens one socket, calls
    ``opened()`` once connected and returns or raises when the socket ends. Transient errors
    back off (1 s doubling to 60 s, with jitter); rejected credentials are reported once and
    retried every 5 minutes. The backoff starts again from 1 s only after a session that
    lasted ``STABLE_SESSION``: a server that accepts and soon drops every socket gets ever
    slower attempts, not one a second."""
    backoff = backoff or Backoff()
    state = {"auth_reported": False}
    opened_at: list[float] = []  # when this session's socket was confirmed, if it was

    def opened() -> None:
        if backoff.failures or state["auth_reported"]:
            log.info("%s: connected", label)
        opened_at.append(trio.current_time())
        state["auth_reported"] = False

    while True:
        opened_at.clear()
        try:
            await session(opened)
            reason = "closed by the server"
        except (Exception, BaseExceptionGroup) as error:  # noqa: B902 - classified below
            leaf = _leaf(error)
            if isinstance(leaf, CredentialsRejected):
                if not state["auth_reported"]:
                    log.error("%s: %s; retrying every %d minutes", label, leaf,
                              AUTH_RETRY // 60)
                    state["auth_reported"] = True
                await trio.sleep(AUTH_RETRY)
                continue
            if not isinstance(leaf, TRANSIENT):
                raise  # a bug, or a cancellation: not ours to swallow
            reason = describe(leaf)
        if opened_at and trio.current_time() - opened_at[0] >= STABLE_SESSION:
            backoff.reset()
        delay = backoff.next()
        log.warning("%s: %s; reconnecting in %.1f s", label, reason, delay)
        await trio.sleep(delay)


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


class Session:
    """One socket's standing with the engine: confirmed once it has proved itself (the key
    or hash was accepted), only then reported up, and reported down when it ends."""

    def __init__(self, send: trio.MemorySendChannel[Batch], connectivity: Connectivity,
                 stats: SourceStats, opened: Callable[[], None], socket: str = "",
                 standing: Callable[[bool], None] | None = None) -> None:
        self.send, self.connectivity, self.stats = send, connectivity, stats
        self.opened, self.socket = opened, socket
        self.standing = standing  # told True when confirmed, False when ended (recordings)
        self.confirmed = False

    async def confirm(self) -> None:
        if not self.confirmed:
            self.confirmed = True
            self.opened()
            self.stats.sockets_up(self.connectivity.source, +1)
            if self.standing is not None:
                self.standing(True)
            await self.send.send(Batch(self.connectivity.source,
                                       tuple(self.connectivity.opened()), self.socket))

    async def close(self) -> None:
        if self.confirmed:
            self.stats.sockets_up(self.connectivity.source, -1)
            if self.standing is not None:
                self.standing(False)
            await report_closed(self.send, self.connectivity, self.socket)
