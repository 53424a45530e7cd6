"""A delivery that keeps failing is given up an hour after it was due, in the daemon itself:
real apprise child processes posting to a local webhook that answers 500, and the daemon's
clock moved an hour ahead between two attempts (it is the one clock every part of the daemon
reads), so the hour passes in a second. What is checked is what an operator sees: the retry
warnings, one error line, the give-up counter, the outbox and /metrics."""

from __future__ import annotations

import io
import logging
import textwrap
from collections.abc import Callable
from pathlib import Path
from urllib.request import urlopen

import pytest
import trio

from alertd import app
from alertd.config import load_config
from alertd.notify.schedule import GIVE_UP_AFTER
from alertd.simulator.element import FakeElement
from alertd.store import Store
from tests.hooks import Answer, Webhook


async def wait_until(condition: object, within: float, what: str) -> None:
    assert callable(condition)
    with trio.move_on_after(within):
        while not condition():
            await trio.sleep(0.05)
        return
    raise AssertionError(f"not within {within} s: {what}")


def recorded(store: Store) -> int:
    """The failed attempts written for the one delivery queued."""
    (delivery,) = store.pending("hook")
    return delivery.attempts


async def metrics(port: int) -> str:
    def get() -> str:
        with urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
            return str(reply.read().decode())
    return await trio.to_thread.run_sync(get)


async def metrics_once(port: int, wanted: Callable[[list[str]], bool], what: str) -> list[str]:
    """/metrics lines once they show ``wanted`` (the endpoint renders at most once a
    second, so a change shows within about a second), within 10 s."""
    lines: list[str] = []
    with trio.move_on_after(10):
        while True:
            lines = (await metrics(port)).splitlines()
            if wanted(lines):
                return lines
            await trio.sleep(0.2)
    raise AssertionError(f"/metrics did not show {what} within 10 s:\n" + "\n".join(lines))


async def test_a_delivery_failing_for_an_hour_is_given_up_logged_and_counted(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    hook = Webhook(lambda n: Answer(500))
    element = FakeElement(api_keys={"k"})
    path = tmp_path / "rules.yaml"
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(element.serve)
            path.write_text(textwrap.dedent(f"""\
                http: 127.0.0.1:0
                sources: {{cold: {{type: element, url: "{element.url}", api_key: k,
                                 subscribe: [readings]}}}}
                channels: {{hook: "{hook.url()}"}}
                rules:
                  - {{name: warm, threshold: {{field: t, above: 8}}, notify: [hook],
                     group_wait: 0s}}
                """))
            config = load_config(path, {})
            store = Store.open(config.state)
            runtime: app.Runtime = await nursery.start(
                lambda task_status: app.run(config, store, out=io.StringIO(),
                                            task_status=task_status))
            runtime.retry_first = 0.2
            assert runtime.http_port is not None
            await wait_until(lambda: element.connections != [], 10, "connected")
            element.add_reading("room1", {"t": 9})
            await wait_until(lambda: len(hook.posts) >= 2, 30, "a first retry")
            held = 'alertd_deliveries_queued{channel="hook"} 1'
            await metrics_once(runtime.http_port, lambda lines: held in lines, held)
            assert runtime.failed == 0
            # the hour passes while every attempt the hook got has its verdict written: one
            # judged before the jump but written after it would be retried once more (a
            # race that a loaded machine lost once)
            await wait_until(lambda: recorded(store) == len(hook.posts), 30, "retry written")
            attempts = len(hook.posts)
            runtime.clock._offset += GIVE_UP_AFTER  # an hour passes on the daemon's clock
            await wait_until(lambda: runtime.failed == 1, 30, "the delivery given up")
            assert store.pending("hook") == []  # nothing left to retry
            failed = 'alertd_deliveries_total{result="failed"} 1'
            text = "\n".join(await metrics_once(runtime.http_port,
                                                lambda lines: failed in lines, failed))
            nursery.cancel_scope.cancel()
        store.close()
    finally:
        hook.close()
    assert len(hook.posts) == attempts + 1  # one more attempt, past the hour: the last
    assert runtime.delivered == 0
    lines = text.splitlines()
    assert 'alertd_deliveries_total{result="failed"} 1' in lines
    assert 'alertd_deliveries_total{result="sent"} 0' in lines
    assert 'alertd_deliveries_queued{channel="hook"} 1' not in lines
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
                and "delivery failed" in r.getMessage()]
    assert len(warnings) == attempts and all("HTTP 500" in w for w in warnings), warnings
    (error,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert error.startswith(f"channel 'hook': gave up delivering '[FIRING] warm: room1' "
                            f"(json://) after {attempts + 1} attempts: HTTP 500 "), error
