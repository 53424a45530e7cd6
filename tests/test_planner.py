"""The notify planner as timelines: silences, quiet hours and grouping, on a given clock."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alertd.config import schema as s
from alertd.errors import Loc
from alertd.model import AlertSettled, NoticeKind, Notification
from alertd.notify.decision import Decision, Reason, describe
from alertd.notify.mute import muted_until
from alertd.notify.plan import Message, Outgoing, outgoing
from alertd.notify.planner import Entry, Plan, Planner, Settled
from alertd.notify.silences import Silence, from_config
from tests.budget import examples

LOC = Loc("rules.yaml", 3)
BERLIN = ZoneInfo("Europe/Berlin")


def at(text: str, zone: ZoneInfo | timezone = timezone.utc) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=zone).timestamp()


T0 = at("2026-12-01T10:00:00")


def rule(name: str, group_wait: float = 5.0, **options: object) -> s.Rule:
    return s.Rule(LOC, name, s.Threshold(LOC, "t", above=8), notify=("ops",),  # type: ignore[arg-type]
                  group_wait=group_wait, **options)


def note(rule: str, entity: str, state: str = "firing", when: float = T0,
         since: float | None = None, **extra: object) -> Notification:
    return Notification(rule, entity, state, when, when if since is None else since,  # type: ignore[arg-type]
                        "warning", entity.split("/")[0], entity.split("/")[1], "t", 9,
                        **extra)


def channel(name: str = "ops", mute: tuple[s.MuteWindow, ...] = (),
            zone: str = "UTC") -> s.Channel:
    return s.Channel(LOC, name, ("json://127.0.0.1/x",), mute, zone)


NIGHT = s.MuteWindow(22 * 60, 7 * 60)  # "22:00-07:00"
WEEKEND = s.MuteWindow(0, 24 * 60, frozenset({6, 7}))  # "Sat-Sun 00:00-24:00"


class Timeline:
    """Feeds entries in at given times, calling on_timer as the daemon loop would."""

    def __init__(self, planner: Planner) -> None:
        self.planner = planner
        self.sent: list[tuple[float, str, str, str]] = []
        self.consumed: list[int] = []
        self.decided: list[Decision] = []
        self.ids = 0

    @property
    def decisions(self) -> list[str]:
        """The decisions as the daemon logs them."""
        return [describe(decision) for decision in self.decided]

    def offer(self, now: float, channel: str, n: Notification) -> None:
        self.run_until(now)
        self.ids += 1
        self.take(now, self.planner.step([Entry(self.ids, channel, n)], now))

    def run_until(self, end: float) -> None:
        while (due := self.planner.next_deadline()) is not None and due <= end:
            self.take(due, self.planner.on_timer(due))

    def take(self, now: float, plan: Plan) -> None:
        self.sent += [(now, m.channel, m.title, m.body) for m in plan.messages]
        self.consumed += plan.consumed
        self.decided += plan.decisions


def test_a_burst_within_group_wait_is_one_message_listed_by_rule() -> None:
    line = Timeline(Planner([rule("warm"), rule("door")], {"ops": channel()}))
    line.offer(T0, "ops", note("warm", "cold/room1"))
    line.offer(T0 + 1, "ops", note("warm", "cold/room2"))
    line.offer(T0 + 2, "ops", note("door", "cold/room1"))
    line.offer(T0 + 3, "ops", note("warm", "cold/room3", "resolved"))
    assert line.sent == []  # still waiting: the first notice is 3 s old
    line.run_until(T0 + 60)
    ((when, _, title, body),) = line.sent
    assert when == T0 + 5
    assert title == "[FIRING 3, RESOLVED 1] warm, door"
    assert body.splitlines()[0] == "warm (warning):"
    assert "  FIRING: room1 (cold/room1), t 9, since 10:00 UTC (0s)" in body.splitlines()
    assert body.count("FIRING") == 3 and "RESOLVED: room3" in body
    assert sorted(line.consumed) == [1, 2, 3, 4]
    assert "ops: 4 notices grouped into one message" in line.decisions


def test_a_notice_resumed_after_a_restart_is_not_held_again() -> None:
    line = Timeline(Planner([rule("warm", group_wait=30)], {"ops": channel()}))
    line.offer(T0 + 600, "ops", note("warm", "cold/room1", when=T0))
    assert [w for w, _, _, _ in line.sent] == [T0 + 600]


def test_a_lone_notice_reads_as_itself_and_group_wait_zero_sends_at_once() -> None:
    line = Timeline(Planner([rule("warm", group_wait=0)], {"ops": channel()}))
    line.offer(T0, "ops", note("warm", "cold/room1"))
    assert [(w, t) for w, _, t, _ in line.sent] == [(T0, "[FIRING] warm: room1")]
    line.offer(T0 + 9, "ops", note("warm", "cold/room1", repeat=True))
    assert line.sent[-1][2] == "[FIRING again] warm: room1"


def test_each_channel_groups_on_its_own() -> None:
    line = Timeline(Planner([rule("warm")], {"ops": channel(), "mail": channel("mail")}))
    line.offer(T0, "ops", note("warm", "cold/room1"))
    line.offer(T0 + 4, "mail", note("warm", "cold/room1", when=T0 + 4))
    line.run_until(T0 + 60)
    assert [(w - T0, c) for w, c, _, _ in line.sent] == [(5, "ops"), (9, "mail")]


def silence(starts: float, ends: float, **match: str) -> Silence:
    return Silence("a1b2c3d4", match, starts, ends, "defrost")


def test_a_silenced_alert_still_firing_is_notified_when_the_silence_ends() -> None:
    planner = Planner([rule("warm")], {"ops": channel()},
                      [silence(T0, T0 + 3600, rule="warm")])
    line = Timeline(planner)
    line.offer(T0 + 60, "ops", note("warm", "cold/room1"))
    line.offer(T0 + 120, "ops", note("warm", "cold/room2"))
    line.offer(T0 + 600, "ops", note("warm", "cold/room2", "resolved"))
    line.run_until(T0 + 3000)
    assert line.sent == [] and line.consumed == [1, 2, 3]
    assert [(d.reason, d.silence and d.silence.id) for d in line.decided] == \
        [(Reason.SILENCED, "a1b2c3d4")] * 3
    assert line.decisions[0] == "warm cold/room1 firing -> ops: silenced by a1b2c3d4 (defrost)"
    line.run_until(T0 + 7200)
    ((when, _, title, _),) = line.sent
    assert when == T0 + 3600 + 5 and title == "[FIRING] warm: room1"  # room2 resolved meanwhile
    assert line.decided[-1].reason is Reason.SILENCE_ENDED and line.consumed == [1, 2, 3]


def test_a_silence_matches_only_its_keys_and_labels() -> None:
    planner = Planner([rule("warm", group_wait=0)], {"ops": channel()},
                      [silence(T0, T0 + 3600, source="cold", **{"labels.site": "hh"})])
    line = Timeline(planner)
    line.offer(T0, "ops", note("warm", "cold/room1", labels={"site": "hh"}))
    line.offer(T0, "ops", note("warm", "cold/room2", labels={"site": "muc"}))
    line.offer(T0, "ops", note("warm", "fleet/7", labels={"site": "hh"}))
    assert [t for _, _, t, _ in line.sent] == ["[FIRING] warm: room2", "[FIRING] warm: 7"]


def test_a_silence_expired_early_releases_the_alert_on_the_next_step() -> None:
    planner = Planner([rule("warm", group_wait=0)], {"ops": channel()},
                      [silence(T0, T0 + 86400, entity="cold/room1")])
    line = Timeline(planner)
    line.offer(T0, "ops", note("warm", "cold/room1"))
    planner.set_silences([silence(T0, T0 + 30, entity="cold/room1")])  # `silence expire`
    line.run_until(T0 + 31)
    assert [(w, t) for w, _, t, _ in line.sent] == [(T0 + 30, "[FIRING] warm: room1")]


def test_quiet_hours_defer_to_one_digest_of_what_still_fires() -> None:
    mail = channel("mail", (NIGHT,), "Europe/Berlin")
    line = Timeline(Planner([rule("warm"), rule("door")], {"mail": mail}))
    night = at("2026-12-01T23:10:00", BERLIN)
    line.offer(night, "mail", note("warm", "cold/room1", when=night))
    line.offer(night + 60, "mail", note("door", "cold/room2", when=night + 60))
    line.offer(night + 120, "mail", note("door", "cold/room2", "resolved", when=night + 120))
    line.offer(night + 3600, "mail", note("warm", "cold/room1", when=night + 3600, since=night,
                                          repeat=True))
    line.run_until(at("2026-12-02T06:59:59", BERLIN))
    assert line.sent == []
    assert "quiet hours until 2026-12-02 07:00 Europe/Berlin" in line.decisions[0]
    line.run_until(at("2026-12-02T08:00:00", BERLIN))
    ((when, _, title, body),) = line.sent
    assert when == at("2026-12-02T07:00:00", BERLIN)
    assert title == "[DIGEST] 1 alert still firing after quiet hours"
    assert body.splitlines()[0] == "Quiet hours since 22:10 UTC are over. Still firing:"
    assert "  FIRING: room1 (cold/room1), t 9, since 22:10 UTC (7h50m)" in body
    assert body.endswith("1 more alert fired and resolved during quiet hours.")
    assert sorted(line.consumed) == [1, 2, 3, 4]


def test_quiet_hours_that_begin_within_group_wait_take_the_group() -> None:
    mail = channel("mail", (NIGHT,))
    line = Timeline(Planner([rule("warm")], {"mail": mail}))
    evening = at("2026-12-01T21:59:58")
    line.offer(evening, "mail", note("warm", "cold/room1", when=evening))
    line.run_until(at("2026-12-02T06:59:00"))
    assert line.sent == [] and "quiet hours began within group_wait" in line.decisions[-1]
    line.run_until(at("2026-12-02T08:00:00"))
    assert [(w, t) for w, _, t, _ in line.sent] == [
        (at("2026-12-02T07:00:00"), "[DIGEST] 1 alert still firing after quiet hours")]
    assert line.consumed == [1]


def test_nothing_still_firing_means_no_digest() -> None:
    mail = channel("mail", (NIGHT,))
    line = Timeline(Planner([rule("warm")], {"mail": mail}))
    night = at("2026-12-01T23:00:00")
    line.offer(night, "mail", note("warm", "cold/room1", when=night))
    line.offer(night + 60, "mail", note("warm", "cold/room1", "resolved", when=night + 60))
    line.run_until(night + 86400)
    assert line.sent == [] and line.consumed == [1, 2]
    assert line.decisions[-1] == "mail: quiet hours over; nothing is still firing " \
        "(1 alert came and went)"


def test_quiet_hours_keep_wall_clock_hours_across_daylight_saving() -> None:
    mail = channel("mail", (NIGHT,), "Europe/Berlin")
    # the night of 24-25 October 2026: clocks go back at 03:00 CEST
    assert muted_until(mail, at("2026-10-24T21:00:00")) == at("2026-10-25T06:00:00")
    assert muted_until(mail, at("2026-10-25T05:59:00")) == at("2026-10-25T06:00:00")
    assert muted_until(mail, at("2026-10-25T06:00:00")) is None
    assert muted_until(mail, at("2026-10-24T19:59:00")) is None


def test_windows_that_touch_are_one_quiet_stretch() -> None:
    weekend = channel("mail", (WEEKEND,))
    saturday = at("2026-12-05T10:00:00")
    assert muted_until(weekend, saturday) == at("2026-12-07T00:00:00")
    assert muted_until(weekend, at("2026-12-04T23:59:00")) is None  # Friday
    both = channel("mail", (WEEKEND, s.MuteWindow(0, 8 * 60, frozenset({1}))))
    assert muted_until(both, saturday) == at("2026-12-07T08:00:00")  # ... and Monday morning


def test_quiet_hours_follow_the_channel_s_calendar_day_not_the_host_s() -> None:
    """At 08:30 in Auckland (UTC+13) it is still yesterday in UTC: the window of the
    channel's own day holds."""
    auckland = ZoneInfo("Pacific/Auckland")
    tuesday = channel("mail", (s.MuteWindow(8 * 60, 9 * 60, frozenset({2})),), "Pacific/Auckland")
    assert muted_until(tuesday, at("2026-12-01T08:30:00", auckland)) == \
        at("2026-12-01T09:00:00", auckland)
    assert muted_until(tuesday, at("2026-12-02T08:30:00", auckland)) is None  # Wednesday


