"""What the engine knows about one entity, as a frozen read-only view (``alertd explain``).

``explain(engine, entity_key, now)`` looks, changes nothing and schedules nothing: for each
rule that reaches the entity, the values its condition reads (the newest value of each
field, the nulls in the queue with gaps, a change window's extremes), the bounds in force
(the ``clear_*`` ones once firing), whether the condition holds now, the alert's state and
why it is or is not firing, and the next moment the engine will look again without new
input. Words for people are made at the edge (``explain_text.py``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from alertd.config import schema as s
from alertd.engine.alerts import EPS, FIRING, INACTIVE, PENDING, Alert
from alertd.engine.conditions import VIRTUAL_FIELDS, _bounds, evaluate
from alertd.model import AlertState

if TYPE_CHECKING:
    from alertd.engine.engine import Engine, Entity


class Why(enum.StrEnum):
    FIRING = "firing"
    CLEARING = "firing, clearing"  # clear, waiting out clear_for
    PENDING = "pending"  # holds, waiting out for
    CONDITION_FALSE = "condition false"
    NO_DATA = "no data"
    HELD = "held: source down"  # silent rules hold still while their source is down


@dataclass(frozen=True, slots=True)
class FieldSeen:
    field: str
    newest: Any  # newest non-null value (None: none yet)
    newest_at: float | None  # its msg_time
    messages: int  # entries in the queue with gaps (at most 12)
    nulls: int  # nulls among them
    window_low: float | None = None  # a change window's extremes, when the rule has one
    window_high: float | None = None


@dataclass(frozen=True, slots=True)
class RuleSeen:
    rule: str
    condition: s.Condition  # the one applying to this entity (an override, else the rule's)
    holds: bool
    known: bool
    value: Any  # what the condition compared (the field's value, the quiet seconds...)
    bounds: tuple[float | None, float | None] | None  # threshold (above, below) in force
    state: AlertState  # as shown: clearing is firing
    why: Why
    since: float | None  # daemon time the episode began (pending or firing)
    for_: float
    pending_for: float | None  # how long it has held while pending
    clearing_since: float | None
    next_check: float | None  # daemon time the alert changes without new input
    fields: tuple[FieldSeen, ...]


@dataclass(frozen=True, slots=True)
class EntitySeen:
    entity: str
    known: bool  # the engine has heard of it (a message, a status, a listed entity)
    name: str | None
    status: str | None
    last_msg_time: float | None
    last_receipt: float | None
    source_up: bool | None  # None: not a configured source
    next_wake: float | None  # the entity's next timer
    rules: tuple[RuleSeen, ...]
    source_rules: tuple[RuleSeen, ...]  # source_down rules of its source


def explain(engine: Engine, entity_key: str, now: float) -> EntitySeen:
    source, _, entity_id = entity_key.partition("/")
    src = engine._sources.get(source)
    entity = engine._entities.get(entity_key)
    if src is None:
        return EntitySeen(entity_key, False, None, None, None, None, None, None, (), ())
    if entity is None:  # not heard of: how a first message would find it
        found = engine._entity(source, entity_id, now)
        del engine._entities[entity_key]  # a view changes nothing
        rules = tuple(_rule(engine, found, n, rule, now, heard=False)
                      for n, rule in found.rules())
    else:
        rules = tuple(_rule(engine, entity, n, rule, now, heard=True)
                      for n, rule in entity.rules())
    down = tuple(_source_rule(engine, src, n, rule, now) for n, rule in src.down_rules)
    return EntitySeen(entity_key, entity is not None, entity.name if entity else None,
                      entity.status if entity else None,
                      entity.last_msg_time if entity else None,
                      entity.last_receipt if entity else None, src.up,
                      entity.scheduled if entity else None, rules, down)


def _fields(entity: Entity, condition: s.Condition) -> tuple[FieldSeen, ...]:
    seen = []
    for field in sorted(s.condition_fields(condition)):
        if field in VIRTUAL_FIELDS:
            continue
        history = entity.history(field)
        if history is None:
            seen.append(FieldSeen(field, None, None, 0, 0))
            continue
        low = high = None
        if history.window:
            values = [value for _, value in history.window]
            low, high = min(values), max(values)
        newest_at = history.nonnull[-1][0] if history.nonnull else None
        seen.append(FieldSeen(field, history.newest(),
                              None if newest_at is None else newest_at + entity.offset,
                              len(history.all), history.nulls(len(history.all)), low, high))
    return tuple(seen)


def _rule(engine: Engine, entity: Entity, number: int, rule: s.Rule, now: float, *,
          heard: bool) -> RuleSeen:
    condition = entity.conditions.get(number, rule.condition)
    alert: Alert | None = entity.alerts.get(number)
    firing = alert is not None and alert.firing
    src = engine._sources[entity.source]
    bounds = None
    if isinstance(condition, s.Silent):
        quiet_from = entity.last_receipt or entity.created
        if not firing:
            quiet_from = max(quiet_from, src.changed_at)
        holds, known, value = now - quiet_from >= condition.after - EPS, True, \
            round(now - quiet_from, 3)
    else:
        result = evaluate(condition, entity, firing, now)
        holds, known, value = result.holds, result.known and heard, result.value
        if isinstance(condition, s.Threshold) and result.known:
            found = _bounds(condition, entity, firing)
            bounds = (found[0], found[1]) if found is not None else None
    state = alert.state.shown if alert is not None else INACTIVE
    since = pending_for = clearing = next_check = None
    if alert is not None and state in (PENDING, FIRING):
        since = alert.since + alert.shift
        if state == PENDING:
            pending_for = (now - entity.offset) - alert.since
        if alert.clearing_since is not None:
            clearing = alert.clearing_since + entity.offset
        deadline = alert.deadline()
        next_check = None if deadline is None else deadline + entity.offset
    if isinstance(condition, s.Silent) and not src.up:
        why = Why.HELD
    elif state == FIRING:
        why = Why.CLEARING if alert is not None and alert.clearing_since is not None \
            else Why.FIRING
    elif state == PENDING:
        why = Why.PENDING
    elif not known:
        why = Why.NO_DATA
    else:
        why = Why.CONDITION_FALSE
    return RuleSeen(rule.name, condition, holds, known, value, bounds, state, why, since,
                    rule.for_, pending_for, clearing, next_check, _fields(entity, condition))


def _source_rule(engine: Engine, src: Any, number: int, rule: s.Rule, now: float) -> RuleSeen:
    alert = engine._source_alerts.get((number, src.name))
    assert isinstance(rule.condition, s.SourceDown)
    down_for = None if src.up else now - src.changed_at
    state = alert.state.shown if alert is not None else INACTIVE
    why = Why.FIRING if state == FIRING else Why.CONDITION_FALSE
    next_check = None if src.up or state == FIRING else src.changed_at + rule.condition.after
    return RuleSeen(rule.name, rule.condition, state == FIRING or (
        down_for is not None and down_for >= rule.condition.after - EPS), True,
        "up" if src.up else f"down for {down_for:.0f} s", None, state, why,
        alert.since if alert is not None and state == FIRING else None, 0.0, None, None,
        next_check, ())
