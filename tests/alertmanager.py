"""A real Alertmanager (Debian's ``prometheus-alertmanager``) for end-to-end tests: on a free
loopback port, clustering off (or a cluster of two on loopback), storage in a temporary
folder, with short group timings and one webhook receiver (``tests.hooks.Webhook``) that
records what Alertmanager would page. ``amtool`` adds silences to it."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.hooks import Webhook

BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager") or \
    "prometheus-alertmanager"
AMTOOL = shutil.which("amtool") or "amtool"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Alertmanager:
    """``start()`` it, ``url`` is its address, ``notifications()`` what reached the
    receiver, one entry per alert in each webhook call: (status, labels)."""

    def __init__(self, folder: Path, hook: Webhook, *, peers: list[str] | None = None,
                 cluster_port: int | None = None, name: str = "am") -> None:
        self.folder = folder / name
        self.folder.mkdir(parents=True, exist_ok=True)
        self.hook = hook
        self.port = free_port()
        self.cluster_port = cluster_port
        self.peers = peers or []
        self.process: subprocess.Popen[bytes] | None = None
        config = self.folder / "alertmanager.yml"
        config.write_text(textwrap.dedent(f"""\
            route:
              receiver: hook
              group_by: [alertname, entity]
              group_wait: 1s
              group_interval: 1s
              repeat_interval: 1h
            receivers:
              - name: hook
                webhook_configs:
                  - url: http://127.0.0.1:{hook.port}/hook
                    send_resolved: true
            """))
        self.config = config

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Alertmanager:
        cluster = [f"--cluster.listen-address=127.0.0.1:{self.cluster_port}",
                   *(f"--cluster.peer={peer}" for peer in self.peers),
                   "--cluster.settle-timeout=2s", "--cluster.pushpull-interval=2s",
                   "--cluster.gossip-interval=100ms", "--cluster.peer-timeout=2s"] \
            if self.cluster_port else ["--cluster.listen-address="]
        self.process = subprocess.Popen(
            [BINARY, f"--config.file={self.config}", f"--storage.path={self.folder}/data",
             f"--web.listen-address=127.0.0.1:{self.port}", *cluster],
            stdout=subprocess.DEVNULL, stderr=open(self.folder / "log.txt", "wb"))
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as answer:
                    if answer.status == 200:
                        return self
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("Alertmanager did not start: "
                                   + (self.folder / "log.txt").read_text()[-2000:])
            time.sleep(0.1)

    def alerts(self) -> list[dict[str, Any]]:
        """Alertmanager's own view (``/api/v2/alerts``)."""
        with urllib.request.urlopen(f"{self.url}/api/v2/alerts", timeout=5) as answer:
            found: list[dict[str, Any]] = json.loads(answer.read())
        return found

    def notifications(self) -> list[tuple[str, dict[str, str]]]:
        with self.hook.lock:
            posts = list(self.hook.posts)
        return [(alert["status"], alert["labels"]) for post in posts
                for alert in post.body["alerts"]]

    def silence(self, *matchers: str, duration: str = "1h") -> str:
        """``amtool silence add``; returns the silence id."""
        done = subprocess.run(
            [AMTOOL, f"--alertmanager.url={self.url}", "silence", "add", *matchers,
             f"--duration={duration}", "--comment=test", "--author=tests"],
            capture_output=True, text=True, timeout=30, check=True)
        return done.stdout.strip()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
