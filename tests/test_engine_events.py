"""What the engine reports (issue 14): typed events that carry their rule's channels and
say when an alert settled without a notice; dataclasses across the store boundary; a
restored pending alert fires with the value that holds; the loop's write schedule."""

from __future__ import annotations

import math

from alertd.config import schema as s
from alertd.engine import Engine, firing_at_start, notices
from alertd.engine.explain import EntitySeen, FieldSeen, RuleSeen, Why
from alertd.errors import Loc
from alertd.model import (AlertFired, AlertFlapping, AlertRepeated, AlertResolved, AlertSettled,
                          AlertState, Batch, Message, NoticeKind, SourceDown, SourceUp,
                          StatusChanged)
from alertd.records import AlertView, Position, StoredAlert
from alertd.writes import Unwritten, WriteSchedule, positions_of

LOC = Loc("test", 1)
FLEET = {"fleet": s.NavixySource(LOC, "fleet", "h", (1,))}


def rule(**options: object) -> s.Rule:
    condition = options.pop("condition", s.Threshold(LOC, "v", above=5.0))
    return s.Rule(LOC, str(options.pop("name", "hot")), condition,  # type: ignore[arg-type]
                  notify=options.pop("notify", ("ops", "pager")), **options)  # type: ignore[arg-type]


def msg(t: float, v: object, **more: object) -> Message:
    return Message("fleet", "1", t, {"v": v, **more}, absent_is_null=False)


def test_each_notice_is_an_event_of_its_kind_with_the_rules_channels() -> None:
    engine = Engine([rule(repeat=60.0)], FLEET, 0.0)
    (fired,) = engine.receive(msg(0.0, 9), 0.0)
    assert isinstance(fired, AlertFired) and fired.channels == ("ops", "pager")
    assert (fired.note.rule, fired.note.entity, fired.note.state, fired.note.value) == (
        "hot", "fleet/1", NoticeKind.FIRING, 9.0)
    (repeated,) = engine.on_timer(60.0)
    assert isinstance(repeated, AlertRepeated) and repeated.note.repeat
    assert repeated.channels == ("ops", "pager")
    (resolved,) = engine.receive(msg(70.0, 1), 70.0)
    assert isinstance(resolved, AlertResolved) and resolved.channels == ("ops", "pager")
    assert resolved.note.state is NoticeKind.RESOLVED


def test_a_rule_without_channels_still_reports_its_notices() -> None:
    engine = Engine([rule(notify=())], FLEET, 0.0)
    (fired,) = engine.receive(msg(0.0, 9), 0.0)
    assert isinstance(fired, AlertFired) and fired.channels == ()


def test_resolving_without_a_notice_settles_the_alert() -> None:
    """``resolved: false``: no resolved notice, but the planner must stop counting it."""
    engine = Engine([rule(resolved=False)], FLEET, 0.0)
    assert [type(e) for e in engine.receive(msg(0.0, 9), 0.0)] == [AlertFired]
    assert engine.receive(msg(10.0, 1), 10.0) == [AlertSettled("hot", "fleet/1")]
    assert engine.receive(msg(20.0, 1), 20.0) == []  # still resolved: nothing to say


def test_a_resolved_notice_is_not_also_a_settlement() -> None:
    engine = Engine([rule()], FLEET, 0.0)
    engine.receive(msg(0.0, 9), 0.0)
    events = engine.receive(msg(10.0, 1), 10.0)
    assert [type(e) for e in events] == [AlertResolved]


def test_a_resolve_held_back_while_flapping_settles_the_alert() -> None:
    flapping = s.Flapping(3, 600.0)
    engine = Engine([rule(flapping=flapping)], FLEET, 0.0)
    kinds = []
    for t, v in [(0.0, 9), (10.0, 1), (20.0, 9), (30.0, 1)]:
        kinds.append([type(e) for e in engine.receive(msg(t, v), t)])
    assert kinds == [[AlertFired], [AlertResolved], [AlertFlapping], [AlertSettled]]


def test_a_source_down_alert_reports_events_too() -> None:
    down = rule(name="down", condition=s.SourceDown(LOC, 60.0), resolved=False)
    engine = Engine([down], FLEET, 0.0)
    engine.receive(SourceDown("fleet"), 0.0)
    (fired,) = engine.on_timer(60.0)
    assert isinstance(fired, AlertFired) and fired.note.entity == "fleet"
    assert fired.channels == ("ops", "pager")


def test_the_store_boundary_is_dataclasses() -> None:
    engine = Engine([rule(for_=60.0)], FLEET, 0.0)
    assert engine.receive(msg(0.0, 9), 0.0) == []
    (stored,) = engine.take_changed()
    assert isinstance(stored, StoredAlert)
    assert (stored.rule, stored.entity, stored.state, stored.since) == (
        "hot", "fleet/1", AlertState.PENDING, 0.0)
    assert engine.alerts() == [AlertView("hot", "fleet/1", AlertState.PENDING, 0.0)]
    again = Engine([rule(for_=60.0)], FLEET, 10.0)
    assert again.restore([stored], 10.0) == 1
    assert again.alerts() == engine.alerts()


def test_a_restored_pending_alert_fires_with_the_newest_value_that_held() -> None:
    """The daemon saves what changed after each wake-up. 9 starts the pending period, 12
    arrives in a later wake-up; after a restart, with no new value read, ``for`` elapses:
    the notice must say 12 (as without the restart), not the 9 saved with the state change.
    Before the fix, a pending alert was saved only when its state changed: it said 9."""
    saved: dict[tuple[str, str], StoredAlert] = {}
    first = Engine([rule(for_=60.0)], FLEET, 0.0)
    for t, v in [(0.0, 9), (30.0, 12)]:
        assert first.receive(msg(t, v), t) == []
        saved.update({(a.rule, a.entity): a for a in first.take_changed()})  # a wake-up
    control = first.on_timer(60.0)
    assert [e.note.value for e in control if isinstance(e, AlertFired)] == [12.0]

    second = Engine([rule(for_=60.0)], FLEET, 40.0)  # the restart
    assert second.restore(saved.values(), 40.0) == 1
    (fired,) = second.on_timer(60.0)
    assert isinstance(fired, AlertFired) and fired.note.value == 12.0

    third = Engine([rule(for_=60.0)], FLEET, 40.0)  # a message without the rule's field
    third.restore(saved.values(), 40.0)
    (fired,) = third.receive(Message("fleet", "1", 65.0, {"w": 1}, absent_is_null=False), 65.0)
    assert isinstance(fired, AlertFired) and fired.note.value == 12.0


