"""The benchmark scripts of issue 15 run, end to end, and print every figure.

``run_all.py --smoke`` measures with tiny sizes (seconds): the daemon, the raw clients, the
WebSocket and HTTP servers in other processes, the child processes per measurement. Nothing
here asserts a timing: only that every figure was measured (a number, not NaN) and printed,
with its baseline, in the plain and the markdown table."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN_ALL = ROOT / "benchmarks" / "run_all.py"
FIGURES = {  # row id -> words its figure starts with
    "throughput.element1": "ELEMENT, one reading per frame",
    "throughput.element50": "ELEMENT, 50 readings per frame",
    "throughput.navixy": "Navixy iot_monitor, 12-deep queues",
    "throughput.navixy3k": "Navixy iot_monitor, 2-deep queues",
    "latency.p50": "latency frame -> sender",
    "latency.p99": "latency frame -> sender",
    "latency.max": "latency frame -> sender",
    "memory.small": "memory, 200 entities",
    "memory.large": "memory, 1,000 entities",
    "build.0": "engine build, 10 rules",
    "build.1": "engine build, 50 rules",
    "build.2": "engine build, 200 rules",
    "build_rss.0": "memory after engine build, 10 rules",
    "build_rss.2": "memory after engine build, 200 rules",
    "per_message.2": "engine cost per message, 200 rules",
    "check": "alertd check -c FILE, 1,000 rules",
    "check.0": "alertd check -c FILE, 10 rules of the build figure",
    "check.2": "alertd check -c FILE, 200 rules of the build figure",
    "outbox": "notifications through the outbox",
}


def test_run_all_prints_every_figure(tmp_path: Path) -> None:
    saved = tmp_path / "run.json"
    done = subprocess.run([sys.executable, str(RUN_ALL), "--quick", "--runs", "1", "--smoke",
                           "--save", str(saved)], capture_output=True, text=True, timeout=600,
                          cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {row["id"]: row for row in json.loads(saved.read_text())["rows"]}
    for key, words in FIGURES.items():
        assert key in rows, f"{key} not measured: {done.stdout}"
        row = rows[key]
        assert row["figure"].startswith(words)
        assert math.isfinite(row["value"]), f"{key}: no value ({row})"
        assert row["baseline"] is not None and math.isfinite(row["baseline"]), row
        assert words in done.stdout
    assert "CPUs" in done.stdout.splitlines()[0]  # the machine is named
    assert "targets met:" in done.stdout

    again = subprocess.run([sys.executable, str(RUN_ALL), "--from", str(saved), "--markdown"],
                           capture_output=True, text=True, timeout=60, check=True)
    table = [line for line in again.stdout.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| figure | value | baseline | ratio | target | met")
    assert len(table) == 1 + len(rows)
    for words in FIGURES.values():
        assert any(line.startswith(f"| {words}") for line in table), words


def test_throughput_with_the_engine_off_measures_the_rest_of_the_daemon() -> None:
    """``--engine-off``: the figure with the engine evaluating only the end-of-run reading,
    labelled as such and held to no target (the end-of-run notice still stops the clock,
    so the run finishes with a number)."""
    script = ROOT / "benchmarks" / "throughput.py"
    done = subprocess.run([sys.executable, str(script), "--smoke", "--runs", "1",
                           "--shapes", "element1,navixy", "--engine-off", "--json"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    line = next(line for line in done.stdout.splitlines() if line.startswith("BENCH-ROWS "))
    rows = {row["id"]: row for row in json.loads(line.removeprefix("BENCH-ROWS "))}
    assert set(rows) == {"throughput.element1.engine_off", "throughput.navixy.engine_off"}
    for row in rows.values():
        assert row["figure"].endswith("engine off")
        assert math.isfinite(row["value"]) and math.isfinite(row["baseline"]), row
        assert row["target"] == "" and row["met"] is None
