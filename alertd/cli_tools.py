"""The operator's tools on the command line: ``record``, ``replay``, ``rules``, ``explain``
(and ``run --record``). Argument parsing and one function per command, as in ``cli.py``;
the work is in ``record.py``, ``replay.py``, ``rules_text.py`` and ``explain_text.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from alertd.errors import ConfigError, ResourceError, UsageError

if TYPE_CHECKING:
    from alertd.config import schema as s
    from alertd.model import Notification
    from alertd.record import Recorder
    from alertd.replay import Record, Replay

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


def _config(path: str, strict: bool = True) -> s.Config:
    from alertd.config import load_config

    return load_config(path, strict=strict)  # ConfigError: main reports each problem


def _problems(error: ConfigError, path: str) -> int:
    for problem in error.problems:
        print(problem, file=sys.stderr)
    print(f"{path}: {len(error.problems)} error{'' if len(error.problems) == 1 else 's'}",
          file=sys.stderr)
    return EXIT_INVALID


def parse_when(text: str, what: str) -> float:
    """An ISO 8601 time (``2026-01-01T10:00:00Z``; UTC without an offset) or epoch seconds."""
    from alertd.sources.common import parse_time

    try:
        return float(text)
    except ValueError:
        pass
    found = parse_time(text.strip().replace(" ", "T"))
    if found is None:
        raise UsageError(f"{what} {text!r}: write a time such as 2026-01-01T10:00:00Z")
    return found


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- run --record, record ----------------------------------------------------------------


def open_recorder(args: argparse.Namespace, config: s.Config) -> Recorder | None:
    """The recorder ``--record DIR`` asks for (None without it)."""
    if not getattr(args, "record", None):
        return None
    from alertd.clock import wall_time
    from alertd.logs import secrets_of
    from alertd.record import FILE_SIZE, Recorder, parse_size

    total = parse_size(args.record_max)
    if total is None:
        raise UsageError(f"--record-max {args.record_max!r}: write a size such as 100MB")
    try:
        return Recorder(args.record, wall_time, secrets=secrets_of(config), max_total=total,
                        file_size=max(1024, min(FILE_SIZE, total // 10)))
    except OSError as error:
        raise ResourceError(f"--record {args.record}: cannot write there: "
                            f"{error.strerror or error}") from None


def cmd_record(args: argparse.Namespace) -> int:
    """Connect to the sources and record what they send, without evaluating anything."""
    import trio

    from alertd import app, logs
    from alertd.config.fields import parse_duration

    redact = logs.setup(args.debug, args.log_format)
    seconds = None
    if args.duration is not None:
        seconds = parse_duration(args.duration)
        if not seconds or seconds <= 0:
            raise UsageError(f"--for {args.duration!r}: write a duration such as 45m or 1h")
    try:
        config = _config(args.config)
    except ConfigError as error:
        return _problems(error, args.config)
    redact.update(logs.secrets_of(config))
    args.record = args.folder
    recorder = open_recorder(args, config)
    assert recorder is not None
    try:
        trio.run(app.record, config, recorder, seconds)
    finally:
        recorder.close()
    print(f"recorded {recorder.records} records to {args.folder}")
    return EXIT_OK


# ---- replay ------------------------------------------------------------------------------


def _paced(records: Iterable[Record], speed: float | None) -> Iterator[Record]:
    """The records, at ``speed`` times the pace they arrived at (None: at once)."""
    started: tuple[float, float] | None = None
    for record in records:
        if speed is not None:
            if started is None:
                started = (record.t, time.monotonic())
            wait = (record.t - started[0]) / speed - (time.monotonic() - started[1])
            if wait > 0:
                time.sleep(wait)
        yield record


def note_json(note: Notification) -> dict[str, Any]:
    """A notification as ``alertd replay --json`` prints it (one JSON object per line)."""
    return {"at": iso(note.at), "at_epoch": round(note.at, 3), "rule": note.rule,
            "entity": note.entity, "state": note.state, "repeat": note.repeat,
            "since": iso(note.since), "severity": note.severity, "field": note.field,
            "value": note.value}


def cmd_replay(args: argparse.Namespace) -> int:
    """Recorded frames through the decoders and rules on a simulated clock: a backtest."""
    from alertd.notify.message import compose
    from alertd.replay import Replay, read_records, window
    from alertd.senders.console import print_console

    try:
        config = _config(args.config, strict=False)
    except ConfigError as error:
        return _problems(error, args.config)
    start = parse_when(args.start, "--from") if args.start else None
    end = parse_when(args.end, "--to") if args.end else None
    speed = None if args.fast or not args.speed else args.speed
    if speed is not None and speed <= 0:
        raise UsageError(f"--speed {args.speed}: write a factor above 0, such as 60")
    rules = {rule.name: rule for rule in config.rules}
    bad: list[str] = []
    printed = 0
    replay: Replay | None = None
    count = 0

    def show(upto: int) -> int:
        assert replay is not None
        for note in replay.notes[upto:]:
            if args.json:
                print(json.dumps(note_json(note)), flush=speed is not None)
            else:
                print_console(sys.stdout, *compose(note, rules.get(note.rule)), note.at)
        return len(replay.notes)

    open_before: set[tuple[str, str]] = set()
    first: float | None = None
    for record in _paced(window(read_records(args.folder, bad), start, end, open_before),
                         speed):
        if replay is None:
            first = start if start is not None else record.t
            replay = Replay(config, first, open_sockets=sorted(open_before))
        replay.feed(record)
        count += 1
        printed = show(printed)
    for place in bad[:5]:
        print(f"alertd: skipped a line that is not a record at {place}", file=sys.stderr)
    if replay is None or first is None:
        print(f"alertd: no recorded frames in {args.folder}"
              + (" in that time range" if start or end else ""), file=sys.stderr)
        return EXIT_FAILED
    replay.finish()
    if end is not None:
        replay.advance(end)
    printed = show(printed)
    summary = replay.close_summary()
    if args.json:
        print(json.dumps({"summary": {
            "from": iso(first), "to": iso(replay.now), "records": count,
            "rules": {name: {"fired": x.fired, "firing_seconds": round(x.firing_seconds, 3),
                             "noisiest": _noisiest(x.by_entity)}
                      for name, x in summary.items()}}}))
        return EXIT_OK
    print(summary_text(summary, first, replay.now, count, len(replay.notes)))
    return EXIT_OK


def _noisiest(by_entity: dict[str, int], count: int = 3) -> list[list[Any]]:
    ranked = sorted(by_entity.items(), key=lambda pair: (-pair[1], pair[0]))
    return [[entity, fired] for entity, fired in ranked[:count]]


def summary_text(summary: dict[str, Any], first: float, last: float, records: int,
                 notes: int) -> str:
    from alertd.notify.message import duration_text

    lines = [f"replayed {records} records from {iso(first)} to {iso(last)} "
             f"({duration_text(last - first)}): {notes} notification"
             + ("" if notes == 1 else "s"), ""]
    rows = [("RULE", "FIRED", "FIRING FOR", "NOISIEST ENTITIES")]
    for name, x in summary.items():
        rows.append((name, str(x.fired), duration_text(x.firing_seconds) if x.fired else "-",
                     ", ".join(f"{e} ({n})" for e, n in _noisiest(x.by_entity)) or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
              for row in rows]
    return "\n".join(lines)


# ---- rules -------------------------------------------------------------------------------


def cmd_rules(args: argparse.Namespace) -> int:
    """The rules as loaded, defaults applied."""
    from alertd.rules_text import rule_json, rules_text

    try:
        config = _config(args.config, strict=False)
    except ConfigError as error:
        return _problems(error, args.config)
    if args.json:
        print(json.dumps([rule_json(rule, config) for rule in config.rules], indent=1))
    else:
        print(rules_text(config))
    return EXIT_OK


# ---- explain -----------------------------------------------------------------------------


def cmd_explain(args: argparse.Namespace) -> int:
    """Why each rule reaching ENTITY is or is not alerting: from the running daemon's HTTP
    endpoint, or from a replay of a recording up to --at."""
    from alertd.explain_text import explanation_json, explanation_text

    if "/" not in args.entity:
        raise UsageError(f"{args.entity!r}: an entity is written SOURCE/ID, such as "
                         "fleet/21080")
    try:
        config = _config(args.config, strict=False)
    except ConfigError as error:
        return _problems(error, args.config)
    if args.rule and args.rule not in {rule.name for rule in config.rules}:
        raise UsageError(f"--rule {args.rule}: {args.config} has no such rule")
    if args.replay:
        from alertd.notify.silences import from_config
        from alertd.replay import read_records, run

        at = parse_when(args.at, "--at") if args.at else None
        replay = run(config, read_records(args.replay), end=at)
        if replay is None:
            print(f"alertd: no recorded frames in {args.replay}"
                  + (" before --at" if at else ""), file=sys.stderr)
            return EXIT_FAILED
        now = replay.now
        found = explanation_json(replay.engine.explain(args.entity, now), config,
                                 map(from_config, config.silences), now, args.rule)
    else:
        if args.at:
            raise UsageError("--at needs --replay DIR (a running daemon answers for now)")
        found = _ask_daemon(config, args.entity, args.rule)
        now = datetime.fromisoformat(found["at"].replace("Z", "+00:00")).timestamp()
    if args.json:
        print(json.dumps(found, indent=1, default=str))
    else:
        print(explanation_text(found, now))
    return EXIT_OK


def _ask_daemon(config: s.Config, entity: str, rule: str | None) -> dict[str, Any]:
    """GET /explain from the daemon at the rule file's http: address."""
    import urllib.error
    import urllib.request
    from urllib.parse import urlencode

    if config.http is None:
        raise UsageError("the rule file has no http: address to ask the running daemon; "
                         "use --replay DIR --at TIME, or add http: 127.0.0.1:9464")
    host, port = config.http
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    query = urlencode({"entity": entity, **({"rule": rule} if rule else {})})
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/explain?{query}"
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - our daemon
            found: dict[str, Any] = json.loads(answer.read())
            return found
    except urllib.error.HTTPError as error:
        raise ResourceError(f"the daemon at {host}:{port} answered HTTP {error.code}: "
                            f"{error.read().decode(errors='replace').strip()}") from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise ResourceError(f"no daemon answers at {host}:{port} ({error}); is alertd run "
                            "going with this rule file?") from None


