"""Commands that connect to nothing (`test`, `alerts`, `silence`) load a rule file whose
secrets are unset, written quoted or not; `check` still reports an unset variable."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from alertd.store import Store, StoredAlert

ROOT = Path(__file__).resolve().parents[1]

RULES = """\
state: state.db
sources:
  fleet:
    type: navixy
    hash: {hash}
    trackers: [21080, 21081]
  cold:
    type: element
    url: {url}
    api_key: {key}
    subscribe: [readings]

channels:
  ops: slack://${{SLACK_TOKENS}}/#ops

rules:
  - name: fuel-gap
    source: fleet
    missing: {{field: lls_level_1, nulls: 3}}
    notify: [ops]
"""

CASES = """\
cases:
  - name: fuel sensor gap fires on the third null
    start: 2026-01-01T00:00:00Z
    events:
      - {at: 0s,  source: fleet, entity: 21080, fields: {lls_level_1: 262.9}}
      - {at: 10s, source: fleet, entity: 21080, fields: {lls_level_1: null}}
      - {at: 20s, source: fleet, entity: 21080, fields: {lls_level_1: null}}
      - {at: 30s, source: fleet, entity: 21080, fields: {lls_level_1: null}}
    expect:
      - {at: 30s, rule: fuel-gap, entity: fleet/21080, state: firing}
"""


def alertd(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("NAVIXY_HASH", "ELEMENT_API_KEY", "ELEMENT_URL", "SLACK_TOKENS")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "alertd", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("quote", ["", '"'], ids=["plain", "quoted"])
def test_offline_commands_need_no_secrets(tmp_path: Path, quote: str) -> None:
    q = quote
    (tmp_path / "rules.yaml").write_text(RULES.format(
        hash=f"{q}${{NAVIXY_HASH}}{q}", key=f"{q}${{ELEMENT_API_KEY}}{q}",
        url=f"{q}${{ELEMENT_URL}}{q}"))
    (tmp_path / "cases.yaml").write_text(CASES)
    store = Store.open(tmp_path / "state.db")
    now = time.time()
    store.commit([StoredAlert("fuel-gap", "fleet/21080", "firing", now - 60, {})], [], [], now)
    store.close()

    tested = alertd("test", "-c", "rules.yaml", "cases.yaml", cwd=tmp_path)
    assert tested.returncode == 0, tested.stderr
    assert tested.stdout.splitlines()[-1] == "1 passed, 0 failed"
    listed = alertd("alerts", "-c", "rules.yaml", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "fleet/21080" in listed.stdout
    added = alertd("silence", "add", "--match", "rule=fuel-gap", "--for", "1h", "-c",
                   "rules.yaml", cwd=tmp_path)
    assert added.returncode == 0, added.stderr
    silences = alertd("silence", "list", "-c", "rules.yaml", cwd=tmp_path)
    assert silences.returncode == 0, silences.stderr
    assert "rule=fuel-gap" in silences.stdout

    checked = alertd("check", "-c", "rules.yaml", cwd=tmp_path)
    assert checked.returncode == 2
    assert "rules.yaml:5: environment variable NAVIXY_HASH is not set" in checked.stderr
    assert "rules.yaml:9: environment variable ELEMENT_URL is not set" in checked.stderr
