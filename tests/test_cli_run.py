"""`alertd run` as an operator starts it: a real process against loopback fakes."""

from __future__ import annotations

import contextlib
import io
import json
import signal
import socket
import subprocess
import sys
import textwrap
import threading
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


def _busy_port_config(tmp_path: Path, port: int) -> Path:
    config = tmp_path / "rules.yaml"
    config.write_text(f"http: 127.0.0.1:{port}\n"
                      "sources: {fleet: {type: navixy, url: 'ws://127.0.0.1:9/x', hash: h, "
                      "trackers: [1]}}\n"
                      "channels: {out: console://}\n"
                      "rules: [{name: b, status: {in: [blocked]}, notify: [out]}]\n")
    return config


def test_a_busy_http_port_is_one_line_naming_it_and_exit_3(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = _busy_port_config(tmp_path, port)
        runs = [subprocess.run([sys.executable, "-m", "alertd", *args, "-c", str(config),
                                "--state", str(tmp_path / "s.db")],
                               capture_output=True, text=True, timeout=60)
                for args in (["run"], ["--debug", "run"])]
    plain, debug = runs
    assert plain.returncode == 3
    assert plain.stderr == f"alertd: http: 127.0.0.1:{port} is already in use\n"
    # --debug before the command is honoured: the traceback, then the same one line
    assert debug.returncode == 3
    assert "Traceback" in debug.stderr
    assert debug.stderr.splitlines()[-1] == f"alertd: http: 127.0.0.1:{port} is already in use"


def test_unexplained_exception_groups_never_reach_the_user() -> None:
    from alertd.cli import report
    from alertd.errors import ResourceError

    group = ExceptionGroup("Exceptions from Trio nursery", [
        ExceptionGroup("inner", [ResourceError("http: 127.0.0.1:9464 is already in use")])])
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert report(group, debug=False) == 3
        assert report(ExceptionGroup("x", [KeyError("k")]), debug=False) == 70
    assert err.getvalue().splitlines() == [
        "alertd: http: 127.0.0.1:9464 is already in use",
        "alertd: internal error: KeyError: 'k' (run again with --debug for the traceback)"]


def test_log_format_before_the_command_is_honoured(tmp_path: Path) -> None:
    config = _busy_port_config(tmp_path, 0)
    process = subprocess.Popen([sys.executable, "-m", "alertd", "--log-format", "json", "run",
                                "-c", str(config), "--state", str(tmp_path / "s.db")],
                               stderr=subprocess.PIPE, text=True)
    killer = threading.Timer(30, process.kill)  # bounded wait for the first log line
    killer.start()
    try:
        assert process.stderr is not None
        first = process.stderr.readline()
    finally:
        killer.cancel()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    record = json.loads(first)
    assert record["level"] == "info" and "serving /metrics" in record["message"]
