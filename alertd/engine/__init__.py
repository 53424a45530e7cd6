"""The rule engine: pure, clock-injected, sans-I/O (STYLE.md conventions 1-4).

Place in the data flow: source events in (``alertd.model``), alert events out
(``AlertFired``/``AlertRepeated``/``AlertResolved``/``AlertFlapping``, each with its rule's
channels, and ``AlertSettled``), which the loop writes and hands to the notify planner.
``history`` keeps the 12-deep queues, ``conditions`` says whether a condition holds,
``alerts`` is the state table of one alert, ``engine`` ties them together with timers as data
(``next_deadline`` / ``on_timer``), ``seed`` rebuilds the firing notices of restored alerts
for the planner. Nothing here imports trio, sockets, sqlite, apprise or
yaml, or reads the clock; a test enforces it.
"""

from __future__ import annotations

from alertd.engine.engine import Engine, notices
from alertd.engine.seed import firing_at_start

__all__ = ["Engine", "firing_at_start", "notices"]
