"""One process against two shards (``alertd run --shard 0/2`` and ``1/2``) on the same flood,
side by side: real ``alertd run`` processes, a WebSocket server in a third process that holds
its frames until every socket is open, then sends them as fast as it can.

Two workloads, READINGS one-reading ELEMENT frames each:
  * devices: the readings of DEVICES devices, one ``devices/ID/readings`` socket per device;
    each shard opens only its own devices' sockets, so the work splits in two;
  * mandate: the same readings on one mandate-wide ``readings`` socket; every shard receives
    and decodes every frame and drops the other shard's devices before evaluation.

The clock runs from the moment the server is told to send until every device's final reading
(which carries ``last: 1``) has fired the ``done`` rule in whichever process owns it, as the
processes' logs say. Throughput is READINGS over that time. The machine's cores are shared
by the server and the alertd processes. Run: python3 benchmarks/shards.py [READINGS] [DEVICES]
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

SERVER = r'''
import json, sys, trio
from trio_websocket import ConnectionClosed, serve_websocket

readings, devices = int(sys.argv[1]), int(sys.argv[2])
every, by_device = [], {}
for n in range(readings):
    room = "room%d" % (n % devices)
    t = "2026-12-01T%02d:%02d:%02d.%03d000Z" % (n // 3600000 % 24, n // 60000 % 60,
                                                 n // 1000 % 60, n % 1000)
    hot = n % devices < devices // 10 and (n // (devices * 50)) % 2 == 1
    body = {"id": "r%d" % n, "device_id": room, "packet_id": "p", "parser_id": "x",
            "measured_at": t, "inserted_at": t, "location": None, "meta": None,
            "data": {"temperature": 9.0 if hot else 5.0, "humidity": 40,
                     "last": 1 if n >= readings - devices else 0}}
    frame = json.dumps([{"event": "reading_added", "body": body}])
    every.append(frame)
    by_device.setdefault(room, []).append(frame)
go = trio.Event()
opened = 0

async def handler(request):
    global opened
    parts = request.path.split("?")[0].split("/")
    frames = by_device[parts[parts.index("devices") + 1]] if "devices" in parts else every
    ws = await request.accept()
    opened += 1
    print(opened, flush=True)
    try:
        await go.wait()
        for frame in frames:
            await ws.send_message(frame)
        await trio.sleep_forever()
    except ConnectionClosed:
        pass

async def main():
    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_websocket, handler, "127.0.0.1", 0, None)
        print(server.port, flush=True)
        await trio.to_thread.run_sync(sys.stdin.readline)
        go.set()

trio.run(main)
'''

DONE = re.compile(r"alertd: done \S+ firing$", re.MULTILINE)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(readings: int, devices: int, workload: str, shards: int) -> tuple[float, float]:
    """Messages per second through ``shards`` processes (1: one unsharded process), and
    the CPU seconds the busiest of them spent on the flood."""
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(readings), str(devices)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert server.stdin is not None and server.stdout is not None
    port = int(server.stdout.readline())
    subscribe = "[readings]" if workload == "mandate" else \
        "[" + ", ".join(f"devices/room{d}/readings" for d in range(devices)) + "]"
    processes: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "rules.yaml"
        config.write_text(textwrap.dedent(f"""\
            sources: {{cold: {{type: element, url: "ws://127.0.0.1:{port}/api/v1",
                               api_key: k, subscribe: {subscribe}}}}}
            channels: {{screen: console://}}
            defaults: {{notify: [screen], repeat: never, group_wait: 1s}}
            rules:
              - {{name: warm, threshold: {{field: temperature, above: 8, clear_below: 7}}}}
              - {{name: gap, missing: {{field: humidity, nulls: 3}}}}
              - {{name: done, threshold: {{field: last, above: 0}}}}
            """))
        logs = [Path(folder) / f"shard{i}.log" for i in range(shards)]
        try:
            for index, log in enumerate(logs):
                shard = ["--shard", f"{index}/{shards}"] if shards > 1 else []
                with open(log, "wb") as err:
                    processes.append(subprocess.Popen(
                        [sys.executable, "-m", "alertd", "run", "-c", str(config), *shard,
                         "--state", str(Path(folder) / f"state{index}.db")],
                        stdout=subprocess.DEVNULL, stderr=err, env=dict(os.environ)))
            sockets = shards if workload == "mandate" else devices
            while int(server.stdout.readline()) < sockets:
                pass
            time.sleep(0.5)  # every process settled after connecting
            before = [cpu_seconds(p.pid) for p in processes]
            started = time.perf_counter()
            server.stdin.write("go\n")
            server.stdin.flush()
            deadline = started + 600
            while sum(len(DONE.findall(log.read_text())) for log in logs) < devices:
                if time.perf_counter() > deadline:
                    raise RuntimeError("the flood did not get through within 10 minutes")
                time.sleep(0.01)
            elapsed = time.perf_counter() - started
            used = [cpu_seconds(p.pid) - b for p, b in zip(processes, before, strict=True)]
            return readings / elapsed, max(used)
        finally:
            for process in processes:
                process.terminate()
                process.wait(30)
            server.kill()
            server.wait()


def main() -> None:
    readings = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    devices = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    print(f"{readings} one-reading frames from {devices} devices, {os.cpu_count()} cores")
    print("wall: messages/s through all processes; cpu: CPU seconds of the busiest process, "
          "and the messages/s that allows (readings / cpu) where each process has a core")
    print(f"{'workload':<26}{'1 process':>28}{'2 shards':>28}{'speed-up':>16}")
    for workload, words in (("devices", f"{devices} device sockets"),
                            ("mandate", "one mandate-wide socket")):
        (one, one_cpu), (two, two_cpu) = (run(readings, devices, workload, n) for n in (1, 2))
        print(f"{words:<26}"
              f"{one:>8,.0f} wall {one_cpu:>5.1f} s ={readings / one_cpu:>7,.0f} cpu"
              f"{two:>8,.0f} wall {two_cpu:>5.1f} s ={readings / two_cpu:>7,.0f} cpu"
              f"{two / one:>7.2f}x {one_cpu / two_cpu:>5.2f}x", flush=True)


if __name__ == "__main__":
    main()
