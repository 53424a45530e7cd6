"""The alertmanager channel: its configuration, the planner's pass-through and resends (pure,
on given times), the JSON it posts, and the sender against a local HTTP server."""

from __future__ import annotations

import base64
import dataclasses
import json
import textwrap
from pathlib import Path

import pytest

from alertd.config import load_config
from alertd.config import schema as s
from alertd.errors import ConfigError, Loc
from alertd.model import Notification
from alertd.notify.alertmanager import ENDS_AFTER, label_name, labels, timestamp
from alertd.notify.alertmanager import test_payload as first_test_post
from alertd.notify.message import compose
from alertd.notify.plan import outgoing
from alertd.notify.planner import Entry, Plan, Planner, Settled
from alertd.notify.silences import Silence
from alertd.senders.alertmanager import SCHEMES, send_blocking, url_problem
from alertd.senders.outcome import Verdict
from tests.hooks import Answer, Webhook

LOC = Loc("rules.yaml", 3)
T0 = 1_800_000_000.0


def _load(tmp_path: Path, channels: str) -> s.Config:
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent("""\
        sources: {fleet: {type: navixy, hash: h, trackers: [1]}}
        channels:
        """) + textwrap.indent(textwrap.dedent(channels), "  ") +
        "rules: [{name: b, status: {in: [blocked]}, notify: []}]\n")
    return load_config(path)


def _problems(tmp_path: Path, channels: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, channels)
    return [problem.message for problem in caught.value.problems]


def test_both_config_forms_give_alertmanager_urls(tmp_path: Path) -> None:
    config = _load(tmp_path, """\
        pair: {alertmanager: [http://10.0.0.1:9093, "https://am.example.com/prefix/"],
               resend: 30s}
        url: alertmanager://u:pw@127.0.0.1:9093
        """)
    pair, url = config.channels["pair"], config.channels["url"]
    assert pair.urls == ("alertmanager://10.0.0.1:9093",
                         "alertmanagers://am.example.com/prefix")
    assert pair.resend == 30.0 and pair.alertmanager
    assert url.resend == 60.0 and url.alertmanager


def test_alertmanager_channel_mistakes_are_located_errors(tmp_path: Path) -> None:
    problems = _problems(tmp_path, """\
        mixed: [alertmanager://127.0.0.1:9093, "json://127.0.0.1/x"]
        quiet: {urls: [alertmanager://127.0.0.1:9093], mute: ["22:00-07:00"]}
        plain: {urls: ["json://127.0.0.1/x"], resend: 1m}
        nohost: alertmanager://
        listed: {alertmanager: [127.0.0.1:9093]}
        """)
    assert any("alertmanager:// URLs cannot share a channel" in p for p in problems)
    assert any("an Alertmanager channel has no mute" in p for p in problems)
    assert any("resend applies to Alertmanager channels only" in p for p in problems)
    assert any("it needs a host" in p for p in problems)
    assert any("addresses such as http://127.0.0.1:9093, not '127.0.0.1:9093'" in p
               for p in problems)
    assert url_problem("alertmanager://h:9093?x=1") is not None
    assert SCHEMES == s.ALERTMANAGER_SCHEMES  # the sender's own copy (no config import)


# ---- the planner ----------------------------------------------------------------------------


def _rule(name: str = "warm") -> s.Rule:
    return s.Rule(LOC, name, s.Threshold(LOC, "t", above=8), notify=("am", "ops"),
                  group_wait=30.0, labels={"team": "cold", "site-id": "hh",
                                           "alertname": "ignored"})


def _note(entity: str, state: str = "firing", at: float = T0, **extra: object) -> Notification:
    return Notification("warm", entity, state, at, T0 - 10, "critical",  # type: ignore[arg-type]
                        entity.split("/")[0], entity.split("/")[1], "t", 9,
                        labels={"team": "cold", "site-id": "hh", "alertname": "ignored"},
                        **extra)


def _planner(resend: float = 60.0, silences: tuple[Silence, ...] = ()) -> Planner:
    channels = {"am": s.Channel(LOC, "am", ("alertmanager://127.0.0.1:9093",
                                            "alertmanager://127.0.0.1:9094"), resend=resend),
                "ops": s.Channel(LOC, "ops", ("json://127.0.0.1/x",))}
    return Planner([_rule()], channels, silences, generator_url="http://alertd:9464/")


def _posted(plan: Plan) -> list[list[dict[str, object]]]:
    return [json.loads(m.body) for m in plan.messages if m.channel == "am"]


