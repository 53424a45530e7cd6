"""Whether a silence covers an alert. Silences stop notifications, not evaluation.

A silence's ``match`` holds any of ``rule``, ``source``, ``entity``, ``severity`` and
``labels.KEY``; every key given must equal the alert's value.
"""

from __future__ import annotations

from collections.abc import Mapping


def alert_values(rule: str, entity: str, severity: str = "",
                 labels: Mapping[str, str] | None = None) -> dict[str, str]:
    """The values of an alert that silences may match (``source`` comes from ``entity``)."""
    values = {"rule": rule, "entity": entity, "source": entity.split("/", 1)[0],
              "severity": severity}
    values.update({f"labels.{key}": value for key, value in (labels or {}).items()})
    return values


def matches(match: Mapping[str, str], values: Mapping[str, str]) -> bool:
    return bool(match) and all(values.get(key) == value for key, value in match.items())


def active(starts: float, ends: float, now: float) -> bool:
    return starts <= now < ends
