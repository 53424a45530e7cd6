"""Properties of a whole rule file: the same messages give the same notifications however they
reach the engine. This guards the batching and compiled paths of the engine's inner loop.

One run feeds each message on its own, as a ``Message`` built from fields, with the timers run
before it, as ``alertd test`` does for ``fields:`` events. The replay feeds the same messages
as recorded ELEMENT frames through the decoder, all readings that arrive at one instant in one
frame, with no timer run between the readings of one frame.
"""

from __future__ import annotations

import json
import textwrap
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alertd.config import load_config
from alertd.config import schema as s
from alertd.engine import Engine, notices
from alertd.model import Message, Notification
from alertd.records import StoredAlert
from alertd.sources.element import ElementDecoder
from tests.budget import examples

START = 1767225600.0  # 2026-01-01T00:00:00Z
RULES = """\
sources:
  cold: {type: element, api_key: k, subscribe: [readings]}
channels: {ops: console://}
defaults: {notify: [ops], repeat: 30m}
rules:
  - name: warm
    threshold: {field: temperature, above: 8, clear_below: 7.5}
    for: 2m
    clear_for: 1m
  - name: frozen
    threshold: {field: temperature, below: -20}
  - name: door
    threshold: {field: door, in: [open]}
  - name: fuel-drain
    change: {field: fuel, drop: 30, within: 10m}
  - name: gap
    missing: {field: temperature, nulls: 2, of: 3}
  - name: quiet
    entities: [a, b]
    silent: {after: 5m}
  - name: warm-and-open
    all:
      - threshold: {field: temperature, above: 8}
      - threshold: {field: door, equals: open}
    flapping: {changes: 3, within: 10m}
"""

temperature = st.sampled_from([None, -25.0, -20.0, 0.0, 7.5, 7.6, 8.0, 8.1, 12.0, "9"])
fuel = st.sampled_from([100.0, 85.0, 70.0, 69.0, 40.0])
door = st.sampled_from(["open", "closed"])
reading = st.fixed_dictionaries({}, optional={"temperature": temperature, "fuel": fuel,
                                              "door": door})
# (seconds after the previous message, entity, data); gaps of 0 put readings in one frame
steps = st.lists(st.tuples(st.sampled_from([0, 0, 1, 30, 60, 90, 120, 400]),
                           st.sampled_from(["a", "b", "c"]), reading),
                 min_size=1, max_size=30)


def config(tmp_path: Path) -> s.Config:
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent(RULES))
    return load_config(path, {})


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat().replace("+00:00", "Z")


def timeline(raw: list[tuple[int, str, dict[str, Any]]]) -> list[tuple[float, str, dict[str, Any]]]:
    at, out = START, []
    for gap, entity, data in raw:
        at += gap
        out.append((at, entity, data))
    return out


def seen(notes: list[Notification]) -> list[tuple[Any, ...]]:
    return [(n.rule, n.entity, n.state, round(n.at, 6), round(n.since, 6), n.repeat, n.field,
             n.value) for n in notes]


def one_at_a_time(cfg: s.Config, messages: list[tuple[float, str, dict[str, Any]]],
                  until: float) -> list[Notification]:
    engine = Engine(cfg.rules, cfg.sources, START)
    out: list[Notification] = []

    def timers(upto: float) -> None:
        while (deadline := engine.next_deadline()) is not None and deadline <= upto:
            out.extend(notices(engine.on_timer(deadline)))

    for i, (at, entity, data) in enumerate(messages):
        timers(at)
        out.extend(notices(engine.receive(Message("cold", entity, at, dict(data), at + i * 1e-6,
                                          absent_is_null=True), at)))
    timers(until)
    return out


def replayed_as_frames(cfg: s.Config, messages: list[tuple[float, str, dict[str, Any]]],
                       until: float) -> list[Notification]:
    engine = Engine(cfg.rules, cfg.sources, START)
    decoder = ElementDecoder("cold")
    frames: dict[float, list[dict[str, Any]]] = {}
    for i, (at, entity, data) in enumerate(messages):
        frames.setdefault(at, []).append({"event": "reading_added", "body": {
            "id": f"r{i}", "device_id": entity, "measured_at": iso(at),
            "inserted_at": iso(at + i * 1e-6), "data": data}})
    out: list[Notification] = []
    for at, envelopes in frames.items():
        while (deadline := engine.next_deadline()) is not None and deadline <= at:
            out.extend(notices(engine.on_timer(deadline)))
        decoded = decoder.decode(json.dumps(envelopes))
        assert decoded.problems == () and len(decoded.events) == len(envelopes)
        for event in decoded.events:
            out.extend(notices(engine.receive(event, at)))
    while (deadline := engine.next_deadline()) is not None and deadline <= until:
        out.extend(notices(engine.on_timer(deadline)))
    return out


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
def test_a_rule_file_gives_the_same_notifications_one_message_at_a_time_and_replayed(
        tmp_path_factory: Any, raw: list[tuple[int, str, dict[str, Any]]]) -> None:
    cfg = config(tmp_path_factory.mktemp("rules"))
    messages = timeline(raw)
    until = messages[-1][0] + 3600
    single = one_at_a_time(cfg, messages, until)
    assert seen(replayed_as_frames(cfg, messages, until)) == seen(single)


