"""The rule engine: pure, clock-injected, sans-I/O (STYLE.md conventions 1-4).

Place in the data flow: source events in (``alertd.model``), notifications out to the notify
planner. ``history`` keeps the 12-deep queues, ``conditions`` says whether a condition holds,
``alerts`` is the state table of one alert, ``engine`` ties them together with timers as data
(``next_deadline`` / ``on_timer``). Nothing here imports trio, sockets, sqlite, apprise or
yaml, or reads the clock; a test enforces it.
"""

from __future__ import annotations

from alertd.engine.engine import Engine

__all__ = ["Engine"]
