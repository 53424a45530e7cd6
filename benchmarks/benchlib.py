"""What the benchmark scripts share: the rule sets, the result rows, medians, RSS, the table.

Every script measures one or more *figures*. A figure is a value next to its baseline (the
same thing done without alertd, or by a smaller alertd), their ratio, and the target of
issue 15. Each script prints its rows as a table, or, with ``--json``, as one JSON line
that ``run_all.py`` collects (each script runs in a process of its own there, so no figure
inherits another's heap).

The rule sets (``rule_set``): ``total`` rules, half of them open (every entity) and half
naming one entity each. Entities come in ``kinds`` (device types), each kind with its own
five fields; an open rule reads one field of one kind, a named rule one field of its
entity's kind. With 1,000 rules, 20 kinds and 100 entities, a reading of an entity reaches
25 open rules (its kind's) and 5 named ones (its own): 30 of 1,000. Conditions are
thresholds, ``change`` and (on named rules) ``missing``, none of which the benchmark's
readings ever meet, so the figures measure evaluation, not notification. Filler rules
(``filler_rules``) reach nothing a benchmark sends: open ones read fields no reading
carries, named ones name entities that never send.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FIELDS = ("temp", "hum", "bat", "co2", "press")
NORMAL = {"temp": 21.0, "hum": 45.0, "bat": 3.6, "co2": 600.0, "press": 1013.0}
MB = 1_000_000


def field_name(kind: int, name: str) -> str:
    return f"k{kind}_{name}"


def kind_fields(kind: int, wobble: float = 0.0) -> dict[str, float]:
    """A reading of a device of ``kind``: its five fields, near their normal values."""
    return {field_name(kind, name): round(value + wobble, 3) for name, value in NORMAL.items()}


def _condition(number: int, field: str, named: bool) -> dict[str, Any]:
    base = NORMAL[field.split("_", 1)[1]]
    kind = number % (5 if named else 4)
    if kind in (0, 1):
        return {"threshold": {"field": field, "above": base * 10 + 100,
                              "clear_below": base * 10 + 90}}
    if kind == 2:
        return {"threshold": {"field": field, "below": -base - 100}}
    if kind == 3:
        return {"change": {"field": field, "drop" if number % 2 else "rise": base + 100,
                           "within": "10m"}}
    return {"missing": {"field": field, "nulls": 3}}


def rule_set(total: int, *, kinds: int, entities: Sequence[str]) -> list[dict[str, Any]]:
    """``total`` rules: half open, half naming one entity each (see the module docstring).
    ``entities[i]`` is of kind ``i % kinds``."""
    named = total // 2
    rules: list[dict[str, Any]] = []
    for j in range(total - named):
        kind = j % kinds
        field = field_name(kind, FIELDS[(j // kinds) % len(FIELDS)])
        rule = {"name": f"open-{j}", **_condition(j // kinds // len(FIELDS), field, False)}
        if j % 7 == 0:
            rule["for"] = "2m"
        rules.append(rule)
    for j in range(named):
        index = j % len(entities)
        field = field_name(index % kinds, FIELDS[(j // len(entities)) % len(FIELDS)])
        rules.append({"name": f"named-{j}", "entities": [entities[index]],
                      **_condition(j // len(entities), field, True)})
    return rules


def filler_rules(count: int, start: int = 0) -> list[dict[str, Any]]:
    """``count`` rules that reach nothing a benchmark sends: open ones read fields no reading
    carries, named ones (every other one) name an entity that never sends."""
    rules: list[dict[str, Any]] = []
    for j in range(start, start + count):
        if j % 2:
            rules.append({"name": f"filler-{j}", "entities": [f"elsewhere-{j}"],
                          "threshold": {"field": field_name(0, FIELDS[j % 5]), "above": 1e9}})
        elif j % 6:
            rules.append({"name": f"filler-{j}",
                          "threshold": {"field": f"unused_{j % 997}", "above": 100}})
        else:
            rules.append({"name": f"filler-{j}", "change": {"field": f"unused_{j % 997}",
                                                           "rise": 100, "within": "10m"}})
    return rules


def config_text(sources: dict[str, Any], channels: dict[str, Any], rules: Iterable[Any],
                defaults: dict[str, Any] | None = None, state: str = "state.db") -> str:
    """A rule file (YAML's JSON subset: fast to write, and what ``alertd check`` reads)."""
    lines = [f"state: {json.dumps(state)}", f"sources: {json.dumps(sources)}",
             f"channels: {json.dumps(channels)}"]
    if defaults:
        lines.append(f"defaults: {json.dumps(defaults)}")
    lines.append("rules:")
    lines.extend(f"  - {json.dumps(rule)}" for rule in rules)
    return "\n".join(lines) + "\n"


# ---- measuring ---------------------------------------------------------------------------

def rss_bytes() -> int:
    """This process's resident set size now (VmRSS)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def quantile(values: Sequence[float], q: float) -> float:
    """The nearest-rank quantile (q=1: the maximum)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 1))))
    return ordered[rank - 1]