def test_an_unchanged_pending_value_is_not_written_again() -> None:
    engine = Engine([rule(for_=60.0)], FLEET, 0.0)
    engine.receive(msg(0.0, 9), 0.0)
    assert len(engine.take_changed()) == 1
    engine.receive(msg(10.0, 9), 10.0)
    assert engine.take_changed() == []


def test_firing_alerts_at_start_become_the_planners_seed() -> None:
    saved = [StoredAlert("hot", "fleet/1", AlertState.FIRING, 5.0,
                         {"severity": "critical", "field": "v", "value": 9.0,
                          "labels": {"site": "hh"}}),
             StoredAlert("slow", "fleet/2", AlertState.PENDING, 5.0, {}),
             StoredAlert("down", "fleet", AlertState.FIRING, 7.0, {})]
    notes = firing_at_start(saved)
    assert [(n.rule, n.entity, n.state, n.at, n.since, n.severity, n.source, n.entity_name,
             n.field, n.value, dict(n.labels)) for n in notes] == [
        ("hot", "fleet/1", NoticeKind.FIRING, 5.0, 5.0, "critical", "fleet", "1", "v", 9.0,
         {"site": "hh"}),
        ("down", "fleet", NoticeKind.FIRING, 7.0, 7.0, "", "fleet", "fleet", "", None, {})]


# ---- the engine loop's writes (pure) ----------------------------------------------------


def test_positions_alone_wait_except_each_sockets_first() -> None:
    schedule, work = WriteSchedule(1.0, (0.25, 5.0)), Unwritten()
    key = ("cold", "readings")
    work.positions[key] = Position("cold", "readings", "a")
    schedule.position(key, 10.0)
    assert schedule.due(work, 10.0)  # the first position of a socket: at once
    schedule.written(work)
    work = Unwritten()
    work.positions[key] = Position("cold", "readings", "b")
    schedule.position(key, 10.5)
    assert not schedule.due(work, 10.5)
    schedule.hold(work, 10.5)
    assert schedule.next_deadline() == 11.5
    assert not schedule.due(work, 11.4) and schedule.due(work, 11.5)


