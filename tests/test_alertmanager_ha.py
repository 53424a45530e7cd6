"""An HA pair: two real `alertd run` processes, the same rule file, each its own state file,
behind one real Alertmanager (Debian's prometheus-alertmanager) whose webhook receiver is a
local HTTP server. Alertmanager de-duplicates the pair's posts: one page per alert; one alertd
killed mid-stream, the other goes on and nothing is lost; amtool's silences are honoured."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import trio

from alertd.simulator.element import FakeElement
from tests.alertmanager import Alertmanager, free_port
from tests.hooks import Webhook

KEY = "ha-test-k3y-s3cr3t"


def _config(tmp_path: Path, element: FakeElement, manager: Alertmanager,
            resend: str = "1s") -> Path:
    config = tmp_path / "rules.yaml"
    config.write_text(textwrap.dedent(f"""\
        sources:
          cold: {{type: element, url: "{element.url}", api_key: "${{KEY}}",
                 subscribe: [readings]}}
        channels:
          am: {{alertmanager: ["{manager.url}"], resend: {resend}}}
          out: console://
        rules:
          - {{name: warm, source: cold, threshold: {{field: t, above: 8}},
              labels: {{team: cold-chain}}, notify: [am, out]}}
        """))
    return config


async def _start(config: Path, state: Path, log: Path) -> trio.Process:
    env = {**os.environ, "KEY": KEY}
    with open(log, "wb") as err:
        return await trio.lowlevel.open_process(
            [sys.executable, "-m", "alertd", "run", "-c", str(config), "--state", str(state)],
            stdout=subprocess.DEVNULL, stderr=err, env=env)


async def _until(condition: Any, what: str, timeout: float = 60) -> None:
    with trio.move_on_after(timeout):
        while not condition():
            await trio.sleep(0.1)
        return
    raise AssertionError(f"timed out waiting for {what}")


def _ends(alert: dict[str, Any]) -> float:
    return datetime.fromisoformat(alert["endsAt"].replace("Z", "+00:00")).timestamp()


def _pages(manager: Alertmanager) -> Counter[tuple[str, str]]:
    return Counter((status, labels["entity"]) for status, labels in manager.notifications())


async def test_an_ha_pair_pages_once_survives_a_kill_and_honours_amtool_silences(
        tmp_path: Path) -> None:
    hook = Webhook()
    manager = Alertmanager(tmp_path, hook)
    await trio.to_thread.run_sync(manager.start)
    element = FakeElement(api_keys={KEY})
    processes: list[trio.Process] = []
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(element.serve)
            config = _config(tmp_path, element, manager)
            for name in ("a", "b"):
                processes.append(await _start(config, tmp_path / f"{name}.db",
                                              tmp_path / f"{name}.log"))
            await _until(lambda: len(element.connections) == 2, "both alertd connected")
            for device in ("d1", "d2", "d3"):
                element.add_reading(device, {"t": 9})
            await _until(lambda: {e for s, e in _pages(manager) if s == "firing"}
                         == {"cold/d1", "cold/d2", "cold/d3"}, "the first three pages")
            # both alertd posted each alert: Alertmanager holds it once, with our labels
            alerts = await trio.to_thread.run_sync(manager.alerts)
            assert sorted(a["labels"]["entity"] for a in alerts) == \
                ["cold/d1", "cold/d2", "cold/d3"]
            assert alerts[0]["labels"]["team"] == "cold-chain"
            assert alerts[0]["labels"]["alertname"] == "warm"
            assert alerts[0]["labels"]["severity"] == "warning"
            assert alerts[0]["annotations"]["summary"].startswith("[FIRING] warm")

            processes[0].kill()  # alertd "a" dies mid-stream
            await processes[0].wait()
            element.add_reading("d4", {"t": 10})
            element.add_reading("d1", {"t": 5})  # resolves
            await _until(lambda: ("firing", "cold/d4") in _pages(manager)
                         and ("resolved", "cold/d1") in _pages(manager),
                         "the survivor's page and resolve")

            silence = await trio.to_thread.run_sync(
                lambda: manager.silence("entity=cold/d5"))
            assert silence
            element.add_reading("d5", {"t": 11})
            element.add_reading("d6", {"t": 11})

            def d5_suppressed() -> bool:
                return any(a["labels"]["entity"] == "cold/d5"
                           and a["status"]["state"] == "suppressed"
                           and silence in a["status"]["silencedBy"]
                           for a in manager.alerts())

            await _until(lambda: ("firing", "cold/d6") in _pages(manager), "d6 paged")
            await _until(d5_suppressed, "d5 silenced in Alertmanager")
            element.add_reading("d6", {"t": 1})  # a later page: d5 had every chance
            await _until(lambda: ("resolved", "cold/d6") in _pages(manager), "d6 resolved")
            # the survivor re-sends its firing alerts: their endsAt keeps moving ahead
            now = time.time()
            await _until(lambda: all(_ends(a) > now + 4 for a in manager.alerts()
                                     if a["labels"]["entity"] in ("cold/d2", "cold/d3")),
                         "the survivor's re-sends")
            # when every alertd is gone, Alertmanager resolves their alerts at endsAt
            processes[1].kill()
            await processes[1].wait()
            await _until(lambda: {("resolved", f"cold/{d}") for d in ("d2", "d3", "d4")}
                         <= set(_pages(manager)), "Alertmanager resolving on its own")
            nursery.cancel_scope.cancel()
    finally:
        for process in processes:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                with trio.move_on_after(15):
                    await process.wait()
                if process.returncode is None:
                    process.kill()
        await trio.to_thread.run_sync(manager.stop)
        hook.close()
    pages = _pages(manager)
    assert ("firing", "cold/d5") not in pages
    assert pages == Counter({("firing", "cold/d1"): 1, ("firing", "cold/d2"): 1,
                             ("firing", "cold/d3"): 1, ("firing", "cold/d4"): 1,
                             ("resolved", "cold/d1"): 1, ("firing", "cold/d6"): 1,
                             ("resolved", "cold/d6"): 1, ("resolved", "cold/d2"): 1,
                             ("resolved", "cold/d3"): 1, ("resolved", "cold/d4"): 1}), pages
    survivor = (tmp_path / "b.log").read_text()
    assert "Traceback" not in survivor and KEY not in survivor


def test_notify_posts_a_test_alert_to_every_alertmanager_of_the_channel(
        tmp_path: Path) -> None:
    hook = Webhook()
    managers = [Alertmanager(tmp_path, hook, name=f"am{i}").start() for i in range(2)]
    try:
        config = tmp_path / "rules.yaml"
        config.write_text(
            "sources: {fleet: {type: navixy, hash: h, trackers: [1]}}\n"
            f"channels: {{am: [alertmanager://127.0.0.1:{managers[0].port}, "
            f"alertmanager://127.0.0.1:{managers[1].port}]}}\n"
            "rules: [{name: b, status: {in: [blocked]}, notify: [am]}]\n")
        done = subprocess.run([sys.executable, "-m", "alertd", "notify", "am", "-c",
                               str(config), "--title", "hello pager"],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == ["am: alertmanager:// delivered"] * 2
        for manager in managers:
            [alert] = manager.alerts()
            assert alert["labels"]["alertname"] == "alertd_test"
            assert alert["annotations"]["summary"] == "hello pager"
    finally:
        for manager in managers:
            manager.stop()
        hook.close()


async def test_two_alertd_behind_a_cluster_of_two_alertmanagers_page_once(
        tmp_path: Path) -> None:
    """The docs' example (docs/scaling.md): each alertd posts to both Alertmanagers, which
    gossip their notification log; the receiver gets each page once."""
    hook = Webhook()
    ports = [free_port(), free_port()]
    managers = [Alertmanager(tmp_path, hook, name=f"am{i}", cluster_port=ports[i],
                             peers=[f"127.0.0.1:{ports[1 - i]}"]) for i in range(2)]
    for manager in managers:
        await trio.to_thread.run_sync(manager.start)
    element = FakeElement(api_keys={KEY})
    processes: list[trio.Process] = []
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(element.serve)
            config = tmp_path / "rules.yaml"
            config.write_text(textwrap.dedent(f"""\
                sources:
                  cold: {{type: element, url: "{element.url}", api_key: "${{KEY}}",
                         subscribe: [readings]}}
                channels:
                  am: {{alertmanager: ["{managers[0].url}", "{managers[1].url}"],
                        resend: 1s}}
                rules:
                  - {{name: warm, threshold: {{field: t, above: 8}}, notify: [am]}}
                """))
            for name in ("a", "b"):
                processes.append(await _start(config, tmp_path / f"{name}.db",
                                              tmp_path / f"{name}.log"))
            await _until(lambda: len(element.connections) == 2, "both alertd connected")
            await trio.sleep(3)  # the cluster settles (--cluster.settle-timeout=2s)
            element.add_reading("d1", {"t": 9})
            await _until(lambda: ("firing", "cold/d1") in _pages(managers[0]), "the page")
            await trio.sleep(4)  # twice the peer timeout: a second page would be here now
            element.add_reading("d1", {"t": 5})
            await _until(lambda: ("resolved", "cold/d1") in _pages(managers[0]),
                         "the resolve")
            nursery.cancel_scope.cancel()
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()
        for manager in managers:
            await trio.to_thread.run_sync(manager.stop)
        hook.close()
    # without the cluster (no --cluster.peer), each Alertmanager pages: 2
    assert _pages(managers[0])[("firing", "cold/d1")] == 1, _pages(managers[0])
