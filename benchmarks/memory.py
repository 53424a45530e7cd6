"""Figure 3: resident memory of the engine holding many entities, each with full histories.

Each measurement runs in a fresh process (``--child N``): it loads ten rules (a ``missing``
and a ``change`` rule on each of five fields), notes its resident set size (VmRSS), builds
the engine and feeds it 12 readings of every one of N entities, each reading carrying the
five fields, a minute apart per entity (so the 10-minute ``change`` windows hold all 12),
then notes VmRSS again (after a full collection). The engine is fed directly, pure: no
sockets, no state file. The baseline is the RSS before the engine was built (the
interpreter, alertd and the rules). A child that overruns its time limit (60 s with
``--quick``, 600 s otherwise) is stopped and the figure shown as not met. Run:
python3 benchmarks/memory.py [--runs N] [--quick] [--entities 10000,100000]
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import (  # noqa: E402
    FIELDS,
    MB,
    Budget,
    Row,
    arguments,
    at_most,
    config_text,
    emit,
    median,
    rss_bytes,
    run_child,
    size,
)

READINGS = 12  # per entity: the depth of a history
SPACING = 60.0  # seconds between one entity's readings


def rules() -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for name in FIELDS:
        out.append({"name": f"gap-{name}", "missing": {"field": name, "nulls": 3}})
        out.append({"name": f"drop-{name}", "change": {"field": name, "drop": 1000,
                                                        "within": "10m"}})
    return out


def child(entities: int) -> None:
    from alertd.config import load_config
    from alertd.engine import Engine
    from alertd.model import Message

    with tempfile.TemporaryDirectory(prefix="alertd-bench-") as folder:
        path = Path(folder) / "rules.yaml"
        path.write_text(config_text({"iot": {"type": "element", "api_key": "k",
                                             "subscribe": ["readings"]}},
                                    {"screen": "console://"}, rules(),
                                    {"notify": ["screen"]}))
        config = load_config(path, {})
    gc.collect()
    before = rss_bytes()
    start = time.time() - READINGS * SPACING - 3600
    started = time.perf_counter()
    engine = Engine(config.rules, config.sources, start)
    for k in range(READINGS):
        for e in range(entities):
            at = start + k * SPACING + e * (SPACING / entities)
            fields = {name: 20.0 + e % 10 + k * 0.25 + i for i, name in enumerate(FIELDS)}
            engine.receive(Message("iot", f"dev{e}", at, fields), at)
    seconds = time.perf_counter() - started
    gc.collect()
    after = rss_bytes()
    print(json.dumps({"before": before, "after": after, "seconds": seconds,
                      "messages": entities * READINGS, "alerts": len(engine.alerts())}))


def measure(args: argparse.Namespace) -> list[Row]:
    rows = []
    counts = [int(c) for c in args.entities.split(",")] if args.entities else \
        [size(args, 10_000, 10_000, 200), size(args, 100_000, 100_000, 1_000)]
    for number, entities in enumerate(counts):
        results = []
        stopped = ""
        for _ in Budget(args.runs, size(args, 60, 10, 5) if entities > 20_000
                        else size(args, 30, 5, 5)):
            output, elapsed = run_child([__file__, "--child", str(entities)],
                                        timeout=size(args, 600, 60, 60))
            if output is None:
                stopped = f"stopped after {elapsed:.0f} s"
                break
            results.append(json.loads(output))
        after = median(r["after"] for r in results) / MB if results else float("nan")
        before = median(r["before"] for r in results) / MB if results else float("nan")
        large = number == len(counts) - 1
        per_entity = (after - before) * MB / entities
        rows.append(Row(f"memory.{'large' if large else 'small'}",
                        f"memory, {entities:,} entities x 5 fields, full histories", after, "MB",
                        before, "before the engine", "<= 300 MB" if large else "",
                        (at_most(after, 300) if not stopped else False) if large else None,
                        len(results), note=stopped or f"{per_entity:,.0f} B/entity", details={
                            "entities": entities, "runs": results,
                            "feed_seconds": median(r["seconds"] for r in results)
                            if results else None}))
    return rows


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(int(sys.argv[2]))
        return

    def extra(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--entities", default="",
                            help="comma-separated entity counts (default 10000,100000)")

    args = arguments(__doc__ or "", extra)
    emit(measure(args), args)


if __name__ == "__main__":
    main()
