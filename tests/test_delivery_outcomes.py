"""What the daemon does with each kind of delivery outcome, against real local receivers:
a stuck receiver is ended for real and never holds up another URL, Retry-After is honoured
for the URL, a permanent refusal is given up at once, and apprise's notify type follows the
notice. In-process ``app.run`` (real clock: apprise runs in child processes and real
sockets), an ELEMENT fake as the source.
"""

from __future__ import annotations

import io
import logging
import os
import textwrap
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import trio

from alertd import app
from alertd.config import load_config
from alertd.simulator.element import FakeElement
from alertd.store import Store
from tests.hooks import Answer, Trickle, Webhook


def child_pids(parent: int) -> set[int]:
    """Live (not zombie) processes whose parent is ``parent``."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == parent and fields[0] != "Z":
            found.add(int(entry))
    return found


async def run_daemon(tmp_path: Path, channels: str, rules: str,
                     scenario: Callable[[FakeElement, app.Runtime], Awaitable[None]],
                     send_timeout: float = 30.0, retry_first: float = 0.2) -> app.Runtime:
    element = FakeElement(api_keys={"k"})
    async with trio.open_nursery() as nursery:
        await nursery.start(element.serve)
        path = tmp_path / "rules.yaml"
        path.write_text(textwrap.dedent(f"""\
            sources: {{cold: {{type: element, url: "{element.url}", api_key: k,
                             subscribe: [readings]}}}}
            channels:
            """) + textwrap.indent(textwrap.dedent(channels), "  ")
            + "rules:\n" + textwrap.indent(textwrap.dedent(rules), "  "))
        config = load_config(path, {})
        store = Store.open(config.state)
        runtime: app.Runtime = await nursery.start(
            lambda task_status: app.run(config, store, out=io.StringIO(),
                                        send_timeout=send_timeout, task_status=task_status))
        runtime.retry_first = retry_first
        with trio.fail_after(10):
            while not element.connections:
                await trio.sleep(0.05)
        await scenario(element, runtime)
        nursery.cancel_scope.cancel()
    store.close()
    return runtime


async def wait_until(condition: Callable[[], bool], within: float, what: str) -> None:
    with trio.move_on_after(within):
        while not condition():
            await trio.sleep(0.05)
        return
    raise AssertionError(f"not within {within} s: {what}")


async def test_a_stuck_receiver_is_ended_and_never_holds_up_another_url(
        tmp_path: Path) -> None:
    """issue 11.1: a webhook answering one byte a second once held an apprise thread for
    ever; after six of them (the shared pool) no channel could deliver. Now each stuck send
    is a process, killed at its deadline: the healthy webhook keeps receiving, every stuck
    connection is closed by our side, and no process is left."""
    stuck, healthy = Trickle(every=1.0), Webhook()
    made = 0

    async def scenario(element: FakeElement, runtime: app.Runtime) -> None:
        nonlocal made
        with trio.fail_after(240):
            while stuck.accepted < 10:  # more stuck attempts than apprise's 6 threads
                made += 1
                element.add_reading(f"room{made}", {"t": 9})
                # each notice reaches the healthy URL, stuck attempts or not (a URL held
                # up would never get it; 30 s leaves room for a loaded machine's spawns)
                await wait_until(lambda: len(healthy.posts) >= made, 30,
                                 f"notice {made} at the healthy webhook "
                                 f"({stuck.accepted} stuck attempts so far)")
        # every stuck attempt but the one in flight was ended from our side
        await wait_until(lambda: stuck.ended_by_client >= stuck.accepted - 1, 10,
                         "the stuck connections closed by alertd")

    try:
        await run_daemon(tmp_path, f"""\
            slow: json://127.0.0.1:{stuck.port}/x
            ok: {healthy.url()}
            """, """\
            - {name: warm, threshold: {field: t, above: 8}, notify: [slow, ok], group_wait: 0s}
            """, scenario, send_timeout=3.0, retry_first=0.1)  # a loaded machine
            # takes most of a second to start a sending process that imports apprise
        assert child_pids(os.getpid()) == set(), "a sending process was left behind"
    finally:
        stuck.close()
        healthy.close()
    assert sorted(healthy.titles()) == sorted(f"[FIRING] warm: room{n}"
                                              for n in range(1, made + 1))


async def test_retry_after_holds_the_url_as_long_as_the_receiver_asked(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """issue 11.8: a 429 with Retry-After: 3 was retried after the backoff's first step
    (here 0.2 s) and the next message went out at once. Now nothing goes to that URL for
    3 s after the 429."""
    caplog.set_level(logging.INFO)
    hook = Webhook(lambda n: Answer(429, headers={"Retry-After": "3"}) if n == 1 else Answer())

    async def scenario(element: FakeElement, runtime: app.Runtime) -> None:
        element.add_reading("room1", {"t": 9})
        await wait_until(lambda: len(hook.posts) >= 1, 10, "the first post")
        element.add_reading("room2", {"t": 9})  # a second message for the same URL
        await wait_until(lambda: len(hook.posts) >= 3 and runtime.delivered >= 2, 20,
                         "both messages delivered")

    try:
        await run_daemon(tmp_path, f"hook: {hook.url()}\n", """\
            - {name: warm, threshold: {field: t, above: 8}, notify: [hook], group_wait: 0s}
            """, scenario, retry_first=0.2)
    finally:
        hook.close()
    first, *rest = hook.posts
    assert first.body["title"] == "[FIRING] warm: room1"
    assert sorted(post.body["title"] for post in rest) == ["[FIRING] warm: room1",
                                                           "[FIRING] warm: room2"]
    assert all(post.at - first.at >= 3.0 for post in rest), [p.at - first.at for p in rest]
    (line,) = [r.getMessage() for r in caplog.records if "delivery failed" in r.getMessage()]
    assert "HTTP 429 Too Many Requests" in line and "as the receiver asked" in line, line


@pytest.mark.parametrize("status", [404, 401])
async def test_a_permanent_refusal_is_given_up_at_once_with_its_reason(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, status: int) -> None:
    """issue 11.8: a 404 was retried with backoff for an hour. Now: one attempt, one error
    line that says why, counted as failed, and the outbox row is gone."""
    caplog.set_level(logging.INFO)
    hook = Webhook(lambda n: Answer(status))
    outbox: list[object] = []

    async def scenario(element: FakeElement, runtime: app.Runtime) -> None:
        element.add_reading("room1", {"t": 9})
        await wait_until(lambda: runtime.failed >= 1, 10, "the delivery given up")
        outbox.extend(runtime.store.pending("hook"))

    try:
        runtime = await run_daemon(tmp_path, f"hook: {hook.url()}\n", """\
            - {name: warm, threshold: {field: t, above: 8}, notify: [hook], group_wait: 0s}
            """, scenario, retry_first=0.1)
    finally:
        hook.close()
    assert len(hook.posts) == 1 and runtime.failed == 1 and runtime.delivered == 0
    assert outbox == []  # nothing left to retry
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert f"HTTP {status}" in errors[0] and "gave up" in errors[0], errors
    assert not [r for r in caplog.records if "retrying in" in r.getMessage()]


async def test_apprise_is_told_failure_for_a_critical_firing_and_success_for_its_resolved(
        tmp_path: Path) -> None:
    """issue 12.11: apprise was always told "info"."""
    hook = Webhook()

    async def scenario(element: FakeElement, runtime: app.Runtime) -> None:
        element.add_reading("room1", {"t": 9})
        await wait_until(lambda: len(hook.posts) >= 1, 10, "the firing notice")
        element.add_reading("room1", {"t": 1})
        element.add_reading("room2", {"t": 9})  # a warning one, for the other mapping
        await wait_until(lambda: len(hook.posts) >= 3, 10, "the resolved notice")

    try:
        await run_daemon(tmp_path, f"hook: {hook.url()}\n", """\
            - {name: hot, threshold: {field: t, above: 8}, entities: [room1], notify: [hook],
               group_wait: 0s, severity: critical}
            - {name: warm, threshold: {field: t, above: 8}, entities: [room2], notify: [hook],
               group_wait: 0s, severity: warning}
            """, scenario)
    finally:
        hook.close()
    got = {post.body["title"]: post.body["type"] for post in hook.posts}
    assert got == {"[FIRING] hot: room1": "failure", "[RESOLVED] hot: room1": "success",
                   "[FIRING] warm: room2": "warning"}