# ---- parsers -----------------------------------------------------------------------------


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    record = commands.add_parser(
        "record", parents=[common], help="record what the sources send, evaluate nothing",
        description="Connect to every source of FILE and append every frame received to "
                    "rotating JSON Lines files in DIR, for DURATION or until SIGINT/SIGTERM. "
                    "Evaluates no rule, sends nothing, writes no state file. Secrets are "
                    "never written. Replay the folder with alertd replay.")
    record.add_argument("-c", "--config", required=True, metavar="FILE", help="the rule file")
    record.add_argument("folder", metavar="DIR", help="the folder of the recordings")
    record.add_argument("--for", dest="duration", metavar="DURATION",
                        help="stop after this long, such as 1h (default: until stopped)")
    record.add_argument("--record-max", default="100MB", metavar="SIZE",
                        help="keep at most this much in DIR (default 100MB)")
    record.set_defaults(handler=cmd_record)

    replay = commands.add_parser(
        "replay", parents=[common], help="replay a recording through the rules (backtest)",
        description="Feed the frames recorded in DIR (alertd run --record, alertd record) "
                    "through the decoders and the rules of FILE on a simulated clock (the "
                    "frames' arrival times). Prints each notification the daemon would have "
                    "made (console format, or --json lines), sends nothing, writes no "
                    "state, then a summary per rule: how often it fired, for how long, the "
                    "noisiest entities. Exit 0, 1 when DIR holds no frames in the range.")
    replay.add_argument("-c", "--config", required=True, metavar="FILE", help="the rule file")
    replay.add_argument("folder", metavar="DIR", help="the folder of the recordings")
    replay.add_argument("--from", dest="start", metavar="TIME",
                        help="start here (ISO 8601, e.g. 2026-01-01T10:00:00Z): an empty "
                             "engine, as a daemon started then")
    replay.add_argument("--to", dest="end", metavar="TIME", help="stop here")
    pace = replay.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=float, metavar="N",
                      help="replay at N times the recorded pace")
    pace.add_argument("--fast", action="store_true",
                      help="as fast as possible (the default)")
    replay.add_argument("--json", action="store_true",
                        help="one JSON object per notification, then one with the summary")
    replay.set_defaults(handler=cmd_replay)

    rules = commands.add_parser(
        "rules", parents=[common], help="list the rules as loaded",
        description="Every rule of FILE as the loader understood it, defaults applied: "
                    "its sources and entities, its condition in one line, for, clear_for, "
                    "repeat, channels, labels, severity, flapping and overrides. Exit 0, 2 "
                    "when FILE is invalid.")
    rules.add_argument("-c", "--config", required=True, metavar="FILE", help="the rule file")
    rules.add_argument("--json", action="store_true",
                       help="a JSON list, one object per rule (durations in seconds)")
    rules.set_defaults(handler=cmd_rules)

    explain = commands.add_parser(
        "explain", parents=[common], help="why an entity is or is not alerting",
        description="For ENTITY (SOURCE/ID): each rule that reaches it, the values it read "
                    "(newest value, nulls, change window), the bound in force, whether the "
                    "condition holds, pending/firing since or why not firing, the next "
                    "timer, the silences and quiet hours that apply. Asks the running "
                    "daemon (GET /explain at the rule file's http: address), or, with "
                    "--replay DIR, a replay of a recording up to --at. Exit 0; 3 when no "
                    "daemon answers.")
    explain.add_argument("-c", "--config", required=True, metavar="FILE", help="the rule file")
    explain.add_argument("entity", metavar="ENTITY", help="SOURCE/ID, such as fleet/21080")
    explain.add_argument("--rule", metavar="NAME", help="only this rule")
    explain.add_argument("--replay", metavar="DIR", help="replay this recording instead")
    explain.add_argument("--at", metavar="TIME",
                         help="with --replay: stop the replay here (ISO 8601; default: its "
                              "end)")
    explain.add_argument("--json", action="store_true", help="the JSON /explain answers")
    explain.set_defaults(handler=cmd_explain)
