"""The case files of tests/rule_tests/ run in this process (tests/test_rule_tests.py runs them
through the `alertd test` command): fast enough for mutation testing of the core, which sees
only code that runs in the test's own process."""

from __future__ import annotations

from pathlib import Path

import pytest

from alertd.config import load_config
from alertd.ruletest import load_cases, report, run_case

HERE = Path(__file__).resolve().parent / "rule_tests"
PAIRS = sorted(p.name.removesuffix(".cases.yaml") for p in HERE.glob("*.cases.yaml"))


@pytest.mark.parametrize("name", PAIRS)
def test_case_file_passes_in_process(name: str) -> None:
    config = load_config(HERE / f"{name}.rules.yaml", strict=False)
    cases = load_cases(str(HERE / f"{name}.cases.yaml"), config)
    assert cases
    failed = [line for case in cases for line in report(run_case(case, config))
              if not line.startswith("PASS ")]
    assert failed == []
