"""`alertd alerts` reads the state file a daemon wrote, as an operator would."""

from __future__ import annotations

import fcntl
import json
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from alertd.notify.message import duration_text
from alertd.notify.silences import alert_values, matches
from alertd.store import Store, StoredAlert


def test_alerts_lists_rule_entity_state_since_and_silence(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = Store.open(path)
    now = time.time()
    store.commit([StoredAlert("fuel-gap", "fleet/21080", "firing", now - 300,
                              {"severity": "warning", "labels": {}}),
                  StoredAlert("stream-down", "cold", "pending", now - 30, {})], [], [], now)
    silence = store.add_silence({"rule": "fuel-gap"}, now - 10, now + 3600, "", now)
    store.close()
    before = time.time()
    done = subprocess.run([sys.executable, "-m", "alertd", "alerts", "--state", str(path)],
                          capture_output=True, text=True, timeout=60)
    after = time.time()
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["RULE", "ENTITY", "STATE", "SINCE", "SILENCED"]
    assert lines[1].split()[:3] == ["fuel-gap", "fleet/21080", "firing"]
    assert lines[1].split()[-1] == silence.id
    assert lines[2].split()[:3] == ["stream-down", "cold", "pending"]
    # SINCE is the time itself and how long ago it was when the command ran, which was
    # some time between `before` and `after`, however slowly the command started
    for line, since in ((lines[1], now - 300), (lines[2], now - 30)):
        stamp = datetime.fromtimestamp(since, timezone.utc)
        assert f"{stamp:%Y-%m-%d %H:%M:%SZ} (" in line
        ago = line.split(" (", 1)[1].split(")", 1)[0]
        assert ago in {duration_text(age) for age in
                       range(int(before - since), int(after - since) + 1)}, (ago, line)


def test_alerts_without_a_state_file_says_so(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "alertd", "alerts", "--state",
                           str(tmp_path / "none.db")], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 3  # the environment: no state file
    assert done.stderr.startswith(f"alertd: no state file at {tmp_path / 'none.db'}")


def test_silence_matching() -> None:
    values = alert_values("hot", "cold/room1", "critical", {"site": "hamburg"})
    assert matches({"rule": "hot", "labels.site": "hamburg"}, values)
    assert matches({"source": "cold"}, values)
    assert not matches({"rule": "hot", "severity": "warning"}, values)
    assert not matches({}, values)  # an empty match silences nothing


def alertd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "alertd", *args], capture_output=True,
                          text=True, timeout=60)


