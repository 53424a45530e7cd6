"""A server that stops answering, or never answers, is left and reconnected: the daemon
in-process on the autojump clock, with a TCP relay in front of the fake servers that can go
silent (it keeps the connection open and forwards nothing either way), and a server that
accepts TCP and then says nothing at all."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
import trio

from alertd.simulator.element import FakeElement
from alertd.simulator.navixy import FakeNavixy
from alertd.sources.reconnect import CONNECT_TIMEOUT
from tests.test_daemon import config_file, daemon

RULES = """\
- name: warm
  source: cold
  threshold: {field: temperature, above: 8}
"""


class Relay:
    """Forwards TCP between a client and ``upstream_port`` until ``silence()``; from then on
    it reads what the client sends and forwards nothing, without closing anything. With no
    upstream it accepts and never says a word."""

    def __init__(self, upstream_port: int | None) -> None:
        self.upstream_port = upstream_port
        self.accepted: list[float] = []  # trio.current_time() of each connection
        self.silent = trio.Event()
        self.port = 0

    def silence(self) -> None:
        self.silent.set()

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                    ) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started()
        await trio.serve_listeners(self._handle, listeners)

    async def _handle(self, client: trio.SocketStream) -> None:
        self.accepted.append(trio.current_time())
        async with client:
            if self.upstream_port is None:
                await _drain(client)
                return
            upstream = await trio.open_tcp_stream("127.0.0.1", self.upstream_port)
            async with upstream, trio.open_nursery() as nursery:
                nursery.start_soon(self._pump, client, upstream)
                nursery.start_soon(self._pump, upstream, client)

    async def _pump(self, source: trio.SocketStream, target: trio.SocketStream) -> None:
        while data := await source.receive_some(65536):
            if self.silent.is_set():
                break
            await target.send_all(data)
        await _drain(source)


async def _drain(stream: trio.SocketStream) -> None:
    try:
        while await stream.receive_some(65536):
            pass
    except trio.BrokenResourceError:
        pass
    await trio.sleep_forever()  # the peer closed its side; ours stays open and says nothing


def through(relay: Relay, url: str) -> str:
    scheme, rest = url.split("//", 1)
    return f"{scheme}//127.0.0.1:{relay.port}/{rest.split('/', 1)[1]}"


async def wait_for(predicate: Callable[[], bool], seconds: float = 900) -> float:
    """Poll until ``predicate()`` holds (bounded); return the clock's time then."""
    with trio.fail_after(seconds):
        while not predicate():
            await trio.sleep(0.05)
    return trio.current_time()


def warnings_about(caplog: pytest.LogCaptureFixture, label: str) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING and r.getMessage().startswith(label)]


async def test_an_element_server_that_stops_answering_pings_is_left_after_two_intervals(
        tmp_path: Path, autojump_clock: trio.abc.Clock, nursery: trio.Nursery,
        fakes: tuple[FakeElement, FakeNavixy], caplog: pytest.LogCaptureFixture) -> None:
    element, navixy = fakes
    relay = Relay(element.port)
    await nursery.start(relay.serve)
    path = config_file(tmp_path, through(relay, element.url), navixy.url, [21080], RULES)
    caplog.set_level(logging.INFO)
    label = "source 'cold' socket devices/room1/readings"
    async with daemon(path):
        await wait_for(lambda: element.connections != [])
        relay.silence()
        silent_from = trio.current_time()
        await wait_for(lambda: len(relay.accepted) == 2)  # it left and connected again
        left = [m for m in warnings_about(caplog, label) if "no answer in time" in m]
        assert left, warnings_about(caplog, label)
        # pings go every 20 s (ping_interval); the first unanswered one is given 2 x 20 s,
        # then the close waits its 5 s (disconnect_timeout) and the first backoff about 1 s
        waited = relay.accepted[1] - silent_from
        assert 2 * 20 <= waited <= 3 * 20 + 5 + 2


async def test_a_navixy_server_silent_for_three_heartbeats_is_left(
        tmp_path: Path, autojump_clock: trio.abc.Clock, nursery: trio.Nursery,
        fakes: tuple[FakeElement, FakeNavixy], caplog: pytest.LogCaptureFixture) -> None:
    element, navixy = fakes
    relay = Relay(navixy.port)
    await nursery.start(relay.serve)
    path = config_file(tmp_path, element.url, through(relay, navixy.url), [21080], RULES)
    caplog.set_level(logging.INFO)
    async with daemon(path):
        await wait_for(lambda: navixy.subscribe_count >= 1)
        await trio.sleep(1)  # the subscription's first frames are through
        relay.silence()
        silent_from = trio.current_time()
        await wait_for(lambda: len(relay.accepted) == 2)
        assert any("no answer in time" in m for m in warnings_about(caplog, "source 'fleet'"))
        # the fake's heartbeat is 25 s: 3 silent heartbeats are 75 s after the last frame,
        # then the close waits its 5 s (disconnect_timeout) and the first backoff about 1 s
        waited = relay.accepted[1] - silent_from
        assert 75 - 25 <= waited <= 75 + 5 + 2


@pytest.mark.parametrize("which", ["cold", "fleet"])
async def test_a_server_that_accepts_tcp_and_says_nothing_is_left_after_the_connect_timeout(
        which: str, tmp_path: Path, autojump_clock: trio.abc.Clock, nursery: trio.Nursery,
        fakes: tuple[FakeElement, FakeNavixy], caplog: pytest.LogCaptureFixture) -> None:
    element, navixy = fakes
    mute = Relay(None)
    await nursery.start(mute.serve)
    element_url = through(mute, element.url) if which == "cold" else element.url
    navixy_url = through(mute, navixy.url) if which == "fleet" else navixy.url
    path = config_file(tmp_path, element_url, navixy_url, [21080], RULES)
    caplog.set_level(logging.INFO)
    async with daemon(path):
        await wait_for(lambda: len(mute.accepted) == 2)
    assert any("no answer in time; reconnecting" in m
               for m in warnings_about(caplog, f"source '{which}'"))
    first, second = mute.accepted
    assert CONNECT_TIMEOUT <= second - first <= CONNECT_TIMEOUT + 3  # + the first backoff

