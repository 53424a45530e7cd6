"""Two shards as operators run them: real `alertd run --shard I/2` processes, each with its own
state file, against the loopback fakes. Together they evaluate every entity exactly once; each
subscribes only to its own trackers and device sockets; a shard killed and restarted loses
nothing of its share."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

import trio

from alertd import shard
from alertd.simulator.element import FakeElement
from alertd.simulator.navixy import FakeNavixy

KEY = "shard-test-k3y-s3cr3t"
HASH = "0123456789abcdef0123456789abcdef"
TRACKERS = list(range(1001, 1021))
DEVICES = [f"d{i}" for i in range(8)]
MADE = re.compile(r"alertd: (\S+) (\S+) (firing|resolved)$", re.MULTILINE)


def _config(tmp_path: Path, navixy: FakeNavixy, element: FakeElement) -> Path:
    config = tmp_path / "rules.yaml"
    sockets = ", ".join(f"devices/{d}/readings" for d in DEVICES)
    config.write_text(textwrap.dedent(f"""\
        sources:
          fleet: {{type: navixy, url: "{navixy.url}", hash: "${{HASH}}", trackers: {TRACKERS}}}
          cold: {{type: element, url: "{element.url}", api_key: "${{KEY}}",
                 subscribe: [readings]}}
          dev: {{type: element, url: "{element.url}", api_key: "${{KEY}}",
                subscribe: [{sockets}]}}
        channels: {{out: console://}}
        defaults: {{notify: [out], group_wait: 0s}}
        rules:
          - {{name: blocked, source: fleet, status: {{in: [blocked]}}}}
          - {{name: warm, source: [cold, dev], threshold: {{field: t, above: 8}}}}
        """))
    return config


async def _start(config: Path, index: int, tmp_path: Path, run: int) -> trio.Process:
    with open(tmp_path / f"shard{index}.{run}.log", "wb") as err:
        return await trio.lowlevel.open_process(
            [sys.executable, "-m", "alertd", "run", "-c", str(config), "--shard", f"{index}/2",
             "--state", str(tmp_path / f"shard{index}.db")],
            stdout=subprocess.DEVNULL, stderr=err,
            env={**os.environ, "KEY": KEY, "HASH": HASH})


def _made(tmp_path: Path) -> Counter[tuple[str, str, str]]:
    """Every notification the shards made, from their logs (all runs)."""
    found: Counter[tuple[str, str, str]] = Counter()
    for log in tmp_path.glob("shard*.log"):
        found.update(MADE.findall(log.read_text()))
    return found


async def _until(condition: Any, what: str, timeout: float = 60) -> None:
    with trio.move_on_after(timeout):
        while not condition():
            await trio.sleep(0.1)
        return
    raise AssertionError(f"timed out waiting for {what}")


def _owner(source: str, entity: str) -> int:
    return shard.slot(source, entity, 2)


async def test_two_shards_cover_every_entity_once_and_a_restarted_shard_loses_nothing(
        tmp_path: Path) -> None:
    navixy = FakeNavixy(hashes={HASH}, trackers={t: "blocked" for t in TRACKERS})
    element = FakeElement(api_keys={KEY})
    processes: list[trio.Process] = []
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(navixy.serve)
            await nursery.start(element.serve)
            config = _config(tmp_path, navixy, element)
            for index in range(2):
                processes.append(await _start(config, index, tmp_path, 1))
            trackers = {("blocked", f"fleet/{t}", "firing") for t in TRACKERS}
            await _until(lambda: trackers <= set(_made(tmp_path)), "every tracker's alert")
            # one mandate socket per shard, and each device socket in its owner only
            await _until(lambda: len(element.connections) == 2 + len(DEVICES),
                         "the ELEMENT sockets")
            paths = [p.split("/socket")[0] for p in element.connections_log]
            assert Counter(p.rsplit("/api/v1/", 1)[-1] for p in paths) == Counter(
                {"readings": 2, **{f"devices/{d}/readings": 1 for d in DEVICES}})
            # each shard subscribed to its own trackers only
            for action in navixy.subscribe_actions:
                ids = [t for r in action["requests"] for t in r["target"]["tracker_ids"]]
                assert len({_owner("fleet", str(t)) for t in ids}) == 1, ids
            assert navixy.subscribed() == set(TRACKERS)

            for name in [*DEVICES, *(f"m{i}" for i in range(10))]:
                element.add_reading(name, {"t": 9})
            warm = {("warm", f"cold/{d}", "firing") for d in [*DEVICES, *(f"m{i}" for i in
                                                                          range(10))]}
            warm |= {("warm", f"dev/{d}", "firing") for d in DEVICES}
            await _until(lambda: warm <= set(_made(tmp_path)), "every device's alert")

            # shard 1 dies; its share of what happens meanwhile comes when it is back
            processes[1].kill()
            await processes[1].wait()
            later = [f"n{i}" for i in range(10)]
            for name in later:
                element.add_reading(name, {"t": 9})
            theirs = [t for t in TRACKERS if _owner("fleet", str(t)) == 1]
            navixy.set_status(theirs[0], "normal")
            ours = {("warm", f"cold/{n}", "firing") for n in later if _owner("cold", n) == 0}
            await _until(lambda: ours <= set(_made(tmp_path)), "shard 0 going on")
            processes[1] = await _start(config, 1, tmp_path, 2)
            everything = ({("warm", f"cold/{n}", "firing") for n in later}
                          | {("blocked", f"fleet/{theirs[0]}", "resolved")})
            await _until(lambda: everything <= set(_made(tmp_path)), "shard 1's share")
            nursery.cancel_scope.cancel()
    finally:
        for process in processes:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                with trio.move_on_after(15):
                    await process.wait()
                if process.returncode is None:
                    process.kill()
    made = _made(tmp_path)
    expected = trackers | warm | everything
    assert set(made) == expected and set(made.values()) == {1}, made
    for (rule, entity, _), count in made.items():  # and each by its owner
        source, entity_id = entity.split("/")
        owner = _owner(source, entity_id)
        logs = "".join(p.read_text() for p in tmp_path.glob(f"shard{owner}.*.log"))
        assert f"alertd: {rule} {entity} " in logs
    assert "as shard 1/2" in (tmp_path / "shard1.2.log").read_text()
