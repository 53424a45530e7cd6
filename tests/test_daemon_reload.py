"""What a reload (SIGHUP) and a start do besides loading the file: notices waiting for their
group are planned again, messages queued for a URL that was removed are dropped with a
warning, old history is pruned, and the new file's channel-URL secrets are masked in the
daemon's log lines. The daemon in-process; on the autojump clock where every channel is
console://, on the real clock (with apprise child processes) where a URL is a webhook."""

from __future__ import annotations

import io
import logging
import os
import signal
import sqlite3
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import trio

from alertd import app
from alertd.clock import Clock
from alertd.config import load_config
from alertd.logs import Redact
from alertd.simulator.element import FakeElement
from alertd.simulator.navixy import FakeNavixy
from alertd.store import Store
from tests.hooks import Answer, Webhook
from tests.test_daemon import config_file, daemon
from tests.test_daemon_give_up import metrics_once, wait_until

DAY = 86400.0


def messages(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


async def test_a_notice_waiting_for_its_group_is_planned_again_after_a_reload(
        tmp_path: Path, autojump_clock: trio.abc.Clock, fakes: tuple[FakeElement, FakeNavixy],
        caplog: pytest.LogCaptureFixture) -> None:
    element, navixy = fakes
    path = config_file(tmp_path, element.url, navixy.url, [21080], """\
        - name: warm
          source: cold
          threshold: {field: temperature, above: 8}
          group_wait: 5m
        """)
    caplog.set_level(logging.INFO)
    async with daemon(path) as d:
        await d.wait_for(lambda: element.connections != [])
        element.add_reading("room1", {"temperature": 9})
        await d.wait_for(lambda: messages(caplog, "warm cold/room1 firing") != [])
        fired = trio.current_time()
        await trio.sleep(60)  # waiting for its group (5 minutes) when the reload comes
        assert d.out.getvalue() == ""
        path.write_text(path.read_text().replace("group_wait: 5m", "group_wait: 5m\n"
                                                 "  - {name: other, source: cold, "
                                                 "threshold: {field: humidity, above: 90}}"))
        os.kill(os.getpid(), signal.SIGHUP)
        await d.wait_for(lambda: messages(caplog, "loaded") != [])
        await d.wait_for(lambda: bool(d.lines("[FIRING] warm")))
        printed = trio.current_time()
    assert [line.split(" ", 1)[1] for line in d.lines()] == ["[FIRING] warm: room1"]
    assert 5 * 60 - 1 <= printed - fired <= 5 * 60 + 5  # its group's time, not lost or reset


async def test_a_notice_held_by_quiet_hours_is_planned_again_after_a_reload(
        tmp_path: Path, autojump_clock: trio.abc.Clock, fakes: tuple[FakeElement, FakeNavixy],
        caplog: pytest.LogCaptureFixture) -> None:
    element, navixy = fakes
    now = datetime.fromtimestamp(Clock().now(), timezone.utc)
    start = (now - timedelta(hours=1)).strftime("%H:%M")
    end = (now + timedelta(minutes=11)).strftime("%H:%M")
    path = config_file(tmp_path, element.url, navixy.url, [21080], """\
        - name: dry
          source: cold
          threshold: {field: humidity, below: 20}
        """)
    path.write_text(path.read_text().replace(
        "  out: console://", f'  out: {{urls: [console://], mute: ["{start}-{end}"]}}'))
    caplog.set_level(logging.INFO)
    async with daemon(path) as d:
        await d.wait_for(lambda: element.connections != [])
        element.add_reading("room1", {"humidity": 15})
        await d.wait_for(lambda: messages(caplog, "dry cold/room1 firing") != [])
        await trio.sleep(60)
        path.write_text(path.read_text() + "  - {name: other, source: cold, "
                                           "threshold: {field: t, above: 90}}\n")
        os.kill(os.getpid(), signal.SIGHUP)
        await d.wait_for(lambda: messages(caplog, "loaded") != [])
        assert d.out.getvalue() == ""  # still quiet hours
        await d.wait_for(lambda: d.out.getvalue() != "")
    stamp, _, title = d.out.getvalue().splitlines()[0].partition(" ")
    assert title == "[DIGEST] 1 alert still firing after quiet hours"
    assert stamp[11:16] == end
    assert "  FIRING: room1 (cold/room1), humidity 15" in d.out.getvalue()


async def test_old_history_is_pruned_at_start_and_at_each_reload(
        tmp_path: Path, autojump_clock: trio.abc.Clock, fakes: tuple[FakeElement, FakeNavixy],
        caplog: pytest.LogCaptureFixture) -> None:
    element, navixy = fakes
    path = config_file(tmp_path, element.url, navixy.url, [21080], """\
        - name: warm
          source: cold
          threshold: {field: temperature, above: 8}
        """)
    state = tmp_path / "state.db"

    def history() -> list[float]:
        with sqlite3.connect(state) as db:
            return [row[0] for row in db.execute("SELECT at FROM history ORDER BY at")]

    def age_history(days: float) -> None:  # as if written that long ago
        with sqlite3.connect(state) as db:
            db.execute("UPDATE history SET at = at - ?", (days * DAY,))

    caplog.set_level(logging.INFO)
    async with daemon(path) as d:
        await d.wait_for(lambda: element.connections != [])
        element.add_reading("room1", {"temperature": 9})
        await d.wait_for(lambda: len(history()) == 1)
    age_history(91)
    async with daemon(path) as d:  # a start
        await d.wait_for(lambda: messages(caplog, "forgot") != [])
        assert messages(caplog, "forgot") == ["forgot 1 notification older than 90 days"]
        assert history() == []
        element.add_reading("room1", {"temperature": 5})
        element.add_reading("room1", {"temperature": 9})
        await d.wait_for(lambda: len(history()) == 2)  # resolved, fired again
        age_history(89)
        element.add_reading("room1", {"temperature": 5})
        await d.wait_for(lambda: len(history()) == 3)
        age_history(2)  # now 91, 91 and 2 days old
        os.kill(os.getpid(), signal.SIGHUP)  # a reload
        await d.wait_for(lambda: len(messages(caplog, "forgot")) == 2)
        assert messages(caplog, "forgot")[1] == "forgot 2 notifications older than 90 days"
        assert len(history()) == 1


async def test_messages_queued_for_a_removed_url_are_dropped_with_a_warning_at_reload(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    failing, other = Webhook(lambda n: Answer(500)), Webhook()
    element = FakeElement(api_keys={"k"})
    path = tmp_path / "rules.yaml"
    text = textwrap.dedent("""\
        http: 127.0.0.1:0
        sources: {cold: {type: element, url: "ELEMENT", api_key: k, subscribe: [readings]}}
        channels: {hook: "URL"}
        rules:
          - {name: warm, threshold: {field: t, above: 8}, notify: [hook], group_wait: 0s}
        """)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(element.serve)
            text = text.replace("ELEMENT", element.url)
            path.write_text(text.replace("URL", failing.url()))
            config = load_config(path, {})
            store = Store.open(config.state)
            runtime: app.Runtime = await nursery.start(
                lambda task_status: app.run(config, store, config_path=str(path),
                                            out=io.StringIO(), task_status=task_status))
            runtime.retry_first = 600.0  # held: the message stays queued
            assert runtime.http_port is not None
            await wait_until(lambda: element.connections != [], 10, "connected")
            element.add_reading("room1", {"t": 9})
            await wait_until(lambda: messages(caplog, "delivery failed") != [], 30, "a failure")
            queued = 'alertd_deliveries_queued{channel="hook"} 1'
            await metrics_once(runtime.http_port, lambda lines: queued in lines, queued)
            path.write_text(text.replace("URL", other.url()))  # the same channel, a new URL
            os.kill(os.getpid(), signal.SIGHUP)
            await wait_until(lambda: messages(caplog, "dropped") != [], 30, "the drop")
            assert store.pending("hook") == []
            after = await metrics_once(runtime.http_port, lambda lines: queued not in lines,
                                       "the queued message gone")
            nursery.cancel_scope.cancel()
        store.close()
    finally:
        failing.close()
        other.close()
    assert messages(caplog, "dropped") == [
        "dropped 1 queued delivery for channels or URLs no longer configured"]
    assert [r.levelno for r in caplog.records if "dropped" in r.getMessage()] == [
        logging.WARNING]
    assert 'alertd_deliveries_queued{channel="hook"} 1' not in after
    assert len(failing.posts) == 1 and other.posts == []  # not sent to the new URL either


async def test_channel_url_secrets_of_the_file_and_of_each_reload_are_masked_in_the_log(
        tmp_path: Path, autojump_clock: trio.abc.Clock, fakes: tuple[FakeElement, FakeNavixy],
        caplog: pytest.LogCaptureFixture) -> None:
    """The daemon registers the secret parts of every channel URL (and, at a reload, of the
    new file's) with the log filter it was given: a line of the daemon that quotes a URL shows
    *** for them. Today no line of the daemon quotes a URL; this is what keeps a new one
    honest."""
    element, navixy = fakes
    first = "tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/12345678"
    second = "slack://T000AAAA/B000BBBB/XXXXYYYYZZZZ1234/#ops"
    path = config_file(tmp_path, element.url, navixy.url, [21080], """\
        - name: warm
          source: cold
          threshold: {field: temperature, above: 8}
          notify: [out]
        """)
    text = path.read_text()
    path.write_text(text.replace("  out: console://\n", f"  out: console://\n  pager: {first}\n"))
    redact = Redact()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(redact)
    log = logging.getLogger("alertd")
    log.addHandler(handler)
    caplog.set_level(logging.INFO)
    try:
        async with daemon(path, redact=redact):
            await trio.sleep(0.1)
            log.warning("a line that quotes %s", first)
            path.write_text(text.replace("  out: console://\n",
                                         f"  out: console://\n  pager: {second}\n"))
            os.kill(os.getpid(), signal.SIGHUP)
            await wait_until(lambda: messages(caplog, "loaded") != [], 600, "the reload")
            log.warning("a line that quotes %s", second)
    finally:
        log.removeHandler(handler)
    written = stream.getvalue()
    assert "a line that quotes tgram://***/12345678" in written, written
    assert "a line that quotes slack://***/***/***/#ops" in written, written
    for secret in ("AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw", "XXXXYYYYZZZZ1234", "B000BBBB"):
        assert secret not in written
