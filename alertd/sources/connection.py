"""One connection's life, as a pure state machine: connecting, proving, open, backing off,
credentials rejected.

Rules of this file (the shape of h11's ``_state.py``):

- No I/O, no trio, no clock. Time comes in as ``now``; the machine's timers are data:
  ``next_deadline()`` says when it must be woken, ``on_timer(now)`` wakes it.
- One ``Connection`` per socket (an ELEMENT socket, the Navixy session). It outlives the
  sockets it opens one after another and holds everything about their life: the state, the
  failures since the backoff last started again, whether a rejection was already reported,
  when the socket proved itself. The clients only do I/O and feed it signals.
- ``TRANSITIONS`` is the whole machine: (state, signal) -> next state. A signal in a state
  it does not list raises ``ImpossibleTransition``, naming both; so does ``on_timer`` in a
  state without a deadline. ``on_timer`` before its deadline changes nothing.
- Only ``closed`` changes the failures; only ``rejected`` sets, and only a proven socket
  clears, the reported rejection.
- Each signal returns what the client must do about it, as a frozen value (``Proven``,
  ``Lost``, ``Refused``, ``Retry``) or None when there is nothing to do.

The machine::

    CONNECTING --opened--> PROVING --proven | timer--> OPEN --proven--> OPEN
        |                     |                          |
        +------ closed -------+---------- closed --------+--> BACKING_OFF
        +------ rejected -----+---------- rejected ------+--> CREDENTIALS_REJECTED
    BACKING_OFF --timer--> CONNECTING        CREDENTIALS_REJECTED --timer--> CONNECTING

Navixy adds one self-loop in PROVING and OPEN: a refused subscription (retried on the
connection, with its own backoff).

A ``Connection`` starts in CONNECTING: making one is starting the first attempt. A socket is
*proven* (the key or hash was accepted, and only then is it reported up) when it delivers
what only an accepted one can: any ELEMENT frame, or ELEMENT's socket staying open for
``ELEMENT_PROVING``; the answer to Navixy's subscribe action (a tracker's status or data).

Backoff: a lost socket waits 1 s doubling to 60 s, each delay drawn from the upper half of
its range (jitter keeps a fleet of sockets from reconnecting in lock-step). The failures
count again from zero only after a socket that stayed open ``STABLE_SESSION`` after it
proved itself: a server that accepts and soon drops every socket gets ever slower attempts,
not one a second. Rejected credentials are reported once (until a socket proves itself
again) and retried every ``AUTH_RETRY``, without touching the failures.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass
from typing import ClassVar

INITIAL_DELAY = 1.0
MAX_DELAY = 60.0
AUTH_RETRY = 300.0  # a rejected key or hash is not retried faster than every 5 minutes
STABLE_SESSION = 30.0  # a session that lasted this long resets the backoff; a shorter one not
ELEMENT_PROVING = 2.0  # an ELEMENT socket open this long without being closed: the key works
SUBSCRIBE_RETRY_FIRST, SUBSCRIBE_RETRY_MAX = 5.0, 300.0  # a refused Navixy subscription
REFUSAL_CLOSE_CODES = (1000, 1008)  # ... and 4000-4999: how a server may refuse a key late


class ConnectionState(enum.StrEnum):
    CONNECTING = "connecting"
    PROVING = "proving"
    OPEN = "open"
    BACKING_OFF = "backing off"
    CREDENTIALS_REJECTED = "credentials rejected"


class Signal(enum.StrEnum):
    OPENED = "opened"  # the WebSocket handshake completed
    PROVEN = "proven"  # what only an accepted socket receives
    CLOSED = "closed"  # the socket ended or could not be opened: try again after a backoff
    REJECTED = "rejected"  # the key or hash was refused
    TIMER = "timer"  # the deadline passed
    SUBSCRIPTION_REFUSED = "subscription refused"  # Navixy only: try the action again later


State = ConnectionState
TRANSITIONS: dict[tuple[ConnectionState, Signal], ConnectionState] = {
    (State.CONNECTING, Signal.OPENED): State.PROVING,
    (State.CONNECTING, Signal.CLOSED): State.BACKING_OFF,
    (State.CONNECTING, Signal.REJECTED): State.CREDENTIALS_REJECTED,
    (State.PROVING, Signal.PROVEN): State.OPEN,
    (State.PROVING, Signal.TIMER): State.OPEN,  # only where the kind proves by waiting
    (State.PROVING, Signal.CLOSED): State.BACKING_OFF,
    (State.PROVING, Signal.REJECTED): State.CREDENTIALS_REJECTED,
    (State.OPEN, Signal.PROVEN): State.OPEN,
    (State.OPEN, Signal.CLOSED): State.BACKING_OFF,
    (State.OPEN, Signal.REJECTED): State.CREDENTIALS_REJECTED,
    (State.BACKING_OFF, Signal.TIMER): State.CONNECTING,
    (State.CREDENTIALS_REJECTED, Signal.TIMER): State.CONNECTING,
}


class ImpossibleTransition(RuntimeError):
    """A signal the machine does not define in its state: a bug of the client feeding it."""

    def __init__(self, state: ConnectionState, signal: Signal) -> None:
        super().__init__(f"connection: no transition for signal '{signal}' in state '{state}'")
        self.state, self.signal = state, signal


@dataclass(frozen=True, slots=True)
class Proven:
    """The socket proved itself: report it up. ``recovered``: after failures or a rejection,
    worth a log line."""

    recovered: bool


@dataclass(frozen=True, slots=True)
class Lost:
    """The socket ended (or never opened) for ``reason``; the next attempt is in ``delay``."""

    reason: str
    delay: float


@dataclass(frozen=True, slots=True)
class Refused:
    """The credentials were rejected; ``first``: not reported since the last proven socket.
    The next attempt is in ``delay``."""

    reason: str
    first: bool
    delay: float


@dataclass(frozen=True, slots=True)
class Retry:
    """The wait is over: open the next socket."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """``initial`` doubling to ``maximum``: the ceiling of the delay after ``failures``."""

    initial: float = INITIAL_DELAY
    maximum: float = MAX_DELAY

    def ceiling(self, failures: int) -> float:
        return min(self.maximum, self.initial * 2.0 ** min(failures, 16))


class Connection:
    """One socket's life across reconnections; see the module docstring.

    ``prove_after``: seconds after which an open socket counts as proven without having
    received anything (None: only what it receives proves it). ``rng`` draws the jitter."""

    transitions: ClassVar[dict[tuple[ConnectionState, Signal], ConnectionState]] = TRANSITIONS

    def __init__(self, prove_after: float | None = None, backoff: Backoff | None = None,
                 rng: random.Random | None = None) -> None:
        self.prove_after = prove_after
        self.backoff = backoff or Backoff()
        self.rng = rng or random.Random()
        self.state = ConnectionState.CONNECTING
        self.failures = 0  # consecutive lost sockets since the backoff last started again
        self.rejection_reported = False  # until a socket proves itself again
        self.opened_at: float | None = None  # when the current socket's handshake completed
        self.proven_at: float | None = None  # when the current socket proved itself
        self.retry_at: float | None = None  # when BACKING_OFF or CREDENTIALS_REJECTED ends

    def _move(self, signal: Signal) -> ConnectionState:
        try:
            self.state = self.transitions[self.state, signal]
        except KeyError:
            raise ImpossibleTransition(self.state, signal) from None
        return self.state

    # ---- signals --------------------------------------------------------------------------

    def opened(self, now: float) -> None:
        """The handshake completed: the socket must now prove itself."""
        self._move(Signal.OPENED)
        self.opened_at, self.proven_at = now, None

    def proven(self, now: float) -> Proven | None:
        """Something only an accepted socket receives arrived. Proven the first time."""
        if self._move(Signal.PROVEN) is ConnectionState.OPEN and self.proven_at is None:
            return self._prove(now)
        return None

    def closed(self, now: float, reason: str) -> Lost:
        """The socket ended, or could not be opened, for a transient ``reason``."""
        lasted = self.proven_at is not None and now - self.proven_at >= STABLE_SESSION
        self._move(Signal.CLOSED)
        if lasted:
            self.failures = 0
        ceiling = self.backoff.ceiling(self.failures)
        self.failures += 1
        delay = self.rng.uniform(ceiling / 2, ceiling)
        self._end(now + delay)
        return Lost(reason, delay)

    def rejected(self, now: float, reason: str) -> Refused:
        """The key or hash was refused: reported once, retried every ``AUTH_RETRY``."""
        self._move(Signal.REJECTED)
        first, self.rejection_reported = not self.rejection_reported, True
        self._end(now + AUTH_RETRY)
        return Refused(reason, first, AUTH_RETRY)

    def on_timer(self, now: float) -> Proven | Retry | None:
        """Handle the deadline of ``next_deadline()``; before it, nothing happens."""
        deadline = self.next_deadline()
        if deadline is None:
            raise ImpossibleTransition(self.state, Signal.TIMER)
        if now < deadline:
            return None
        if self._move(Signal.TIMER) is ConnectionState.OPEN:
            return self._prove(now)
        self.retry_at = None
        return Retry()

    def next_deadline(self) -> float | None:
        """When ``on_timer`` must be called: the end of a wait, or of ELEMENT's proving."""
        if self.state in (ConnectionState.BACKING_OFF, ConnectionState.CREDENTIALS_REJECTED):
            return self.retry_at
        if self.state is ConnectionState.PROVING and self.prove_after is not None \
                and self.opened_at is not None:
            return self.opened_at + self.prove_after
        return None

    # ---- helpers ----------------------------------------------------------------------------

    def _prove(self, now: float) -> Proven:
        recovered = self.failures > 0 or self.rejection_reported
        self.proven_at, self.rejection_reported = now, False
        return Proven(recovered)

    def _end(self, retry_at: float) -> None:
        self.retry_at = retry_at
        self.opened_at = self.proven_at = None

    @property
    def is_open(self) -> bool:
        """Proven and not yet ended: the socket is reported up."""
        return self.state is ConnectionState.OPEN


