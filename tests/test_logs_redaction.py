"""Log redaction masks secret values only: API keys, hashes and the parts of apprise URLs
that apprise's own privacy rendering hides; never host names, channel names or words."""

from __future__ import annotations

import logging
from pathlib import Path

from alertd.config import load_config
from alertd.logs import Redact, secrets_of

SLACK = "T000AAAA/B000BBBB/XXXXYYYYZZZZ1234"
BOT = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
HASH = "0123456789abcdef0123456789abcdef"
KEY = "element-k3y-9f8e7d6c"


def config(tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "rules.yaml"
    path.write_text(f"""\
state: state/alertd-state.db
http: 127.0.0.1:9464
sources:
  element: {{type: element, api_key: "{KEY}", subscribe: [readings]}}
  fleet: {{type: navixy, hash: "{HASH}", trackers: [21080]}}
channels:
  oncall:
    urls: ["mailtos://alerts:s3cretpassw0rd@smtp.example.com?to=oncall@example.com"]
  ops-slack: slack://{SLACK}/#operations
  webhook: https://hooks.slack.com/services/T111CCCC/B111DDDD/WWWWVVVVUUUU9876
  drivers: tgram://{BOT}/12345678
  local: json://localhost:8080/alerts
rules:
  - {{name: alerts, source: fleet, status: {{in: [blocked]}}, notify: [oncall, ops-slack]}}
""")
    return load_config(path)


def masked(redact: Redact, text: str) -> str:
    record = logging.LogRecord("alertd", logging.INFO, "x", 1, "%s", (text,), None)
    redact.filter(record)
    return record.getMessage()


def test_words_hosts_and_channel_names_stay_readable(tmp_path: Path) -> None:
    redact = Redact(secrets_of(config(tmp_path)))
    for line in ["serving /metrics, /healthz and /alerts on http://127.0.0.1:9464",
                 "resumed 4 alerts from state/alertd-state.db",
                 "channel 'oncall': delivery failed (mailtos://); retrying in 30 s",
                 "channel 'ops-slack': gave up delivering 'x' (slack://) after 9 attempts",
                 "channel 'webhook': delivery failed (https://)",
                 "sent to smtp.example.com for oncall@example.com via localhost:8080/alerts",
                 "source 'element': subscribed to readings; operations normal"]:
        assert masked(redact, line) == line


def test_secret_values_are_masked(tmp_path: Path) -> None:
    redact = Redact(secrets_of(config(tmp_path)))
    line = masked(redact, f"key {KEY} hash {HASH} pw s3cretpassw0rd slack://{SLACK}/#ops "
                          f"hook /services/T111CCCC/B111DDDD/WWWWVVVVUUUU9876 bot {BOT} "
                          f"token alone {BOT.split(':')[1]}")
    for secret in (KEY, HASH, "s3cretpassw0rd", "XXXXYYYYZZZZ1234", "WWWWVVVVUUUU9876",
                   BOT.split(":")[1], "T000AAAA", "B111DDDD"):
        assert secret not in line, secret
    assert line.startswith("key *** hash *** pw *** slack://***/***/***/#ops")
