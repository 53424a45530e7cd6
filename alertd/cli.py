"""The ``alertd`` command line: argument parsing and one function per command.

Every error reaches the operator as one clear line on stderr; a traceback only with
``--debug``. Exit statuses are one scheme for every command (docs/operations.md):

    0   done (the file is valid, every case passed, the message was delivered)
    1   the answer is no: a rule test case failed, a message was not delivered, no such
        silence
    2   invalid input: the rule file or a case file is invalid, a command-line argument is
        wrong (argparse's own usage errors are 2 too)
    3   the environment stops alertd: the HTTP port is in use, the state file cannot be
        used (missing folder, unwritable, not a database, in use by another daemon), or it
        failed under a running daemon (corrupt, replaced, failing for 5 minutes)
    70  a bug in alertd (EX_SOFTWARE): one line, the traceback with ``--debug``
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from alertd import __version__
from alertd.errors import AlertdError, ConfigError, ResourceError, UsageError
from alertd.escape import plural

if TYPE_CHECKING:
    from alertd.config import schema as s
    from alertd.notify.silences import Silence

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_RESOURCE, EXIT_BUG = 0, 1, 2, 3, 70
EXIT_INVALID = EXIT_USAGE  # an invalid rule or case file: the same status for every command
EXIT_STORE = EXIT_RESOURCE  # the state file failed under a running daemon: the environment


def _print_problems(error: ConfigError, path: str, summary: str) -> None:
    for problem in error.problems:
        print(problem, file=sys.stderr)
    print(f"{path}: {summary}{plural(len(error.problems), 'error')}"
          + (")" if "(" in summary else ""), file=sys.stderr)


def cmd_check(args: argparse.Namespace) -> int:
    """Validate the rule file and everything it names; print every problem."""
    from alertd.config import load_config

    try:
        config = load_config(args.config)
    except ConfigError as error:
        _print_problems(error, args.config, "")
        return EXIT_INVALID
    included = len(config.files) - 1
    print(f"{args.config}: OK: {plural(len(config.sources), 'source')}, "
          f"{plural(len(config.channels), 'channel')}, {plural(len(config.rules), 'rule')}"
          + (f", {plural(len(config.silences), 'silence')}" if config.silences else "")
          + (f" ({plural(included, 'included file')})" if included else ""))
    return EXIT_OK


def cmd_test(args: argparse.Namespace) -> int:
    """Run rule unit tests: the case files' events through the rules on a simulated clock."""
    from alertd.config import load_config
    from alertd.ruletest import load_cases, report, run_case

    try:
        config = load_config(args.config, strict=False)
    except ConfigError as error:
        _print_problems(error, args.config, "")
        return EXIT_INVALID
    passed = failed = 0
    invalid = False
    for path in args.cases:
        try:
            cases = load_cases(path, config)
        except ConfigError as error:
            for problem in error.problems:
                print(problem, file=sys.stderr)
            failed, invalid = failed + 1, True
            continue
        for case in cases:
            outcome = run_case(case, config)
            print("\n".join(report(outcome)))
            passed, failed = passed + outcome.passed, failed + (not outcome.passed)
    print(f"{passed} passed, {failed} failed")
    if invalid:
        return EXIT_INVALID
    return EXIT_OK if failed == 0 and passed > 0 else EXIT_FAILED


def cmd_run(args: argparse.Namespace) -> int:
    """Run the daemon until SIGINT/SIGTERM; SIGHUP reloads the file."""
    import trio

    from alertd import app, logs
    from alertd.config import load_config
    from alertd.store import Store, StoreError

    redact = logs.setup(args.debug, args.log_format)
    try:
        config = load_config(args.config, state=args.state, shard=args.shard)
    except ConfigError as error:
        _print_problems(error, args.config, "invalid, not started (")
        return EXIT_INVALID
    from alertd.cli_tools import open_recorder

    recorder = open_recorder(args, config)  # --record DIR, or None
    try:
        store = Store.open(":memory:") if args.dry_run else Store.open_daemon(config.state)
    except StoreError as error:  # missing folder, unwritable, not a database, in use
        print(f"alertd: {error}", file=sys.stderr)
        return EXIT_RESOURCE
    try:
        trio.run(lambda: app.run(config, store, config_path=args.config, redact=redact,
                                 recorder=recorder, dry_run=args.dry_run))
    except BaseExceptionGroup as group:
        failure = _store_failure(group, str(config.state))
        if failure is None:
            raise
        if args.debug:
            import traceback

            traceback.print_exc()
        print(f"alertd: {failure}", file=sys.stderr)
        return EXIT_STORE
    finally:
        store.close()
        if recorder is not None:
            recorder.close()
    return EXIT_OK


