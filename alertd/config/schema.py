"""The typed configuration: frozen objects, built once by ``alertd.config.parse``.

Every object that an operator wrote keeps its ``loc`` (FILE:LINE) so that later stages (the
engine, the notifier, ``alertd test``) can point back at the rule file. Durations are seconds
as floats. Nothing here does I/O; the engine and the notify planner may import it freely.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from alertd.errors import Loc

SEVERITIES = ("info", "warning", "critical")
STATUSES = ("normal", "blocked", "unknown", "disallowed")
ELEMENT_DEFAULT_URL = "wss://element-iot.com/api/v1"
NAVIXY_DEFAULT_URL = "wss://api.eu.navixy.com/v2/event/subscription"
NAVIXY_MAX_TRACKERS_PER_REQUEST = 10
HISTORY_DEPTH = 12  # entries per field queue, as deep as Navixy's (PROTOCOL-NOTES)
ELEMENT_PING_INTERVAL = 20.0  # seconds; ELEMENT closes a socket after 60 s without a ping
ELEMENT_PRELOADS = {"readings": ("device", "device.fields", "device.interfaces", "packet",
                                 "packet.interface"),
                    "packets": ("device", "device.fields", "device.interfaces")}
ALERTMANAGER_SCHEMES = ("alertmanager://", "alertmanagers://")
Scalar = float | int | str | bool


# ---- conditions -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldBound:
    """A bound read from another field of the same entity (``above: {field: max_temp}``):
    its newest non-null value, per entity. Unknown while the entity has none."""

    field: str


Bound = float | FieldBound


@dataclass(frozen=True, slots=True)
class Threshold:
    """Fires on the field's newest non-null value; ``above`` and ``below`` together mean
    outside the band. ``clear_below``/``clear_above`` are hysteresis bounds for resolving.
    Each of the four bounds is a number or a ``FieldBound``."""

    loc: Loc
    field: str
    above: Bound | None = None
    below: Bound | None = None
    equals: Scalar | None = None
    in_: tuple[Scalar, ...] | None = None
    clear_below: Bound | None = None
    clear_above: Bound | None = None

    def bound_fields(self) -> frozenset[str]:
        return frozenset(b.field for b in (self.above, self.below, self.clear_below,
                                           self.clear_above) if isinstance(b, FieldBound))


@dataclass(frozen=True, slots=True)
class Missing:
    """Null gaps: the field is null in the ``nulls`` newest messages, or in at least ``nulls``
    of the ``of`` newest."""

    loc: Loc
    field: str
    nulls: int
    of: int | None = None


@dataclass(frozen=True, slots=True)
class Silent:
    loc: Loc
    after: float


@dataclass(frozen=True, slots=True)
class Status:
    loc: Loc
    in_: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SourceDown:
    loc: Loc
    after: float


@dataclass(frozen=True, slots=True)
class Change:
    """The field fell (``drop``) or rose (``rise``) by at least that much within ``within``."""

    loc: Loc
    field: str
    within: float
    drop: float | None = None
    rise: float | None = None

    @property
    def amount(self) -> float | None:
        """What the field must fall (or rise) by; None: the condition cannot hold."""
        return self.drop if self.drop is not None else self.rise


@dataclass(frozen=True, slots=True)
class AllOf:
    loc: Loc
    conditions: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    loc: Loc
    conditions: tuple[Condition, ...]


Condition = Threshold | Missing | Silent | Status | SourceDown | Change | AllOf | AnyOf


def condition_fields(condition: Condition) -> frozenset[str]:
    """The message fields a condition reads (the engine keeps history only for these)."""
    if isinstance(condition, (AllOf, AnyOf)):
        return frozenset().union(*(condition_fields(c) for c in condition.conditions))
    if isinstance(condition, Threshold):
        return frozenset({condition.field}) | condition.bound_fields()
    if isinstance(condition, (Missing, Change)):
        return frozenset({condition.field})
    return frozenset()


# ---- rules, channels, sources -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Flapping:
    changes: int
    within: float


@dataclass(frozen=True, slots=True)
class Rule:
    loc: Loc
    name: str
    condition: Condition
    sources: tuple[str, ...] | None = None  # None: every source
    entities: tuple[str, ...] | None = None  # None: every entity
    labels: dict[str, str] = field(default_factory=dict)
    severity: str = "warning"
    for_: float = 0.0
    clear_for: float = 0.0
    repeat: float | None = 4 * 3600.0  # None: never repeat
    resolved: bool = True
    notify: tuple[str, ...] = ()
    group_wait: float = 5.0
    title: str | None = None
    body: str | None = None
    description: str = ""
    flapping: Flapping | None = None
    # per-entity conditions (``overrides:``), keyed by entity id or source/id
    overrides: dict[str, Condition] = field(default_factory=dict)

    def condition_for(self, source: str, entity_id: str) -> Condition:
        """The condition that applies to one entity: its override, else the rule's."""
        if self.overrides:
            found = self.overrides.get(f"{source}/{entity_id}") or self.overrides.get(entity_id)
            if found is not None:
                return found
        return self.condition


