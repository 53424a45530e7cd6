"""How fast the engine evaluates messages, and what rules that cannot apply cost.

Prints messages per second for a fleet of entities under a realistic rule set, then the same
with 500 extra rules on fields the messages never carry and 500 rules for other entities: the
index should keep the second figure close to the first. Then the engine's CPU time per reading
under the daemon figure's rule set (``throughput.py``: 1,000 rules, 30 reaching each ELEMENT
reading of five fields, ~20 fields read by ``missing`` elsewhere recorded as nulls), fed
directly: the engine's share of the daemon's cost per reading; and the same rules with
other kinds of condition (``equals``, ``in``, ``any``, a device field's bound, an ``all``
with a `change`, fields no `change` rule reads, ten `silent` rules more), each as a ratio
to the first. Last, a field that few messages carry: a tracker reporting every second with
a fuel level in one message of ``every`` (a null in the others, as Navixy's queue with gaps
gives it), read by a `change` rule with a 10-minute (or 1-hour) window, beside a threshold
on a field every message carries: the window's nulls must not cost a walk at every
message; and a fuel level that falls a little at every message (1/s and 10/s, a 10-minute
window: 600 numbers, and past the window's cap of 4,096), whose largest value leaves the
window at every message. Each figure is the best of 3 runs (CPU time for the daemon's
rule set), so that a machine shared with other work measures the engine rather than the
load. Run: python3 benchmarks/engine_throughput.py
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from typing import Any
import tempfile
import time
import tracemalloc
from pathlib import Path

from alertd.config import schema as s
from alertd.engine import Engine
from alertd.errors import Loc
from alertd.model import Message

LOC = Loc("bench", 1)
SOURCES = {"fleet": s.NavixySource(LOC, "fleet", "h", (1,))}


def base_rules() -> list[s.Rule]:
    def r(name: str, condition: s.Condition, **kw: object) -> s.Rule:
        return s.Rule(LOC, name, condition, notify=("ops",), **kw)  # type: ignore[arg-type]
    return [
        r("hot", s.Threshold(LOC, "temperature", above=30.0, clear_below=28.0), for_=60.0),
        r("gap", s.Missing(LOC, "lls_level_1", 3)),
        r("flaky", s.Missing(LOC, "latitude", 4, 12)),
        r("drain", s.Change(LOC, "lls_level_1", 600.0, drop=30.0)),
        r("quiet", s.Silent(LOC, 900.0)),
        r("fast", s.AnyOf(LOC, (s.Threshold(LOC, "speed", above=110.0),
                                s.Threshold(LOC, "engine_temp", above=105.0)))),
    ]


def run(rules: list[s.Rule], entities: int, messages: int) -> tuple[float, float]:
    """Messages per second (untraced run), then traced peak bytes per entity (second run)."""
    rng = random.Random(1)
    batch = []
    for i in range(messages):
        t = i * 0.01
        fields = {"temperature": 20 + rng.random() * 12, "speed": rng.randint(0, 120),
                  "lls_level_1": None if rng.random() < 0.05 else str(200 - i * 1e-4),
                  "latitude": "5.96", "engine_temp": 90}
        batch.append((t, Message("fleet", str(i % entities), t, fields, absent_is_null=False)))

    def feed(engine: Engine) -> None:
        for t, message in batch:
            engine.receive(message, t)
            deadline = engine.next_deadline()
            if deadline is not None and deadline <= t:
                engine.on_timer(t)

    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        feed(Engine(rules, SOURCES, 0.0))
        best = min(best, time.perf_counter() - start)
    rate = messages / best
    tracemalloc.start()
    feed(Engine(rules, SOURCES, 0.0))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return rate, peak / entities


def _other_kinds(kind: str) -> Callable[[int, dict[str, Any]], dict[str, Any]]:
    """``throughput.py``'s rules with other kinds of condition, reaching the same readings:
    each `change` rule made a threshold (its field then read by thresholds and `missing`
    alone), or every other threshold one with ``equals``, ``in``, an ``any`` of two bounds,
    a bound read from a device field, or an ``all`` of itself and a `change`; or ten
    `silent` rules added. No reading meets any of them."""
    def changed(number: int, rule: dict[str, Any]) -> dict[str, Any]:
        if kind == "threshold" and "change" in rule:
            field = rule.pop("change")["field"]
            return {**rule, "threshold": {"field": field, "above": 1e9}}
        if "threshold" not in rule or number % 2 or kind in ("threshold", "silent"):
            return rule
        field = rule["threshold"]["field"]
        conditions: dict[str, Any] = {
            "equals": {"threshold": {"field": field, "equals": -12345}},
            "in": {"threshold": {"field": field, "in": [-1, -2, "off"]}},
            "any": {"any": [{"threshold": {"field": field, "above": 1e9}},
                            {"threshold": {"field": field, "below": -1e9}}]},
            "device bound": {"threshold": {"field": field,
                                           "above": {"field": f"{field}_max"}}},
            "all change": {"all": [{"threshold": {"field": field, "above": 1e9}},
                                   {"change": {"field": field, "rise": 1e9,
                                               "within": "10m"}}]}}
        rule = {k: v for k, v in rule.items() if k != "threshold"}
        return {**rule, **conditions[kind]}
    return changed


def daemon_rules(readings: int, kind: str | None = None) -> float:
    """CPU seconds per reading of the engine alone under ``throughput.py``'s rule set (with
    ``kind``, its conditions made that other kind: ``_other_kinds``)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from benchlib import kind_fields
    from throughput import END_RULE, ENTITIES, KINDS, daemon_config

    from alertd.config import load_config

    extra = [END_RULE]
    if kind == "silent":  # ten more rules that every reading of every device reaches
        extra += [{"name": f"quiet-{i}", "silent": {"after": f"{10 + i}m"}} for i in range(10)]
    with tempfile.TemporaryDirectory(prefix="alertd-bench-") as folder:
        path = Path(folder) / "rules.yaml"
        path.write_text(daemon_config("element1", 1, 1000, extra,
                                      None if kind is None else _other_kinds(kind)))
        config = load_config(path, {})
    start = time.time() - readings * 0.6 - 3600
    batch = [Message("bench", f"dev{n % ENTITIES}", start + n * 0.6,
                     kind_fields(n % ENTITIES % KINDS, (n % 7) * 0.01))
             for n in range(readings)]
    best = float("inf")
    for _ in range(3):
        engine = Engine(config.rules, config.sources, start)
        began = time.process_time()
        for message in batch:
            engine.receive(message, message.msg_time + 0.1)
        best = min(best, time.process_time() - began)
    return best / readings


