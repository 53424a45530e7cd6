"""The words of a notification, as an operator reads them on a phone."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alertd.config import schema as s
from alertd.engine import Engine, notices
from alertd.errors import Loc
from alertd.escape import FIELD_LIMIT
from alertd.model import Message, Notification
from alertd.notify.message import (
    NotifyType,
    compose,
    compose_digest,
    compose_group,
    duration_text,
    notify_type,
    outside_made_safe,
    summary_line,
)
from alertd.notify.templates import _FORMATTER, render
from tests.budget import examples

LOC = Loc("test", 1)
FLEET = {"fleet": s.NavixySource(LOC, "fleet", "h", (1,))}
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def note(**changes: object) -> Notification:
    fields: dict[str, object] = dict(rule="fuel", entity="fleet/21080", state="firing",
                                     at=T0 + 90, since=T0, severity="warning", source="fleet",
                                     entity_name="Truck 7", field="lls_level_1",
                                     value="262.9138")
    fields.update(changes)
    return Notification(**fields)  # type: ignore[arg-type]


def rule(**options: object) -> s.Rule:
    return s.Rule(LOC, "fuel", s.Threshold(LOC, "lls_level_1", below=300),  # type: ignore[arg-type]
                  notify=("ops",), **options)


def test_a_format_spec_rounds_the_value_as_the_device_sent_it() -> None:
    title, _ = compose(note(value=262.9138), rule(title="{entity_name}: {value:.1f} l"))
    assert title == "Truck 7: 262.9 l"
    title, _ = compose(note(value="262.9138"), rule(title="{value:.1f} l"))
    assert title == "262.9138 l"  # text stays text: shown unformatted, not lost


def test_values_keep_their_digits_without_a_spec() -> None:
    title, body = compose(note(value=262.9138), rule(title="{value}"))
    assert title == "262.9138"
    assert "lls_level_1: 262.9138" in body
    title, body = compose(note(value=0.1 + 0.2), rule(title="{value}"))
    assert title == "0.3" and "lls_level_1: 0.3" in body
    title, body = compose(note(value=None), rule(title="{value}"))
    assert title == "null" and "lls_level_1: null" in body


def test_a_resolved_notice_says_how_long_the_problem_lasted() -> None:
    condition = s.Threshold(LOC, "v", above=8)
    engine = Engine([s.Rule(LOC, "warm", condition, notify=("ops",))], FLEET, T0)
    (fired,) = notices(engine.receive(Message("fleet", "1", T0 + 10, {"v": 9}), T0 + 10))
    (resolved,) = notices(engine.receive(Message("fleet", "1", T0 + 25 * 60, {"v": 5}),
                                         T0 + 25 * 60))
    assert resolved.state == "resolved" and resolved.since == fired.since == T0 + 10
    title, body = compose(resolved, s.Rule(LOC, "warm", condition, notify=("ops",),
                                           title="{rule} over after {duration}"))
    assert title == "warm over after 24m50s"
    assert "since: 2026-01-01 00:00:10 UTC (24m50s)" in body


def test_the_default_title_and_body_name_the_entity_and_the_value() -> None:
    title, body = compose(note(), rule())
    assert title == "[FIRING] fuel: Truck 7"
    assert body.splitlines() == [
        "fuel is firing for Truck 7 (fleet/21080)", "severity: warning",
        "lls_level_1: 262.9138", "since: 2026-01-01 00:00:00 UTC (1m30s)"]
    title, _ = compose(note(repeat=True), rule())
    assert title == "[FIRING again] fuel: Truck 7"


def test_a_change_notice_says_the_change_it_caught() -> None:
    """issue 12.11: a `change` notice said the current value only."""
    change = s.Change(LOC, "lls_level_1", 600.0, drop=40.0)
    drain = s.Rule(LOC, "fuel", change, notify=("ops",))
    _, body = compose(note(value=201.5), drain)
    assert "lls_level_1: 201.5 (it fell by 40 or more within 10m)" in body
    _, body = compose(note(value=201.5, state="resolved"), drain)
    assert "lls_level_1: 201.5\n" in body


def test_a_change_notice_says_how_much_from_what_and_within_how_long() -> None:
    """The engine finds the change: 241.5 at 0s to 200 at 3m20s, a fall of 41.5."""
    from alertd.engine import Engine
    from alertd.model import Message

    change = s.Change(LOC, "lls_level_1", 600.0, drop=40.0)
    drain = s.Rule(LOC, "fuel", change, notify=("ops",))
    engine = Engine([drain], {"fleet": s.NavixySource(LOC, "fleet", "h", (1,))}, 0.0)
    assert engine.receive(Message("fleet", "1", 100.0, {"lls_level_1": "241.5"}), 100.0) == []
    assert engine.receive(Message("fleet", "1", 200.0, {"lls_level_1": 230}), 200.0) == []
    (fired,) = notices(engine.receive(Message("fleet", "1", 300.0, {"lls_level_1": 200}), 300.0))
    assert fired.change == (41.5, 241.5, 200.0)
    _, body = compose(fired, drain)
    assert "lls_level_1: 200 (it fell by 41.5 from 241.5 within 3m20s)" in body


# ---- every placeholder and every line, as mutation testing asked (docs/testing.md) ----------

def test_every_template_placeholder_renders_its_value() -> None:
    n = note(labels={"site": "hh", "zone": "b"}, description="Call the depot.", at=T0 + 3660)
    template = ("{rule}|{severity}|{state}|{source}|{entity}|{entity_name}|{field}|{value}|"
                "{since}|{duration}|{labels[site]}|{description}")
    title, body = compose(n, rule(title=template, body="body: " + template))
    expected = ("fuel|warning|firing|fleet|fleet/21080|Truck 7|lls_level_1|262.9138|"
                "2026-01-01 00:00:00 UTC|1h01m|hh|Call the depot.")
    assert title == expected and body == "body: " + expected
    assert compose(note(value=None), rule(title="{value}"))[0] == "null"


def test_the_default_body_has_one_line_per_fact() -> None:
    n = note(labels={"zone": "b", "site": "hh"}, description="Call the depot.", repeat=True)
    title, body = compose(n, None)
    assert title == "[FIRING again] fuel: Truck 7"
    assert body.splitlines() == [
        "fuel is firing again for Truck 7 (fleet/21080)", "severity: warning",
        "lls_level_1: 262.9138", "since: 2026-01-01 00:00:00 UTC (1m30s)",
        "labels: site=hh, zone=b", "Call the depot."]
    # an entity without a name is not named twice; a state without a mark is upper-cased
    assert compose(note(entity_name="", state="odd"), None)[0] == "[ODD] fuel: fleet/21080"
    assert compose(note(entity_name=""), None)[1].splitlines()[0] == \
        "fuel is firing for fleet/21080"


def test_a_change_rule_says_what_it_watches_for() -> None:
    rise = s.Rule(LOC, "heat", s.Change(LOC, "t", rise=4.0, within=900.0), notify=("ops",))
    drop = s.Rule(LOC, "drain", s.Change(LOC, "t", drop=30.0, within=600.0), notify=("ops",))
    assert compose(note(field="t", value=9.0), rise)[1].splitlines()[2] == \
        "t: 9 (it rose by 4 or more within 15m)"
    assert compose(note(field="t", value=9.0), drop)[1].splitlines()[2] == \
        "t: 9 (it fell by 30 or more within 10m)"
    assert compose(note(field="t", value=9.0, state="resolved"), drop)[1].splitlines()[2] == \
        "t: 9"


def test_a_summary_line_and_the_notify_type_of_an_unknown_severity() -> None:
    assert summary_line(note(), None) == \
        "FIRING: Truck 7 (fleet/21080), lls_level_1 262.9138, since 00:00 UTC (1m30s)"
    assert summary_line(note(entity_name="", field="", state="odd"), None) == \
        "ODD: fleet/21080, since 00:00 UTC (1m30s)"
    assert summary_line(note(repeat=True), rule(title="{entity_name} low")) == \
        "FIRING again: Truck 7 low"
    assert notify_type([note(severity="odd")]) is NotifyType.WARNING
    assert duration_text(86399) == "23h59m" and duration_text(86400) == "1d00h"


def test_every_problem_of_a_template_is_reported_once_each() -> None:
    from alertd.notify.templates import PLACEHOLDERS, problems

    listed = ", ".join("{labels[KEY]}" if p == "labels" else "{" + p + "}" for p in PLACEHOLDERS)
    assert problems("{a!r} {} {x.y} {entty} {zzz} {labels[]} {entity}") == [
        "placeholder {a!r}: conversions such as !r are not allowed",
        "empty placeholder {} (name one, e.g. {entity})",
        "placeholder {x.y} uses attribute access, which is not allowed",
        f"unknown placeholder {{entty}} (did you mean {{entity}}?); use one of {listed}",
        f"unknown placeholder {{zzz}}; use one of {listed}",
        "placeholder {labels[]}: write labels as {labels[KEY]}"]


def test_a_template_problem_is_found_wherever_it_stands_and_fine_ones_pass() -> None:
    from alertd.notify.templates import problems

    assert problems("{{ literal braces }} then {zzz}")[0].startswith(
        "unknown placeholder {zzz};")  # a problem after an escaped brace is still found
    assert problems("{entity[0]}") == ["placeholder {entity[0]} cannot be indexed"]
    assert problems("{value:{field}}") == [
        "placeholder {value}: nested placeholders are not allowed"]
    assert problems("{value:.1f} {labels[x]} {labels[site]}") == []  # a format spec, short keys
    for bad in ("{labels}", "{labels[a.b]}", "{labels[a[b]}", "{labels[a]b]}"):
        assert problems(bad) == [f"placeholder {bad}: write labels as {{labels[KEY]}}"], bad


def test_a_label_renders_by_its_whole_key_and_a_missing_one_renders_empty() -> None:
    n = note(labels={"BOX": "7", "site": "hh"})
    assert compose(n, rule(title="[{labels[BOX]}] [{labels[zone]}] {labels[site]}"))[0] == \
        "[7] [] hh"


# ---- groups, digests and what came from outside (mutation testing, final round) --------------

def test_every_value_from_outside_is_escaped_and_bounded_in_a_body() -> None:
    """A template's body is not escaped as a whole: each value is, where it comes in."""
    hostile = {name: f"{name}\n\x1b[2J" for name in
               ("rule", "entity", "source", "entity_name", "field", "value")}
    n = note(**hostile, labels={"k\n": "v\n"}, description="Call\nthe depot.")
    template = ("{rule}|{entity}|{source}|{entity_name}|{field}|{value}|{labels[k\\n]}|"
                "{labels[k\n]}|{description}")
    _, body = compose(n, rule(body=template))
    assert "\n" not in body and "\x1b" not in body
    assert body.split("|")[:6] == [f"{name}\\n\\x1b[2J" for name in hostile]
    assert body.endswith("|Call\\nthe depot.")
    long = "x" * 1000
    _, body = compose(note(**dict.fromkeys(hostile, long), labels={"k": long}),
                      rule(body="{rule}|{entity}|{source}|{entity_name}|{field}|{value}|"
                                "{labels[k]}"))
    assert body.split("|") == ["x" * 199 + "…"] * 7