def test_a_firing_alert_seeded_at_start_is_notified_when_its_silence_ends() -> None:
    planner = Planner([rule("warm", group_wait=0)], {"ops": channel()},
                      [silence(T0, T0 + 60, rule="warm")])
    planner.seed([note("warm", "cold/room1", when=T0 - 600)])
    line = Timeline(planner)
    line.offer(T0, "ops", note("warm", "cold/room1", repeat=True))
    line.run_until(T0 + 61)
    assert [(w, t) for w, _, t, _ in line.sent] == [(T0 + 60, "[FIRING] warm: room1")]


def test_an_alert_that_settled_without_a_notice_is_not_reported_as_still_firing() -> None:
    """`resolved: false` rules (and alerts held back while flapping) resolve without a
    notice; the loop tells the planner, so neither a silence's end nor a digest revives
    them."""
    planner = Planner([rule("warm", group_wait=0, resolved=False)],
                      {"ops": channel(), "mail": channel("mail", (NIGHT,))},
                      [silence(T0, T0 + 60, rule="warm")])
    line = Timeline(planner)
    line.offer(T0, "ops", note("warm", "cold/room1"))
    planner.settle(Settled("warm", "cold/room1"))  # before its silence ends
    night = at("2026-12-01T23:00:00")
    line.offer(night, "mail", note("warm", "cold/room2", when=night))
    planner.settle(Settled("warm", "cold/room2"))  # in the night
    line.run_until(night + 86400)
    assert line.sent == []
    assert line.decisions[-1].startswith("mail: quiet hours over; nothing is still firing")


