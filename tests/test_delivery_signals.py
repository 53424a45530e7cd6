"""Reloads and stops never duplicate a delivery, and a stop ends in bounded time: real
`alertd run` processes, real signals, a local webhook that answers slowly (or not at all),
and an ELEMENT fake. Each test counts what the receiver got.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import trio

from alertd.app import STOP_GRACE
from alertd.simulator.element import FakeElement
from tests.hooks import Answer, Webhook
from tests.test_delivery_outcomes import child_pids, wait_until


class Daemon:
    """One `alertd run` process; its stderr is collected as it comes."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.err = b""

    @classmethod
    async def start(cls, nursery: trio.Nursery, config: Path, state: Path) -> Daemon:
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "alertd", "run", "-c", str(config), "--state", str(state)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
        daemon = cls(process)
        nursery.start_soon(daemon._collect)
        return daemon

    async def _collect(self) -> None:
        """Read its stderr; when the test ends (passed or failed), no daemon outlives it."""
        assert self.process.stderr is not None
        try:
            while chunk := await self.process.stderr.receive_some():
                self.err += chunk
        finally:
            if self.process.returncode is None:
                self.process.kill()

    @property
    def log(self) -> str:
        return self.err.decode(errors="replace")

    async def stop(self, within: float) -> tuple[int, float]:
        """SIGTERM; (exit status, seconds it took). Killed, and the test failed, when it
        takes longer than ``within``."""
        start = trio.current_time()
        self.process.send_signal(signal.SIGTERM)
        with trio.move_on_after(within):
            code = await self.process.wait()
            await trio.sleep(0.1)  # the last of stderr
            return code, trio.current_time() - start
        self.process.kill()
        await self.process.wait()
        raise AssertionError(f"alertd run still running {within} s after SIGTERM:\n{self.log}")


def write_config(tmp_path: Path, element: FakeElement, hook: Webhook) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent(f"""\
        sources: {{cold: {{type: element, url: "{element.url}", api_key: k,
                         subscribe: [readings]}}}}
        channels: {{hook: "{hook.url()}"}}
        rules:
          - {{name: warm, threshold: {{field: t, above: 8}}, notify: [hook], group_wait: 0s}}
        """))
    return path


async def connected(element: FakeElement, count: int = 1) -> None:
    await wait_until(lambda: len(element.connections) >= count, 20, "alertd connected")


async def test_sighups_during_a_slow_answer_deliver_once_and_reload_once(
        tmp_path: Path) -> None:
    """issue 11.2: a SIGHUP during a 3 s webhook answer sent the message twice; 100
    SIGHUPs in a second sent one notice 52 times. Now the URL's worker survives the reload
    (its send is not cancelled) and the storm is one reload."""
    hook = Webhook(lambda n: Answer(delay=3.0) if n == 1 else Answer())
    element = FakeElement(api_keys={"k"})
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(element.serve)
            config = write_config(tmp_path, element, hook)
            daemon = await Daemon.start(nursery, config, tmp_path / "state.db")
            await connected(element)
            element.add_reading("room1", {"t": 9})
            await wait_until(lambda: len(hook.posts) >= 1, 20, "the first post")
            for _ in range(100):  # the storm, while the receiver holds its answer
                daemon.process.send_signal(signal.SIGHUP)
                await trio.sleep(0.005)
            await wait_until(lambda: "loaded" in daemon.log, 20, "the reload")
            await wait_until(lambda: daemon.log.count("watching 1 source ") >= 2, 20,
                             "the new generation")
            await connected(element)
            element.add_reading("room2", {"t": 9})  # a duplicate of room1 would come first
            await wait_until(lambda: "[FIRING] warm: room2" in hook.titles(), 20,
                             f"room2 delivered\n{daemon.log}")
            code, _ = await daemon.stop(within=STOP_GRACE + 10)
            nursery.cancel_scope.cancel()
    finally:
        hook.close()
    assert code == 0, daemon.log
    assert hook.titles() == ["[FIRING] warm: room1", "[FIRING] warm: room2"], daemon.log
    assert daemon.log.count("loaded") == 1, daemon.log  # 100 SIGHUPs, one reload


async def test_sigterm_during_a_slow_answer_waits_for_it_and_records_it(
        tmp_path: Path) -> None:
    """issue 11.3: SIGTERM during a delivery sent it, exited 0, and sent it again after a
    restart. Now the stop waits (up to STOP_GRACE) for the send in flight and records it:
    the restart does not send it again."""
    hook = Webhook(lambda n: Answer(delay=3.0) if n == 1 else Answer())
    element = FakeElement(api_keys={"k"})
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(element.serve)
            config, state = write_config(tmp_path, element, hook), tmp_path / "state.db"
            first = await Daemon.start(nursery, config, state)
            await connected(element)
            element.add_reading("room1", {"t": 9})
            await wait_until(lambda: len(hook.posts) >= 1, 20, "the first post")
            code, took = await first.stop(within=STOP_GRACE + 10)
            assert code == 0, first.log
            assert took >= 2.0, "it did not wait for the send in flight"

            second = await Daemon.start(nursery, config, state)
            await connected(element)
            element.add_reading("room2", {"t": 9})  # a resend of room1 would come first
            await wait_until(lambda: "[FIRING] warm: room2" in hook.titles(), 20,
                             f"room2 delivered\n{second.log}")
            code, _ = await second.stop(within=STOP_GRACE + 10)
            nursery.cancel_scope.cancel()
    finally:
        hook.close()
    assert hook.titles() == ["[FIRING] warm: room1", "[FIRING] warm: room2"], second.log


async def test_sigterm_during_a_stuck_send_ends_it_within_the_grace(tmp_path: Path) -> None:
    """issue 11.3: with a send that never ends, SIGTERM never finished (interpreter exit
    waited for apprise's thread). Now the stop takes STOP_GRACE seconds and a little, the
    sending process is killed, and the message, never answered, is sent after the
    restart."""
    hook = Webhook(lambda n: Answer(trickle=1.0) if n == 1 else Answer())
    element = FakeElement(api_keys={"k"})
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(element.serve)
            config, state = write_config(tmp_path, element, hook), tmp_path / "state.db"
            first = await Daemon.start(nursery, config, state)
            await connected(element)
            element.add_reading("room1", {"t": 9})
            await wait_until(lambda: len(hook.posts) >= 1, 20, "the first post")
            senders = child_pids(first.process.pid)
            code, took = await first.stop(within=STOP_GRACE + 5)
            assert senders, "no sending process"
            assert code == 0, first.log
            assert STOP_GRACE - 0.5 <= took, (took, first.log)
            assert "was still running after 5 s and was ended" in first.log, first.log
            alive = {pid for pid in senders if Path(f"/proc/{pid}").exists()
                     and " Z " not in Path(f"/proc/{pid}/stat").read_text()}
            assert alive == set(), "the stuck sending process outlived the daemon"

            second = await Daemon.start(nursery, config, state)
            await wait_until(lambda: len(hook.posts) >= 2, 20,
                             f"the message sent again\n{second.log}")
            await connected(element)
            element.add_reading("room2", {"t": 9})
            await wait_until(lambda: "[FIRING] warm: room2" in hook.titles(), 20,
                             f"room2 delivered\n{second.log}")
            await second.stop(within=STOP_GRACE + 10)
            nursery.cancel_scope.cancel()
    finally:
        hook.close()
    # the first post was taken but never answered: it is sent once more, and only once
    assert hook.titles() == ["[FIRING] warm: room1", "[FIRING] warm: room1",
                             "[FIRING] warm: room2"]
