"""The one place that reads time.

The daemon's clock is trio's (monotonic, and replaceable by ``MockClock`` in tests) shifted
to the Unix epoch once at start, so that message times (epoch seconds from the devices) and
the daemon's time can be compared, and so that "ten minutes without data" runs in
milliseconds under ``autojump_clock``.
"""

from __future__ import annotations

import sys
import time

import trio


class Clock:
    def __init__(self) -> None:
        self._offset = time.time() - trio.current_time()

    def now(self) -> float:
        """Seconds since the Unix epoch, as the daemon sees them."""
        return trio.current_time() + self._offset

    def monotonic(self) -> float:
        """trio's clock itself: for measuring how long something took."""
        return trio.current_time()

    @property
    def virtual(self) -> bool:
        """Whether trio's clock is a virtual one (``MockClock``: the tests' ``autojump_clock``,
        ``alertd demo``). It jumps while a worker thread works, so nothing on such a clock may
        wait for a thread. Not imported here: ``trio.testing`` brings pytest in when it is
        installed (~1 s at the daemon's start), and a clock made from it means that it is
        imported already."""
        testing = sys.modules.get("trio.testing")
        return testing is not None and isinstance(trio.lowlevel.current_clock(),
                                                  testing.MockClock)

    def trio_time(self, epoch: float) -> float:
        """The trio deadline for an epoch time (for ``trio.move_on_at``)."""
        return epoch - self._offset


def wall_time() -> float:
    """Epoch seconds outside a trio run (commands such as ``alertd silence``)."""
    return time.time()
