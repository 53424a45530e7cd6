"""The ``alertd`` command line: argument parsing and one function per command.

Every error reaches the operator as one clear line on stderr; a traceback only with
``--debug``. Exit statuses follow SPEC section 1.
"""

from __future__ import annotations

import argparse
import functools
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from alertd import __version__
from alertd.errors import AlertdError, ConfigError

if TYPE_CHECKING:
    from alertd.config import schema as s

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _print_problems(error: ConfigError, path: str, summary: str) -> None:
    for problem in error.problems:
        print(problem, file=sys.stderr)
    print(f"{path}: {summary}{_plural(len(error.problems), 'error')}"
          + (")" if "(" in summary else ""), file=sys.stderr)


def cmd_check(args: argparse.Namespace) -> int:
    """Validate the rule file and everything it names; print every problem."""
    from alertd.config import load_config

    try:
        config = load_config(args.config)
    except ConfigError as error:
        _print_problems(error, args.config, "")
        return EXIT_FAILED
    included = len(config.files) - 1
    print(f"{args.config}: OK: {_plural(len(config.sources), 'source')}, "
          f"{_plural(len(config.channels), 'channel')}, {_plural(len(config.rules), 'rule')}"
          + (f", {_plural(len(config.silences), 'silence')}" if config.silences else "")
          + (f" ({_plural(included, 'included file')})" if included else ""))
    return EXIT_OK


def cmd_test(args: argparse.Namespace) -> int:
    """Run rule unit tests: the case files' events through the rules on a simulated clock."""
    from alertd.config import load_config
    from alertd.ruletest import load_cases, report, run_case

    try:
        config = load_config(args.config, strict=False)
    except ConfigError as error:
        _print_problems(error, args.config, "")
        return EXIT_FAILED
    passed = failed = 0
    for path in args.cases:
        try:
            cases = load_cases(path, config)
        except ConfigError as error:
            for problem in error.problems:
                print(problem, file=sys.stderr)
            failed += 1
            continue
        for case in cases:
            outcome = run_case(case, config)
            print("\n".join(report(outcome)))
            passed, failed = passed + outcome.passed, failed + (not outcome.passed)
    print(f"{passed} passed, {failed} failed")
    return EXIT_OK if failed == 0 and passed > 0 else EXIT_FAILED


def cmd_run(args: argparse.Namespace) -> int:
    """Run the daemon until SIGINT/SIGTERM; SIGHUP reloads the file."""
    import trio

    from alertd import app, logs
    from alertd.config import load_config
    from alertd.store import Store

    redact = logs.setup(args.debug, args.log_format)
    try:
        config = load_config(args.config, state=args.state)
    except ConfigError as error:
        _print_problems(error, args.config, "invalid, not started (")
        return EXIT_USAGE
    try:
        store = Store.open(config.state)
    except Exception as error:  # sqlite3.Error or OSError: one line, not a traceback
        print(f"alertd: cannot open the state file {config.state}: {error}", file=sys.stderr)
        return EXIT_FAILED
    try:
        trio.run(lambda: app.run(config, store, config_path=args.config, redact=redact))
    finally:
        store.close()
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the rules of rules.example.yaml against the bundled simulated servers."""
    from alertd import demo

    return demo.main(args.duration, args.notify, sys.stdout, debug=args.debug)


@functools.lru_cache(maxsize=4)
def _lenient_config(path: str) -> s.Config:
    """The rule file as ``alertd alerts`` and ``silence`` read it (secrets may be unset),
    loaded once per command however many questions it answers."""
    from alertd.config import load_config

    return load_config(path, strict=False)


def _state_path(args: argparse.Namespace) -> str:
    """--state, else the config's state:, else the default file in the current folder."""
    if args.state:
        return str(args.state)
    if getattr(args, "config", None):
        return str(_lenient_config(args.config).state)
    from alertd.config.load import DEFAULT_STATE

    return DEFAULT_STATE


def _no_state_file(path: str) -> bool:
    """Say so when the state file does not exist (commands that only read it)."""
    from pathlib import Path

    if Path(path).exists():
        return False
    print(f"alertd: no state file at {path} (has alertd run there yet? see --state)",
          file=sys.stderr)
    return True