def test_alert_changes_are_written_at_once_and_failures_back_off() -> None:
    schedule, work = WriteSchedule(1.0, (0.25, 5.0)), Unwritten()
    work.add([StoredAlert("hot", "fleet/1", AlertState.PENDING, 0.0, {})], [])
    assert schedule.due(work, 0.0)
    retries = []
    now = 0.0
    for _ in range(7):
        schedule.failed(now)
        retries.append(schedule.next_deadline() - now)
        assert not schedule.due(work, now)  # nothing is written before the retry
        now = schedule.next_deadline()
        assert schedule.due(work, now)
    assert retries == [0.25, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    schedule.written(work)
    assert schedule.next_deadline() == math.inf


def test_the_inbox_gets_one_offer_per_channel_in_event_order() -> None:
    engine = Engine([rule(resolved=False), rule(name="cold", notify=("mail",),
                                               condition=s.Threshold(LOC, "w", above=5.0))],
                    FLEET, 0.0)
    work = Unwritten()
    work.add(engine.take_changed(), engine.receive(msg(0.0, 9, w=9), 0.0))
    work.add(engine.take_changed(), engine.receive(msg(10.0, 1, w=9), 10.0))
    assert [(o.channel, o.note.rule) for o in work.offers()] == [
        ("ops", "hot"), ("pager", "hot"), ("mail", "cold")]
    assert [n.rule for n in work.notes()] == ["hot", "cold"]
    assert work.events[-1] == AlertSettled("hot", "fleet/1")
    assert set(work.alerts) == {("hot", "fleet/1"), ("cold", "fleet/1")}


def test_a_batch_brings_its_sockets_and_its_trackers_positions() -> None:
    batch = Batch("fleet", (), "socket", "c1", positions=(Position("fleet", "tracker/1", "p1"),))
    assert positions_of(batch) == [Position("fleet", "socket", "c1"),
                                   Position("fleet", "tracker/1", "p1")]
    assert positions_of(Batch("fleet", ())) == []


# ---- source_down alerts, reloads and restarts (issue 13: mutation survivors) --------------

YARD = {**FLEET, "yard": s.NavixySource(LOC, "yard", "h", (2,))}


def down_rule(name: str = "down", after: float = 60.0, **options: object) -> s.Rule:
    return rule(name=name, condition=s.SourceDown(LOC, after), **options)


def test_each_source_down_rule_and_source_has_its_own_alert() -> None:
    """Rules in file order, the slow one first: it not holding yet must not stop the fast one;
    each source's alert is its own, and each change is saved."""
    engine = Engine([down_rule("slow", 120.0), down_rule("fast", 30.0)], YARD, 0.0)
    engine.receive(SourceDown("fleet"), 0.0)
    engine.receive(SourceDown("yard"), 0.0)
    assert engine.take_changed() == []
    fired = engine.on_timer(30.0)
    assert sorted((e.note.rule, e.note.entity) for e in fired if isinstance(e, AlertFired)) \
        == [("fast", "fleet"), ("fast", "yard")]
    assert sorted((a.rule, a.entity, a.state) for a in engine.take_changed()) == [
        ("fast", "fleet", AlertState.FIRING), ("fast", "yard", AlertState.FIRING)]
    assert engine.on_timer(60.0) == [] and engine.take_changed() == []  # nothing new
    fired = engine.on_timer(120.0)
    assert sorted((e.note.rule, e.note.entity) for e in fired) == [
        ("slow", "fleet"), ("slow", "yard")]


def test_a_source_down_alert_repeats_and_resolves_once() -> None:
    engine = Engine([down_rule(repeat=300.0)], FLEET, 0.0)
    engine.receive(SourceDown("fleet"), 0.0)
    assert [type(e) for e in engine.on_timer(60.0)] == [AlertFired]
    assert engine.next_deadline() == 360.0
    assert [type(e) for e in engine.on_timer(360.0)] == [AlertRepeated]
    assert [type(e) for e in engine.receive(SourceUp("fleet"), 400.0)] == [AlertResolved]
    assert engine.receive(SourceDown("fleet"), 410.0) == []  # resolved: nothing to settle
    assert engine.receive(SourceUp("fleet"), 420.0) == []


def test_a_source_down_alert_restored_firing_keeps_firing_until_the_source_is_up() -> None:
    """After a restart the daemon's sources start not connected (down since the start): an
    alert restored firing is not resolved because `after` has not elapsed again."""
    first = Engine([down_rule()], FLEET, 0.0)
    first.receive(SourceDown("fleet"), 0.0)
    first.on_timer(60.0)
    saved = first.take_changed()
    second = Engine([down_rule()], FLEET, 100.0, connected=False)
    assert second.restore(saved, 100.0) == 1
    assert second.on_timer(100.0) == []
    assert second.alerts() == [AlertView("down", "fleet", AlertState.FIRING, 60.0)]
    (resolved,) = second.receive(SourceUp("fleet"), 110.0)
    assert isinstance(resolved, AlertResolved) and resolved.note.entity == "fleet"


def test_restore_skips_what_no_longer_fits_and_resumes_the_rest() -> None:
    first = Engine([rule(), down_rule()], FLEET, 0.0)
    first.receive(msg(0.0, 9), 0.0)
    first.receive(SourceDown("fleet"), 0.0)
    first.on_timer(60.0)
    saved = {a.rule: a for a in first.take_changed()}
    gone = StoredAlert("gone", "fleet/1", AlertState.FIRING, 0.0, saved["hot"].data)
    elsewhere = StoredAlert("hot", "depot/1", AlertState.FIRING, 0.0, saved["hot"].data)
    changed_kind = StoredAlert("hot", "fleet", AlertState.FIRING, 0.0, saved["hot"].data)
    second = Engine([rule(), down_rule()], FLEET, 100.0)
    assert second.restore([gone, elsewhere, changed_kind, saved["hot"], saved["down"]],
                          100.0) == 2
    assert sorted((a.rule, a.entity) for a in second.alerts()) == [("down", "fleet"),
                                                                   ("hot", "fleet/1")]


def test_a_reload_carries_every_entity_of_the_sources_that_remain() -> None:
    """The first entity's source left the file: the rest are still carried over (and
    counted), and their `silent` timers run on without a new message (5 and 6 are not
    listed trackers: no first look would wake them)."""
    quiet = rule(name="quiet", condition=s.Silent(LOC, 300.0))
    old = Engine([quiet], YARD, 0.0)
    old.receive(Message("fleet", "1", 0.0, {"v": 1}), 0.0)
    old.receive(Message("yard", "5", 10.0, {"v": 1}), 10.0)
    old.receive(Message("yard", "6", 20.0, {"v": 1}), 20.0)
    new = Engine([quiet], {"yard": YARD["yard"]}, 30.0)
    assert new.adopt(old, 30.0) == 3  # yard/2 (listed), 5 and 6
    new.on_timer(30.0)
    assert new.next_deadline() == 330.0  # silence counts from the reload at most
    fired = new.on_timer(330.0)
    assert sorted(e.note.entity for e in fired if isinstance(e, AlertFired)) == [
        "yard/2", "yard/5", "yard/6"]


def test_a_reload_that_lengthens_a_change_window_keeps_values_for_the_new_window() -> None:
    """`within` 600 s -> 900 s: a value 800 s old counts after the reload (kept under the
    new horizon), as it would had the file said 900 s from the start."""
    drain = rule(name="drain", condition=s.Change(LOC, "v", within=600.0, drop=30.0))
    longer = rule(name="drain", condition=s.Change(LOC, "v", within=900.0, drop=30.0))
    old = Engine([drain], FLEET, 0.0)
    assert old.receive(msg(0.0, 300.0), 0.0) == []
    new = Engine([longer], FLEET, 10.0)
    assert new.adopt(old, 10.0) == 1
    assert new.receive(msg(700.0, 285.0), 700.0) == []
    (fired,) = new.receive(msg(800.0, 265.0), 800.0)
    assert isinstance(fired, AlertFired) and fired.note.value == 265.0


def test_a_source_down_rule_with_no_grace_fires_on_the_first_look() -> None:
    """`source_down: true` (after 0 s): the alert is made and fires on the first look."""
    engine = Engine([down_rule(after=0.0)], FLEET, 0.0)
    (fired,) = engine.receive(SourceDown("fleet"), 5.0)
    assert isinstance(fired, AlertFired) and fired.note.entity == "fleet"


# ---- how the engine reaches rules, and its timers (issue 13: mutation survivors) ----------


def test_a_status_inside_any_of_is_evaluated_on_a_status_change() -> None:
    either = rule(name="stuck", condition=s.AnyOf(LOC, (
        s.Status(LOC, ("blocked",)), s.Threshold(LOC, "v", above=5.0))))
    engine = Engine([either], FLEET, 0.0)
    (fired,) = engine.receive(StatusChanged("fleet", "1", "blocked"), 5.0)
    assert isinstance(fired, AlertFired) and fired.note.rule == "stuck"


def test_a_missing_inside_any_of_counts_messages_without_its_fields() -> None:
    either = rule(name="gap", condition=s.AnyOf(LOC, (
        s.Missing(LOC, "v", 2), s.Threshold(LOC, "w", above=100.0))))
    engine = Engine([either], FLEET, 0.0)
    assert engine.receive(Message("fleet", "1", 1.0, {"x": 1}), 1.0) == []
    (fired,) = engine.receive(Message("fleet", "1", 2.0, {"x": 2}), 2.0)
    assert isinstance(fired, AlertFired) and fired.note.rule == "gap"


def test_an_age_inside_any_of_wakes_the_engine() -> None:
    either = rule(name="old", condition=s.AnyOf(LOC, (
        s.Threshold(LOC, "_age", above=300.0), s.Threshold(LOC, "v", above=5.0))))
    engine = Engine([either], FLEET, 0.0)
    assert engine.receive(msg(0.0, 1), 0.0) == []
    assert engine.next_deadline() is not None
    fired = engine.on_timer(301.0)
    assert [(type(e), e.note.rule) for e in fired] == [(AlertFired, "old")]


def test_a_notice_carries_its_rules_severity() -> None:
    engine = Engine([rule(severity="critical")], FLEET, 0.0)
    (fired,) = engine.receive(msg(0.0, 9), 0.0)
    assert fired.note.severity == "critical"


def stale_timer_at_60() -> Engine:
    """1's wake-up for `slow` (60) is moved to 15 by `fast`; at 15 nothing is left to wait
    for, so the timer at 60 is stale."""
    slow = rule(name="slow", for_=60.0)
    fast = rule(name="fast", for_=10.0, condition=s.Threshold(LOC, "w", above=5.0))
    engine = Engine([slow, fast], {"fleet": s.NavixySource(LOC, "fleet", "h", ())}, 0.0)
    assert engine.receive(Message("fleet", "1", 0.0, {"v": 9}), 0.0) == []
    assert engine.receive(Message("fleet", "1", 5.0, {"v": 1, "w": 9}), 5.0) == []
    assert [e.note.rule for e in engine.on_timer(15.0)] == ["fast"]
    return engine


def test_a_stale_timer_is_not_the_next_deadline() -> None:
    engine = stale_timer_at_60()
    deadline = engine.next_deadline()
    assert deadline is not None and deadline > 60.0  # not the stale 60


def test_on_timer_passes_over_a_stale_timer_to_the_next_one() -> None:
    engine = stale_timer_at_60()
    assert engine.receive(Message("fleet", "2", 20.0, {"v": 9}), 20.0) == []
    (fired,) = engine.on_timer(100.0)  # the stale 60 first, then 2's at 80
    assert isinstance(fired, AlertFired) and fired.note.entity == "fleet/2"


def test_the_engine_reports_each_sources_connection_and_explains_an_entity() -> None:
    engine = Engine([rule(), rule(name="quiet", condition=s.Silent(LOC, 300.0))], YARD, 0.0)
    assert engine.sources_down_since() == {"fleet": None, "yard": None}
    engine.receive(SourceDown("yard"), 5.0)
    assert engine.sources_down_since() == {"fleet": None, "yard": 5.0}
    engine.receive(msg(7.0, 9), 7.0)
    seen = engine.explain("fleet/1", 8.0)
    assert (seen.entity, seen.known, seen.last_msg_time, seen.source_up) == (
        "fleet/1", True, 7.0, True)
    assert [(r.rule, r.state, r.value) for r in seen.rules] == [
        ("hot", AlertState.FIRING, 9.0), ("quiet", AlertState.INACTIVE, 1.0)]  # quiet 1 s


def test_change_windows_keep_the_longest_within_of_the_field() -> None:
    """`change` conditions on one field (two in one any_of, one in another rule): the field
    keeps values as long as the longest `within` needs, whichever comes last."""
    either = rule(name="slow_drain", condition=s.AnyOf(LOC, (
        s.Change(LOC, "v", within=900.0, drop=30.0), s.Change(LOC, "v", within=60.0, drop=50.0))))
    shorter = rule(name="fast_drain", condition=s.Change(LOC, "v", within=60.0, drop=50.0))
    engine = Engine([either, shorter], FLEET, 0.0)
    assert engine.receive(msg(0.0, 300.0), 0.0) == []
    assert engine.receive(msg(700.0, 285.0), 700.0) == []
    (fired,) = engine.receive(msg(800.0, 265.0), 800.0)
    assert isinstance(fired, AlertFired) and fired.note.rule == "slow_drain"


def test_a_notice_says_who_and_what_as_the_rule_and_the_entity_give_it() -> None:
    hot = rule(for_=60.0, labels={"site": "hh"}, description="too hot")
    engine = Engine([hot], FLEET, 0.0)
    engine.receive(Message("fleet", "1", 0.0, {"v": 9}, entity_name="Truck 1",
                           absent_is_null=False), 0.0)
    (fired,) = engine.on_timer(60.0)
    note = fired.note
    assert (note.source, note.entity_name, dict(note.labels), note.description) == (
        "fleet", "Truck 1", {"site": "hh"}, "too hot")
    assert (note.at, note.since) == (60.0, 0.0)  # holding since 0
    (resolved,) = engine.receive(msg(90.0, 1), 90.0)
    assert (resolved.note.at, resolved.note.since) == (90.0, 0.0)  # the episode, from 0


def test_a_change_notice_says_the_change_and_its_resolve_does_not() -> None:
    drain = rule(name="drain", condition=s.Change(LOC, "v", within=600.0, drop=30.0))
    engine = Engine([drain], FLEET, 0.0)
    engine.receive(msg(0.0, 300.0), 0.0)
    (fired,) = engine.receive(msg(60.0, 260.0), 60.0)
    assert fired.note.change is not None
    (resolved,) = engine.receive(msg(700.0, 260.0), 700.0)
    assert isinstance(resolved, AlertResolved) and resolved.note.change is None


def test_a_silent_alert_says_how_long_it_was_quiet_and_fires_exactly_after() -> None:
    quiet = rule(name="quiet", condition=s.Silent(LOC, 300.0))
    engine = Engine([quiet], {"fleet": s.NavixySource(LOC, "fleet", "h", ())}, 0.0)
    engine.receive(msg(0.0, 1), 0.123)
    assert engine.next_deadline() == 300.123
    (fired,) = engine.on_timer(300.123)
    assert isinstance(fired, AlertFired)
    assert (fired.note.field, fired.note.value) == ("", 300.0)
    (listed,) = Engine([quiet], FLEET, 0.0).on_timer(300.0)  # never heard: from the start
    assert (listed.note.entity, listed.note.value) == ("fleet/1", 300.0)
    later = Engine([quiet], FLEET, 0.0)
    later.receive(msg(0.0, 1), 0.0)
    (late,) = later.on_timer(412.34567)  # a late wake-up: the quiet time, to the millisecond
    assert late.note.value == 412.346


def test_while_its_source_is_down_an_entitys_silence_waits_but_its_other_rules_do_not() -> None:
    quiet = rule(name="quiet", condition=s.Silent(LOC, 300.0))
    engine = Engine([quiet, rule()], FLEET, 0.0)
    engine.receive(SourceDown("fleet"), 1.0)
    (fired,) = engine.receive(msg(2.0, 9), 2.0)
    assert isinstance(fired, AlertFired) and fired.note.rule == "hot"


def test_restore_keeps_only_alerts_of_entities_and_sources_the_rule_still_covers() -> None:
    hot = rule(sources=("fleet", "yard"), entities=("1", "yard/5"))
    cold = rule(name="cold", sources=("fleet",))
    data = {"state": "firing", "since": 0.0, "started": 0.0, "last_notified": 0.0,
            "field": "v", "value": 9.0}
    saved = [StoredAlert("hot", "fleet/2", AlertState.FIRING, 0.0, data),
             StoredAlert("cold", "yard/2", AlertState.FIRING, 0.0, data),
             StoredAlert("hot", "fleet/3", AlertState.FIRING, 0.0, {"state": "nonsense"}),
             StoredAlert("hot", "fleet/1", AlertState.FIRING, 0.0, data),
             StoredAlert("hot", "yard/5", AlertState.FIRING, 0.0, data),
             StoredAlert("cold", "fleet/1", AlertState.FIRING, 0.0, data)]
    engine = Engine([hot, cold], YARD, 10.0)
    assert engine.restore(saved, 10.0) == 3
    assert sorted((a.rule, a.entity) for a in engine.alerts()) == [
        ("cold", "fleet/1"), ("hot", "fleet/1"), ("hot", "yard/5")]


def test_a_restored_source_down_alert_is_looked_at_on_the_first_wake_up() -> None:
    """Restored firing while the source is up (a rule test's engine starts connected): the
    first wake-up resolves it."""
    first = Engine([down_rule()], FLEET, 0.0)
    first.receive(SourceDown("fleet"), 0.0)
    first.on_timer(60.0)
    second = Engine([down_rule()], FLEET, 100.0)
    assert second.restore(first.take_changed(), 100.0) == 1
    assert second.next_deadline() == 100.0
    (resolved,) = second.on_timer(100.0)
    assert isinstance(resolved, AlertResolved)


def test_a_silent_alert_restored_firing_resolves_only_when_a_message_arrives() -> None:
    """SPEC: `silent` resolves when a message arrives. After a restart the daemon's sources
    come up a moment later; an entity still silent kept its alert firing (before the fix it
    was resolved at the reconnection, with no message, and fired again 300 s later)."""
    quiet = rule(name="quiet", condition=s.Silent(LOC, 300.0))
    lone = {"fleet": s.NavixySource(LOC, "fleet", "h", ())}
    first = Engine([quiet], lone, 0.0)
    first.receive(Message("fleet", "7", 0.0, {"v": 1}), 0.0)
    (fired,) = first.on_timer(300.0)
    assert isinstance(fired, AlertFired)
    second = Engine([quiet], lone, 500.0, connected=False)
    assert second.restore(first.take_changed(), 500.0) == 1
    assert second.on_timer(500.0) == []
    assert second.receive(SourceUp("fleet"), 505.0) == []
    for now in (505.0, 806.0, 2000.0):
        assert second.on_timer(now) == []
    assert second.alerts() == [AlertView("quiet", "fleet/7", AlertState.FIRING, 300.0)]
    (resolved,) = second.receive(Message("fleet", "7", 2100.0, {"v": 1}), 2100.0)
    assert isinstance(resolved, AlertResolved)


def test_a_resolved_gap_rule_says_nothing_more_on_later_values() -> None:
    """A `missing` rule is evaluated on every message: once resolved, a later value neither
    notifies nor settles it again."""
    gap = rule(name="gap", condition=s.Missing(LOC, "v", 2))
    engine = Engine([gap], FLEET, 0.0)
    assert engine.receive(msg(1.0, None), 1.0) == []
    assert [type(e) for e in engine.receive(msg(2.0, None), 2.0)] == [AlertFired]
    assert [type(e) for e in engine.receive(msg(3.0, 5), 3.0)] == [AlertResolved]
    assert engine.receive(msg(4.0, 6), 4.0) == []


def test_a_restored_alert_reminds_with_its_field_while_nothing_is_known() -> None:
    """After a restart a message without the field says nothing about a `missing` rule:
    the restored alert keeps its answer, and its reminder still names the field."""
    gap = rule(name="gap", condition=s.Missing(LOC, "v", 2), repeat=300.0)
    first = Engine([gap], FLEET, 0.0)
    first.receive(msg(1.0, None), 1.0)
    (fired,) = first.receive(msg(2.0, None), 2.0)
    second = Engine([gap], FLEET, 100.0)
    assert second.restore(first.take_changed(), 100.0) == 1
    assert second.receive(Message("fleet", "1", 200.0, {"w": 1}, absent_is_null=False),
                          200.0) == []
    (again,) = second.on_timer(302.0)
    assert isinstance(again, AlertRepeated)
    assert (again.note.field, again.note.value) == ("v", fired.note.value)


def test_a_daemons_engine_starts_with_its_sources_down_and_looks_at_them() -> None:
    """`connected=False` (the daemon): each source is down from the start until SourceUp,
    and its `source_down` rule fires if it never connects."""
    engine = Engine([down_rule()], FLEET, 100.0, connected=False)
    assert engine.sources_up() == {"fleet": False}
    assert engine.sources_down_since() == {"fleet": 100.0}
    assert engine.next_deadline() == 100.0
    assert engine.on_timer(100.0) == []
    (fired,) = engine.on_timer(160.0)
    assert isinstance(fired, AlertFired) and fired.note.entity == "fleet"


def test_an_entity_a_rule_names_by_key_counts_silence_from_the_start() -> None:
    quiet = rule(name="quiet", condition=s.Silent(LOC, 300.0), entities=("fleet/9",))
    engine = Engine([quiet], {"fleet": s.NavixySource(LOC, "fleet", "h", ())}, 0.0)
    (fired,) = engine.on_timer(300.0)
    assert isinstance(fired, AlertFired) and fired.note.entity == "fleet/9"


def test_a_rule_of_another_source_does_not_hide_the_rules_after_it() -> None:
    engine = Engine([rule(name="yard_only", sources=("yard",)), rule()], YARD, 0.0)
    (fired,) = engine.receive(msg(0.0, 9), 0.0)
    assert fired.note.rule == "hot"


def test_a_change_window_reaches_back_past_the_last_twelve_values() -> None:
    drain = rule(name="drain", condition=s.Change(LOC, "v", within=900.0, drop=30.0))
    engine = Engine([drain], FLEET, 0.0)
    assert engine.receive(msg(0.0, 300.0), 0.0) == []
    for t in range(50, 750, 50):  # 14 values that fell by 10 only
        assert engine.receive(msg(float(t), 290.0), float(t)) == []
    (fired,) = engine.receive(msg(800.0, 265.0), 800.0)  # 35 below the value of 0
    assert isinstance(fired, AlertFired) and fired.note.change == (35.0, 300.0, 800.0)


def test_each_overridden_entity_is_judged_by_its_own_override() -> None:
    odd = rule(condition=s.Change(LOC, "v", within=600.0, drop=30.0), overrides={
        "1": s.Change(LOC, "v", within=600.0, drop=5.0),
        "fleet/2": s.Change(LOC, "v", within=600.0, drop=50.0)})
    engine = Engine([odd], {"fleet": s.NavixySource(LOC, "fleet", "h", ())}, 0.0)
    for entity in ("1", "2"):
        assert engine.receive(Message("fleet", entity, 0.0, {"v": 100.0}), 0.0) == []
    (fired,) = engine.receive(Message("fleet", "1", 10.0, {"v": 90.0}), 10.0)
    assert fired.note.entity == "fleet/1"
    assert engine.receive(Message("fleet", "2", 10.0, {"v": 90.0}), 10.0) == []


# ---- explain: the engine's read-only view of one entity ------------------------------------


def explained_fleet() -> Engine:
    """Rules on fleet entities, whose readings are measured 5 s before they arrive (the event
    clock 5 s behind the daemon's): `v` 2, null, 9 at 100, 200, 300, with `lim` 5 and `w` 1
    on the first, a null `u` on the second; status normal."""
    rules = [
        rule(name="warm", condition=s.Threshold(LOC, "v", above=8.0, clear_below=7.5),
             for_=600.0, clear_for=300.0),
        rule(name="gap", condition=s.Missing(LOC, "v", nulls=2),
             overrides={"1": s.Missing(LOC, "v", nulls=1),
                        "fleet/2": s.Missing(LOC, "v", nulls=3)}),
        rule(name="jump", condition=s.Change(LOC, "v", within=900.0, rise=4.0), repeat=None),
        rule(name="quiet", condition=s.Silent(LOC, 1800.0)),
        rule(name="odd", condition=s.AllOf(LOC, (
            s.Threshold(LOC, "_lag", below=3600.0), s.Threshold(LOC, "t", below=0.0),
            s.Threshold(LOC, "u", below=0.0), s.Threshold(LOC, "w", above=100.0)))),
        rule(name="over", condition=s.Threshold(LOC, "v", above=s.FieldBound("lim"))),
        rule(name="down", condition=s.SourceDown(LOC, 300.0)),
    ]
    engine = Engine(rules, FLEET, 0.0)
    engine.on_timer(0.0)  # as the loop does: the first look at the listed entity
    engine.receive(StatusChanged("fleet", "1", "normal"), 50.0)
    for at, fields in ((100.0, {"v": 2, "lim": 5, "w": 1}), (200.0, {"v": None, "u": None}),
                       (300.0, {"v": 9})):
        engine.receive(Message("fleet", "1", at - 5.0, fields, at - 1.0,
                               entity_name="Truck 1", absent_is_null=False), at)
    return engine


def test_explain_shows_each_rule_of_an_entity_on_the_daemon_clock() -> None:
    engine = explained_fleet()
    conditions = {r.name: r.condition for r in engine.rules}
    now = 400.0625  # exact in binary: the quiet time rounds to 3 decimals
    v = FieldSeen("v", 9.0, 300.0, 3, 1, 2.0, 9.0)  # as of 300 (measured 295), on 3 messages
    assert engine.explain("fleet/1", now) == EntitySeen(
        "fleet/1", True, "Truck 1", "normal", 295.0, 300.0, True, 900.0, (
            RuleSeen("warm", conditions["warm"], True, True, 9.0, (8.0, None),
                     AlertState.PENDING, Why.PENDING, 300.0, 600.0, 100.0625, None, 900.0,
                     (v,)),
            # its override (1 null) fired on the null and resolved on the 9
            RuleSeen("gap", s.Missing(LOC, "v", nulls=1), False, True, 9.0, None,
                     AlertState.RESOLVED, Why.CONDITION_FALSE, None, 0.0, None, None, None,
                     (v,)),
            RuleSeen("jump", conditions["jump"], True, True, 9.0, None, AlertState.FIRING,
                     Why.FIRING, 300.0, 0.0, None, None, None, (v,)),  # repeat: never
            RuleSeen("quiet", conditions["quiet"], False, True, 100.062, None,
                     AlertState.INACTIVE, Why.CONDITION_FALSE, None, 0.0, None, None, None, ()),
            RuleSeen("odd", conditions["odd"], False, True, 4.0, None,  # _lag 4 s shown
                     AlertState.INACTIVE, Why.CONDITION_FALSE, None, 0.0, None, None, None,
                     (FieldSeen("t", None, None, 0, 0), FieldSeen("u", None, None, 1, 1),
                      FieldSeen("w", 1.0, 100.0, 1, 0))),
            RuleSeen("over", conditions["over"], True, True, 9.0, (5.0, None),
                     AlertState.FIRING, Why.FIRING, 300.0, 0.0, None, None,
                     300.0 + 4 * 3600.0, (FieldSeen("lim", 5.0, 100.0, 1, 0), v)),
        ), (RuleSeen("down", conditions["down"], False, True, "up", None, AlertState.INACTIVE,
                     Why.CONDITION_FALSE, None, 0.0, None, None, None, ()),))
    quiet = [r for r in engine.explain("fleet/1", 2100.0).rules if r.rule == "quiet"]
    assert [(r.holds, r.value) for r in quiet] == [(True, 1800.0)]  # quiet exactly `after`


def test_explain_shows_a_clearing_alert_and_the_source_down_rule_step_by_step() -> None:
    engine = explained_fleet()
    engine.on_timer(900.0)  # warm fires
    engine.receive(Message("fleet", "1", 995.0, {"v": 7.6}, absent_is_null=False), 1000.0)

    def seen(now: float) -> dict[str, tuple[object, ...]]:
        view = engine.explain("fleet/1", now)
        return {r.rule: (r.holds, r.value, r.bounds, r.state, r.why, r.since, r.pending_for,
                         r.clearing_since, r.next_check) for r in view.rules + view.source_rules}

    # firing: the clear bound 7.5 is in force, and 7.6 still holds
    assert seen(1000.0)["warm"] == (True, 7.6, (7.5, None), AlertState.FIRING, Why.FIRING,
                                    300.0, None, None, 900.0 + 4 * 3600.0)  # a repeat
    engine.receive(Message("fleet", "1", 1095.0, {"v": 7}, absent_is_null=False), 1100.0)
    assert seen(1100.0)["warm"] == (False, 7.0, (7.5, None), AlertState.FIRING, Why.CLEARING,
                                    300.0, None, 1100.0, 1400.0)  # clear_for ends at 1400
    engine.receive(SourceDown("fleet"), 1200.0)
    now = seen(1300.0)
    assert now["jump"][:4] == (False, 7.0, None, AlertState.RESOLVED)  # 2 left the window
    assert now["quiet"] == (False, 100.0, None, AlertState.INACTIVE, Why.HELD, None, None,
                            None, None)  # quiet counts from the source's change at 1200
    assert now["down"] == (False, "down for 100 s", None, AlertState.INACTIVE,
                           Why.CONDITION_FALSE, None, None, None, 1500.0)
    assert seen(1500.0)["down"][:4] == (True, "down for 300 s", None, AlertState.INACTIVE)
    engine.on_timer(1500.0)  # down fires; warm resolved at 1400
    now = seen(1600.0)
    assert now["down"] == (True, "down for 400 s", None, AlertState.FIRING, Why.FIRING,
                           1500.0, None, None, None)
    assert now["warm"] == (False, 7.0, (8.0, None), AlertState.RESOLVED, Why.CONDITION_FALSE,
                           None, None, None, None)
    engine.receive(SourceUp("fleet"), 1700.0)
    assert seen(1700.0)["down"] == (False, "up", None, AlertState.RESOLVED,
                                    Why.CONDITION_FALSE, None, None, None, None)


def test_explain_of_an_entity_not_heard_of_changes_nothing() -> None:
    engine = explained_fleet()
    view = engine.explain("fleet/2", 350.0)
    assert (view.entity, view.known, view.name, view.status, view.last_msg_time,
            view.last_receipt, view.source_up, view.next_wake) == (
        "fleet/2", False, None, None, None, None, True, None)
    nothing = FieldSeen("v", None, None, 0, 0)
    assert [(r.rule, r.holds, r.known, r.value, r.bounds, r.state, r.why, r.fields)
            for r in view.rules] == [
        ("warm", False, False, None, None, AlertState.INACTIVE, Why.NO_DATA, (nothing,)),
        ("gap", False, False, None, None, AlertState.INACTIVE, Why.NO_DATA, (nothing,)),
        ("jump", False, False, None, None, AlertState.INACTIVE, Why.NO_DATA, (nothing,)),
        ("quiet", False, True, 0.0, None, AlertState.INACTIVE, Why.CONDITION_FALSE, ()),
        ("odd", False, False, None, None, AlertState.INACTIVE, Why.NO_DATA,
         tuple(FieldSeen(f, None, None, 0, 0) for f in "tuw")),
        ("over", False, False, None, None, AlertState.INACTIVE, Why.NO_DATA,
         (FieldSeen("lim", None, None, 0, 0), nothing))]
    assert view.rules[1].condition == s.Missing(LOC, "v", nulls=3)  # its own override
    assert [r.rule for r in view.source_rules] == ["down"]
    assert engine.explain("fleet/2", 360.0).known is False  # the look made no entity
    assert engine.explain("nosuch/1", 350.0) == EntitySeen(
        "nosuch/1", False, None, None, None, None, None, None, (), ())


# ---- final mutation round (engine.py after issue 15) --------------------------------------


def test_a_status_change_no_rule_reads_changes_nothing() -> None:
    engine = Engine([rule()], FLEET, 0.0)  # no rule reads the status
    assert engine.receive(StatusChanged("fleet", "1", "blocked"), 0.0) == []
    assert engine.receive(StatusChanged("fleet", "7", "blocked"), 0.0) == []  # unlisted


def test_a_source_down_wakes_the_engine_when_its_rule_is_due_not_before() -> None:
    engine = Engine([down_rule(after=60.0)], FLEET, 0.0)
    engine.on_timer(0.0)  # the listed tracker's first look
    assert engine.receive(SourceDown("fleet"), 10.0) == []
    assert engine.next_deadline() == 70.0
    assert [type(e) for e in engine.on_timer(70.0)] == [AlertFired]


def test_a_source_down_alert_resolved_without_a_notice_settles() -> None:
    engine = Engine([down_rule(resolved=False)], FLEET, 0.0)
    engine.receive(SourceDown("fleet"), 0.0)
    assert [type(e) for e in engine.on_timer(60.0)] == [AlertFired]
    assert engine.receive(SourceUp("fleet"), 70.0) == [AlertSettled("down", "fleet")]


def test_a_restored_pending_alert_of_an_unlisted_entity_fires_without_a_new_message() -> None:
    """Tracker 2 is not listed by the source (no wake-up of its own at the start): restoring
    its pending alert must schedule its look, or `for` would pass unnoticed."""
    first = Engine([rule(for_=60.0)], FLEET, 0.0)
    assert first.receive(Message("fleet", "2", 0.0, {"v": 9}, absent_is_null=False), 0.0) == []
    second = Engine([rule(for_=60.0)], FLEET, 10.0)
    assert second.restore(first.take_changed(), 10.0) == 1
    (fired,) = second.on_timer(60.0)
    assert isinstance(fired, AlertFired) and fired.note.entity == "fleet/2"


def test_a_change_among_negative_numbers_fires() -> None:
    """The compiled engine skips a `change` rule while its field's numbers are closer than the
    amount (FieldHistory.spread): -10 then -20 are 10 apart, whatever their sum."""
    drop = rule(name="drop", condition=s.Change(LOC, "v", 600.0, drop=5.0))
    engine = Engine([drop], FLEET, 0.0)
    assert engine.receive(msg(0.0, -10), 0.0) == []
    (fired,) = engine.receive(msg(60.0, -20), 60.0)
    assert isinstance(fired, AlertFired) and fired.note.field == "v"


def test_a_late_message_reaches_a_threshold_by_the_newest_value_as_the_reference_does() -> None:
    """A compiled threshold is reached by the value conditions will read: for a late message
    that is the newest one (here rebuilt by a history-only message after a restart), not the
    late one; the reference engine, evaluating every rule the field reaches, fires too."""
    fired = []
    for compiled in (True, False):
        engine = Engine([rule()], FLEET, 0.0, compiled=compiled)
        newest = Message("fleet", "1", 10.0, {"v": 9}, absent_is_null=False, history_only=True)
        assert engine.receive(newest, 10.0) == []
        events = engine.receive(msg(5.0, 1), 11.0)
        fired.append([(type(e), e.note.value) for e in events if not isinstance(e, AlertSettled)])
    assert fired == [[(AlertFired, 9.0)], [(AlertFired, 9.0)]]


def test_a_message_at_the_newest_time_received_later_restarts_silent() -> None:
    """The rest of a message (Navixy sends an attribute in a later window, same msg_time) is
    news from the entity: `silent` counts from its receipt."""
    quiet = rule(name="quiet", condition=s.Silent(LOC, 60.0))
    engine = Engine([quiet], FLEET, 0.0)
    engine.receive(msg(0.0, 1), 0.0)
    engine.receive(Message("fleet", "1", 0.0, {"w": 2}, absent_is_null=False), 50.0)
    assert engine.on_timer(60.0) == []
    assert engine.next_deadline() == 110.0
    assert [type(e) for e in engine.on_timer(110.0)] == [AlertFired]


def test_a_late_message_older_than_the_kept_values_breaks_for_with_its_own_value() -> None:
    """14 values hold from 0 s; a late 1 at 0.5 s, older than the 12 values a history keeps,
    is judged on its own value: `for` restarts at 2 s, the oldest value kept after it."""
    engine = Engine([rule(for_=100.0)], FLEET, 0.0)
    for t in range(14):
        engine.receive(msg(float(t), 9), float(t))
    engine.receive(msg(0.5, 1), 14.0)
    assert engine.alerts() == [AlertView("hot", "fleet/1", AlertState.PENDING, 2.0)]
    assert engine.on_timer(100.0) == []
    assert [type(e) for e in engine.on_timer(102.0)] == [AlertFired]


def test_a_late_message_older_than_the_kept_values_that_holds_keeps_for() -> None:
    """14 values hold from 0 s; a late one at 0.5 s holds too: nothing broke the period,
    so `for` still counts from 0 s (it once moved to 0.5 s, past the 12 kept values)."""
    engine = Engine([rule(for_=100.0)], FLEET, 0.0)
    for t in range(14):
        engine.receive(msg(float(t), 9), float(t))
    assert engine.receive(msg(0.5, 9), 14.0) == []
    assert engine.alerts() == [AlertView("hot", "fleet/1", AlertState.PENDING, 0.0)]
    assert [type(e) for e in engine.on_timer(100.0)] == [AlertFired]


def test_a_listed_tracker_not_heard_from_has_no_name_and_no_status() -> None:
    """`alertd explain` shows null, not an empty text, for what was never reported."""
    seen = Engine([rule()], FLEET, 0.0).explain("fleet/1", 0.0)
    assert seen.known and seen.name is None and seen.status is None
    assert seen.last_msg_time is None and seen.last_receipt is None


def test_a_firing_change_alert_clears_after_its_big_step_left_the_history() -> None:
    """A firing `change` alert is evaluated on every message, even once the numbers the
    history keeps are all close together (the skip is only for rules with no alert)."""
    drop = rule(name="drop", condition=s.Change(LOC, "v", 60.0, drop=5.0), clear_for=120.0)
    engine = Engine([drop], FLEET, 0.0)
    kinds = [type(e) for e in engine.receive(msg(0.0, 10), 0.0)]
    kinds += [type(e) for e in engine.receive(msg(10.0, 4), 10.0)]
    for t in range(20, 400, 10):
        kinds += [type(e) for e in engine.on_timer(float(t))]
        kinds += [type(e) for e in engine.receive(msg(float(t), 4), float(t))]
    assert kinds == [AlertFired, AlertResolved]
    # clear from 70 s (the 10 left the window at 60 s, seen at the 70 s message) for 120 s
    assert engine.alerts() == [AlertView("drop", "fleet/1", AlertState.RESOLVED, 190.0)]


def test_a_tracker_known_only_by_its_status_goes_silent_from_the_sources_return() -> None:
    quiet = rule(name="quiet", condition=s.Silent(LOC, 60.0))
    engine = Engine([quiet], FLEET, 0.0)
    assert engine.receive(StatusChanged("fleet", "7", "normal"), 10.0) == []
    engine.receive(SourceDown("fleet"), 20.0)
    assert engine.receive(SourceUp("fleet"), 30.0) == []
    assert engine.on_timer(89.0) == []
    fired = [e for e in engine.on_timer(90.0) if e.note.entity == "fleet/7"]
    assert [type(e) for e in fired] == [AlertFired]


def test_every_pending_start_a_late_message_moves_is_saved() -> None:
    hot, warm = rule(for_=100.0), rule(name="warm", condition=s.Threshold(LOC, "v", above=3.0),
                                       for_=100.0)
    engine = Engine([hot, warm], FLEET, 0.0)
    for t in (0.0, 10.0, 20.0):
        engine.receive(msg(t, 9), t)
    engine.take_changed()
    engine.receive(msg(5.0, 1), 21.0)  # breaks both pending periods: they restart at 10 s
    assert sorted((a.rule, a.since) for a in engine.take_changed()) == [
        ("hot", 10.0), ("warm", 10.0)]


def test_an_override_of_a_rule_that_names_its_entity_applies_beside_the_shared_rules() -> None:
    """Tracker 7 gets the shared index (the rules for every entity) and one of its own (the
    rule naming it): the override in its own one must hold for it."""
    named = rule(name="named", entities=("fleet/7",),
                 overrides={"fleet/7": s.Threshold(LOC, "v", above=20.0)})
    engine = Engine([rule(name="shared", condition=s.Threshold(LOC, "w", above=5.0)), named],
                    FLEET, 0.0)
    seven = Message("fleet", "7", 0.0, {"v": 10}, absent_is_null=False)
    assert engine.receive(seven, 0.0) == []  # 10 is not above the override's 20
    (fired,) = engine.receive(Message("fleet", "7", 10.0, {"v": 30}, absent_is_null=False), 10.0)
    assert fired.note.rule == "named" and fired.note.value == 30.0
    ten = Message("fleet", "7", 20.0, {"v": 10}, absent_is_null=False)
    assert [type(e) for e in engine.receive(ten, 20.0)] == [AlertResolved]  # 10 <= 20


def test_values_rebuilt_after_a_restart_are_not_judged_again_by_an_unrelated_field() -> None:
    """History-only values were evaluated by the earlier run (its alert is restored from the
    store): a later message that does not carry the field must not judge them again."""
    stuck = rule(name="stuck", condition=s.Threshold(LOC, "v", equals=9))
    for compiled in (True, False):
        engine = Engine([stuck], FLEET, 0.0, compiled=compiled)
        rebuilt = Message("fleet", "1", 10.0, {"v": 9}, absent_is_null=False, history_only=True)
        assert engine.receive(rebuilt, 10.0) == []
        assert engine.receive(Message("fleet", "1", 20.0, {"w": 1}, absent_is_null=False),
                              20.0) == []
        assert engine.alerts() == []


def test_two_entities_named_by_one_rule_keep_their_own_overrides() -> None:
    """Tracker 7's index (the rule, no override) is shared by the entities alike; tracker 8's,
    with its override, is its own and is not taken from that cache."""
    named = rule(name="named", entities=("fleet/7", "fleet/8"),
                 overrides={"fleet/8": s.Threshold(LOC, "v", above=20.0)})
    engine = Engine([named], FLEET, 0.0)
    seven = engine.receive(Message("fleet", "7", 0.0, {"v": 10}, absent_is_null=False), 0.0)
    assert [e.note.entity for e in seven if isinstance(e, AlertFired)] == ["fleet/7"]
    eight = Message("fleet", "8", 0.0, {"v": 10}, absent_is_null=False)
    assert engine.receive(eight, 0.0) == []  # 10 is not above tracker 8's 20


def test_an_entitys_override_stays_its_own_beside_an_entity_named_by_the_same_rule() -> None:
    """A rule naming trackers 1 and 2 with an override for 1 (v > 3): each has an index of
    its own over the same rule, 1's built from its override; 2's must not be 1's, taken
    from the cache of shared indexes (a 4 fires for 1, not for 2, whose bound is 5)."""
    hot = rule(entities=("1", "2"), overrides={"fleet/1": s.Threshold(LOC, "v", above=3.0)})
    engine = Engine([hot], FLEET, 0.0)
    fired = [n.entity for entity in ("1", "2") for n in notices(engine.receive(
        Message("fleet", entity, 0.0, {"v": 4}, absent_is_null=False), 0.0))]
    assert fired == ["fleet/1"]


def test_an_override_below_the_rules_bound_fires_at_its_own_bound() -> None:
    """The entity's index is built from its override (v > 3), not from the rule's v > 5: a 4
    must reach the rule."""
    hot = rule(overrides={"fleet/1": s.Threshold(LOC, "v", above=3.0)})
    engine = Engine([hot], FLEET, 0.0)
    (fired,) = engine.receive(msg(0.0, 4), 0.0)
    assert isinstance(fired, AlertFired) and fired.note.value == 4.0
    assert engine.receive(Message("fleet", "2", 0.0, {"v": 4}, absent_is_null=False), 0.0) == []
