"""Every figure of issue 15 in one run, side by side with its baseline, its target and
whether it is met: ``python3 benchmarks/run_all.py [--quick] [--runs N] [--markdown]``.

Each script runs in a process of its own (``--json``), one after the other, so no figure
inherits another's heap or competes with it for the two cores. ``--quick`` uses smaller
sizes (about 3 minutes once alertd meets its targets); ``--smoke`` tiny ones (seconds, for
the test that checks every figure is printed); ``--markdown`` prints the table for
docs/performance.md; ``--save FILE`` keeps every row, with its runs, as JSON, and ``--from
FILE`` prints the table of such a file again (``--markdown`` too) without measuring.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import Row, python_env, rows_from, table  # noqa: E402

HERE = Path(__file__).resolve().parent
SCRIPTS = ("throughput", "latency", "memory", "rules_build", "outbox")
ORDER = ("throughput", "latency", "memory", "build.", "build_rss", "per_message", "check",
         "load", "outbox")


def machine() -> str:
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            model = next((line.split(":", 1)[1].strip() for line in info
                          if line.startswith("model name")), model)
    except OSError:
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{os.cpu_count()} CPUs ({model}), Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}; load average at start {load}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="runs per figure (median taken)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--save", type=Path, help="write the rows as JSON to this file")
    parser.add_argument("--only", default=",".join(SCRIPTS),
                        help=f"comma-separated, of {', '.join(SCRIPTS)}")
    parser.add_argument("--from", dest="saved", type=Path,
                        help="print the table of a run saved with --save; measure nothing")
    args = parser.parse_args()
    if args.saved:
        found = json.loads(args.saved.read_text())
        print(f"# {found['machine']}")
        rows = [Row(**row) for row in found["rows"]]
        print(table(rows, markdown=args.markdown))
        return
    flags = ["--json", "--runs", str(args.runs), *(["--quick"] if args.quick else []),
             *(["--smoke"] if args.smoke else [])]
    header = machine()
    print(f"# {header}", flush=True)
    rows: list[Row] = []
    failed = []
    started = time.monotonic()
    for name in args.only.split(","):
        began = time.monotonic()
        done = subprocess.run([sys.executable, str(HERE / f"{name}.py"), *flags],
                              stdout=subprocess.PIPE, text=True, env=python_env(), check=False)
        found = rows_from(done.stdout)
        if done.returncode != 0 or not found:
            failed.append(name)
        rows.extend(found)
        print(f"# {name}: {len(found)} figures in {time.monotonic() - began:.0f} s",
              flush=True)
    rows.sort(key=lambda row: next((i for i, prefix in enumerate(ORDER)
                                    if row.id.startswith(prefix)), len(ORDER)))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"# all figures in {time.monotonic() - started:.0f} s "
          f"({'quick' if args.quick else 'smoke' if args.smoke else 'full'} sizes, "
          f"median of up to {args.runs} runs); load average at the end {load}")
    print(table(rows, markdown=args.markdown))
    met = [row for row in rows if row.met is not None]
    print(f"\ntargets met: {sum(1 for row in met if row.met)} of {len(met)}")
    if args.save:
        args.save.write_text(json.dumps({"machine": header, "rows": [asdict(r) for r in rows]},
                                        indent=1))
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
