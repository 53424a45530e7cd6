"""Bytes per field history and per entity, counted by tracemalloc (deterministic for a given
interpreter; no timing): the compact layout of issue 15 must not grow back unnoticed.

The bounds are the layout's own sizes with a little room: a history is one object (an array
of doubles with three slots) whose buffer holds a full history and the entry recorded before
the oldest is dropped; an entity is its histories, one object, its fields dict and its key.
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from alertd.config import schema as s
from alertd.config.schema import HISTORY_DEPTH as DEPTH
from alertd.engine import Engine
from alertd.engine.history import FieldHistory
from alertd.errors import Loc
from alertd.model import Message
from tests.budget import examples

LOC = Loc("test", 1)
FIELDS = ("temp", "hum", "bat", "co2", "press")


def traced_bytes(build: Callable[[], Any]) -> int:
    """Bytes still allocated by ``build`` once it returned (what it built and keeps)."""
    gc.collect()
    already = tracemalloc.is_tracing()  # e.g. python -X tracemalloc: leave it running
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = build()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        if not already:
            tracemalloc.stop()
    del kept
    return after - before


def test_a_full_history_is_one_object_with_a_buffer_of_its_own_size() -> None:
    def histories() -> list[FieldHistory]:
        out = [FieldHistory(600.0) for _ in range(200)]
        for history in out:
            for k in range(100):  # long past full: the steady state of a fleet
                history.record(60.0 * k, 20.0 + k % 7)
                history.prune(60.0 * k)
        return out

    per_field = traced_bytes(histories) / 200
    assert len(histories()[0].all) == DEPTH
    # 128 bytes of object (six slots: the window start, text values, horizon, where the
    # extremes are (small ints shared by every history) and a long window's running
    # extremes (None here)), 26 doubles, the window start (a float), the list pointer: 368
    # here; 448 when a history held an array and the array grew to 34 doubles
    assert per_field <= 128 + 8 * (2 * DEPTH + 2) + 24 + 8 + 8, per_field


def test_an_entity_with_five_full_histories_and_no_alert_stays_compact() -> None:
    rules = [s.Rule(LOC, f"gap-{f}", s.Missing(LOC, f, 3), notify=("ops",)) for f in FIELDS]
    rules += [s.Rule(LOC, f"drop-{f}", s.Change(LOC, f, 600.0, drop=1000.0), notify=("ops",))
              for f in FIELDS]
    sources: dict[str, s.Source] = {"iot": s.ElementSource(LOC, "iot", "k", ("readings",))}
    entities = 500

    def fleet() -> Engine:
        engine = Engine(rules, sources, 0.0)
        for k in range(12):
            for e in range(entities):
                at = 1000.0 + 60.0 * k + e * 0.01
                fields = {f: 20.0 + e % 10 + k * 0.25 + i for i, f in enumerate(FIELDS)}
                engine.receive(Message("iot", f"dev{e}", at, fields), at)
        return engine

    per_entity = traced_bytes(fleet) / entities
    # 2,320 on one machine, 2,400-2,402 on another of the same kind (same interpreter): five
    # histories of 328-344, the entity (152), its dicts, key, id and times; 2,544 before
    # histories were single objects and entities shared an empty alerts dict
    assert per_entity <= 2_450, per_entity


def test_a_field_that_stops_arriving_keeps_its_two_queues_not_every_null_since() -> None:
    def histories() -> list[FieldHistory]:
        out = [FieldHistory() for _ in range(50)]
        for history in out:
            for k in range(DEPTH):
                history.record(60.0 * k, 20.0)
            for k in range(DEPTH, DEPTH + 300):  # the sensor died: a null per message
                history.record(60.0 * k, None)
        return out

    per_field = traced_bytes(histories) / 50
    # the 12 nulls and the 12 values the queues need, and the one being recorded: 25
    # entries, 50 doubles and CPython's over-allocation; it kept every null since (5 KB)
    assert per_field <= 104 + 8 * 2 * (2 * DEPTH + 1) + 8 * 16 + 24 + 8 + 8, per_field


@settings(max_examples=examples(200), deadline=None)
@given(st.lists(st.tuples(st.integers(1, 40), st.sampled_from([1.0, 10.0, 30.0, 45.0, 200.0])),
                min_size=1, max_size=6),
       st.sampled_from([0.0, 60.0, 600.0]))
def test_a_steady_stream_keeps_exactly_its_queues_and_its_window(
        runs: list[tuple[int, float]], horizon: float) -> None:
    """Numbers in order (the usual reading), in runs of one pace: after each one, the
    history holds the 12 newest entries and, with a `change` horizon, every entry within
    it, and nothing older (a reading every 30 s with `within: 10m` keeps 21; a long gap
    after a fast run drops many at once). The queues and the window read the same with an
    entry too many, so only its length can say that one stayed."""
    history = FieldHistory(horizon)
    times: list[float] = []
    gaps = [gap for count, gap in runs for _ in range(count)]
    for step, gap in enumerate(gaps):
        now = (times[-1] if times else 0.0) + gap
        history.record(now, float(step % 7))  # repeated extremes: some leave as the oldest
        history.spread()  # as the engine reads it: the extremes known, the usual path taken
        times.append(now)
        kept = [t for i, t in enumerate(times)
                if i >= len(times) - DEPTH or (horizon > 0 and t >= now - horizon)]
        assert list(history[0::2]) == kept


def test_a_window_whose_field_stopped_is_cut_when_the_entitys_other_fields_move_on() -> None:
    """A Navixy tracker's attribute that stops coming (no null for it: its queues carry their
    own) keeps its 12 newest values, not the whole `change` window it had: the window ends
    with the entity's newest message, whichever fields that message carries."""
    rules = [s.Rule(LOC, f"jump-{f}", s.Change(LOC, f, 600.0, rise=1000.0), notify=("ops",))
             for f in ("a", "b")]
    engine = Engine(rules, {"fleet": s.NavixySource(LOC, "fleet", "0" * 32, (7,))}, 0.0)
    for second in range(1, 101):  # both, a second apart: 100 values in a's window
        engine.receive(Message("fleet", "7", float(second), {"a": 1.0, "b": 1.0},
                               absent_is_null=False), float(second))
    for second in range(101, 801):  # b alone, and a's window slides past all of a's values
        engine.receive(Message("fleet", "7", float(second), {"b": 1.0},
                               absent_is_null=False), float(second))
    kept = engine._entities["fleet/7"].fields["a"]  # private, but the bound is the point
    assert len(kept) // 2 == DEPTH


