"""The engine: events and the time in, notifications out. No I/O, no clock of its own.

``receive(event, now)`` applies one event; ``on_timer(now)`` handles what became due;
``next_deadline()`` tells the loop when to call ``on_timer`` next (STYLE.md, aioquic-style).

Time: each entity has an event clock. While messages flow it is their ``msg_time`` (clamped to
the moment of receipt); between messages it advances with the daemon's clock from the newest
one. ``for``, ``clear_for``, ``within`` and ``repeat`` are measured on it, so a replay of old
data is judged by its own timestamps and cannot raise an alert that the data contradicts.
``silent`` counts the daemon's time since the entity's last message and holds still while its
source is down; ``source_down`` counts the daemon's time.

Cost: a message touches only the rules of its source and entity that read one of its fields,
run on every message (virtual fields, ``missing`` in an ``all``/``any`` that is not
compiled), or have a live alert. Of those reading a field, a threshold is reached only when
it holds, a `change` rule only when the field's spread reaches its amount (``compiled``), a
`missing` rule only when the field's newest entry is null, and an ``all``/``any`` only
when one of its parts could start: on a steady stream, none costs a reading more than a
comparison or two per field, and a message that reaches no rule is not evaluated; a
`silent` rule is left to its entity's timer. Histories exist only for fields some rule
reads.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Iterable
from dataclasses import InitVar, dataclass, field
from typing import Any

from alertd.config import schema as s
from alertd.engine.alerts import EPS, FIRING, INACTIVE, PENDING, Alert, Notice
from alertd.engine.compiled import (BoundedThresholds, FieldChanges, FieldThresholds, bounded,
                                    compilable, parts)
from alertd.engine.conditions import VIRTUAL_FIELDS, Result, evaluate
from alertd.engine.explain import EntitySeen, explain
from alertd.engine.history import FieldHistory, normalise
from alertd.engine.late import restart_periods
from alertd.model import (AlertEvent, AlertFired, AlertFlapping, AlertRepeated, AlertResolved,
                          AlertSettled, AlertState, Event, Message, Notification, NoticeKind,
                          SourceUp, StatusChanged)
from alertd.records import AlertView, StoredAlert

_STATUS = "\x00status"  # index key of rules that read a tracker's status
_NO_OVERRIDES: dict[int, s.Condition] = {}  # shared, never written
_NO_ALERTS: dict[int, Alert] = {}  # shared by entities without an alert, never written
_finite = math.isfinite
# what a field of a message reaches in an index: its rules that are not compiled, its
# compiled thresholds and its `change` rules (each None when it has none), and the
# thresholds with a bound read from a field that it is or bounds
_Reach = tuple[tuple[int, ...], FieldThresholds | None, FieldChanges | None,
               tuple[BoundedThresholds, ...]]
_NO_REACH: _Reach = ((), None, None, ())


def _reads_status(condition: s.Condition) -> bool:
    if isinstance(condition, (s.AllOf, s.AnyOf)):
        return any(_reads_status(c) for c in condition.conditions)
    return isinstance(condition, s.Status)


def _has_missing(condition: s.Condition) -> bool:
    if isinstance(condition, (s.AllOf, s.AnyOf)):
        return any(_has_missing(c) for c in condition.conditions)
    return isinstance(condition, s.Missing)


def _missing_fields(condition: s.Condition) -> set[str]:
    if isinstance(condition, (s.AllOf, s.AnyOf)):
        return set().union(*(_missing_fields(c) for c in condition.conditions))
    return {condition.field} if isinstance(condition, s.Missing) else set()


def _is_timed(condition: s.Condition) -> bool:
    if isinstance(condition, (s.AllOf, s.AnyOf)):
        return any(_is_timed(c) for c in condition.conditions)
    return isinstance(condition, (s.Silent, s.Change)) or \
        isinstance(condition, s.Threshold) and condition.field == "_age"


def _horizons(condition: s.Condition, out: dict[str, float]) -> None:
    if isinstance(condition, (s.AllOf, s.AnyOf)):
        for sub in condition.conditions:
            _horizons(sub, out)
    elif isinstance(condition, s.Change):
        out[condition.field] = max(out.get(condition.field, 0.0), condition.within)


def _conditions(rule: s.Rule) -> tuple[s.Condition, ...]:
    """The rule's condition and its per-entity overrides."""
    return (rule.condition, *rule.overrides.values())


