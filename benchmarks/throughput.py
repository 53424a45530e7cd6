"""Figure 1: readings per second through the whole daemon, next to a raw trio-websocket client
receiving the same frames from the same server (``ws_server.py``, in another process).

The daemon is ``alertd.app.run`` in this process with a real state file in a temporary
folder and a console channel writing to memory, with 1,000 rules of which 30 reach each
reading (``benchlib.rule_set``) and one more rule that fires on the last reading
(``bench_end``). The clock starts when the first frame was counted (``runtime.stats``) and
stops when that last reading's notification is printed: every frame before it has then
been decoded, evaluated and stored. The raw client opens its socket with the settings
alertd's clients use (``receive_buffer_size=65536``, ``message_queue_size=64``,
``max_message_size`` 16 MiB) and counts frames; its clock runs from its first frame to
its last. Both rates count what came after the first frame.

Shapes: ELEMENT one reading per frame, ELEMENT 50 readings per frame, Navixy ``iot_monitor``
events (one tracker, 8 attributes, both queues 12 deep: about 17 KB; one new message per
event) and the same with queues 2 deep (about 3 KB).

``--engine-off`` measures the same with the engine's work taken away: it evaluates only the
message that carries ``bench_end`` and returns nothing for every other one, so the figure is
what the socket, the decoder and the rest of the daemon cost alone (the most the rate could
be with an engine that cost nothing). Its rows say so and are held to no target. Run:
python3 benchmarks/throughput.py [--runs N] [--quick] [--rules N] [--shapes a,b]
[--engine-off]
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import trio
import trio_websocket

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import (  # noqa: E402
    Budget,
    Row,
    arguments,
    at_least,
    config_text,
    emit,
    filler_rules,
    median,
    python_env,
    rule_set,
    size,
)

HERE = Path(__file__).resolve().parent
MAX_MESSAGE = 16 * 1024 * 1024
TRACKER = 21080
KINDS, ENTITIES = 20, 100
SHAPES = {  # name: (server shape, readings per frame, server options, words)
    "element1": ("element1", 1, [], "ELEMENT, one reading per frame"),
    "element50": ("element50", 50, [], "ELEMENT, 50 readings per frame"),
    "navixy": ("navixy", 1, [], "Navixy iot_monitor, 12-deep queues (~17 KB)"),
    "navixy3k": ("navixy", 1, ["--depth", "2"], "Navixy iot_monitor, 2-deep queues (~3 KB)"),
}
SUBSCRIBE = json.dumps({"action": "subscribe", "hash": "0" * 32, "requests": [
    {"type": "iot_monitor", "target": {"type": "selected", "tracker_ids": [TRACKER]},
     "rate_limit": "5s"}]})


class Server:
    """``ws_server.py`` in a process of its own."""

    def __init__(self, shape: str, frames: int, options: Sequence[str] = ("--sentinel",)
                 ) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "ws_server.py"), shape, str(frames),
             "--entities", str(ENTITIES), "--kinds", str(KINDS),
             "--kind", str((TRACKER - 21000) % KINDS), *options],
            stdout=subprocess.PIPE, text=True, env=python_env())
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())

    def close(self) -> None:
        self.process.kill()
        self.process.wait()


END_FIELD = "bench_end"  # the field of the last reading (``ws_server.py --sentinel``)
END_RULE = {"name": "bench-end", "threshold": {"field": END_FIELD, "above": 0}}


def daemon_config(shape: str, port: int, rules: int,
                  extra: Sequence[dict[str, Any]] = (END_RULE,),
                  changed: Callable[[int, dict[str, Any]], dict[str, Any]] | None = None
                  ) -> str:
    """The rule file: one source of the shape's kind, ``rules`` rules (30 of 1,000 reach a
    reading; with fewer than 1,000, the first ``rules`` of them; with more, filler rules
    that reach nothing are added; each rule and its number through ``changed``, if given)
    and the end-of-run rule."""
    navixy = shape.startswith("navixy")
    entities = [str(21000 + i) for i in range(ENTITIES)] if navixy else \
        [f"dev{i}" for i in range(ENTITIES)]
    chosen = rule_set(min(rules, 1000), kinds=KINDS, entities=entities)
    if changed is not None:
        chosen = [changed(n, rule) for n, rule in enumerate(chosen)]
    if rules > 1000:
        chosen += filler_rules(rules - 1000)
    chosen.extend(extra)
    if navixy:
        source: dict[str, Any] = {"type": "navixy", "hash": "0" * 32, "trackers": [TRACKER],
                                  "url": f"ws://127.0.0.1:{port}/v2/event/subscription"}
    else:
        source = {"type": "element", "url": f"ws://127.0.0.1:{port}/api/v1", "api_key": "k",
                  "subscribe": ["readings"]}
    return config_text({"bench": source}, {"screen": "console://"}, chosen,
                       {"notify": ["screen"], "group_wait": "0s", "repeat": "never"})


class Printed(io.StringIO):
    """The console channel's output; notes when the end-of-run notice is printed."""

    def __init__(self) -> None:
        super().__init__()
        self.ended: float | None = None

    def write(self, text: str) -> int:
        if self.ended is None and "bench-end" in text:
            self.ended = time.perf_counter()
        return super().write(text)


