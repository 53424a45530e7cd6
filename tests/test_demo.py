"""`alertd demo` as a new user runs it: the command itself, in a process, offline.

The assertions read the demo's own summary table (rule, kind, entity, fired, resolved), not
the wording of the notifications, which belongs to the delivery path.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from tests.test_delivery import Hook, serve

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("threshold", "missing", "silent", "status", "source_down", "change", "all", "any")
TIME = re.compile(r"^\d\d:\d\d:\d\d")


def demo(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "alertd", "demo", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=90)


def example_rules() -> dict[str, str]:
    """Rule name -> kind, as rules.example.yaml writes them."""
    rules = yaml.safe_load((ROOT / "rules.example.yaml").read_text())["rules"]
    return {rule["name"]: next(kind for kind in KINDS if kind in rule) for rule in rules}


def summary(out: str) -> list[dict[str, str]]:
    """The rows of the summary table: columns are separated by two spaces or more."""
    lines = out[out.index("\nSummary"):].splitlines()[2:]
    header = lines[0].split()
    rows = []
    for line in lines[1:]:
        if not line.strip():
            break
        rows.append(dict(zip(header, re.split(r"\s{2,}", line.strip()))))
    return rows


def test_the_packaged_rules_are_rules_example_yaml() -> None:
    assert (ROOT / "alertd/simulator/demo_rules.yaml").read_bytes() == \
        (ROOT / "rules.example.yaml").read_bytes()


def test_every_rule_fires_and_every_kind_resolves(tmp_path: Path) -> None:
    # --debug: should it fail, the assertion shows the demo's traceback and its last logs
    done = demo("--debug", "--duration", "10", cwd=tmp_path)  # any folder, no account
    tail = "\n".join(done.stderr.splitlines()[-80:])
    assert done.returncode == 0, f"exit {done.returncode}; stderr ends:\n{tail}"
    assert list(tmp_path.iterdir()) == []  # nothing left behind
    assert "Traceback" not in done.stdout + done.stderr, tail
    errors = [line for line in done.stderr.splitlines() if " ERROR " in line]
    assert errors == []  # reconnects during the outage are warnings, part of the story
    rows = summary(done.stdout)
    rules = example_rules()
    assert {row["KIND"] for row in rows} == set(rules.values())
    for name, kind in rules.items():
        mine = [row for row in rows if row["RULE"] == name]
        assert mine and all(row["KIND"] == kind for row in mine), name
        assert any(TIME.match(row["FIRED"]) for row in mine), f"{name} did not fire"
        assert name in done.stdout[:done.stdout.index("\nSummary")], name  # its notification
    for kind in set(rules.values()):
        assert any(TIME.match(row["RESOLVED"]) for row in rows if row["KIND"] == kind), kind
    assert f"{len(rules)} rules: {len(rules)} fired, {len(rules)} resolved" in done.stdout


def test_notify_sends_the_notifications_to_an_apprise_url_too() -> None:
    Hook.received.clear()
    server = serve(Hook)
    try:
        done = demo("--duration", "10", "--notify",
                    f"json://127.0.0.1:{server.server_port}/demo")
    finally:
        server.shutdown()
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert Hook.received, "no notification reached the webhook:\n" + \
        done.stdout[-1500:] + done.stderr[-3000:]
    # the sending processes start in real seconds, not the scenario's fast ones: every
    # notification is delivered during the run, none left queued at its end
    assert "could not be delivered" not in done.stdout, done.stdout[-1500:]
    titles = " ".join(message["title"] + message["message"] for message in Hook.received)
    assert "stream-down" in titles and "fuel-gap" in titles
    assert "could not be delivered" not in done.stdout


def test_a_bad_notify_url_is_one_clear_line_and_exit_2() -> None:
    done = demo("--notify", "slak://T000/B000/XXXX")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "alertd: --notify: the URL uses 'slak://', which is not an apprise service "
        "(did you mean 'slack://'?)"]


def test_too_short_a_duration_is_refused() -> None:
    done = demo("--duration", "1")
    assert done.returncode == 2
    assert done.stderr.splitlines() == ["alertd: --duration must be at least 5 seconds"]


def test_help_names_both_options() -> None:
    done = subprocess.run([sys.executable, "-m", "alertd", "demo", "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0
    assert "--duration" in done.stdout and "--notify" in done.stdout


async def test_a_socket_dropped_under_reader_and_keep_alive_at_once_is_a_reconnect(
        autojump_clock: object) -> None:
    """The demo's rare `internal error: ExceptionGroup` (1 run in 20): when the fake drops a
    socket, the reader's get_message and the keep-alive's ping both raise ConnectionClosed;
    the two-error group was taken for a bug and ended the daemon instead of a reconnect."""
    import logging

    import trio
    import trio_websocket

    from alertd.sources.reconnect import run_forever

    sessions = 0

    async def session(opened: object) -> None:
        nonlocal sessions
        sessions += 1
        closed = trio_websocket.ConnectionClosed(trio_websocket.CloseReason(1006, None))
        raise ExceptionGroup("Exceptions from Trio nursery", [
            ExceptionGroup("Exceptions from Trio nursery", [closed, closed])])

    with trio.move_on_after(10):  # about three reconnects' worth of backoff
        await run_forever("source 'cold' socket readings", session,  # type: ignore[arg-type]
                          logging.getLogger("test"))
    assert sessions >= 3
