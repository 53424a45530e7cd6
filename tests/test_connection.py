"""The connection state machine (``alertd/sources/connection.py``): every state x signal,
the backoff, the rejections, the proving, on injected time. No sockets, no trio."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from alertd.sources.connection import (
    AUTH_RETRY,
    Connection,
    ConnectionState,
    ElementConnection,
    ImpossibleTransition,
    Lost,
    NavixyConnection,
    Proven,
    Refused,
    Retry,
    Signal,
)

S = ConnectionState
LATER = 1e9  # a time past any deadline


def in_state(make: Callable[[], Connection], state: ConnectionState) -> Connection:
    """A machine of the kind ``make`` builds, driven into ``state`` at times 0 and 1."""
    connection = make()
    if state is S.PROVING:
        connection.opened(0.0)
    elif state is S.OPEN:
        connection.opened(0.0)
        connection.proven(1.0)
    elif state is S.BACKING_OFF:
        connection.closed(0.0, "refused")
    elif state is S.CREDENTIALS_REJECTED:
        connection.rejected(0.0, "bad key")
    assert connection.state is state
    return connection


def send(connection: Connection, signal: Signal) -> None:
    if signal is Signal.OPENED:
        connection.opened(2.0)
    elif signal is Signal.PROVEN:
        connection.proven(2.0)
    elif signal is Signal.CLOSED:
        connection.closed(2.0, "dropped")
    elif signal is Signal.REJECTED:
        connection.rejected(2.0, "bad key")
    elif signal is Signal.TIMER:
        connection.on_timer(LATER)
    else:
        assert isinstance(connection, NavixyConnection)
        connection.subscription_refused()


# What each kind does, written out (not read from the module's table): state -> signal ->
# next state; every pair not listed must raise.
COMMON = {
    (S.CONNECTING, Signal.OPENED): S.PROVING,
    (S.CONNECTING, Signal.CLOSED): S.BACKING_OFF,
    (S.CONNECTING, Signal.REJECTED): S.CREDENTIALS_REJECTED,
    (S.PROVING, Signal.PROVEN): S.OPEN,
    (S.PROVING, Signal.CLOSED): S.BACKING_OFF,
    (S.PROVING, Signal.REJECTED): S.CREDENTIALS_REJECTED,
    (S.OPEN, Signal.PROVEN): S.OPEN,
    (S.OPEN, Signal.CLOSED): S.BACKING_OFF,
    (S.OPEN, Signal.REJECTED): S.CREDENTIALS_REJECTED,
    (S.BACKING_OFF, Signal.TIMER): S.CONNECTING,
    (S.CREDENTIALS_REJECTED, Signal.TIMER): S.CONNECTING,
}
KINDS: dict[str, tuple[Callable[[], Connection], dict[tuple[S, Signal], S], list[Signal]]] = {
    "element": (ElementConnection, {**COMMON, (S.PROVING, Signal.TIMER): S.OPEN},
                [s for s in Signal if s is not Signal.SUBSCRIPTION_REFUSED]),
    "navixy": (NavixyConnection, {**COMMON, (S.PROVING, Signal.SUBSCRIPTION_REFUSED): S.PROVING,
                                  (S.OPEN, Signal.SUBSCRIPTION_REFUSED): S.OPEN}, list(Signal)),
    "plain": (Connection, COMMON, [s for s in Signal if s is not Signal.SUBSCRIPTION_REFUSED]),
}
CASES = [(kind, state, signal) for kind, (_, _, signals) in KINDS.items()
         for state in ConnectionState for signal in signals]


@pytest.mark.parametrize(("kind", "state", "signal"), CASES,
                         ids=[f"{k}-{st.name}-{sg.name}" for k, st, sg in CASES])
def test_every_state_and_signal(kind: str, state: ConnectionState, signal: Signal) -> None:
    make, table, _ = KINDS[kind]
    connection = in_state(make, state)
    if (state, signal) in table:
        send(connection, signal)
        assert connection.state is table[state, signal]
    else:
        with pytest.raises(ImpossibleTransition) as impossible:
            send(connection, signal)
        assert (impossible.value.state, impossible.value.signal) == (state, signal)
        assert f"'{signal}'" in str(impossible.value) and f"'{state}'" in str(impossible.value)
        assert connection.state is state  # unchanged


def test_backoff_doubles_to_a_minute_with_jitter() -> None:
    connection = Connection(rng=random.Random(7))
    delays = []
    for _ in range(10):
        lost = connection.closed(0.0, "refused")
        delays.append(lost.delay)
        assert connection.next_deadline() == lost.delay
        assert connection.on_timer(lost.delay) == Retry()
    ceilings = [1, 2, 4, 8, 16, 32, 60, 60, 60, 60]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True)), delays
    assert len(set(delays)) == 10  # jittered, not the ceilings themselves


def test_only_a_session_that_lasted_thirty_seconds_starts_the_backoff_again() -> None:
    """A server that accepts and soon drops every socket gets ever slower attempts."""
    connection = Connection(rng=random.Random(1))
    for _ in range(4):
        connection.closed(0.0, "refused")
        connection.on_timer(LATER)
    connection.opened(100.0)
    assert connection.proven(101.0) == Proven(recovered=True)
    short = connection.closed(130.9, "dropped")  # 29.9 s after it proved itself
    assert 8 <= short.delay <= 16
    connection.on_timer(LATER)
    connection.opened(200.0)
    connection.proven(200.0)
    assert connection.closed(229.0, "dropped").delay >= 16  # still counting up
    connection.on_timer(LATER)
    connection.opened(300.0)  # an unproven socket's time does not count
    assert connection.closed(400.0, "dropped").delay >= 30
    connection.on_timer(LATER)
    connection.opened(500.0)
    connection.proven(500.0)
    assert connection.closed(530.0, "dropped").delay <= 1  # lasted 30 s: from 1 s again


def test_a_rejection_is_reported_once_until_a_socket_proves_itself() -> None:
    connection = Connection(rng=random.Random(3))
    connection.closed(0.0, "refused")  # one failure before
    connection.on_timer(LATER)
    first = connection.rejected(10.0, "the API key was rejected (HTTP 401)")
    assert first == Refused("the API key was rejected (HTTP 401)", first=True, delay=AUTH_RETRY)
    assert connection.next_deadline() == 10.0 + AUTH_RETRY
    assert connection.on_timer(10.0 + AUTH_RETRY - 0.001) is None  # not yet
    assert connection.state is S.CREDENTIALS_REJECTED
    assert connection.on_timer(10.0 + AUTH_RETRY) == Retry()
    assert connection.rejected(400.0, "again").first is False
    connection.on_timer(LATER)
    assert connection.failures == 1  # rejections leave the backoff alone
    connection.opened(1000.0)
    assert connection.proven(1000.0) == Proven(recovered=True)
    assert connection.rejected(1001.0, "logged out").first is True


def test_proven_once_per_socket_and_recovered_only_after_trouble() -> None:
    connection = Connection()
    connection.opened(0.0)
    assert connection.proven(0.5) == Proven(recovered=False)  # the first socket: no news
    assert connection.proven(0.6) is None  # every later frame: nothing to report
    assert connection.is_open
    connection.closed(40.0, "dropped")  # lasted: failures back to 0, then this one
    assert not connection.is_open
    connection.on_timer(LATER)
    connection.opened(50.0)
    assert connection.proven(50.0) == Proven(recovered=True)


def test_deadlines_per_state() -> None:
    element, navixy = ElementConnection(), NavixyConnection()
    assert element.next_deadline() is None and navixy.next_deadline() is None  # connecting
    element.opened(10.0)
    navixy.opened(10.0)
    assert element.next_deadline() == 12.0  # an ELEMENT socket proves itself by staying open
    assert navixy.next_deadline() is None  # a Navixy one only by the subscribe answer
    assert element.on_timer(11.999) is None and element.state is S.PROVING
    assert element.on_timer(12.0) == Proven(recovered=False)
    assert element.state is S.OPEN and element.next_deadline() is None
    lost = element.closed(13.0, "dropped")
    assert lost == Lost("dropped", lost.delay)
    assert element.next_deadline() == 13.0 + lost.delay


def test_an_element_close_while_proving_with_a_refusal_code_is_a_rejected_key() -> None:
    connection = ElementConnection()
    connection.opened(0.0)
    assert [connection.closed_as_refusal(c) for c in (1000, 1008, 4000, 4001, 4999)] == [
        True] * 5
    assert [connection.closed_as_refusal(c) for c in (None, 1001, 1006, 1009, 1011, 3999,
                                                      5000)] == [False] * 7
    connection.proven(0.1)
    assert connection.closed_as_refusal(1000) is False  # after a frame: a plain close


def test_navixy_refused_subscriptions_back_off_without_jitter_and_start_again() -> None:
    connection = NavixyConnection()
    connection.opened(0.0)
    delays = [connection.subscription_refused() for _ in range(8)]
    assert delays == [5, 10, 20, 40, 80, 160, 300, 300]
    connection.proven(1.0)  # an answer: the next refusal waits 5 s again
    assert connection.subscription_refused() == 5
    assert connection.subscription_refused() == 10
    connection.closed(2.0, "dropped")
    connection.on_timer(LATER)
    connection.opened(100.0)  # a new socket starts again too
    assert connection.subscription_refused() == 5
