"""Alerts restored firing, as the notify planner must know them at start.

A restart resumes alerts from the store (``Engine.restore``) without notifying them again;
the planner is seeded with a firing notice for each one that was firing, so that its
digests and silences count it (one silenced across a restart is still notified when the
silence ends). The notice is rebuilt from what ``Alert.to_data`` saved.
"""

from __future__ import annotations

from collections.abc import Iterable

from alertd.model import AlertState, Notification, NoticeKind
from alertd.records import StoredAlert


def firing_at_start(saved: Iterable[StoredAlert]) -> list[Notification]:
    """A firing notice, dated when its episode began, for every saved alert that fires."""
    return [_firing(alert) for alert in saved if alert.state == AlertState.FIRING]


def _firing(alert: StoredAlert) -> Notification:
    data = alert.data
    return Notification(alert.rule, alert.entity, NoticeKind.FIRING, alert.since, alert.since,
                        str(data.get("severity", "")), alert.entity.split("/", 1)[0],
                        alert.entity.rsplit("/", 1)[-1], str(data.get("field", "")),
                        data.get("value"), labels=dict(data.get("labels") or {}))
