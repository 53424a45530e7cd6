"""The whole daemon on a flood: N one-reading ELEMENT frames from 2000 rooms, sent as fast as
a server in another process can send them, received over a real WebSocket, decoded,
evaluated against three rules, stored, planned and printed to a console channel. Twenty
rooms swing across the threshold, so about 1% of the readings change an alert.

Prints messages per second through the daemon, the event-to-dispatch latency its /metrics
histogram records (a frame's arrival to its notifications handed to the planner), and how
many messages came out. Run: python3 benchmarks/daemon_pipeline.py [READINGS]
"""

from __future__ import annotations

import io
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import trio

from alertd import app
from alertd.config import load_config
from alertd.metrics import Histogram
from alertd.store import Store

SERVER = r'''
import json, sys, trio
from trio_websocket import ConnectionClosed, serve_websocket

frames = []
for n in range(int(sys.argv[1])):
    room = n % 2000  # 2000 rooms; rooms 0-19 swing between 5 and 9 degrees, the rest hold 5
    t = "2026-12-01T%02d:%02d:%02d.%03d000Z" % (n // 3600000 % 24, n // 60000 % 60,
                                                 n // 1000 % 60, n % 1000)
    hot = room < 20 and (n // 2000) % 2 == 1
    body = {"id": "r%d" % n, "device_id": "room%d" % room, "packet_id": "p",
            "parser_id": "x", "measured_at": t, "inserted_at": t, "location": None,
            "meta": None, "data": {"temperature": 9.0 if hot else 5.0, "humidity": 40}}
    frames.append(json.dumps([{"event": "reading_added", "body": body}]))

async def handler(request):
    ws = await request.accept()
    try:
        for frame in frames:
            await ws.send_message(frame)
        await trio.sleep_forever()
    except ConnectionClosed:
        pass

async def main():
    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_websocket, handler, "127.0.0.1", 0, None)
        print(server.port, flush=True)

trio.run(main)
'''


def quantile(histogram: Histogram, q: float) -> str:
    """The bucket bound under which a share ``q`` of the observations fall."""
    total, running = sum(histogram.counts), 0
    for bound, count in zip(histogram.bounds, histogram.counts, strict=False):
        running += count
        if running >= q * total:
            return f"<= {bound * 1000:g} ms"
    return f"> {histogram.bounds[-1] * 1000:g} ms"


async def main(readings: int) -> None:
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(readings)],
                              stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    port = int(server.stdout.readline())
    out = io.StringIO()
    try:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "rules.yaml"
            path.write_text(textwrap.dedent(f"""\
                sources: {{cold: {{type: element, url: "ws://127.0.0.1:{port}/api/v1",
                                   api_key: k, subscribe: [readings]}}}}
                channels: {{screen: console://}}
                defaults: {{notify: [screen], repeat: never, group_wait: 1s}}
                rules:
                  - {{name: warm, threshold: {{field: temperature, above: 8, clear_below: 7}}}}
                  - {{name: gap, missing: {{field: humidity, nulls: 3}}}}
                  - {{name: jump, change: {{field: temperature, rise: 5, within: 10m}}}}
                """))
            config = load_config(path, {})
            store = Store.open(config.state)
            async with trio.open_nursery() as nursery:
                runtime: app.Runtime = await nursery.start(
                    lambda task_status: app.run(config, store, out=out,
                                                task_status=task_status))
                while runtime.stats.message_count["cold"] == 0:
                    await trio.sleep(0.001)
                started = time.perf_counter()
                while runtime.stats.message_count["cold"] < readings:
                    await trio.sleep(0.01)
                elapsed = time.perf_counter() - started
                await trio.sleep(1.5)  # the last group_wait
                nursery.cancel_scope.cancel()
            store.close()
    finally:
        server.kill()
    notices = sum(1 for line in out.getvalue().splitlines() if line[:1].isdigit())
    print(f"{readings} one-reading frames through the daemon in {elapsed:.2f} s: "
          f"{readings / elapsed:,.0f} messages/s")
    print(f"event-to-dispatch latency: median {quantile(runtime.latency, 0.5)}, "
          f"99th percentile {quantile(runtime.latency, 0.99)} "
          f"({sum(runtime.latency.counts)} frames)")
    print(f"{notices} messages printed (grouped within group_wait)")


if __name__ == "__main__":
    trio.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 40_000)