def _print_table(rows: Sequence[Sequence[str]]) -> None:
    from alertd.escape import safe

    # cells hold what devices and servers wrote: one line each, no terminal controls
    rows = [[safe(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def cmd_alerts(args: argparse.Namespace) -> int:
    """List current alerts from the state store."""
    from datetime import datetime, timezone

    from alertd.clock import wall_time
    from alertd.notify.message import duration_text
    from alertd.notify.silences import Silence, alert_values, covering, from_config
    from alertd.store import Store

    path = _state_path(args)
    if _no_state_file(path):
        return EXIT_FAILED
    store = Store.open(path)
    try:
        alerts = store.load_alerts()
        now = wall_time()
        silences = [Silence(x.id, x.match, x.starts, x.ends, x.comment)
                    for x in store.silences(now=now)]
    finally:
        store.close()
    if getattr(args, "config", None):  # the file's planned silences count too
        silences += map(from_config, _lenient_config(args.config).silences)
    if not alerts:
        print("no alerts")
        return EXIT_OK
    rows = [("RULE", "ENTITY", "STATE", "SINCE", "SILENCED")]
    for alert in alerts:
        since = datetime.fromtimestamp(alert.since, timezone.utc)
        values = alert_values(alert.rule, alert.entity, alert.data.get("severity", ""),
                              alert.data.get("labels"))
        silence = covering(silences, values, now)
        silenced = silence.id if silence else ""
        rows.append((alert.rule, alert.entity, alert.state,
                      f"{since:%Y-%m-%d %H:%M:%SZ} ({duration_text(now - alert.since)})",
                      silenced))
    _print_table(rows)
    return EXIT_OK


def cmd_notify(args: argparse.Namespace) -> int:
    """Send a test message to one configured channel; say whether each URL took it."""
    import trio

    from alertd.app import print_console
    from alertd.config import load_config
    from alertd.senders.apprise_sender import CONSOLE_URL, AppriseSender, scheme_of

    try:
        config = load_config(args.config)
    except ConfigError as error:
        _print_problems(error, args.config, "")
        return EXIT_FAILED
    channel = config.channels.get(args.channel)
    if channel is None:
        from alertd.config.fields import suggest

        print(f"alertd: no channel '{args.channel}' in {args.config}"
              f"{suggest(args.channel, config.channels)}; channels: "
              + ", ".join(sorted(config.channels)), file=sys.stderr)
        return EXIT_FAILED
    sender = AppriseSender(timeout=args.timeout)
    failures = 0
    for url in channel.urls:
        if url == CONSOLE_URL:
            from alertd.clock import wall_time

            print_console(sys.stdout, args.title, args.body, wall_time())
            ok = True
        else:
            ok = trio.run(sender.send, url, args.title, args.body)
        failures += not ok
        print(f"{args.channel}: {scheme_of(url) or url}:// "
              f"{'delivered' if ok else 'NOT delivered'}")
    return EXIT_OK if failures == 0 else EXIT_FAILED


MATCH_KEYS = ("rule", "source", "entity", "severity")


def _parse_match(items: Sequence[str]) -> dict[str, str]:
    """``--match K=V`` options as a silence's match; raises AlertdError on a bad one."""
    match: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if key.startswith("labels[") and key.endswith("]"):
            key = "labels." + key[7:-1]
        if not sep or not value:
            raise AlertdError(f"--match {item!r}: write KEY=VALUE, such as rule=cold-room-warm")
        if key not in MATCH_KEYS and not (key.startswith("labels.") and len(key) > 7):
            from alertd.config.fields import suggest

            raise AlertdError(f"--match {item!r}: unknown key '{key}'"
                              f"{suggest(key, MATCH_KEYS)}; use rule, source, entity, "
                              "severity or labels.NAME")
        if key == "entity" and "/" not in value:
            raise AlertdError(f"--match {item!r}: an entity is written SOURCE/ID, "
                              "such as fleet/21080")
        match[key] = value
    return match


def _check_names(match: dict[str, str], path: str) -> None:
    """A silence naming a rule or source the file does not have would silence nothing."""
    from alertd.config.fields import suggest

    config = _lenient_config(path)
    source = match.get("source") or match.get("entity", "").split("/", 1)[0]
    rules = {rule.name for rule in config.rules}
    if "rule" in match and match["rule"] not in rules:
        raise AlertdError(f"--match rule={match['rule']}: {path} has no such rule"
                          f"{suggest(match['rule'], rules)}")
    if source and source not in config.sources:
        raise AlertdError(f"--match: {path} has no source '{source}'"
                          f"{suggest(source, config.sources)}")


def _time_text(epoch: float) -> str:
    from datetime import datetime, timezone

    return f"{datetime.fromtimestamp(epoch, timezone.utc):%Y-%m-%d %H:%M:%SZ}"


def cmd_silence(args: argparse.Namespace) -> int:
    """Add, list or expire runtime silences in the state store (a running daemon reads
    them every second)."""

    from alertd.clock import wall_time
    from alertd.config.fields import parse_duration
    from alertd.notify.message import duration_text
    from alertd.store import Store

    path = _state_path(args)
    now = wall_time()
    match: dict[str, str] = {}
    length = 0.0
    if args.action == "add":
        match = _parse_match(args.match)
        if getattr(args, "config", None):
            _check_names(match, args.config)
        length = parse_duration(args.duration) or 0.0
        if length <= 0:
            raise AlertdError(f"--for {args.duration!r}: write a duration such as 45m, 2h "
                              "or 1d")
    elif _no_state_file(path):
        return EXIT_FAILED
    store = Store.open(path)
    try:
        if args.action == "add":
            silence = store.add_silence(match, now, now + length, args.comment or "", now)
            print(f"silence {silence.id} added: "
                  + " ".join(f"{k}={v}" for k, v in match.items())
                  + f" until {_time_text(silence.ends)} ({duration_text(length)})")
            return EXIT_OK
        if args.action == "expire":
            if store.expire_silence(args.id, now):
                print(f"silence {args.id} expired")
                return EXIT_OK
            print(f"alertd: no active silence '{args.id}' (see alertd silence list)",
                  file=sys.stderr)
            return EXIT_FAILED
        silences = store.silences(now=now)
    finally:
        store.close()
    if not silences:
        print("no silences")
        return EXIT_OK
    rows = [("ID", "MATCH", "STARTS", "ENDS", "COMMENT")]
    rows += [(x.id, " ".join(f"{k}={v}" for k, v in x.match.items()), _time_text(x.starts),
              _time_text(x.ends), x.comment) for x in silences]
    _print_table(rows)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    common.add_argument("--log-format", choices=("text", "json"), default="text",
                        help="log line format on stderr (default: text)")
    parser = argparse.ArgumentParser(
        prog="alertd", parents=[common],
        description="Alerting daemon for ELEMENT IoT and Navixy event streams.")
    parser.add_argument("--version", action="version", version=f"alertd {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    check = commands.add_parser(
        "check", parents=[common], help="validate a rule file",
        description="Validate FILE and everything it names (includes, channels' apprise URLs, "
                    "template placeholders, durations). Prints FILE:LINE: message for each "
                    "error. Exit 0 when valid, 1 when not.")
    check.add_argument("-c", "--config", required=True, metavar="FILE", help="the rule file")
    check.set_defaults(handler=cmd_check)

    run = commands.add_parser(
        "run", parents=[common], help="run the daemon",
        description="Connect to the sources of FILE, evaluate its rules on every event and "
                    "send notifications, until SIGINT or SIGTERM. SIGHUP reloads FILE. "
                    "Exit 0 on a clean stop, 2 when FILE is invalid.")
    run.add_argument("-c", "--config", required=True, metavar="FILE", help="the rule file")
    run.add_argument("--state", metavar="PATH", help="the SQLite state file (overrides state:)")
    run.set_defaults(handler=cmd_run)

    demo = commands.add_parser(
        "demo", parents=[common], help="watch the example rules fire on simulated servers",
        description="Start simulated ELEMENT and Navixy servers on 127.0.0.1 and run the "
                    "rules of rules.example.yaml against them, on a fast clock, while a "
                    "scripted scenario makes every rule fire and resolve. Each notification "
                    "prints to the terminal; a summary table ends the run. Works offline, "
                    "needs no account and no config. Exit 0.")
    demo.add_argument("--duration", type=float, default=30.0, metavar="SECONDS",
                      help="real seconds the scenario (about an hour of simulated time) "
                           "takes (default 30, at least 5)")
    demo.add_argument("--notify", metavar="URL",
                      help="also send every notification to this apprise URL "
                           "(e.g. ntfy://alertd-demo or json://localhost:8080)")
    demo.set_defaults(handler=cmd_demo)

    alerts = commands.add_parser(
        "alerts", parents=[common], help="list current alerts",
        description="List current alerts (rule, entity, state, since, silenced) from the "
                    "state store.")
    alerts.add_argument("--state", metavar="PATH", help="the SQLite state file")
    alerts.add_argument("-c", "--config", metavar="FILE",
                        help="take the state file from this rule file's state:")
    alerts.set_defaults(handler=cmd_alerts)

    notify = commands.add_parser(
        "notify", parents=[common], help="send a test message to a channel",
        description="Send a test message to every URL of CHANNEL and say whether each took "
                    "it. Exit 0 when all did, 1 when one did not.")
    notify.add_argument("channel", metavar="CHANNEL", help="a channel of the rule file")
    notify.add_argument("-c", "--config", required=True, metavar="FILE", help="the rule file")
    notify.add_argument("--title", default="alertd test message", help="the title to send")
    notify.add_argument("--body", default="If you can read this, the channel works.",
                        help="the body to send")
    notify.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                        help="give up on a URL after this long (default 30)")
    notify.set_defaults(handler=cmd_notify)

    test = commands.add_parser(
        "test", parents=[common], help="run rule unit tests",
        description="Feed the timed events of each case file through the rules of FILE on a "
                    "simulated clock and compare the notifications with the expected ones. "
                    "Sends nothing. Exit 0 when every case passes, 1 otherwise.")
    test.add_argument("-c", "--config", required=True, metavar="FILE", help="the rule file")
    test.add_argument("cases", nargs="+", metavar="CASES", help="case files (YAML)")
    test.set_defaults(handler=cmd_test)

    silence = commands.add_parser(
        "silence", parents=[common], help="add, list or expire silences",
        description="Runtime silences, kept in the state store. A running daemon honours a "
                    "change within 2 seconds. Silences stop notifications, not evaluation: "
                    "an alert still firing when its silence ends is notified then.")
    actions = silence.add_subparsers(dest="action", metavar="ACTION", required=True)
    store_options = argparse.ArgumentParser(add_help=False)
    store_options.add_argument("--state", metavar="PATH", help="the SQLite state file")
    store_options.add_argument("-c", "--config", metavar="FILE",
                               help="take the state file from this rule file's state:")
    add = actions.add_parser(
        "add", parents=[common, store_options], help="silence matching alerts for a while",
        description="Silence every alert that matches all the --match options, from now "
                    "for DURATION. Keys: rule, source, entity (SOURCE/ID), severity, "
                    "labels.NAME.")
    add.add_argument("--match", action="append", required=True, metavar="KEY=VALUE",
                     help="e.g. rule=cold-room-warm, entity=fleet/21080, labels.site=hamburg")
    add.add_argument("--for", dest="duration", required=True, metavar="DURATION",
                     help="how long, such as 45m, 2h or 1d")
    add.add_argument("--comment", metavar="TEXT", help="why (shown by silence list)")
    listing = actions.add_parser("list", parents=[common, store_options],
                                 help="list silences that have not ended",
                                 description="List the silences that have not ended yet.")
    expire = actions.add_parser("expire", parents=[common, store_options],
                                help="end a silence now",
                                description="End the silence ID now; alerts it held that "
                                            "still fire are notified within 2 seconds.")
    expire.add_argument("id", metavar="ID", help="the silence's id, from silence list")
    for command in (add, listing, expire):
        command.set_defaults(handler=cmd_silence)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except AlertdError as error:
        if args.debug:
            traceback.print_exc()
        print(f"alertd: {error}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_OK
    except Exception as error:  # a bug: one line for the operator, the trace with --debug
        if args.debug:
            traceback.print_exc()
        else:
            print(f"alertd: internal error: {type(error).__name__}: {error} "
                  "(run again with --debug for the traceback)", file=sys.stderr)
        return 70
