"""What the engine's notices say, beyond their state: the field and value each condition kind
reports on firing and on resolving (the message shows them), how `equals` compares values of
different types, and what a value that says nothing (a sensor's "error", a missing bound, a
`_lag` without a server time) does to a firing alert. Table tests, no I/O. Several of these
were found by mutation testing (docs/testing.md)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from alertd.config import load_config
from alertd.config import schema as s
from alertd.engine import Engine, notices
from alertd.model import Message, NoticeKind, Notification, SourceDown, SourceUp, StatusChanged

RULES = """\
sources:
  cold: {type: element, api_key: k, subscribe: [readings]}
channels: {ops: console://}
defaults: {notify: [ops], repeat: never}
rules:
  - name: warm
    threshold: {field: temperature, above: 8, clear_below: 7.5}
  - name: over-limit
    threshold: {field: temperature, above: {field: max_temp}}
  - name: code
    threshold: {field: code, equals: 3}
  - name: flag
    threshold: {field: flag, equals: true}
  - name: zero
    threshold: {field: level, equals: 0}
  - name: word
    threshold: {field: word, in: [open, "2"]}
  - name: gap
    missing: {field: fuel, nulls: 2}
  - name: gap-of
    missing: {field: level, nulls: 2, of: 4}
  - name: drain
    change: {field: fuel, drop: 0.5, within: 10m}
  - name: lag
    threshold: {field: _lag, above: 60}
"""


@pytest.fixture
def config(tmp_path: Path) -> s.Config:
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent(RULES))
    return load_config(path, {})


def feed(config: s.Config, rule: str, *readings: dict[str, Any],
         srv: bool = True) -> list[tuple[str, str, Any]]:
    """(state, field, value) of the notices of one rule, one reading every 10 s."""
    engine = Engine(config.rules, config.sources, 0.0)
    out: list[Notification] = []
    for i, fields in enumerate(readings):
        at = 10.0 * (i + 1)
        out += notices(engine.receive(Message("cold", "d1", at, fields, at if srv else None,
                                      absent_is_null=False), at))
    return [(n.state, n.field, n.value) for n in out if n.rule == rule]


def test_each_kind_reports_its_field_and_value_on_firing_and_resolving(
        config: s.Config) -> None:
    assert feed(config, "warm", {"temperature": 9}, {"temperature": 7}) == [
        ("firing", "temperature", 9.0), ("resolved", "temperature", 7.0)]
    assert feed(config, "code", {"code": 3}, {"code": 1}) == [
        ("firing", "code", 3.0), ("resolved", "code", 1.0)]
    assert feed(config, "word", {"word": "open"}, {"word": "shut"}) == [
        ("firing", "word", "open"), ("resolved", "word", "shut")]
    assert feed(config, "gap", {"fuel": None}, {"fuel": None}, {"fuel": 40}) == [
        ("firing", "fuel", None), ("resolved", "fuel", 40.0)]
    assert feed(config, "drain", {"fuel": 10}, {"fuel": 9.5}, {"fuel": 9.5}) == [
        ("firing", "fuel", 9.5)]


def test_a_change_of_less_than_one_is_a_change(config: s.Config) -> None:
    assert feed(config, "drain", {"fuel": 10}, {"fuel": 9.6}) == []
    assert feed(config, "drain", {"fuel": 10}, {"fuel": 9.5}) == [("firing", "fuel", 9.5)]


@pytest.mark.parametrize(("rule", "field", "value", "holds"), [
    ("code", "code", 3, True), ("code", "code", "3", True), ("code", "code", 3.0, True),
    ("code", "code", "x", False), ("code", "code", True, False),
    ("flag", "flag", True, True), ("flag", "flag", 1, False), ("flag", "flag", "true", False),
    ("flag", "flag", False, False), ("flag", "flag", "True", False),
    ("zero", "level", -0.0, True), ("zero", "level", "0.0", True),
    ("word", "word", "open", True), ("word", "word", 2, True), ("word", "word", "2.0", True),
    ("word", "word", "Open", False),
])
def test_equals_and_in_compare_numbers_as_numbers_and_booleans_only_with_booleans(
        config: s.Config, rule: str, field: str, value: Any, holds: bool) -> None:
    fired = feed(config, rule, {field: value})
    assert bool(fired) is holds, fired


def test_a_value_that_says_nothing_leaves_a_firing_alert_firing(config: s.Config) -> None:
    # "error" is no temperature, and a reading without its own limit has no bound
    assert feed(config, "warm", {"temperature": 9}, {"temperature": "error"},
                {"temperature": 5}) == [("firing", "temperature", 9.0),
                                        ("resolved", "temperature", 5.0)]
    assert feed(config, "over-limit", {"temperature": 9, "max_temp": 6},
                {"temperature": 5, "max_temp": "n/a"}, {"temperature": 4, "max_temp": 6}) == [
        ("firing", "temperature", 9.0), ("resolved", "temperature", 4.0)]


def test_lag_needs_a_server_time(config: s.Config) -> None:
    engine = Engine(config.rules, config.sources, 0.0)
    late = notices(engine.receive(Message("cold", "d1", 0.0, {}, 100.0), 100.0))
    assert [(n.rule, n.value) for n in late if n.rule == "lag"] == [("lag", 100.0)]
    assert feed(config, "lag", {"x": 1}, srv=False) == []


def test_n_of_m_is_undecided_only_while_it_could_still_hold(config: s.Config) -> None:
    # 1 null of 2 with 2 of 4 needed: could still hold, so a firing alert would stay; one
    # value of 4 messages with no null: decided, does not hold
    assert feed(config, "gap-of", {"level": None}, {"level": 1}, {"level": None}) == [
        ("firing", "level", None)]
    assert feed(config, "gap-of", {"level": 1}, {"level": 1}, {"level": None},
                {"level": None}) == [("firing", "level", None)]


def test_source_down_reports_the_connection_down_then_up(config: s.Config) -> None:
    rule = s.Rule(config.rules[0].loc, "link", s.SourceDown(config.rules[0].loc, 60.0),
                  notify=("ops",))
    engine = Engine([rule], config.sources, 0.0)
    out = notices(engine.receive(SourceDown("cold", "closed"), 10.0))
    out += notices(engine.on_timer(70.0))
    out += notices(engine.receive(SourceUp("cold"), 80.0))
    assert [(n.rule, n.entity, n.state, n.at, n.field, n.value) for n in out] == [
        ("link", "cold", "firing", 70.0, "connection", "down"),
        ("link", "cold", "resolved", 80.0, "connection", "up")]


def test_a_gap_fires_again_after_it_resolved(config: s.Config) -> None:
    assert feed(config, "gap", {"fuel": None}, {"fuel": None}, {"fuel": 40}, {"fuel": None},
                {"fuel": None}) == [("firing", "fuel", None), ("resolved", "fuel", 40.0),
                                    ("firing", "fuel", None)]
    assert feed(config, "gap-of", {"level": None}, {"level": None}, {"level": 1},
                {"level": None}, {"level": None}) == [
        ("firing", "level", None), ("resolved", "level", 1.0), ("firing", "level", None)]


@pytest.mark.parametrize("behind", [0.0, 100.0])
def test_a_change_resolves_exactly_when_its_first_value_leaves_the_window(
        config: s.Config, behind: float) -> None:
    """On the entity's clock: a device whose clock is ``behind`` seconds slow resolves at
    the same daemon time."""
    engine = Engine(config.rules, config.sources, 0.0)
    out: list[Notification] = []
    for at, fuel in ((10.0, 10.0), (20.0, 9.5)):
        out += notices(engine.receive(Message("cold", "d1", at - behind, {"fuel": fuel}, at,
                                      absent_is_null=False), at))
    for _ in range(100):  # bounded: a timer that does not advance fails, not hangs
        if (deadline := engine.next_deadline()) is None or deadline >= 2000:
            break
        out += notices(engine.on_timer(deadline))
    drained = [(n.state, n.field, n.value, round(n.at, 3)) for n in out if n.rule == "drain"]
    assert drained == [("firing", "fuel", 9.5, 20.0), ("resolved", "fuel", 9.5, 610.0)]


def test_a_change_resolved_by_a_late_null_shows_the_last_value_sent(config: s.Config) -> None:
    # every number has left the window when the null comes: the notice keeps the last one
    engine = Engine(config.rules, config.sources, 0.0)
    out: list[Notification] = []
    for at, fuel in ((10.0, 10.0), (20.0, 9.5), (5000.0, None)):
        out += notices(engine.receive(Message("cold", "d1", at, {"fuel": fuel}, at,
                                              absent_is_null=False), at))
    assert [(n.state, n.value, n.at) for n in out if n.rule == "drain"] == [
        (NoticeKind.FIRING, 9.5, 20.0), (NoticeKind.RESOLVED, 9.5, 5000.0)]


def test_a_value_that_says_nothing_fires_nothing(config: s.Config) -> None:
    assert feed(config, "warm", {"temperature": "error"}, {"temperature": "error"}) == []
    assert feed(config, "over-limit", {"temperature": 9, "max_temp": "n/a"}) == []
    assert feed(config, "over-limit", {"temperature": "error", "max_temp": 6}) == []


# ---- status and composite conditions: what their notices say ------------------------------

FLEET_RULES = """\
sources:
  fleet: {type: navixy, hash: h, trackers: [1]}
channels: {ops: console://}
defaults: {notify: [ops], repeat: never}
rules:
  - name: blocked
    status: {in: [blocked]}
  - name: blocked-and-fast
    all:
      - status: {in: [blocked]}
      - threshold: {field: speed, above: 5}
  - name: hot-and-humid
    all:
      - threshold: {field: t, above: 8, clear_below: 7.5}
      - threshold: {field: h, above: 80}
  - name: hot-or-humid
    any:
      - threshold: {field: t, above: 8}
      - threshold: {field: h, above: 80}
  - name: drain-or-flood
    any:
      - change: {field: fuel, drop: 30, within: 10m}
      - threshold: {field: level, above: 100}
  - name: moving-and-draining
    all:
      - threshold: {field: speed, above: 0}
      - change: {field: fuel, drop: 30, within: 10m}
  - name: draining-while-moving
    all:
      - threshold: {field: speed, above: 0}
      - change: {field: fuel, drop: 30, within: 10m}
    clear_for: 10m
    repeat: 1m
"""


@pytest.fixture
def fleet(tmp_path: Path) -> s.Config:
    path = tmp_path / "rules.yaml"
    path.write_text(FLEET_RULES)
    return load_config(path, {})


def tracker(config: s.Config, rule: str, *events: dict[str, Any] | str
            ) -> list[tuple[str, str, Any]]:
    """(state, field, value) of one rule's notices; an event every 10 s: a message's fields,
    or a status."""
    engine = Engine(config.rules, config.sources, 0.0)
    engine.on_timer(0.0)
    out: list[Notification] = []
    for i, event in enumerate(events):
        at = 10.0 * (i + 1)
        if isinstance(event, str):
            out += notices(engine.receive(StatusChanged("fleet", "1", event), at))
        else:
            out += notices(engine.receive(Message("fleet", "1", at, event, at,
                                                  absent_is_null=False), at))
    return [(n.state, n.field, n.value) for n in out if n.rule == rule]


def test_a_status_notice_shows_the_status(fleet: s.Config) -> None:
    assert tracker(fleet, "blocked", "blocked", "normal") == [
        ("firing", "status", "blocked"), ("resolved", "status", "normal")]


def test_an_all_with_a_status_waits_for_a_status(fleet: s.Config) -> None:
    # no status yet: that part does not hold, whatever the speed
    assert tracker(fleet, "blocked-and-fast", {"speed": 9}) == []
    assert tracker(fleet, "blocked-and-fast", {"speed": 9}, "blocked") == [
        ("firing", "status", "blocked")]


def test_a_part_of_an_all_clears_at_its_own_clear_bound_once_firing(fleet: s.Config) -> None:
    assert tracker(fleet, "hot-and-humid", {"t": 9, "h": 85}, {"t": 7.8}, {"t": 7}) == [
        ("firing", "t", 9.0), ("resolved", "t", 7.0)]  # 7.8 is not below 7.5: still firing


def test_a_composite_shows_a_known_part_when_another_says_nothing(fleet: s.Config) -> None:
    # "error" is no temperature: the part says nothing, and the notice shows the humidity
    assert tracker(fleet, "hot-and-humid", {"t": 9, "h": 85}, {"t": "error"}) == [
        ("firing", "t", 9.0), ("resolved", "h", 85.0)]
    assert tracker(fleet, "hot-or-humid", {"t": 9, "h": 50}, {"t": "error"}) == [
        ("firing", "t", 9.0), ("resolved", "h", 50.0)]


def test_a_composite_change_says_the_change_and_wakes_to_resolve(fleet: s.Config) -> None:
    for name in ("drain-or-flood", "moving-and-draining"):
        engine = Engine(fleet.rules, fleet.sources, 0.0)
        engine.on_timer(0.0)
        engine.receive(Message("fleet", "1", 0.0, {"fuel": 300, "speed": 10}), 0.0)
        (fired,) = [n for n in notices(engine.receive(
            Message("fleet", "1", 60.0, {"fuel": 260, "speed": 10}), 60.0)) if n.rule == name]
        assert fired.change == (40.0, 300.0, 60.0), name  # 40 down from 300 in 60 s
        # no message more: the 300 of 0 s leaves the window at 600 s, and the engine wakes
        told: list[Notification] = []
        while (deadline := engine.next_deadline()) is not None and deadline < 700.0:
            told += [n for n in notices(engine.on_timer(deadline)) if n.rule == name]
        (resolved,) = told
        assert resolved.state == NoticeKind.RESOLVED and resolved.change is None, name
        assert 600.0 < resolved.at < 600.001, name


def test_explain_shows_the_first_part_of_a_composite_that_knows_nothing(
        fleet: s.Config) -> None:
    engine = Engine(fleet.rules, fleet.sources, 0.0)
    engine.receive(Message("fleet", "1", 10.0, {"t": "error", "h": "wet"}), 10.0)
    by = {r.rule: r for r in engine.explain("fleet/1", 20.0).rules}
    assert [(by[n].known, by[n].value) for n in ("hot-and-humid", "hot-or-humid")] == [
        (False, "error"), (False, "error")]


def test_a_repeat_while_clearing_tells_the_change_that_fired(fleet: s.Config) -> None:
    # stopped at 70 s: clear, waiting out clear_for; the drain goes on (50 by then), but the
    # repeat tells the change of the last time the whole held
    engine = Engine(fleet.rules, fleet.sources, 0.0)
    engine.on_timer(0.0)
    told: list[Notification] = []
    for at, fields in ((0.0, {"fuel": 300, "speed": 10}), (60.0, {"fuel": 260, "speed": 10}),
                       (70.0, {"fuel": 250, "speed": 0})):
        told += notices(engine.receive(Message("fleet", "1", at, fields), at))
    told += notices(engine.on_timer(120.0))
    assert [(n.state, n.repeat, n.change) for n in told if n.rule == "draining-while-moving"
            ] == [("firing", False, (40.0, 300.0, 60.0)), ("firing", True, (40.0, 300.0, 60.0))]


def test_explain_shows_a_result_that_says_nothing_as_not_holding_and_not_known(
        config: s.Config, fleet: s.Config) -> None:
    engine = Engine(config.rules, config.sources, 0.0)
    engine.receive(Message("cold", "d1", 10.0, {"temperature": "error"}), 10.0)
    engine.receive(Message("cold", "d2", 10.0, {"temperature": 9}), 10.0)  # no max_temp
    first = {r.rule: r for r in engine.explain("cold/d1", 20.0).rules}
    second = {r.rule: r for r in engine.explain("cold/d2", 20.0).rules}
    assert [(x.holds, x.known, x.value) for x in (first["warm"], second["over-limit"])] == [
        (False, False, "error"), (False, False, 9.0)]
    engine = Engine(fleet.rules, fleet.sources, 0.0)
    engine.receive(Message("fleet", "1", 10.0, {"speed": 9}), 10.0)  # no status yet
    blocked = {r.rule: r for r in engine.explain("fleet/1", 20.0).rules}["blocked"]
    assert (blocked.holds, blocked.known, blocked.value) == (False, False, None)
