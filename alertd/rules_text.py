"""``alertd rules``: the rules as the loader understood them (defaults applied), pure.

``condition_text`` writes one condition on one line (``threshold temperature > 8 (clear <
7.5)``), ``rule_json`` one rule as JSON-able values, ``rules_text`` the listing for people.
"""

from __future__ import annotations

from typing import Any

from alertd.config import schema as s
from alertd.notify.message import duration_text


def _bound(bound: s.Bound | None) -> str:
    if isinstance(bound, s.FieldBound):
        return f"field {bound.field}"
    assert bound is not None
    return f"{bound:g}"


def _scalar(value: s.Scalar) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def condition_text(condition: s.Condition) -> str:
    """One line: ``threshold temperature > 8 (clear < 7.5)``, ``missing lls null in 3 of 5
    newest``, ``all(threshold t > 8, status in blocked)``..."""
    match condition:
        case s.Threshold():
            parts = []
            if condition.above is not None:
                parts.append(f"> {_bound(condition.above)}")
            if condition.below is not None:
                parts.append(f"< {_bound(condition.below)}")
            if condition.equals is not None:
                parts.append(f"== {_scalar(condition.equals)}")
            if condition.in_ is not None:
                parts.append("in [" + ", ".join(map(_scalar, condition.in_)) + "]")
            text = f"threshold {condition.field} " + " or ".join(parts)
            clear = []
            if condition.clear_below is not None:
                clear.append(f"< {_bound(condition.clear_below)}")
            if condition.clear_above is not None:
                clear.append(f"> {_bound(condition.clear_above)}")
            return text + (f" (clear {' and '.join(clear)})" if clear else "")
        case s.Missing():
            return (f"missing {condition.field} null in the {condition.nulls} newest messages"
                    if condition.of is None else
                    f"missing {condition.field} null in {condition.nulls} of the "
                    f"{condition.of} newest messages")
        case s.Silent():
            return f"silent for {duration_text(condition.after)}"
        case s.Status():
            return "status in [" + ", ".join(condition.in_) + "]"
        case s.SourceDown():
            return f"source down for {duration_text(condition.after)}"
        case s.Change():
            verb, amount = ("drop", condition.drop) if condition.drop is not None \
                else ("rise", condition.rise)
            return (f"change {condition.field} {verb} >= {amount:g} within "
                    f"{duration_text(condition.within)}")
        case s.AllOf() | s.AnyOf():
            word = "all" if isinstance(condition, s.AllOf) else "any"
            return f"{word}(" + ", ".join(map(condition_text, condition.conditions)) + ")"
    raise TypeError(f"not a condition: {type(condition).__name__}")


def rule_json(rule: s.Rule, config: s.Config) -> dict[str, Any]:
    return {"name": rule.name, "sources": list(rule.sources or sorted(config.sources)),
            "entities": list(rule.entities) if rule.entities is not None else None,
            "condition": condition_text(rule.condition), "for": rule.for_,
            "clear_for": rule.clear_for, "repeat": rule.repeat, "resolved": rule.resolved,
            "notify": list(rule.notify), "group_wait": rule.group_wait,
            "severity": rule.severity, "labels": dict(rule.labels),
            "flapping": {"changes": rule.flapping.changes, "within": rule.flapping.within}
            if rule.flapping else None,
            "overrides": {entity: condition_text(c) for entity, c in rule.overrides.items()},
            "file": str(rule.loc)}


def rules_text(config: s.Config) -> str:
    """Each rule as a short block, in file order."""
    blocks = []
    for rule in config.rules:
        sources = ", ".join(rule.sources or sorted(config.sources))
        lines = [f"{rule.name}  ({rule.severity}, {rule.loc})",
                 f"  when      {condition_text(rule.condition)}",
                 f"  on        {sources}" + (
                     f"; entities {', '.join(rule.entities)}" if rule.entities is not None
                     else "; every entity"),
                 f"  for {duration_text(rule.for_)}, clear_for "
                 f"{duration_text(rule.clear_for)}, repeat "
                 + (duration_text(rule.repeat) if rule.repeat is not None else "never")
                 + f", resolved notice {'yes' if rule.resolved else 'no'}, group_wait "
                 + duration_text(rule.group_wait),
                 "  notify    " + (", ".join(rule.notify) or "(no channel)")]
        if rule.labels:
            lines.append("  labels    " + ", ".join(f"{k}={v}"
                                                    for k, v in sorted(rule.labels.items())))
        if rule.flapping:
            lines.append(f"  flapping  {rule.flapping.changes} changes within "
                         f"{duration_text(rule.flapping.within)}")
        for entity, condition in rule.overrides.items():
            lines.append(f"  override  {entity}: {condition_text(condition)}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