def test_a_storm_is_one_readable_message() -> None:
    line = Timeline(Planner([rule("warm")], {"ops": channel()}))
    for n in range(500):
        line.offer(T0, "ops", note("warm", f"cold/room{n}"))
    line.offer(T0, "ops", note("warm", "cold/room0", "resolved"))
    line.run_until(T0 + 60)
    ((_, _, title, body),) = line.sent
    assert title == "[FIRING 500, RESOLVED 1] warm"
    lines = body.splitlines()
    assert len(lines) == 22 and lines[-1] == "  ... and 481 more (480 FIRING, 1 RESOLVED)"


def test_a_storm_across_many_rules_lists_twenty_alerts_and_counts_the_rest() -> None:
    names = [f"r{n}" for n in range(6)]
    line = Timeline(Planner([rule(name) for name in names], {"ops": channel()}))
    for n in range(60):
        line.offer(T0, "ops", note(names[n % 6], f"cold/room{n}"))
    line.run_until(T0 + 60)
    ((_, _, title, body),) = line.sent
    assert title == "[FIRING 60] r0, r1, r2 and 3 more rules"
    listed = [x for x in body.splitlines() if x.startswith("  FIRING")]
    assert len(listed) == 20
    assert "r1 (warning):\n  FIRING: room1 " in body  # r0 and r1 listed in full
    assert "r2 (warning):\n  10 FIRING\n" in body and body.endswith("r5 (warning):\n  10 FIRING")