def test_notices_pass_at_once_while_other_channels_group_and_silences_hold_them() -> None:
    silence = Silence("s1", {"entity": "cold/r1"}, T0 - 1, T0 + 3600, "")
    planner = _planner(silences=(silence,))
    plan = Plan.join(planner.offer(entry, T0) for entry in [
        Entry(1, "am", _note("cold/r1")), Entry(2, "ops", _note("cold/r1")),
        Entry(3, "am", _note("cold/r2")), Entry(4, "ops", _note("cold/r2"))])
    # Alertmanager's notices: at once, one post each, alertd's silence does not hold them
    assert [m.channel for m in plan.messages] == ["am", "am"]
    assert sorted(plan.consumed) == [1, 2, 3]  # 2 was silenced on the ops channel
    first = _posted(plan)[0][0]
    assert first["labels"] == {"alertname": "warm", "entity": "cold/r1", "source": "cold",
                               "severity": "critical", "team": "cold", "site_id": "hh"}
    assert first["annotations"]["summary"] == "[FIRING] warm: r1"
    assert "severity: critical" in first["annotations"]["description"]
    assert first["startsAt"] == timestamp(T0 - 10)
    assert first["endsAt"] == timestamp(T0 + ENDS_AFTER * 60)
    assert first["generatorURL"] == "http://alertd:9464/"
    # the ops channel still waits out its group_wait
    assert not [m for m in planner.on_timer(T0 + 29).messages if m.channel == "ops"]
    assert [m.channel for m in planner.on_timer(T0 + 30).messages] == ["ops"]


def test_firing_alerts_are_resent_each_interval_until_resolved() -> None:
    planner = _planner(resend=60.0)
    planner.offer(Entry(1, "am", _note("cold/r1")), T0)
    planner.offer(Entry(2, "am", _note("cold/r2", at=T0 + 5)), T0 + 5)
    assert planner.next_deadline() == T0 + 60
    resend = planner.on_timer(T0 + 60)
    [posted] = _posted(resend)
    assert [a["labels"]["entity"] for a in posted] == ["cold/r1", "cold/r2"]  # type: ignore[index]
    assert {a["endsAt"] for a in posted} == {timestamp(T0 + 60 + 4 * 60)}  # type: ignore[index]
    assert planner.next_deadline() == T0 + 120
    gone = planner.offer(Entry(3, "am", _note("cold/r1", "resolved", at=T0 + 90)), T0 + 90)
    assert _posted(gone)[0][0]["endsAt"] == timestamp(T0 + 90)
    planner.settle(Settled("warm", "cold/r2"))  # ended without a notice (resolved: false)
    idle = planner.on_timer(T0 + 120)
    assert idle.messages == () and planner.next_deadline() is None


def test_alerts_restored_firing_are_posted_at_the_first_timer() -> None:
    planner = _planner()
    planner.seed([_note("cold/r7")])
    assert planner.next_deadline() is not None
    plan = planner.on_timer(T0 + 1)
    assert [[a["labels"]["entity"] for a in post] for post in _posted(plan)] == \
        [["cold/r7"]]  # type: ignore[index]


def test_label_names_alertmanager_refuses_are_made_valid() -> None:
    assert label_name("site-id") == "site_id"
    assert label_name("1st") == "_1st"
    assert labels(_note("cold/r1"))["alertname"] == "warm"  # alertd's own labels win


def test_times_are_rfc3339_utc_with_milliseconds_and_a_z() -> None:
    assert timestamp(T0) == "2027-01-15T08:00:00.000Z"
    assert timestamp(T0 + 0.25) == "2027-01-15T08:00:00.250Z"


def test_a_post_says_what_the_rule_says_and_whether_the_alert_flaps() -> None:
    titled = dataclasses.replace(_rule(), title="{entity_name} too warm")
    channels = {"am": s.Channel(LOC, "am", ("alertmanager://127.0.0.1:9093",))}
    planner = Planner([titled], channels, ())
    plan = planner.offer(Entry(1, "am", _note("cold/r1")), T0)
    [[fired]] = _posted(plan)
    assert fired["annotations"] == {"summary": "r1 too warm",  # the rule's title
                                    "description": compose(_note("cold/r1"), titled)[1]}
    [[flapping]] = _posted(planner.offer(Entry(2, "am", _note("cold/r2", "flapping")), T0))
    assert flapping["annotations"]["flapping"] == "true"  # type: ignore[index]
    [[resent, also]] = _posted(planner.on_timer(T0 + 60))
    assert resent["annotations"]["summary"] == "r1 too warm"  # type: ignore[index]
    assert also["annotations"]["flapping"] == "true"  # type: ignore[index]
    assert "flapping" not in resent["annotations"]  # type: ignore[operator]


