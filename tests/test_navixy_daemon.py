"""Navixy against the daemon: restarts that resend the window, lifecycle events, refused and
replacing subscriptions, list-shaped queues. Real loopback fake server, real state file,
trio's autojump clock."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import trio

from alertd.clock import Clock
from alertd.simulator.element import FakeElement
from alertd.simulator.navixy import FakeNavixy
from tests.test_daemon import API_KEY, HASH, config_file, daemon

GAP = """\
- name: fuel-gap
  source: fleet
  missing: {field: lls_level_1, nulls: 2}
"""
BLOCKED = """\
- name: blocked
  source: fleet
  status: {in: [blocked]}
  group_wait: 0s
"""


async def start(nursery: trio.Nursery, **options: object) -> tuple[FakeElement, FakeNavixy]:
    clock = Clock()
    element = FakeElement(api_keys={API_KEY}, clock=clock.now)
    navixy = FakeNavixy(hashes={HASH}, trackers={21080: "normal", 21081: "normal"},
                        heartbeat_ms=25000, clock=clock.now, **options)  # type: ignore[arg-type]
    await nursery.start(element.serve)
    await nursery.start(navixy.serve)
    return element, navixy


async def test_a_restart_does_not_notify_again_what_the_resent_window_holds(
        tmp_path: Path, autojump_clock: trio.abc.Clock, nursery: trio.Nursery) -> None:
    element, navixy = await start(nursery)
    path = config_file(tmp_path, element.url, navixy.url, [21080, 21081], GAP)
    async with daemon(path) as first:
        navixy.add_message(21080, {"lls_level_1": "262.9"})
        navixy.add_message(21081, {"lls_level_1": "100.0"})
        await trio.sleep(2)
        for _ in range(2):
            navixy.add_message(21080, {"lls_level_1": None})
            navixy.add_message(21081, {"lls_level_1": None})
            await trio.sleep(2)
        await first.wait_for(lambda: len(first.lines("[FIRING] fuel-gap")) == 2)
        navixy.add_message(21080, {"lls_level_1": "250.0"})  # 21080's gap ends; 21081's goes on
        await first.wait_for(lambda: bool(first.lines("[RESOLVED] fuel-gap: 21080")))
        await trio.sleep(2)  # the queue positions are written within a second
    assert len(first.lines()) == 3

    async with daemon(path) as second:  # the server resends both windows on subscribe
        await second.wait_for(lambda: len(navixy.subscribe_actions) >= 2)
        await trio.sleep(3)
        navixy.add_message(21081, {"lls_level_1": None})  # still in the gap: nothing to say
        await trio.sleep(2)
        navixy.add_message(21081, {"lls_level_1": "99.0"})  # the gap ends: resolved, once
        await second.wait_for(lambda: bool(second.lines("[RESOLVED] fuel-gap: 21081")))
        for _ in range(2):  # and a new gap of 21080 is a new incident
            navixy.add_message(21080, {"lls_level_1": None})
            await trio.sleep(2)
        await second.wait_for(lambda: bool(second.lines("[FIRING] fuel-gap: 21080")))
        await trio.sleep(5)
    assert [line.split(" ", 1)[1] for line in second.lines()] == [
        "[RESOLVED] fuel-gap: 21081", "[FIRING] fuel-gap: 21080"]


async def test_a_blocked_tracker_fires_within_seconds_and_resolves_on_unblocking(
        tmp_path: Path, autojump_clock: trio.abc.Clock, nursery: trio.Nursery) -> None:
    element, navixy = await start(nursery)
    path = config_file(tmp_path, element.url, navixy.url, [21080], BLOCKED)
    async with daemon(path) as d:  # status_refresh stays at its default, 5 minutes
        navixy.add_message(21080, {"speed": 40})
        await d.wait_for(lambda: len(navixy.subscribe_actions) >= 1)
        await trio.sleep(10)
        blocked_at = trio.current_time()
        navixy.block(21080, source_id=555123)  # the event names a source id, not 21080
        await d.wait_for(lambda: bool(d.lines("[FIRING] blocked: 21080")))
        assert trio.current_time() - blocked_at <= 3
        await trio.sleep(30)
        unblocked_at = trio.current_time()
        navixy.unblock(21080, source_id=555123)
        await d.wait_for(lambda: bool(d.lines("[RESOLVED] blocked: 21080")))
        assert trio.current_time() - unblocked_at <= 3


async def test_fresh_data_proves_a_tracker_is_not_blocked(
        tmp_path: Path, autojump_clock: trio.abc.Clock, nursery: trio.Nursery) -> None:
    element, navixy = await start(nursery)
    path = config_file(tmp_path, element.url, navixy.url, [21080], BLOCKED)
    navixy.trackers[21080] = "blocked"
    navixy.add_message(21080, {"speed": 40})
    async with daemon(path) as d:
        await d.wait_for(lambda: bool(d.lines("[FIRING] blocked: 21080")))
        navixy.trackers[21080] = "normal"  # no lifecycle event, no refresh for 5 minutes:
        navixy.add_message(21080, {"speed": 41})  # the data alone says it is back
        started = trio.current_time()
        await d.wait_for(lambda: bool(d.lines("[RESOLVED] blocked: 21080")))
        assert trio.current_time() - started <= 3


@pytest.mark.parametrize("replace", [False, True])
async def test_every_tracker_is_subscribed_whether_actions_add_up_or_replace(
        tmp_path: Path, autojump_clock: trio.abc.Clock, nursery: trio.Nursery,
        replace: bool) -> None:
    element, navixy = await start(nursery, replace_subscriptions=replace)
    trackers = list(range(30001, 30024))
    navixy.trackers.update({t: "normal" for t in trackers})
    path = config_file(tmp_path, element.url, navixy.url, trackers, """\
        - name: fast
          source: fleet
          threshold: {field: speed, above: 100}
        """)
    async with daemon(path) as d:
        await d.wait_for(lambda: navixy.subscribed() == set(trackers))
        await trio.sleep(400)  # past a status refresh, which must not narrow it either
        assert navixy.subscribed() == set(trackers)
        for tracker in (30001, 30015, 30023):  # one of each request
            navixy.add_message(tracker, {"speed": 120})
            await d.wait_for(lambda t=tracker: bool(d.lines(f"[FIRING] fast: {t}")))


async def test_a_refused_subscription_names_the_trackers_and_is_retried_with_backoff(
        tmp_path: Path, autojump_clock: trio.abc.Clock, nursery: trio.Nursery,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    element, navixy = await start(nursery)
    navixy.refuse_next = 3
    navixy.add_message(21080, {"speed": 120})
    path = config_file(tmp_path, element.url, navixy.url, [21080, 21081], """\
        - name: fleet-down
          source: fleet
          source_down: {after: 1s}
        - name: fast
          source: fleet
          threshold: {field: speed, above: 100}
        """)
    async with daemon(path) as d:
        await d.wait_for(lambda: bool(d.lines("[FIRING] fleet-down")))  # not healthy
        await d.wait_for(lambda: bool(d.lines("[FIRING] fast: 21080")))
        assert d.lines("[RESOLVED] fleet-down")
    refused = [r.getMessage() for r in caplog.records if "subscription refused" in r.getMessage()]
    assert len(refused) == 3
    assert all("21080, 21081" in line for line in refused)
    assert [line.rsplit("retrying in ", 1)[1] for line in refused] == ["5 s", "10 s", "20 s"]
    assert len(navixy.subscribe_actions) == 4  # no retry storm


async def test_list_shaped_queues_are_read(
        tmp_path: Path, autojump_clock: trio.abc.Clock, nursery: trio.Nursery) -> None:
    element, navixy = await start(nursery, list_queues=True)
    path = config_file(tmp_path, element.url, navixy.url, [21080], GAP + """\
