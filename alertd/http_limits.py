"""What the HTTP endpoint may cost the daemon: bounded connections, time and renders.

The endpoint shares one process, one event loop and one table of file descriptors with the
sources and the deliveries, which matter more. So:

- at most ``MAX_CONNECTIONS`` connections at once. When all are taken, the oldest one that
  has not yet sent its request head is closed to make room (a slowloris client cannot hold a
  slot against a health check); when every slot is answering, the newcomer gets 503 at once;
- a client has ``HEADER_TIMEOUT`` seconds to send its request head and ``REQUEST_TIMEOUT``
  for the whole exchange;
- a new connection is refused (503, closed at once) while fewer than ``FD_RESERVE`` file
  descriptors are free under ``RLIMIT_NOFILE``, so sockets to sources and deliveries can
  always be opened;
- a body is rendered at most once per ``CACHE_SECONDS`` per path: a thousand clients of
  ``/alerts`` cost one render, not a thousand turns of the event loop.
"""

from __future__ import annotations

import errno
import itertools
import logging
import os
import resource
from collections.abc import Callable
from typing import Generic, TypeVar

import trio

log = logging.getLogger("alertd.http")
MAX_CONNECTIONS = 64
HEADER_TIMEOUT = 5.0
REQUEST_TIMEOUT = 10.0
FD_RESERVE = 128
CACHE_SECONDS = 1.0
REPORT_EVERY = 60.0  # seconds between log lines about refused connections

T = TypeVar("T")


def free_descriptors() -> int | None:
    """File descriptors this process may still open, or None when that is unknown."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        used = len(os.listdir("/proc/self/fd"))
    except OSError as error:
        if error.errno in (errno.EMFILE, errno.ENFILE):
            return 0  # reading the table needs a descriptor itself: there is none
        return None  # no /proc (not Linux): the connection cap still bounds us
    return soft - used


class Gate:
    """Admits connections under the limits above. ``admit`` returns a token for an admitted
    connection, or None when it must be refused; ``answering`` marks one that sent its
    request head (it can no longer be evicted); ``leave`` frees its slot."""

    def __init__(self, limit: int = MAX_CONNECTIONS, reserve: int = FD_RESERVE,
                 free: Callable[[], int | None] = free_descriptors) -> None:
        self.limit, self.reserve, self.free = limit, reserve, free
        self.waiting: dict[int, trio.CancelScope] = {}  # oldest first
        self.busy: set[int] = set()
        self.tokens = itertools.count()
        self.refused = self.evicted = 0
        self.reported_at = -REPORT_EVERY
        self.reported = (0, 0)

    def admit(self, scope: trio.CancelScope) -> int | None:
        free = self.free()
        if free is not None and free < self.reserve:
            self._refuse(f"only {free} file descriptors free, {self.reserve} kept for "
                         "sources and deliveries")
            return None
        if len(self.waiting) + len(self.busy) >= self.limit:
            if not self.waiting:
                self._refuse(f"all {self.limit} connections are answering")
                return None
            oldest = next(iter(self.waiting))
            self.waiting.pop(oldest).cancel()
            self.evicted += 1
            self._report(f"{self.limit} connections open")
        token = next(self.tokens)
        self.waiting[token] = scope
        return token

    def answering(self, token: int) -> None:
        if self.waiting.pop(token, None) is not None:
            self.busy.add(token)

    def leave(self, token: int) -> None:
        self.waiting.pop(token, None)
        self.busy.discard(token)

    def _refuse(self, why: str) -> None:
        self.refused += 1
        self._report(why)

    def _report(self, why: str) -> None:
        """One warning a minute at most: under a flood, a line per connection is a flood."""
        now = trio.current_time()
        if now - self.reported_at < REPORT_EVERY:
            return
        refused, evicted = self.refused - self.reported[0], self.evicted - self.reported[1]
        log.warning("http: connections refused (%d) or closed before their request (%d): %s",
                    refused, evicted, why)
        self.reported_at, self.reported = now, (self.refused, self.evicted)


class Cache(Generic[T]):
    """Values made at most once per ``seconds`` per key (the event loop's clock)."""

    def __init__(self, seconds: float = CACHE_SECONDS) -> None:
        self.seconds = seconds
        self.entries: dict[str, tuple[float, T]] = {}

    def get(self, key: str, make: Callable[[], T]) -> T:
        now = trio.current_time()
        entry = self.entries.get(key)
        if entry is not None and now < entry[0]:
            return entry[1]
        value = make()
        self.entries[key] = (now + self.seconds, value)
        return value
