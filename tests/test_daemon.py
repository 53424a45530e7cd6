"""The daemon end to end, in-process: real loopback fakes of ELEMENT and Navixy, the real
state file, console:// output, on trio's autojump clock (minutes of silence in milliseconds).
"""

from __future__ import annotations

import io
import logging
import os
import re
import signal
import textwrap
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import trio
import trio_websocket

from alertd import app
from alertd.clock import Clock
from alertd.config import load_config
from alertd.logs import Redact
from alertd.simulator.element import FakeElement
from alertd.simulator.navixy import FakeNavixy
from alertd.store import Store

API_KEY = "k3y-3l3m3nt-s3cr3t"
HASH = "0123456789abcdef0123456789abcdef"


def config_file(tmp_path: Path, element: str, navixy: str, trackers: list[int],
                rules: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent(f"""\
        state: state.db
        sources:
          cold:
            type: element
            url: {element}
            api_key: {API_KEY}
            subscribe: [devices/room1/readings]
            ping_interval: 20s
          fleet:
            type: navixy
            url: {navixy}
            hash: {HASH}
            trackers: {trackers}
            rate_limit: 1s
        channels:
          out: console://
        defaults:
          notify: [out]
          repeat: never
        rules:
        """) + textwrap.indent(textwrap.dedent(rules), "  "))
    return path


class Daemon:
    def __init__(self, out: io.StringIO, runtime: app.Runtime, scope: trio.CancelScope):
        self.out = out
        self.runtime = runtime
        self.scope = scope

    def lines(self, word: str = "") -> list[str]:
        """One line per alert notified, as ``STAMP [STATE] rule: entity``: the title of a
        message about one alert, or each alert listed in a grouped message."""
        found: list[str] = []
        stamp = rule = ""
        grouped: re.Match[str] | None = None
        for line in self.out.getvalue().splitlines():
            if line[:1].isdigit():
                stamp, _, title = line.partition(" ")
                grouped = re.match(r"\[(FIRING|RESOLVED|FLAPPING) \d", title)
                if not grouped:
                    found.append(line)
            elif grouped and re.match(r"    \S+ \(\w+\):$", line):
                rule = line.split()[0]
            elif grouped and line.startswith("      "):
                state, _, rest = line.strip().partition(": ")
                found.append(f"{stamp} [{state}] {rule}: {rest}")
        return [line for line in found if word in line]

    async def wait_for(self, predicate: Callable[[], bool], seconds: float = 600) -> None:
        with trio.fail_after(seconds):
            while not predicate():
                await trio.sleep(0.05)


@asynccontextmanager
async def daemon(path: Path, redact: Redact | None = None) -> AsyncIterator[Daemon]:
    config = load_config(path, {})
    store = Store.open(config.state)
    out = io.StringIO()
    try:
        async with trio.open_nursery() as nursery:
            with trio.CancelScope() as scope:
                runtime = await nursery.start(
                    lambda task_status: app.run(config, store, config_path=str(path),
                                                redact=redact, out=out,
                                                task_status=task_status))
                yield Daemon(out, runtime, nursery.cancel_scope)
            nursery.cancel_scope.cancel()
    finally:
        store.close()
    del scope


@pytest.fixture
async def fakes(nursery: trio.Nursery) -> tuple[FakeElement, FakeNavixy]:
    clock = Clock()  # the fakes stamp messages on the same (autojumping) clock as alertd
    element = FakeElement(api_keys={API_KEY}, clock=clock.now)
    navixy = FakeNavixy(hashes={HASH}, trackers={21080: "normal", 21085: "blocked"},
                        heartbeat_ms=25000, clock=clock.now)
    await nursery.start(element.serve)
    await nursery.start(navixy.serve)
    return element, navixy


RULES = """\
- name: warm
  source: cold
  threshold: {field: temperature, above: 8}
- name: fuel-gap
  source: fleet
  missing: {field: lls_level_1, nulls: 3}
- name: blocked
  source: fleet
  status: {in: [blocked]}
"""

WARM = """\
    - name: warm
      source: cold
      threshold: {field: temperature, above: 8}
    """  # one rule: a threshold on the ELEMENT source