def test_the_property_compares_real_notifications(tmp_path: Path) -> None:
    """The property above is not vacuous: this timeline notifies on every rule kind."""
    cfg = config(tmp_path)
    messages = timeline([(0, "a", {"temperature": 9, "door": "open", "fuel": 100}),
                         (0, "b", {"temperature": -25}),
                         (180, "a", {"temperature": 9, "door": "open", "fuel": 60}),
                         (0, "b", {}), (60, "b", {})])
    notes = one_at_a_time(cfg, messages, messages[-1][0] + 3600)
    assert {n.rule for n in notes} == {"warm", "frozen", "door", "fuel-drain", "gap", "quiet",
                                       "warm-and-open"}
    assert seen(replayed_as_frames(cfg, messages, messages[-1][0] + 3600)) == seen(notes)


RESTART_RULES = """\
sources:
  cold: {type: element, api_key: k, subscribe: [readings]}
channels: {ops: console://}
defaults: {notify: [ops], repeat: 10m}
rules:
  - name: warm
    threshold: {field: temperature, above: 8, clear_below: 7.5}
    for: 2m
    clear_for: 1m
  - name: frozen
    threshold: {field: temperature, below: -20}
    repeat: never
  - name: door
    threshold: {field: door, in: [open]}
    resolved: false
  - name: warm-and-open
    all:
      - threshold: {field: temperature, above: 8}
      - threshold: {field: door, equals: open}
    flapping: {changes: 3, within: 10m}
"""


def restarted(cfg: s.Config, messages: list[tuple[float, str, dict[str, Any]]], until: float,
              at: int) -> list[Notification]:
    """Run until message ``at``, keep what the daemon writes to its state file (the alerts
    that changed, as ``take_changed`` gives them), and go on in a new engine restored from it,
    as a restart does."""
    engine = Engine(cfg.rules, cfg.sources, START)
    saved: dict[tuple[str, str], StoredAlert] = {}
    out: list[Notification] = []

    def timers(upto: float) -> None:
        while (deadline := engine.next_deadline()) is not None and deadline <= upto:
            out.extend(notices(engine.on_timer(deadline)))

    for i, (t, entity, data) in enumerate(messages):
        timers(t)
        if i == at:
            saved.update({(a.rule, a.entity): a for a in engine.take_changed()})
            engine = Engine(cfg.rules, cfg.sources, t)
            engine.restore(saved.values(), t)
        out.extend(notices(engine.receive(Message("cold", entity, t, dict(data), t + i * 1e-6,
                                          absent_is_null=True), t)))
        saved.update({(a.rule, a.entity): a for a in engine.take_changed()})
    timers(until)
    return out


# every reading carries a value for each field these rules read: a restart starts with empty
# histories, so a null (or absent) value would read an older value in one run and nothing in
# the other (rules.md, "What rules see")
complete = st.fixed_dictionaries({"temperature": temperature.filter(lambda v: v is not None),
                                   "door": door})
complete_steps = st.lists(st.tuples(st.sampled_from([0, 0, 1, 30, 60, 90, 120, 400]),
                                    st.sampled_from(["a", "b", "c"]), complete),
                          min_size=1, max_size=30)


@settings(max_examples=examples(500), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(complete_steps, st.integers(0, 29))
def test_a_restart_between_two_messages_changes_no_notification_of_newest_value_rules(
        tmp_path_factory: Any, raw: list[tuple[int, str, dict[str, Any]]], at: int) -> None:
    path = tmp_path_factory.mktemp("rules") / "rules.yaml"
    path.write_text(RESTART_RULES)
    cfg = load_config(path, {})
    messages = timeline(raw)
    until = messages[-1][0] + 3600
    at = at % len(messages)
    # notices due at one instant may come in another order (entities are restored in the
    # order of the state file): compare them as sets per instant. Not the value: a pending
    # alert's value is written with its state changes only (not on every reading), so one
    # that fires on its `for` timer after a restart shows the value of its last written
    # change, not the newest reading before the restart (reported in issue 13's note)
    def what(notes: list[Notification]) -> list[tuple[Any, ...]]:
        return sorted((t[:6] for t in seen(notes)), key=repr)

    assert what(restarted(cfg, messages, until, at)) == what(
        one_at_a_time(cfg, messages, until))