@dataclass(slots=True)
class _Index:
    """Which rules of a source an entity's events reach (shared by entities alike), and
    the condition each applies (a rule's ``overrides`` give some entities their own)."""

    rules: tuple[tuple[int, s.Rule], ...]
    by_field: dict[str, tuple[int, ...]]  # rules a field's value reaches (not compiled)
    every_message: tuple[int, ...]
    timed: tuple[int, ...]  # rules that time alone can change: silent, change, _age
    conditions: dict[int, s.Condition]
    # plain thresholds, reached only when they hold, and `change` rules, reached only when
    # their field's spread reaches their amount: kept only inside ``reach``
    compiled: InitVar[dict[str, FieldThresholds]]
    changes: InitVar[dict[str, FieldChanges]]
    bounded: InitVar[tuple[BoundedThresholds, ...]]  # reached when they hold, like thresholds
    nulls: tuple[str, ...]  # fields its `missing` conditions read: an absent one is a null
    # its `missing` rules (whole conditions) by field, reached only when the field's newest
    # entry is null: most messages carry the field, and no such rule can hold then
    missing: tuple[tuple[str, tuple[int, ...]], ...]
    # by_field, compiled and changes in one lookup per field of a message
    reach: dict[str, _Reach] = field(init=False)
    # its `silent` rules (as the conditions give them), which resume when the source is back
    silent: tuple[int, ...] = field(init=False)
    # the shortest `after` of its `silent` rules (inf: none): how soon after a message a
    # timer must look at them (compiled, they are not evaluated at every message)
    silent_after: float = field(init=False)
    # an entity's own index (the rules naming it), which always comes after its source's
    # shared one: both indexes' ``reach`` in one entry per field, made as fields are seen
    # (``_reach_both``) so that a message looks each field up once
    with_shared: dict[str, _Reach] = field(init=False, default_factory=dict)

    def __post_init__(self, compiled: dict[str, FieldThresholds],
                      changes: dict[str, FieldChanges],
                      bounded: tuple[BoundedThresholds, ...]) -> None:
        through: dict[str, tuple[BoundedThresholds, ...]] = {}
        for group in bounded:
            for name in group.fields:
                through[name] = through.get(name, ()) + (group,)
        self.reach = {f: (self.by_field.get(f, ()), compiled.get(f), changes.get(f),
                          through.get(f, ()))
                      for f in (*self.by_field, *compiled, *changes, *through)}
        silent = [(n, c) for n, rule in self.rules
                  if isinstance(c := self.conditions.get(n, rule.condition), s.Silent)]
        self.silent = tuple(n for n, _ in silent)
        self.silent_after = min((c.after for _, c in silent), default=math.inf)


class Entity:
    """The state of one device or tracker, as conditions see it (``EntityView``)."""

    __slots__ = ("source", "id", "key", "name", "status", "last_msg_time", "last_srv_time",
                 "last_receipt", "created", "fields", "alerts", "live", "layers",
                 "conditions", "scheduled")

    def __init__(self, source: str, entity_id: str, layers: tuple[_Index, ...],
                 now: float, key: str) -> None:
        self.source = source
        self.id = entity_id
        self.key = key  # f"{source}/{entity_id}": the engine's key for it, the same string
        self.name: str | None = None
        self.status: str | None = None
        self.last_msg_time: float | None = None
        self.last_srv_time: float | None = None
        self.last_receipt: float | None = None
        self.created = now
        self.fields: dict[str, FieldHistory] = {}
        # rule number -> alert, created when first needed (``add_alert``); most entities
        # never have one and share an empty dict
        self.alerts: dict[int, Alert] = _NO_ALERTS
        self.live: set[int] | None = None  # rules whose alert every message must see
        # (``_live``); None while there is none: most entities never have one
        # the indexes of the rules that reach it: the source's shared one, and one of the
        # rules that name it (disjoint), so that 5,000 named entities share the first
        self.layers = layers
        self.conditions: dict[int, s.Condition] = _NO_OVERRIDES if len(layers) == 1 \
            and not layers[0].conditions else {n: c for index in layers
                                               for n, c in index.conditions.items()}
        self.scheduled: float | None = None

    def add_alert(self, number: int, alert: Alert) -> Alert:
        if self.alerts is _NO_ALERTS:
            self.alerts = {}
        self.alerts[number] = alert
        return alert

    def reached(self, key: str) -> set[int]:
        """The rules (not compiled) that a value of field ``key`` reaches."""
        found: set[int] = set()
        for index in self.layers:
            found.update(index.by_field.get(key, ()))
        return found

    def timed(self) -> set[int]:
        return {n for index in self.layers for n in index.timed}

    def rules(self) -> list[tuple[int, s.Rule]]:
        return [pair for index in self.layers for pair in index.rules]

    @property
    def offset(self) -> float:
        """Daemon time minus event time (how far the event clock lags the daemon's)."""
        if self.last_msg_time is None or self.last_receipt is None:
            return 0.0
        return self.last_receipt - self.last_msg_time

    def history(self, field: str) -> FieldHistory | None:
        return self.fields.get(field)


