"""The daemon's notifications end to end: a real SMTP server (aiosmtpd), webhooks that fail
or hang, a grouped burst, silences made with `alertd silence` while it runs, and a restart
with notifications left in the inbox. Real clock: apprise and the servers run in threads."""

from __future__ import annotations

import email
import email.policy
import logging
import socket
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest
import trio
from aiosmtpd.controller import Controller

from alertd import cli
from alertd.simulator.element import FakeElement
from alertd.store import Store
from tests.test_delivery import FlakyHook, Hook, run_daemon_until, serve


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append(parsed)  # type: ignore[arg-type]
        return "250 OK"

    def subjects(self) -> list[str]:
        return [str(m["subject"]) for m in self.messages]

    def text(self, index: int) -> str:
        part = self.messages[index].get_body(("plain",))
        return "" if part is None else str(part.get_content())  # type: ignore[union-attr]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Hanging:
    """Accepts connections and never answers: a webhook that hangs. It reads what it is
    sent, so it knows which connections the sender still holds open (a send in flight)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self.open = 0  # connections the sender has not closed
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(connection)
            self.open += 1
            threading.Thread(target=self._read, args=(connection,), daemon=True).start()

    def _read(self, connection: socket.socket) -> None:
        try:
            while connection.recv(65536):
                pass
        except OSError:
            pass
        self.open -= 1

    def close(self) -> None:
        self.sock.close()
        for connection in self.held:
            connection.close()


async def wait_until(predicate: Any, seconds: float = 30) -> None:
    with trio.fail_after(seconds):
        while not predicate():
            await trio.sleep(0.05)


async def test_burst_retries_a_hanging_channel_and_silences(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    mailbox = Mailbox()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    FlakyHook.posts.clear()
    flaky, hanging = serve(FlakyHook), Hanging()
    state = tmp_path / "alertd-state.db"
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent(f"""\
        sources: {{cold: {{type: element, url: "ELEMENT_URL", api_key: k, subscribe: [readings]}}}}
        channels:
          mail: "mailto://127.0.0.1:{smtp.port}?from=alertd@example.com&to=oncall@example.com"
          hook: json://127.0.0.1:{flaky.server_port}/alerts
          stuck: json://127.0.0.1:{hanging.port}/alerts
          screen: console://
        defaults: {{notify: [stuck, mail, hook], group_wait: 1s, repeat: never}}
        rules:
          - name: warm
            threshold: {{field: temperature, above: 8}}
            title: "{{entity}} is {{value:.1f}} °C"
          - {{name: probe, threshold: {{field: probe, above: 0}}, notify: [screen],
             group_wait: 0s}}
        """))

    def silence(*args: str) -> int:
        return cli.main(["silence", *args, "--state", str(state)])

    def decided(text: str) -> bool:
        return any(text in r.getMessage() for r in caplog.records)

    async def scenario(element: FakeElement) -> None:
        for room in ("room1", "room2", "room3"):
            element.add_reading(room, {"temperature": 9.25})
        await wait_until(lambda: len(mailbox.messages) == 1 and bool(hanging.held))
        # the send to the hanging URL is still in flight (its 30 s are far from over): it
        # did not hold the other URLs up
        assert hanging.open >= 1
        await wait_until(lambda: len(FlakyHook.posts) == 3)  # failed twice, then taken
        assert await trio.to_thread.run_sync(
            silence, "add", "--match", "entity=cold/room4", "--for", "1h") == 0
        # a running daemon reads silences every second: a probe alert of room4 on the
        # console shows when this one is in force (rather than a sleep that hopes so)
        probe = 0
        with trio.fail_after(30):
            while not decided("probe cold/room4 firing -> screen: silenced by"):
                probe += 1
                element.add_reading("room4", {"probe": probe % 2})
                await trio.sleep(0.3)
        element.add_reading("room4", {"temperature": 9.5})
        element.add_reading("room5", {"temperature": 9.5})
        await wait_until(lambda: len(mailbox.messages) == 2)
        await wait_until(lambda: decided("warm cold/room4 firing -> mail: silenced by"))
        assert mailbox.subjects()[1] == "cold/room5 is 9.5 °C"  # room4 is silenced
        (held,) = Store.open(state).silences()
        assert await trio.to_thread.run_sync(silence, "expire", held.id) == 0
        await wait_until(lambda: len(mailbox.messages) == 3)
        outbox = Store.open(state)
        await wait_until(lambda: outbox.pending("mail") == [] == outbox.pending("hook"))
        outbox.close()

    try:
        await run_daemon_until(path, scenario)
    finally:
        smtp.stop()
        flaky.shutdown()
        hanging.close()
    assert mailbox.subjects() == ["[FIRING 3] warm", "cold/room5 is 9.5 °C",
                                  "cold/room4 is 9.5 °C"]  # the rule's own title
    assert mailbox.text(0).splitlines()[:4] == [
        "warm (warning):", "  FIRING: cold/room1 is 9.2 °C", "  FIRING: cold/room2 is 9.2 °C",
        "  FIRING: cold/room3 is 9.2 °C"]
    assert [p["title"] for p in FlakyHook.posts[:3]] == ["[FIRING 3] warm"] * 3
    store = Store.open(state)
    assert store.pending("hook") == [] and store.pending("mail") == []
    assert len(store.pending("stuck")) >= 1  # still waiting for its retry: not lost
    assert store.inbox() == []
    store.close()


async def test_a_hanging_url_does_not_hold_up_another_url_of_its_channel(
        tmp_path: Path) -> None:
    Hook.received.clear()
    hook, hanging = serve(Hook), Hanging()
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent(f"""\
        sources: {{cold: {{type: element, url: "ELEMENT_URL", api_key: k, subscribe: [readings]}}}}
        channels:
          both: [json://127.0.0.1:{hanging.port}/stuck, json://127.0.0.1:{hook.server_port}/ok]
        rules:
          - {{name: warm, threshold: {{field: t, above: 8}}, notify: [both], group_wait: 0s}}
        """))

    async def scenario(element: FakeElement) -> None:
        element.add_reading("room1", {"t": 9})
        await wait_until(lambda: bool(Hook.received) and bool(hanging.held))
        # the message reached the good URL while the send to the hanging one, started at
        # the same moment, is still in flight
        assert hanging.open >= 1
        element.add_reading("room2", {"t": 9})
        await wait_until(lambda: len(Hook.received) == 2)
        assert hanging.open >= 1

    try:
        await run_daemon_until(path, scenario)
    finally:
        hook.shutdown()
        hanging.close()
    assert [m["title"] for m in Hook.received] == ["[FIRING] warm: room1",
                                                    "[FIRING] warm: room2"]
