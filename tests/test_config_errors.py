"""Broken rule files: each must be rejected with the exact FILE:LINE and message a user sees.

In every case the line that must be reported carries the marker ``# <-``; the test checks the
full printed line ``FILE:LINE: message`` (the file name replaced by ``F``).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from alertd.config import load_config
from alertd.errors import ConfigError

ENV = {"SECRET_KEY": "s3cr3t-value-xyz", "EMPTY": ""}

HEAD = """\
sources:
  fleet: {type: navixy, hash: h, trackers: [21080]}
  cold: {type: element, api_key: k, subscribe: [readings]}
channels:
  ops: console://
defaults:
  notify: [ops]
rules:
"""


def problems_of(tmp_path: Path, text: str, name: str = "rules.yaml") -> list[str]:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    with pytest.raises(ConfigError) as caught:
        load_config(path, ENV)
    return [str(p).replace(str(path), "F") for p in caught.value.problems]


def marked_lines(text: str) -> list[int]:
    return [n for n, line in enumerate(textwrap.dedent(text).splitlines(), 1) if "# <-" in line]


CASES: list[tuple[str, str, list[str]]] = [
    ("yaml syntax error", HEAD + """\
  - name: a
    threshold: {field: t, above: 1
  - name: b   # <-
""", ["YAML syntax error: did not find expected ',' or '}' "
      "(while parsing a flow mapping that starts on line 10)"]),
    ("tab indentation", "sources:\n\tfleet: 1   # <-\n",
     ["YAML syntax error: found character that cannot start any token "
      "(while scanning for the next token)"]),
    ("unknown top-level key", HEAD + """\
  - {name: a, silent: {after: 5m}}
rule: []   # <-
""", ["unknown key 'rule' in the top level (did you mean 'rules'?)"]),
    ("unknown rule key with suggestion", HEAD + """\
  - name: a
    silent: {after: 5m}
    sevrity: critical   # <-
""", ["unknown key 'sevrity' in rule 'a' (did you mean 'severity'?)"]),
    ("unknown key inside a condition", HEAD + """\
  - name: a
    threshold: {field: t, abve: 3}   # <-
""", ["rule 'a': threshold needs one of above, below, equals or in",
      "unknown key 'abve' in rule 'a': threshold (did you mean 'above'?)"]),
    ("duplicate key", HEAD + """\
  - name: a
    silent: {after: 5m}
    for: 1m
    for: 2m   # <-
""", ["duplicate key 'for' (first written on line 11)"]),
    ("unset variable names the variable", """\
sources:
  fleet: {type: navixy, hash: "${NAVIXY_HASH}", trackers: [1]}   # <-
channels: {ops: console://}
rules:
  - {name: a, notify: [ops], silent: {after: 5m}}
""", ["environment variable NAVIXY_HASH is not set (set it, or write ${NAVIXY_HASH:-default})"]),
    ("variable set but empty", """\
sources:
  fleet: {type: navixy, hash: "${EMPTY}", trackers: [1]}   # <-
channels: {ops: console://}
rules:
  - {name: a, notify: [ops], silent: {after: 5m}}
""", ["environment variable EMPTY is set but empty"]),
    ("clock-style value is not a number", HEAD + """\
  - name: a
    threshold: {field: t, above: 1}
    for: 1:30   # <-
""", ["rule 'a': for: '1:30' is not a duration "
      "(write 45s, 10m, 2h, 1d, 1h30m or a number of seconds)"]),
    ("silence matching everything", HEAD + """\
  - {name: a, silent: {after: 5m}}
silences:
  - match: {labels: {}}   # <-
    ends: 2026-12-01T08:00:00Z
""", ["silence #1: match is empty, so it would silence every alert; name at least one "
      "rule, source, entity, severity or label"]),
    ("empty source list", HEAD + """\
  - name: a
    source: []   # <-
    silent: {after: 5m}
""", ["rule 'a': source must name at least one source (leave it out to watch every source)"]),
    ("status inside any on element sources", HEAD + """\
  - name: a
    source: cold
    any:
      - threshold: {field: t, above: 1}
      - status: {in: [blocked]}   # <-
""", ["rule 'a': status conditions apply to navixy trackers only, and every source of this "
      "rule is an element source"]),
    ("clear bounds that never resolve", HEAD + """\
  - name: a
    threshold: {field: t, above: 8, below: 2, clear_below: 1}   # <-
""", ["rule 'a': threshold: the clear bounds leave no value that resolves the alert (it "
      "must fall above 2 and below 1)"]),
    ("template conversion", HEAD + """\
  - name: a
    silent: {after: 5m}
    title: "{value!r}"   # <-
""", ["rule 'a': title: placeholder {value!r}: conversions such as !r are not allowed"]),
    ("console with extra parts", """\
sources:
  fleet: {type: navixy, hash: h, trackers: [1]}
channels:
  ops: console://stdout   # <-
rules:
  - {name: a, notify: [ops], silent: {after: 5m}}
""", ["channel 'ops': the URL must be exactly console:// (it takes no host, path or options)"]),
    ("rate limit in milliseconds", """\
sources:
  fleet: {type: navixy, hash: h, trackers: [1], rate_limit: 250ms}   # <-
channels: {ops: console://}
rules:
  - {name: a, notify: [ops], silent: {after: 5m}}
""", ["source 'fleet': rate_limit must be whole seconds (Navixy takes values such as 5s or 1m)"]),
    ("malformed variable", """\
sources:
  fleet: {type: navixy, hash: "${NAVIXY HASH}", trackers: [1]}   # <-
channels: {ops: console://}
rules:
  - {name: a, notify: [ops], silent: {after: 5m}}
""", ["malformed variable reference '${NAVIXY HASH}': write ${NAME} or ${NAME:-default}"]),
    ("bad duration", HEAD + """\
  - name: a
    silent: {after: 10 minutes}   # <-
""", ["rule 'a': silent.after: '10 minutes' is not a duration "
      "(write 45s, 10m, 2h, 1d, 1h30m or a number of seconds)"]),
    ("negative duration", HEAD + """\
  - name: a
    threshold: {field: t, above: 1}
    for: -5m   # <-
""", ["rule 'a': for must not be negative, not '-5m'"]),
    ("zero duration where time must pass", HEAD + """\
  - name: a
    silent: {after: 0s}   # <-
""", ["rule 'a': silent.after must be longer than 0s"]),
    ("no condition", HEAD + """\
  - name: lonely   # <-
    severity: info
""", ["rule 'lonely' has no condition; give exactly one of threshold, missing, silent, "
      "status, source_down, change, all, any"]),
    ("two conditions", HEAD + """\
  - name: both
    silent: {after: 5m}
    missing: {field: x, nulls: 2}   # <-
""", ["rule 'both' has two conditions ('silent' on line 10 and 'missing'); a rule holds "
      "exactly one: combine them with all: or any:"]),
    ("duplicate rule name", HEAD + """\
  - {name: a, silent: {after: 5m}}
  - {name: a, silent: {after: 9m}}   # <-
""", ["duplicate rule name 'a' (first at F:9)"]),
    ("rule without a name", HEAD + """\
  - silent: {after: 5m}   # <-
""", ["rule #1 needs a 'name'"]),
    ("unknown source with suggestion", HEAD + """\
  - name: a
    source: flete   # <-
    silent: {after: 5m}
""", ["rule 'a': unknown source 'flete' (did you mean 'fleet'?)"]),
    ("unknown channel", HEAD + """\
  - name: a
    silent: {after: 5m}
    notify: [opss]   # <-
""", ["rule 'a': notify names unknown channel 'opss' (did you mean 'ops'?)"]),
    ("bad severity", HEAD + """\
  - name: a
    silent: {after: 5m}
    severity: urgent   # <-
""", ["rule 'a': severity must be one of info, warning, critical, not 'urgent'"]),
    ("nulls greater than of", HEAD + """\
  - name: a
    missing: {field: lls, nulls: 5, of: 3}   # <-
""", ["rule 'a': missing.nulls (5) cannot be more than of (3)"]),
    ("of greater than 12", HEAD + """\
  - name: a
    missing: {field: lls, nulls: 3, of: 13}   # <-
""", ["rule 'a': missing.of must be at most 12, not 13"]),
    ("nulls zero", HEAD + """\
  - name: a
    missing: {field: lls, nulls: 0}   # <-
""", ["rule 'a': missing.nulls must be at least 1, not 0"]),
    ("threshold band upside down", HEAD + """\
  - name: a
    threshold:
      field: t
      above: 2
      below: 8   # <-
""", ["rule 'a': threshold: with both bounds the alert fires outside the band, so below (8) "
      "must be less than above (2)"]),
    ("hysteresis on the wrong side", HEAD + """\
  - name: a
    threshold:
      field: t
      above: 8
      clear_below: 9   # <-
""", ["rule 'a': threshold.clear_below (9) must be at or below above (8)"]),
    ("hysteresis without its bound", HEAD + """\
  - name: a
    threshold:
      field: t
      above: 8
      clear_above: 9   # <-
""", ["rule 'a': threshold.clear_above needs 'below' (it is the hysteresis bound for below)"]),
    ("threshold value not a number", HEAD + """\
  - name: a
    threshold: {field: t, above: warm}   # <-
""", ["rule 'a': threshold.above must be a number, not 'warm'"]),
    ("change without direction", HEAD + """\
  - name: a
    change: {field: fuel, within: 10m}   # <-
""", ["rule 'a': change needs exactly one of drop or rise"]),
    ("change with negative drop", HEAD + """\
  - name: a
    change: {field: fuel, drop: -30, within: 10m}   # <-
""", ["rule 'a': change.drop must be a positive amount, not -30"]),
    ("silent inside all", HEAD + """\
  - name: a
    all:
      - threshold: {field: speed, below: 5}
      - silent: {after: 5m}   # <-
""", ["rule 'a': all[2]: 'silent' cannot be combined in all: it has no value on a message; "
      "give it a rule of its own"]),
    ("status normal", HEAD + """\
  - name: a
    status: {in: [normal]}   # <-
""", ["rule 'a': status.in: 'normal' is the status that resolves the alert; list blocked, "
      "unknown or disallowed"]),
    ("status on element only", HEAD + """\
  - name: a
    source: cold
    status: {in: [blocked]}   # <-
""", ["rule 'a': status conditions apply to navixy trackers only, and every source of this "
      "rule is an element source"]),
    ("unknown placeholder", HEAD + """\
  - name: a
    silent: {after: 5m}
    title: "{entity} at {temprature}"   # <-
""", ["rule 'a': title: unknown placeholder {temprature}; use one of {rule}, {severity}, "
      "{state}, {source}, {entity}, {entity_name}, {field}, {value}, {since}, {duration}, "
      "{labels[KEY]}, {description}"]),
    ("attribute access in a template", HEAD + """\
  - name: a
    silent: {after: 5m}
    body: "{entity.__class__}"   # <-
""", ["rule 'a': body: placeholder {entity.__class__} uses attribute access, which is not "
      "allowed"]),
    ("unknown source type", """\
sources:
  fleet: {type: navixi, hash: h, trackers: [1]}   # <-
channels: {ops: console://}
rules:
  - {name: a, notify: [ops], silent: {after: 5m}}
""", ["source 'fleet': type must be one of element, navixy, not 'navixi' "
      "(did you mean 'navixy'?)"]),
    ("empty tracker list", """\
sources:
  fleet: {type: navixy, hash: h, trackers: []}   # <-
channels: {ops: console://}
rules:
  - {name: a, notify: [ops], silent: {after: 5m}}
""", ["source 'fleet': trackers must list at least one tracker id"]),
    ("tracker id not a number", """\
sources:
  fleet:
    type: navixy
    hash: h
    trackers: [21080, truck7]   # <-
channels: {ops: console://}
rules:
  - {name: a, notify: [ops], silent: {after: 5m}}
""", ["source 'fleet': tracker id must be a whole number, not 'truck7'"]),
    ("element source without api key", """\
sources:
  cold:   # <-
    type: element
    subscribe: [readings]
channels: {ops: console://}
rules:
  - {name: a, notify: [ops], silent: {after: 5m}}
""", ["source 'cold' needs 'api_key'"]),
    ("element subscribe path", """\
sources:
  cold:
    type: element
    api_key: k
    subscribe: [streams/abc/readings/socket]   # <-
channels: {ops: console://}
rules:
  - {name: a, notify: [ops], silent: {after: 5m}}
""", ["source 'cold': subscribe entry 'streams/abc/readings/socket' is not an ELEMENT socket "
      "path (write devices/ID/readings, tags/ID/packets, streams/ID/readings, readings or "
      "packets)"]),
    ("element url scheme", """\
sources:
  cold:
    type: element
    api_key: k
    subscribe: [readings]
    url: https://element-iot.com/api/v1   # <-
channels: {ops: console://}
rules:
  - {name: a, notify: [ops], silent: {after: 5m}}
""", ["source 'cold': url must be a ws:// or wss:// URL, not 'https://element-iot.com/api/v1'"]),
    ("element url port", """\
sources:
  cold:
    type: element
    api_key: k
    subscribe: [readings]
    url: wss://element-iot.com:99999/api/v1   # <-
channels: {ops: console://}
rules:
  - {name: a, notify: [ops], silent: {after: 5m}}
""", ["source 'cold': url needs a host and, if it names a port, one of 1-65535, not "
      "'wss://element-iot.com:99999/api/v1'"]),
    ("navixy url without a host", """\
sources:
  fleet:
    type: navixy
    hash: h
    trackers: [1]
    url: "ws://:8080/v2/event/subscription"   # <-
channels: {ops: console://}
rules:
  - {name: a, notify: [ops], silent: {after: 5m}}
""", ["source 'fleet': url needs a host and, if it names a port, one of 1-65535, not "
      "'ws://:8080/v2/event/subscription'"]),
    ("apprise scheme typo", """\
sources:
  fleet: {type: navixy, hash: h, trackers: [1]}
channels:
  ops: slak://T000/B000/XXXX   # <-
rules:
  - {name: a, notify: [ops], silent: {after: 5m}}
""", ["channel 'ops': the URL uses 'slak://', which is not an apprise service "
      "(did you mean 'slack://'?)"]),
    ("apprise URL apprise cannot parse, secret hidden", """\
sources:
  fleet: {type: navixy, hash: h, trackers: [1]}
channels:
  ops:
    urls: ["slack://${SECRET_KEY}"]   # <-
rules:
  - {name: a, notify: [ops], silent: {after: 5m}}
""", ["channel 'ops': the URL is not a valid slack:// URL for apprise: An invalid Slack "
      "(first) Token (***) was specified"]),
    ("https web hook apprise does not know", """\
sources:
  fleet: {type: navixy, hash: h, trackers: [1]}
channels:
  ops: https://example.com/hooks/alertd   # <-
rules:
  - {name: a, notify: [ops], silent: {after: 5m}}
""", ["channel 'ops': the URL is an https:// address that apprise does not recognise as a "
      "service's web hook (it knows Slack's, Discord's, Teams' and others); to post JSON to "
      "any web hook write jsons://HOST/PATH"]),
    ("mailto without a sender", """\
sources:
  fleet: {type: navixy, hash: h, trackers: [1]}
channels:
  ops: mailto://127.0.0.1:2525?to=oncall@example.com   # <-
rules:
  - {name: a, notify: [ops], silent: {after: 5m}}
""", ["channel 'ops': the URL is not a valid mailto:// URL for apprise: Invalid ~From~ email "
      "specified; it has no sender: add ?from=alerts@example.com (or write "
      "user:password@host, which sends as user@host)"]),
    ("telegram token written wrong", """\
sources:
  fleet: {type: navixy, hash: h, trackers: [1]}
channels:
  ops: tgram://AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/12345678   # <-
rules:
  - {name: a, notify: [ops], silent: {after: 5m}}
""", ["channel 'ops': the URL is not a valid tgram:// URL for apprise: the bot token (the "
      "part after tgram://) must be written NUMBER:KEY, as @BotFather gives it; write "
      "tgram://BOT_TOKEN/CHAT_ID"]),
    ("misspelt condition key: the cause alone", HEAD + """\
  - name: a
    treshold: {field: t, above: 1}   # <-
""", ["unknown key 'treshold' in rule 'a' (did you mean 'threshold'?)"]),
    ("a source's keys at the level of source names", """\
sources:
  fleet:   # <-
  type: navixy
  hash: h
  trackers: [1]
channels: {ops: console://}
rules:
  - {name: a, notify: [ops], silent: {after: 5m}}
""", ["source 'fleet' is empty, and 'type', 'hash', 'trackers' below it are at the level "
      "of source names: indent them under 'fleet:'"]),
    ("mute window", """\
sources:
  fleet: {type: navixy, hash: h, trackers: [1]}
channels:
  ops:
    urls: console://
    mute: 22:00-7   # <-
rules:
  - {name: a, notify: [ops], silent: {after: 5m}}
""", ["channel 'ops': mute: '22:00-7' is not a quiet window (write HH:MM-HH:MM, e.g. "
      "\"22:00-07:00\", optionally after days: \"Sat-Sun 00:00-24:00\" or "
      "\"Mon,Wed 12:00-13:00\")"]),
    ("time zone", """\
sources:
  fleet: {type: navixy, hash: h, trackers: [1]}
channels:
  ops:
    urls: console://
    timezone: Europe/Berln   # <-
rules:
  - {name: a, notify: [ops], silent: {after: 5m}}
""", ["channel 'ops': timezone: unknown time zone 'Europe/Berln' (did you mean "
      "'Europe/Berlin'?) (use an IANA name such as Europe/Berlin)"]),
    ("rule without channels anywhere", """\
sources:
  fleet: {type: navixy, hash: h, trackers: [1]}
channels: {ops: console://}
rules:
  - {name: a, silent: {after: 5m}}   # <-
""", ["rule 'a' has no 'notify' and defaults has none: name the channels to send to "
      "(notify: [] keeps the alert silent on purpose)"]),
    ("silence with unknown rule and reversed times", HEAD + """\
  - {name: cold-room-warm, silent: {after: 5m}}
silences:
  - match: {rule: cold-room-wram}   # <-
    starts: 2026-12-01T12:00:00Z
    ends: 2026-12-01T08:00:00Z   # <-
""", ["silence #1: match.rule names unknown rule 'cold-room-wram' "
      "(did you mean 'cold-room-warm'?)",
      "silence #1: ends must be after starts"]),
    ("repeat zero", HEAD + """\
  - name: a
    silent: {after: 5m}
    repeat: 0   # <-
""", ["rule 'a': repeat (or 'never') must be longer than 0s"]),
    ("flapping with one change", HEAD + """\
  - name: a
    silent: {after: 5m}
    flapping: {changes: 1, within: 10m}   # <-
""", ["rule 'a': flapping.changes must be at least 2, not 1"]),
    ("wrong type for a list", HEAD + """\
  - name: a
    source: fleet
    entities: {21080: yes}   # <-
    silent: {after: 5m}
""", ["rule 'a': entities must be a list, not a mapping"]),
    ("http address", HEAD + """\
  - {name: a, silent: {after: 5m}}
http: localhost   # <-
""", ["http must be HOST:PORT such as 127.0.0.1:9464, not 'localhost'"]),
    ("empty file", "", []),
]


@pytest.mark.parametrize("text,expected", [(c[1], c[2]) for c in CASES],
                         ids=[c[0] for c in CASES])
def test_broken_file_reports_exact_line_and_message(tmp_path: Path, text: str,
                                                    expected: list[str]) -> None:
    found = problems_of(tmp_path, text)
    lines = marked_lines(text) or [1]
    if len(lines) < len(expected):  # one marked line can carry several problems
        lines = lines + [lines[-1]] * (len(expected) - len(lines))
    if not expected:
        expected = ["the file is empty: it needs sources and rules"]
    assert found == [f"F:{line}: {message}" for line, message in zip(lines, expected)]


def test_many_errors_are_reported_together(tmp_path: Path) -> None:
    found = problems_of(tmp_path, HEAD + """\
  - name: a
    silent: {after: soon}
  - name: b
    missing: {field: x, nulls: 20}
  - name: c
    threshold: {field: t, above: 1}
    notify: [nobody]
""")
    assert [line.split(":")[1] for line in found] == ["10", "12", "15"]


def test_secret_from_environment_never_printed(tmp_path: Path) -> None:
    found = problems_of(tmp_path, """\
sources:
  fleet: {type: navixy, hash: h, trackers: [1]}
channels:
  ops: slack://${SECRET_KEY}
  mail: mailtos://user:${SECRET_KEY}@
rules:
  - {name: a, notify: [ops], silent: {after: 5m}}
""")
    assert found and all("s3cr3t" not in line for line in found)


def test_errors_in_included_file_name_that_file(tmp_path: Path) -> None:
    (tmp_path / "rules.d").mkdir()
    (tmp_path / "rules.d" / "fleet.yaml").write_text(
        "rules:\n  - name: x\n    silent: {after: 5m}\n    colour: red\n")
    found = problems_of(tmp_path, HEAD + "  - {name: a, silent: {after: 5m}}\n"
                        "include: [rules.d/*.yaml]\n")
    assert found == [f"{tmp_path}/rules.d/fleet.yaml:4: unknown key 'colour' in rule 'x'"]


def test_include_matching_nothing_is_an_error(tmp_path: Path) -> None:
    found = problems_of(tmp_path, HEAD + "  - {name: a, silent: {after: 5m}}\n"
                        "include: [rulez.d/*.yaml]\n")
    assert found == ["F:10: include 'rulez.d/*.yaml' matches no file"]


def test_duplicate_source_across_files(tmp_path: Path) -> None:
    (tmp_path / "more.yaml").write_text("sources:\n  fleet: {type: navixy, hash: h, "
                                        "trackers: [2]}\n")
    found = problems_of(tmp_path, HEAD + "  - {name: a, silent: {after: 5m}}\n"
                        "include: [more.yaml]\n")
    assert found == [f"{tmp_path}/more.yaml:2: source 'fleet' is defined twice (first at F:2)"]


def test_a_slack_webhook_pasted_as_https_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("sources: {fleet: {type: navixy, hash: h, trackers: [1]}}\n"
                    "channels:\n"
                    "  ops: https://hooks.slack.com/services/T000A/B000B/XXXXYYYYZZZZ\n"
                    "rules: [{name: a, notify: [ops], silent: {after: 5m}}]\n")
    config = load_config(path, ENV)
    assert config.channels["ops"].urls == (
        "https://hooks.slack.com/services/T000A/B000B/XXXXYYYYZZZZ",)
