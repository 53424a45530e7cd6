"""The package stays `mypy --strict` clean (STYLE.md convention 12)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_package_is_strictly_typed() -> None:
    done = subprocess.run([sys.executable, "-m", "mypy", "--strict", "alertd"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
