"""Counters the sources keep for ``/metrics`` and the logs: plain numbers, no I/O."""

from __future__ import annotations

from collections import Counter


class SourceStats:
    def __init__(self) -> None:
        self.message_count: Counter[str] = Counter()
        self.bad_frame_count: Counter[str] = Counter()
        self.open_sockets: Counter[str] = Counter()

    def messages(self, source: str, count: int) -> None:
        self.message_count[source] += count

    def bad_frames(self, source: str, count: int) -> None:
        self.bad_frame_count[source] += count

    def sockets_up(self, source: str, change: int) -> None:
        self.open_sockets[source] += change
