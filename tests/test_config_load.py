"""Valid rule files become the typed values an operator meant."""

from __future__ import annotations

import textwrap
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from alertd.config import load_config, nodes
from alertd.config import schema as s
from alertd.config.fields import parse_duration
from alertd.errors import Problem
from tests.budget import examples

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_ENV = {"ELEMENT_API_KEY": "k-123", "NAVIXY_HASH": "0123456789abcdef0123456789abcdef",
               "SMTP_PASSWORD": "pw"}


def write(tmp_path: Path, text: str, name: str = "rules.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize("text,seconds", [
    ("45s", 45), ("10m", 600), ("2h", 7200), ("1d", 86400), ("1h30m", 5400), ("90", 90),
    ("1.5", 1.5), ("250ms", 0.25), ("1w", 604800), ("2m30s", 150),
])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "10x", "m", "1h 30m", "ten minutes", "1:30", "-"])
def test_not_durations(text: str) -> None:
    assert parse_duration(text) is None


def test_example_file_loads_into_typed_values() -> None:
    config = load_config(ROOT / "rules.example.yaml", EXAMPLE_ENV)
    cold, fleet = config.sources["coldchain"], config.sources["fleet"]
    assert isinstance(cold, s.ElementSource) and isinstance(fleet, s.NavixySource)
    assert cold.api_key == "k-123" and cold.ping_interval == 20 and cold.replay is True
    assert cold.subscribe == ("streams/2f6c4b3e/readings", "devices/8a1d0f/readings",
                              "devices/8a1d0f/packets")
    assert fleet.trackers == (21080, 21081, 21082, 21085) and fleet.status_refresh == 300
    assert config.channels["oncall"].mute == (s.MuteWindow(22 * 60, 6 * 60 + 30),)
    assert config.channels["oncall"].timezone == "Europe/Berlin"
    rules = {rule.name: rule for rule in config.rules}
    warm = rules["cold-room-warm"]
    assert warm.condition == s.Threshold(warm.condition.loc, "temperature", above=8,
                                         clear_below=7.5)
    assert warm.for_ == 600 and warm.severity == "critical" and warm.repeat == 4 * 3600
    assert warm.labels == {"team": "cold-chain", "site": "hamburg"}  # defaults merged
    assert rules["sensor-battery-low"].repeat is None  # repeat: never
    assert rules["truck-offline"].notify == ("ops-slack", "console")  # from defaults
    drain = rules["fuel-drain"].condition
    assert isinstance(drain, s.AllOf) and [type(c) for c in drain.conditions] == [
        s.Change, s.Threshold]
    assert rules["gps-unstable"].condition == s.Missing(
        rules["gps-unstable"].condition.loc, "latitude", 4, 12)
    assert rules["overspeed-or-overheat"].entities == ("21080", "21081")
    assert config.silences[0].starts == datetime(2026, 12, 1, 8, tzinfo=timezone.utc)
    assert config.state == ROOT / "alertd-state.db"
    kinds = {type(rule.condition) for rule in config.rules}
    assert kinds == {s.Threshold, s.Missing, s.Silent, s.Status, s.SourceDown, s.Change,
                     s.AllOf, s.AnyOf}, "the example must use every rule kind"


def test_locations_are_kept_for_later_stages() -> None:
    config = load_config(ROOT / "rules.example.yaml", EXAMPLE_ENV)
    rule = next(r for r in config.rules if r.name == "cold-room-warm")
    text = (ROOT / "rules.example.yaml").read_text().splitlines()
    assert "name: cold-room-warm" in text[rule.loc.line - 1]