def median(values: Iterable[float]) -> float:
    found = [v for v in values if v == v]
    return statistics.median(found) if found else float("nan")


@dataclass
class Row:
    """One figure: ``value`` next to ``baseline``, with the issue's target."""

    id: str  # stable key: run_all and the smoke test look rows up by it
    figure: str  # words, with the sizes measured
    value: float
    unit: str
    baseline: float | None = None
    baseline_text: str = ""  # what the baseline is
    target: str = ""  # e.g. ">= 0.5 x raw", "<= 2 ms"
    met: bool | None = None
    runs: int = 1
    note: str = ""
    ratio: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.ratio is None and self.baseline:
            self.ratio = self.value / self.baseline


def at_least(value: float, bound: float) -> bool | None:
    return None if value != value else value >= bound


def at_most(value: float, bound: float) -> bool | None:
    return None if value != value else value <= bound


class Budget:
    """Runs of one figure: ``runs`` of them, but no new one once ``seconds`` have passed
    (always at least one). The table says how many were done."""

    def __init__(self, runs: int, seconds: float) -> None:
        self.runs = runs
        self.seconds = seconds
        self.started = time.monotonic()
        self.done = 0

    def __iter__(self) -> Budget:
        return self

    def __next__(self) -> int:
        if self.done >= self.runs or (self.done and
                                      time.monotonic() - self.started > self.seconds):
            raise StopIteration
        self.done += 1
        return self.done - 1


def arguments(description: str, extra: Callable[[argparse.ArgumentParser], None] | None = None
              ) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--runs", type=int, default=5, help="runs per figure (median taken)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, a short run")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes (seconds): checks that the script works, not speed")
    parser.add_argument("--json", action="store_true", help="print the rows as one JSON line")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    if extra is not None:
        extra(parser)
    return parser.parse_args()


def size(args: argparse.Namespace, full: int, quick: int, smoke: int) -> int:
    return smoke if args.smoke else quick if args.quick else full


def emit(rows: Sequence[Row], args: argparse.Namespace) -> None:
    if args.json:
        print("BENCH-ROWS " + json.dumps([asdict(row) for row in rows]), flush=True)
    else:
        print(table(rows, markdown=args.markdown), flush=True)


def rows_from(output: str) -> list[Row]:
    for line in output.splitlines():
        if line.startswith("BENCH-ROWS "):
            return [Row(**item) for item in json.loads(line[len("BENCH-ROWS "):])]
    return []


def number(value: float | None, unit: str = "") -> str:
    if value is None or value != value:
        return "-"
    if unit in ("s", "ms", "µs") or abs(value) < 10:
        text = f"{value:.3g}" if abs(value) < 100 else f"{value:,.0f}"
    else:
        text = f"{value:,.0f}"
    return f"{text} {unit}".strip()


def table(rows: Sequence[Row], markdown: bool = False) -> str:
    header = ("figure", "value", "baseline", "ratio", "target", "met", "runs")
    lines = []
    for row in rows:
        baseline = number(row.baseline, row.unit) if row.baseline is not None else "-"
        if row.baseline_text:
            baseline = f"{baseline} ({row.baseline_text})"
        met = "-" if row.met is None else "yes" if row.met else "NO"
        value = number(row.value, row.unit) + (f" [{row.note}]" if row.note else "")
        lines.append((row.figure, value, baseline,
                      "-" if row.ratio is None else f"{row.ratio:.3g}", row.target or "-", met,
                      str(row.runs)))
    if markdown:
        out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(cell.replace("|", "/") for cell in line) + " |"
                for line in lines]
        return "\n".join(out)
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h)
              for i, h in enumerate(header)]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    out += ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines]
    return "\n".join(out)


def python_env() -> dict[str, str]:
    """The environment for child processes: this checkout's alertd first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    return env


def run_child(args: list[str], timeout: float) -> tuple[str | None, float]:
    """Run ``python ARGS`` and return (stdout, seconds); stdout None when it overran
    ``timeout`` (it is killed) or failed (its stderr is passed on)."""
    started = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, *args], capture_output=True, text=True,
                              timeout=timeout, env=python_env(), check=False)
    except subprocess.TimeoutExpired:
        return None, time.perf_counter() - started
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-3000:])
        return None, elapsed
    return done.stdout, elapsed
