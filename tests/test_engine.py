"""The engine core: table tests with no mocks, and properties checked by hypothesis."""

from __future__ import annotations

import ast
import math
import random
from pathlib import Path
from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from alertd.config import schema as s
from alertd.engine import Engine, notices
from alertd.engine.alerts import FIRING, INACTIVE, PENDING, RESOLVED, TABLE, Alert, Signal
from alertd.engine import history as history_module
from alertd.engine.history import DEPTH, WINDOW_CAP, FieldHistory, normalise
from alertd.errors import Loc
from alertd.model import AlertState, Message, NoticeKind, Notification, StatusChanged
from alertd.records import AlertView, StoredAlert
from tests.budget import examples

PACKAGE = Path(__file__).resolve().parent.parent / "alertd"
LOC = Loc("test", 1)
FLEET = {"fleet": s.NavixySource(LOC, "fleet", "h", (1,))}


def rule(condition: s.Condition, **options: object) -> s.Rule:
    return s.Rule(LOC, options.pop("name", "r"), condition, notify=("ops",),  # type: ignore[arg-type]
                  **options)


def above(limit: float, **extra: object) -> s.Threshold:
    return s.Threshold(LOC, "v", above=limit, **extra)  # type: ignore[arg-type]


# ---- the core is sans-I/O ---------------------------------------------------------------

FORBIDDEN = {"trio", "trio_websocket", "apprise", "sqlite3", "yaml", "socket", "time",
             "asyncio", "threading", "requests"}