def test_yaml_one_one_surprises_do_not_apply(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        sources:
          fleet: {type: navixy, hash: no, trackers: [1]}
        channels: {ops: console://}
        rules:
          - name: on
            notify: [ops]
            title: 10:00
            threshold: {field: door, equals: off}
        """)
    config = load_config(path, {})
    rule = config.rules[0]
    assert rule.name == "on" and rule.title == "10:00"
    assert config.sources["fleet"].hash == "no"  # type: ignore[union-attr]
    assert rule.condition.equals is False  # type: ignore[union-attr]


def test_variables_and_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        sources:
          fleet: {type: navixy, hash: "${HASH}", trackers: [1], rate_limit: "${RATE:-10s}"}
        channels: {ops: console://}
        rules:
          - {name: hot, notify: [ops], threshold: {field: t, above: "${LIMIT:-8}"}}
          - {name: cold, notify: [ops], threshold: {field: t, below: "${LOW:-2}"}}
        """)
    config = load_config(path, {"HASH": "abc", "LIMIT": "9.5", "RATE": ""})
    fleet = config.sources["fleet"]
    assert isinstance(fleet, s.NavixySource)
    assert fleet.hash == "abc" and fleet.rate_limit == "10s"  # empty value takes the default
    assert config.rules[0].condition.above == 9.5  # type: ignore[union-attr]
    assert config.rules[1].condition.below == 2  # type: ignore[union-attr]


def test_includes_add_rules_and_channels(tmp_path: Path) -> None:
    (tmp_path / "rules.d").mkdir()
    write(tmp_path, "rules:\n  - {name: b, notify: [mail], silent: {after: 1m}}\n",
          "rules.d/b.yaml")
    write(tmp_path, "channels:\n  mail: console://\n", "rules.d/a.yaml")
    path = write(tmp_path, """\
        include: [rules.d/*.yaml]
        sources: {fleet: {type: navixy, hash: h, trackers: [1]}}
        channels: {ops: console://}
        rules:
          - {name: a, notify: [ops], silent: {after: 1m}}
        """)
    config = load_config(path, {})
    assert [r.name for r in config.rules] == ["a", "b"]
    assert set(config.channels) == {"ops", "mail"}
    assert len(config.files) == 3


def test_state_path_is_relative_to_the_file_and_overridable(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        state: data/alerts.db
        sources: {fleet: {type: navixy, hash: h, trackers: [1]}}
        channels: {ops: console://}
        rules: [{name: a, notify: [ops], silent: {after: 1m}}]
        """)
    assert load_config(path, {}).state == tmp_path / "data" / "alerts.db"
    assert load_config(path, {}, state="/var/lib/x.db").state == Path("/var/lib/x.db")


def test_anchors_and_merge_keys(tmp_path: Path) -> None:
    merged = write(tmp_path, """\
        sources: {fleet: {type: navixy, hash: h, trackers: [1]}}
        channels: {ops: console://}
        defaults: &d {notify: [ops], severity: critical}
        rules:
          - {<<: *d, name: a, silent: {after: 1m}}
          - {<<: *d, name: b, severity: info, silent: {after: 1m}}
        """, "merged.yaml")
    rules = load_config(merged, {}).rules
    assert [(r.name, r.severity) for r in rules] == [("a", "critical"), ("b", "info")]


def test_mute_windows_with_days(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        sources: {fleet: {type: navixy, hash: h, trackers: [1]}}
        channels:
          ops: {urls: console://, mute: ["Sat-Sun 00:00-24:00", "Fri,Mon 12:00-13:00"]}
        rules: [{name: a, notify: [ops], silent: {after: 1m}}]
        """)
    mute = load_config(path, {}).channels["ops"].mute
    assert mute == (s.MuteWindow(0, 1440, frozenset({6, 7})),
                    s.MuteWindow(720, 780, frozenset({1, 5})))


def test_variables_work_unquoted_inside_flow_collections(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        sources:
          fleet: {type: navixy, hash: ${HASH}, trackers: [1]}
        channels:
          mail: {urls: [mailtos://user:${SMTP_PASSWORD}@example.com?to=oncall@example.com]}
        rules:
          - {name: a, notify: [mail], threshold: {field: t, above: ${LIMIT:-8}}}
        x-notes: {anchors: may live under x- keys}
        """)
    config = load_config(path, {"HASH": "abc", "SMTP_PASSWORD": "pw"})
    assert config.channels["mail"].urls == ("mailtos://user:pw@example.com?to=oncall@example.com",)
    assert config.rules[0].condition.above == 8  # type: ignore[union-attr]


def test_clock_values_stay_text_and_dates_are_midnight_utc(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        sources: {fleet: {type: navixy, hash: h, trackers: 21080, rate_limit: 1m}}
        channels:
        defaults:
        rules:
          - {name: a, notify: [], threshold: {field: shift, equals: 10:00}}
        silences:
          - {match: {rule: a}, ends: 2026-12-01}
        """)
    config = load_config(path, {})
    assert config.rules[0].condition.equals == "10:00"  # type: ignore[union-attr]
    assert config.silences[0].ends == datetime(2026, 12, 1, tzinfo=timezone.utc)
    fleet = config.sources["fleet"]
    assert isinstance(fleet, s.NavixySource)
    assert fleet.trackers == (21080,) and fleet.rate_limit == "60s"


def test_loading_leaves_the_garbage_collector_as_it_found_it(tmp_path: Path) -> None:
    """load_config pauses the collector while it builds (docs/performance.md); a daemon that
    reloads a broken file must not be left without one (its heap would only grow)."""
    import gc

    from alertd.errors import ConfigError

    broken = write(tmp_path, "sources: [\n")
    assert gc.isenabled()
    load_config(ROOT / "rules.example.yaml", EXAMPLE_ENV)
    assert gc.isenabled()
    with pytest.raises(ConfigError):
        load_config(broken, {})
    assert gc.isenabled()
    gc.disable()
    try:
        load_config(ROOT / "rules.example.yaml", EXAMPLE_ENV)
        assert not gc.isenabled()  # paused by its caller: still paused
    finally:
        gc.enable()


SCALAR_TEXTS = st.one_of(st.from_regex(r"[-+]?[0-9_.:eE+]{1,10}", fullmatch=True),
                         st.sampled_from(["0", "00", "012", "0x1f", "0b101", "1_000", "1:30",
                                          ".inf", "-.inf", ".nan", "1.", ".5", "+1.5e+3",
                                          "-0.0", "1e5", "yes", "off", "~", "null", "true"]),
                         st.text(st.characters(codec="ascii", exclude_characters="\r\n"),
                                 max_size=10))


@settings(max_examples=examples(400), deadline=None)
@given(SCALAR_TEXTS, st.booleans())
def test_a_scalar_has_the_value_yaml_constructs(text: str, alias: bool) -> None:
    """The usual scalars (strings, plain integers and decimals) are typed without PyYAML's
    constructor, and a file without aliases is built without counting them; whatever the
    text, with or without an alias in the file, a scalar's value is the one the constructor
    gives (a base-60 number such as 1:30 aside: it stays text)."""
    document = ("a: &x 1\nb: *x\n" if alias else "") + f"v: {text}\n"
    try:
        composed = yaml.compose(document, Loader=nodes._BaseLoader)
    except yaml.YAMLError:
        assume(False)
    node = composed.value[-1][1]
    assume(isinstance(node, yaml.ScalarNode) and not node.style and "${" not in text)
    try:
        expected = nodes._BaseLoader("").construct_object(yaml.ScalarNode(node.tag, node.value))
    except (yaml.YAMLError, ValueError):
        expected = node.value
    if ":" in node.value and isinstance(expected, (int, float)) \
            and not isinstance(expected, bool):
        expected = node.value
    problems: list[Problem] = []
    built = nodes.parse_yaml(document, "rules.yaml", {}, problems)
    assert isinstance(built, nodes.Mapping) and not problems
    value = built.items["v"]
    assert isinstance(value, nodes.Scalar)
    assert (type(value.value), repr(value.value)) == (type(expected), repr(expected))
