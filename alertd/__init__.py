"""alertd: an alerting daemon for IoT and fleet event streams.

Data flow (STYLE.md): sources (I/O) -> engine (pure) -> notify planner (pure) -> senders (I/O),
with the state store persisting both sides. This package's subpackages follow that order:
``config`` turns the rule file into frozen typed objects that every other part reads.
"""

from __future__ import annotations

__version__ = "0.1.0"
