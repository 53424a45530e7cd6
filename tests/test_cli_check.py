"""`alertd check` run as the installed command, the way an operator runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_ENV = {"ELEMENT_API_KEY": "k-123", "NAVIXY_HASH": "0123456789abcdef0123456789abcdef",
               "SMTP_PASSWORD": "pw"}


def alertd(*args: str, env: dict[str, str] | None = None,
           cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in EXAMPLE_ENV}
    return subprocess.run([sys.executable, "-m", "alertd", *args], capture_output=True,
                          text=True, env={**clean, **(env or {})}, cwd=cwd, timeout=60)


def test_example_is_valid_once_its_variables_are_set() -> None:
    done = alertd("check", "-c", "rules.example.yaml", env=EXAMPLE_ENV)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ("rules.example.yaml: OK: 2 sources, 4 channels, 13 rules, "
                           "1 silence\n")


def test_example_names_each_unset_variable() -> None:
    done = alertd("check", "-c", "rules.example.yaml")
    assert done.returncode == 1
    assert [line.split(": ", 1)[1] for line in done.stderr.splitlines()[:-1]] == [
        f"environment variable {name} is not set (set it, or write ${{{name}:-default}})"
        for name in ("ELEMENT_API_KEY", "NAVIXY_HASH", "SMTP_PASSWORD")]
    assert done.stderr.splitlines()[-1] == "rules.example.yaml: 3 errors"


def test_broken_file_exit_1_every_error_no_traceback(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("sources:\n  fleet: {type: navixy, hash: h, trackers: [1]}\n"
                    "channels: {ops: console://}\nrules:\n"
                    "  - {name: a, notify: [ops], silent: {after: 5x}}\n"
                    "  - {name: b, notify: [ops], missing: {field: f, nulls: 13}}\n")
    done = alertd("check", "-c", str(path))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert done.stderr.splitlines() == [
        f"{path}:5: rule 'a': silent.after: '5x' is not a duration (write 45s, 10m, 2h, 1d, "
        "1h30m or a number of seconds)",
        f"{path}:6: rule 'b': missing.nulls must be at most 12, not 13",
        f"{path}: 2 errors"]


def test_missing_file(tmp_path: Path) -> None:
    done = alertd("check", "-c", str(tmp_path / "nope.yaml"))
    assert done.returncode == 1
    assert done.stderr.splitlines()[0] == f"{tmp_path / 'nope.yaml'}:1: no such file"


def test_directory_instead_of_file(tmp_path: Path) -> None:
    done = alertd("check", "-c", str(tmp_path))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.splitlines()[0] == f"{tmp_path}:1: cannot read the file: Is a directory"


def test_every_command_has_help() -> None:
    for args in (["--help"], ["check", "--help"]):
        done = alertd(*args)
        assert done.returncode == 0 and "usage: alertd" in done.stdout


def test_usage_error_exits_2() -> None:
    done = alertd("check")
    assert done.returncode == 2 and "the following arguments are required: -c" in done.stderr
