"""The compiled paths give what evaluating every rule gives (issue 15: no behaviour change):
thresholds compiled into sorted bounds (or a table of the values they name), `change` and
`missing` rules skipped while they cannot hold, and `silent` rules left to their timer.

Thresholds compiled into sorted bounds reach only the rules whose condition holds; live
alerts are tracked in a set instead of a scan. A hypothesis property runs random rule sets
over random streams (late messages, nulls, text values, bounds hit exactly) through an engine
with the compiled index and through the reference engine that evaluates every rule a message
reaches, and compares every notification.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import Any

from hypothesis import example, given, settings, target
from hypothesis import strategies as st

from alertd.config import schema as s
from alertd.engine import Engine
from alertd.engine import notices as notes_of
from alertd.engine.compiled import FieldChanges, FieldThresholds
from alertd.engine.conditions import evaluate
from alertd.engine.history import DEPTH, FieldHistory, normalise
from alertd.errors import Loc
from alertd.model import Message, Notification, StatusChanged
from tests.budget import examples

LOC = Loc("test", 1)
SOURCES = {"cold": s.ElementSource(LOC, "cold", "k", ("readings",))}
FIELDS = ("a", "b")
BOUNDS = st.sampled_from([0.0, 1.0, 2.0, 2.5, 3.0, 5.0])
# what `equals` and `in` name: numbers (one written as text), true/false, text (one that
# is a number's text), and a value that is never sent
NAMED = [2.0, 5, "3.5", "3.0", True, False, "error", "on", -7.0, "inf"]


def test_starting_finds_exactly_the_bounds_passed() -> None:
    rules = [(0, s.Threshold(LOC, "v", above=2.0)), (1, s.Threshold(LOC, "v", above=5.0)),
             (2, s.Threshold(LOC, "v", below=1.0)), (3, s.Threshold(LOC, "v", above=4.0,
                                                                     below=1.5))]
    compiled = FieldThresholds(rules)
    assert sorted(compiled.starting(2.0)) == []  # equal to a bound: does not hold
    assert sorted(compiled.starting(2.1)) == [0]
    assert sorted(compiled.starting(4.5)) == [0, 3]
    assert sorted(compiled.starting(1.0)) == [3]
    assert sorted(compiled.starting(0.5)) == [2, 3]
    assert sorted(compiled.starting(9.0)) == [0, 1, 3]
    # between the highest `below` (1.5) and the lowest `above` (2.0), edges included, no
    # rule holds: answered without a search
    assert [sorted(compiled.starting(v)) for v in (1.5, 1.75, 2.0)] == [[], [], []]
    assert sorted(compiled.starting(1.4999)) == [3] and sorted(compiled.starting(2.001)) == [0]
    assert list(FieldThresholds([]).starting(7.0)) == []
    only_above = FieldThresholds([(0, s.Threshold(LOC, "v", above=2.0))])
    assert [list(only_above.starting(v)) for v in (-1e9, 2.0, 2.5)] == [[], [], [0]]
    only_below = FieldThresholds([(0, s.Threshold(LOC, "v", below=2.0))])
    assert [list(only_below.starting(v)) for v in (1e9, 2.0, 1.5)] == [[], [], [0]]


def test_values_start_exactly_the_rules_that_name_them() -> None:
    """``equals`` and ``in`` compiled into a table (``FieldMatches``): every value a field
    may hold (numbers, true/false, text, a number's text, an infinity kept as text) starts
    every rule whose condition now holds for it, as ``evaluate`` says, and no other; the
    one exception is a number and a text that reads the same ("inf"), which share a key
    and are told apart by the evaluation. Bounds beside them on the field still apply."""
    named: list[Any] = [2.0, 5, "3.5", "3.0", True, False, "error", "on", -7.0, "inf", "-0.0",
                        0.0, 1]
    rules = [(n, s.Threshold(LOC, "v", equals=value)) for n, value in enumerate(named)]
    rules.append((len(named), s.Threshold(LOC, "v", in_=(True, "error", 5.0))))
    rules.append((len(named) + 1, s.Threshold(LOC, "v", above=4.0)))
    compiled = FieldThresholds.of(rules)
    values = [2.0, 5.0, 3.5, 3.0, True, False, "error", "on", -7.0, 0.0, -0.0, 1.0, "inf",
              math.inf, -math.inf, "ON", None, [1, 2]]
    for value in values:
        holds = {n for n, c in rules if evaluate(c, _Only(value), False, 0.0).holds}
        started = set(compiled.starting(value))
        assert holds <= started, value
        shared = {n for n in started - holds if isinstance(value, float)
                  and str(value) == str(normalise(named[n] if n < len(named) else 0))}
        assert started - holds == shared, value
    assert not FieldThresholds.of(rules[-1:]).matches  # bounds alone: no table


class _Only:
    """An entity whose field ``v`` holds one value (for ``evaluate``)."""

    status = last_msg_time = last_srv_time = None
    offset = 0.0

    def __init__(self, value: Any) -> None:
        self.value = value

    def history(self, field: str) -> FieldHistory | None:
        history = FieldHistory()
        if self.value is not None:
            history.record(1.0, normalise(self.value))
        return history


def test_rules_naming_a_device_start_beside_open_rules_on_the_same_field() -> None:
    """An entity named by rules reads two indexes (the source's shared one and its own),
    looked up as one per field: every bound of both still starts its rule."""
    def rule(name: str, entities: tuple[str, ...] | None, **bounds: float) -> s.Rule:
        return s.Rule(LOC, name, s.Threshold(LOC, "a", **bounds), notify=("ops",),
                      entities=entities)

    rules = [rule("open-low", None, below=1.0), rule("open-high", None, above=9.0),
             rule("d1-low", ("d1",), below=5.0), rule("d1-high", ("d1",), above=7.0),
             rule("d1-band", ("d1",), above=3.0, below=1.0)]
    engine = Engine(rules, SOURCES, 0.0)
    fired = []
    for t, value in enumerate([4.0, 8.0, 0.5, 10.0], start=1):
        fired.append(sorted(n.rule for n in notes_of(engine.receive(
            Message("cold", "d1", float(t), {"a": value}), float(t))) if n.state == "firing"))
    # the band (above 3 or below 1) fires at 4 and stays firing through 8, 0.5 and 10
    assert fired == [["d1-band", "d1-low"], ["d1-high"], ["d1-low", "open-low"],
                     ["d1-high", "open-high"]]
    others = notes_of(engine.receive(Message("cold", "d2", 5.0, {"a": 0.5}), 5.0))
    assert [n.rule for n in others] == ["open-low"]  # d2 reads the shared index only


def test_named_values_start_their_rules_from_both_indexes_of_a_device() -> None:
    """The two indexes of an entity named by rules, merged per field: a shared threshold
    beside the device's own ``equals`` keeps the table of named values, and a value that a
    shared rule and one of the device's both name starts both."""
    def rule(name: str, entities: tuple[str, ...] | None, **bounds: Any) -> s.Rule:
        return s.Rule(LOC, name, s.Threshold(LOC, "a", **bounds), notify=("ops",),
                      entities=entities)

    rules = [rule("open-high", None, above=9.0), rule("open-on", None, equals="on"),
             rule("d1-on", ("d1",), equals="on"), rule("d1-off", ("d1",), in_=("off",)),
             rule("d2-high", ("d2",), above=20.0)]  # d2's own thresholds: no table
    engine = Engine(rules, SOURCES, 0.0)
    fired = {entity: [sorted(n.rule for n in notes_of(engine.receive(
        Message("cold", entity, float(t), {"a": value}), float(t))) if n.state == "firing")
        for t, value in enumerate(["on", 10.0, "off", 25.0], start=1)]
        for entity in ("d1", "d2")}
    assert fired == {"d1": [["d1-on", "open-on"], ["open-high"], ["d1-off"], []],
                     "d2": [["open-on"], ["open-high"], [], ["d2-high"]]}


def test_change_rules_are_reached_once_the_spread_reaches_their_amount() -> None:
    compiled = FieldChanges([(5.0, 1), (2.0, 0), (2.0, 2)])
    assert compiled.least == 2.0
    assert [sorted(compiled.reaching(v)) for v in (1.9, 2.0, 4.9, 5.0, math.inf)] == [
        [], [0, 2], [0, 2], [0, 1, 2], [0, 1, 2]]
    assert FieldChanges([]).least == math.inf and FieldChanges([]).reaching(math.inf) == []
    both = FieldChanges.merged(FieldChanges([(4.0, 3)]), compiled)
    assert (both.least, sorted(both.reaching(4.0))) == (2.0, [0, 2, 3])


def test_a_small_change_fires_beside_bigger_ones_on_the_same_field() -> None:
    """The `change` rules of one field read one spread: a rise of 3 reaches the rules that
    ask for 2 and 2.5 (the second naming the device: its own index, read with the shared
    one), not the one asking for 5, which a rise of 6 reaches later."""
    def rule(name: str, rise: float, entities: tuple[str, ...] | None = None) -> s.Rule:
        return s.Rule(LOC, name, s.Change(LOC, "a", 60.0, rise=rise), notify=("ops",),
                      entities=entities)

    engine = Engine([rule("big", 5.0), rule("small", 2.0), rule("d1-mid", 2.5, ("d1",))],
                    SOURCES, 0.0)
    fired = []
    for t, value in enumerate([1.0, 4.0, 7.0], start=1):
        fired.append(sorted(n.rule for n in notes_of(engine.receive(
            Message("cold", "d1", float(t), {"a": value}), float(t))) if n.state == "firing"))
    assert fired == [[], ["d1-mid", "small"], ["big"]]


def test_a_change_across_a_null_fires_and_a_small_one_among_nulls_is_skipped() -> None:
    """A field that some messages lack (a null in their place) keeps its nulls in its
    window; the spread skips them, as the change itself does: a rise of 3 across nulls
    fires, and the rule is not evaluated while the numbers lie closer than its amount."""
    rule = s.Rule(LOC, "jump", s.Change(LOC, "a", 600.0, rise=2.0), notify=("ops",))
    engine = Engine([rule], SOURCES, 0.0)
    fired = []
    for t, value in enumerate([None, 1.0, None, 1.5, None, 4.0], start=1):
        fired.append([n.rule for n in notes_of(engine.receive(
            Message("cold", "d1", float(t), {"a": value}), float(t))) if n.state == "firing"])
        history = engine._entities["cold/d1"].fields["a"]  # private: the skip is the point
        assert history.spread() == (0.5 if t in (4, 5) else 0.0 if t < 6 else 3.0)
    assert fired == [[], [], [], [], [], ["jump"]]


def test_missing_rules_are_reached_once_their_field_is_null() -> None:
    """A `missing` rule is compiled per field: a message that carries the field with a value
    cannot make it hold and does not reach it; one without the field (a null, for an
    ELEMENT reading) or with a null does, for a rule naming the device and an open one."""
    def rule(name: str, nulls: int, entities: tuple[str, ...] | None = None) -> s.Rule:
        return s.Rule(LOC, name, s.Missing(LOC, "a", nulls), notify=("ops",),
                      entities=entities)

    engine = Engine([rule("two-gaps", 2), rule("d1-gap", 1, ("d1",))], SOURCES, 0.0)
    seen = []
    for t, fields in enumerate([{"a": 1.0}, {"b": 2.0}, {"a": None}, {"a": 5.0}], start=1):
        seen.append(sorted((n.rule, n.state) for n in notes_of(engine.receive(
            Message("cold", "d1", float(t), fields), float(t)))))
    assert seen == [[], [("d1-gap", "firing")], [("two-gaps", "firing")],
                    [("d1-gap", "resolved"), ("two-gaps", "resolved")]]
    assert notes_of(engine.receive(Message("cold", "d2", 5.0, {"b": 1.0}), 5.0)) == []


def test_per_device_bounds_start_when_the_value_or_the_bound_moves() -> None:
    """Thresholds with a bound read from a field of the device are checked, not evaluated,
    when a message carries the field or the bound: a value past its device's bound starts
    an alert (the second of two checks in one message; one of two reached through the
    field), so does a bound moved past the value, in the shared index and in the device's
    own (a rule naming it)."""
    def rule(name: str, condition: s.Threshold,
             entities: tuple[str, ...] | None = None) -> s.Rule:
        return s.Rule(LOC, name, condition, notify=("ops",), entities=entities)

    rules = [rule("hot", s.Threshold(LOC, "a", above=s.FieldBound("a_max"))),
             rule("cold", s.Threshold(LOC, "b", below=s.FieldBound("b_min"))),
             rule("frozen", s.Threshold(LOC, "a", below=s.FieldBound("a_min"))),
             rule("d1-hot", s.Threshold(LOC, "a", above=s.FieldBound("a_lim")), ("d1",))]
    stream = [{"a": 5.0, "a_max": 10.0, "a_min": 0.0, "b": 3.0, "b_min": 1.0},
              {"a": 6.0, "b": 0.5}, {"a": 11.0, "b": 0.6}, {"b_min": 0.2}, {"c": 1.0},
              {"a_min": 20.0}, {"a_lim": 1.0}]
    events = [(float(t), Message("cold", "d1", float(t), fields, float(t)))
              for t, fields in enumerate(stream, start=1)]
    seen = [(n.rule, n.state, n.at) for n in notices(Engine(rules, SOURCES, 0.0), events)]
    assert seen == [("cold", "firing", 2.0), ("hot", "firing", 3.0), ("cold", "resolved", 4.0),
                    ("frozen", "firing", 6.0), ("d1-hot", "firing", 7.0)]
    assert notices(Engine(rules, SOURCES, 0.0, compiled=False), events) == \
        notices(Engine(rules, SOURCES, 0.0), events)


def test_readings_that_change_no_alert_evaluate_no_rule(monkeypatch: Any) -> None:
    """The compiled paths' promise (issue 15): whatever the kind of rule, a reading that
    starts nothing costs no evaluation. Values at a bound, text, a bound the device has not
    reported and a field no reading carries among them; evaluating every rule (the
    reference) evaluates hundreds, and a rule that cannot be compiled is counted too."""
    counted: list[str] = []

    def counting(condition: s.Condition, *args: Any) -> Any:
        counted.append(type(condition).__name__)
        return evaluate(condition, *args)

    monkeypatch.setattr("alertd.engine.engine.evaluate", counting)
    above, below = s.FieldBound("a_max"), s.FieldBound("b_min")
    conditions: list[s.Condition] = [
        s.Threshold(LOC, "a", above=100.0, clear_below=90.0), s.Threshold(LOC, "b", below=-9.0),
        s.Threshold(LOC, "c", equals="alarm"), s.Threshold(LOC, "c", in_=("x", 7.0)),
        s.Threshold(LOC, "e", equals="None"),  # the text, never a null
        s.Threshold(LOC, "a", above=above), s.Threshold(LOC, "b", above=9.0, below=below),
        s.Threshold(LOC, "b", above=s.FieldBound("b_max")),  # never reported
        s.Change(LOC, "a", 60.0, rise=50.0), s.Missing(LOC, "b", 2),
        s.AnyOf(LOC, (s.Threshold(LOC, "a", above=above), s.Missing(LOC, "c", 3))),
        s.AllOf(LOC, (s.Threshold(LOC, "b", below=-9.0), s.Change(LOC, "a", 60.0, drop=50.0))),
        s.Silent(LOC, 600.0)]
    rules = [s.Rule(LOC, f"r{n}", c, notify=("ops",)) for n, c in enumerate(conditions)]
    stream: list[tuple[dict[str, Any], bool]] = [
        ({"a_max": 50.0}, False),  # a bound before the value: nothing to compare yet
        ({"a": 20.0, "b": 5.0, "c": "ok"}, True),  # b's lower bound not reported yet
        ({"a": 50.0, "b": 0.0, "c": "on", "b_min": 0.0}, True),  # both at their bounds
        ({"a": 22.0, "b": "error", "c": 2.0}, True),
        ({"a": 21.0, "b": 5.0, "c": "ok", "e": None}, True),
        ({"a_max": 30.0, "b_min": -1.0}, False)]
    events = [(10.0 * t, Message("cold", "d1", 10.0 * t, fields, 10.0 * t,
                                 absent_is_null=nulls))
              for t, (fields, nulls) in enumerate(stream, start=1)]
    assert notices(Engine(rules, SOURCES, 0.0), events) == [] and counted == []
    assert notices(Engine(rules, SOURCES, 0.0, compiled=False), events) == []
    assert len(counted) > 40  # the reference evaluates them; the count sees it
    counted.clear()
    either = s.AnyOf(LOC, (s.Status(LOC, ("blocked",)), s.Threshold(LOC, "a", above=100.0)))
    notices(Engine([*rules, s.Rule(LOC, "stuck", either, notify=("ops",))], SOURCES, 0.0),
            events)
    assert counted == ["AnyOf"] * 4  # a `status` part is not compiled: each reading of `a`


def test_a_silent_rule_fires_after_the_last_message_though_messages_do_not_evaluate_it(
        ) -> None:
    """A `silent` rule with no alert is left to the entity's timer: the first message asks
    for a wake-up 20 s later; the messages before it only move the moment, so the timer
    looks at 20 s, waits on, and the alert fires 20 s after the last message (39 s), as
    when every message evaluated it; the next message resolves it, and the silence after
    it fires it again."""
    rules = [s.Rule(LOC, "quiet", s.Silent(LOC, 20.0), notify=("ops",)),
             s.Rule(LOC, "hot", s.Threshold(LOC, "a", above=5.0), notify=("ops",))]
    events = [(float(t), Message("cold", "d1", float(t), {"a": 1.0}, float(t)))
              for t in (0, 10, 19)]
    events.append((50.0, Message("cold", "d1", 50.0, {"a": 1.0}, 50.0)))
    seen = [(n.rule, n.state, n.at) for n in notices(Engine(rules, SOURCES, 0.0), events)]
    assert seen == [("quiet", "firing", 39.0), ("quiet", "resolved", 50.0),
                    ("quiet", "firing", 70.0)]  # and again, 20 s after that one
    assert notices(Engine(rules, SOURCES, 0.0, compiled=False), events) == \
        notices(Engine(rules, SOURCES, 0.0), events)


def test_a_device_with_a_firing_alert_that_goes_quiet_fires_its_silent_rule() -> None:
    """Every message of a device with a live alert evaluates that alert, not its `silent`
    rule: the wake-up the `silent` rule needs is asked for all the same, so silence after
    the last message fires it 20 s later, beside the alert still firing."""
    rules = [s.Rule(LOC, "quiet", s.Silent(LOC, 20.0), notify=("ops",)),
             s.Rule(LOC, "hot", s.Threshold(LOC, "a", above=5.0), notify=("ops",))]
    events = [(float(t), Message("cold", "d1", float(t), {"a": 10.0 + t}, float(t)))
              for t in (0, 10)]
    seen = [(n.rule, n.state, n.at) for n in notices(Engine(rules, SOURCES, 0.0), events)]
    assert seen == [("hot", "firing", 0.0), ("quiet", "firing", 30.0)]


@st.composite
def threshold(draw: st.DrawFn) -> s.Threshold:
    field = draw(st.sampled_from(FIELDS))
    kind = draw(st.sampled_from(["above", "below", "band", "equals", "in", "field"]))
    if kind == "field":  # per-device bounds: read from another field of the entity
        bound = s.FieldBound(draw(st.sampled_from([f for f in (*FIELDS, "c") if f != field])))
        return draw(st.sampled_from([
            s.Threshold(LOC, field, above=bound),
            s.Threshold(LOC, field, above=bound, clear_below=1.0),
            s.Threshold(LOC, field, below=bound, clear_above=bound),
            s.Threshold(LOC, field, above=bound, below=1.0),
            s.Threshold(LOC, field, above=3.0, below=bound)]))
    if kind == "equals":  # numbers as numbers, true as itself, the rest as text
        return s.Threshold(LOC, field, equals=draw(st.sampled_from(NAMED)))
    if kind == "in":
        return s.Threshold(LOC, field, in_=tuple(draw(st.lists(st.sampled_from(NAMED),
                                                                min_size=1, max_size=3))))
    if kind == "above":
        above = draw(BOUNDS)
        clear = draw(st.one_of(st.none(), st.sampled_from([above - 0.5, above])))
        return s.Threshold(LOC, field, above=above, clear_below=clear)
    if kind == "below":
        below = draw(BOUNDS)
        clear = draw(st.one_of(st.none(), st.sampled_from([below + 0.5, below])))
        return s.Threshold(LOC, field, below=below, clear_above=clear)
    return s.Threshold(LOC, field, above=3.0, below=1.0)


@st.composite
def change(draw: st.DrawFn) -> s.Change:
    """A `change` rule: with no alert, skipped while its field's numbers are closer together
    than its amount (``FieldHistory.spread``)."""
    # n: numbers only; m: numbers and nulls (the spread skips nulls): the skip acts on both
    field = draw(st.sampled_from(("n", "n", "m", "m", *FIELDS)))
    amount = draw(st.sampled_from([0.5, 2.0, 2.5, 4.0]))
    within = draw(st.sampled_from([20.0, 60.0]))
    if draw(st.booleans()):
        return s.Change(LOC, field, within, drop=amount)
    return s.Change(LOC, field, within, rise=amount)


@st.composite
def rule_set(draw: st.DrawFn) -> list[s.Rule]:
    rules = []
    for number in range(draw(st.integers(1, 6))):
        condition: s.Condition = draw(st.one_of(
            threshold(), threshold(),
            st.builds(lambda c: s.AnyOf(LOC, (c, s.Threshold(LOC, "c", above=1.0))),
                      threshold()),
            st.builds(lambda c, d: s.AllOf(LOC, (c, d)), threshold(), threshold()),
            st.builds(lambda c, d: s.AnyOf(LOC, (c, s.AllOf(LOC, (d, s.Missing(LOC, "b", 1))))),
                      threshold(), threshold()),
            # a part with no data: `missing` beside a threshold, or two of them
            st.builds(lambda c: s.AllOf(LOC, (s.Missing(LOC, "a", 2), c)), threshold()),
            st.just(s.AnyOf(LOC, (s.Missing(LOC, "a", 1, 3), s.Missing(LOC, "c", 1)))),
            # a `change` part (reached as a `change` rule is): compiled; a `status` part or
            # an `_age` one is not, and the whole is evaluated as it was
            st.builds(lambda c: s.AllOf(LOC, (c, s.Change(LOC, "n", 20.0, rise=2.0))),
                      threshold()),
            st.builds(lambda c, d: s.AnyOf(LOC, (d, s.AllOf(LOC, (c, d)))), threshold(),
                      change()),
            st.builds(lambda c: s.AllOf(LOC, (s.Status(LOC, ("blocked",)), c)), threshold()),
            st.builds(lambda c: s.AnyOf(LOC, (s.Status(LOC, ("blocked", "unknown")), c)),
                      threshold()),
            st.just(s.AllOf(LOC, (s.Status(LOC, ("blocked",)), s.Missing(LOC, "a", 1)))),
            st.builds(lambda c: s.AllOf(LOC, (c, s.Threshold(LOC, "_age", above=20.0))),
                      threshold()),
            st.just(s.Missing(LOC, "a", 2)),
            # left to the entity's timer, not evaluated at each message
            st.sampled_from([s.Silent(LOC, 20.0), s.Silent(LOC, 45.0)]),
            change()))
        rules.append(s.Rule(
            LOC, f"r{number}", condition, notify=("ops",),
            # rules naming d1 make its own index, read with the shared one (_reach_both)
            entities=draw(st.sampled_from([None, None, ("d1",)])),
            for_=draw(st.sampled_from([0.0, 0.0, 20.0])),
            clear_for=draw(st.sampled_from([0.0, 15.0])),
            repeat=draw(st.sampled_from([None, 60.0])),
            flapping=draw(st.sampled_from([None, s.Flapping(3, 100.0)]))))
    return rules


VALUES = st.one_of(st.sampled_from([0.0, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0]),
                   st.none(), st.just("error"), st.just("3.5"), st.just(True),
                   st.sampled_from([False, "on", "3.0", 5, -0.0, "inf", "nan", math.inf]))


@st.composite
def stream(draw: st.DrawFn) -> list[tuple[float, Message | StatusChanged]]:
    out: list[tuple[float, Message | StatusChanged]] = []
    t = 0.0
    for _ in range(draw(st.integers(1, 40))):
        t += draw(st.sampled_from([1.0, 5.0, 12.0, 30.0]))
        entity = draw(st.sampled_from(["d1", "d2"]))
        fields = draw(st.dictionaries(st.sampled_from(FIELDS + ("c",)), VALUES, min_size=1))
        if draw(st.booleans()):
            fields["n"] = draw(st.sampled_from([0.0, 0.5, 1.0, 2.5, 3.0, 4.5]))
        if draw(st.booleans()):
            fields["m"] = draw(st.sampled_from([0.0, 1.0, 2.5, 4.5, None, None]))
        lag = draw(st.sampled_from([0.0, 0.0, 0.0, 8.0, 25.0]))  # some arrive late
        out.append((t, Message("cold", entity, t - lag, fields, t)))
        if draw(st.integers(0, 5)) == 0:  # a tracker's status (`status` parts)
            status = draw(st.sampled_from(["normal", "blocked", "unknown"]))
            out.append((t, StatusChanged("cold", entity, status)))
    return out


def notices(engine: Engine, events: Sequence[tuple[float, Message | StatusChanged]]
            ) -> list[Notification]:
    out: list[Notification] = []
    for t, message in events:
        while (due := engine.next_deadline()) is not None and due <= t:
            out += notes_of(engine.on_timer(due))
        out += notes_of(engine.receive(message, t))
    end = events[-1][0] + 300 if events else 300
    while (due := engine.next_deadline()) is not None and due <= end:
        out += notes_of(engine.on_timer(due))
    return out


def by_moment(notes: list[Notification]) -> list[Notification]:
    """Notices in time order, each entity's in the order it gave them; those of different
    entities at one moment in the order of their entities' keys. Timers due at the same
    instant run in the order they were set, and a rule evaluated at every wake-up sets them
    in another order than a compiled one: which of two entities' notices at one moment comes
    first is not something the engine promises."""
    return sorted(notes, key=lambda note: (note.at, note.entity))


def _silent_tie() -> tuple[list[s.Rule], list[tuple[float, Message | StatusChanged]]]:
    """The stream (found by the property in a mutation run's database) where d2's `silent`
    alert fires at 122 s and d1's resolves at 122 s: the reference engine, woken by d2's
    other rules meanwhile, set d2's timer after d1's and gave d1's notice first."""
    def rule(name: str, condition: s.Condition, **options: Any) -> s.Rule:
        return s.Rule(LOC, name, condition, notify=("ops",), clear_for=15.0, **options)
    rules = [
        rule("r0", s.AnyOf(LOC, (s.Status(LOC, ("blocked", "unknown")),
                                 s.Threshold(LOC, "b", above=3.0, below=s.FieldBound("c")))),
             for_=20.0, flapping=s.Flapping(3, 100.0)),
        rule("r1", s.AllOf(LOC, (s.Threshold(LOC, "b", below=1.0, clear_above=1.5),
                                 s.Change(LOC, "n", 20.0, rise=2.0))), for_=20.0,
             repeat=60.0),
        rule("r2", s.Silent(LOC, 20.0))]
    messages: list[tuple[float, float, str, dict[str, Any]]] = [
        (30.0, 30.0, "d2", {"b": 4.0, "m": 2.5}), (60.0, 60.0, "d1", {"b": 5, "c": "error",
                                                                      "a": 1.0}),
        (90.0, 90.0, "d2", {"b": "on", "c": True, "a": "error", "n": 0.0}),
        (102.0, 102.0, "d2", {"b": True, "n": 3.0}),
        (107.0, 99.0, "d1", {"a": None, "b": math.inf, "c": None, "n": 1.0}),
        (137.0, 137.0, "d2", {"b": None, "a": None}), (138.0, 113.0, "d2", {"b": 4.0})]
    events: list[tuple[float, Message | StatusChanged]] = []
    for at, measured, entity, fields in messages:
        events.append((at, Message("cold", entity, measured, fields, at)))
        if at in (30.0, 60.0):
            events.append((at, StatusChanged("cold", entity,
                                             "normal" if entity == "d2" else "blocked")))
    return rules, events


@settings(max_examples=examples(150), deadline=None)
@given(rule_set(), stream())
@example(*_silent_tie())
def test_compiled_thresholds_notify_as_evaluating_every_rule(
        rules: list[s.Rule], events: list[tuple[float, Message | StatusChanged]]) -> None:
    fast = notices(Engine(rules, SOURCES, 0.0), events)
    reference = notices(Engine(rules, SOURCES, 0.0, compiled=False), events)
    target(float(len(reference)))  # steer towards streams that notify a lot
    assert by_moment(fast) == by_moment(reference)


# ---- compact histories against the deques they replaced ------------------------------------


class DequeHistory:
    """The two 12-deep deques and the window deque of alertd before compact histories,
    as the reference: same merging, same order, same pruning."""

    def __init__(self, horizon: float) -> None:
        from collections import deque

        self.all: deque[tuple[float, object]] = deque(maxlen=DEPTH)
        self.nonnull: deque[tuple[float, object]] = deque(maxlen=DEPTH)
        self.horizon = horizon
        self.window: deque[tuple[float, float]] | None = deque() if horizon > 0 else None

    @staticmethod
    def _insert(queue: Any, item: tuple[float, Any], depth: int) -> None:
        if not queue or item[0] > queue[-1][0]:
            queue.append(item)
        elif item[0] == queue[-1][0]:
            old = queue[-1]
            queue[-1] = old if item[1] is None and old[1] is not None else item
        else:
            items = list(queue)
            index = bisect.bisect_left(items, item[0], key=lambda entry: entry[0])
            if index < len(items) and items[index][0] == item[0]:
                old = items[index]
                items[index] = old if item[1] is None and old[1] is not None else item
            else:
                items.insert(index, item)
            queue.clear()
            queue.extend(items[-depth:])

    def record(self, t: float, value: Any) -> None:
        self._insert(self.all, (t, value), DEPTH)
        if value is not None:
            self._insert(self.nonnull, (t, value), DEPTH)
            if self.window is not None and isinstance(value, float):
                self._insert(self.window, (t, value), 10**6)
                self.prune(self.window[-1][0])
            elif self.window is not None:  # the one intended difference: text measured at
                kept = [e for e in self.window if e[0] != t]  # the same time as a number
                self.window.clear()  # replaces it in the window too (the deques kept both)
                self.window.extend(kept)

    def prune(self, newest: float) -> None:
        if self.window is None:
            return
        self.newest = max(getattr(self, "newest", newest), newest)  # a window never goes
        while self.window and self.window[0][0] < self.newest - self.horizon:  # back
            self.window.popleft()


HISTORY_VALUES = st.one_of(st.floats(-5, 5, allow_nan=False), st.none(), st.just("err"),
                           st.just(True))


@settings(max_examples=examples(300), deadline=None)
@given(st.sampled_from([0.0, 30.0]),
       st.lists(st.tuples(st.sampled_from(["record", "record", "record", "prune"]),
                          st.integers(0, 60), HISTORY_VALUES), max_size=80))
def test_compact_histories_keep_what_the_deques_kept(horizon: float,
                                                     steps: list[tuple[str, int, Any]]) -> None:
    compact, reference = FieldHistory(horizon), DequeHistory(horizon)
    newest = -1e9
    for action, time, value in steps:
        t = float(time)
        if action == "record":
            compact.record(t, value)
            reference.record(t, value)
        else:
            newest = max(newest, t)
            compact.prune(newest)
            reference.prune(newest)
        assert compact.all == list(reference.all)
        assert compact.nonnull == list(reference.nonnull)
        assert compact.newest() == (reference.nonnull[-1][1] if reference.nonnull else None)
        assert [compact.nulls(k) for k in (1, 3, 12)] == [
            sum(1 for _, v in list(reference.all)[-k:] if v is None) for k in (1, 3, 12)]
        if horizon:
            assert compact.window == list(reference.window or ())