def test_a_notice_for_a_channel_no_longer_configured_is_dropped_with_a_reason() -> None:
    line = Timeline(Planner([rule("warm")], {"ops": channel()}))
    line.offer(T0, "gone", note("warm", "cold/room1"))
    line.run_until(T0 + 60)
    assert line.sent == [] and line.consumed == [1]
    assert line.decisions == ["warm cold/room1 firing -> gone: dropped, the channel is no "
                              "longer configured"]


def test_the_engines_settled_event_is_taken_as_it_is() -> None:
    assert Settled is AlertSettled
    planner = Planner([rule("warm", group_wait=0)], {"ops": channel()},
                      [silence(T0, T0 + 60, rule="warm")])
    silenced = planner.step([Entry(1, "ops", note("warm", "cold/room1"))], T0)
    assert planner.next_deadline() == T0 + 60  # held until the silence ends
    settled = planner.step([AlertSettled("warm", "cold/room1")], T0 + 1)
    assert planner.next_deadline() is None and settled == Plan()
    assert silenced == Plan(consumed=(1,), decisions=(Decision(
        Reason.SILENCED, "ops", note("warm", "cold/room1"), silence(T0, T0 + 60, rule="warm")),))


def test_each_reason_is_worded_for_the_log() -> None:
    """The log's words come from the decision (describe), and only from there."""
    said = note("warm", "cold/room1", repeat=True)
    held = Silence("a1b2c3d4", {"rule": "warm"}, T0, T0 + 60, "")
    it = "warm cold/room1 firing (repeat) ->"
    table = [
        (Decision(Reason.CHANNEL_GONE, "gone", said),
         f"{it} gone: dropped, the channel is no longer configured"),
        (Decision(Reason.ALERTMANAGER, "am", said), f"{it} am: posted to Alertmanager"),
        (Decision(Reason.SILENCED, "ops", said, held), f"{it} ops: silenced by a1b2c3d4"),
        (Decision(Reason.SILENCE_ENDED, "ops", said, held),
         f"{it} ops: silence a1b2c3d4 ended and the alert is still firing"),
        (Decision(Reason.QUIET_HOURS, "mail", said, until=at("2026-12-02T07:00:00", BERLIN),
                  timezone="Europe/Berlin"),
         f"{it} mail: quiet hours until 2026-12-02 07:00 Europe/Berlin; it goes in the digest"),
        (Decision(Reason.QUIET_HOURS_TOOK_GROUP, "mail", count=3),
         "mail: quiet hours began within group_wait; 3 notices go in the digest"),
        (Decision(Reason.GROUPED, "ops", count=4), "ops: 4 notices grouped into one message"),
        (Decision(Reason.DIGEST, "mail", count=1),
         "mail: quiet hours over; digest of 1 alert still firing"),
        (Decision(Reason.NOTHING_STILL_FIRING, "mail", settled=2),
         "mail: quiet hours over; nothing is still firing (2 alerts came and went)"),
    ]
    assert [decision.reason for decision, _ in table] == list(Reason)
    assert [describe(decision) for decision, _ in table] == [words for _, words in table]
    with pytest.raises(ValueError, match="SILENCED"):
        describe(Decision(Reason.SILENCED, "ops", said))  # which silence?


