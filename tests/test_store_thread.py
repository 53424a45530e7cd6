"""The state store's writes run off the event loop (issue 15): while a commit takes long (a
slow disk's fsync, injected here as a COMMIT that waits for the test), the daemon goes on
receiving and evaluating frames; what it evaluated meanwhile is written in the next commit,
and a notification still reaches the planner only once its alert change is written.

Real clock and an in-process daemon: the store's thread would race trio's autojump clock,
and the injected commit needs the daemon's own connection."""

from __future__ import annotations

import io
import logging
import sqlite3
import textwrap
import threading
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio

from alertd import app
from alertd.config import load_config
from alertd.config.schema import Config
from alertd.model import AlertState
from alertd.notify.plan import Outgoing
from alertd.simulator.element import FakeElement
from alertd.store import Store
from alertd.store_thread import StoreThread

KEY = "k"
LONGEST = 6.0  # seconds a held COMMIT waits at most (the old code waited this long, blocked)


class SlowCommits:
    """The store's connection, every COMMIT held while ``gate`` is closed (at most
    ``LONGEST`` seconds, then ``overran`` says so): a commit whose fsync takes long."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.gate = threading.Event()
        self.gate.set()
        self.holding = threading.Event()  # a COMMIT is waiting for the gate
        self.overran = False
        self.commits = 0

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql == "COMMIT" and not self.gate.is_set():
            self.holding.set()
            self.overran = not self.gate.wait(LONGEST) or self.overran
        if sql == "COMMIT":
            self.commits += 1
        return self.db.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)


async def until(condition: Callable[[], bool], what: str, seconds: float = 20) -> None:
    with trio.move_on_after(seconds):
        while not condition():
            await trio.sleep(0.02)
        return
    raise AssertionError(f"timed out waiting for {what}")


def warm_config(path: Path, element: FakeElement, options: str) -> Config:
    """A daemon on ``element``'s readings with one rule, ``warm`` (t above 8, with
    ``options``), printing to the console."""
    path.write_text(textwrap.dedent(f"""\
        state: state.db
        sources:
          cold: {{type: element, url: "{element.url}", api_key: {KEY},
                 subscribe: [readings]}}
        channels: {{out: console://}}
        rules:
          - {{name: warm, threshold: {{field: t, above: 8}}, notify: [out], {options}}}
        """))
    return load_config(path, {})


async def test_frames_are_evaluated_while_a_commit_is_slow(tmp_path: Path) -> None:
    element = FakeElement(api_keys={KEY})
    path = tmp_path / "rules.yaml"
    out = io.StringIO()
    async with trio.open_nursery() as nursery:
        await nursery.start(element.serve)
        config = warm_config(path, element, "repeat: never")
        store = Store.open_daemon(config.state)
        slow = SlowCommits(store.db)
        store.db = slow  # type: ignore[assignment]
        runtime = await nursery.start(lambda task_status: app.run(
            config, store, out=out, task_status=task_status))
        await until(lambda: bool(element.connections), "the daemon's connection")
        element.add_reading("room0", {"t": 1})  # the socket's first position is written
        await until(lambda: slow.commits >= 2, "the first replay position written")

        slow.gate.clear()
        element.add_reading("room1", {"t": 9})
        await until(slow.holding.is_set, "room1's alert being committed")
        element.add_reading("room2", {"t": 9})

        def room2_evaluated() -> bool:
            engine = runtime.engine
            return engine is not None and any(
                view.entity.endswith("room2") and view.state is AlertState.FIRING
                for view in engine.alerts())

        await until(lambda: room2_evaluated() or slow.overran, "room2's reading evaluated")
        assert not slow.overran, "the event loop waited for the commit"
        assert "[FIRING]" not in out.getvalue()  # not handed on before its commit

        slow.gate.set()
        await until(lambda: "FIRING: room2" in out.getvalue(), "room2's notification")
        assert "FIRING: room1" in out.getvalue()
        nursery.cancel_scope.cancel()
    store.close()
    again = Store.open(config.state)
    try:
        assert {(a.entity, a.state) for a in again.load_alerts()} == {
            ("cold/room1", AlertState.FIRING), ("cold/room2", AlertState.FIRING)}
    finally:
        again.close()


def test_the_outbox_count_for_metrics_never_waits_for_the_store_thread(tmp_path: Path) -> None:
    """``/metrics`` reads the outbox count on the event loop: while another thread is in a
    store call, it gets the last count at once instead of waiting for that call."""
    store = Store.open(tmp_path / "state.db")
    try:
        store.plan([Outgoing("ops", "json://127.0.0.1:9/", "t", "b")], [], 0.0)
        assert store.queued() == {"ops": 1}
        inside, leave = threading.Event(), threading.Event()

        def call_in_flight() -> None:
            with store.using:
                inside.set()
                leave.wait(LONGEST)

        thread = threading.Thread(target=call_in_flight)
        thread.start()
        try:
            assert inside.wait(LONGEST)
            assert store.queued() == {"ops": 1}
            assert thread.is_alive()  # answered while the other call still held the store
        finally:
            leave.set()
            thread.join()
    finally:
        store.close()


async def test_store_calls_run_one_at_a_time_in_the_order_they_came() -> None:
    """Three tasks' calls, the first held: none overlaps another, and they run in the order
    they were made, each in the store's thread (not the loop's)."""
    thread = StoreThread()
    order: list[int] = []
    running = threading.Lock()
    threads: set[int] = set()
    release = threading.Event()

    def call(number: int) -> int:
        assert running.acquire(blocking=False), "two store calls overlapped"
        try:
            if number == 0:
                release.wait(5)
            order.append(number)
            threads.add(threading.get_ident())
            return number * 10
        finally:
            running.release()

    results: dict[int, int] = {}

    async def make(number: int) -> None:
        results[number] = await thread.run(lambda: call(number))

    try:
        async with trio.open_nursery() as nursery:
            for number in range(3):
                nursery.start_soon(make, number)
                await trio.sleep(0.05)  # each call queued after the one before
            release.set()
    finally:
        thread.close()
    assert order == [0, 1, 2]
    assert results == {0: 0, 1: 10, 2: 20}
    assert threads and threading.get_ident() not in threads


async def test_a_store_call_that_began_finishes_before_a_cancellation_is_raised() -> None:
    """A stop while a write is in the thread: the write is done, not left half-known, and
    the caller sees the cancellation only after it; an error in a call reaches its caller."""
    thread = StoreThread()
    release, done = threading.Event(), threading.Event()

    def slow() -> None:
        release.wait(5)
        done.set()

    try:
        threading.Timer(0.3, release.set).start()
        with trio.move_on_after(0.1) as scope:
            await thread.run(slow)
            await trio.lowlevel.checkpoint()
        assert scope.cancelled_caught
        assert done.is_set()  # cancelled at 0.1 s, yet the call ran to its end (0.3 s)

        def broken() -> None:
            raise sqlite3.OperationalError("database is locked")

        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await thread.run(broken)
        assert await thread.run(lambda: 7) == 7  # the thread goes on after an error
    finally:
        thread.close()


async def test_a_notification_is_printed_before_its_log_line(tmp_path: Path) -> None:
    """The writer plans and prints the notifications it wrote before it logs them (a log
    line costs 30-70 us with the daemon's logging). (When the planner was a task of its
    own, woken by the first notification handed on, trio ran the batch of ready tasks in
    either order, and about half of these notices were logged first until the writer
    yielded once more before logging.)"""
    element = FakeElement(api_keys={KEY})
    path = tmp_path / "rules.yaml"
    out = io.StringIO()
    order: list[str] = []

    class Seen(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            message = record.getMessage()
            if message.startswith("warm cold/room"):
                room = message.split()[1].split("/")[1]
                order.append("printed" if f"FIRING] warm: {room}" in out.getvalue()
                             else "logged first")

    handler = Seen(level=logging.INFO)
    logger = logging.getLogger("alertd")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(element.serve)
            config = warm_config(path, element, "group_wait: 0s")
            store = Store.open_daemon(config.state)
            await nursery.start(lambda task_status: app.run(
                config, store, out=out, task_status=task_status))
            await until(lambda: bool(element.connections), "the daemon's connection")
            for room in range(12):
                element.add_reading(f"room{room}", {"t": 9})
                await until(lambda: len(order) > room, f"room{room}'s log line")
            nursery.cancel_scope.cancel()
        store.close()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert order == ["printed"] * 12


async def test_a_call_the_loop_waits_for_is_answered_and_runs_in_the_store_thread() -> None:
    """``wait``: the idle loop blocks for the call instead of sleeping in trio; the result
    (or the error) comes back as with an asynchronous wait, and the call still runs in the
    store's thread, one at a time after those before it."""
    thread = StoreThread()
    ran_in: list[int] = []

    def call(number: int) -> int:
        ran_in.append(threading.get_ident())
        return number + 1

    def broken() -> None:
        raise sqlite3.OperationalError("disk I/O error")

    try:
        for number in range(50):  # calls that end within the wait, and right around it
            assert await thread.run(partial(call, number), wait=5.0) == number + 1
            assert await thread.run(partial(call, number), wait=1e-6) == number + 1
        with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
            await thread.run(broken, wait=5.0)
        assert await thread.run(lambda: 7, wait=5.0) == 7  # the thread goes on after it
    finally:
        thread.close()
    assert threading.get_ident() not in ran_in and len(set(ran_in)) == 1


async def steps_while_a_call_runs(step: Callable[[], Awaitable[object]], wait: float,
                                  started_first: bool, behind: bool = False,
                                  thread: StoreThread | None = None) -> int:
    """How many times a task looping on ``step`` stepped while a call of 0.3-0.5 s ran
    in the store's thread with ``wait``; the task started before the call (and given time
    to go to sleep) or right before it (queued to run when the call is made). ``behind``:
    the call is made while another task's call (held as long) is still unfinished. A
    ``thread`` given is used (and left open); else a new one."""
    own = thread is None
    thread = StoreThread() if thread is None else thread
    release = threading.Event()
    steps = 0
    steps_during: list[int] = []

    def call() -> str:
        release.wait(LONGEST)
        steps_during.append(steps)
        return "written"

    async def loop() -> None:
        nonlocal steps
        while True:
            await step()
            steps += 1

    try:
        async with trio.open_nursery() as nursery:
            if started_first:
                nursery.start_soon(loop)
                await trio.sleep(0.02)  # it sleeps: nothing else is ready to run
            before = steps
            if not started_first:
                nursery.start_soon(loop)  # queued to run
            if behind:
                nursery.start_soon(thread.run, call)
                await trio.sleep(0.02)  # that call is in the thread, held
                before = steps
            threading.Timer(0.3, release.set).start()
            assert await thread.run(call, wait=wait) == "written"
            nursery.cancel_scope.cancel()
    finally:
        if own:
            thread.close()
    assert steps_during
    return steps_during[0] - before


async def test_the_loop_waits_for_a_slow_call_at_most_its_wait() -> None:
    """A call that outlasts its ``wait`` (a slow disk) is then awaited as any other: the
    loop runs its other tasks (a ticker, here) while the call goes on, and the caller gets
    its result once it ends. Blocking for the whole call, the ticker would stand still."""
    assert await steps_while_a_call_runs(lambda: trio.sleep(0.005), 0.05, True) >= 10  # ~50


async def test_the_loop_does_not_block_for_a_call_while_another_task_is_ready() -> None:
    """Another task ready to run (here one just started, that yields at every step) keeps
    the loop from blocking for a call, whatever its ``wait``: it makes progress while the
    call runs. (Ready means queued for trio's next batch: a task later in the batch now
    running is not seen, and waits at most the ``wait``.)"""
    assert await steps_while_a_call_runs(trio.lowlevel.checkpoint, LONGEST, False) > 100


async def test_the_loop_blocks_for_a_lone_call_it_waits_for() -> None:
    """The other side: a call made with a long ``wait`` while nothing else is ready and no
    other call is unfinished is waited for by the loop thread itself, so a sleeping ticker
    stands still until it ends; and so for every such call after it (a counter of calls
    in flight that never went down would stop the loop from blocking ever again)."""
    thread = StoreThread()
    try:
        for wait in (0.0, 5.0, 0.0, 1e-6):
            assert await thread.run(lambda: 1, wait=wait) == 1
        for _ in range(3):
            assert await steps_while_a_call_runs(lambda: trio.sleep(0.005), LONGEST, True,
                                                 thread=thread) <= 2
    finally:
        thread.close()


async def test_the_loop_does_not_block_for_a_call_behind_another() -> None:
    """A call made while another is unfinished (a storm's long commit, another URL's
    worker) would wait behind it: the loop does not block for it, whatever its ``wait``,
    and a sleeping task goes on ticking meanwhile."""
    assert await steps_while_a_call_runs(lambda: trio.sleep(0.005), LONGEST, True,
                                         behind=True) >= 10


async def test_a_call_the_loop_blocked_for_is_not_lost_to_a_cancellation() -> None:
    """Cancelled while the loop blocks for it, the call's result still reaches the caller;
    the cancellation comes at the caller's next checkpoint (as for an awaited call)."""
    thread = StoreThread()
    got: list[str] = []

    def call() -> str:
        time.sleep(0.1)
        return "ids"

    try:
        with trio.CancelScope() as scope:
            scope.cancel()
            got.append(await thread.run(call, wait=5.0))
            await trio.lowlevel.checkpoint()
            got.append("not reached")
        assert scope.cancelled_caught
    finally:
        thread.close()
    assert got == ["ids"]


async def test_a_call_the_loop_blocked_for_returns_before_the_tasks_woken_meanwhile() -> None:
    """The caller of a call the loop blocked for goes on at once: a task that became ready
    during the wait (a reader whose frame came in; here a sleeper whose time came) runs
    after it, not before. Yielding on the way out, trio's batch of ready tasks (in either
    order) ran the sleeper first about half the time; 20 tries catch that."""
    thread = StoreThread()
    try:
        for _ in range(20):
            woke: list[bool] = []

            async def sleeper() -> None:
                await trio.sleep(0.01)
                woke.append(True)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(sleeper)
                await trio.sleep(0.001)  # it sleeps: nothing else is ready to run
                assert await thread.run(lambda: time.sleep(0.03) or "written",
                                        wait=5.0) == "written"
                assert not woke, "the sleeper ran before the call's caller went on"
    finally:
        thread.close()
