"""`alertd alerts` reads the state file a daemon wrote, as an operator would."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from alertd.notify.silences import alert_values, matches
from alertd.store import Store, StoredAlert


def test_alerts_lists_rule_entity_state_since_and_silence(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = Store.open(path)
    now = time.time()
    store.commit([StoredAlert("fuel-gap", "fleet/21080", "firing", now - 300,
                              {"severity": "warning", "labels": {}}),
                  StoredAlert("stream-down", "cold", "pending", now - 30, {})], {}, [], now)
    silence = store.add_silence({"rule": "fuel-gap"}, now - 10, now + 3600, "", now)
    store.close()
    done = subprocess.run([sys.executable, "-m", "alertd", "alerts", "--state", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["RULE", "ENTITY", "STATE", "SINCE", "SILENCED"]
    assert lines[1].split()[:3] == ["fuel-gap", "fleet/21080", "firing"]
    assert lines[1].split()[-2:] == ["(5m)", silence.id]
    assert lines[2].split()[:3] == ["stream-down", "cold", "pending"]
    assert "(30s)" in lines[2]


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
                  StoredAlert("fuel-gap", "fleet/21081", "firing", now - 60, {})], {}, [], now)
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
    rows = alertd("alerts", "-c", str(rules)).stdout.splitlines()[1:]
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
