"""One schema for the current alerts: ``alertd alerts --json`` and the daemon's ``/alerts``.

    {"daemon": "running" | "stopped" | "unknown",
     "alerts": [{"rule": "warm", "entity": "cold/room1", "state": "firing",
                 "since": "2026-01-01T10:00:00Z", "silenced": "a1b2c3d4" | null,
                 "severity": "warning" | null, "labels": {"site": "hamburg"}}]}

``since`` is when the episode began (ISO 8601, UTC); ``silenced`` the id of the silence
holding the alert's notifications back now (a store id, or FILE:LINE of a planned one). The
daemon's ``/alerts`` says ``"daemon": "running"`` (it is the daemon). docs/operations.md
documents it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any


def alert_entry(rule: str, entity: str, state: str, since: float, silenced: str | None,
                severity: str | None, labels: Mapping[str, str]) -> dict[str, Any]:
    return {"rule": rule, "entity": entity, "state": state,
            "since": datetime.fromtimestamp(since, timezone.utc).isoformat()
            .replace("+00:00", "Z"), "silenced": silenced, "severity": severity or None,
            "labels": dict(labels)}


def alerts_document(daemon: str, alerts: Iterable[dict[str, Any]]) -> str:
    return json.dumps({"daemon": daemon, "alerts": list(alerts)}, indent=1) + "\n"