@dataclass(slots=True)
class _Source:
    name: str
    fields: dict[str, float]  # fields any rule reads -> change-window horizon (0: none)
    default_index: _Index  # the rules without `entities`: every entity gets these
    default_layers: tuple[_Index]  # (default_index,), one tuple for the entities it serves
    rules: tuple[tuple[int, s.Rule], ...]
    named: frozenset[str]  # entity ids and keys that some rule's `entities` names
    naming: dict[str, tuple[tuple[int, s.Rule], ...]]  # id or key -> the rules naming it
    overridden: frozenset[str]  # ids and keys with overrides of rules without `entities`
    down_rules: tuple[tuple[int, s.Rule], ...]
    up: bool = True
    changed_at: float = 0.0
    scheduled: float | None = None


class Engine:
    def __init__(self, rules: Iterable[s.Rule], sources: dict[str, s.Source],
                 now: float, *, connected: bool = True, compiled: bool = True) -> None:
        """``connected``: whether the sources start up (rule tests) or not yet connected (the
        daemon, whose sources report ``SourceUp`` once their sockets are open). ``compiled``
        False evaluates every rule a message reaches, as the reference the compiled
        thresholds are tested against."""
        self.rules = tuple(rules)
        self._compile = compiled
        self._sources: dict[str, _Source] = {}
        self._entities: dict[str, Entity] = {}
        self._source_alerts: dict[tuple[int, str], Alert] = {}
        self._timers: list[tuple[float, int, str]] = []
        self._seq = itertools.count()
        self._indexes: dict[tuple[str, tuple[int, ...]], _Index] = {}
        self._changed: dict[int, Alert] = {}  # alerts to persist, by id()
        for name in sources:
            self._add_source(name, now)
            if not connected:
                self._sources[name].up = False
                self._schedule(self._sources[name], now)
        for name, source in sources.items():  # listed entities count from the start
            ids = {str(t) for t in source.trackers} if isinstance(source, s.NavixySource) \
                else set()
            for _, rule in self._sources[name].rules:
                ids.update(e.split("/", 1)[1] if e.startswith(f"{name}/") else e
                           for e in rule.entities or ())
            for entity_id in sorted(ids):
                self._schedule(self._entity(name, entity_id, now), now)

    # ---- set-up ------------------------------------------------------------------------

    def _add_source(self, name: str, now: float) -> None:
        entity_rules, down_rules = [], []
        fields: dict[str, float] = {}
        for number, rule in enumerate(self.rules):
            if rule.sources is not None and name not in rule.sources:
                continue
            if isinstance(rule.condition, s.SourceDown):
                down_rules.append((number, rule))
                continue
            entity_rules.append((number, rule))
            for condition in _conditions(rule):
                horizons: dict[str, float] = {}
                _horizons(condition, horizons)
                for read in s.condition_fields(condition):
                    if read not in VIRTUAL_FIELDS:
                        fields[read] = max(fields.get(read, 0.0), horizons.get(read, 0.0))
        rules = tuple(entity_rules)
        open_rules = tuple((n, r) for n, r in rules if r.entities is None)
        named = frozenset(e for _, r in rules for e in (*(r.entities or ()), *r.overrides))
        naming: dict[str, list[tuple[int, s.Rule]]] = {}
        for number, rule in rules:
            for entity in rule.entities or ():
                naming.setdefault(entity, []).append((number, rule))
        overridden = frozenset(e for _, r in open_rules for e in r.overrides)
        index = self._build_index(name, open_rules)
        self._sources[name] = _Source(name, fields, index, (index,), rules, named,
                                      {e: tuple(found) for e, found in naming.items()},
                                      overridden, tuple(down_rules), True, now)

    def _build_index(self, source: str, rules: tuple[tuple[int, s.Rule], ...],
                     entity_id: str | None = None) -> _Index:
        """The index of these rules; with ``entity_id``, with that entity's overrides (such
        an index is the entity's own, not shared)."""
        conditions = {number: rule.condition_for(source, entity_id) for number, rule in rules
                      if entity_id is not None and rule.overrides} if entity_id else {}
        conditions = {n: c for n, c in conditions.items() if c is not self.rules[n].condition}
        key = (source, tuple(number for number, _ in rules))
        if key in self._indexes and not conditions:
            return self._indexes[key]
        by_field: dict[str, list[int]] = {}
        every: list[int] = []
        timed: list[int] = []
        plain: dict[str, list[tuple[int, s.Threshold]]] = {}
        alike: dict[tuple[str, s.Bound | None, s.Bound | None], list[int]] = {}
        changes: dict[str, list[tuple[float, int]]] = {}
        missing: dict[str, list[int]] = {}
        nulls: set[str] = set()
        for number, rule in rules:
            condition = conditions.get(number, rule.condition)
            nulls.update(_missing_fields(condition))
            if self._compile and compilable(condition):
                for part in parts(condition):  # (each part of an `all` or `any`)
                    if isinstance(part, s.Missing):
                        missing.setdefault(part.field, []).append(number)
                    elif isinstance(part, s.Change):
                        if part.amount is not None:  # (one without cannot hold)
                            changes.setdefault(part.field, []).append(
                                (float(part.amount), number))
                    elif bounded(part):
                        alike.setdefault((part.field, part.above, part.below),
                                         []).append(number)
                    else:
                        plain.setdefault(part.field, []).append((number, part))
                continue  # not timed: a `change` part cannot start by time alone
            if self._compile and isinstance(condition, s.Change) \
                    and condition.field not in VIRTUAL_FIELDS:
                amount = condition.amount
                if amount is not None:  # (one without cannot hold: it is reached by nothing)
                    changes.setdefault(condition.field, []).append((float(amount), number))
                timed.append(number)
                continue
            if self._compile and isinstance(condition, s.Missing):
                missing.setdefault(condition.field, []).append(number)
                continue
            fields = s.condition_fields(condition)
            if not self._compile and isinstance(condition, s.Silent) \
                    or fields & set(VIRTUAL_FIELDS) or _has_missing(condition):
                every.append(number)  # (compiled, a `silent` rule is left to its timer)
            for name in fields:
                by_field.setdefault(name, []).append(number)
            if _reads_status(condition):
                by_field.setdefault(_STATUS, []).append(number)
            if _is_timed(condition):
                timed.append(number)
        index = _Index(rules, {f: tuple(n) for f, n in by_field.items()}, tuple(every),
                       tuple(timed), conditions,
                       {f: FieldThresholds.of(found) for f, found in plain.items()},
                       {f: FieldChanges(found) for f, found in changes.items()},
                       tuple(BoundedThresholds(*key, found) for key, found in alike.items()),
                       tuple(sorted(nulls)),
                       tuple((f, tuple(found)) for f, found in sorted(missing.items())))
        if not conditions:
            self._indexes[key] = index
        return index

    def _entity(self, source: str, entity_id: str, now: float) -> Entity:
        key = f"{source}/{entity_id}"
        entity = self._entities.get(key)
        if entity is None:
            src = self._sources[source]
            layers: tuple[_Index, ...] = src.default_layers
            if entity_id in src.named or key in src.named:
                found = {n: r for n, r in (*src.naming.get(entity_id, ()),
                                           *src.naming.get(key, ()))}
                own = tuple(sorted(found.items()))
                if entity_id in src.overridden or key in src.overridden:  # rare: its own
                    rules = tuple(sorted((*src.default_index.rules, *own),  # whole index
                                         key=lambda pair: pair[0]))
                    layers = (self._build_index(source, rules, entity_id),)
                elif own:
                    layers = (src.default_index, self._build_index(source, own, entity_id))
            entity = Entity(source, entity_id, layers, now, key)
            self._entities[key] = entity
        return entity

    # ---- input -------------------------------------------------------------------------

    def receive(self, event: Event, now: float) -> list[AlertEvent]:
        """Apply one event received at daemon time ``now``; return what alerts did: the
        notices due, each with its rule's channels, and the alerts that settled silently."""
        if event.source not in self._sources:
            return []
        if isinstance(event, Message):
            return self._message(event, now)
        if isinstance(event, StatusChanged):
            entity = self._entity(event.source, event.entity, now)
            entity.status = event.status
            numbers = entity.reached(_STATUS)
            return self._evaluate(entity, self._with_live(entity, numbers), now)
        src = self._sources[event.source]
        if src.up == isinstance(event, SourceUp):
            return []  # no change
        src.up, src.changed_at = isinstance(event, SourceUp), now
        out = self._evaluate_source(src, now)
        if src.up:  # silent rules resume, counting from now
            for entity in self._entities.values():
                if entity.source == src.name:
                    out.extend(self._evaluate(entity, self._silent_rules(entity), now))
        return out

    def _message(self, message: Message, now: float) -> list[AlertEvent]:
        entity = self._entity(message.source, message.entity, now)
        src = self._sources[message.source]
        msg_time = min(message.msg_time, now)  # a clock in the future: take the receipt time
        late = entity.last_msg_time is not None and msg_time < entity.last_msg_time
        fields = message.fields
        read = src.fields
        histories = entity.fields
        layers = entity.layers
        newest = not late
        numbers: set[int] = set()
        reach = layers[0].reach if len(layers) == 1 else layers[1].with_shared
        usual = 0  # fields recorded the usual way (``FieldHistory.record``)
        checks: tuple[BoundedThresholds, ...] = ()  # checked once every field is recorded
        for name, value in fields.items():
            horizon = read.get(name)  # only fields some rule reads get a history
            if horizon is None:
                continue  # no rule reads it
            history = histories.get(name)
            if history is None:
                history = histories[name] = FieldHistory(horizon)
            if value.__class__ is not float:
                value = normalise(value)
            if history.record(msg_time, value):
                usual += 1
            elif not (newest and value.__class__ is float and _finite(value)):
                value = history.newest()  # what conditions will read
            found = reach.get(name)
            if found is None:
                if len(layers) == 1:
                    continue
                found = _reach_both(layers, name)
            reached, bounds, changes, through = found
            if reached:
                numbers.update(reached)
            if through:
                checks += through
            # only those that now hold can start an alert
            if bounds is not None and (value.__class__ is float or bounds.matches) \
                    and (started := bounds.starting(value)):
                numbers.update(started)
            if changes is not None:  # ... only those whose amount the spread reaches
                spread = history.spread()
                if spread >= changes.least:
                    numbers.update(changes.reaching(spread))
        if message.absent_is_null:  # nulls matter only to the `missing` conditions that
            for index in layers:  # reach the entity
                for name in index.nulls:
                    if name not in fields:
                        history = histories.get(name)
                        if history is None:
                            history = histories[name] = FieldHistory(read[name])
                        history.record(msg_time, None)
        if entity.last_msg_time is None or msg_time >= entity.last_msg_time:
            entity.last_msg_time = msg_time
            entity.last_receipt = now
            entity.last_srv_time = message.srv_time
            if usual < len(histories):  # a history recorded the usual way is pruned
                for history in histories.values():
                    history.prune(msg_time)
        if message.entity_name:
            entity.name = message.entity_name
        if message.history_only:  # evaluated by an earlier run: it only rebuilds the history
            return []
        for group in checks:  # per-device bounds: those that hold now can start an alert
            if group.holds(histories):
                numbers.update(group.rules)
        quiet_for = math.inf  # the shortest `after` of the `silent` rules (compiled)
        for index in layers:
            numbers.update(index.every_message)
            for name, missing in index.missing:
                if not _cannot_miss(histories.get(name)):
                    numbers.update(missing)
            if index.silent_after < quiet_for:
                quiet_for = index.silent_after
        silent_wake = None
        if quiet_for < math.inf and src.up and self._compile:
            # compiled, `silent` rules with no alert are not evaluated: a message holds none
            # of them, only moves the moment one would hold; the wake-up their evaluation
            # would ask for is asked for (the timer looks then, and waits on if need be)
            quiet_from = max(entity.last_receipt or entity.created, src.changed_at)
            silent_wake = quiet_from + quiet_for
        reached_rules = self._with_live(entity, numbers)
        if not reached_rules:
            self._schedule(entity, None if silent_wake is None else _after([silent_wake], now))
            return []  # (what ``_evaluate`` gives for no rule)
        if late:  # measured before messages already seen: it may break a pending period
            for alert in restart_periods(entity, entity.alerts, entity.conditions,
                                         reached_rules, msg_time, fields):
                self._changed[id(alert)] = alert
        return self._evaluate(entity, reached_rules, now, silent_wake)

    def _with_live(self, entity: Entity, numbers: Iterable[int]) -> list[int]:
        """The rules to evaluate: those reached, and every live alert's (``Entity.live``)."""
        live = entity.live
        return sorted(live.union(numbers) if live else numbers)

    def _silent_rules(self, entity: Entity) -> list[int]:
        """Looked up once per index, not per entity: a source coming back walks them all."""
        return [n for index in entity.layers for n in index.silent]

    # ---- timers ------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """The daemon time at which ``on_timer`` must next be called, or None."""
        timers = self._timers
        while timers and not self._is_current(timers[0]):
            heapq.heappop(timers)
        return timers[0][0] if timers else None

    def _is_current(self, timer: tuple[float, int, str]) -> bool:
        when, _, key = timer
        owner = self._entities.get(key) or self._sources.get(key)
        return owner is not None and owner.scheduled == when

    def on_timer(self, now: float) -> list[AlertEvent]:
        out: list[AlertEvent] = []
        while self._timers and self._timers[0][0] <= now + EPS:
            timer = heapq.heappop(self._timers)
            if not self._is_current(timer):
                continue
            key = timer[2]
            if key in self._entities:
                entity = self._entities[key]
                entity.scheduled = None
                out.extend(self._evaluate(entity, self._with_live(entity, entity.timed()),
                                          now))
            else:
                src = self._sources[key]
                src.scheduled = None
                out.extend(self._evaluate_source(src, now))
        return out

    def _schedule(self, owner: Entity | _Source, when: float | None) -> None:
        if when is None or (owner.scheduled is not None and owner.scheduled <= when):
            return  # an earlier wake-up is already set; it will reschedule
        owner.scheduled = when
        key = owner.key if isinstance(owner, Entity) else owner.name
        heapq.heappush(self._timers, (when, next(self._seq), key))

    # ---- evaluation --------------------------------------------------------------------

    def _evaluate(self, entity: Entity, numbers: Iterable[int], now: float,
                  wake: float | None = None) -> list[AlertEvent]:
        """Evaluate the rules ``numbers`` of ``entity`` and ask for the next wake-up they need
        (or ``wake``, if sooner)."""
        out: list[AlertEvent] = []
        offset = entity.offset  # the loop changes no time of the entity's
        clock = now - offset
        src = self._sources[entity.source]
        wakes: list[float] = [] if wake is None else [wake]
        rules, conditions = self.rules, entity.conditions
        for number in numbers:
            rule = rules[number]
            condition = conditions.get(number, rule.condition)
            alert = entity.alerts.get(number)
            if alert is None and self._compile and condition.__class__ is s.Change \
                    and _cannot_change(condition, entity):
                continue  # no alert, and its condition cannot hold: nothing to do
            firing = alert is not None and alert.firing
            if isinstance(condition, s.Silent):
                if not src.up:
                    continue  # hold still: source_down speaks for the entity
                quiet_from = entity.last_receipt or entity.created
                if not firing:  # a reconnection restarts the count, but resolves nothing
                    quiet_from = max(quiet_from, src.changed_at)
                holds = now - quiet_from >= condition.after - EPS
                # firing, and nothing heard since the restart that restored it: only a
                # message resolves it, so the alert keeps its answer
                result = Result(holds, "", round(now - quiet_from, 3),
                                None if holds else quiet_from + condition.after,
                                known=not (firing and entity.last_receipt is None))
            else:
                result = evaluate(condition, entity, firing, now)
            if result.wake is not None:
                wakes.append(result.wake)
            if alert is None:
                if not result.holds:
                    continue
                alert = entity.add_alert(number, Alert(rule, entity.key))
            elif not result.known:  # no data since a restart: the alert keeps its answer
                result = Result(alert.state is PENDING or alert.state is FIRING,
                                alert.field, alert.value, result.wake)
            shown = alert.value
            if result.holds or alert.firing:
                alert.field, alert.value = result.field, result.value
                if result.change is not None:
                    alert.change = result.change
            before = alert.fingerprint()
            started = alert.started
            notices = alert.step(result.holds, clock)
            if alert.started != started:  # a new episode: its times are shown from now on
                alert.shift = offset
            changed = alert.fingerprint() != before
            if notices or changed:
                out.extend(self._events(alert, notices, changed, entity, now))
            if changed or _new_pending_value(alert, shown):
                self._changed[id(alert)] = alert
                _track(entity, number, alert)
            deadline = alert.deadline()
            if deadline is not None:
                wakes.append(deadline + offset)
        self._schedule(entity, _after(wakes, now))
        return out

    def _evaluate_source(self, src: _Source, now: float) -> list[AlertEvent]:
        out: list[AlertEvent] = []
        wakes: list[float] = []
        for number, rule in src.down_rules:
            assert isinstance(rule.condition, s.SourceDown)
            key = (number, src.name)
            alert = self._source_alerts.get(key)
            down_for = now - src.changed_at
            firing = alert is not None and alert.firing
            holds = not src.up and (firing or down_for >= rule.condition.after - EPS)
            if not src.up and not holds:
                wakes.append(src.changed_at + rule.condition.after)
            if alert is None:
                if not holds:
                    continue
                alert = self._source_alerts[key] = Alert(rule, src.name)
            alert.field, alert.value = "connection", "down" if not src.up else "up"
            before = alert.fingerprint()
            notices = alert.step(holds, now)
            changed = alert.fingerprint() != before
            out.extend(self._events(alert, notices, changed, None, now))
            if changed:
                self._changed[id(alert)] = alert
            deadline = alert.deadline()
            if deadline is not None:
                wakes.append(deadline)
        self._schedule(src, _after(wakes, now))
        return out

    def _events(self, alert: Alert, kinds: list[Notice], changed: bool,
                entity: Entity | None, now: float) -> list[AlertEvent]:
        """What one step of an alert reports: a notice per kind, routed to its rule's
        channels, and ``AlertSettled`` when the step (``changed`` the alert) left it resolved
        without saying so (``resolved: false``, or held back while flapping)."""
        channels = alert.rule.notify
        out: list[AlertEvent] = [_EVENTS[kind][0](self._notification(alert, kind, entity, now),
                                                  channels) for kind in kinds]
        if changed and alert.state is AlertState.RESOLVED and Notice.RESOLVED not in kinds:
            out.append(AlertSettled(alert.rule.name, alert.entity))
        return out

    def _notification(self, alert: Alert, kind: Notice, entity: Entity | None,
                      now: float) -> Notification:
        rule = alert.rule
        resolved = kind is Notice.RESOLVED
        return Notification(
            rule=rule.name, entity=alert.entity, state=_EVENTS[kind][1],
            at=now, since=(alert.started if resolved else alert.since) + alert.shift,
            severity=rule.severity, source=entity.source if entity else alert.entity,
            entity_name=(entity.name or entity.id) if entity else alert.entity,
            field=alert.field, value=alert.value, repeat=kind is Notice.REPEATED,
            labels=rule.labels, description=rule.description,
            change=alert.change if not resolved else None)

    # ---- persistence -------------------------------------------------------------------

    def take_changed(self) -> list[StoredAlert]:
        """Every alert changed since the last call, as the store keeps it."""
        changed = [StoredAlert(a.rule.name, a.entity, a.state.shown,
                               a.since + a.shift, a.to_data()) for a in self._changed.values()]
        self._changed.clear()
        return changed

    def adopt(self, old: Engine, now: float) -> int:
        """Carry over what a reload must not forget from the previous configuration's engine:
        each entity's histories (null gaps, change windows), times, name and status, for
        sources that still exist. A field no rule reads any more is dropped; one newly read
        starts empty. Returns how many entities were carried over."""
        carried = 0
        for before in old._entities.values():
            src = self._sources.get(before.source)
            if src is None:
                continue
            entity = self._entity(before.source, before.id, before.created)
            entity.name, entity.status, entity.created = before.name, before.status, \
                before.created
            entity.last_msg_time, entity.last_srv_time, entity.last_receipt = \
                before.last_msg_time, before.last_srv_time, before.last_receipt
            for name, history in before.fields.items():
                horizon = src.fields.get(name)
                if horizon is not None:
                    entity.fields[name] = history if history.horizon == horizon \
                        else history.rehorizoned(horizon)
            self._schedule(entity, now)
            carried += 1
        return carried

    def restore(self, saved: Iterable[StoredAlert], now: float) -> int:
        """Resume alerts saved by an earlier run (``take_changed``); alerts of rules or
        sources that no longer exist are dropped. Returns how many were resumed."""
        numbers = {rule.name: n for n, rule in enumerate(self.rules)}
        resumed = 0
        for stored in saved:
            rule_name, entity_key, data = stored.rule, stored.entity, stored.data
            number = numbers.get(rule_name)
            if number is None:
                continue
            rule = self.rules[number]
            source, _, entity_id = entity_key.partition("/")
            if source not in self._sources:
                continue
            if isinstance(rule.condition, s.SourceDown) != (entity_id == ""):
                continue  # the rule changed kind: its old alert means nothing now
            try:
                alert = Alert.from_data(rule, entity_key, data)
            except (TypeError, ValueError):
                continue
            if entity_id:
                entity = self._entity(source, entity_id, now)
                if not (rule.sources is None or source in rule.sources) or not (
                        rule.entities is None or entity_id in rule.entities
                        or entity_key in rule.entities):
                    continue
                entity.add_alert(number, alert)
                _track(entity, number, alert)
                self._schedule(entity, now)
            else:
                self._source_alerts[(number, source)] = alert
                self._schedule(self._sources[source], now)
            resumed += 1
        return resumed

    # ---- views -------------------------------------------------------------------------

    def explain(self, entity_key: str, now: float) -> EntitySeen:
        """What the engine knows about one entity and why each rule is where it is."""
        return explain(self, entity_key, now)

    def sources_up(self) -> dict[str, bool]:
        """Whether each source's connection is up, as the engine knows it."""
        return {name: src.up for name, src in self._sources.items()}

    def sources_down_since(self) -> dict[str, float | None]:
        """For each source, since when its connection has been down (None while up)."""
        return {name: None if src.up else src.changed_at for name, src in self._sources.items()}

    def alerts(self) -> list[AlertView]:
        """Every alert that is not inactive, by rule and entity."""
        found: list[Alert] = [*self._source_alerts.values()]
        for entity in self._entities.values():
            found.extend(entity.alerts.values())
        return sorted((AlertView(a.rule.name, a.entity, a.state.shown,
                                 a.since + a.shift) for a in found if a.state != INACTIVE),
                      key=lambda view: (view.rule, view.entity))


