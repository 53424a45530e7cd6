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
    assert done.returncode == 1
    assert done.stderr.startswith(f"alertd: no state file at {tmp_path / 'none.db'}")


def test_silence_matching() -> None:
    values = alert_values("hot", "cold/room1", "critical", {"site": "hamburg"})
    assert matches({"rule": "hot", "labels.site": "hamburg"}, values)
    assert matches({"source": "cold"}, values)
    assert not matches({"rule": "hot", "severity": "warning"}, values)
    assert not matches({}, values)  # an empty match silences nothing