def test_a_value_that_is_neither_text_nor_a_number_is_bounded_too() -> None:
    _, body = compose(note(value=list(range(2000))), None)
    line = body.splitlines()[2]
    assert line.startswith("lls_level_1: [0, 1, 2,") and line.endswith("…")
    assert len(line) == len("lls_level_1: ") + 200
    assert body.splitlines()[3] == "since: 2026-01-01 00:00:00 UTC (1m30s)"


def test_a_title_keeps_250_characters_and_its_line_breaks_become_spaces() -> None:
    assert compose(note(), rule(title="a\nb\r\nc"))[0] == "a b c"
    assert compose(note(), rule(title="t" * 250))[0] == "t" * 250
    assert compose(note(), rule(title="t" * 251))[0] == "t" * 249 + "…"


def test_a_body_keeps_4000_characters() -> None:
    long = "b" * 3990
    assert compose(note(), rule(body=long))[1] == long
    assert compose(note(), rule(body=long + "c" * 20))[1] == long + "c" * 9 + "…"
    _, body = compose(note(description="d" * 300), None)  # the default body, too
    assert body.endswith("\n" + "d" * 300)
    _, body = compose(note(description=long), None)
    assert len(body) == 4000 and body.endswith("b…")
    assert body.startswith("fuel is firing for Truck 7")