# ---- properties --------------------------------------------------------------------------

STEP = st.tuples(
    st.floats(min_value=0, max_value=6 * 3600),  # seconds after T0
    st.sampled_from(["ops", "mail", "night"]),
    st.sampled_from(["warm", "door"]),
    st.integers(min_value=0, max_value=3),  # entity
    st.sampled_from(["firing", "firing", "resolved", "flapping", "settle"]),
)


@settings(max_examples=examples(150), deadline=None)
@given(st.lists(STEP, max_size=40), st.floats(min_value=0, max_value=6 * 3600))
def test_every_notice_is_consumed_once_and_muted_channels_stay_quiet(
        steps: list[tuple[float, str, str, int, str]], silence_end: float) -> None:
    channels = {"ops": channel(), "mail": channel("mail", (NIGHT,)),
                "night": channel("night", (s.MuteWindow(10 * 60 + 30, 12 * 60),))}
    planner = Planner([rule("warm"), rule("door", group_wait=0)], channels,
                      [silence(T0, T0 + silence_end, rule="door")])
    line = Timeline(planner)
    offered: list[int] = []
    for offset, where, name, entity, state in sorted(steps):
        if state == "settle":
            line.run_until(T0 + offset)
            planner.settle(Settled(name, f"cold/room{entity}"))
            continue
        line.offer(T0 + offset, where, note(name, f"cold/room{entity}", state, T0 + offset))
        offered.append(line.ids)
    line.run_until(T0 + 86400 * 3)
    assert planner.next_deadline() is None  # nothing is held for ever
    assert sorted(line.consumed) == offered  # each exactly once
    for when, where, _title, _body in line.sent:
        assert muted_until(channels[where], when) is None, (where, when)