@pytest.mark.parametrize("package", ["engine", "notify"])
def test_core_imports_no_io_and_reads_no_clock(package: str) -> None:
    for path in sorted((PACKAGE / package).rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN, f"{path.name} imports {name}"
                assert not name.startswith(("alertd.sources", "alertd.senders", "alertd.store",
                                            "alertd.config.load", "alertd.config.nodes")), \
                    f"{path.name} imports {name}"
            if isinstance(node, ast.Attribute) and node.attr in ("now", "utcnow", "time",
                                                                  "monotonic", "current_time"):
                assert not (isinstance(node.value, ast.Name)
                            and node.value.id in ("datetime", "time", "trio")), \
                    f"{path.name}:{node.lineno} reads the clock"


# ---- history -----------------------------------------------------------------------------


def test_history_keeps_twelve_in_msg_time_order_with_and_without_gaps() -> None:
    history = FieldHistory()
    for t in range(20):
        history.record(float(t), None if t % 3 == 0 else float(t))
    assert len(history.all) == DEPTH and len(history.nonnull) == DEPTH
    assert [t for t, _ in history.all] == [float(t) for t in range(8, 20)]
    assert all(v is not None for _, v in history.nonnull)
    history.record(8.5, 99.0)  # late message: inserted in order, the oldest drops out
    assert [t for t, _ in history.all][:2] == [8.5, 9.0] and history.newest() == 19.0
    history.record(1.0, 5.0)  # older than all twelve: not kept
    assert [t for t, _ in history.all][0] == 8.5


@pytest.mark.parametrize("raw,value", [("262.9138", 262.9138), (40, 40.0), ("abc", "abc"),
                                        (None, None), (True, True), ("nan", "nan"), ("1e3", 1e3)])
def test_values_are_normalised_once(raw: object, value: object) -> None:
    assert normalise(raw) == value


class ModelHistory:
    """FieldHistory's contract on a plain dict that forgets nothing: every message merged by
    ``msg_time`` (a null never hides a value), the window's start moved by numbers and by
    ``prune``."""

    def __init__(self, horizon: float, entries: dict[float, Any] | None = None,
                 start: float = -math.inf) -> None:
        self.horizon, self.entries, self.start = horizon, dict(entries or {}), start

    def record(self, at: float, value: Any) -> None:
        if value is not None or at not in self.entries:
            self.entries[at] = value
        if self.horizon > 0 and self.number(value):
            self.start = max(self.start, at - self.horizon)

    def prune(self, newest: float) -> None:
        if self.horizon > 0:
            self.start = max(self.start, newest - self.horizon)

    @staticmethod
    def number(value: Any) -> bool:
        return value.__class__ is float and math.isfinite(value)

    @property
    def ordered(self) -> list[tuple[float, Any]]:
        return sorted(self.entries.items())

    @property
    def all(self) -> list[tuple[float, Any]]:
        return self.ordered[-DEPTH:]

    @property
    def nonnull(self) -> list[tuple[float, Any]]:
        return [(t, v) for t, v in self.ordered if v is not None][-DEPTH:]

    @property
    def window(self) -> list[tuple[float, Any]] | None:
        if self.horizon <= 0:
            return None
        return [(t, v) for t, v in self.ordered if t >= self.start and self.number(v)]

    def remembered(self) -> set[float]:
        """The moments the history must keep, and no more: both queues and the window's
        span (nulls and text inside it included)."""
        kept = {t for t, _ in self.all} | {t for t, _ in self.nonnull}
        if self.horizon > 0:
            kept |= {t for t in self.entries if t >= self.start}
        return kept

    def largest_change(self, since: float, falling: bool) -> tuple[
            float, float | None, float | None, tuple[float, float, float] | None]:
        window = self.window or []
        newest = window[-1][1] if window else None
        used = [(t, v) for t, v in window if t >= since]
        best, detail = 0.0, None
        for j, (later_at, later) in enumerate(used):  # the first pair that changes most,
            for earlier_at, earlier in used[:j]:  # from the earliest extreme before it
                change = earlier - later if falling else later - earlier
                if change > best:
                    best, detail = change, (earlier, earlier_at, later_at)
        return best, (used[0][0] if used else None), newest, detail

    def kept(self, times: set[float]) -> ModelHistory:
        return ModelHistory(self.horizon, {t: v for t, v in self.entries.items() if t in times},
                            self.start)


def spread_found_again(history: FieldHistory) -> float:
    """``FieldHistory.spread`` from the values the array holds now, nothing remembered."""
    values = [v for v in history.tolist()[1::2] if v == v]  # nulls skipped
    if -math.inf in values:  # a text value is kept
        return math.inf
    return max(values) - min(values) if values else 0.0


def same(history: FieldHistory, model: ModelHistory, now: float) -> None:
    assert history.spread() == spread_found_again(history)
    assert history.all == model.all
    assert history.nonnull == model.nonnull
    assert history.window == model.window
    assert history.count() == len(model.all)
    assert history.last() == (model.all[-1] if model.all else None)
    assert history.newest() == (model.nonnull[-1][1] if model.nonnull else None)
    for count in range(DEPTH + 2):
        assert history.nulls(count) == sum(v is None for _, v in model.all[-count:] if count)
    if history.horizon > 0:
        for since in (-math.inf, now - 12, now - 5, now):
            for falling in (True, False):
                assert history.largest_change(since, falling) == \
                    model.largest_change(since, falling), (since, falling)


def record_run(history: FieldHistory, model: ModelHistory, at: float, value: Any, run: int,
               now: float, check: Callable[[FieldHistory], None]) -> float:
    """``run`` messages 1 s apart from ``at``, each with ``value``, recorded in both, and
    ``check`` after each; the newest time seen since."""
    for at in (at + k for k in range(run)):
        if at in model.entries and at not in history.times():
            continue  # a message seen again after its entry was let go: not judged
        history.record(at, value)
        model.record(at, value)
        now = max(now, at)
        check(history)
    return now


def spread_right(history: FieldHistory) -> None:
    """As values come and go, the extremes a history keeps track of are those it holds."""
    assert history.spread() == spread_found_again(history)


HORIZONS = [0.0, 1.0, 5.0, 20.0]
history_steps = st.lists(st.tuples(
    st.sampled_from(["record"] * 6 + ["prune", "cut", "rehorizon"]),
    st.integers(-25, 6),  # how far the message time moves: mostly on, sometimes far back
    st.sampled_from([None, None, None, 0.0, 1.5, 4.0, 9.0, 2.5, "on", True, math.inf]),
    st.sampled_from(HORIZONS),
    st.integers(1, 14)), max_size=40)  # messages in a row with that value, 1 s apart


@settings(max_examples=examples(300), deadline=None)
@given(st.sampled_from(HORIZONS), history_steps)
@example(0.0, [("record", 0, None, 0.0, 9), ("record", -1, 0.0, 0.0, 1),
               ("record", 9, None, 0.0, 4)])
@example(1.0, [("record", 0, None, 0.0, 6), ("record", 0, None, 0.0, 13),
               ("rehorizon", 0, None, 0.0, 1), ("prune", 0, None, 0.0, 1)])
def test_a_history_reads_like_every_message_merged_in_time_order(
        horizon: float, steps: list[tuple[str, int, Any, float, int]]) -> None:
    """The compact array against a model that forgets nothing: the same queues, window,
    counts and changes after every step, and it keeps exactly the moments they need."""
    history, model, now = FieldHistory(horizon), ModelHistory(horizon), 100.0
    untrimmed = False  # a copy without a window keeps more until its next record
    for action, move, value, other, run in steps:
        at = now + move
        if action == "record":
            untrimmed = False
            now = record_run(history, model, at, value, run, now, spread_right)
        elif action == "prune":
            history.prune(at)
            model.prune(at)
        elif action == "cut":
            cut, cut_model = history.cut(at), model.kept(history.times())
            cut_model.entries = {t: v for t, v in cut_model.entries.items() if t <= at}
            cut_model.start = min(model.start, at - horizon)
            assert cut.times() == set(cut_model.entries)
            same(cut, cut_model, at)
            cut.record(at, value)  # as a late message's own value is (late.py)
            cut_model.record(at, value)
            same(cut, cut_model, at)
            same(history, model, now)  # the copy shares nothing with the history
            continue
        else:  # a reload changed `within`
            kept = model.kept(history.times())
            kept.horizon, kept.start = other, -math.inf
            if other > 0 and kept.entries:
                kept.start = max(kept.entries) - other
                if horizon > 0:
                    kept.start = max(kept.start, model.start)
            history, model, horizon = history.rehorizoned(other), kept, other
            untrimmed = other <= 0  # a copy without a window is trimmed at its next record
        same(history, model, now)
        if not untrimmed:
            assert history.times() == model.remembered()
        assert history.times() >= model.remembered()


@settings(max_examples=examples(200), deadline=None)
@given(st.sampled_from([0.0, 3.0, 30.0]),
       st.lists(st.tuples(st.integers(-3, 4), st.none() | st.integers(0, 8)), max_size=60))
def test_the_spread_follows_the_values_as_they_come_and_go(
        horizon: float, steps: list[tuple[int, int | None]]) -> None:
    """The extremes ``spread`` keeps track of, on streams of close numbers (1 apart), nulls,
    the same message again and late ones: always those of the values the array holds."""
    history, at = FieldHistory(horizon), 100.0
    for move, value in steps:
        at += move
        history.record(at, None if value is None else float(value))
        assert history.spread() == spread_found_again(history)
        history.prune(at + 1)
        assert history.spread() == spread_found_again(history)


def extremes_kept_right(history: FieldHistory) -> None:
    """The extremes a history keeps, when it says it knows them, are those of its values,
    and it knows them only while no null or text value is kept (its usual path's proof)."""
    codes = history.tolist()[1::2]
    if history._hi == history_module.NULL_KEPT:  # the numbers kept are counted right
        assert history._running is not None and -math.inf not in codes
        assert history._lo == sum(v == v for v in codes)
    if history._hi < 0:
        return
    assert all(v == v and v != -math.inf for v in codes)
    assert history[history._hi] == max(codes) and history[history._lo] == min(codes)


@settings(max_examples=examples(300), deadline=None)
@given(st.sampled_from(HORIZONS), history_steps)
def test_a_history_no_change_rule_reads_keeps_its_queues_and_the_usual_path(
        horizon: float, steps: list[tuple[str, int, Any, float, int]]) -> None:
    """As the engine records a field that only thresholds or `missing` read: ``spread`` is
    never asked. The queues are those of the model after every message, and the extremes
    the history finds by itself (for its usual path) are always right."""
    history, model, now = FieldHistory(horizon), ModelHistory(horizon), 100.0
    for action, move, value, _other, run in steps:
        at = now + move
        if action != "record":
            history.prune(at)
            model.prune(at)
            continue
        now = record_run(history, model, at, value, run, now,
                         lambda h: queues_right(h, model))


def queues_right(history: FieldHistory, model: ModelHistory) -> None:
    extremes_kept_right(history)
    assert history.all == model.all
    assert history.nonnull == model.nonnull
    assert history.newest() == (model.nonnull[-1][1] if model.nonnull else None)


@pytest.mark.parametrize("horizon", [0.0, 600.0])
def test_a_field_no_change_rule_reads_takes_the_usual_path(horizon: float) -> None:
    """A field read only by thresholds (the engine never asks its ``spread``) records a
    number newer than the rest the usual way (``record`` says True) from its second
    message on, and again from the first number after a null or a text value has left its
    queues; not the general path at every message, as it did."""
    history = FieldHistory(horizon)
    assert history.record(0.0, 5.0) is False  # the first: nothing to be usual about
    assert [history.record(float(t), 5.0 + t % 3) for t in range(1, 20)] == [True] * 19
    assert history.record(20.0, None) is False
    assert history.record(21.0, "error") is False
    usual = [history.record(float(t), 1.0) for t in range(22, 40)]
    if horizon > 0:  # the null and the text are in the window until it slides past them
        assert usual == [False] * 18
    else:  # gone from both queues once 12 numbers came after them
        assert usual == [False] * 12 + [True] * 6
    assert history.newest() == 1.0 and history.spread() == spread_found_again(history)

@settings(max_examples=examples(300), deadline=None)
@given(st.sampled_from(HORIZONS), history_steps)
def test_extremes_kept_in_running_order_follow_the_values_as_they_come_and_go(
        horizon: float, steps: list[tuple[str, int, Any, float, int]]) -> None:
    """Past ``LONG`` numbers a history keeps its extremes in running order (``_Running``).
    With ``LONG`` made 2, so that the streams of the model test meet it at once: after
    every message and prune, the spread and the extremes kept are those of the values the
    array holds, and the queues and window are the model's."""
    with mock.patch.object(history_module, "LONG", 2):
        history, model, now = FieldHistory(horizon), ModelHistory(horizon), 100.0

        def right(history: FieldHistory) -> None:
            extremes_kept_right(history)
            spread_right(history)
            extremes_kept_right(history)

        for action, move, value, _other, run in steps:
            at = now + move
            if action == "record":
                now = record_run(history, model, at, value, run, now, right)
            else:
                history.prune(at)
                model.prune(at)
                right(history)
            same(history, model, now)


@pytest.mark.parametrize("seed", range(4))
def test_a_long_window_of_wandering_numbers_keeps_its_spread_and_extremes_right(
        seed: int) -> None:
    """Numbers that wander (runs up, runs down, jumps, repeats) through a window of about
    100 (past ``LONG``), with a null, a text value or a late message now and then: after
    every message and prune, the spread and the extremes kept are those of the values the
    array holds. Many distinct values, so that every entry the running order keeps or drops
    matters (the model property's streams hold few)."""
    rng = random.Random(seed)
    history, value, step = FieldHistory(100.0), 25.0, 0.0
    for k in range(3000):
        if k % 40 == 0:
            step = rng.choice([-0.5, -0.1, 0.0, 0.1, 0.5])
        value = round(value + step + rng.choice([0.0, 0.0, 0.3, -0.3, 4.0, -4.0]), 1)
        odd = rng.random() if k > 1500 else 1.0
        at, recorded = float(k), value
        if odd < 0.004:
            recorded = None
        elif odd < 0.006:
            recorded = "on"  # type: ignore[assignment]
        elif odd < 0.01:
            at = k - rng.randint(1, 30) - 0.5  # late
        history.record(at, recorded)
        extremes_kept_right(history)
        assert history.spread() == spread_found_again(history), k
        if k % 7 == 0:
            history.prune(float(k))
            extremes_kept_right(history)
            assert history.spread() == spread_found_again(history), k


@pytest.mark.parametrize(("every", "within"),
                         [(7, 600.0), (60, 600.0), (50, 600.0), (60, 900.0)])
def test_a_field_that_few_messages_carry_keeps_its_numbers_in_running_order(
        every: int, within: float, monkeypatch: pytest.MonkeyPatch) -> None:
    """A field with a number in one message of ``every`` (a null in the others), read by a
    `change` rule within 10 (or 15) minutes, one message a second: its window of ~600
    entries keeps its numbers in running order beside the nulls, so the spread is a lookup,
    not passes over the window at each message; and it is right after every message and
    prune, as the numbers wander and the extremes leave the window. The queues and the
    window are the model's (the 12 newest numbers are found from the oldest entry when
    they begin near it, with 10 minutes; from the newest otherwise).

    Once the window is full no message builds the running order again; and with ~10
    numbers in the window (one message in 60 within 10 minutes: the 12 newest numbers begin
    at the oldest entry kept) none searches it for where they begin: the costs that the
    running order and its count of numbers saved."""
    rng = random.Random(every)
    history, value = FieldHistory(within), 50.0
    model = ModelHistory(within)
    in_order = 0
    work = {"built": 0, "searched": 0}
    build, search = FieldHistory._start_running, FieldHistory._value_at

    def counted_build(self: FieldHistory) -> int:
        work["built"] += 1
        return build(self)

    def counted_search(self: FieldHistory, before: int, count: int) -> int:
        work["searched"] += 1
        return search(self, before, count)

    monkeypatch.setattr(FieldHistory, "_start_running", counted_build)
    monkeypatch.setattr(FieldHistory, "_value_at", counted_search)
    for k in range(3000):
        recorded = None
        if k % every == 0:
            value = round(value + rng.choice([-3.0, -1.0, 0.0, 1.0, 2.5]), 1)
            recorded = value
        at = float(k)
        model.record(at, recorded)
        if not history.record(at, recorded):
            history.prune(at)
            model.prune(at)
        assert history.spread() == spread_found_again(history), k
        extremes_kept_right(history)
        if k % 50 == 0 or k % every == 1:
            same(history, model, at)
            assert history.times() == model.remembered(), k  # kept: no more, no less
        if k > within:
            in_order += history._running is not None
        if k == within:  # the window is full
            work.update(built=0, searched=0)
    assert in_order == 3000 - within - 1  # from a full window on, never passes again
    assert work["built"] == 0
    if (every, within) == (60, 600.0):  # (with more numbers, those past the first 48
        assert work["searched"] == 0  # entries are searched for, in C)
    assert history._hi == history_module.NULL_KEPT


def test_a_prune_that_drops_the_oldest_of_13_keeps_the_extremes_where_they_moved() -> None:
    """13 entries, the oldest inside a 20 s window, the extremes not the oldest: a prune
    moves the window past the oldest, and the extremes kept move down one entry with the
    rest (``_shorten``'s quick drop; only a prune or a copy reaches it with the extremes
    known, so the properties meet it only now and then)."""
    history = FieldHistory(20.0)
    for t, value in enumerate([4.5, 1.5, 9.5] + [4.5] * 10):
        history.record(float(t), value)
    assert len(history) == 2 * 13
    history.prune(21.0)
    assert len(history) == 2 * 12
    extremes_kept_right(history)
    assert history._hi >= 0  # (known: the next message takes the usual path)
    assert history.spread() == 8.0 == spread_found_again(history)


def test_the_next_largest_found_at_the_newest_entry_of_a_long_window() -> None:
    """A window of exactly 128 numbers (a power of two: the search from the oldest steps to
    its very end) whose largest leaves as a message comes, the next largest being that
    newest message: found, and the spread right."""
    history = FieldHistory(127.0)
    for t in range(128):
        history.record(float(t), 10.0 if t == 0 else 0.0 if t == 1 else 1.0)
    history.record(127.0, 1.0)  # the same message again: the extremes are found anew
    history.record(128.0, 5.0)  # 10 (at 0 s) leaves the window; 5 is the largest now
    assert len(history) == 2 * 128
    assert history.spread() == 5.0 == spread_found_again(history)
    extremes_kept_right(history)


@pytest.mark.parametrize("gap", [1.0, 0.1])
@pytest.mark.parametrize("slope", [-0.01, 0.01])
def test_a_steady_rise_or_fall_over_a_long_window_takes_the_usual_path(
        gap: float, slope: float) -> None:
    """A fuel level that falls steadily (or a counter that rises), read by a `change`
    rule within 10 minutes: its oldest value is an extreme, and it leaves at every message.
    Once the window is full, every message takes the usual path (``record`` says True) and
    the spread stays right, at 1 message/s (600 numbers) and at 10/s (past the window's
    cap, 4,096): the extremes were found again by passes over the whole window at every
    message, 40 us at 600 numbers and 0.4-0.6 ms at the cap."""
    history, count = FieldHistory(600.0), int(1500 / gap)
    usual = []
    for k in range(count):
        usual.append(history.record(k * gap, 1000.0 + slope * k))
        if k % 97 == 0 or k == count - 1:
            assert history.spread() == spread_found_again(history), k
    full = int(600 / gap) + 2 if gap >= 1 else WINDOW_CAP + DEPTH + 1
    assert usual[full + 1:] == [True] * (count - full - 1)
    assert len(history) <= 2 * (WINDOW_CAP + DEPTH)
    assert history.spread() == pytest.approx(abs(slope) * (len(history) // 2 - 1))


@pytest.mark.parametrize("horizon,window", [(0.0, set()), (5.0, set()),
                                            (60.0, set(range(951, 1012)))])
def test_a_field_that_stops_arriving_keeps_its_queues_not_every_null_since(
        horizon: float, window: set[int]) -> None:
    """12 values, then a null in each of 1,000 messages: the queues need the 12 values and
    the 12 newest nulls (and a window its span); every null since was kept, 16 bytes and a
    longer scan per message, for as long as the field stayed away."""
    history = FieldHistory(horizon)
    for t in range(1012):
        history.record(float(t), 20.0 if t < DEPTH else None)
        history.prune(float(t))
    assert history.times() == {float(t) for t in {*range(12), *range(1000, 1012), *window}}
    assert history.nulls(DEPTH) == DEPTH and history.newest() == 20.0


@pytest.mark.parametrize("nulls,within", [(False, 0.0), (True, 0.0), (False, 30.0)])
def test_a_text_field_forgets_each_text_once_its_queues_let_it_go(nulls: bool,
                                                                  within: float) -> None:
    """Text is kept aside from the array of numbers; a status field sends one in every
    message (here every other one, between nulls; or in bursts of 20 a minute apart, each
    burst leaving a 30 s window at once), and each must go once its entry leaves both
    queues and the window, or the field grows by a text per message for ever."""
    from tests.test_history_memory import traced_bytes

    def at(k: int) -> float:
        return (k // 20) * 60.0 + (k % 20) * 0.1 if within else float(k)

    def histories() -> list[FieldHistory]:
        out = [FieldHistory(within) for _ in range(20)]
        for history in out:
            for k in range(400):
                history.record(at(k), None if nulls and k % 2 else f"state {k % 7}")
                history.prune(at(k))
        return out

    assert histories()[0].newest() == f"state {(398 if nulls else 399) % 7}"
    per_field = traced_bytes(histories) / 20
    assert per_field <= 4_000, per_field  # 2.5 KB here: up to 24 texts and their dict; 25 to
    # 50 KB when the texts of dropped entries were kept


def test_a_window_shortened_by_time_alone_drops_every_value_that_left_it() -> None:
    history = FieldHistory(20.0)
    for t in range(100, 119):  # 19 values, all within 20 s
        history.record(float(t), float(t))
    history.prune(130.0)  # the window now begins at 110: 100 to 106 are in no queue
    assert history.times() == {float(t) for t in range(107, 119)}


@pytest.mark.parametrize("old,within,kept,window_from", [
    (20.0, 5.0, 106, 112), (20.0, 1.0, 106, 116), (20.0, 30.0, 100, 100), (1.0, 30.0, 106, 116)])
def test_a_reload_to_another_window_keeps_what_the_new_one_reaches(
        old: float, within: float, kept: int, window_from: int) -> None:
    """18 values 1 s apart, reloaded with another `within`: the values the new window and
    the queues reach, no more, and a longer window does not reach back past what the old
    one had already let go."""
    history = FieldHistory(old)
    for t in range(100, 118):
        history.record(float(t), float(t))
    history = history.rehorizoned(within)
    assert history.times() == {float(t) for t in range(kept, 118)}
    assert [t for t, _ in history.window or []] == [float(t) for t in range(window_from, 118)]


def test_a_reload_that_drops_a_window_keeps_the_last_value_before_its_nulls() -> None:
    """A `change` field holding a full window (one value, then 4107 nulls) loses its
    `change` rule in a reload: at the next message the value is still the newest."""
    history = FieldHistory(10_000.0)
    for t in range(WINDOW_CAP + DEPTH):
        history.record(float(t), 7.0 if t == 0 else None)
    history = history.rehorizoned(0.0)
    history.record(float(WINDOW_CAP + DEPTH), None)
    assert history.newest() == 7.0 and history.times() == {0.0, *map(float, range(4097, 4109))}


def test_a_history_made_without_a_horizon_keeps_no_window() -> None:
    history = FieldHistory()
    for t in range(30):
        history.record(float(t), float(t))
    assert history.window is None and len(history) == 2 * DEPTH


def test_a_window_under_a_second_forgets_what_a_prune_leaves_behind() -> None:
    """`within: 500ms`, the field silent while the entity's other fields go on: a prune at
    10 s leaves no value in the window (a sub-second horizon is a horizon too)."""
    history = FieldHistory(0.5)
    history.record(0.0, 1.0)
    history.record(0.2, 5.0)
    history.prune(10.0)
    assert history.window == []
    assert history.nonnull == [(0.0, 1.0), (0.2, 5.0)]  # the queues keep them


def test_a_window_full_of_nulls_keeps_the_12_newest_values_before_them() -> None:
    """A `change` field whose device sends 12 values, then 5,000 messages without it, all
    within the window: the cap on the window (4,108 entries) drops nulls, not the values of
    the queue without gaps; memory stays bounded by the cap."""
    history = FieldHistory(100_000.0)
    for t in range(DEPTH):
        history.record(float(t), float(t))
    for t in range(DEPTH, DEPTH + 5000):
        history.record(float(t), None)
    assert history.nonnull == [(float(t), float(t)) for t in range(DEPTH)]
    assert history.newest() == float(DEPTH - 1)
    assert [t for t, _ in history.all] == [float(t) for t in range(5000, 5012)]
    assert len(history) <= 2 * (WINDOW_CAP + 2 * DEPTH)


@pytest.mark.parametrize("within,apart", [(10_000.0, 1.0), (1.0, 1e-4)])
def test_a_window_keeps_at_most_the_newest_4108_values(within: float, apart: float) -> None:
    history = FieldHistory(within)
    for t in range(WINDOW_CAP + 500):
        history.record(t * apart, float(t % 50))
    window = history.window or []
    assert len(window) == WINDOW_CAP + DEPTH
    assert window[0][0] == (500 - DEPTH) * apart and window[-1][0] == (WINDOW_CAP + 499) * apart


def test_a_window_under_a_second_keeps_every_value_within_it() -> None:
    """`within: 500ms` on a stream of 100 messages a second: 50 values in the window, far
    more than the 12 the queues keep."""
    history = FieldHistory(0.5)
    for t in range(100):
        history.record(t / 100, 50.0 - t)
    assert [t for t, _ in history.window or []] == [t / 100 for t in range(49, 100)]
    assert history.largest_change(0.49, True)[0] == 50.0


# ---- the alert state table --------------------------------------------------------------


@pytest.mark.parametrize("steps,states,notices", [
    # (holds, t) sequence -> states after each step, notices in order
    ([(True, 0)], [FIRING], ["firing"]),
    ([(True, 0), (False, 5)], [FIRING, RESOLVED], ["firing", "resolved"]),
    ([(False, 0), (False, 5)], [INACTIVE, INACTIVE], []),
])
def test_state_table_without_for(steps: list[tuple[bool, float]], states: list[str],
                                  notices: list[str]) -> None:
    alert = Alert(rule(above(1)), "fleet/1")
    seen, got = [], []
    for holds, t in steps:
        got += alert.step(holds, t)
        seen.append(alert.state)
    assert seen == states and got == notices


def test_pending_holds_its_start_and_fires_after_for() -> None:
    alert = Alert(rule(above(1), for_=60.0), "fleet/1")
    assert alert.step(True, 0) == [] and alert.state == PENDING and alert.since == 0
    assert alert.deadline() == 60
    assert alert.step(True, 59) == [] and alert.state == PENDING
    assert alert.step(True, 60) == ["firing"] and alert.since == 0


def test_a_break_while_pending_restarts_for() -> None:
    alert = Alert(rule(above(1), for_=60.0), "fleet/1")
    alert.step(True, 0)
    alert.step(False, 30)
    assert alert.state == INACTIVE
    alert.step(True, 40)
    assert alert.step(True, 90) == [] and alert.step(True, 100) == ["firing"]


def test_repeat_never_and_repeat_due() -> None:
    never = Alert(rule(above(1), repeat=None), "e")
    never.step(True, 0)
    assert never.step(True, 10**7) == [] and never.deadline() is None
    hourly = Alert(rule(above(1), repeat=3600.0), "e")
    hourly.step(True, 0)
    assert hourly.step(True, 3599) == [] and hourly.step(True, 3600) == ["repeat"]
    assert hourly.deadline() == 7200


def test_an_alert_state_that_does_not_exist_is_refused() -> None:
    with pytest.raises(ValueError, match="'exploded' is not a valid AlertState"):
        Alert(rule(above(1)), "e", state="exploded")  # type: ignore[arg-type]


@pytest.mark.parametrize("state", list(AlertState))
def test_a_signal_the_table_does_not_have_raises_naming_state_and_signal(
        state: AlertState) -> None:
    """The table is (state, signal) -> (next, notice); a pair it lacks is a bug."""
    missing = [signal for signal in Signal if (state, signal) not in TABLE]
    assert missing, state  # every state has signals that cannot reach it
    for signal in missing:
        alert = Alert(rule(above(1), for_=60.0), "e", state=state)
        with pytest.raises(RuntimeError, match=f"no transition from state '{state.value}' "
                                               f"on '{signal.value}'"):
            alert._apply(signal, 0.0, [])


def test_clearing_is_a_state_of_its_own_shown_as_firing() -> None:
    alert = Alert(rule(above(1), clear_for=60.0), "e")
    alert.step(True, 0)
    alert.step(False, 10)
    assert alert.state is AlertState.CLEARING and alert.state.shown is AlertState.FIRING
    assert alert.to_data()["state"] == "firing" and alert.to_data()["clearing_since"] == 10
    again = Alert.from_data(alert.rule, "e", alert.to_data())
    assert again.state is AlertState.CLEARING and again.clearing_since == 10
    assert again.step(False, 70) == ["resolved"] and again.state is AlertState.RESOLVED


# ---- what a restart reads back (the state file's `data` column) ------------------------


def flappy(**options: object) -> s.Rule:
    return rule(above(1), clear_for=30.0, repeat=3600.0, severity="critical",
                labels={"team": "cold"}, flapping=s.Flapping(3, 600.0), **options)


def test_the_saved_alert_is_written_field_by_field() -> None:
    """The format a restart (and an older or newer alertd) reads: every key, every value."""
    alert = Alert(flappy(), "fleet/1")
    alert.field, alert.value = "v", 7.5
    alert.step(True, 100.0)  # fires (for: 0)
    alert.step(False, 110.0)  # clearing
    alert.shift = 2.5
    assert alert.to_data() == {
        "state": "firing", "since": 100.0, "clearing_since": 110.0, "last_notified": 100.0,
        "notified_state": "firing", "flapping": False, "changes": [100.0], "field": "v",
        "value": 7.5, "severity": "critical", "labels": {"team": "cold"}, "started": 100.0,
        "shift": 2.5}
    alert.step(False, 140.0)  # resolved
    data = alert.to_data()
    assert (data["state"], data["since"], data["clearing_since"], data["notified_state"],
            data["changes"], data["started"]) == ("resolved", 140.0, None, "resolved",
                                                  [100.0, 140.0], 100.0)


def test_a_saved_alert_is_read_back_field_by_field() -> None:
    data = {"state": "firing", "since": 100.0, "clearing_since": 110.0,
            "last_notified": 105.0, "notified_state": "resolved", "flapping": True,
            "changes": [100, 104.5], "field": "v", "value": 7.5, "severity": "critical",
            "labels": {"team": "cold"}, "started": 90.0, "shift": 2.5}
    alert = Alert.from_data(flappy(), "fleet/1", data)
    assert (alert.rule.name, alert.entity, alert.state, alert.since, alert.clearing_since,
            alert.last_notified, alert.notified_state, alert.flapping, alert.field,
            alert.value, alert.started, alert.shift) == (
        "r", "fleet/1", AlertState.CLEARING, 100.0, 110.0, 105.0, AlertState.RESOLVED, True,
        "v", 7.5, 90.0, 2.5)
    assert alert.flap is not None and list(alert.flap.changes) == [100.0, 104.5]
    assert all(type(t) is float for t in alert.flap.changes)
    assert alert.to_data() == data | {"changes": [100.0, 104.5]}


def test_a_saved_alert_with_keys_missing_gets_the_defaults() -> None:
    """Rows written by older versions lack keys: each has a default, and `started` falls
    back to `since`."""
    alert = Alert.from_data(flappy(), "fleet/1", {})
    assert (alert.state, alert.since, alert.clearing_since, alert.last_notified,
            alert.notified_state, alert.flapping, alert.field, alert.value, alert.started,
            alert.shift) == (AlertState.INACTIVE, 0.0, None, None, None, False, "", None, 0.0,
                             0.0)
    assert alert.flap is not None and not alert.flap.changes
    alert = Alert.from_data(flappy(), "fleet/1", {"state": "pending", "since": 40})
    assert (alert.state, alert.since, alert.started) == (AlertState.PENDING, 40.0, 40.0)
    assert type(alert.since) is float and type(alert.started) is float


def test_a_saved_clearing_time_counts_only_for_a_firing_alert() -> None:
    pending = Alert.from_data(flappy(), "e", {"state": "pending", "clearing_since": 5.0})
    assert pending.state is AlertState.PENDING and pending.clearing_since is None
    firing = Alert.from_data(flappy(), "e", {"state": "firing", "clearing_since": None})
    assert firing.state is AlertState.FIRING


def test_a_saved_alert_in_a_state_that_does_not_exist_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown alert state 'exploded'"):
        Alert.from_data(flappy(), "e", {"state": "exploded"})


def test_flapping_saved_for_a_rule_that_no_longer_flaps_is_dropped() -> None:
    """A reload that removed `flapping:` must not hold the alert's notices back for ever."""
    alert = Alert.from_data(rule(above(1)), "e", {"state": "firing", "flapping": True,
                                                  "changes": [1.0, 2.0]})
    assert alert.flap is None and not alert.flapping
    assert alert.to_data()["flapping"] is False and alert.to_data()["changes"] == []


def test_the_fingerprint_changes_with_everything_a_restart_needs() -> None:
    alert = Alert(flappy(), "e")
    seen = {alert.fingerprint()}
    for holds, t in [(True, 10.0), (False, 20.0), (False, 60.0), (True, 70.0)]:
        alert.step(holds, t)
        assert alert.fingerprint() not in seen
        seen.add(alert.fingerprint())
    alert.flap.changes.append(71.0)  # type: ignore[union-attr]
    assert alert.fingerprint() not in seen


# ---- flapping, step by step -------------------------------------------------------------


def flapper(changes: int = 3, **options: object) -> Alert:
    return Alert(rule(above(1), repeat=3600.0, flapping=s.Flapping(changes, 100.0),
                      **options), "e")


def steps(alert: Alert, timeline: list[tuple[bool, float]]) -> list[list[str]]:
    return [alert.step(holds, t) for holds, t in timeline]


def test_flapping_that_ends_firing_notifies_the_firing_it_held_back() -> None:
    alert = flapper()
    assert steps(alert, [(True, 0), (False, 10), (True, 20), (False, 30), (True, 40)]) == [
        ["firing"], ["resolved"], ["flapping"], [], []]
    assert alert.flapping and alert.deadline() == 140
    # stable since 40: still flapping at 135 (100 s after the change before the last)...
    assert steps(alert, [(True, 135), (True, 139.9)]) == [[], []] and alert.flapping
    # ... and steady exactly `within` after the last change: the firing is told once
    assert alert.step(True, 140) == ["firing"]
    assert not alert.flapping and alert.to_data()["flapping"] is False
    assert alert.notified_state is FIRING and alert.last_notified == 140
    assert alert.deadline() == 140 + 3600  # reminders count from that notice
    # steady again: the next change is told at once
    assert alert.step(False, 150) == ["resolved"]


def test_flapping_that_ends_where_the_last_notice_left_it_says_nothing() -> None:
    alert = flapper()
    assert steps(alert, [(True, 0), (False, 10), (True, 20), (False, 30)]) == [
        ["firing"], ["resolved"], ["flapping"], []]
    assert alert.step(False, 130) == [] and not alert.flapping
    assert alert.notified_state is RESOLVED


@pytest.mark.parametrize("resolved", [True, False])
def test_flapping_that_ends_resolved_after_a_firing_notice(resolved: bool) -> None:
    alert = flapper(changes=4, resolved=resolved)
    told = steps(alert, [(True, 0), (False, 10), (True, 20), (False, 30)])
    assert told == ([["firing"], ["resolved"], ["firing"], ["flapping"]] if resolved else
                    [["firing"], [], ["firing"], ["flapping"]])
    assert alert.notified_state is FIRING
    assert alert.step(False, 130) == (["resolved"] if resolved else [])
    assert alert.notified_state is (RESOLVED if resolved else FIRING)


def test_a_change_exactly_within_old_still_counts_for_flapping() -> None:
    alert = flapper()
    assert steps(alert, [(True, 0), (False, 50), (True, 100)]) == [
        ["firing"], ["resolved"], ["flapping"]]
    other = flapper()
    assert steps(other, [(True, 0), (False, 50), (True, 100.5)]) == [
        ["firing"], ["resolved"], ["firing"]]


# ---- late messages with several rules on the field -----------------------------------


@pytest.mark.parametrize("first", ["no alert", "firing", "pending, unbroken"])
def test_a_late_message_restarts_for_whatever_the_rules_before_it_are(first: str) -> None:
    """Rule b is pending since 0; a reading measured at 10 and received late breaks it, so
    its `for` restarts at 30. Rule a, checked first, is left as it is whatever its state,
    and the moved start is saved for a restart."""
    a = {"no alert": s.Missing(LOC, "v", nulls=3), "firing": above(3),
         "pending, unbroken": s.Threshold(LOC, "v", below=100)}[first]
    engine = Engine([rule(a, name="a", for_=600.0 if first.startswith("pending") else 0.0),
                     rule(above(1), name="b", for_=60.0)], FLEET, 0.0)
    for t in (0.0, 30.0):
        engine.receive(Message("fleet", "1", t, {"v": 5}), t)
    engine.take_changed()
    assert notices(engine.receive(Message("fleet", "1", 10.0, {"v": 0}), 31.0)) == []
    saved = {alert.rule: alert for alert in engine.take_changed()}
    assert saved["b"].data["since"] == 30.0 and saved["b"].state is AlertState.PENDING
    assert notices(engine.on_timer(60.0)) == []
    assert [(n.rule, n.state, n.at) for n in notices(engine.on_timer(90.0))] == [
        ("b", NoticeKind.FIRING, 90.0)]


def test_a_late_message_restarts_for_after_a_silent_rule_that_is_clearing() -> None:
    """quiet (silent, clear_for) is checked first and is clearing when a reading measured
    at 180 arrives late: it is left as it is, and warm's `for` restarts at 360."""
    engine = Engine([rule(s.Silent(LOC, 300.0), name="quiet", clear_for=600.0),
                     rule(above(8), name="warm", for_=600.0)], FLEET, 0.0)
    engine.on_timer(0.0)
    engine.receive(Message("fleet", "1", 0.0, {"v": 9}), 0.0)
    assert [(n.rule, n.state) for n in notices(engine.on_timer(300.0))] == [
        ("quiet", NoticeKind.FIRING)]
    engine.receive(Message("fleet", "1", 360.0, {"v": 9}), 360.0)  # quiet starts clearing
    assert notices(engine.receive(Message("fleet", "1", 180.0, {"v": 5}), 420.0)) == []
    assert [n for n in notices(engine.on_timer(600.0)) if n.rule == "warm"] == []
    assert [(n.rule, n.at) for n in notices(engine.on_timer(960.0)) if n.rule == "warm"] == [
        ("warm", 960.0)]


def test_a_late_message_judges_a_field_read_after_a_virtual_one() -> None:
    """all: [_age below 1h, NAME above 5]: the fields a condition reads are a set, in no fixed
    order; with a NAME that comes after `_age` in it, a late reading that breaks the
    threshold still restarts `for` at the next reading (the moments of NAME are judged)."""
    def fields(name: str) -> list[str]:
        return list(s.condition_fields(s.AllOf(LOC, (s.Threshold(LOC, "_age", below=3600.0),
                                                     s.Threshold(LOC, name, above=5.0)))))
    # a set of two keeps `_age` last whatever comes with it under 1 hash seed in 8 (its slot
    # is the table's last): then any name, which judges the other order
    name = next((f"v{i}" for i in range(100) if fields(f"v{i}")[0] == "_age"), "v0")
    condition = s.AllOf(LOC, (s.Threshold(LOC, "_age", below=3600.0),
                              s.Threshold(LOC, name, above=5.0)))
    engine = Engine([rule(condition, for_=60.0)], FLEET, 0.0)
    for t in (0.0, 30.0):
        engine.receive(Message("fleet", "1", t, {name: 9}), t)
    assert notices(engine.receive(Message("fleet", "1", 10.0, {name: 0}), 31.0)) == []
    assert notices(engine.on_timer(60.0)) == []  # for restarted at 30
    assert [(n.state, n.at) for n in notices(engine.on_timer(90.0))] == [
        (NoticeKind.FIRING, 90.0)]


# ---- the engine ---------------------------------------------------------------------------


def run(engine: Engine, events: list[tuple[float, Message]], until: float,
        extra_wakes: list[float] = ()) -> list[Notification]:  # type: ignore[assignment]
    """Feed events, run timers at their deadlines (and at extra times), like the loop does."""
    out: list[Notification] = []
    wakes = sorted(extra_wakes)

    def timers(upto: float) -> None:
        while True:
            deadline = engine.next_deadline()
            extra = wakes[0] if wakes else None
            candidates = [t for t in (deadline, extra) if t is not None and t <= upto]
            if not candidates:
                return
            now = min(candidates)
            if extra is not None and now == extra:
                wakes.pop(0)
            out.extend(notices(engine.on_timer(now)))

    for at, message in events:
        timers(at)
        out.extend(notices(engine.receive(message, at)))
    timers(until)
    return out


def test_a_message_only_reaches_rules_that_read_its_fields() -> None:
    rules = [rule(above(1), name="reads-v"),
             rule(s.Threshold(LOC, "w", above=1.0), name="reads-w")]
    engine = Engine(rules, FLEET, 0.0)
    engine.receive(Message("fleet", "1", 0.0, {"v": 5}, absent_is_null=False), 0.0)
    entity = engine._entities["fleet/1"]
    assert set(entity.alerts) == {0}  # rule 1 was never evaluated into an alert
    assert set(entity.fields) == {"v"}  # history only for fields carried and read


def test_unknown_source_is_ignored() -> None:
    engine = Engine([rule(above(1))], FLEET, 0.0)
    assert engine.receive(Message("other", "1", 0.0, {"v": 5}), 0.0) == []


values = st.lists(st.tuples(st.integers(1, 600), st.sampled_from([None, 0.0, 2.0, "3", 5.0])),
                  min_size=1, max_size=40)


def timeline(steps: list[tuple[int, object]]) -> list[tuple[float, Message]]:
    at, out = 0.0, []
    for gap, value in steps:
        at += gap
        out.append((at, Message("fleet", "1", at, {"v": value}, absent_is_null=False)))
    return out


@settings(max_examples=examples(150), deadline=None)
@given(values, st.sampled_from([0.0, 30.0, 300.0]), st.sampled_from([0.0, 60.0]),
       st.sampled_from([None, 600.0]), st.lists(st.floats(0, 20000), max_size=20))
def test_notifications_follow_state_changes(steps: list[tuple[int, object]], for_: float,
                                            clear_for: float, repeat: float | None,
                                            wakes: list[float]) -> None:
    make = lambda: Engine([rule(above(1, clear_below=0.5), for_=for_,  # noqa: E731
                                clear_for=clear_for, repeat=repeat)], FLEET, 0.0)
    events = timeline(steps)
    until = events[-1][0] + 5000
    notes = run(make(), events, until)
    # extra wake-ups of the loop change nothing
    assert run(make(), events, until, wakes) == notes
    # firing and resolved alternate, starting with firing; repeats only while firing
    state = "resolved"
    last_firing = None
    for note in notes:
        if note.repeat:
            assert state == "firing" and repeat is not None
            assert last_firing is not None and note.at - last_firing >= repeat - 1e-6
            last_firing = note.at
            continue
        assert note.state != state, f"{note.state} twice in a row"
        state = note.state
        last_firing = note.at if state == "firing" else None
    # ... and they are the notices this timeline must give: the alert ends in the state its
    # newest known value says (`until` is long past `for` and `clear_for`), and with for: 0
    # it fires on the first value above the bound
    holding = [at for at, m in events if m.fields["v"] in (2.0, "3", 5.0)]
    known = [m.fields["v"] for _, m in events if m.fields["v"] is not None]
    if known and known[-1] != 0.0:
        assert state == "firing" and notes, "the newest value holds: the alert must be firing"
    elif not holding:
        assert notes == [], "the value never held"
    elif for_ == 0.0:
        assert notes and state == "resolved", "held once and is clear now: fired and resolved"
    else:
        assert state == "resolved"  # fired and resolved, or never held for `for`
    if for_ == 0.0 and holding:
        assert (notes[0].state, notes[0].at, notes[0].repeat) == ("firing", holding[0], False)


@settings(max_examples=examples(100), deadline=None)
@given(values)
def test_history_never_exceeds_twelve(steps: list[tuple[int, object]]) -> None:
    engine = Engine([rule(s.Missing(LOC, "v", 3, 6))], FLEET, 0.0)
    for at, message in timeline(steps):
        engine.receive(message, at)
        history = engine._entities["fleet/1"].fields["v"]
        assert len(history.all) <= DEPTH and len(history.nonnull) <= DEPTH


@settings(max_examples=examples(100), deadline=None)
@given(st.lists(st.sampled_from([0.0, 2.0]), max_size=30), st.integers(1, 5),
       st.sampled_from([0.0, 60.0, 300.0]))
def test_firing_alert_resolves_once_clear_for_has_passed(before: list[float], clears: int,
                                                         clear_for: float) -> None:
    # any history, then a value above the bound (firing), then a run of clear values
    seq = [*before, 2.0, *[0.0] * clears]
    engine = Engine([rule(above(1), clear_for=clear_for, repeat=None)], FLEET, 0.0)
    events = timeline([(10, v) for v in seq])
    cleared_since = events[-clears][0]
    notes = run(engine, events, cleared_since + clear_for + 1)
    states = [n for n in notes if n.state in ("firing", "resolved")]
    assert [n.state for n in states[-2:]] == ["firing", "resolved"]
    assert round(states[-1].at - cleared_since, 3) == clear_for  # exactly clear_for later


def test_repeat_falls_due_while_clearing() -> None:
    """Found by hypothesis: a reminder due during clear_for must not stall the timers."""
    engine = Engine([rule(above(1), clear_for=600.0, repeat=60.0)], FLEET, 0.0)
    events = [(0.0, Message("fleet", "1", 0.0, {"v": 2}, absent_is_null=False)),
              (30.0, Message("fleet", "1", 30.0, {"v": 0}, absent_is_null=False))]
    notes = run(engine, events, 700.0)
    assert [(n.state, n.at, n.repeat) for n in notes][:3] == [
        ("firing", 0.0, False), ("firing", 60.0, True), ("firing", 120.0, True)]
    assert (notes[-1].state, notes[-1].at) == ("resolved", 630.0)


def test_a_message_seen_again_is_not_counted_twice() -> None:
    history = FieldHistory()
    for t in (1.0, 2.0, 2.0, 3.0, 2.0):  # 2.0 resent, in order and out of order
        history.record(t, None)
    assert [t for t, _ in history.all] == [1.0, 2.0, 3.0]


def test_two_readings_of_one_packet_do_not_turn_a_value_into_a_gap() -> None:
    history = FieldHistory()
    history.record(5.0, 21.5)  # parser A: temperature
    history.record(5.0, None)  # parser B, same measured_at, no temperature
    assert list(history.all) == [(5.0, 21.5)] and history.nulls(1) == 0


def test_a_change_window_edge_never_schedules_a_timer_that_is_already_due() -> None:
    """A window entry exactly `within` old at receipt (Navixy's whole-second msg_time, a
    lagging receipt): the next wake-up must lie after `now`, or on_timer loops forever (the
    demo froze on this at 100% CPU). Run in a thread so that a regression fails, not hangs."""
    import threading

    condition = s.Change(LOC, "fuel", within=600.0, drop=30.0)
    t0 = 1796014278.0
    engine = Engine([rule(condition, name="drain")], FLEET, t0)
    fired = notices(engine.on_timer(t0))  # the listed tracker's first look
    deadlines: list[tuple[float | None, float]] = []

    def feed() -> None:
        for minute, fuel in [(0, 300.0), (8, 290.0), (9, 280.0), (10, 270.0)]:
            now = t0 + 60 * minute + 2.0990161895751953
            fired.extend(notices(engine.receive(Message("fleet", "1", t0 + 60 * minute,
                                                {"fuel": fuel}), now)))
            deadlines.append((engine.next_deadline(), now))
            fired.extend(notices(engine.on_timer(now)))

    worker = threading.Thread(target=feed, daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "on_timer did not return"
    assert all(deadline is None or deadline > now for deadline, now in deadlines)
    assert [(n.rule, n.state, n.value) for n in fired] == [("drain", "firing", 270.0)]


@pytest.mark.parametrize("spacing, within", [(30.0, 600.0), (0.05, 1.0)])
def test_a_drop_holds_while_its_first_value_is_in_the_window_though_12_came_after_it(
        spacing: float, within: float) -> None:
    """A 10-minute window of readings 30 s apart (or a 1-second one of readings 50 ms
    apart) holds more than the 12 newest: a drop from the oldest value (5, neither the
    highest nor the lowest once a 9 came) to 0 holds until that value leaves the window,
    not when the 13th reading pushes it out of the queues."""
    engine = Engine([rule(s.Change(LOC, "v", within=within, drop=5.0), name="fall")],
                    FLEET, 1000.0)
    values = [5.0, 0.0, *[2.0] * 10, 9.0]
    seen = []
    for n, value in enumerate(values):
        t = 1000.0 + spacing * n
        seen += [(x.state, round(x.at, 3)) for x in notices(engine.receive(
            Message("fleet", "1", t, {"v": value}), t))]
    while (due := engine.next_deadline()) is not None and due < 2000:
        seen += [(x.state, round(x.at, 3)) for x in notices(engine.on_timer(due))]
    assert seen == [("firing", 1000.0 + spacing), ("resolved", 1000.0 + within)]


def test_a_reload_carries_null_gaps_and_change_windows_over() -> None:
    """SIGHUP builds a new engine: two nulls seen before it still count towards `nulls: 3`,
    and a drop that began before it still completes within `within` (now longer)."""
    gap = rule(s.Missing(LOC, "fuel", 3), name="gap")
    drain = rule(s.Change(LOC, "level", within=600.0, drop=30.0), name="drain")
    old = Engine([gap, drain, rule(above(8), name="hot")], FLEET, 0.0)
    for t, fuel, level in [(10.0, 5.0, 300.0), (20.0, None, 290.0), (30.0, None, 280.0)]:
        assert old.receive(Message("fleet", "1", t, {"fuel": fuel, "level": level}), t) == []
    longer = rule(s.Change(LOC, "level", within=900.0, drop=30.0), name="drain")
    new = Engine([gap, longer], FLEET, 40.0)
    assert new.adopt(old, 40.0) == 1
    made = notices(new.receive(Message("fleet", "1", 50.0, {"fuel": None, "level": 269.0}), 50.0))
    assert sorted((n.rule, n.state) for n in made) == [("drain", "firing"), ("gap", "firing")]
    fresh = Engine([gap, longer], FLEET, 40.0)  # without adopt: nothing to go on
    assert fresh.receive(Message("fleet", "1", 50.0, {"fuel": None, "level": 269.0}), 50.0) == []


def test_a_rule_added_by_a_reload_fires_on_a_status_that_held_before_it() -> None:
    """A tracker blocked before a reload is still blocked after it, with no new status: an
    `any` of that status and a threshold, added by the reload, fires at the tracker's next
    message though the threshold does not hold (the status part is not compiled into a
    part that only a new status could start)."""
    old = Engine([rule(above(8), name="hot")], FLEET, 0.0)
    old.receive(StatusChanged("fleet", "1", "blocked"), 5.0)
    either = rule(s.AnyOf(LOC, (s.Status(LOC, ("blocked",)), above(90))), name="stuck")
    new = Engine([either], FLEET, 10.0)
    new.adopt(old, 10.0)
    (note,) = notices(new.receive(Message("fleet", "1", 20.0, {"v": 20.0}), 20.0))
    assert (note.rule, note.state) == ("stuck", "firing")


def test_absent_fields_are_nulls_only_for_devices_a_missing_rule_reaches() -> None:
    """A `missing` rule limited to device a records no nulls for device b, whose readings
    lack the field too: when a reload extends the rule to b, b's count starts there, and
    its gap fires after `nulls` readings without the field, not at the first."""
    def reading(entity: str, t: float) -> Message:
        return Message("fleet", entity, t, {"temp": 20.0}, absent_is_null=True)
    warm = rule(above(50), name="warm")
    only_a = rule(s.Missing(LOC, "fuel", 2), name="gap", entities=("a",))
    old = Engine([warm, only_a], FLEET, 0.0)
    fired = [n.entity for t in (10.0, 20.0) for entity in ("a", "b")
             for n in notices(old.receive(reading(entity, t), t))]
    assert fired == ["fleet/a"]
    both = rule(s.Missing(LOC, "fuel", 2), name="gap", entities=("a", "b"))
    new = Engine([warm, both], FLEET, 25.0)
    new.adopt(old, 25.0)
    assert notices(new.receive(reading("b", 30.0), 30.0)) == []  # one null counted, not three
    (note,) = notices(new.receive(reading("b", 40.0), 40.0))
    assert (note.rule, note.entity, note.state) == ("gap", "fleet/b", "firing")


# ---- after a restart: restored alerts and too little data ----------------------------------


def restored(condition: s.Condition, state: str) -> Engine:
    engine = Engine([rule(condition)], FLEET, 0.0)
    engine.restore([StoredAlert("r", "fleet/1", AlertState(state), 0.0, {
        "state": state, "since": 0.0, "started": 0.0, "last_notified": 0.0,
        "notified_state": state})], 0.0)
    return engine


def test_one_null_after_a_restart_does_not_resolve_a_firing_gap() -> None:
    engine = restored(s.Missing(LOC, "v", nulls=3), FIRING)
    assert engine.receive(Message("fleet", "1", 10.0, {"v": None}), 10.0) == []
    assert engine.alerts() == [AlertView("r", "fleet/1", AlertState.FIRING, 0.0)]
    (note,) = notices(engine.receive(Message("fleet", "1", 20.0, {"v": 5}), 20.0))
    assert note.state == "resolved"


def test_n_of_m_stays_undecided_while_it_could_still_hold() -> None:
    engine = restored(s.Missing(LOC, "v", nulls=2, of=4), FIRING)
    assert engine.receive(Message("fleet", "1", 10.0, {"v": None}), 10.0) == []
    assert engine.receive(Message("fleet", "1", 20.0, {"w": 1}), 20.0) == []  # a null
    assert engine.alerts() == [AlertView("r", "fleet/1", AlertState.FIRING, 0.0)]


def test_a_composite_resolves_once_any_part_knows_and_none_holds() -> None:
    either = s.AnyOf(LOC, (above(10), s.Threshold(LOC, "w", above=5)))
    engine = restored(either, FIRING)
    assert engine.receive(Message("fleet", "1", 10.0, {"x": 1}), 10.0) == []  # nothing known
    (note,) = notices(engine.receive(Message("fleet", "1", 20.0, {"v": 3}), 20.0))  # w: no data
    assert note.state == "resolved"


def test_a_firing_notice_its_resolved_notice_and_the_alert_list_show_one_since() -> None:
    engine = Engine([rule(above(1))], FLEET, 0.0)
    (fired,) = notices(engine.receive(Message("fleet", "1", 100.9, {"v": 5}), 101.2))
    assert engine.alerts() == [AlertView("r", "fleet/1", AlertState.FIRING, fired.since)]
    assert [alert.since for alert in engine.take_changed()] == [fired.since]
    # more lag now
    (resolved,) = notices(engine.receive(Message("fleet", "1", 150.0, {"v": 0}), 150.9))
    assert resolved.since == fired.since


@pytest.mark.parametrize("package", ["alertd.engine", "alertd.notify", "alertd.config"])
def test_the_pure_packages_load_no_io_library_at_run_time(package: str) -> None:
    """Imported in a fresh interpreter: nothing of trio, yaml, sqlite3 or apprise comes
    along, however indirectly (the AST check above sees direct imports only)."""
    import subprocess
    import sys

    code = ("import sys, " + package + "; print(' '.join(sorted(m for m in sys.modules if "
            "m.split('.')[0] in ('trio', 'trio_websocket', 'yaml', 'sqlite3', '_sqlite3', "
            "'apprise', 'requests'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=PACKAGE.parent)
    assert done.stdout.strip() == ""


def test_a_restored_alert_stays_while_its_field_has_not_been_seen_since_the_restart() -> None:
    # a message that says nothing of the field (an ELEMENT reading of other fields) is no
    # evidence: the gap and the drop restored as firing stay firing until the field reports
    for condition in (s.Missing(LOC, "v", nulls=3), s.Change(LOC, "v", 600.0, drop=5.0)):
        engine = restored(condition, AlertState.FIRING)
        assert engine.receive(Message("fleet", "1", 10.0, {"w": 1}, absent_is_null=False),
                              10.0) == []
        assert engine.alerts() == [AlertView("r", "fleet/1", AlertState.FIRING, 0.0)], condition


def test_a_late_message_older_than_the_kept_nulls_and_silent_on_the_field_is_harmless() -> None:
    # the gap's history keeps the 12 newest entries; a late message measured before all of
    # them says nothing of the field: judged on an empty history it breaks nothing
    engine = Engine([rule(s.Missing(LOC, "v", nulls=1), for_=3600.0)], FLEET, 0.0)
    for t in range(10, 140, 10):
        engine.receive(Message("fleet", "1", float(t), {"v": None}, absent_is_null=False),
                       float(t))
    assert engine.receive(Message("fleet", "1", 15.0, {"w": 1}, absent_is_null=False),
                          140.0) == []
    assert [a.state for a in engine.alerts()] == [AlertState.PENDING]
    (fired,) = notices(engine.on_timer(3620.0))
    assert fired.state == NoticeKind.FIRING


def test_n_of_n_stays_undecided_after_a_restart_while_every_message_so_far_was_null() -> None:
    # 2 of 2 after one null: the next message could still make it hold
    engine = restored(s.Missing(LOC, "v", nulls=2, of=2), AlertState.FIRING)
    assert engine.receive(Message("fleet", "1", 10.0, {"v": None}), 10.0) == []
    assert engine.alerts() == [AlertView("r", "fleet/1", AlertState.FIRING, 0.0)]


def test_nulls_after_a_restart_stop_a_clearing_gap_from_resolving() -> None:
    # restored firing and clearing (clear_for running since 0): a null makes the gap hold
    # again, so it keeps firing past the end of clear_for
    engine = Engine([rule(s.Missing(LOC, "v", nulls=1), clear_for=600.0)], FLEET, 0.0)
    engine.restore([StoredAlert("r", "fleet/1", AlertState.FIRING, 0.0, {
        "state": "firing", "since": 0.0, "started": 0.0, "clearing_since": 0.0,
        "last_notified": 0.0, "notified_state": "firing"})], 0.0)
    assert engine.receive(Message("fleet", "1", 10.0, {"v": None}), 10.0) == []
    assert engine.on_timer(700.0) == []
    assert engine.alerts() == [AlertView("r", "fleet/1", AlertState.FIRING, 0.0)]


def test_a_gap_that_can_no_longer_hold_after_a_reload_resolves() -> None:
    # fired on 2 nulls of 4 after a value; reloaded as 5 of 5, the value kept in the history
    # means it cannot hold: the next null decides, and the alert resolves
    old = Engine([rule(s.Missing(LOC, "v", nulls=2, of=4))], FLEET, 0.0)
    for t, v in ((10.0, 1), (20.0, None), (30.0, None)):
        old.receive(Message("fleet", "1", t, {"v": v}), t)
    saved = old.take_changed()
    assert [a.state for a in old.alerts()] == [AlertState.FIRING]
    new = Engine([rule(s.Missing(LOC, "v", nulls=5, of=5))], FLEET, 40.0)
    new.adopt(old, 40.0)
    assert new.restore(saved, 40.0) == 1
    (resolved,) = notices(new.receive(Message("fleet", "1", 40.0, {"v": None}), 40.0))
    assert resolved.state == NoticeKind.RESOLVED


def test_a_fall_is_measured_from_the_earliest_of_equal_peaks() -> None:
    """The largest change names the value it started from and when: of equal peaks the
    earliest (the model property's rule, here on the one case that decides it)."""
    history = FieldHistory(100.0)
    for at, value in ((1.0, 5.0), (2.0, 5.0), (3.0, 1.0)):
        history.record(at, value)
    assert history.largest_change(-math.inf, True) == (4.0, 1.0, 1.0, (5.0, 1.0, 3.0))
    rising = FieldHistory(100.0)
    for at, value in ((1.0, 1.0), (2.0, 1.0), (3.0, 5.0)):
        rising.record(at, value)
    assert rising.largest_change(-math.inf, False) == (4.0, 1.0, 5.0, (1.0, 1.0, 3.0))


def test_a_field_whose_numbers_are_larger_than_its_times_is_trimmed_as_any_other() -> None:
    """A counter or an epoch stamp as a value: whether the oldest entry is out of the window
    is a question of its time, never of its value."""
    history = FieldHistory(5.0)
    for at in range(200):
        history.record(float(at), 2e12 + at)
    assert len(history.times()) == DEPTH  # the 12 newest (the 5 s window is within them)


def test_a_missing_rule_waits_quietly_for_a_field_a_tracker_has_never_sent() -> None:
    """Navixy messages (and ELEMENT packets) lack what they do not carry, without a null:
    a `missing` rule on a field never sent has no history to read, and says nothing until
    the field's nulls come."""
    engine = Engine([rule(s.Missing(LOC, "fuel", 2))], FLEET, 0.0)
    for t in (1.0, 2.0, 3.0):
        assert notices(engine.receive(Message("fleet", "1", t, {"speed": 5.0},
                                              absent_is_null=False), t)) == []
    assert notices(engine.receive(Message("fleet", "1", 4.0, {"fuel": None},
                                          absent_is_null=False), 4.0)) == []
    fired = notices(engine.receive(Message("fleet", "1", 5.0, {"fuel": None},
                                           absent_is_null=False), 5.0))
    assert [(n.rule, n.state) for n in fired] == [("r", "firing")]


@pytest.mark.parametrize("values", [
    [float(t) for t in range(60)],  # rising: the smallest leaves first
    [float(60 - t) for t in range(60)],  # falling: the largest leaves first
    [float((t * 7) % 11) for t in range(60)],  # mixed
])
def test_a_long_window_drops_what_leaves_it_and_keeps_its_extremes(values: list[float]) -> None:
    """A 20 s window of 1 s readings holds 20 entries, more than a queue: each new reading
    pushes the oldest out, and a pause pushes out all but the 12 newest at once. What stays
    and the spread are those of a history trimmed from scratch (``_trim``)."""
    history = FieldHistory(20.0)
    at = 0.0
    for n, value in enumerate(values):
        at += 1.0 if n != 40 else 100.0  # a pause: every entry but the queue leaves
        history.record(at, value)
        kept = history.tolist()
        assert history.spread() == spread_found_again(history)
        times = kept[0::2]
        newest = times[-1]
        assert all(t >= newest - 20.0 for t in times[:-DEPTH]), times  # out of the window
        assert len(times) == min(n + 1, max(DEPTH, sum(t >= newest - 20.0 for t in times)))
