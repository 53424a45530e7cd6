"""Figure 6: notifications per second through alertd's outbox, next to apprise alone.

The receiver is a local HTTP server in another process (``--serve``) that answers every POST
at once and notes when each came. The baseline calls apprise directly in this process, one
``json://`` notification after another to that server (one ``Apprise`` object, as alertd
keeps one per URL). alertd's side: N notifications are offered to the notify planner
(``Planner``, group_wait 0, one planner step each) and written with its messages to the
outbox of a real state file (``Store.plan``), as the daemon's planner loop does; then
``alertd.app.run`` starts on that file and its URL worker sends them through its apprise
child processes. Both rates are taken by the receiver, from its first POST to its last
(alertd's start and its first apprise process are not counted). Run:
python3 benchmarks/outbox.py [--runs N] [--quick] [--notifications N]
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import (  # noqa: E402
    Budget,
    Row,
    arguments,
    config_text,
    emit,
    median,
    python_env,
    size,
)


class Sink(BaseHTTPRequestHandler):
    """POST: counted and answered at once. GET: the count and the first and last times."""

    count = 0
    first = last = 0.0
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        now = time.monotonic()
        if Sink.count == 0:
            Sink.first = now
        Sink.count, Sink.last = Sink.count + 1, now
        self._answer(b"ok")

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/reset":
            Sink.count, Sink.first, Sink.last = 0, 0.0, 0.0
        self._answer(json.dumps({"count": Sink.count, "first": Sink.first,
                                 "last": Sink.last}).encode())

    def _answer(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def serve() -> None:
    server = HTTPServer(("127.0.0.1", 0), Sink)
    print(server.server_address[1], flush=True)
    server.serve_forever()


def stats(port: int, path: str = "/stats") -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
        return dict(json.loads(answer.read()))


def rate(found: dict[str, float]) -> float:
    span = found["last"] - found["first"]
    return (found["count"] - 1) / span if span > 0 else float("nan")


def apprise_alone(port: int, count: int) -> float:
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    import apprise

    stats(port, "/reset")
    client = apprise.Apprise()
    client.add(f"json://127.0.0.1:{port}/hook")
    for n in range(count):
        client.notify(title=f"bench {n}", body=f"notification {n}")
    return rate(stats(port))


def queue(config: object, store: object, count: int) -> None:
    """Offer ``count`` notifications to the planner, one step each, and write its messages to
    the outbox as the daemon's planner loop does (``app._dispatch``)."""
    from alertd.model import Notification
    from alertd.notify.plan import outgoing
    from alertd.notify.planner import Entry, Planner

    planner = Planner(config.rules, config.channels)  # type: ignore[attr-defined]
    now = time.time()
    for n in range(count):
        note = Notification("bench-hook", f"iot/dev{n}", "firing", now, now, "warning", "iot",
                            f"dev{n}", "temp", 30.0 + n)
        plan = planner.step([Entry(None, "hook", note)], now)
        store.plan(outgoing(plan.messages, config.channels),  # type: ignore
                   plan.consumed, now)


async def through_alertd(port: int, count: int, timeout: float) -> tuple[float, float]:
    """(notifications/s through the outbox, seconds taken to plan and queue them)."""
    from alertd import app
    from alertd.config import load_config
    from alertd.store import Store

    stats(port, "/reset")
    with tempfile.TemporaryDirectory(prefix="alertd-bench-") as folder:
        path = Path(folder) / "rules.yaml"
        path.write_text(config_text(
            {"iot": {"type": "element", "url": "ws://127.0.0.1:9/api/v1", "api_key": "k",
                     "subscribe": ["readings"]}},
            {"hook": f"json://127.0.0.1:{port}/hook"},
            [{"name": "bench-hook", "threshold": {"field": "temp", "above": 25}}],
            {"notify": ["hook"], "group_wait": "0s"}))
        config = load_config(path, {})
        store = Store.open_daemon(config.state)
        started = time.perf_counter()
        queue(config, store, count)
        queued = time.perf_counter() - started
        found = {"count": 0.0}
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(lambda task_status: app.run(config, store,
                                                                task_status=task_status))
                with trio.move_on_after(timeout):
                    while found["count"] < count:
                        await trio.sleep(0.1)
                        found = await trio.to_thread.run_sync(stats, port)
                nursery.cancel_scope.cancel()
        finally:
            store.close()
    return (rate(found) if found["count"] >= count else float("nan")), queued


def measure(args: argparse.Namespace) -> list[Row]:
    count = args.notifications or size(args, 1000, 300, 20)
    server = subprocess.Popen([sys.executable, __file__, "--serve"], stdout=subprocess.PIPE,
                              text=True, env=python_env())
    assert server.stdout is not None
    port = int(server.stdout.readline())
    alone, outbox, queued = [], [], []
    try:
        for _ in Budget(args.runs, size(args, 60, 15, 5)):
            alone.append(apprise_alone(port, count))
            gc.collect()
            through, took = trio.run(through_alertd, port, count, size(args, 300, 120, 60))
            outbox.append(through)
            queued.append(took)
            gc.collect()
    finally:
        server.kill()
        server.wait()
    value = median(outbox)
    return [Row("outbox", f"notifications through the outbox, {count:,} to json://", value,
                "notifications/s", median(alone), "apprise alone", runs=len(outbox),
                details={"runs": outbox, "runs_alone": alone,
                         "planned_and_queued_seconds": median(queued)})]


def main() -> None:
    if sys.argv[1:] == ["--serve"]:
        serve()
        return
    logging.getLogger("alertd").setLevel(logging.ERROR)

    def extra(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--notifications", type=int, default=0,
                            help="how many (default 1000, --quick 300)")

    args = arguments(__doc__ or "", extra)
    emit(measure(args), args)


if __name__ == "__main__":
    main()