def test_a_planned_silence_of_the_file_is_named_by_its_file_and_line() -> None:
    planned = s.Silence(Loc("rules.yaml", 12), {"entity": "fleet/21080"},
                        datetime(2026, 1, 1, tzinfo=timezone.utc),
                        datetime(2026, 1, 2, tzinfo=timezone.utc), "sensor swap")
    assert from_config(planned) == Silence("rules.yaml:12", {"entity": "fleet/21080"},
                                           1767225600.0, 1767312000.0, "sensor swap")


def test_quiet_hours_that_take_a_group_keep_what_came_in_the_quiet_meanwhile() -> None:
    """A group still waiting when quiet hours begin joins the notices the quiet hours already
    hold for the channel (once dropped them: those were never sent nor consumed)."""
    night = channel("night", (s.MuteWindow(10 * 60 + 30, 12 * 60),))
    line = Timeline(Planner([rule("warm"), rule("door")], {"night": night}))
    line.offer(at("2026-12-01T10:29:58"), "night", note("warm", "cold/room1",
                                                      when=at("2026-12-01T10:29:58")))
    line.offer(at("2026-12-01T10:30:01"), "night", note("door", "cold/room2",
                                                      when=at("2026-12-01T10:30:01")))
    line.run_until(at("2026-12-01T13:00:00"))
    assert sorted(line.consumed) == [1, 2]
    [(when, _, title, body)] = line.sent
    assert when == at("2026-12-01T12:00:00")
    assert title == "[DIGEST] 2 alerts still firing after quiet hours"
    assert [d.reason for d in line.decided] == [
        Reason.QUIET_HOURS, Reason.QUIET_HOURS_TOOK_GROUP, Reason.DIGEST]


# ---- each stage's decisions, to the word (issue 13: mutation survivors) ----------------


def test_quiet_hours_log_each_step_with_its_channel_and_counts() -> None:
    """The log lines of a group taken by quiet hours and of the digest name the channel and
    count what they carry; the digest's message is the channel's and lists the alerts."""
    mail = channel("mail", (NIGHT,))
    line = Timeline(Planner([rule("warm")], {"mail": mail}))
    evening = at("2026-12-01T21:59:58")
    line.offer(evening, "mail", note("warm", "cold/room1", when=evening))
    line.offer(evening + 1, "mail", note("warm", "cold/room2", when=evening + 1))
    night = at("2026-12-01T23:00:00")
    line.offer(night, "mail", note("warm", "cold/room3", when=night))
    plan = line.planner.on_timer(at("2026-12-02T07:00:00"))
    line.take(at("2026-12-02T07:00:00"), plan)
    assert line.decisions == [
        "mail: quiet hours began within group_wait; 2 notices go in the digest",
        ("warm cold/room3 firing -> mail: quiet hours until 2026-12-02 07:00 UTC; it goes in "
         "the digest"),
        "mail: quiet hours over; digest of 3 alerts still firing"]
    [message] = plan.messages
    assert message.channel == "mail" and [w[1] for w in line.sent] == ["mail"]
    assert [(n.entity, n.at, n.repeat) for n in message.notes] == [
        ("cold/room1", at("2026-12-02T07:00:00"), False),
        ("cold/room2", at("2026-12-02T07:00:00"), False),
        ("cold/room3", at("2026-12-02T07:00:00"), False)]
    assert message.notify_type == "warning"


def test_a_notice_offered_as_quiet_hours_end_goes_in_the_digest() -> None:
    """A wake-up takes the inbox before the timer: a notice offered at the very second the
    quiet hours end still belongs to them, and goes out in the one digest."""
    mail = channel("mail", (NIGHT,))
    line = Timeline(Planner([rule("warm")], {"mail": mail}))
    night = at("2026-12-01T23:00:00")
    line.offer(night, "mail", note("warm", "cold/room1", when=night))
    morning = at("2026-12-02T07:00:00")
    line.take(morning, line.planner.step(
        [Entry(2, "mail", note("warm", "cold/room2", when=morning))], morning))
    line.run_until(morning + 3600)
    [(when, _, title, _)] = line.sent
    assert when == morning and title == "[DIGEST] 2 alerts still firing after quiet hours"
    assert line.consumed == [1, 2]