async def raw(shape: str, port: int, frames: int) -> float:
    """Frames per second received by a bare trio-websocket client."""
    navixy = shape.startswith("navixy")
    url = f"ws://127.0.0.1:{port}/v2/event/subscription" if navixy else \
        f"ws://127.0.0.1:{port}/api/v1/readings/socket?auth=k"
    async with trio_websocket.open_websocket_url(
            url, max_message_size=MAX_MESSAGE, message_queue_size=64,
            receive_buffer_size=65536, disconnect_timeout=5) as ws:
        if navixy:
            await ws.get_message()  # the Atmosphere handshake
            await ws.send_message(SUBSCRIBE)
            await ws.get_message()  # the subscribe response
        await ws.get_message()
        started = time.perf_counter()
        for _ in range(frames - 1):
            await ws.get_message()
        return (frames - 1) / (time.perf_counter() - started)


@contextmanager
def engine_off() -> Iterator[None]:
    """``Engine.receive`` evaluates only the end-of-run message while this lasts."""
    from alertd.engine.engine import Engine

    receive = Engine.receive

    def end_only(self: Engine, event: Any, now: float) -> Any:
        fields = getattr(event, "fields", None)
        return receive(self, event, now) if fields and END_FIELD in fields else []

    Engine.receive = end_only  # type: ignore[method-assign]
    try:
        yield
    finally:
        Engine.receive = receive  # type: ignore[method-assign]


async def daemon(shape: str, port: int, rules: int, readings: int, timeout: float) -> float:
    """Readings (Navixy: messages, one per event) per second through ``alertd.app.run``;
    NaN when the last one is not evaluated within ``timeout`` seconds."""
    from alertd import app
    from alertd.config import load_config
    from alertd.store import Store

    out = Printed()
    with tempfile.TemporaryDirectory(prefix="alertd-bench-") as folder:
        path = Path(folder) / "rules.yaml"
        path.write_text(daemon_config(shape, port, rules))
        config = load_config(path, {})
        store = Store.open_daemon(config.state)
        try:
            async with trio.open_nursery() as nursery:
                runtime = await nursery.start(
                    lambda task_status: app.run(config, store, out=out,
                                                task_status=task_status))
                counted = runtime.stats.message_count
                first = 0
                with trio.move_on_after(timeout):
                    while counted["bench"] == 0:
                        await trio.sleep(0.001)
                    started, first = time.perf_counter(), counted["bench"]
                    while out.ended is None:
                        await trio.sleep(0.05)
                nursery.cancel_scope.cancel()
        finally:
            store.close()
    if out.ended is None or first == 0:
        return math.nan
    return (readings - first) / (out.ended - started)


def measure(args: argparse.Namespace, shapes: Sequence[str]) -> list[Row]:
    rows = []
    for name in shapes:
        server_shape, per_frame, options, words = SHAPES[name]
        frames = {"element1": size(args, 20_000, 4_000, 300),
                  "element50": size(args, 1_000, 200, 10),
                  "navixy": size(args, 4_000, 1_000, 100),
                  "navixy3k": size(args, 8_000, 2_000, 200)}[name]
        server = Server(server_shape, frames, ["--sentinel", *options])
        raws: list[float] = []
        alertds: list[float] = []
        try:
            for _ in Budget(args.runs, size(args, 90, 15, 5)):
                raws.append(trio.run(raw, name, server.port, frames))
                gc.collect()
                depth = 2 if name == "navixy3k" else 12
                readings = frames * per_frame + (depth - 1 if server_shape == "navixy" else 0)
                with engine_off() if args.engine_off else nullcontext():
                    alertds.append(trio.run(daemon, name, server.port, args.rules, readings,
                                            size(args, 300, 120, 60)))
                gc.collect()
        finally:
            server.close()
        raw_rate, alertd_rate = median(raws) * per_frame, median(alertds)
        unit = "events/s" if server_shape == "navixy" else "readings/s"
        details = {"frames": frames, "rules": args.rules, "raw_frames_per_s": median(raws),
                   "runs_raw": raws, "runs_alertd": alertds}
        if args.engine_off:
            rows.append(Row(f"throughput.{name}.engine_off",
                            f"{words} ({args.rules} rules), engine off", alertd_rate, unit,
                            raw_rate, "raw client", "", None, len(alertds), details=details))
        elif name == "element50":
            rows.append(Row(f"throughput.{name}", f"{words} ({args.rules} rules)", alertd_rate,
                            unit, raw_rate, "raw client", ">= 150,000 readings/s",
                            at_least(alertd_rate, 150_000), len(alertds), details=details))
        else:
            rows.append(Row(f"throughput.{name}", f"{words} ({args.rules} rules)", alertd_rate,
                            unit, raw_rate, "raw client", ">= 0.5 x raw",
                            at_least(alertd_rate / raw_rate, 0.5), len(alertds),
                            details=details))
    return rows


def main() -> None:
    def extra(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--rules", type=int, default=1000,
                            help="rules in the daemon (30 of the first 1,000 reach a reading)")
        parser.add_argument("--shapes", default=",".join(SHAPES),
                            help=f"comma-separated, of {', '.join(SHAPES)}")
        parser.add_argument("--engine-off", action="store_true",
                            help="the engine evaluates only the end-of-run reading: what the "
                                 "socket, the decoder and the daemon cost alone")

    args = arguments(__doc__ or "", extra)
    emit(measure(args, args.shapes.split(",")), args)


if __name__ == "__main__":
    main()
