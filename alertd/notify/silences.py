"""Whether a silence covers an alert. Silences stop notifications, not evaluation.

A silence's ``match`` holds any of ``rule``, ``source``, ``entity``, ``severity`` and
``labels.KEY``; every key given must equal the alert's value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from alertd.config import schema as s


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


@dataclass(frozen=True, slots=True)
class Silence:
    """One silence, planned in the config file (``id`` is its FILE:LINE) or made at run time
    with ``alertd silence add`` (``id`` is the store's)."""

    id: str
    match: Mapping[str, str]
    starts: float
    ends: float
    comment: str = ""


def from_config(silence: s.Silence) -> Silence:
    return Silence(str(silence.loc), silence.match, silence.starts.timestamp(),
                   silence.ends.timestamp(), silence.comment)


def covering(silences: Iterable[Silence], values: Mapping[str, str],
             now: float) -> Silence | None:
    """The silence that holds an alert with these values back at ``now``, if any."""
    for silence in silences:
        if active(silence.starts, silence.ends, now) and matches(silence.match, values):
            return silence
    return None