def test_two_notices_grouped_are_logged_as_grouped_and_the_message_carries_them() -> None:
    line = Timeline(Planner([rule("warm")], {"ops": channel()}))
    line.offer(T0, "ops", note("warm", "cold/room1"))
    line.offer(T0 + 1, "ops", note("warm", "cold/room2", "resolved"))
    due = line.planner.next_deadline()
    assert due == T0 + 5
    plan = line.planner.on_timer(due)
    assert [describe(d) for d in plan.decisions] == ["ops: 2 notices grouped into one message"]
    [message] = plan.messages
    assert [(n.entity, n.state) for n in message.notes] == [
        ("cold/room1", NoticeKind.FIRING), ("cold/room2", NoticeKind.RESOLVED)]
    assert message.notify_type == "warning"


def test_a_notice_of_a_rule_no_longer_configured_is_sent_at_once() -> None:
    """A notice replayed from the inbox after its rule left the file has no group_wait: it
    is not held."""
    line = Timeline(Planner([rule("warm")], {"ops": channel()}))
    line.offer(T0, "ops", note("gone", "cold/room1"))
    assert [(w, t) for w, _, t, _ in line.sent] == [(T0, "[FIRING] gone: room1")]
    assert line.consumed == [1]


def test_a_silence_by_severity_covers_the_alert() -> None:
    planner = Planner([rule("warm", group_wait=0)], {"ops": channel()},
                      [silence(T0, T0 + 60, severity="warning")])
    line = Timeline(planner)
    line.offer(T0, "ops", note("warm", "cold/room1"))
    assert line.sent == [] and line.decided[0].reason is Reason.SILENCED


def test_a_deleted_silence_releases_the_alert_at_once() -> None:
    planner = Planner([rule("warm", group_wait=0)], {"ops": channel()},
                      [silence(T0, T0 + 86400, entity="cold/room1")])
    line = Timeline(planner)
    line.offer(T0, "ops", note("warm", "cold/room1"))
    planner.set_silences([])  # `alertd silence delete`
    assert planner.next_deadline() == T0  # due at once: the silence began at T0
    line.run_until(T0 + 10)
    assert [(w, t) for w, _, t, _ in line.sent] == [(T0, "[FIRING] warm: room1")]
    assert describe(line.decided[-1]) == (
        "warm cold/room1 firing -> ops: silence a1b2c3d4 ended and the alert is still firing")


def test_silences_read_again_unchanged_keep_the_alert_held_until_the_silence_ends() -> None:
    """The loop re-reads the silences every second: a silence still there keeps its end as
    the planner's next deadline (no wake-up before it)."""
    planner = Planner([rule("warm", group_wait=0)], {"ops": channel()},
                      [silence(T0, T0 + 3600, entity="cold/room1")])
    line = Timeline(planner)
    line.offer(T0 + 10, "ops", note("warm", "cold/room1", when=T0 + 10))
    planner.set_silences([silence(T0, T0 + 3600, entity="cold/room1")])
    assert planner.next_deadline() == T0 + 3600


def test_an_alert_seeded_firing_counts_in_the_digest_after_a_flapping_notice() -> None:
    """A flapping notice does not say whether the alert fires: the seed restored at start
    does, so the digest lists it as still firing (with the seed's value)."""
    mail = channel("mail", (NIGHT,))
    planner = Planner([rule("warm")], {"mail": mail})
    night = at("2026-12-01T23:00:00")
    planner.seed([note("warm", "cold/room1", when=night - 3600)])
    line = Timeline(planner)
    line.offer(night, "mail", note("warm", "cold/room1", "flapping", when=night))
    line.run_until(night + 86400)
    [(_, _, title, body)] = line.sent
    assert title == "[DIGEST] 1 alert still firing after quiet hours"
    assert "FIRING: room1 (cold/room1), t 9" in body


def test_a_decision_about_a_channel_needs_a_reason_about_a_channel() -> None:
    with pytest.raises(ValueError, match="a SILENCED decision names no notice"):
        describe(Decision(Reason.SILENCED, "ops"))