def test_times_are_utc_whatever_the_host_time_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Kolkata")  # +05:30, no daylight saving
    time.tzset()
    try:
        assert "since: 2026-01-01 00:00:00 UTC (1m30s)" in compose(note(), None)[1]
        assert compose_digest([note()], 0, T0 - 3600, {})[1].startswith(
            "Quiet hours since 23:00 UTC are over.")
    finally:
        monkeypatch.undo()
        time.tzset()


def test_a_group_of_one_reads_as_that_notice_with_its_rule() -> None:
    titled = rule(title="{entity_name} low")
    assert compose_group([note()], {"fuel": titled}) == compose(note(), titled)
    assert compose_group([note()], {"fuel": titled})[0] == "Truck 7 low"


def test_a_group_lists_alerts_under_their_rules_with_the_rules_titles() -> None:
    titled = rule(title="{entity_name} low")
    notes = [note(), note(entity="fleet/2", entity_name="Van 2", state="resolved"),
             note(rule="heat", entity="fleet/3", entity_name="", field="")]
    title, body = compose_group(notes, {"fuel": titled})
    assert title == "[FIRING 2, RESOLVED 1] fuel, heat"
    assert body.splitlines() == [
        "fuel (warning):", "  FIRING: Truck 7 low", "  RESOLVED: Van 2 low", "",
        "heat (warning):", "  FIRING: fleet/3, since 00:00 UTC (1m30s)"]


