"""A notification reaches a real apprise service: json:// into a local HTTP server.

Real clock here: apprise runs in a worker thread, which autojump_clock would race.
"""

from __future__ import annotations

import io
import json
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import trio

from alertd import app
from alertd.config import load_config
from alertd.model import Notification
from alertd.notify.plan import Outgoing
from alertd.records import Offer
from alertd.simulator.element import FakeElement
from alertd.simulator.navixy import FakeNavixy
from alertd.store import Store


class Hook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length", 0))
        Hook.received.append(json.loads(self.rfile.read(length)))
        self.send_response(404 if self.path.startswith("/missing") else 200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


async def test_webhook_receives_the_notification(tmp_path: Path) -> None:
    Hook.received.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    element = FakeElement(api_keys={"k"})
    navixy = FakeNavixy(hashes={"h"})
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(element.serve)
            await nursery.start(navixy.serve)
            path = tmp_path / "rules.yaml"
            path.write_text(textwrap.dedent(f"""\
                sources:
                  cold: {{type: element, url: "{element.url}", api_key: k,
                         subscribe: [readings]}}
                channels:
                  hook: json://127.0.0.1:{server.server_port}/alerts
                rules:
                  - name: warm
                    threshold: {{field: temperature, above: 8}}
                    notify: [hook]
                    title: "{{entity}} is {{value}} °C"
                """))
            config = load_config(path, {})
            store = Store.open(config.state)
            runtime = await nursery.start(
                lambda task_status: app.run(config, store, out=io.StringIO(),
                                            task_status=task_status))
            with trio.fail_after(20):
                while not element.connections:
                    await trio.sleep(0.05)
                element.add_reading("room1", {"temperature": 9.5})
                while not Hook.received or runtime.delivered < 1:  # taken, and recorded
                    await trio.sleep(0.05)
            nursery.cancel_scope.cancel()
        store.close()
    finally:
        server.shutdown()
    (message,) = Hook.received
    assert message["title"] == "cold/room1 is 9.5 °C"
    assert "warm is firing for room1 (cold/room1)" in message["message"]
    assert runtime.delivered == 1 and runtime.failed == 0


class FlakyHook(BaseHTTPRequestHandler):
    """Fails the first two posts with HTTP 500, then accepts."""

    posts: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length", 0))
        FlakyHook.posts.append(json.loads(self.rfile.read(length)))
        self.send_response(500 if len(FlakyHook.posts) <= 2 else 200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def serve(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


async def run_daemon_until(path: Path, done: Any, retry_first: float = 0.2) -> app.Runtime:
    element = FakeElement(api_keys={"k"})
    async with trio.open_nursery() as nursery:
        await nursery.start(element.serve)
        path.write_text(path.read_text().replace("ELEMENT_URL", element.url))
        config = load_config(path, {})
        store = Store.open(config.state)
        runtime: app.Runtime = await nursery.start(
            lambda task_status: app.run(config, store, out=io.StringIO(),
                                        task_status=task_status))
        runtime.retry_first = retry_first
        with trio.fail_after(20):
            while not element.connections:
                await trio.sleep(0.05)
            await done(element)
        nursery.cancel_scope.cancel()
    store.close()
    return runtime


async def test_a_failing_webhook_is_retried_until_it_takes_the_message(tmp_path: Path) -> None:
    FlakyHook.posts.clear()
    server = serve(FlakyHook)
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent(f"""\
        sources: {{cold: {{type: element, url: "ELEMENT_URL", api_key: k, subscribe: [readings]}}}}
        channels:
          hook: json://127.0.0.1:{server.server_port}/alerts
          screen: console://
        rules:
          - {{name: warm, threshold: {{field: t, above: 8}}, notify: [hook, screen]}}
        """))

    async def scenario(element: FakeElement) -> None:
        element.add_reading("room1", {"t": 9})
        outbox = Store.open(tmp_path / "alertd-state.db")
        while len(FlakyHook.posts) < 3 or outbox.pending("hook"):  # taken, and recorded so
            await trio.sleep(0.05)
        outbox.close()

    try:
        runtime = await run_daemon_until(path, scenario)
    finally:
        server.shutdown()
    assert [p["title"] for p in FlakyHook.posts] == ["[FIRING] warm: room1"] * 3
    assert runtime.delivered == 2 and runtime.failed == 0  # the hook, and the console
    store = Store.open(tmp_path / "alertd-state.db")
    assert store.pending("hook") == []  # delivered: the outbox is empty
    store.close()


async def test_a_restart_resumes_deliveries_and_notices_left_behind(tmp_path: Path) -> None:
    """A daemon stopped with a message in the outbox and a notice still in its group
    window (the inbox): the next run sends both, and its group_wait does not hold the
    old notice again."""
    Hook.received.clear()
    server = serve(Hook)
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent(f"""\
        sources: {{cold: {{type: element, url: "ELEMENT_URL", api_key: k, subscribe: [readings]}}}}
        channels: {{hook: json://127.0.0.1:{server.server_port}/alerts}}
        rules:
          - {{name: warm, threshold: {{field: t, above: 8}}, notify: [hook], group_wait: 30s}}
        """))
    store = Store.open(tmp_path / "alertd-state.db")  # what a stopped daemon left behind
    store.plan([Outgoing("hook", f"json://127.0.0.1:{server.server_port}/alerts",
                         "[FIRING] warm: room1", "left over"),
                Outgoing("gone", "json://127.0.0.1:9/x", "for a removed channel", "x")], [],
               now=0.0)
    note = Notification("warm", "cold/room2", "firing", 100.0, 90.0, "warning", "cold",
                        "room2", "t", 9.5)
    store.commit([], [], [], 100.0, [Offer("hook", note), Offer("gone", note)])  # gone: removed
    store.close()

    async def scenario(element: FakeElement) -> None:
        outbox = Store.open(tmp_path / "alertd-state.db")
        with trio.fail_after(15):  # well before group_wait would have passed again
            # taken, and recorded so (a send cancelled before that is sent again)
            while len(Hook.received) < 2 or outbox.pending("hook") or outbox.inbox():
                await trio.sleep(0.05)
        outbox.close()

    try:
        await run_daemon_until(path, scenario)
    finally:
        server.shutdown()
    got = {m["title"]: m["message"] for m in Hook.received}
    assert sorted(got) == ["[FIRING] warm: room1", "[FIRING] warm: room2"]
    assert got["[FIRING] warm: room1"] == "left over" and "t: 9.5" in got["[FIRING] warm: room2"]
    store = Store.open(tmp_path / "alertd-state.db")
    assert store.inbox() == [] and store.pending("hook") == []
    store.close()


def test_notify_command_says_whether_each_url_took_the_message(tmp_path: Path) -> None:
    import subprocess
    import sys

    Hook.received.clear()
    server = serve(Hook)
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent(f"""\
        sources: {{fleet: {{type: navixy, hash: h, trackers: [1]}}}}
        channels:
          ops: [json://127.0.0.1:{server.server_port}/alerts, console://]
          dead: json://127.0.0.1:9/nobody-listens
          gone: json://alertd:hunter2secret@127.0.0.1:{server.server_port}/missing
        rules:
          - {{name: a, silent: {{after: 5m}}, notify: [ops]}}
        """))
    try:
        ok = subprocess.run([sys.executable, "-m", "alertd", "notify", "ops", "-c", str(path),
                             "--title", "hello"], capture_output=True, text=True, timeout=60)
        dead = subprocess.run([sys.executable, "-m", "alertd", "notify", "dead", "-c",
                               str(path), "--timeout", "5"], capture_output=True, text=True,
                              timeout=60)
        typo = subprocess.run([sys.executable, "-m", "alertd", "notify", "opz", "-c",
                               str(path)], capture_output=True, text=True, timeout=60)
        gone = subprocess.run([sys.executable, "-m", "alertd", "notify", "gone", "-c",
                               str(path)], capture_output=True, text=True, timeout=60)
    finally:
        server.shutdown()
    assert ok.returncode == 0, ok.stderr
    assert [line for line in ok.stdout.splitlines() if line.startswith("ops:")] == [
        "ops: json:// delivered", "ops: console:// delivered"]
    assert "hello" in ok.stdout  # the console:// URL printed the message itself
    assert [m["title"] for m in Hook.received[:1]] == ["hello"]
    # not delivered: apprise's reason, per URL, with the URL's secrets masked (issue 12.5)
    assert dead.returncode == 1 and dead.stdout.strip() == (
        "dead: json:// NOT delivered: A Connection error occurred sending JSON notification "
        "to 127.0.0.1")
    assert gone.returncode == 1 and gone.stdout.startswith(
        "gone: json:// NOT delivered: HTTP 404 Not Found ("), gone.stdout
    assert "hunter2secret" not in gone.stdout + gone.stderr
    assert typo.returncode == 2  # a channel the file does not have: a usage error
    assert typo.stderr.strip() == (f"alertd: no channel 'opz' in {path} (did you mean 'ops'?); "
                                   "channels: dead, gone, ops")
