"""Replay positions that cannot be trusted, and a state file that keeps failing: in-process,
on trio's autojump clock (issue 11 items 4 and 10)."""

from __future__ import annotations

import io
import json
import logging
import sqlite3
from pathlib import Path

import pytest
import trio

from alertd import app
from alertd.config import load_config
from alertd.records import Position
from alertd.simulator.element import FakeElement
from alertd.simulator.navixy import FakeNavixy
from alertd.sources.element import ElementDecoder
from alertd.sources.element_client import FUTURE_CURSOR
from alertd.store import Store, StoreFailed
from tests.test_daemon import config_file, daemon

FAR = "9999-12-31T00:00:00.000000Z"


def reading(item_id: str, inserted_at: str) -> str:
    return json.dumps([{"event": "reading_added", "body": {
        "id": item_id, "device_id": "room1", "measured_at": inserted_at,
        "inserted_at": inserted_at, "data": {"t": 1}}}])


def test_a_far_future_inserted_at_is_evaluated_but_not_adopted() -> None:
    now = 1_767_225_600.0  # 2026-01-01T00:00:00Z
    decoder = ElementDecoder("cold")
    decoder.latest = lambda: now + FUTURE_CURSOR
    assert len(decoder.decode(reading("a", "2026-01-01T00:00:00Z")).events) == 1
    assert len(decoder.decode(reading("b", FAR)).events) == 1  # still a reading
    assert decoder.newest_inserted_at == "2026-01-01T00:00:00Z"
    within = "2026-01-01T00:04:00Z"  # a server clock a little ahead is fine
    decoder.decode(reading("c", within))
    assert decoder.newest_inserted_at == within
    assert json.loads(decoder.cursor or "{}")["after"] == within


def test_a_saved_future_position_is_not_used(tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    store = Store.open(tmp_path / "s.db")
    store.commit([], [Position("cold", "readings", json.dumps({"after": FAR, "ids": ["x"]})),
                      Position("cold", "packets", "2026-01-01T00:00:00Z")], [], 0.0)
    now = 1_767_225_600.0
    with caplog.at_level(logging.WARNING):
        assert app._cursor(store, "cold", "readings", now) is None
        assert app._cursor(store, "cold", "packets", now) == "2026-01-01T00:00:00Z"
    assert [r.getMessage() for r in caplog.records] == [
        f"source 'cold' socket readings: ignoring the saved replay position {FAR}: it is in "
        "the future"]


async def test_the_daemon_keeps_its_position_after_a_far_future_reading(
        tmp_path: Path, autojump_clock: trio.abc.Clock,
        fakes: tuple[FakeElement, FakeNavixy]) -> None:
    element, navixy = fakes
    path = config_file(tmp_path, element.url, navixy.url, [21080], """\
        - name: warm
          source: cold
          threshold: {field: temperature, above: 8}
        """)
    async with daemon(path) as d:
        await d.wait_for(lambda: element.connections != [])
        element.add_reading("room1", {"temperature": 9}, inserted_at=253402214400.0)
        await d.wait_for(lambda: d.lines("[FIRING] warm") != [])  # evaluated all the same
        later = element.add_reading("room1", {"temperature": 5})
        await d.wait_for(lambda: d.lines("[RESOLVED] warm") != [])
        await trio.sleep(2)
    store = Store.open(tmp_path / "state.db")
    try:
        saved = store.load_cursor("cold", "devices/room1/readings") or ""
    finally:
        store.close()
    assert json.loads(saved)["after"] == later["inserted_at"]


async def test_a_state_file_failing_for_five_minutes_stops_the_daemon(
        tmp_path: Path, autojump_clock: trio.abc.Clock,
        fakes: tuple[FakeElement, FakeNavixy], caplog: pytest.LogCaptureFixture) -> None:
    """Writes held in memory for ``STORE_PATIENCE``: then the daemon stops with the cause."""
    element, navixy = fakes
    path = config_file(tmp_path, element.url, navixy.url, [21080], """\
        - name: warm
          source: cold
          threshold: {field: temperature, above: 8}
        """)
    config = load_config(path, {})
    store = Store.open_daemon(config.state)
    blocker = sqlite3.connect(config.state, isolation_level=None)
    try:
        with pytest.raises(BaseExceptionGroup) as stopped:
            async with trio.open_nursery() as nursery:
                await nursery.start(lambda task_status: app.run(
                    config, store, out=io.StringIO(), task_status=task_status))
                while not element.connections:
                    await trio.sleep(0.05)
                blocker.execute("BEGIN IMMEDIATE")
                started = trio.current_time()
                element.add_reading("room1", {"temperature": 9})
                await trio.sleep(3600)
        failed = stopped.value.subgroup(lambda e: isinstance(e, StoreFailed))
        assert failed is not None
        assert app.STORE_PATIENCE <= trio.current_time() - started <= app.STORE_PATIENCE + 10
        text = str(failed.exceptions[0])
        while isinstance(failed, BaseExceptionGroup):
            failed, text = failed.exceptions[0], str(failed.exceptions[0])
        assert text == (f"state file {config.state}: cannot write for 5 minutes: it is "
                        "locked by another process (a long transaction elsewhere?); stopping")
        assert sum("cannot write" in r.getMessage() for r in caplog.records) == 1
    finally:
        blocker.close()
        store.close()