@settings(max_examples=examples(100), deadline=None)
@given(st.integers(0, 30), st.integers(1, 700), st.sampled_from([1.0, 7.0, 30.0]),
       st.sampled_from([60.0, 600.0]))
def test_a_field_gone_from_every_message_keeps_exactly_its_queues_and_window(
        values: int, nulls: int, pace: float, horizon: float) -> None:
    """A field that no message carries any more (a null in each), read by a `change`
    window: after every message the history holds its 12 newest entries, its 12 newest
    values and every entry within the window (the moments a late message is judged at),
    nothing older. The window's nulls are searched in C, not walked at each record
    (``_value_at``), and must be kept exactly so."""
    record_and_check(horizon, [(step * pace, float(step % 5) if step < values else None)
                               for step in range(values + nulls)])


def record_and_check(horizon: float, messages: list[tuple[float, float | None]]
                     ) -> FieldHistory:
    """Record each (time, value or None) as the engine does, and check after each that the
    history holds its 12 newest entries, its 12 newest values and every entry within the
    window (the moments a late message is judged at), nothing older."""
    history = FieldHistory(horizon)
    recorded: list[tuple[float, float | None]] = []
    for step, (now, value) in enumerate(messages):
        history.record(now, value)
        history.prune(now)  # as the engine does after each message
        recorded.append((now, value))
        newest_values = [t for t, v in recorded if v is not None][-DEPTH:]
        kept = sorted({t for t, _ in recorded[-DEPTH:]} | set(newest_values)
                      | {t for t, _ in recorded if t >= now - horizon})
        assert list(history[0::2]) == kept, step
        assert history.newest() == next((v for _, v in reversed(recorded) if v is not None),
                                        None), step
    return history


@settings(max_examples=examples(150), deadline=None)
@given(st.integers(150, 900), st.integers(2, 60), st.integers(0, 59),
       st.sampled_from([1.0, 7.0, 30.0]), st.sampled_from([60.0, 600.0, 3600.0]),
       st.permutations([0.0, -0.0, 5e-324, 1.5, -7.25, 1.7e308]))
def test_a_field_that_few_messages_carry_keeps_exactly_its_queues_and_window(
        messages: int, every: int, phase: int, pace: float, horizon: float,
        numbers: list[float]) -> None:
    """A field carried by one message in ``every`` (a fuel level in a tracker's stream),
    null in the others, read by a `change` window: after every message the history holds
    its 12 newest entries, its 12 newest values and every entry within the window, nothing
    older. Its 12 newest values are found among the window's nulls in C (``_value_at``),
    not walked; the values include those whose bytes a null's bits share (0.0 is eight
    zero bytes), which a search for the null's bytes alone would take for nulls."""
    recorded = [(step * pace, numbers[step % len(numbers)] if step % every == phase % every
                 else None) for step in range(messages)]
    history = record_and_check(horizon, recorded)
    assert history.nonnull == [(t, v) for t, v in recorded if v is not None][-DEPTH:]
