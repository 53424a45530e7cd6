"""Sharding, pure: the stable assignment of entities, a shard's view of the configuration
and the event filter; the ``shard:`` key and the ``--shard`` option."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import pytest

from alertd import shard
from alertd.config import load_config
from alertd.config import schema as s
from alertd.errors import ConfigError
from alertd.model import Message, SourceDown, StatusChanged


def test_the_assignment_is_crc32_of_source_slash_id_not_a_salted_hash() -> None:
    assert shard.slot("fleet", "21080", 2) == zlib.crc32(b"fleet/21080") % 2
    # the same in another interpreter (hash() is salted per process; crc32 is not)
    other = subprocess.run([sys.executable, "-c", "from alertd.shard import slot; "
                            "print([slot('fleet', str(t), 3) for t in range(100)])"],
                           capture_output=True, text=True, check=True, timeout=60)
    assert other.stdout.strip() == str([shard.slot("fleet", str(t), 3) for t in range(100)])
    # every entity falls to exactly one of N shards, and the shares are near even
    counts = [0, 0, 0]
    for tracker in range(3000):
        owners = [i for i in range(3) if shard.owns(s.Shard(i, 3), "fleet", str(tracker))]
        assert len(owners) == 1
        counts[owners[0]] += 1
    assert all(900 < count < 1100 for count in counts)


def test_parse_the_option() -> None:
    assert shard.parse("1/3") == s.Shard(1, 3)
    for bad in ("3/3", "1", "a/b", "0/0", "-1/2"):
        with pytest.raises(ValueError):
            shard.parse(bad)


def _config(tmp_path: Path, extra: str = "") -> s.Config:
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent("""\
        sources:
          fleet: {type: navixy, hash: h, trackers: [1, 2, 3, 4, 5, 6, 7, 8]}
          cold: {type: element, api_key: k,
                 subscribe: [readings, devices/a/readings, devices/b/readings,
                             devices/c/packets, tags/t1/readings]}
        rules:
          - {name: quiet, silent: {after: 10m}, entities: [1, 2, 3, 4, cold/a, cold/b], notify: []}
          - {name: any, silent: {after: 10m}, notify: []}
        """) + extra)
    return load_config(path)


def test_a_shard_keeps_its_trackers_device_sockets_and_listed_entities(tmp_path: Path) -> None:
    config = _config(tmp_path)
    views = [shard.narrow(dataclasses.replace(config, shard=s.Shard(i, 2))) for i in range(2)]
    fleets = [v.sources["fleet"] for v in views]
    trackers = [t for fleet in fleets for t in fleet.trackers]  # type: ignore[union-attr]
    assert sorted(trackers) == [1, 2, 3, 4, 5, 6, 7, 8]
    for index, view in enumerate(views):
        fleet = view.sources["fleet"]
        assert isinstance(fleet, s.NavixySource)
        assert all(shard.slot("fleet", str(t), 2) == index for t in fleet.trackers)
        cold = view.sources["cold"]
        assert isinstance(cold, s.ElementSource)
        # group and mandate sockets stay in every shard; a device's socket in its own only
        assert {"readings", "tags/t1/readings"} <= set(cold.subscribe)
        for path in cold.subscribe:
            device = shard.device_of(path)
            assert device is None or shard.slot("cold", device, 2) == index
        listed = view.rules[0].entities or ()
        for entity in listed:
            source, _, entity_id = entity.rpartition("/")
            assert any(shard.owns(view.shard, name, entity_id)
                       for name in ([source] if source else ["fleet", "cold"]))
        assert view.rules[1].entities is None  # "every entity" stays every entity
    devices = [shard.device_of(p) for v in views
               for p in v.sources["cold"].subscribe]  # type: ignore[union-attr]
    assert sorted(d for d in devices if d) == ["a", "b", "c"]
    assert shard.narrow(config) is config  # not sharded: untouched


def test_a_source_with_nothing_left_for_a_shard_is_not_connected(tmp_path: Path) -> None:
    path = tmp_path / "one.yaml"
    path.write_text("sources: {fleet: {type: navixy, hash: h, trackers: [21080]}}\n"
                    "rules: [{name: b, status: {in: [blocked]}, notify: []}]\n")
    owner = shard.slot("fleet", "21080", 2)
    assert "fleet" in shard.narrow(load_config(path, shard=s.Shard(owner, 2))).sources
    assert "fleet" not in shard.narrow(load_config(path, shard=s.Shard(1 - owner, 2))).sources


def test_the_event_filter_drops_other_shards_entities_only() -> None:
    assert shard.event_filter(None) is None
    mine = [e for e in map(str, range(100)) if shard.owns(s.Shard(0, 2), "cold", e)]
    keep = shard.event_filter(s.Shard(0, 2))
    assert keep is not None
    events = [Message("cold", str(e), 0.0, {}) for e in range(100)]
    assert [e.entity for e in events if keep(e)] == mine
    assert keep(StatusChanged("cold", mine[0], "blocked"))
    assert not keep(StatusChanged("cold", next(str(e) for e in range(100)
                                               if str(e) not in mine), "blocked"))
    assert keep(SourceDown("cold"))  # connection events concern every shard


def test_shard_in_the_file_and_the_option_that_wins(tmp_path: Path) -> None:
    config = _config(tmp_path, "shard: {index: 1, of: 4}\n")
    assert config.shard == s.Shard(1, 4)
    assert load_config(config.path, shard=s.Shard(0, 2)).shard == s.Shard(0, 2)
    with pytest.raises(ConfigError) as caught:
        _config(tmp_path, "shard: {index: 4, of: 4}\n")
    assert [p.message for p in caught.value.problems] == [
        "shard: index must be below of (4): shards are numbered 0 to 3, not 4"]


def test_a_bad_shard_option_is_one_line_and_exit_2(tmp_path: Path) -> None:
    config = _config(tmp_path).path
    done = subprocess.run([sys.executable, "-m", "alertd", "run", "-c", str(config),
                           "--shard", "2/2"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1].endswith(
        "--shard 2/2: shards are numbered 0 to N-1, and N is at least 1")


def test_silent_and_source_down_per_shard(tmp_path: Path) -> None:
    """A tracker that never reports is silent in its own shard only; each shard's
    source_down speaks for its own connection."""
    from alertd.engine import Engine, notices
    from alertd.model import SourceUp

    path = tmp_path / "rules.yaml"
    path.write_text("sources: {fleet: {type: navixy, hash: h, trackers: [1, 2, 3, 4, 5, 6]}}\n"
                    "rules:\n"
                    "  - {name: quiet, silent: {after: 10m}, notify: []}\n"
                    "  - {name: down, source_down: {after: 1m}, notify: []}\n")
    def run(index: int, connects: bool) -> set[str]:
        config = shard.narrow(load_config(path, shard=s.Shard(index, 2)))
        engine = Engine(config.rules, config.sources, 0.0, connected=False)
        if connects:
            engine.receive(SourceUp("fleet"), 1.0)
        return {f"{n.rule} {n.entity}" for n in notices(engine.on_timer(601.0))}

    assert "down fleet" in run(1, connects=False)  # shard 1's connection never came up
    assert "down fleet" not in run(0, connects=True)
    fired = {index: run(index, connects=True) for index in range(2)}
    quiet = [{e for e in fired[i] if e.startswith("quiet")} for i in range(2)]
    assert quiet[0] | quiet[1] == {f"quiet fleet/{t}" for t in range(1, 7)}
    assert not quiet[0] & quiet[1]
    for index in range(2):
        assert all(shard.owns(s.Shard(index, 2), "fleet", e.rsplit("/", 1)[1])
                   for e in quiet[index])


def test_a_reload_keeps_the_shard_the_process_started_with(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from alertd import app

    config = _config(tmp_path, "shard: {index: 1, of: 2}\n")
    config.path.write_text(config.path.read_text().replace("index: 1, of: 2",
                                                           "index: 0, of: 4"))
    caplog.set_level("WARNING")
    reloaded = app._reload(str(config.path), config, None)
    assert reloaded is not None and reloaded.shard == s.Shard(1, 2)
    assert "the shard stays 1/2 until a restart (the file says 0/4)" in caplog.text
    caplog.clear()
    option = dataclasses.replace(config, shard=shard.parse("1/3"))  # --shard 1/3 at start
    again = app._reload(str(config.path), option, None)
    assert again is not None and again.shard == s.Shard(1, 3)
    assert "shard stays" not in caplog.text  # the option wins silently, as at start
