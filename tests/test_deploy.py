"""deploy/: the systemd unit is what docs/operations.md says, and systemd accepts it."""

from __future__ import annotations

import configparser
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "deploy/alertd.service"


def test_the_unit_names_user_directories_restart_reload_and_hardening() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string(UNIT.read_text())
    service = unit["Service"]
    assert service["User"] == "alertd"
    assert service["StateDirectory"] == "alertd" and service["ConfigurationDirectory"] == "alertd"
    assert service["Restart"] == "on-failure"
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert service["RestartPreventExitStatus"] == "2 3"  # the documented exit statuses
    assert service["ProtectSystem"] == "strict" and service["NoNewPrivileges"] == "yes"
    assert "--state /var/lib/alertd/state.db" in service["ExecStart"]
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    """Runs where systemd-analyze exists (it does in CI's image: .ci/run installs systemd
    when missing); the alertd binary is replaced by an executable stand-in, since verify
    checks that ExecStart's program exists."""
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None, "systemd-analyze is needed (apt-get install systemd)"
    stand_in = tmp_path / "alertd"
    stand_in.write_text("#!/bin/sh\nexit 0\n")
    stand_in.chmod(0o755)
    unit = tmp_path / "alertd.service"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/alertd", str(stand_in)))
    done = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "alertd.service" not in done.stderr, done.stderr
