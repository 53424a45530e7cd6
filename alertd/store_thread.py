"""A thread for the state store's calls: they run there one at a time, in the order they
come, so that no commit (nor a lock another program holds, up to the busy timeout) stalls
the event loop. The daemon has two: the store's own, for every call of its tasks
(``app._in_store``), and the checkpointer's (``app._checkpoints``), whose syncs the
store's writes never wait behind.

A thread of its own, waiting on a queue, rather than ``trio.to_thread.run_sync`` with a
limiter of one: each notification waits for one round trip to it, and this one costs
about two thirds of the other's (~70 against ~115 us on the 2-core benchmark machine:
no limiter, no thread cache, no context copied; docs/performance.md).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import outcome
import trio

T = TypeVar("T")
_Call = tuple[Callable[[], Any], trio.lowlevel.Task, trio.lowlevel.TrioToken]


class StoreThread:
    """Started by the first call; ``close`` ends it once no call is left."""

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    async def run(self, call: Callable[[], T]) -> T:
        """``call()`` in the thread; its result, or what it raised. Not cancellable: a call
        that began is never left half-known (a stop or a reload finds what it did done);
        a cancellation meanwhile is raised at the caller's next checkpoint."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name="alertd-store",
                                            daemon=True)
            self._thread.start()
        self._calls.put((call, trio.lowlevel.current_task(),
                         trio.lowlevel.current_trio_token()))
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
            call, task, token = item
            done = outcome.capture(call)
            try:
                token.run_sync_soon(trio.lowlevel.reschedule, task, done)
            except trio.RunFinishedError:  # the loop is gone (it was stopped from outside)
                pass
