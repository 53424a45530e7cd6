"""Record and replay (SPEC section 9): a real ``alertd run --record`` against the loopback
fakes, then ``alertd replay`` of what it recorded, must give the notifications the daemon
made live (rule, entity, state, and times within a second)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import trio

from alertd.record import Recorder, recordings
from alertd.replay import read_records
from alertd.simulator.element import FakeElement
from alertd.simulator.navixy import FakeNavixy

KEY = "rec-k3y-s3cr3t-value"
HASH = "0123456789abcdef0123456789abcdef"
# the package under test, also from a worktree (PYTHONPATH=.)
ENV = {"KEY": KEY, "HASH": HASH, "PATH": "/usr/bin:/bin",
       **{k: os.path.abspath(v) for k, v in os.environ.items() if k == "PYTHONPATH"}}
RULES = """\
    - {name: warm, source: cold, threshold: {field: t, above: 8, clear_below: 7.5},
       for: 2s, notify: [out]}
    - {name: gap, source: cold, missing: {field: t, nulls: 2}, notify: [out]}
    - {name: quiet, source: cold, silent: {after: 3s}, notify: [out]}
    - {name: blocked, source: fleet, status: {in: [blocked]}, notify: [out]}
    - {name: fast, source: fleet, threshold: {field: speed, above: 100}, notify: [out]}
    - {name: cold-down, source: cold, source_down: {after: 3s}, notify: [out]}
