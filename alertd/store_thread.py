"""A thread for the state store's calls: they run there one at a time, in the order they
come, so that no commit (nor a lock another program holds, up to the busy timeout) stalls
the event loop. The daemon has two: the store's own, for every call of its tasks
(``app._in_store``), and the checkpointer's (``app._checkpoints``), whose syncs the
store's writes never wait behind.

A thread of its own, waiting on a queue, rather than ``trio.to_thread.run_sync`` with a
limiter of one: each notification waits for one round trip to it, and this one costs
about two thirds of the other's (~70 against ~115 us on the 2-core benchmark machine:
no limiter, no thread cache, no context copied; docs/performance.md).

A call a notification waits for may ask the loop to wait for it (``run``'s ``wait``): when
no other task is ready to run and no other call is unfinished, the loop thread blocks on
the call's lock for up to ``wait`` seconds instead of sleeping in trio's I/O wait. The
answer then needs no wake-up of the loop through trio's wake-up socket (0.1-0.3 ms on an
idle 2-core VM). A call that takes longer is awaited as any other, so a slow disk stalls
the loop at most ``wait``.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import outcome
import trio

T = TypeVar("T")


class _Call(Generic[T]):
    """One call on its way: what it gave once done, and who is told then (the task waiting
    asynchronously, or the loop thread blocked on ``finished``)."""

    __slots__ = ("call", "token", "done", "task", "finished")

    def __init__(self, call: Callable[[], T], token: trio.lowlevel.TrioToken,
                 finished: threading.Lock | None) -> None:
        self.call = call
        self.token = token
        self.done: outcome.Outcome[T] | None = None
        self.task: trio.lowlevel.Task | None = None
        self.finished = finished  # held until the call is done, when the loop may block


class StoreThread:
    """Started by the first call; ``close`` ends it once no call is left."""

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[_Call[Any] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._handover = threading.Lock()  # a call's end against its caller's choice to wait
        self._unfinished = 0  # calls put and not yet done (under ``_handover``)

    async def run(self, call: Callable[[], T], wait: float = 0.0) -> T:
        """``call()`` in the thread; its result, or what it raised. Not cancellable: a call
        that began is never left half-known (a stop or a reload finds what it did done);
        a cancellation meanwhile is raised at the caller's next checkpoint.

        With ``wait`` (seconds), no other task ready to run and no other call unfinished
        (this one would wait behind it: a storm's commit, another URL's worker), the loop
        thread blocks until the call is done, for at most ``wait``, and then awaits it as
        usual. A call done within the wait returns without yielding: the caller goes on
        with the notification before the tasks that became ready meanwhile (readers of
        frames that came during the wait; yielding to them first cost 0.1-0.3 ms of the
        notification's path on the benchmark VM)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name="alertd-store",
                                            daemon=True)
            self._thread.start()
        with self._handover:
            alone = self._unfinished == 0
            self._unfinished += 1
        block = wait > 0 and alone and trio.lowlevel.current_statistics().tasks_runnable == 0
        finished = threading.Lock() if block else None
        if finished is not None:
            finished.acquire()
        item = _Call(call, trio.lowlevel.current_trio_token(), finished)
        self._calls.put(item)
        if finished is not None and finished.acquire(timeout=wait):
            assert item.done is not None
            return item.done.unwrap()
        with self._handover:
            done = item.done
            if done is None:  # still running: the thread reschedules this task
                item.task = trio.lowlevel.current_task()
        if done is not None:  # done right after the wait ran out
            await trio.lowlevel.cancel_shielded_checkpoint()
            return done.unwrap()
        result: T = await trio.lowlevel.wait_task_rescheduled(
            lambda _: trio.lowlevel.Abort.FAILED)
        return result

    def close(self) -> None:
        if self._thread is not None:
            self._calls.put(None)
            self._thread.join()
            self._thread = None

    def _serve(self) -> None:
        while (item := self._calls.get()) is not None:
            done = outcome.capture(item.call)
            with self._handover:
                item.done = done
                self._unfinished -= 1
                task = item.task
            if task is None:  # the caller blocks on ``finished``, or will see ``done``
                if item.finished is not None:
                    item.finished.release()
                continue
            try:
                item.token.run_sync_soon(trio.lowlevel.reschedule, task, done)
            except trio.RunFinishedError:  # the loop is gone (it was stopped from outside)
                pass