async def test_both_sources_end_to_end(tmp_path: Path, autojump_clock: trio.abc.Clock,
                                       fakes: tuple[FakeElement, FakeNavixy]) -> None:
    element, navixy = fakes
    path = config_file(tmp_path, element.url, navixy.url, [21080, 21085], RULES)
    async with daemon(path) as d:
        await d.wait_for(lambda: bool(d.lines("blocked")))  # from the subscribe response
        await d.wait_for(lambda: element.connections != [])
        element.add_reading("room1", {"temperature": 9.5})
        await d.wait_for(lambda: bool(d.lines("warm")))
        for _ in range(3):
            navixy.add_message(21080, {"lls_level_1": None, "speed": 40})
            await trio.sleep(2)
        await d.wait_for(lambda: bool(d.lines("fuel-gap")))
    assert [line.split(" ", 1)[1] for line in d.lines()] == [
        "[FIRING] blocked: 21085", "[FIRING] warm: room1", "[FIRING] fuel-gap: 21080"]


async def test_drop_and_replay_lose_nothing_and_repeat_nothing(
        tmp_path: Path, autojump_clock: trio.abc.Clock,
        fakes: tuple[FakeElement, FakeNavixy]) -> None:
    element, navixy = fakes
    path = config_file(tmp_path, element.url, navixy.url, [21080], WARM)
    async with daemon(path) as d:
        await d.wait_for(lambda: element.connections != [])
        element.add_reading("room1", {"temperature": 9})
        await d.wait_for(lambda: bool(d.lines("[FIRING] warm")))
        element.pause()
        element.drop_all()
        element.add_reading("room1", {"temperature": 5})  # arrives while we are cut off
        await trio.sleep(30)
        element.resume()
        await d.wait_for(lambda: bool(d.lines("[RESOLVED] warm")))
        await trio.sleep(120)  # more reconnects would replay more; nothing may repeat
    assert [line.split(" ", 1)[1] for line in d.lines()] == [
        "[FIRING] warm: room1", "[RESOLVED] warm: room1"]
    after = [c for c in element.connections_log if "after=" in c]
    assert after, "the reconnect passed after="


async def test_restart_keeps_firing_alerts_quiet(tmp_path: Path, autojump_clock: trio.abc.Clock,
                                                 fakes: tuple[FakeElement, FakeNavixy]) -> None:
    element, navixy = fakes
    path = config_file(tmp_path, element.url, navixy.url, [21080, 21085], RULES)
    async with daemon(path) as d:
        await d.wait_for(lambda: bool(d.lines("[FIRING] blocked")))
    subscribed = navixy.subscribe_count
    async with daemon(path) as again:  # the same state file
        await again.wait_for(lambda: navixy.subscribe_count > subscribed)
        # 21085 is still blocked in this daemon's subscribe response; a later change of
        # 21080 shows that the response was evaluated: only 21080 is news
        navixy.set_status(21080, "blocked")
        await again.wait_for(lambda: bool(again.lines("[FIRING] blocked: 21080")))
    assert [line.split(" ", 1)[1] for line in again.lines()] == ["[FIRING] blocked: 21080"]


async def test_each_notification_written_is_logged_once_after_it_is_handed_on(
        tmp_path: Path, autojump_clock: trio.abc.Clock, fakes: tuple[FakeElement, FakeNavixy],
        caplog: pytest.LogCaptureFixture) -> None:
    """The alert's line is still logged once for each notification written, firing and
    resolved; it now comes after the hand-on to the planner, which no longer waits for it."""
    element, navixy = fakes
    path = config_file(tmp_path, element.url, navixy.url, [21080], WARM)
    caplog.set_level(logging.INFO)
    async with daemon(path) as d:
        await d.wait_for(lambda: element.connections != [])
        element.add_reading("room1", {"temperature": 12})
        await d.wait_for(lambda: bool(d.lines("[FIRING] warm")))
        element.add_reading("room1", {"temperature": 3})
        await d.wait_for(lambda: bool(d.lines("[RESOLVED] warm")))
    lines = [r.getMessage() for r in caplog.records]
    assert [line for line in lines if line.startswith("warm cold/room1 ")] == [
        "warm cold/room1 firing", "warm cold/room1 resolved"]


async def test_bad_frames_are_skipped_and_counted(tmp_path: Path, autojump_clock: trio.abc.Clock,
                                                  fakes: tuple[FakeElement, FakeNavixy],
                                                  caplog: pytest.LogCaptureFixture) -> None:
    element, navixy = fakes
    path = config_file(tmp_path, element.url, navixy.url, [21080], WARM)
    caplog.set_level(logging.WARNING)
    async with daemon(path) as d:
        await d.wait_for(lambda: element.connections != [])
        element.send_raw("this is not json")
        element.send_raw('[{"event": "reading_added", "body": {"id": 1}}]')
        navixy.send_raw('{"type": "event", "event": "iot_monitor", "data": 7}')
        element.add_reading("room1", {"temperature": 12})
        await d.wait_for(lambda: bool(d.lines("[FIRING] warm")))
        assert d.runtime.stats.bad_frame_count["cold"] == 2
        await d.wait_for(lambda: d.runtime.stats.bad_frame_count["fleet"] == 1)
    assert "skipped bad input" in caplog.text