def _shard_argument(text: str) -> object:
    from alertd import shard

    try:
        return shard.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _store_failure(group: BaseExceptionGroup[BaseException], path: str) -> str | None:
    """The one line for a daemon stopped by its state file (corrupt, replaced, failing too
    long, or an SQLite error where no write was expected to fail); None for anything else."""
    import sqlite3

    from alertd.store import StoreError, cause

    found: BaseException | None = group.subgroup(
        lambda error: isinstance(error, (StoreError, sqlite3.Error)))
    while isinstance(found, BaseExceptionGroup):
        found = found.exceptions[0]
    if isinstance(found, StoreError):
        return str(found)
    if isinstance(found, sqlite3.Error):
        return f"state file {path}: {cause(found)}; stopping"
    return None


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


def daemon_running(state: str) -> bool | None:
    """Whether an ``alertd run`` holds the state file: a non-blocking ``flock`` on
    ``<state>.lock``, which a running daemon keeps locked. None (unknown) when there is no
    lock file, as with daemons that keep none."""
    import fcntl
    import os

    try:
        descriptor = os.open(f"{state}.lock", os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return None
    finally:
        os.close(descriptor)  # closing releases a lock we took
    return False


def _rule_file_silences(path: str) -> list[Silence] | None:
    """The planned silences of the rule file; None, with a warning, when it is invalid
    (during an edit the state file still answers)."""
    from alertd.notify.silences import from_config

    try:
        return list(map(from_config, _lenient_config(path).silences))
    except ConfigError as error:
        print(f"alertd: warning: {path} is invalid ({plural(len(error.problems), 'error')}, "
              "see alertd check); listing the state file without its planned silences",
              file=sys.stderr)
        return None


def _state_of_invalid_file(path: str) -> str:
    """The ``state:`` of a rule file that does not load, read from its top level alone."""
    from pathlib import Path

    from alertd.config.load import DEFAULT_STATE, read_file
    from alertd.config.nodes import Mapping, Scalar

    root = read_file(path, {}, [], strict=False)
    node = root.items.get("state") if isinstance(root, Mapping) else None
    written = node.text if isinstance(node, Scalar) and node.text.strip() else DEFAULT_STATE
    return str(Path(path).parent / written)


def cmd_alerts(args: argparse.Namespace) -> int:
    """List the pending and firing alerts (``--all``: resolved ones too) from the state
    store, and whether a daemon is running on it."""
    from datetime import datetime, timezone

    from alertd.clock import wall_time
    from alertd.model import LISTED
    from alertd.notify.message import duration_text
    from alertd.notify.silences import Silence, alert_values, covering
    from alertd.store import Store

    planned = _rule_file_silences(args.config) if getattr(args, "config", None) else []
    if planned is None:
        path = args.state or _state_of_invalid_file(args.config)
        planned = []
    else:
        path = _state_path(args)
    if _no_state_file(path):
        return EXIT_RESOURCE
    store = Store.open(path)
    try:
        alerts = [a for a in store.load_alerts() if args.all or a.state in LISTED]
        now = wall_time()
        silences = [Silence(x.id, x.match, x.starts, x.ends, x.comment)
                    for x in store.silences(now=now)]
    finally:
        store.close()
    silences += planned
    running = daemon_running(path)
    daemon = {True: "running", False: "stopped", None: "unknown"}[running]
    found = []
    for alert in alerts:
        severity = str(alert.data.get("severity", ""))
        labels = dict(alert.data.get("labels") or {})
        silence = covering(silences, alert_values(alert.rule, alert.entity, severity, labels),
                           now)
        found.append((alert, severity, labels, silence.id if silence else None))
    if args.json:  # the schema of the daemon's /alerts too (alerts_schema.py)
        from alertd.alerts_schema import alert_entry, alerts_document

        print(alerts_document(daemon, (
            alert_entry(a.rule, a.entity, a.state, a.since, silenced, severity, labels)
            for a, severity, labels, silenced in found)), end="")
        return EXIT_OK
    if not found:
        print("no alerts" if args.all else "no pending or firing alerts")
    else:
        rows = [("RULE", "ENTITY", "STATE", "SINCE", "SILENCED")]
        for alert, _severity, _labels, silenced in found:
            since = datetime.fromtimestamp(alert.since, timezone.utc)
            rows.append((alert.rule, alert.entity, alert.state,
                         f"{since:%Y-%m-%d %H:%M:%SZ} ({duration_text(now - alert.since)})",
                         silenced or ""))
        _print_table(rows)
    print({"running": f"daemon: running on {path}", "stopped": f"daemon: not running on {path}",
           "unknown": "daemon: unknown (no lock file next to the state file)"}[daemon])
    return EXIT_OK


def cmd_notify(args: argparse.Namespace) -> int:
    """Send a test message to one configured channel; say whether each URL took it."""
    import trio

    from alertd.config import load_config
    from alertd.config.schema import ALERTMANAGER_SCHEMES
    from alertd.senders.apprise_sender import CONSOLE_URL, scheme_of
    from alertd.senders.console import print_console
    from alertd.senders.outcome import DeliveryOutcome
    from alertd.senders.pool import ProcessSender

    try:
        config = load_config(args.config)
    except ConfigError as error:
        _print_problems(error, args.config, "")
        return EXIT_INVALID
    channel = config.channels.get(args.channel)
    if channel is None:
        from alertd.config.fields import suggest

        print(f"alertd: no channel '{args.channel}' in {args.config}"
              f"{suggest(args.channel, config.channels)}; channels: "
              + ", ".join(sorted(config.channels)), file=sys.stderr)
        return EXIT_USAGE

    async def send_all() -> int:
        sender = ProcessSender(timeout=args.timeout, keep=1)
        failures = 0
        try:
            for url in channel.urls:
                if url == CONSOLE_URL:
                    from alertd.clock import wall_time

                    print_console(sys.stdout, args.title, args.body, wall_time())
                    outcome = DeliveryOutcome.ok()
                elif url.startswith(ALERTMANAGER_SCHEMES):  # a test alert, not words
                    from alertd.clock import wall_time
                    from alertd.notify.alertmanager import test_payload

                    outcome = await sender.send(url, args.title,
                                                test_payload(args.title, args.body, wall_time()))
                else:
                    outcome = await sender.send(url, args.title, args.body)
                failures += not outcome.delivered
                # the reason comes masked: apprise's privacy rendering hides the URL's secrets
                said = "delivered" if outcome.delivered else "NOT delivered" + (
                    f": {outcome.reason}" if outcome.reason else "")
                print(f"{args.channel}: {scheme_of(url) or url}:// {said}", flush=True)
        finally:
            await sender.aclose()
        return failures

    failures = trio.run(send_all)
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
            raise UsageError(f"--match {item!r}: write KEY=VALUE, such as rule=cold-room-warm")
        if key not in MATCH_KEYS and not (key.startswith("labels.") and len(key) > 7):
            from alertd.config.fields import suggest

            raise UsageError(f"--match {item!r}: unknown key '{key}'"
                             f"{suggest(key, MATCH_KEYS)}; use rule, source, entity, "
                             "severity or labels.NAME")
        if key == "entity" and "/" not in value:
            raise UsageError(f"--match {item!r}: an entity is written SOURCE/ID, "
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
        raise UsageError(f"--match rule={match['rule']}: {path} has no such rule"
                         f"{suggest(match['rule'], rules)}")
    if source and source not in config.sources:
        raise UsageError(f"--match: {path} has no source '{source}'"
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
            raise UsageError(f"--for {args.duration!r}: write a duration such as 45m, 2h "
                             "or 1d")
    elif _no_state_file(path):
        return EXIT_RESOURCE
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


def _global_options(parser: argparse.ArgumentParser, default: object) -> None:
    """--debug and --log-format, accepted before the command and after it: the command's
    copies default to SUPPRESS so that they never undo what was given before it."""
    parser.add_argument("--debug", action="store_true", default=default,
                        help="show tracebacks and debug logs")
    parser.add_argument("--log-format", choices=("text", "json"),
                        default="text" if default is False else default,
                        help="log line format on stderr (default: text)")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, argparse.SUPPRESS)
    parser = argparse.ArgumentParser(
        prog="alertd", description="Alerting daemon for ELEMENT IoT and Navixy event streams.",
        epilog="Exit status: 0 done, 1 the answer is no (a case failed, a message not "
               "delivered), 2 invalid rule file, case file or arguments, 3 the environment "
               "stops alertd (port in use, state file unusable), 70 a bug.")
    _global_options(parser, False)
    parser.add_argument("--version", action="version", version=f"alertd {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    check = commands.add_parser(
        "check", parents=[common], help="validate a rule file",
        description="Validate FILE and everything it names (includes, channels' apprise URLs, "
                    "template placeholders, durations). Prints FILE:LINE: message for each "
                    "error. Exit 0 when valid, 2 when not.")
    check.add_argument("-c", "--config", required=True, metavar="FILE", help="the rule file")
    check.set_defaults(handler=cmd_check)

    run = commands.add_parser(
        "run", parents=[common], help="run the daemon",
        description="Connect to the sources of FILE, evaluate its rules on every event and "
                    "send notifications, until SIGINT or SIGTERM. SIGHUP reloads FILE. "
                    "Exit 0 on a clean stop, 2 when FILE is invalid, 3 when the state file "
                    "cannot be used (another daemon has it, unwritable, not a database) or "
                    "fails while running, or the HTTP port is in use.")
    run.add_argument("-c", "--config", required=True, metavar="FILE", help="the rule file")
    run.add_argument("--state", metavar="PATH", help="the SQLite state file (overrides state:)")
    run.add_argument("--record", metavar="DIR",
                     help="also record every frame received to rotating JSON Lines files in "
                          "DIR (see alertd replay)")
    run.add_argument("--record-max", default="100MB", metavar="SIZE",
                     help="keep at most this much of DIR's recordings, in files of a tenth "
                          "of it up to 10MB; the oldest are removed (default 100MB)")
    run.add_argument("--dry-run", action="store_true",
                     help="print every notification instead of sending it, and write no "
                          "state (an in-memory store: alerts start empty)")
    run.add_argument("--shard", metavar="I/N", type=_shard_argument,
                     help="run shard I of N (from 0): only the entities whose hash falls to "
                          "it (overrides shard:; see docs/scaling.md)")
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
        description="List the pending and firing alerts (rule, entity, state, since, "
                    "silenced) from the state store, and whether a daemon is running on it. "
                    "When the rule file is invalid (during an edit), the state file alone is "
                    "read, with a warning.")
    alerts.add_argument("--state", metavar="PATH", help="the SQLite state file")
    alerts.add_argument("-c", "--config", metavar="FILE",
                        help="take the state file from this rule file's state:")
    alerts.add_argument("--all", action="store_true",
                        help="list resolved alerts too")
    alerts.add_argument("--json", action="store_true",
                        help='print {"daemon": running|stopped|unknown, "alerts": [{rule, '
                             'entity, state, since (ISO 8601), silenced (silence id or null), '
                             'severity, labels}]}')
    alerts.set_defaults(handler=cmd_alerts)

    notify = commands.add_parser(
        "notify", parents=[common], help="send a test message to a channel",
        description="Send a test message to every URL of CHANNEL and say whether each took "
                    "it. Exit 0 when all did, 1 when one did not, 2 when FILE is invalid or "
                    "has no such channel.")
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
                    "Sends nothing. Exit 0 when every case passes, 1 when one fails, 2 when a "
                    "file is invalid.")
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
    from alertd.cli_tools import add_commands

    add_commands(commands, common)  # record, replay, rules, explain
    return parser