def test_silence_commands_and_planned_silences_in_alerts(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("""\
state: state.db
sources: {fleet: {type: navixy, hash: h, trackers: [21080, 21081]}}
channels: {ops: console://}
rules:
  - {name: fuel-gap, missing: {field: lls_level_1, nulls: 3}, notify: [ops]}
silences:
  - {match: {entity: fleet/21081}, ends: "2999-01-01", comment: retired}
""")
    store = Store.open(tmp_path / "state.db")
    now = time.time()
    store.commit([StoredAlert("fuel-gap", "fleet/21080", "firing", now - 60, {}),
                  StoredAlert("fuel-gap", "fleet/21081", "firing", now - 60, {})], [], [], now)
    store.close()
    added = alertd("silence", "add", "--match", "entity=fleet/21080", "--match",
                   "rule=fuel-gap", "--for", "2h", "--comment", "sensor swap", "-c", str(rules))
    assert added.returncode == 0, added.stderr
    silence_id = added.stdout.split()[1]
    assert added.stdout.startswith(f"silence {silence_id} added: entity=fleet/21080 "
                                   "rule=fuel-gap until ")
    assert added.stdout.rstrip().endswith("(2h00m)")
    listed = alertd("silence", "list", "-c", str(rules)).stdout.splitlines()
    assert listed[0].split() == ["ID", "MATCH", "STARTS", "ENDS", "COMMENT"]
    assert listed[1].startswith(silence_id) and listed[1].endswith("sensor swap")
    rows = alertd("alerts", "-c", str(rules)).stdout.splitlines()[1:-1]  # the last: daemon
    assert [row.split()[-1] for row in rows] == [silence_id, f"{rules}:7"]  # its FILE:LINE
    assert alertd("silence", "expire", silence_id, "-c", str(rules)).returncode == 0
    assert alertd("silence", "list", "-c", str(rules)).stdout == "no silences\n"
    again = alertd("silence", "expire", silence_id, "-c", str(rules))
    assert again.returncode == 1 and "no active silence" in again.stderr
    bad = [alertd("silence", "add", "--match", "rul=fuel-gap", "--for", "1h", "-c", str(rules)),
           alertd("silence", "add", "--match", "entity=21080", "--for", "1h", "-c", str(rules)),
           alertd("silence", "add", "--match", "rule=fuel-gap", "--for", "soon", "-c", str(rules)),
           alertd("silence", "add", "--match", "rule=fuel-gaps", "--for", "1h", "-c", str(rules)),
           alertd("silence", "add", "--match", "entity=flet/1", "--for", "1h", "-c", str(rules))]
    assert [b.returncode for b in bad] == [2] * 5  # usage mistakes
    assert [b.stderr.count("\n") for b in bad] == [1] * 5  # one clear line each
    assert "did you mean 'rule'?" in bad[0].stderr and "SOURCE/ID" in bad[1].stderr
    assert "no such rule (did you mean 'fuel-gap'?)" in bad[3].stderr
    assert "no source 'flet' (did you mean 'fleet'?)" in bad[4].stderr


def test_alerts_lists_pending_and_firing_all_adds_resolved_json_and_daemon(
        tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = Store.open(path)
    now = time.time()
    store.commit([StoredAlert("fuel-gap", "fleet/21080", "firing", 1767225600.0,
                              {"severity": "critical", "labels": {"site": "hh"}}),
                  StoredAlert("warm", "cold/room1", "resolved", now - 30, {})], [], [], now)
    store.close()
    plain = alertd("alerts", "--state", str(path))
    assert plain.returncode == 0, plain.stderr
    lines = plain.stdout.splitlines()
    assert [line.split()[0] for line in lines[1:-1]] == ["fuel-gap"]  # not the resolved one
    assert lines[-1] == "daemon: unknown (no lock file next to the state file)"
    every = alertd("alerts", "--all", "--state", str(path)).stdout.splitlines()
    assert [line.split()[0] for line in every[1:-1]] == ["fuel-gap", "warm"]

    with open(f"{path}.lock", "w") as lock:  # what a running daemon holds
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        running = alertd("alerts", "--json", "--state", str(path))
    stopped = alertd("alerts", "--json", "--state", str(path))
    assert json.loads(running.stdout) == {"daemon": "running", "alerts": [
        {"rule": "fuel-gap", "entity": "fleet/21080", "state": "firing",
         "since": "2026-01-01T00:00:00Z", "silenced": None, "severity": "critical",
         "labels": {"site": "hh"}}]}
    assert json.loads(stopped.stdout)["daemon"] == "stopped"


def test_alerts_reads_the_state_file_alone_when_the_rule_file_is_invalid(
        tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("state: here.db\nsources: {fleet: {type: navixy, hash: h, "
                     "trackers: [1]}}\nrules: [{name: a, silent: {after: soon}}]\n")
    store = Store.open(tmp_path / "here.db")
    now = time.time()
    store.commit([StoredAlert("a", "fleet/1", "firing", now - 60, {})], [], [], now)
    store.close()
    done = alertd("alerts", "-c", str(rules))
    assert done.returncode == 0, done.stderr
    assert done.stderr == (f"alertd: warning: {rules} is invalid (2 errors, see alertd "
                           "check); listing the state file without its planned silences\n")
    assert done.stdout.splitlines()[1].split()[:3] == ["a", "fleet/1", "firing"]
