"""Figures 4 and 5: what the number of rules costs. For 10, 1,000 and 10,000 rules (half of
them naming one entity each), each in a fresh process (``--child N``): the time to load the
rule file, the time to build the engine (``Engine(rules, sources, now)``) and the resident
memory after it (VmRSS; baseline: before the engine was built), then the engine's cost per
message, fed directly (pure, no sockets) to 100 devices: the messages are timed in five
parts, and the fastest part of the fastest run counts: the machine's slow stretches (which
made one run's cost up to 1.7 times another's on the 2-core VM, for the same instructions)
are not taken for the rules' cost. The rule counts run in turn, run after run.

The rules are the same 10 in every set (5 open rules on the devices' fields, 5 naming a
device each: all 10 reach the devices' readings), plus filler rules that reach none of
them (open ones on fields the readings lack, named ones on entities that never send), so
that the cost per message can be compared between 10 and 10,000 rules: a rule that does not
apply to a message should cost it nothing. Also ``alertd check -c FILE`` (wall time of the
command, next to ``python -c pass``) on the 1,000 rules of the throughput figure, the one
with a target, and on each rule set above. Run:
python3 benchmarks/rules_build.py [--runs N] [--quick] [--rules 10,1000,10000]
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import (  # noqa: E402
    MB,
    Budget,
    Row,
    arguments,
    at_most,
    config_text,
    emit,
    filler_rules,
    kind_fields,
    median,
    rss_bytes,
    rule_set,
    run_child,
    size,
)

DEVICES = 100
PASSES = 5  # parts of the messages timed apart for the cost per message (the fastest counts)
SOURCES = {"iot": {"type": "element", "url": "ws://127.0.0.1:9/api/v1", "api_key": "k",
                   "subscribe": ["readings"]}}


def rules_for(total: int) -> list[dict[str, Any]]:
    base = rule_set(min(total, 10), kinds=1, entities=[f"dev{i}" for i in range(5)])
    return base + filler_rules(max(0, total - 10))


def rule_file(folder: Path, total: int) -> Path:
    """The rule file of the set of ``total`` rules (``rules_for``), written in ``folder``."""
    path = folder / f"rules-{total}.yaml"
    path.write_text(config_text(SOURCES, {"screen": "console://"}, rules_for(total),
                                {"notify": ["screen"]}))
    return path


def child(total: int, messages: int) -> None:
    from alertd.config import load_config
    from alertd.engine import Engine
    from alertd.model import Message

    with tempfile.TemporaryDirectory(prefix="alertd-bench-") as folder:
        path = rule_file(Path(folder), total)
        started = time.perf_counter()
        config = load_config(path, {})
        loaded = time.perf_counter() - started
    gc.collect()
    before = rss_bytes()
    now = time.time()
    started = time.perf_counter()
    engine = Engine(config.rules, config.sources, now)
    built = time.perf_counter() - started
    after = rss_bytes()
    start = now - messages * 0.6 - 3600
    for d in range(DEVICES):  # every device known, histories begun
        engine.receive(Message("iot", f"dev{d}", start, kind_fields(0)), now)
    batch = [Message("iot", f"dev{n % DEVICES}", start + 0.6 * (n + 1),
                     kind_fields(0, (n % 7) * 0.01)) for n in range(messages)]
    passes = []  # the messages in PASSES parts, each timed; the fastest part is the cost
    part = max(1, messages // PASSES)
    for first in range(0, messages, part):
        chunk = batch[first:first + part]
        started = time.perf_counter()
        for message in chunk:
            engine.receive(message, now)
        passes.append((time.perf_counter() - started) / len(chunk))
    print(json.dumps({"rules": len(config.rules), "load": loaded, "build": built,
                      "before": before, "after": after, "per_message": min(passes),
                      "passes": passes, "alerts": len(engine.alerts())}))


def check_file(folder: Path) -> Path:
    """The throughput figure's 1,000 rules, with an apprise channel beside the console."""
    from throughput import ENTITIES, KINDS

    path = folder / "rules.yaml"
    path.write_text(config_text(SOURCES, {"screen": "console://",
                                          "hook": "json://127.0.0.1:9/hook"},
                                rule_set(1000, kinds=KINDS,
                                         entities=[f"dev{i}" for i in range(ENTITIES)]),
                                {"notify": ["screen", "hook"]}))
    return path


