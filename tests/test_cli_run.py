"""`alertd run` as an operator starts it: a real process against loopback fakes."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import trio

from alertd.simulator.element import FakeElement
from alertd.simulator.navixy import FakeNavixy

KEY = "run-test-k3y-s3cr3t"
HASH = "fedcba9876543210fedcba9876543210"


async def test_run_prints_notifications_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    element = FakeElement(api_keys={KEY})
    navixy = FakeNavixy(hashes={HASH}, trackers={21080: "normal", 21085: "blocked"})
    async with trio.open_nursery() as nursery:
        await nursery.start(element.serve)
        await nursery.start(navixy.serve)
        config = tmp_path / "rules.yaml"
        config.write_text(textwrap.dedent(f"""\
            sources:
              cold: {{type: element, url: "{element.url}", api_key: "${{KEY}}",
                     subscribe: [readings]}}
              fleet: {{type: navixy, url: "{navixy.url}", hash: "${{HASH}}",
                      trackers: [21080, 21085]}}
            channels: {{out: console://}}
            rules:
              - {{name: blocked, source: fleet, status: {{in: [blocked]}}, notify: [out]}}
              - {{name: warm, source: cold, threshold: {{field: t, above: 8}}, notify: [out]}}
            """))
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "alertd", "run", "-c", str(config), "--state",
             str(tmp_path / "state.db")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={"KEY": KEY, "HASH": HASH, "PATH": "/usr/bin:/bin"})
        out = b""
        assert process.stdout is not None and process.stderr is not None
        with trio.fail_after(30):
            while b"[FIRING] blocked: 21085" not in out:
                out += await process.stdout.receive_some()
            while not element.connections:
                await trio.sleep(0.05)
            element.add_reading("room1", {"t": 9})
            while b"[FIRING] warm: room1" not in out:
                out += await process.stdout.receive_some()
        process.send_signal(signal.SIGTERM)
        with trio.fail_after(15):
            code = await process.wait()
            err = b""
            while chunk := await process.stderr.receive_some():
                err += chunk
        nursery.cancel_scope.cancel()
    assert code == 0, err.decode()
    text = err.decode()
    assert "stopping (SIGTERM)" in text and "Traceback" not in text
    assert KEY not in text and HASH not in text


def test_run_refuses_an_invalid_file_with_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "rules.yaml"
    config.write_text("sources: {fleet: {type: navixy, hash: h, trackers: [1]}}\n"
                      "rules: [{name: a, silent: {after: soon}, notify: []}]\n")
    done = subprocess.run([sys.executable, "-m", "alertd", "run", "-c", str(config)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"{config}:2: rule 'a': silent.after: 'soon' is not a duration (write 45s, 10m, 2h, "
        "1d, 1h30m or a number of seconds)",
        f"{config}: invalid, not started (1 error)"]
