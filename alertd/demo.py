"""``alertd demo``: the daemon against the bundled fakes, on a fast clock, with a story.

It starts the fake ELEMENT and Navixy servers (``alertd/simulator/``) on 127.0.0.1, runs
the rules of ``rules.example.yaml`` (shipped as ``simulator/demo_rules.yaml``) against
them with ``app.run``, and plays ``simulator/scenario.TIMELINE``: every rule fires and
resolves. Notifications go to one ``console://`` channel (the terminal) and, with
``--notify URL``, to that apprise URL as well.

Time: the whole run is under trio's ``MockClock(rate=R)``, so the daemon (whose clock is
trio's, ``clock.py``), the fakes' timers and the scenario all see simulated time passing R
times faster than real time; R is chosen so that the scenario's ``LENGTH`` lasts
``duration`` real seconds. The fakes stamp messages with the daemon's own clock.

Nothing is left behind: the state file lives in a temporary folder; the summary table
(rule, kind, entity, fired, resolved) is read from its history before it goes.
"""

from __future__ import annotations

import importlib.resources
import logging
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import TextIO

import trio
import trio.testing

from alertd import app
from alertd.clock import Clock
from alertd.config import load_config
from alertd.config import schema as s
from alertd.model import NoticeKind
from alertd.senders.apprise_sender import CONSOLE_URL
from alertd.simulator import scenario
from alertd.simulator.element import FakeElement
from alertd.simulator.navixy import FakeNavixy
from alertd.store import Store

MIN_DURATION = 5.0  # below this the sockets' keep-alive timers run too fast to be fair
DRAIN_WAIT = 15.0  # real seconds to wait at the end for --notify deliveries to go out
TERMINAL, NOTIFY = "terminal", "notify"


def main(duration: float, notify: str | None, out: TextIO, *, debug: bool = False) -> int:
    """Run the demo for about ``duration`` real seconds; 0, or 2 for a bad argument."""
    from alertd.senders.apprise_sender import url_problem

    if duration < MIN_DURATION:
        print(f"alertd: --duration must be at least {MIN_DURATION:g} seconds",
              file=sys.stderr)
        return 2
    if notify is not None:
        problem = url_problem(notify)
        if problem is not None:
            print(f"alertd: --notify: the URL {problem}", file=sys.stderr)
            return 2
    rate = scenario.LENGTH / duration
    with _quiet_logs(debug), tempfile.TemporaryDirectory(prefix="alertd-demo-") as folder:
        state = Path(folder) / "demo-state.db"
        with importlib.resources.as_file(
                importlib.resources.files("alertd.simulator") / "demo_rules.yaml") as rules:
            config = load_config(rules, {"ELEMENT_API_KEY": scenario.API_KEY,
                                         "NAVIXY_HASH": scenario.HASH,
                                         "SMTP_PASSWORD": "demo", "ALERTD_STATE": str(state)})
        store = Store.open(state)
        try:
            clock = trio.testing.MockClock(rate=rate)
            result = trio.run(partial(_run, config, store, notify, out, clock, rate),
                              clock=clock)
            _summary(out, config, store, result)
        finally:
            store.close()
    return 0


@contextmanager
def _quiet_logs(debug: bool) -> Iterator[None]:
    """Only errors on stderr (reconnects during the outage are part of the story), all of
    it with --debug."""
    if debug:
        from alertd import logs

        logs.setup(True, "text")
        yield
        return
    logger = logging.getLogger("alertd")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


@dataclass
class Result:
    start: float = 0.0  # daemon (epoch) time of the scenario's first step
    interrupted: bool = False
    undelivered: int = 0  # --notify deliveries still in the outbox at the end


def demo_config(config: s.Config, element: FakeElement, navixy: FakeNavixy,
                notify: str | None) -> s.Config:
    """The rule file's rules pointed at the fakes, every rule notifying the terminal (and
    ``notify``), without mute windows or planned silences."""
    loc = config.rules[0].loc
    channels = {TERMINAL: s.Channel(loc, TERMINAL, (CONSOLE_URL,))}
    if notify is not None:
        channels[NOTIFY] = s.Channel(loc, NOTIFY, (notify,))
    sources: dict[str, s.Source] = {
        name: replace(source, url=element.url) if isinstance(source, s.ElementSource)
        else replace(source, url=navixy.url)
        for name, source in config.sources.items()}
    rules = tuple(replace(rule, notify=tuple(channels)) for rule in config.rules)
    return replace(config, sources=sources, channels=channels, rules=rules, silences=(),
                   http=None)