def is_refusal_code(code: int | None) -> bool:
    """A close code a server may use to refuse a key after the handshake."""
    return code is not None and (code in REFUSAL_CLOSE_CODES or 4000 <= code < 5000)


class ElementConnection(Connection):
    """An ELEMENT socket: proven by its first frame, or by staying open ``ELEMENT_PROVING``
    (a quiet device socket sends nothing for hours). A close with a refusal code while it is
    still proving means the key was refused (PROTOCOL-NOTES: accept-then-close)."""

    def __init__(self, rng: random.Random | None = None) -> None:
        super().__init__(prove_after=ELEMENT_PROVING, rng=rng)

    def closed_as_refusal(self, code: int | None) -> bool:
        return self.state is ConnectionState.PROVING and is_refusal_code(code)


class NavixyConnection(Connection):
    """The Navixy session: proven by the subscribe action's answer (a tracker's status or
    data); nothing proves it by waiting. It also keeps the backoff of refused subscriptions
    (5 s doubling to 5 minutes, no jitter), started again by every new socket and every
    answer."""

    transitions: ClassVar[dict[tuple[ConnectionState, Signal], ConnectionState]] = {
        **TRANSITIONS,
        (State.PROVING, Signal.SUBSCRIPTION_REFUSED): State.PROVING,
        (State.OPEN, Signal.SUBSCRIPTION_REFUSED): State.OPEN}

    def __init__(self, rng: random.Random | None = None) -> None:
        super().__init__(prove_after=None, rng=rng)
        self.subscribe_backoff = Backoff(SUBSCRIBE_RETRY_FIRST, SUBSCRIBE_RETRY_MAX)
        self.refusals = 0

    def opened(self, now: float) -> None:
        super().opened(now)
        self.refusals = 0

    def proven(self, now: float) -> Proven | None:
        proven = super().proven(now)
        self.refusals = 0  # the subscription was answered
        return proven

    def subscription_refused(self) -> float:
        """A subscription was refused: seconds until the action is sent again."""
        self._move(Signal.SUBSCRIPTION_REFUSED)
        delay = self.subscribe_backoff.ceiling(self.refusals)
        self.refusals += 1
        return delay

