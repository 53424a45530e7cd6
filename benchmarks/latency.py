"""Figure 2: latency from a frame leaving the server to its notification leaving the console
sender, at a steady message rate (1,000 readings/s by default), with ``group_wait: 0s`` and
the daemon's real SQLite state file; next to a raw trio-websocket client of the same server.

The server (``ws_server.py paced``, another process) stamps each reading with the time it
sends it (``time.monotonic()``, the same clock in every process of this machine). One
reading in ``--notify-every`` (10) carries the stamp as field ``bench`` too, positive and
negative in turn per device; one rule, ``bench above 0``, so fires or resolves on each of
them, and its title carries the value: the console channel's output, written to memory, is
timed as it is written, and latency is that time minus the stamp. (With every reading
notified, ``--notify-every 1``, the figure measures how many notifications per second the
daemon keeps up with rather than its latency.) Besides that rule the daemon has the 1,000
rules of the throughput figure (30 reach each reading). The raw client's latency is its
receipt time minus the stamp of every frame (after decoding the frame's JSON to find it).
Run:
python3 benchmarks/latency.py [--runs N] [--quick] [--rate R] [--seconds S]
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import math
import re
import sys
import tempfile
import time
from pathlib import Path

import trio
import trio_websocket

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import Budget, Row, arguments, at_most, emit, median, quantile, size  # noqa: E402
from throughput import MAX_MESSAGE, Server, daemon_config  # noqa: E402

STAMP = re.compile(r"seq (-?[0-9.e+]+)")
LATENCY_RULE = {"name": "bench-latency", "threshold": {"field": "bench", "above": 0},
                "title": "seq {value}"}


class Stamped(io.StringIO):
    """The console channel's output; each stamp printed gives one latency (ms)."""

    def __init__(self) -> None:
        super().__init__()
        self.latencies: list[float] = []

    def write(self, text: str) -> int:
        now = time.monotonic() * 1000
        self.latencies.extend(now - abs(float(found)) for found in STAMP.findall(text))
        return len(text)


async def raw(port: int, frames: int) -> list[float]:
    url = f"ws://127.0.0.1:{port}/api/v1/readings/socket?auth=k"
    latencies = []
    async with trio_websocket.open_websocket_url(
            url, max_message_size=MAX_MESSAGE, message_queue_size=64,
            receive_buffer_size=65536, disconnect_timeout=5) as ws:
        for _ in range(frames):
            message = await ws.get_message()
            now = time.monotonic() * 1000
            latencies.append(now - json.loads(message)[0]["body"]["data"]["sent"])
    return latencies


async def daemon(port: int, notices: int, rules: int, timeout: float) -> list[float]:
    from alertd import app
    from alertd.config import load_config
    from alertd.store import Store

    out = Stamped()
    with tempfile.TemporaryDirectory(prefix="alertd-bench-") as folder:
        path = Path(folder) / "rules.yaml"
        path.write_text(daemon_config("element1", port, rules, [LATENCY_RULE]))
        config = load_config(path, {})
        store = Store.open_daemon(config.state)
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(lambda task_status: app.run(config, store, out=out,
                                                                task_status=task_status))
                with trio.move_on_after(timeout):
                    while len(out.latencies) < notices:
                        await trio.sleep(0.05)
                nursery.cancel_scope.cancel()
        finally:
            store.close()
    return out.latencies


def measure(args: argparse.Namespace) -> list[Row]:
    frames = int(args.rate * (args.seconds or size(args, 10, 3, 0.5)))
    notices = len(range(0, frames, args.notify_every))
    server = Server("paced", frames, ["--rate", str(args.rate),
                                      "--notify-every", str(args.notify_every)])
    runs_raw: list[list[float]] = []
    runs_alertd: list[list[float]] = []
    try:
        for _ in Budget(args.runs, size(args, 150, 30, 5)):
            runs_raw.append(trio.run(raw, server.port, frames))
            gc.collect()
            runs_alertd.append(trio.run(daemon, server.port, notices, args.rules,
                                        frames / args.rate + 30))
            gc.collect()
    finally:
        server.close()
    rows = []
    words = (f"latency frame -> sender at {args.rate:,.0f} msg/s, {args.rules} rules, "
             f"1 in {args.notify_every} readings notified")
    for key, q, target, bound in (("p50", 0.5, "", math.inf), ("p99", 0.99, "<= 2 ms", 2.0),
                                  ("max", 1.0, "<= 10 ms", 10.0)):
        value = median(quantile(run, q) if len(run) >= notices else math.nan
                       for run in runs_alertd)
        baseline = median(quantile(run, q) for run in runs_raw)
        rows.append(Row(f"latency.{key}", f"{words}: {key}", value, "ms", baseline,
                        "raw client", target, at_most(value, bound) if target else None,
                        len(runs_alertd), details={
                            "frames": frames, "notices": [len(r) for r in runs_alertd],
                            "notify_every": args.notify_every,
                            "runs_alertd": [quantile(r, q) for r in runs_alertd],
                            "runs_raw": [quantile(r, q) for r in runs_raw]}))
    return rows


def main() -> None:
    def extra(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--rate", type=float, default=1000.0, help="readings per second")
        parser.add_argument("--seconds", type=float, default=0.0,
                            help="how long each run sends (default 10, --quick 3)")
        parser.add_argument("--rules", type=int, default=1000)
        parser.add_argument("--notify-every", type=int, default=10,
                            help="one reading in N changes an alert (1: every reading)")

    args = arguments(__doc__ or "", extra)
    emit(measure(args), args)


if __name__ == "__main__":
    main()