def test_an_alertmanager_channel_gets_the_post_and_the_decision_in_one_plan() -> None:
    am = s.Channel(LOC, "am", ("alertmanager://127.0.0.1:9093",), (), "UTC")
    planner = Planner([rule("warm")], {"am": am, "ops": channel()},
                      generator_url="http://alertd.example:9100/")
    plan = planner.step([Entry(7, "am", note("warm", "cold/room1"))], T0)
    assert plan.consumed == (7,)
    assert [describe(d) for d in plan.decisions] == [
        "warm cold/room1 firing -> am: posted to Alertmanager"]
    [message] = plan.messages
    assert (message.channel, message.title) == ("am", "warm cold/room1 firing")
    assert [n.entity for n in message.notes] == ["cold/room1"]
    [posted] = json.loads(message.body)  # Alertmanager's alert, with alertd's address
    assert posted["labels"]["alertname"] == "warm"
    assert posted["generatorURL"] == "http://alertd.example:9100/"


def test_each_message_goes_out_once_per_url_of_its_channel_in_order() -> None:
    two = s.Channel(LOC, "two", ("json://127.0.0.1/a", "json://127.0.0.1/b"), (), "UTC")
    first = Message("two", "t1", "b1", (note("warm", "cold/room1"),))
    second = Message("ops", "t2", "b2", (note("warm", "cold/room2", "resolved"),))
    assert outgoing([first, second], {"two": two, "ops": channel()}) == [
        Outgoing("two", "json://127.0.0.1/a", "t1", "b1", "warning"),
        Outgoing("two", "json://127.0.0.1/b", "t1", "b1", "warning"),
        Outgoing("ops", "json://127.0.0.1/x", "t2", "b2", "success")]


def test_plans_add_up_in_order() -> None:
    one = Plan((Message("ops", "a", "b", ()),), (1,), (Decision(Reason.GROUPED, "ops", count=2),))
    two = Plan((Message("mail", "c", "d", ()),), (2, 3),
               (Decision(Reason.DIGEST, "mail", count=1),))
    assert one + two == Plan(one.messages + two.messages, (1, 2, 3),
                             one.decisions + two.decisions)
    assert one + two == Plan.join([one, two])


def test_a_resend_and_a_silence_ending_at_the_same_moment_both_go_out() -> None:
    am = s.Channel(LOC, "am", ("alertmanager://127.0.0.1:9093",), (), "UTC", resend=60.0)
    planner = Planner([rule("warm", group_wait=0)], {"am": am, "ops": channel()},
                      [silence(T0, T0 + 60, entity="cold/room2")])
    line = Timeline(planner)
    line.offer(T0, "am", note("warm", "cold/room1"))
    line.offer(T0, "ops", note("warm", "cold/room2"))
    assert planner.next_deadline() == T0 + 60
    line.run_until(T0 + 60)
    assert [(w - T0, c, t) for w, c, t, _ in line.sent] == [
        (0, "am", "warm cold/room1 firing"), (60, "am", "resend of 1 firing alert"),
        (60, "ops", "[FIRING] warm: room2")]


def test_each_held_alert_is_released_when_its_own_silence_ends() -> None:
    planner = Planner([rule("warm", group_wait=0)], {"ops": channel()},
                      [silence(T0, T0 + 600, entity="cold/room1"),
                       Silence("e5f6a7b8", {"entity": "cold/room2"}, T0, T0 + 60, "")])
    line = Timeline(planner)
    line.offer(T0, "ops", note("warm", "cold/room1"))
    line.offer(T0, "ops", note("warm", "cold/room2"))
    line.run_until(T0 + 600)
    assert [(w - T0, t) for w, _, t, _ in line.sent] == [(60, "[FIRING] warm: room2"),
                                                         (600, "[FIRING] warm: room1")]


def test_a_silenced_alert_that_resolves_is_no_longer_held() -> None:
    planner = Planner([rule("warm", group_wait=0)], {"ops": channel()},
                      [silence(T0, T0 + 3600, rule="warm")])
    line = Timeline(planner)
    line.offer(T0, "ops", note("warm", "cold/room1"))
    assert planner.next_deadline() == T0 + 3600
    line.offer(T0 + 10, "ops", note("warm", "cold/room1", "resolved", when=T0 + 10))
    assert planner.next_deadline() is None and line.consumed == [1, 2]