async def _run(config: s.Config, store: Store, notify: str | None, out: TextIO,
               mock: trio.testing.MockClock, rate: float) -> Result:
    result = Result()
    site = scenario.Site()
    daemon_clock: list[Clock] = []  # filled once the daemon runs: the fakes stamp with it
    element, navixy = site.fakes(lambda: daemon_clock[0].now())
    async with trio.open_nursery() as nursery:
        await nursery.start(element.serve)
        await nursery.start(navixy.serve)
        config = demo_config(config, element, navixy, notify)

        async def daemon(task_status: trio.TaskStatus[app.Runtime]) -> None:
            # apprise waits on real processes and sockets: its waits run in real seconds
            await app.run(config, store, out=out, task_status=task_status, time_scale=rate)
            result.interrupted = True  # app.run returns on its own only on SIGINT/SIGTERM
            nursery.cancel_scope.cancel()

        runtime: app.Runtime = await nursery.start(daemon)
        daemon_clock.append(runtime.clock)
        _say(out, f"alertd demo: {len(config.rules)} rules of rules.example.yaml against "
                  f"simulated ELEMENT ({element.url}) and Navixy ({navixy.url}) servers")
        _say(out, f"simulated time runs {rate:.0f}x faster: "
                  f"{scenario.LENGTH / 60:.0f} minutes in {scenario.LENGTH / rate:.0f} s; "
                  "notifications print as they would arrive on a phone"
                  + (", and go to --notify too" if notify else ""))
        await element.wait_until(lambda: len(element.connections) >= len(
            [p for src in config.sources.values() if isinstance(src, s.ElementSource)
             for p in src.subscribe]))
        await navixy.wait_until(lambda: navixy.subscribe_count > 0)
        result.start = runtime.clock.now()
        _say(out, f"[00:00:00] is {_utc(result.start)}, the time in the notifications\n")
        await _play(out, site, element, navixy)
        if notify is not None:
            result.undelivered = await _drain(store, mock)
        nursery.cancel_scope.cancel()
    return result


async def _play(out: TextIO, site: scenario.Site, element: FakeElement,
                navixy: FakeNavixy) -> None:
    """Run the timeline: at each tick, the steps due, then what the site reports."""
    start = trio.current_time()
    steps = list(scenario.TIMELINE)
    ticks = int(scenario.LENGTH // scenario.TICK)
    for tick in range(ticks):
        at = tick * scenario.TICK
        await trio.sleep_until(start + at)
        while steps and steps[0].at <= at:
            step = steps.pop(0)
            _say(out, f"[{_offset(step.at)}] {step.caption}")
            step.action(site, element, navixy)
        if at and at % (10 * scenario.MINUTE) == 0:
            _say(out, f"[{_offset(at)}] ... {100 * at / scenario.LENGTH:.0f}% of the scenario")
        site.tick(at, element, navixy)
    await trio.sleep_until(start + scenario.LENGTH)
    _say(out, f"[{_offset(scenario.LENGTH)}] the scenario is over\n")


async def _drain(store: Store, mock: trio.testing.MockClock) -> int:
    """Give --notify's deliveries real time to go out; how many are still queued."""
    mock.rate = 1.0  # apprise's timeouts are trio time: no more fast-forward
    with trio.move_on_after(DRAIN_WAIT):
        while store.pending(NOTIFY):
            await trio.sleep(0.1)
    return len(store.pending(NOTIFY))


def _say(out: TextIO, text: str) -> None:
    out.write(text + "\n")
    out.flush()


def _utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _offset(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def kind_of(condition: s.Condition) -> str:
    """The rule kind as the rule file spells it (``threshold``, ``source_down``, ``all``)."""
    names: dict[type, str] = {s.Threshold: "threshold", s.Missing: "missing",
                              s.Silent: "silent", s.Status: "status",
                              s.SourceDown: "source_down", s.Change: "change",
                              s.AllOf: "all", s.AnyOf: "any"}
    return names[type(condition)]


def _summary(out: TextIO, config: s.Config, store: Store, result: Result) -> None:
    """One row per rule and entity: first firing and first resolution (offsets from the
    start), with counts when more than one; a rule that never fired gets a row too."""
    rows = store.db.execute("SELECT at, rule, entity, state FROM history ORDER BY at")
    seen: dict[tuple[str, str], dict[str, list[float]]] = {}
    for at, rule, entity, state in rows:
        seen.setdefault((rule, entity), {}).setdefault(state, []).append(at - result.start)
    table = [("RULE", "KIND", "ENTITY", "FIRED", "RESOLVED")]
    fired_rules = resolved_rules = 0
    for rule in config.rules:
        entities = sorted(entity for name, entity in seen if name == rule.name)
        fired_rules += any(seen[(rule.name, e)].get(NoticeKind.FIRING) for e in entities)
        resolved_rules += any(seen[(rule.name, e)].get(NoticeKind.RESOLVED) for e in entities)
        if not entities:
            table.append((rule.name, kind_of(rule.condition), "-", "no", "-"))
        for entity in entities:
            states = seen[(rule.name, entity)]
            fired = _times(states.get(NoticeKind.FIRING, []))
            resolved = _times(states.get(NoticeKind.RESOLVED, [])) or (
                "still firing" if fired else "-")
            table.append((rule.name, kind_of(rule.condition), entity, fired or "no", resolved))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    _say(out, "Summary (times from the start of the scenario)"
         + (" - interrupted" if result.interrupted else ""))
    for row in table:
        _say(out, "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    _say(out, f"\n{len(config.rules)} rules: {fired_rules} fired, {resolved_rules} resolved")
    if result.undelivered:
        _say(out, f"--notify: {result.undelivered} notification"
                  f"{'' if result.undelivered == 1 else 's'} could not be delivered")


def _times(offsets: list[float]) -> str:
    if not offsets:
        return ""
    first = _offset(offsets[0])
    return first if len(offsets) == 1 else f"{first} ({len(offsets)}x)"
