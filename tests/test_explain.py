"""`alertd explain`: the engine's read-only view of one entity (pure, on given times), and
the daemon's /explain through `alertd explain` against a real daemon."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from alertd.cli import main
from alertd.config import load_config
from alertd.engine import Engine
from alertd.engine.explain import Why
from alertd.explain_text import explanation_json, explanation_text
from alertd.model import Message, SourceDown
from alertd.notify.silences import Silence

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
RULES = """\
sources:
  cold: {type: element, api_key: k, subscribe: [readings]}
channels:
  ops: {urls: [console://], mute: ["00:00-06:00"], timezone: UTC}
defaults: {notify: [ops], repeat: never}
rules:
  - {name: warm, threshold: {field: t, above: 8, clear_below: 7.5}, for: 10m}
  - {name: gap, missing: {field: t, nulls: 3}}
  - {name: jump, change: {field: t, rise: 4, within: 15m}}
  - {name: quiet, silent: {after: 30m}}
  - {name: other-room, entities: [room9], threshold: {field: t, above: 0}}
  - {name: down, source_down: {after: 5m}}
"""


@pytest.fixture()
def config(tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    return load_config(path)


def reading(at: float, **fields: object) -> Message:
    return Message("cold", "room1", T0 + at, fields, T0 + at)


def test_explain_says_pending_for_x_of_y_and_the_values_read(config) -> None:  # type: ignore[no-untyped-def]
    engine = Engine(config.rules, config.sources, T0)
    engine.receive(reading(0, t=5), T0)
    engine.receive(reading(60, t=9.5), T0 + 60)
    seen = engine.explain("cold/room1", T0 + 300)
    by = {x.rule: x for x in seen.rules}
    assert set(by) == {"warm", "gap", "jump", "quiet"}  # other-room names room9 only
    warm = by["warm"]
    assert (warm.state, warm.why, warm.holds, warm.value, warm.bounds) == \
        ("pending", Why.PENDING, True, 9.5, (8, None))
    assert warm.since == T0 + 60 and warm.pending_for == 240 and warm.for_ == 600
    assert warm.next_check == T0 + 660
    assert (by["gap"].why, by["gap"].holds) == (Why.CONDITION_FALSE, False)
    field = by["jump"].fields[0]
    assert (field.newest, field.window_low, field.window_high, field.messages) == \
        (9.5, 5, 9.5, 2)
    assert by["jump"].state == "firing"  # rose by 4.5 within 15 minutes
    assert by["quiet"].value == 240 and by["quiet"].why == Why.CONDITION_FALSE
    assert [x.rule for x in seen.source_rules] == ["down"]

    engine.on_timer(T0 + 660)  # warm fires: the clear bound is in force now
    warm = {x.rule: x for x in engine.explain("cold/room1", T0 + 700).rules}["warm"]
    assert (warm.state, warm.why, warm.bounds) == ("firing", Why.FIRING, (7.5, None))
    engine.receive(SourceDown("cold"), T0 + 700)
    quiet = {x.rule: x for x in engine.explain("cold/room1", T0 + 800).rules}["quiet"]
    assert quiet.why == Why.HELD


def test_explain_of_an_entity_not_heard_of_and_the_edge_rendering(config) -> None:  # type: ignore[no-untyped-def]
    engine = Engine(config.rules, config.sources, T0)
    seen = engine.explain("cold/room5", T0 + 10)
    by = {x.rule: x for x in seen.rules}
    assert not seen.known and "other-room" not in by and by["warm"].why == Why.NO_DATA
    assert engine.explain("cold/room5", T0 + 10).known is False  # the view changed nothing
    listed = {x.rule: x for x in engine.explain("cold/room9", T0 + 10).rules}
    assert listed["other-room"].why == Why.NO_DATA  # listed: known from the start
    silence = Silence("s1", {"rule": "warm"}, T0, T0 + 3600, "defrost")
    found = explanation_json(seen, config, [silence], T0 + 10, rule="warm")
    assert [x["rule"] for x in found["rules"]] == ["warm"]
    assert found["rules"][0]["silenced_by"] == {"id": "s1", "until": "2026-01-01T01:00:00Z",
                                                "comment": "defrost"}
    assert found["rules"][0]["quiet_hours"] == {"ops": "2026-01-01T06:00:00Z"}
    text = explanation_text(found, T0 + 10)
    assert "warm: threshold t > 8 (clear < 7.5)" in text
    assert "not firing: no data" in text and "silenced by s1" in text
    assert "channel ops: quiet hours until 2026-01-01T06:00:00Z" in text
    assert engine.explain("nosuch/1", T0).source_up is None


def test_explain_from_a_replay_at_a_given_time(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from alertd.record import Recorder

    (tmp_path / "rules.yaml").write_text(RULES)
    clock = [T0]
    recorder = Recorder(tmp_path / "rec", lambda: clock[0])
    recorder.start("cold", "readings", after=None)
    recorder.connection("cold", "readings", True)
    for t, value in ((1, 5), (60, 9.5), (120, 9.7)):
        clock[0] = T0 + t
        recorder.frames("cold", "readings", [json.dumps([{"event": "reading_added", "body": {
            "id": f"r{t}", "device_id": "room1", "measured_at": f"2026-01-01T00:{t // 60:02d}:"
            f"{t % 60:02d}Z", "inserted_at": "2026-01-01T00:00:00Z", "data": {"t": value}}}])])
    recorder.close()
    assert main(["explain", "-c", str(tmp_path / "rules.yaml"), "cold/room1", "--rule",
                 "warm", "--replay", str(tmp_path / "rec"), "--at", "2026-01-01T00:05:00Z",
                 "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    warm = found["rules"][0]
    assert (warm["state"], warm["since"], warm["pending_for"], warm["value"]) == \
        ("pending", "2026-01-01T00:01:00Z", 240.0, 9.7)
    assert found["at"] == "2026-01-01T00:05:00Z"


def test_explain_without_a_daemon_says_so(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("http: 127.0.0.1:9\n" + RULES)
    assert main(["explain", "-c", str(path), "cold/room1"]) == 3
    assert "no daemon answers at 127.0.0.1:9" in capsys.readouterr().err
    path.write_text(textwrap.dedent(RULES))
    assert main(["explain", "-c", str(path), "cold/room1"]) == 2