def per_message(rules: list[s.Rule], batch: list[Message]) -> float:
    """Microseconds per message of ``batch`` fed to a new engine of ``rules``, best of 3."""
    best = float("inf")
    for _ in range(3):
        engine = Engine(rules, SOURCES, 0.0)
        start = time.perf_counter()
        for message in batch:
            engine.receive(message, message.msg_time)
        best = min(best, time.perf_counter() - start)
    return best / len(batch) * 1e6


def sparse_field(every: int, within: float, messages: int = 20_000) -> float:
    """Microseconds per message of one tracker whose fuel level comes in one message of
    ``every``, read by ``change: {field: fuel, drop: 20, within: ...}``."""
    rules = [s.Rule(LOC, "fuel-drop", s.Change(LOC, "fuel", within, drop=20.0),
                    notify=("ops",)),
             s.Rule(LOC, "hot", s.Threshold(LOC, "temp", above=90.0), notify=("ops",))]
    batch = [Message("fleet", "1", float(i), {"temp": 20.0 + i % 3, "fuel": 50.0 - i % 5
                                              if i % every == 0 else None},
                     absent_is_null=False) for i in range(1, messages)]
    return per_message(rules, batch)


def steady_fall(gap: float, within: float = 600.0, messages: int = 20_000) -> float:
    """Microseconds per message of one tracker whose fuel level falls a little at every
    message (``gap`` seconds apart), read by ``change: {field: fuel, drop: 20, within: ...}``
    that it never meets: the window's largest value is its oldest, and leaves at every
    message."""
    rules = [s.Rule(LOC, "fuel-drop", s.Change(LOC, "fuel", within, drop=20.0),
                    notify=("ops",))]
    batch = [Message("fleet", "1", i * gap, {"fuel": 500.0 - i * 0.0001})
             for i in range(1, messages)]
    return per_message(rules, batch)


def main() -> None:
    entities, messages = 2_000, 100_000
    rules = base_rules()
    rate, per_entity = run(rules, entities, messages)
    print(f"{len(rules)} rules, {entities} entities: {rate:,.0f} messages/s, "
          f"{per_entity / 1024:.1f} KiB per entity (traced peak)")
    idle = [s.Rule(LOC, f"other-field-{i}", s.Threshold(LOC, f"f{i}", above=1.0),
                   notify=("ops",)) for i in range(500)]
    idle += [s.Rule(LOC, f"other-entity-{i}", s.Threshold(LOC, "temperature", above=1.0),
                    entities=(f"x{i}",), notify=("ops",)) for i in range(500)]
    rate2, per_entity2 = run(rules + idle, entities, messages)
    print(f"+1000 rules that cannot apply: {rate2:,.0f} messages/s "
          f"({rate2 / rate:.0%} of the first), {per_entity2 / 1024:.1f} KiB per entity")
    cost = daemon_rules(20_000)
    print(f"throughput.py's 1,000 rules, ELEMENT readings of 5 fields: {cost * 1e6:.1f} us "
          f"CPU per reading ({1 / cost:,.0f} readings/s)")
    for kind, words in (("threshold", "the `change` rules thresholds"),
                        ("equals", "every other threshold an `equals`"),
                        ("in", "every other threshold an `in`"),
                        ("any", "every other threshold an `any` of two bounds"),
                        ("device bound", "every other threshold a device field's bound"),
                        ("all change", "every other threshold an `all` with a `change`"),
                        ("silent", "and 10 `silent` rules for every device")):
        other = daemon_rules(20_000, kind)
        print(f"  the same, {words}: {other * 1e6:.1f} us ({other / cost:.2f} x)")
    for every, within in ((1, 600.0), (60, 600.0), (600, 3600.0)):
        print(f"a field in one message of {every}, `change` within {within / 60:.0f} min: "
              f"{sparse_field(every, within):.1f} us per message")
    for gap in (1.0, 0.1):
        print(f"a fuel level falling steadily, {1 / gap:.0f} message(s)/s, `change` within "
              f"10 min: {steady_fall(gap):.1f} us per message")


if __name__ == "__main__":
    main()
