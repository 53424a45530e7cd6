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
    assert done.returncode == 2
    assert [line.split(": ", 1)[1] for line in done.stderr.splitlines()[:-1]] == [
        f"environment variable {name} is not set (set it, or write ${{{name}:-default}})"
        for name in ("ELEMENT_API_KEY", "NAVIXY_HASH", "SMTP_PASSWORD")]
    assert done.stderr.splitlines()[-1] == "rules.example.yaml: 3 errors"


def test_broken_file_exit_2_every_error_no_traceback(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("sources:\n  fleet: {type: navixy, hash: h, trackers: [1]}\n"
                    "channels: {ops: console://}\nrules:\n"
                    "  - {name: a, notify: [ops], silent: {after: 5x}}\n"
                    "  - {name: b, notify: [ops], missing: {field: f, nulls: 13}}\n")
    done = alertd("check", "-c", str(path))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert done.stderr.splitlines() == [
        f"{path}:5: rule 'a': silent.after: '5x' is not a duration (write 45s, 10m, 2h, 1d, "
        "1h30m or a number of seconds)",
        f"{path}:6: rule 'b': missing.nulls must be at most 12, not 13",
        f"{path}: 2 errors"]


def test_missing_file(tmp_path: Path) -> None:
    done = alertd("check", "-c", str(tmp_path / "nope.yaml"))
    assert done.returncode == 2
    assert done.stderr.splitlines()[0] == f"{tmp_path / 'nope.yaml'}:1: no such file"


def test_directory_instead_of_file(tmp_path: Path) -> None:
    done = alertd("check", "-c", str(tmp_path))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.splitlines()[0] == f"{tmp_path}:1: cannot read the file: Is a directory"


def test_every_command_has_help() -> None:
    for args in (["--help"], ["check", "--help"]):
        done = alertd(*args)
        assert done.returncode == 0 and "usage: alertd" in done.stdout


def test_usage_error_exits_2() -> None:
    done = alertd("check")
    assert done.returncode == 2 and "the following arguments are required: -c" in done.stderr


def test_one_invalid_file_is_exit_2_for_every_command(tmp_path: Path) -> None:
    """One exit-status scheme (docs/operations.md): an invalid rule file is 2 whichever
    command reads it."""
    path = tmp_path / "rules.yaml"
    path.write_text("sources: {fleet: {type: navixy, hash: h, trackers: [1]}}\n"
                    "channels: {ops: console://}\n"
                    "rules: [{name: a, silent: {after: soon}, notify: [ops]}]\n")
    cases = tmp_path / "cases.yaml"
    cases.write_text("cases: []\n")
    runs = {"check": alertd("check", "-c", str(path)),
            "test": alertd("test", "-c", str(path), str(cases)),
            "run": alertd("run", "-c", str(path), "--state", str(tmp_path / "s.db")),
            "silence add": alertd("silence", "add", "--match", "rule=a", "--for", "1h", "-c",
                                  str(path), "--state", str(tmp_path / "s.db"))}
    assert {name: done.returncode for name, done in runs.items()} == dict.fromkeys(runs, 2)
    for done in runs.values():
        assert "silent.after: 'soon' is not a duration" in done.stderr
        assert "Traceback" not in done.stderr


def test_usage_mistakes_are_exit_2_and_a_missing_state_file_exit_3(tmp_path: Path) -> None:
    bad_match = alertd("silence", "add", "--match", "rul=a", "--for", "1h", "--state",
                       str(tmp_path / "s.db"))
    assert bad_match.returncode == 2, bad_match.stderr
    assert bad_match.stderr.count("\n") == 1
    no_state = alertd("alerts", "--state", str(tmp_path / "none.db"))
    assert no_state.returncode == 3
    assert no_state.stderr.startswith("alertd: no state file at ")


def test_help_documents_the_exit_statuses() -> None:
    done = alertd("--help")
    assert "2 invalid rule file, case file or arguments, 3 the environment" in \
        " ".join(done.stdout.split())
