"""How fast the engine evaluates messages, and what rules that cannot apply cost.

Prints messages per second for a fleet of entities under a realistic rule set, then the same
with 500 extra rules on fields the messages never carry and 500 rules for other entities: the
index should keep the second figure close to the first. Run: python3 benchmarks/engine_throughput.py
"""

from __future__ import annotations

import random
import time
import tracemalloc

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

    start = time.perf_counter()
    feed(Engine(rules, SOURCES, 0.0))
    rate = messages / (time.perf_counter() - start)
    tracemalloc.start()
    feed(Engine(rules, SOURCES, 0.0))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return rate, peak / entities


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


if __name__ == "__main__":
    main()