def test_a_resend_is_one_message_per_channel_with_its_notices() -> None:
    """Each Alertmanager channel on its own resend interval; one whose alerts all ended
    stops resending without holding up the others."""
    channels = {"am": s.Channel(LOC, "am", ("alertmanager://127.0.0.1:9093",), resend=60.0),
                "slow": s.Channel(LOC, "slow", ("alertmanager://127.0.0.1:9094",),
                                  resend=600.0),
                "last": s.Channel(LOC, "last", ("alertmanager://127.0.0.1:9095",),
                                  resend=60.0)}
    three = dataclasses.replace(_rule(), notify=("slow", "am", "last"))
    planner = Planner([three], channels, ())
    for number, channel in enumerate(("slow", "am", "last")):
        planner.offer(Entry(number, channel, _note("cold/r1")), T0)
    planner.offer(Entry(3, "am", _note("cold/r2")), T0)
    planner.offer(Entry(4, "am", _note("cold/r1", "resolved")), T0 + 1)
    planner.offer(Entry(5, "am", _note("cold/r2", "resolved")), T0 + 1)
    plan = planner.on_timer(T0 + 60)  # "slow" not due, "am" has nothing left, "last" is due
    [message] = plan.messages
    assert (message.channel, message.title) == ("last", "resend of 1 firing alert")
    assert message.notes == (_note("cold/r1"),) and message.notify_type == "failure"
    planner.offer(Entry(6, "last", _note("cold/r2")), T0 + 70)
    [message] = planner.on_timer(T0 + 120).messages
    assert message.title == "resend of 2 firing alerts"
    assert [o.title for o in outgoing([message], channels)] == ["resend of 2 firing alerts"]


def test_an_alert_the_channel_does_not_hold_resolves_or_settles_quietly() -> None:
    """A resolve or an end without a notice for an alert the stage never saw (or a rule
    the file no longer has, restored at start) is no error."""
    planner = _planner()
    planner.seed([_note("cold/r1"), dataclasses.replace(_note("cold/r9"), rule="gone")])
    planner.settle(Settled("warm", "cold/r5"))
    plan = planner.offer(Entry(1, "am", _note("cold/r6", "resolved", at=T0 + 5)), T0 + 5)
    assert _posted(plan)[0][0]["endsAt"] == timestamp(T0 + 5)
    assert [[a["labels"]["entity"] for a in post] for post in _posted(planner.on_timer(T0 + 6))] \
        == [["cold/r1"]]  # type: ignore[index]


def test_the_test_notification_is_one_alert_that_ends_by_itself() -> None:
    assert json.loads(first_test_post("hello", "from alertd", T0)) == [{
        "labels": {"alertname": "alertd_test", "severity": "info", "source": "alertd"},
        "annotations": {"summary": "hello", "description": "from alertd"},
        "startsAt": "2027-01-15T08:00:00.000Z", "endsAt": "2027-01-15T08:05:00.000Z"}]


# ---- the sender -----------------------------------------------------------------------------


def test_the_sender_posts_to_api_v2_alerts_with_basic_auth() -> None:
    hook = Webhook()
    try:
        url = f"alertmanager://ops:s3cr3t-pw@127.0.0.1:{hook.port}/am"
        outcome = send_blocking(url, json.dumps([{"labels": {"alertname": "x"}}]))
        assert outcome.verdict is Verdict.DELIVERED
        [post] = hook.posts
        assert post.path == "/am/api/v2/alerts"
        assert post.body == [{"labels": {"alertname": "x"}}]
    finally:
        hook.close()


def test_the_sender_says_retry_or_permanent_and_never_shows_the_password() -> None:
    answers = {1: Answer(503, headers={"Retry-After": "7"}), 2: Answer(400)}
    hook = Webhook(lambda n: answers.get(n, Answer()))
    try:
        url = f"alertmanager://ops:s3cr3t-pw@127.0.0.1:{hook.port}"
        busy = send_blocking(url, "[]")
        refused = send_blocking(url, "[]")
    finally:
        hook.close()
    down = send_blocking(url, "[]", timeout=2)  # nobody listens any more
    assert busy.verdict is Verdict.RETRY and busy.retry_after == 7.0
    assert refused.verdict is Verdict.PERMANENT and "HTTP 400" in refused.reason
    assert down.verdict is Verdict.RETRY
    for outcome in (busy, refused, down):
        assert "s3cr3t" not in outcome.reason
    assert base64.b64encode(b"ops:s3cr3t-pw").decode() not in down.reason
