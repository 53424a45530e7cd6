"""Rule unit tests (``alertd test``, SPEC section 1.1), in the spirit of promtool's.

A case feeds timed events through the real engine on a simulated clock that starts at the
case's ``start`` and compares the notifications the rules produce with the expected ones.
Nothing is sent. Case files are read with the config loader's located nodes, so a mistake in
a case file is reported as ``FILE:LINE: message`` too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from alertd.config import schema as s
from alertd.config.fields import Reader, parse_duration
from alertd.config.load import read_file
from alertd.config.nodes import Mapping, Node, Scalar
from alertd.engine import Engine, notices
from alertd.engine.alerts import EPS
from alertd.errors import ConfigError, Loc, Problem
from alertd.model import (
    Event,
    Message,
    NoticeKind,
    Notification,
    SourceDown,
    SourceUp,
    StatusChanged,
)

CASE_KEYS = ("name", "start", "events", "until", "expect")
EVENT_KEYS = ("at", "source", "entity", "name", "fields", "status", "frame", "down", "up",
              "msg_time", "srv_time")
EVENT_KINDS = ("fields", "status", "frame", "down", "up")
EXPECT_KEYS = ("at", "rule", "entity", "state")
STATES = tuple(NoticeKind)
MATCH_WINDOW = 1.0  # an expected `at` matches a notification up to 1 s after it


@dataclass(frozen=True, slots=True)
class CaseEvent:
    loc: Loc
    at: float
    source: str
    kind: str
    entity: str = ""
    name: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    status: str = ""
    frame: str = ""
    msg_time: float | None = None
    srv_time: float | None = None


@dataclass(frozen=True, slots=True)
class Expected:
    loc: Loc
    at: float | None
    rule: str
    entity: str
    state: str


@dataclass(frozen=True, slots=True)
class Case:
    loc: Loc
    name: str
    start: float
    events: tuple[CaseEvent, ...]
    until: float
    expect: tuple[Expected, ...]


@dataclass(frozen=True, slots=True)
class Outcome:
    case: Case
    got: tuple[Notification, ...]
    missing: tuple[Expected, ...]
    unexpected: tuple[Notification, ...]

    @property
    def passed(self) -> bool:
        return not self.missing and not self.unexpected


def offset(seconds: float) -> str:
    """30s, 5m, 1h2m3s, 1.5s: how far into the case something happened."""
    sign = "-" if seconds < 0 else ""
    seconds = abs(round(seconds, 3))
    whole = int(seconds)
    if whole != seconds or seconds < 60:
        return f"{sign}{seconds:g}s"
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "",
             f"{secs}s" if secs else ""]
    return sign + "".join(parts)


# ---- reading case files --------------------------------------------------------------------


def _offset(reader: Reader, node: Node, what: str) -> float | None:
    """A duration that may be negative (msg_time of replayed data before the start)."""
    if isinstance(node, Scalar) and isinstance(node.value, str) \
            and node.text.strip().startswith("-"):
        seconds = parse_duration(node.text.strip()[1:])
        if seconds is not None:
            return -seconds
    return reader.duration(node, what)


def _event(reader: Reader, node: Node, what: str, config: s.Config) -> CaseEvent | None:
    m = reader.mapping(node, what, EVENT_KEYS, required=("at", "source"))
    if m is None or "at" not in m.items or "source" not in m.items:
        return None
    items = m.items
    at = reader.duration(items["at"], f"{what}: at")
    source = reader.choice(items["source"], f"{what}: source", config.sources)
    kinds = [k for k in EVENT_KINDS if k in items]
    if len(kinds) != 1:
        reader.error(m.loc, f"{what} needs exactly one of {', '.join(EVENT_KINDS)}")
        return None
    kind = kinds[0]
    entity = reader.string(items["entity"], f"{what}: entity") if "entity" in items else ""
    if kind in ("fields", "status") and not entity:
        if "entity" not in items:
            reader.error(m.loc, f"{what}: a {kind} event needs 'entity'")
        return None
    values: dict[str, Any] = {}
    status = frame = ""
    if kind == "fields":
        fm = reader.mapping(items["fields"], f"{what}: fields")
        if fm is None:
            return None
        values = dict(_flatten(fm))
    elif kind == "status":
        status = reader.choice(items["status"], f"{what}: status", s.STATUSES) or ""
    elif kind == "frame":
        frame = reader.string(items["frame"], f"{what}: frame") or ""
    elif reader.boolean(items[kind], f"{what}: {kind}") is not True:
        reader.error(items[kind].loc, f"{what}: write '{kind}: true'")
        return None
    msg_time = _offset(reader, items["msg_time"], f"{what}: msg_time") \
        if "msg_time" in items else None
    srv_time = _offset(reader, items["srv_time"], f"{what}: srv_time") \
        if "srv_time" in items else None
    name = reader.string(items["name"], f"{what}: name") if "name" in items else None
    if at is None or source is None:
        return None
    return CaseEvent(m.loc, at, source, kind, entity or "", name, values, status, frame,
                     msg_time, srv_time)


def _flatten(node: Mapping, prefix: str = "") -> Iterable[tuple[str, Any]]:
    """Nested fields as the sources deliver them: ``battery: {voltage: 3}`` is
    ``battery.voltage``."""
    for key, value in node.items.items():
        if isinstance(value, Mapping):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", _plain(value)


def _plain(node: Node) -> Any:
    """A field value as a device would send it: YAML scalars as typed, nested as dicts."""
    if isinstance(node, Mapping):
        return {k: _plain(v) for k, v in node.items.items()}
    if isinstance(node, Scalar):
        return node.value if node.quoted is False else node.text
    return [_plain(v) for v in node.items]


def _expected(reader: Reader, node: Node, what: str, config: s.Config) -> Expected | None:
    m = reader.mapping(node, what, EXPECT_KEYS, required=("rule", "entity", "state"))
    if m is None or not all(k in m.items for k in ("rule", "entity", "state")):
        return None
    at = reader.duration(m.items["at"], f"{what}: at") if "at" in m.items else None
    rule = reader.choice(m.items["rule"], f"{what}: rule", [r.name for r in config.rules])
    entity = reader.string(m.items["entity"], f"{what}: entity")
    state = reader.choice(m.items["state"], f"{what}: state", STATES)
    if rule is not None and entity is not None and not _entity_ok(reader, m, what, config,
                                                                  rule, entity):
        return None
    if rule is None or entity is None or state is None or ("at" in m.items and at is None):
        return None
    return Expected(m.loc, at, rule, entity, state)


def _entity_ok(reader: Reader, m: Mapping, what: str, config: s.Config, rule_name: str,
               entity: str) -> bool:
    """An expected entity that no notification can carry would be a silent mismatch: a
    source_down rule's entity is the source's name, every other rule's SOURCE/ID."""
    from alertd.config.fields import suggest

    rule = next(r for r in config.rules if r.name == rule_name)
    loc = m.items["entity"].loc
    sources = list(rule.sources or config.sources)
    if isinstance(rule.condition, s.SourceDown):
        if entity in sources:
            return True
        reader.error(loc, f"{what}: entity '{entity}': rule '{rule_name}' is a source_down "
                          f"rule, its entity is the source's name, one of {', '.join(sources)}"
                          f"{suggest(entity.split('/')[0], sources)}")
        return False
    source, slash, _ = entity.partition("/")
    if not slash:
        reader.error(loc, f"{what}: entity '{entity}' is written SOURCE/ID, as notifications "
                          f"name it (did you mean '{sources[0]}/{entity}'?)")
        return False
    if source not in config.sources:
        reader.error(loc, f"{what}: entity '{entity}' names no source of the rule file"
                          f"{suggest(source, config.sources)}")
        return False
    return True


