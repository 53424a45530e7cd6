"""`alertd rules`: the rules as the loader understood them, defaults applied."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alertd.cli import main

RULES = """\
sources:
  cold: {type: element, api_key: k, subscribe: [readings]}
  fleet: {type: navixy, hash: h, trackers: [21080]}
channels: {ops: console://, pager: console://}
defaults: {notify: [ops], repeat: 2h, severity: info}
rules:
  - name: warm
    source: cold
    labels: {site: hamburg}
    threshold: {field: temperature, above: 8, clear_below: 7.5}
    for: 10m
    overrides: {room9: {above: 12, clear_below: 11}}
  - name: fuel-gap
    source: fleet
    entities: [21080]
    missing: {field: lls_level_1, nulls: 3, of: 5}
    notify: [pager]
    severity: critical
    repeat: never
  - {name: both, all: [{threshold: {field: t, above: {field: max_t}}}, {status: {in: [blocked]}}]}
"""


def test_rules_lists_each_rule_with_defaults_applied(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    assert main(["rules", "-c", str(path), "--json"]) == 0
    rules = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rules["warm"]["condition"] == "threshold temperature > 8 (clear < 7.5)"
    assert rules["warm"]["overrides"] == {"room9": "threshold temperature > 12 (clear < 11)"}
    assert (rules["warm"]["for"], rules["warm"]["repeat"], rules["warm"]["notify"],
            rules["warm"]["severity"], rules["warm"]["labels"], rules["warm"]["sources"]) == \
        (600.0, 7200.0, ["ops"], "info", {"site": "hamburg"}, ["cold"])
    assert rules["fuel-gap"]["condition"] == \
        "missing lls_level_1 null in 3 of the 5 newest messages"
    assert (rules["fuel-gap"]["entities"], rules["fuel-gap"]["repeat"],
            rules["fuel-gap"]["notify"]) == (["21080"], None, ["pager"])
    assert rules["both"]["condition"] == \
        "all(threshold t > field max_t, status in [blocked])"
    assert rules["both"]["sources"] == ["cold", "fleet"] and rules["both"]["entities"] is None

    assert main(["rules", "-c", str(path)]) == 0
    text = capsys.readouterr().out
    assert "warm  (info, " in text and "  when      threshold temperature > 8 (clear < 7.5)" \
        in text and "override  room9: threshold temperature > 12 (clear < 11)" in text
    assert "repeat never" in text and "labels    site=hamburg" in text


def test_rules_of_an_invalid_file_exit_2(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES.replace("for: 10m", "for: soon"))
    assert main(["rules", "-c", str(path)]) == 2
    assert "rule 'warm': for: 'soon' is not a duration" in capsys.readouterr().err