# what each notice of a step becomes: the engine's event, and what its Notification says
_EVENTS: dict[Notice, tuple[type[AlertFired | AlertRepeated | AlertResolved | AlertFlapping],
                            NoticeKind]] = {
    Notice.FIRED: (AlertFired, NoticeKind.FIRING),
    Notice.REPEATED: (AlertRepeated, NoticeKind.FIRING),
    Notice.RESOLVED: (AlertResolved, NoticeKind.RESOLVED),
    Notice.FLAPPING: (AlertFlapping, NoticeKind.FLAPPING)}


def _reach_both(layers: tuple[_Index, ...], name: str) -> _Reach:
    """The shared index's and the entity's own index's ``reach`` for one field, as one
    entry, kept in the own index for the next message (``_Index.with_shared``)."""
    shared, own = layers
    shared_rules, shared_bounds, shared_changes, shared_through = shared.reach.get(
        name, _NO_REACH)
    own_rules, own_bounds, own_changes, own_through = own.reach.get(name, _NO_REACH)
    bounds = own_bounds if shared_bounds is None else shared_bounds if own_bounds is None \
        else FieldThresholds.merged(shared_bounds, own_bounds)
    changes = own_changes if shared_changes is None else shared_changes \
        if own_changes is None else FieldChanges.merged(shared_changes, own_changes)
    found = own.with_shared[name] = (shared_rules + own_rules, bounds, changes,
                                     shared_through + own_through)
    return found