"""


def write_config(tmp_path: Path, element: FakeElement, navixy: FakeNavixy,
                 rules: str = RULES) -> Path:
    config = tmp_path / "rules.yaml"
    config.write_text(textwrap.dedent(f"""\
        sources:
          cold: {{type: element, url: "{element.url}", api_key: "${{KEY}}",
                 subscribe: [readings]}}
          fleet: {{type: navixy, url: "{navixy.url}", hash: "${{HASH}}",
                  trackers: [21080, 21085]}}
        channels: {{out: console://}}
        defaults: {{repeat: never, group_wait: 0s}}
        rules:
        """) + textwrap.indent(textwrap.dedent(rules), "  "))
    return config


async def start(args: list[str]) -> trio.Process:
    return await trio.lowlevel.open_process(
        [sys.executable, "-m", "alertd", *args], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env=ENV)


class Output:
    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self.stream, self.text = stream, ""

    async def until(self, wanted: str, seconds: float = 20) -> None:
        with trio.move_on_after(seconds):
            while wanted not in self.text:
                chunk = await self.stream.receive_some()
                if not chunk:
                    raise AssertionError(f"ended before {wanted!r}:\n{self.text}")
                self.text += chunk.decode()
        assert wanted in self.text, f"no {wanted!r} in {seconds} s:\n{self.text}"


async def stop(process: trio.Process, out: Output) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    with trio.fail_after(20):
        code = await process.wait()
        while chunk := await out.stream.receive_some():
            out.text += chunk.decode()
    return code, out.text


def live_history(state: Path) -> list[tuple[float, str, str, str]]:
    with sqlite3.connect(state) as db:
        return [tuple(row) for row in db.execute(  # type: ignore[misc]
            "SELECT at, rule, entity, state FROM history ORDER BY at")]


def replayed(config: Path, folder: Path) -> tuple[list[dict[str, object]], dict[str, object]]:
    done = subprocess.run([sys.executable, "-m", "alertd", "replay", "-c", str(config),
                           str(folder), "--json"], capture_output=True, text=True, timeout=60,
                          env=ENV)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    return lines[:-1], lines[-1]["summary"]


async def test_a_replay_of_a_recorded_run_gives_what_the_daemon_gave_live(
        tmp_path: Path) -> None:
    element = FakeElement(api_keys={KEY})
    navixy = FakeNavixy(hashes={HASH}, trackers={21080: "normal", 21085: "blocked"},
                        heartbeat_ms=1000)
    folder, state = tmp_path / "rec", tmp_path / "state.db"
    async with trio.open_nursery() as nursery:
        await nursery.start(element.serve)
        await nursery.start(navixy.serve)
        config = write_config(tmp_path, element, navixy)
        process = await start(["run", "-c", str(config), "--state", str(state),
                               "--record", str(folder)])
        assert process.stderr is not None
        out = Output(process.stderr)  # the daemon logs each notification it makes
        await out.until("blocked fleet/21085 firing")
        await element.wait_until(lambda: bool(element.connections))
        element.add_reading("room1", {"t": 9})  # warm: pending, fires 2 s later
        element.add_reading("room2", {"t": 5})  # quiet: fires 3 s after this
        navixy.add_message(21080, {"speed": 120})
        await out.until("warm cold/room1 firing")
        await out.until("fast fleet/21080 firing")
        element.add_reading("room1", {"t": 7.8})  # inside the hysteresis: still firing
        element.add_reading("room1", {"h": 1})  # t null once
        element.add_reading("room1", {"h": 2})  # twice: gap fires
        await out.until("gap cold/room1 firing")
        element.add_reading("room1", {"t": 7})  # warm and gap resolve
        await out.until("warm cold/room1 resolved")
        await out.until("quiet cold/room2 firing")
        element.add_reading("room2", {"t": 5})
        await out.until("quiet cold/room2 resolved")
        element.pause()  # reconnections are refused (503)
        for connection in list(element.connections):
            connection.cut()  # the source is down; after 3 s cold-down fires
        await out.until("cold-down cold firing")
        element.resume()
        await out.until("cold-down cold resolved", 30)  # reconnected
        code, err = await stop(process, out)
        nursery.cancel_scope.cancel()
    assert code == 0, err
    live = live_history(state)
    assert {(r, e, s) for _, r, e, s in live} >= {
        ("warm", "cold/room1", "firing"), ("warm", "cold/room1", "resolved"),
        ("gap", "cold/room1", "firing"), ("quiet", "cold/room2", "firing"),
        ("blocked", "fleet/21085", "firing"), ("fast", "fleet/21080", "firing"),
        ("cold-down", "cold", "firing"), ("cold-down", "cold", "resolved")}

    notes, summary = replayed(config, folder)
    got = [(n["at_epoch"], n["rule"], n["entity"], n["state"]) for n in notes]
    assert [(r, e, s) for _, r, e, s in got] == [(r, e, s) for _, r, e, s in live]
    for (at_replay, *_), (at_live, *_) in zip(got, live, strict=True):
        assert abs(float(at_replay) - at_live) < 1.0  # type: ignore[arg-type]
    rules = summary["rules"]
    assert isinstance(rules, dict)
    assert rules["warm"]["fired"] == 1 and rules["warm"]["noisiest"] == [["cold/room1", 1]]
    assert 0 < rules["warm"]["firing_seconds"] < 20
    assert rules["fast"]["fired"] == 1

    written = "".join(path.read_text() for path in recordings(folder))
    assert KEY not in written and HASH not in written and "auth=" not in written
    assert "subscribe" not in written.replace("subscription/subscribe", "")  # sent, not kept


def test_recordings_rotate_by_size_drop_the_oldest_and_mask_secrets(tmp_path: Path) -> None:
    clock = iter(float(1_767_225_600 + n) for n in range(10_000))
    recorder = Recorder(tmp_path, lambda: next(clock), secrets=[KEY], max_total=4000,
                        file_size=1000)
    frame = '[{"event":"reading_added","body":{"echo":"' + KEY + '","data":{"t":1}}}]'
    for _ in range(60):
        recorder.frames("cold", "readings", [frame])
    recorder.frames("cold", "readings", [b"\xff\x00binary"])
    recorder.close()
    files = recordings(tmp_path)
    sizes = [path.stat().st_size for path in files]
    assert len(files) >= 3 and sum(sizes) <= 4000 + 200  # the current file may pass by a line
    assert files[0].name.endswith("000001.jsonl") is False  # the oldest were removed
    text = "".join(path.read_text() for path in files)
    records = list(read_records(tmp_path))
    assert KEY not in text and all('"echo":"***"' in str(r.frame) for r in records[:-1])
    assert records[-1].frame == b"\xff\x00binary"
    assert all(r.source == "cold" and r.socket == "readings" for r in records)


async def test_dry_run_prints_what_it_would_send_and_writes_no_state(tmp_path: Path) -> None:
    element = FakeElement(api_keys={KEY})
    navixy = FakeNavixy(hashes={HASH}, trackers={21080: "normal", 21085: "blocked"})
    async with trio.open_nursery() as nursery:
        await nursery.start(element.serve)
        await nursery.start(navixy.serve)
        config = write_config(tmp_path, element, navixy, """\
            - {name: blocked, source: fleet, status: {in: [blocked]}, notify: [hook]}
            - {name: warm, source: cold, threshold: {field: t, above: 8}, notify: [hook]}
            """)
        # a channel that would fail if anything were sent to it
        config.write_text(config.read_text().replace(
            "channels: {out: console://}", "channels: {hook: json://127.0.0.1:9/never}"))
        (tmp_path / "rules.yaml").write_text(config.read_text() + "state: never.db\n")
        process = await start(["run", "-c", str(config), "--dry-run"])
        assert process.stdout is not None
        out = Output(process.stdout)
        await out.until("[FIRING] blocked: 21085")
        await element.wait_until(lambda: bool(element.connections))
        element.add_reading("room1", {"t": 9})
        await out.until("[FIRING] warm: room1")
        assert process.stderr is not None
        code, err = await stop(process, Output(process.stderr))
        nursery.cancel_scope.cancel()
    assert code == 0, err
    assert "dry run" in err and "delivery failed" not in err
    assert not (tmp_path / "never.db").exists() and not list(tmp_path.glob("*.db*"))