def test_a_group_title_names_three_rules_and_counts_the_rest() -> None:
    def names(count: int) -> str:
        return compose_group([note(rule=f"r{i}") for i in range(count)], {})[0]

    assert names(3) == "[FIRING 3] r0, r1, r2"
    assert names(4) == "[FIRING 4] r0, r1, r2 and 1 more rules"
    assert compose_group([note(state="odd"), note(state="odd")], {})[0] == "[ODD 2] fuel"


def test_a_long_group_lists_twenty_and_counts_the_rest_by_state() -> None:
    many = [note(entity=f"fleet/{i}", entity_name=f"T{i}") for i in range(19)]
    many += [note(rule="heat", entity=f"fleet/{i}", entity_name=f"H{i}",
                  state="odd" if i % 2 else "resolved") for i in range(5)]
    many += [note(rule="cold", entity="fleet/9", state="odd")]
    _, body = compose_group(many, {})
    lines = body.splitlines()
    assert lines[:20] == ["fuel (warning):"] + [
        f"  FIRING: T{i} (fleet/{i}), lls_level_1 262.9138, since 00:00 UTC (1m30s)"
        for i in range(19)]
    assert lines[20:] == [
        "", "heat (warning):",
        "  RESOLVED: H0 (fleet/0), lls_level_1 262.9138, since 00:00 UTC (1m30s)",
        "  ... and 4 more (2 ODD, 2 RESOLVED)", "", "cold (warning):", "  1 ODD"]


def test_a_digest_says_what_still_fires_and_how_many_came_and_went() -> None:
    title, body = compose_digest([note()], 2, T0 - 3600, {})
    assert title == "[DIGEST] 1 alert still firing after quiet hours"
    assert body.splitlines() == [
        "Quiet hours since 23:00 UTC are over. Still firing:", "", "fuel (warning):",
        "  FIRING: Truck 7 (fleet/21080), lls_level_1 262.9138, since 00:00 UTC (1m30s)", "",
        "2 more alerts fired and resolved during quiet hours."]
    title, body = compose_digest([note(), note(entity="fleet/2")], 1, T0, {})
    assert title == "[DIGEST] 2 alerts still firing after quiet hours"
    assert body.endswith("\n\n1 more alert fired and resolved during quiet hours.")
    assert "fired and resolved" not in compose_digest([note()], 0, T0, {})[1]


def test_a_digest_body_keeps_4000_characters() -> None:
    firing = [note(rule=f"rule{i}" + "r" * 150, entity=f"fleet/{i}") for i in range(20)]
    _, body = compose_digest(firing, 0, T0, {})
    assert len(body) == 4000 and body.endswith("…")
    _, body = compose_digest(firing[:2], 0, T0, {})
    assert len(body) > 250 and not body.endswith("…")