def exit_status(error: AlertdError) -> int:
    """The exit status of an error the operator can fix (the scheme in the module's
    docstring)."""
    if isinstance(error, (ConfigError, UsageError)):
        return EXIT_INVALID
    if isinstance(error, ResourceError):
        return EXIT_RESOURCE
    return EXIT_FAILED


def leaves(error: BaseException) -> list[BaseException]:
    """The exceptions an ExceptionGroup (trio's nurseries raise them) holds, flattened."""
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in leaves(inner)]
    return [error]


def report(error: BaseException, debug: bool) -> int:
    """One line per cause on stderr (the traceback first with --debug); the exit status.
    An ExceptionGroup is never shown as such: its causes are."""
    causes = leaves(error)
    if all(isinstance(cause, KeyboardInterrupt) for cause in causes):
        return EXIT_OK
    if debug:
        import traceback  # (with logging, ~8 ms of every command at the top)

        traceback.print_exception(error)
    causes = [cause for cause in causes if not isinstance(cause, KeyboardInterrupt)]
    bugs = [cause for cause in causes if not isinstance(cause, AlertdError)]
    if bugs:  # a bug: one line for the operator, the trace with --debug
        bug = bugs[0]
        print(f"alertd: internal error: {type(bug).__name__}: {bug}"
              + ("" if debug else " (run again with --debug for the traceback)"),
              file=sys.stderr)
        return EXIT_BUG
    known = [cause for cause in causes if isinstance(cause, AlertdError)]
    for line in dict.fromkeys(str(cause) for cause in known):
        print(f"alertd: {line}", file=sys.stderr)
    return max(exit_status(cause) for cause in known)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except (Exception, KeyboardInterrupt, BaseExceptionGroup) as error:
        return report(error, args.debug)