def measure(args: argparse.Namespace) -> list[Row]:
    counts = [int(c) for c in args.rules.split(",")] if args.rules else \
        [10, size(args, 1000, 1000, 50), size(args, 10_000, 10_000, 200)]
    messages = size(args, 20_000, 5_000, 500)
    timeout = size(args, 300, 60, 60)
    found: dict[int, list[dict[str, Any]]] = {total: [] for total in counts}
    timed_out: dict[int, float] = {}
    # the counts in turn, run after run: a slow stretch of the machine (seconds long on the
    # 2-core VM) then falls on all of them, not on one count's runs
    for _ in Budget(args.runs, size(args, 90, 15, 5) * len(counts)):
        for total in counts:
            if total in timed_out:
                continue
            output, elapsed = run_child([__file__, "--child", str(total), str(messages)],
                                        timeout)
            if output is None:
                timed_out[total] = elapsed
            else:
                found[total].append(json.loads(output))
    rows = []
    smallest = counts[0]

    def med(total: int, key: str) -> float:
        return median(r[key] for r in found[total]) if found[total] else float("nan")

    def fastest(total: int, key: str) -> float:
        return min(r[key] for r in found[total]) if found[total] else float("nan")

    def stopped(total: int) -> str:
        return f"stopped after {timed_out[total]:.0f} s" if total in timed_out else ""

    def met(total: int, value: float, bound: float) -> bool | None:
        if total != counts[-1]:
            return None
        return False if total in timed_out else at_most(value, bound)

    for number, total in enumerate(counts):
        build = med(total, "build")
        rows.append(Row(f"build.{number}", f"engine build, {total:,} rules", build, "s",
                        med(smallest, "build"), f"{smallest} rules",
                        "<= 2 s" if total == counts[-1] else "", met(total, build, 2.0),
                        len(found[total]), stopped(total), details={"runs": found[total]}))
    for number, total in enumerate(counts):
        after = med(total, "after") / MB
        rows.append(Row(f"build_rss.{number}", f"memory after engine build, {total:,} rules",
                        after, "MB", med(total, "before") / MB, "before the engine",
                        "<= 300 MB" if total == counts[-1] else "", met(total, after, 300),
                        len(found[total]), stopped(total)))
    for number, total in enumerate(counts):
        rows.append(Row(f"load.{number}", f"rule file load, {total:,} rules",
                        med(total, "load"), "s", med(smallest, "load"), f"{smallest} rules",
                        runs=len(found[total]), note=stopped(total)))
    for number, total in enumerate(counts):
        if number == 0:
            continue
        # the least of the runs: a cost the machine can only make larger
        cost, base = fastest(total, "per_message") * 1e6, fastest(smallest, "per_message") * 1e6
        rows.append(Row(f"per_message.{number}",
                        f"engine cost per message, {total:,} rules ({min(total, 10)} reach it)",
                        cost, "µs", base, f"{smallest} rules",
                        "<= 1.5 x 10 rules" if total == counts[-1] else "",
                        met(total, cost / base, 1.5), len(found[total]), stopped(total)))
    with tempfile.TemporaryDirectory(prefix="alertd-bench-") as folder:
        rows.append(check_row(args, check_file(Path(folder)), "check",
                              "alertd check -c FILE, 1,000 rules", True))
        for number, total in enumerate(counts):  # the build figure's rules, each count
            rows.append(check_row(args, rule_file(Path(folder), total), f"check.{number}",
                                  f"alertd check -c FILE, {total:,} rules of the build figure"))
    return rows


def check_row(args: argparse.Namespace, path: Path, key: str, words: str,
              target: bool = False) -> Row:
    """The wall time of ``alertd check -c PATH`` (median), next to ``python -c pass``."""
    checks, bare = [], []
    for _ in Budget(args.runs, size(args, 30, 10, 5)):
        output, elapsed = run_child(["-m", "alertd", "check", "-c", str(path)], 60)
        checks.append(elapsed if output is not None else float("nan"))
        _, elapsed = run_child(["-c", "pass"], 60)
        bare.append(elapsed)
    value = median(checks)
    return Row(key, words, value, "s", median(bare), "python -c pass",
               "<= 0.3 s" if target else "", at_most(value, 0.3) if target else None,
               len(checks), details={"runs": checks, "runs_bare": bare})


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(int(sys.argv[2]), int(sys.argv[3]))
        return

    def extra(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--rules", default="",
                            help="comma-separated rule counts (default 10,1000,10000)")

    args = arguments(__doc__ or "", extra)
    emit(measure(args), args)


if __name__ == "__main__":
    main()
