"""`alertd test` run as a command over tests/rule_tests/: every rule kind and option."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent / "rule_tests"
PAIRS = sorted(p.name.removesuffix(".cases.yaml") for p in HERE.glob("*.cases.yaml"))


def alertd_test(rules: Path, *cases: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_HASH", "_API_KEY"))}
    return subprocess.run([sys.executable, "-m", "alertd", "test", "-c", str(rules),
                           *map(str, cases)], capture_output=True, text=True, env=env,
                          timeout=60)


def test_every_rule_kind_has_cases() -> None:
    assert {"threshold", "missing", "silent", "status", "source_down", "change",
            "options"} <= set(PAIRS)


@pytest.mark.parametrize("name", PAIRS)
def test_case_file_passes(name: str) -> None:
    done = alertd_test(HERE / f"{name}.rules.yaml", HERE / f"{name}.cases.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    last = done.stdout.splitlines()[-1]
    assert last.endswith(" passed, 0 failed") and not last.startswith("0 ")


def test_a_wrong_expectation_fails_with_the_difference(tmp_path: Path) -> None:
    cases = tmp_path / "wrong.yaml"
    cases.write_text("""\
cases:
  - name: expects the gap one message too early
    start: 2026-01-01T00:00:00Z
    events:
      - {at: 10s, source: fleet, entity: 21080, fields: {lls_level_1: null}}
      - {at: 20s, source: fleet, entity: 21080, fields: {lls_level_1: null}}
      - {at: 30s, source: fleet, entity: 21080, fields: {lls_level_1: null}}
    expect:
      - {at: 20s, rule: fuel-gap, entity: fleet/21080, state: firing}
""")
    done = alertd_test(HERE / "missing.rules.yaml", cases)
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        "FAIL expects the gap one message too early",
        f"  missing:    at 20s       fuel-gap fleet/21080 firing  (expected at {cases}:9)",
        "  unexpected: at 30s       fuel-gap fleet/21080 firing",
        "  got:",
        "    at 30s       fuel-gap fleet/21080 firing",
        "0 passed, 1 failed"]


def test_unexpected_notifications_fail_a_case(tmp_path: Path) -> None:
    cases = tmp_path / "quiet.yaml"
    cases.write_text("""\
cases:
  - name: claims nothing happens
    start: 2026-01-01T00:00:00Z
    events:
      - {at: 0s, source: fleet, entity: 21085, status: blocked}
    expect: []
""")
    done = alertd_test(HERE / "status.rules.yaml", cases)
    assert done.returncode == 1
    assert "  unexpected: at 0s        blocked fleet/21085 firing" in done.stdout.splitlines()


def test_case_file_errors_are_located(tmp_path: Path) -> None:
    cases = tmp_path / "bad.yaml"
    cases.write_text("""\
cases:
  - name: typo
    start: 2026-01-01T00:00:00Z
    events:
      - {at: 0s, source: flet, entity: 1, fields: {a: 1}}
    expect:
      - {rule: fuel-gapp, entity: fleet/1, state: fired}
""")
    done = alertd_test(HERE / "missing.rules.yaml", cases)
    assert done.returncode == 2  # an invalid case file is invalid input, as a rule file
    assert done.stderr.splitlines() == [
        f"{cases}:5: case 'typo': event #1: source must be one of fleet, not 'flet' "
        "(did you mean 'fleet'?)",
        f"{cases}:7: case 'typo': expect #1: rule must be one of fuel-gap, gps-flaky, not "
        "'fuel-gapp' (did you mean 'fuel-gap'?)",
        f"{cases}:7: case 'typo': expect #1: state must be one of firing, resolved, flapping, "
        "not 'fired'"]


def test_an_expected_entity_without_its_source_is_flagged(tmp_path: Path) -> None:
    """`entity: 21080` can never match (notifications say fleet/21080): say so, as
    `silence add` does, instead of a silent mismatch."""
    cases = tmp_path / "bare.yaml"
    cases.write_text("""\
cases:
  - name: bare entity
    start: 2026-01-01T00:00:00Z
    events:
      - {at: 0s, source: fleet, entity: 21085, status: blocked}
    expect:
      - {rule: blocked, entity: 21085, state: firing}
      - {rule: blocked, entity: flet/21085, state: firing}
""")
    done = alertd_test(HERE / "status.rules.yaml", cases)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"{cases}:7: case 'bare entity': expect #1: entity '21085' is written SOURCE/ID, as "
        "notifications name it (did you mean 'fleet/21085'?)",
        f"{cases}:8: case 'bare entity': expect #2: entity 'flet/21085' names no source of "
        "the rule file (did you mean 'fleet'?)"]