def rendered_as_before(template: str, values: dict[str, object]) -> str:
    """``render`` as it was: ``str.format``'s own parse at every call (``vformat``)."""
    try:
        return str(_FORMATTER.vformat(template, (), dict(values)))
    except (ValueError, IndexError, KeyError):
        return template


template_pieces = st.sampled_from([
    "seq ", "{value}", "{value:.1f}", "{value:>8}", "{entity_name}", "{labels[site]}",
    "{labels[gone]}", "{rule!r}", "{}", "{0}", "{value:{rule}}", "{entity.name}", "{nope}",
    "{{", "}}", "{", "}", " l", "{since}", "{severity:^9}", "{labels}", "{value:d}",
    "{value:{labels[fmt]}}"])


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(template_pieces, max_size=6),
       st.sampled_from([262.9138, "262.9138", None, 7, "text {x}", True]))
def test_a_template_parsed_once_renders_as_str_format_does(
        pieces: list[str], value: object) -> None:
    """``render`` parses a template once and fills it at each notification: for templates
    that pass the check and those that do not (numbered, empty or nested placeholders,
    conversions, stray braces), it writes what ``str.format``'s ``vformat`` wrote."""
    template = "".join(pieces)
    values = {"value": value, "entity_name": "Truck 7", "rule": "fuel", "since": "2026",
              "severity": "warning", "labels": {"site": "north", "fmt": ".1f"}}
    assert render(template, values) == rendered_as_before(template, values)
    assert render(template, values) == rendered_as_before(template, values)  # cached


@pytest.mark.parametrize("where", ["rule", "entity", "source", "entity_name", "field", "value",
                                   "label key", "label value", "description"])
def test_text_from_outside_is_escaped_wherever_it_is_alone(where: str) -> None:
    """A note with one hostile value (an ESC sequence and a line break) and every other
    value plain: the message shows it escaped. A note that needs no escaping is passed on as
    it is (no copy); one that does must never be, whichever of its values needs it."""
    hostile = "x\x1b[2J\ny"
    changes: dict[str, object] = {"labels": {"site": "north"}, "description": "fine"}
    if where == "label key":
        changes["labels"] = {hostile: "north"}
    elif where == "label value":
        changes["labels"] = {"site": hostile}
    else:
        changes[where.replace(" ", "_")] = hostile
    # the default words leave the source out: a body of the rule's own shows it (a title
    # is made one line, escaped, whatever it holds)
    title, body = compose(note(**changes), rule(body="{source}") if where == "source"
                          else rule())
    assert "\x1b" not in title + body
    assert "x\\x1b[2J" in title + body
    assert "y" not in [line.strip() for line in body.splitlines()]  # no line of its own


@pytest.mark.parametrize("where", ["rule", "entity", "source", "entity_name", "field",
                                   "value", "label key", "label value"])
def test_a_long_plain_text_is_cut_wherever_it_is_alone(where: str) -> None:
    """A plain note (every text short, no control character; a number or such a text for
    its value) is passed on as it is, no copy made, and so is one with a text of exactly
    ``FIELD_LIMIT`` characters; one text longer than that, in any place and plain
    otherwise, is cut."""
    def placed(text: str) -> Notification:
        changes: dict[str, object] = {"labels": {"site": "north"}, "value": 262.9138}
        if where == "label key":
            changes["labels"] = {text: "north"}
        elif where == "label value":
            changes["labels"] = {"site": text}
        else:
            changes[where] = text
        return note(description="fine", **changes)

    def shown(made: Notification) -> str:
        if where == "label key":
            return next(iter(made.labels))
        if where == "label value":
            return made.labels["site"]
        return str(getattr(made, where))

    for value in (262.9138, "262.9138", None, True):
        plain = note(value=value, labels={"site": "north"}, description="fine")
        assert outside_made_safe(plain) is plain
    edge = placed("x" * FIELD_LIMIT)
    assert outside_made_safe(edge) is edge
    made = outside_made_safe(placed("x" * 1000))
    assert shown(made) == "x" * (FIELD_LIMIT - 1) + "…"