@dataclass(frozen=True, slots=True)
class MuteWindow:
    """A daily quiet window in the channel's time zone, minutes after midnight; ``end`` may
    be before ``start`` (the window then crosses midnight). ``days`` are ISO weekdays
    (1 = Monday) on which the window starts; empty means every day."""

    start: int
    end: int
    days: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class Channel:
    loc: Loc
    name: str
    urls: tuple[str, ...]
    mute: tuple[MuteWindow, ...] = ()
    timezone: str = "UTC"
    resend: float = 60.0  # alertmanager channels: how often a firing alert is posted again

    @property
    def alertmanager(self) -> bool:
        """Whether the channel posts to Alertmanager (``alertmanager://`` URLs): its notices
        pass the planner unchanged, and Alertmanager groups, mutes and repeats."""
        return any(url.startswith(ALERTMANAGER_SCHEMES) for url in self.urls)


@dataclass(frozen=True, slots=True)
class ElementSource:
    loc: Loc
    name: str
    api_key: str
    subscribe: tuple[str, ...]
    url: str = ELEMENT_DEFAULT_URL
    preload: tuple[str, ...] = ()
    ping_interval: float = ELEMENT_PING_INTERVAL
    replay: bool = True


@dataclass(frozen=True, slots=True)
class NavixySource:
    loc: Loc
    name: str
    hash: str
    trackers: tuple[int, ...]
    url: str = NAVIXY_DEFAULT_URL
    rate_limit: str = "5s"
    flow_id: int | None = None
    status_refresh: float = 300.0


Source = ElementSource | NavixySource


@dataclass(frozen=True, slots=True)
class Silence:
    """A planned silence: ``match`` keys are rule, source, entity, severity and ``labels.K``."""

    loc: Loc
    match: dict[str, str]
    starts: datetime
    ends: datetime
    comment: str = ""


@dataclass(frozen=True, slots=True)
class HttpAccess:
    """Who may use the web page (``http: {listen, token, open_reads}``): writes (silences)
    need ``token`` (none configured: no writes); reads of the page, ``/alerts`` and
    ``/explain`` come from loopback only unless ``open_reads``."""

    token: str | None = None
    open_reads: bool = False


@dataclass(frozen=True, slots=True)
class Shard:
    """This process's share of the entities (``shard: {index: I, of: N}``, ``--shard I/N``):
    those whose stable hash of ``source/id`` modulo ``of`` is ``index`` (``alertd.shard``)."""

    index: int
    of: int
    from_option: bool = field(default=False, compare=False)  # --shard, which a reload keeps

    def __str__(self) -> str:
        return f"{self.index}/{self.of}"


@dataclass(frozen=True, slots=True)
class Config:
    path: Path
    state: Path
    sources: dict[str, Source]
    channels: dict[str, Channel]
    rules: tuple[Rule, ...]
    silences: tuple[Silence, ...] = ()
    http: tuple[str, int] | None = None
    files: tuple[Path, ...] = ()  # the main file and every included one
    http_access: HttpAccess = field(default_factory=HttpAccess)
    shard: Shard | None = None
