"""Hostile rule files (issue 11, items 13 and 14): alias bombs, recursion, deep nesting,
special files and huge files are refused with one FILE:LINE line, fast; no error message
quotes a value taken from the environment, only the ``${VAR}`` written in the file."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from alertd.config import load_config
from alertd.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
HEAD = """\
sources:
  fleet: {type: navixy, hash: h, trackers: [21080]}
  cold: {type: element, api_key: k, subscribe: [readings]}
channels:
  ops: console://
defaults:
  notify: [ops]
rules:
  - {name: a, silent: {after: 5m}}
"""


def process_env(**extra: str) -> dict[str, str]:
    """A clean environment that runs this checkout's alertd (or PYTHONPATH's, if given)."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": os.pathsep.join(os.path.abspath(entry) for entry in os.environ.get(
                "PYTHONPATH", str(ROOT)).split(os.pathsep)), **extra}


def check(path: Path, env: dict[str, str] | None = None) -> tuple[int, str, float]:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "alertd", "check", "-c", str(path)],
                          capture_output=True, text=True, timeout=30, cwd=path.parent,
                          env=process_env(**(env or {})))
    return done.returncode, done.stderr, time.monotonic() - started


LAUGHS = """\
sources:
  fleet: {type: navixy, hash: h, trackers: [1]}
channels: {ops: console://}
x-a: &a [{threshold: {field: t, above: 1}}, {threshold: {field: t, above: 1}}]
""" + "".join(f"x-{b}: &{b} [" + ", ".join([f"{{all: *{a}}}"] * 8) + "]\n"
              for a, b in zip("abcdefg", "bcdefgh")) + """\
rules:
  - {name: boom, notify: [ops], all: *h}
"""


def nested(depth: int) -> str:
    condition = "{threshold: {field: t, above: 1}}"
    for _ in range(depth):
        condition = "{all: [" + condition + "]}"
    return HEAD + f"  - name: deep\n    all: [{condition}]\n"


@pytest.mark.parametrize(("name", "text", "line", "message"), [
    ("billion laughs", LAUGHS, 8, "too many aliases: they expand to more than 100000 values"),
    ("recursive alias", "sources: &s\n  fleet: *s\nrules: &r [*r]\n", 1,
     "an alias refers to the list or mapping that contains it (a recursive alias); "
     "write the values out"),
    ("deep lists", "rules: " + "[" * 5000 + "]" * 5000 + "\n", 1,
     "lists and mappings nested more than 64 deep"),
    ("deep all", nested(20), 11,
     "rule 'deep': all/any nested more than 16 deep; write the condition flatter"),
], ids=["billion laughs", "recursive alias", "deep lists", "deep all"])
def test_bombs_are_refused_fast_with_one_line(tmp_path: Path, name: str, text: str, line: int,
                                              message: str) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    code, err, took = check(path)
    assert (code, err.splitlines()) == (2, [f"{path}:{line}: {message}", f"{path}: 1 error"])
    assert took < 10, f"{name} took {took:.1f} s"


def test_sixteen_levels_of_all_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(nested(15))
    load_config(path, {})