async def test_rejected_credentials_reported_once_and_no_secret_logged(
        tmp_path: Path, autojump_clock: trio.abc.Clock, fakes: tuple[FakeElement, FakeNavixy],
        caplog: pytest.LogCaptureFixture) -> None:
    element, navixy = fakes
    element.api_keys.clear()
    navixy.hashes.clear()
    path = config_file(tmp_path, element.url, navixy.url, [21080], """\
        - name: down
          source_down: {after: 1m}
        """)
    caplog.set_level(logging.INFO)
    redact = Redact()
    for handler in logging.getLogger().handlers:
        handler.addFilter(redact)
    caplog.handler.addFilter(redact)
    async with daemon(path, redact) as d:
        await trio.sleep(11 * 60)
        assert element.handshakes <= 3 and navixy.subscribe_count <= 3  # every 5 minutes
        await d.wait_for(lambda: len(d.lines("[FIRING] down")) == 2)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert sum("source 'cold'" in e and "rejected" in e for e in errors) == 1
    assert sum("source 'fleet'" in e and "hash" in e for e in errors) == 1
    assert API_KEY not in caplog.text and HASH not in caplog.text


async def test_server_down_at_start_then_up(tmp_path: Path, autojump_clock: trio.abc.Clock,
                                            fakes: tuple[FakeElement, FakeNavixy]) -> None:
    element, navixy = fakes
    element.pause()  # refuses every handshake, as a service in maintenance would
    path = config_file(tmp_path, element.url, navixy.url, [21080], """\
        - name: down
          source: cold
          source_down: {after: 2m}
        - name: warm
          source: cold
          threshold: {field: temperature, above: 8}
        """)
    async with daemon(path) as d:
        await d.wait_for(lambda: bool(d.lines("[FIRING] down: cold")))
        element.resume()
        await d.wait_for(lambda: bool(d.lines("[RESOLVED] down: cold")))
        element.add_reading("room1", {"temperature": 10})
        await d.wait_for(lambda: bool(d.lines("[FIRING] warm")))
    assert element.handshakes >= 3  # it kept trying, with backoff


async def test_oversized_frame_costs_one_reconnect_not_the_daemon(
        tmp_path: Path, autojump_clock: trio.abc.Clock,
        fakes: tuple[FakeElement, FakeNavixy]) -> None:
    element, navixy = fakes
    path = config_file(tmp_path, element.url, navixy.url, [21080], WARM)
    async with daemon(path) as d:
        await d.wait_for(lambda: element.connections != [])
        element.send_raw("[" + " " * (17 * 1024 * 1024) + "]")  # over the 16 MiB limit
        await d.wait_for(lambda: element.handshakes >= 2)
        await d.wait_for(lambda: element.connections != [])
        element.add_reading("room1", {"temperature": 10})
        await d.wait_for(lambda: bool(d.lines("[FIRING] warm")))


async def test_accept_then_close_is_a_rejected_key(tmp_path: Path,
                                                   autojump_clock: trio.abc.Clock,
                                                   fakes: tuple[FakeElement, FakeNavixy],
                                                   caplog: pytest.LogCaptureFixture) -> None:
    element, navixy = fakes
    element.api_keys.clear()
    element.reject_mode = "close"  # the other side of PROTOCOL-NOTES' [guess]
    path = config_file(tmp_path, element.url, navixy.url, [21080], WARM)
    caplog.set_level(logging.ERROR)
    async with daemon(path):
        await trio.sleep(11 * 60)
    assert element.handshakes == 3  # at 0, 5 and 10 minutes
    rejected = [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()
                or "API key" in r.getMessage()]
    assert len(rejected) == 1 and "code 4001" in rejected[0]


