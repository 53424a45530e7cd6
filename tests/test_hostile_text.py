"""What devices and servers write reaches logs, tables and messages escaped and bounded
(issue 11, item 9): a newline cannot forge a log line or a ``[RESOLVED]`` line inside a
FIRING title, ESC never reaches a terminal, a 1 MB device name does not make a 2 MB message.
"""

from __future__ import annotations

import io
import json
import logging

import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import trio

from alertd.escape import safe
from alertd.logs import Escape, JsonFormatter, Redact
from alertd.model import Notification
from alertd.notify.message import compose, compose_group
from alertd.simulator.element import FakeElement
from tests.test_hostile_config import process_env

KEY = "text-test-k3y-s3cr3t"
FORGED_ID = "r1\x1b[31m\n2026-01-01T00:00:00 ERROR   alertd: forged\u2028x"
HUGE_NAME = "\n[RESOLVED] warm: all fine\x1b[2J\x1b[31m" + "A" * 1_000_000
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")


async def test_a_hostile_device_id_and_name_stay_one_line_bounded_and_inert(
        tmp_path: Path) -> None:
    element = FakeElement(api_keys={KEY}, device_names={FORGED_ID: HUGE_NAME})
    config = tmp_path / "rules.yaml"
    async with trio.open_nursery() as nursery:
        await nursery.start(element.serve)
        config.write_text(textwrap.dedent(f"""\
            sources:
              cold: {{type: element, url: "{element.url}", api_key: "{KEY}",
                     subscribe: [readings], preload: [device]}}
            channels: {{out: console://}}
            rules:
              - {{name: warm, source: cold, threshold: {{field: t, above: 8}}, notify: [out],
                 group_wait: 0s}}
            """))
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "alertd", "run", "-c", str(config), "--state",
             str(tmp_path / "state.db")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            cwd=tmp_path, env=process_env())
        assert process.stdout is not None and process.stderr is not None
        out = err = b""
        try:
            with trio.fail_after(30):
                while not element.connections:
                    await trio.sleep(0.05)
                element.add_reading(FORGED_ID, {"t": "9\n[RESOLVED] x\x1b[0m"})
                element.add_reading(FORGED_ID, {"t": 10})
                while out.count(b"[FIRING] warm") < 1 or b"since:" not in out:
                    out += await process.stdout.receive_some()
        finally:
            process.send_signal(signal.SIGTERM)
            with trio.fail_after(15):
                await process.wait()
                while chunk := await process.stderr.receive_some():
                    err += chunk
                while chunk := await process.stdout.receive_some():
                    out += chunk
            nursery.cancel_scope.cancel()
    text, log = out.decode(), err.decode()
    assert "\x1b" not in text and "\x1b" not in log
    assert "\u2028" not in text and "\u2028" not in log
    titles = [line for line in text.splitlines() if STAMP.match(line)]
    assert len(titles) == 1, text[:2000]
    assert " [FIRING] warm: \\n[RESOLVED] warm: all fine\\x1b[2J\\x1b[31mAAA" in titles[0]
    assert all(line.startswith("    ") or not line for line in text.splitlines()
               if not STAMP.match(line)), text[:2000]  # every body line is indented
    assert len(titles[0]) < 300 and len(text) < 5000
    assert all(STAMP.match(line) for line in log.splitlines()), log[:3000]
    assert "warm cold/r1\\x1b[31m\\n2026-01-01T00:00:00 ERROR   alertd: forged\\u2028x " \
           "firing" in log
    assert max(map(len, log.splitlines())) < 2100


def note(**changes: object) -> Notification:
    fields: dict[str, object] = dict(rule="warm", entity="cold/r1", state="firing", at=90.0,
                                     since=0.0, severity="warning", source="cold",
                                     entity_name=HUGE_NAME, field="t", value="x" * 10_000)
    fields.update(changes)
    return Notification(**fields)  # type: ignore[arg-type]


def test_titles_are_one_line_and_messages_bounded() -> None:
    from alertd.config import schema as s
    from alertd.errors import Loc

    condition = s.Threshold(Loc("f", 1), "t", above=8)  # type: ignore[arg-type]
    rule = s.Rule(Loc("f", 1), "warm", condition,
                  notify=("out",), title="{entity_name}\n{value}",
                  body="name: {entity_name}\nvalue: {value}\nlabel: {labels[site]}")
    for title, body in (compose(note(), None), compose(note(labels={"site": "a\nb"}), rule),
                        compose_group([note(), note(entity="cold/r2")], {"warm": rule})):
        assert "\n" not in title and "\x1b" not in title and len(title) <= 250
        assert "\x1b" not in body and len(body) <= 4000
        assert "[RESOLVED]" not in title.replace("\\n[RESOLVED]", "")
        assert not any(line.startswith("[RESOLVED]") for line in body.splitlines())
    _, body = compose(note(labels={"site": "a\nb"}), rule)
    assert body.splitlines() == [f"name: {safe(HUGE_NAME)}", f"value: {'x' * 199}…",
                                 "label: a\\nb"]


def test_json_and_text_log_lines_are_escaped_and_bounded() -> None:
    for formatter in (JsonFormatter(), logging.Formatter("%(message)s")):
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(formatter)
        redact = Redact([KEY])
        handler.addFilter(Escape(mask=redact))
        handler.addFilter(redact)
        logger = logging.getLogger("alertd.test.escape")
        logger.handlers[:], logger.propagate = [handler], False
        logger.warning("device %s sent %s", FORGED_ID, HUGE_NAME)
        logger.warning("key %s in " + "\x1b[31m" * 3000, KEY)
        logger.warning("url %s; name %s", "x" * 190 + KEY, HUGE_NAME)
        lines = stream.getvalue().splitlines()
        assert len(lines) == 3
        messages = [json.loads(line)["message"] for line in lines] \
            if isinstance(formatter, JsonFormatter) else lines
        assert all(len(message) < 2100 for message in messages)
        assert "\x1b" not in stream.getvalue() and "\u2028" not in stream.getvalue()
        assert KEY not in stream.getvalue() and "key *** in \\x1b[31m" in messages[1]
        # a secret is masked before its value is cut (a cut would leave half of it)
        assert messages[2] == f"url {'x' * 190}***; name {safe(HUGE_NAME)}"
        assert len(messages[0]) < 500  # each value cut to 200, with secrets configured too
        if isinstance(formatter, JsonFormatter):
            assert messages[0].startswith("device r1\\x1b[31m\\n2026")


def test_alerts_table_escapes_cells(tmp_path: Path) -> None:
    from alertd.store import Store, StoredAlert

    store = Store.open(tmp_path / "state.db")
    try:
        store.commit([StoredAlert("warm", "cold/" + FORGED_ID, "firing", 0.0,
                                  {"since": 0.0})], [], [], 0.0)
    finally:
        store.close()
    done = subprocess.run([sys.executable, "-m", "alertd", "alerts", "--state",
                           str(tmp_path / "state.db")], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path, env=process_env())
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout and "\u2028" not in done.stdout
    table = [line for line in done.stdout.splitlines() if not line.startswith("daemon:")]
    assert len(table) == 2, done.stdout  # the header and one row: no forged line
    assert "cold/r1\\x1b[31m\\n2026-01-01T00:00:00 ERROR   alertd: forged\\u2028x" \
        in done.stdout