def load_cases(path: str, config: s.Config) -> list[Case]:
    problems: list[Problem] = []
    reader = Reader(problems)
    root = reader.mapping(read_file(path, {}, problems), "the case file", ("cases",),
                          required=("cases",))
    cases: list[Case] = []
    if root is not None and "cases" in root.items:
        for number, node in enumerate(reader.sequence(root.items["cases"], "cases") or (), 1):
            case = _case(reader, node, number, config)
            if case is not None:
                cases.append(case)
    elif root is None and not problems:
        problems.append(Problem(Loc(path, 1), "the case file is empty: it needs 'cases:'"))
    if problems:
        raise ConfigError(problems)
    return cases


def _case(reader: Reader, node: Node, number: int, config: s.Config) -> Case | None:
    m = reader.mapping(node, f"case #{number}", CASE_KEYS, required=("name", "start", "events"))
    if m is None or not all(k in m.items for k in ("name", "start", "events")):
        return None
    name = reader.string(m.items["name"], f"case #{number}: name")
    what = f"case '{name}'" if name else f"case #{number}"
    start = reader.timestamp(m.items["start"], f"{what}: start")
    events = [_event(reader, n, f"{what}: event #{i}", config)
              for i, n in enumerate(reader.sequence(m.items["events"], f"{what}: events") or (), 1)]
    expect_nodes = reader.sequence(m.items["expect"], f"{what}: expect") \
        if "expect" in m.items else ()
    expect = [_expected(reader, n, f"{what}: expect #{i}", config)
              for i, n in enumerate(expect_nodes or (), 1)]
    until = reader.duration(m.items["until"], f"{what}: until") if "until" in m.items else None
    if name is None or start is None or None in events or None in expect \
            or ("until" in m.items and until is None):
        return None
    ats = [e.at for e in events if e is not None] + [x.at or 0.0 for x in expect if x]
    if until is None:
        until = max(ats, default=0.0) + MATCH_WINDOW
    return Case(m.loc, name, start.timestamp(), tuple(e for e in events if e),
                until, tuple(x for x in expect if x))