async def test_sighup_reloads_and_an_invalid_file_keeps_the_old_one(
        tmp_path: Path, autojump_clock: trio.abc.Clock, fakes: tuple[FakeElement, FakeNavixy],
        caplog: pytest.LogCaptureFixture) -> None:
    element, navixy = fakes
    path = config_file(tmp_path, element.url, navixy.url, [21080], WARM)
    caplog.set_level(logging.INFO)
    async with daemon(path) as d:
        await d.wait_for(lambda: element.connections != [])
        text = path.read_text()
        path.write_text(text.replace("above: 8}", "above: 8}\n  - {name: broken, silent: x}"))
        os.kill(os.getpid(), signal.SIGHUP)
        await d.wait_for(lambda: "keeping the running configuration" in caplog.text)
        element.add_reading("room1", {"temperature": 9})
        await d.wait_for(lambda: bool(d.lines("[FIRING] warm")))
        path.write_text(text.replace("above: 8}", "above: 20}"))  # now 9 is fine
        os.kill(os.getpid(), signal.SIGHUP)
        await d.wait_for(lambda: "reload: " in caplog.text and "loaded" in caplog.text)
        await d.wait_for(lambda: len(element.connections) == 1 and element.handshakes >= 2)
        element.add_reading("room1", {"temperature": 10})
        await d.wait_for(lambda: bool(d.lines("[RESOLVED] warm")))
    assert "rules.yaml:" in caplog.text and "rule 'broken'" in caplog.text


async def test_keep_alive_holds_quiet_sockets_open(tmp_path: Path, autojump_clock: trio.abc.Clock,
                                                   fakes: tuple[FakeElement, FakeNavixy]) -> None:
    """Without pings ELEMENT closes a socket after 60 s, and the Navixy fake closes one that
    sent nothing for 3 heartbeats: ten quiet minutes must cost no reconnect."""
    element, navixy = fakes
    path = config_file(tmp_path, element.url, navixy.url, [21080], WARM)
    async with daemon(path):
        await trio.sleep(10 * 60)
        assert element.handshakes == 1 and len(element.connections) == 1
        assert navixy.handshakes == 1 and len(navixy.connections) == 1


async def test_a_client_without_pings_is_closed_by_the_fake(
        autojump_clock: trio.abc.Clock, fakes: tuple[FakeElement, FakeNavixy]) -> None:
    """The other side of the keep-alive test: the fake does enforce the 60 s rule."""
    element, _ = fakes
    async with trio_websocket.open_websocket_url(
            f"{element.url}/readings/socket?auth={API_KEY}") as ws:
        with trio.fail_after(120):
            with pytest.raises(trio_websocket.ConnectionClosed):
                await ws.get_message()


async def test_restart_does_not_evaluate_the_replay_boundary_twice(
        tmp_path: Path, autojump_clock: trio.abc.Clock,
        fakes: tuple[FakeElement, FakeNavixy]) -> None:
    """after= is inclusive: the last item evaluated before a restart comes again. Counted
    twice, one null would look like two and fire `nulls: 2`."""
    element, navixy = fakes
    path = config_file(tmp_path, element.url, navixy.url, [21080], """\
        - name: gap
          source: cold
          missing: {field: humidity, nulls: 2}
        """)
    async with daemon(path) as d:
        await d.wait_for(lambda: element.connections != [])
        element.add_reading("room1", {"temperature": 5, "humidity": 40})
        element.add_reading("room1", {"temperature": 5})  # one null
        await trio.sleep(5)
    async with daemon(path) as again:
        await again.wait_for(lambda: element.connections != [])
        await trio.sleep(5)
        assert any("after=" in c for c in element.connections_log[-1:])
        assert again.runtime.stats.message_count["cold"] == 0  # the replayed item: skipped
    assert d.lines() == [] and again.lines() == []


async def test_navixy_reconnect_does_not_count_the_resent_window_again(
        tmp_path: Path, autojump_clock: trio.abc.Clock,
        fakes: tuple[FakeElement, FakeNavixy]) -> None:
    """After a reconnect Navixy resends its whole window: two nulls must stay two."""
    element, navixy = fakes
    path = config_file(tmp_path, element.url, navixy.url, [21080], """\
        - name: fuel-gap
          source: fleet
          missing: {field: lls_level_1, nulls: 3}
        """)
    async with daemon(path) as d:
        await d.wait_for(lambda: bool(navixy.connections))
        navixy.add_message(21080, {"lls_level_1": "262.9"})
        await trio.sleep(2)
        for _ in range(2):
            navixy.add_message(21080, {"lls_level_1": None})
            await trio.sleep(2)
        navixy.drop_all()
        await d.wait_for(lambda: navixy.handshakes >= 2 and bool(navixy.connections))
        await trio.sleep(10)
        assert d.lines() == []
        navixy.add_message(21080, {"lls_level_1": None})  # the real third null
        await d.wait_for(lambda: bool(d.lines("[FIRING] fuel-gap")))