- name: fast
  source: fleet
  threshold: {field: speed, above: 100}
""")
    async with daemon(path) as d:
        navixy.add_message(21080, {"speed": 120, "lls_level_1": None})
        await d.wait_for(lambda: bool(d.lines("[FIRING] fast: 21080")))
        navixy.add_message(21080, {"speed": 90, "lls_level_1": None})
        await d.wait_for(lambda: bool(d.lines("[FIRING] fuel-gap: 21080")))
        await d.wait_for(lambda: bool(d.lines("[RESOLVED] fast: 21080")))


async def test_a_group_permission_key_on_a_mandate_socket_is_told_apart(
        tmp_path: Path, autojump_clock: trio.abc.Clock, nursery: trio.Nursery,
        caplog: pytest.LogCaptureFixture) -> None:
    element, navixy = await start(nursery)
    element.api_keys.clear()
    element.group_keys.add(API_KEY)  # good for devices/..., refused on the mandate socket
    path = config_file(tmp_path, element.url, navixy.url, [21080], """\
        - name: warm
          source: cold
          threshold: {field: temperature, above: 8}
        """)
    text = path.read_text().replace("subscribe: [devices/room1/readings]",
                                    "subscribe: [devices/room1/readings, readings]")
    path.write_text(text)
    caplog.set_level(logging.INFO)
    async with daemon(path) as d:
        await d.wait_for(lambda: element.handshakes >= 2)
        await trio.sleep(3)
        element.add_reading("room1", {"temperature": 9})
        await d.wait_for(lambda: bool(d.lines("[FIRING] warm: room1")))  # the device socket
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    mandate = [e for e in errors if "socket readings" in e]
    assert len(mandate) == 1, errors
    assert "mandate-wide socket 'readings'" in mandate[0] and "read_only or admin" in mandate[0]
    assert not [e for e in errors if "devices/room1/readings" in e]


async def test_a_replay_split_in_frames_cannot_fire_what_a_late_inserted_reading_breaks(
        tmp_path: Path, autojump_clock: trio.abc.Clock, nursery: trio.Nursery) -> None:
    clock = Clock()
    element = FakeElement(api_keys={API_KEY}, clock=clock.now, replay_batch=1)
    navixy = FakeNavixy(hashes={HASH}, trackers={21080: "normal"}, clock=clock.now)
    await nursery.start(element.serve)
    await nursery.start(navixy.serve)
    path = config_file(tmp_path, element.url, navixy.url, [21080], """\
        - name: warm
          source: cold
          threshold: {field: temperature, above: 8}
          for: 10m
          group_wait: 0s
        """)
    async with daemon(path) as d:
        await d.wait_for(lambda: element.connections != [])
        start = clock.now()
        element.add_reading("room1", {"temperature": 5}, start)
        await trio.sleep(5)
        element.pause()
        element.drop_all()  # cut off: ELEMENT stores what comes meanwhile, in insertion order
        await d.wait_for(lambda: not d.runtime.stats.open_sockets.get("cold"))
        element.add_reading("room1", {"temperature": 9}, start + 60)
        element.add_reading("room1", {"temperature": 9}, start + 720)
        # measured at 5 minutes, inserted last (a gateway's buffer): the spell was broken
        element.add_reading("room1", {"temperature": 6}, start + 300)
        await trio.sleep(800 - (clock.now() - start))
        element.resume()  # the replay: one frame per reading, in insertion order
        await d.wait_for(lambda: len(element.connections_log) >= 2)
        await trio.sleep(60)
        assert d.lines() == []  # the 12-minute reading alone would have fired at once
        await d.wait_for(lambda: bool(d.lines("[FIRING] warm: room1")))
        fired = clock.now() - start
    assert fired >= 720 + 600 - 5  # for counted from the 12-minute reading (on its clock)
