"""apprise's answer about a channel URL is remembered between runs of `alertd check`, and
the cache holds neither the URL nor its secrets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

RULES = """\
sources: {cold: {type: element, api_key: k, subscribe: [readings]}}
channels:
  ops: "mailtos://alerts:Hunter2Secret@mail.example.com?to=oncall@example.com"
  bad: "tgram://not-a-token/123"
rules:
  - {name: warm, threshold: {field: t, above: 8}, notify: [ops]}
"""

PROBE = ("import sys; from alertd import cli; code = cli.main(['check', '-c', sys.argv[1]]); "
         "print('apprise loaded' if 'apprise' in sys.modules else 'apprise not loaded')")


def check(path: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    return subprocess.run([sys.executable, "-c", PROBE, str(path)], capture_output=True,
                          text=True, env=env, timeout=60)


def test_a_second_check_answers_from_the_cache_without_loading_apprise(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    first, second = check(path, tmp_path / "cache"), check(path, tmp_path / "cache")
    assert first.stdout.splitlines()[-1] == "apprise loaded"
    assert second.stdout.splitlines()[-1] == "apprise not loaded"
    assert first.stderr == second.stderr and "tgram" in second.stderr  # the same verdict
    stored = b"".join(p.read_bytes() for p in (tmp_path / "cache" / "alertd").iterdir())
    for secret in (b"Hunter2Secret", b"mail.example.com", b"not-a-token", b"oncall"):
        assert secret not in stored
    assert oct((tmp_path / "cache" / "alertd" / "key").stat().st_mode & 0o777) == "0o600"


def test_an_unwritable_cache_is_not_used(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")  # XDG_CACHE_HOME/alertd cannot be made
    done = check(path, blocked)
    assert done.stdout.splitlines()[-1] == "apprise loaded"
    assert "tgram" in done.stderr and "Traceback" not in done.stderr