async def test_silences_hold_notices_and_release_only_what_still_fires(
        tmp_path: Path, autojump_clock: trio.abc.Clock,
        fakes: tuple[FakeElement, FakeNavixy]) -> None:
    """A planned silence for 10 minutes: `warm` fires and resolves quietly (resolved: false)
    under it, `cold` fires and stays: when the silence ends only `cold` is notified."""
    element, navixy = fakes
    ends = datetime.fromtimestamp(Clock().now() + 600, timezone.utc)
    path = config_file(tmp_path, element.url, navixy.url, [21080], """\
        - name: warm
          source: cold
          threshold: {field: temperature, above: 8}
          resolved: false
        - name: cold
          source: cold
          threshold: {field: humidity, below: 20}
        """)
    path.write_text(path.read_text() + textwrap.dedent(f"""\
        silences:
          - {{match: {{source: cold}}, ends: "{ends:%Y-%m-%dT%H:%M:%SZ}", comment: works}}
        """))
    async with daemon(path) as d:
        await d.wait_for(lambda: element.connections != [])
        element.add_reading("room1", {"temperature": 9, "humidity": 15})
        await trio.sleep(60)
        element.add_reading("room1", {"temperature": 5, "humidity": 15})
        await trio.sleep(60)
        assert d.lines() == []
        await d.wait_for(lambda: bool(d.lines()))
        await trio.sleep(60)
        assert [line.split(" ", 1)[1] for line in d.lines()] == ["[FIRING] cold: room1"]


async def test_quiet_hours_hold_a_channel_then_send_one_digest(
        tmp_path: Path, autojump_clock: trio.abc.Clock,
        fakes: tuple[FakeElement, FakeNavixy]) -> None:
    """A console channel muted from an hour ago until 10-11 minutes from now: two alerts
    fire and one resolves in the quiet; at the window's end one digest lists the other."""
    element, navixy = fakes
    now = datetime.fromtimestamp(Clock().now(), timezone.utc)
    start = (now - timedelta(hours=1)).strftime("%H:%M")
    end = (now + timedelta(minutes=11)).strftime("%H:%M")
    path = config_file(tmp_path, element.url, navixy.url, [21080], """\
        - name: warm
          source: cold
          threshold: {field: temperature, above: 8}
        - name: dry
          source: cold
          threshold: {field: humidity, below: 20}
        """)
    path.write_text(path.read_text().replace(
        "  out: console://", f'  out: {{urls: [console://], mute: ["{start}-{end}"]}}'))
    async with daemon(path) as d:
        await d.wait_for(lambda: element.connections != [])
        element.add_reading("room1", {"temperature": 9, "humidity": 15})
        await trio.sleep(60)
        element.add_reading("room1", {"temperature": 5, "humidity": 15})
        await trio.sleep(5 * 60)
        assert d.out.getvalue() == ""
        await d.wait_for(lambda: d.out.getvalue() != "")
        await trio.sleep(60)
    stamp, _, title = d.out.getvalue().splitlines()[0].partition(" ")
    assert title == "[DIGEST] 1 alert still firing after quiet hours"
    assert stamp[11:16] == end
    assert "  FIRING: room1 (cold/room1), humidity 15" in d.out.getvalue()
    assert "1 more alert fired and resolved during quiet hours." in d.out.getvalue()


async def test_replay_positions_are_written_within_a_second_and_at_stop(
        tmp_path: Path, autojump_clock: trio.abc.Clock,
        fakes: tuple[FakeElement, FakeNavixy]) -> None:
    """Readings that change no alert move the ELEMENT replay position without a transaction
    per frame: it reaches the state file within a second, and a stop writes the last one."""
    element, navixy = fakes
    path = config_file(tmp_path, element.url, navixy.url, [21080], WARM)

    def saved() -> str | None:
        store = Store.open(tmp_path / "state.db")
        try:
            return store.load_cursor("cold", "devices/room1/readings")
        finally:
            store.close()

    async with daemon(path) as d:
        await d.wait_for(lambda: element.connections != [])
        first = element.add_reading("room1", {"temperature": 5})
        await trio.sleep(1.5)
        assert first["inserted_at"] in (saved() or "")
        await trio.sleep(10)
        last = element.add_reading("room1", {"temperature": 6})
        await d.wait_for(lambda: d.runtime.stats.message_count["cold"] == 2)
        await trio.sleep(0.1)
        assert last["inserted_at"] not in (saved() or "")  # evaluated, not yet written ...
    assert last["inserted_at"] in (saved() or "")  # ... and written by the stop
    assert d.lines() == []