def _cannot_change(condition: s.Change, entity: Entity) -> bool:
    """Whether a `change` rule cannot hold: its field's numbers (``FieldHistory.spread``)
    are all closer together than its amount. Most rules on a steady stream, at the cost of
    no per-value loop."""
    history = entity.fields.get(condition.field)
    amount = condition.amount
    return history is None or amount is None or history.spread() < amount


def _cannot_miss(history: FieldHistory | None) -> bool:
    """Whether a `missing` rule of this field cannot hold: the field has no history, or its
    newest entry has a value (``conditions._missing`` says the same, after more work)."""
    return history is None or not history or history[-1] == history[-1]  # not NaN: a value


def _new_pending_value(alert: Alert, before: Any) -> bool:
    """Whether a pending alert's value changed: saved, so that one that fires after a
    restart, with no new value read, shows the newest value that held, not the first."""
    return alert.state is AlertState.PENDING and alert.value != before


def notices(events: Iterable[AlertEvent]) -> list[Notification]:
    """The notifications among an engine's events (``alertd test``, ``alertd replay``)."""
    return [event.note for event in events if not isinstance(event, AlertSettled)]


def _live(alert: Alert) -> bool:
    """Whether every message of its entity must be evaluated for the alert: pending or
    firing (a message may end it), or flapping (stability ends it). A resolved or inactive
    one is started again only by a condition that holds, which the index finds."""
    return alert.state is PENDING or alert.firing or alert.flapping


def _track(entity: Entity, number: int, alert: Alert) -> None:
    if _live(alert):
        if entity.live is None:
            entity.live = set()
        entity.live.add(number)
    elif entity.live:
        entity.live.discard(number)
        if not entity.live:
            entity.live = None


def _after(wakes: list[float], now: float) -> float | None:
    """The next wake-up, strictly later than the moment just evaluated: a deadline that float
    rounding puts at ``now`` (a `change` window edge exactly ``within`` old) would otherwise
    be due again at once, and ``on_timer`` would never return."""
    return max(min(wakes), now + 2 * EPS) if wakes else None