def test_anchors_of_a_normal_file_still_work(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("x-common: &common {threshold: {field: t, above: 1}, severity: critical,"
                    " labels: {site: hh, team: ops}}\n" + HEAD
                    + "".join(f"  - {{name: r{i}, <<: *common}}\n" for i in range(300)))
    assert len(load_config(path, {}).rules) == 301


@pytest.mark.parametrize("special", ["fifo", "/dev/zero"])
def test_includes_read_only_regular_files(tmp_path: Path, special: str) -> None:
    if special == "fifo":
        os.mkfifo(tmp_path / "fifo.yaml")
        target, kind = str(tmp_path / "fifo.yaml"), "a FIFO"
    else:
        target, kind = special, "a device"
    path = tmp_path / "rules.yaml"
    path.write_text(HEAD + f"include: ['{target}']\n")
    code, err, took = check(path)
    assert (code, err.splitlines()) == (2, [
        f"{target}:1: not a regular file ({kind}); alertd reads only regular files",
        f"{path}: 1 error"])
    assert took < 10


def test_a_huge_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(HEAD + "# padding\n" * 120_000)
    code, err, _ = check(path)
    assert (code, err.splitlines()) == (2, [
        f"{path}:1: the file is larger than 1024 KiB, the most alertd reads",
        f"{path}: 1 error"])


SECRET = "SMTPpa55w0rd5ecret"


@pytest.mark.parametrize(("field", "text"), [
    ("http", HEAD + "http: ${SMTP_PASSWORD}\n"),
    ("subscribe", HEAD.replace("[readings]", "['${SMTP_PASSWORD}']")),
    ("timezone", HEAD.replace("ops: console://",
                              "ops: {urls: [console://], timezone: '${SMTP_PASSWORD}'}")),
    ("mute", HEAD.replace("ops: console://",
                          "ops: {urls: [console://], mute: ['${SMTP_PASSWORD}']}")),
    ("duplicate rule name", HEAD + "  - {name: '${SMTP_PASSWORD}', silent: {after: 5m}}\n"
                            "  - {name: '${SMTP_PASSWORD}', silent: {after: 5m}}\n"),
    ("notify names unknown channel", HEAD + "  - {name: b, silent: {after: 5m}, "
                                     "notify: ['${SMTP_PASSWORD}']}\n"),
    ("unknown source", HEAD + "  - {name: b, silent: {after: 5m}, source: '${SMTP_PASSWORD}'}\n"),
    ("preload", HEAD.replace("subscribe: [readings]",
                             "subscribe: [readings], preload: ['${SMTP_PASSWORD}']")),
    ("match.rule", HEAD + "silences:\n  - {match: {rule: '${SMTP_PASSWORD}'}, "
                   "ends: 2026-01-02T00:00:00Z}\n"),
    ("status.in", HEAD + "  - {name: b, status: {in: ['${SMTP_PASSWORD}x']}}\n"),
    ("include", HEAD + "include: ['${SMTP_PASSWORD}']\n"),
    ("title", HEAD + "  - {name: b, silent: {after: 5m}, title: '{${SMTP_PASSWORD}}'}\n"),
], ids=lambda value: value if "\n" not in value else "")
def test_errors_quote_the_variable_never_its_value(tmp_path: Path, field: str,
                                                   text: str) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent(text))
    with pytest.raises(ConfigError) as caught:
        load_config(path, {"SMTP_PASSWORD": SECRET})
    messages = [p.message for p in caught.value.problems]
    assert any(field in m and "${SMTP_PASSWORD}" in m for m in messages), messages
    assert not any(SECRET in m for m in messages), messages


def test_check_prints_no_secret(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(HEAD + "http: ${SMTP_PASSWORD}\n")
    code, err, _ = check(path, {"SMTP_PASSWORD": SECRET})
    assert (code, err.splitlines()) == (2, [
        f"{path}:10: http must be HOST:PORT such as 127.0.0.1:9464, not '${{SMTP_PASSWORD}}'",
        f"{path}: 1 error"])


async def test_sighup_with_an_include_of_a_fifo_does_not_freeze_the_daemon(
        tmp_path: Path) -> None:
    import signal

    import trio

    from alertd.simulator.element import FakeElement
    from tests.test_http import get

    key = "hup-test-k3y-s3cr3t"
    element = FakeElement(api_keys={key})
    os.mkfifo(tmp_path / "fifo.yaml")
    config = tmp_path / "rules.yaml"
    text = textwrap.dedent(f"""\
        http: 127.0.0.1:0
        sources:
          cold: {{type: element, url: "URL", api_key: "{key}",
                 subscribe: [readings]}}
        channels: {{out: console://}}
        rules:
          - {{name: warm, source: cold, threshold: {{field: t, above: 8}}, notify: [out],
              group_wait: 0s}}
        """)
    async with trio.open_nursery() as nursery:
        await nursery.start(element.serve)
        config.write_text(text.replace("URL", element.url))
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "alertd", "run", "-c", str(config), "--state",
             str(tmp_path / "state.db")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            cwd=tmp_path, env=process_env())
        assert process.stdout is not None and process.stderr is not None
        err = b""
        try:
            with trio.fail_after(30):
                while b"serving /metrics" not in err:
                    err += await process.stderr.receive_some() or b""
                while not element.connections:
                    await trio.sleep(0.05)
                port = int(err.split(b"http://127.0.0.1:", 1)[1].split()[0])
                config.write_text(config.read_text() + "include: [fifo.yaml]\n")
                process.send_signal(signal.SIGHUP)
                while b"reload: the new file is invalid" not in err:
                    err += await process.stderr.receive_some() or b""
            with trio.fail_after(5):  # the daemon still answers, and still evaluates
                status, _ = await get(port, "/healthz")
                element.add_reading("room1", {"t": 9})
                out = b""
                while b"[FIRING] warm: room1" not in out:
                    out += await process.stdout.receive_some()
        finally:
            process.send_signal(signal.SIGTERM)
            with trio.fail_after(15):
                await process.wait()
                while chunk := await process.stderr.receive_some():
                    err += chunk
            nursery.cancel_scope.cancel()
    assert status == 200
    assert f"reload: {tmp_path / 'fifo.yaml'}:1: not a regular file (a FIFO)".encode() in err