# ---- running cases -------------------------------------------------------------------------


class _Decoders:
    """One protocol decoder per source for the case's ``frame:`` events."""

    def __init__(self, config: s.Config) -> None:
        from alertd.sources.element import ElementDecoder
        from alertd.sources.navixy import NavixyDecoder

        self.decoders: dict[str, ElementDecoder | NavixyDecoder] = {
            name: ElementDecoder(name) if isinstance(src, s.ElementSource) else NavixyDecoder(name)
            for name, src in config.sources.items()}

    def decode(self, source: str, frame: str) -> tuple[Event, ...]:
        return tuple(self.decoders[source].decode(frame).events)


def _events(event: CaseEvent, start: float, config: s.Config,
            decoders: _Decoders | None) -> Iterable[Event]:
    if event.kind == "fields":
        source = config.sources[event.source]
        msg_time = start + (event.at if event.msg_time is None else event.msg_time)
        srv_time = start + (event.at if event.srv_time is None else event.srv_time)
        return (Message(event.source, event.entity, msg_time, event.fields, srv_time,
                        event.name, absent_is_null=isinstance(source, s.ElementSource)),)
    if event.kind == "status":
        return (StatusChanged(event.source, event.entity, event.status),)
    if event.kind == "down":
        return (SourceDown(event.source),)
    if event.kind == "up":
        return (SourceUp(event.source),)
    assert decoders is not None
    return decoders.decode(event.source, event.frame)


def run_case(case: Case, config: s.Config) -> Outcome:
    engine = Engine(config.rules, config.sources, case.start)
    decoders = _Decoders(config) if any(e.kind == "frame" for e in case.events) else None
    got: list[Notification] = []

    def run_timers(until: float) -> None:
        while (deadline := engine.next_deadline()) is not None and deadline <= until:
            got.extend(notices(engine.on_timer(max(deadline, case.start))))

    for event in sorted(case.events, key=lambda e: e.at):
        now = case.start + event.at
        run_timers(now)
        for decoded in _events(event, case.start, config, decoders):
            got.extend(notices(engine.receive(decoded, now)))
    run_timers(case.start + case.until)
    return _compare(case, got)


def _compare(case: Case, got: list[Notification]) -> Outcome:
    waiting = list(case.expect)
    unexpected: list[Notification] = []
    for note in got:
        when = note.at - case.start
        match = next((x for x in waiting if x.rule == note.rule and x.entity == note.entity
                      and x.state == note.state
                      and (x.at is None or x.at <= when + EPS <= x.at + MATCH_WINDOW + 2 * EPS)),
                     None)
        if match is None:
            unexpected.append(note)
        else:
            waiting.remove(match)
    return Outcome(case, tuple(got), tuple(waiting), tuple(unexpected))


def report(outcome: Outcome) -> list[str]:
    """``PASS name``, or ``FAIL name`` followed by the difference, one line each."""
    case = outcome.case
    if outcome.passed:
        return [f"PASS {case.name}"]
    lines = [f"FAIL {case.name}"]
    for x in outcome.missing:
        at = f"at {offset(x.at)}" if x.at is not None else "at any time"
        lines.append(f"  missing:    {at:<12} {x.rule} {x.entity} {x.state}  (expected at {x.loc})")
    for note in outcome.unexpected:
        at = f"at {offset(note.at - case.start)}"
        lines.append(f"  unexpected: {at:<12} {note.rule} {note.entity} {note.state}"
                     + (" (repeat)" if note.repeat else ""))
    lines.append("  got:" if outcome.got else "  got: no notifications")
    for note in outcome.got:
        lines.append(f"    at {offset(note.at - case.start):<9} {note.rule} {note.entity} "
                     f"{note.state}" + (" (repeat)" if note.repeat else ""))
    return lines
