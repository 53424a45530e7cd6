"""Parsing of ``defaults:``, ``rules:`` and ``silences:`` (SPEC sections 2 and 5).

A rule's settings come from the rule, else from ``defaults:``, else from the built-in
defaults of ``schema.Rule``; labels are merged, the rule's winning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from alertd.config import schema as s
from alertd.config.conditions import CONDITION_KINDS, parse_condition
from alertd.config.fields import Reader, suggest
from alertd.config.nodes import Mapping, Node, Scalar
from alertd.notify.templates import problems as template_problems

SETTINGS = ("notify", "severity", "repeat", "group_wait", "resolved", "for", "clear_for",
            "labels", "title", "body", "flapping", "description")
RULE_KEYS = ("name", "source", "entities", "overrides", *SETTINGS, *CONDITION_KINDS)
# what `overrides:` may change per entity: the condition's bounds, never its field
OVERRIDABLE = {"threshold": ("above", "below", "equals", "in", "clear_below", "clear_above"),
               "missing": ("nulls", "of"), "change": ("drop", "rise", "within"),
               "silent": ("after",)}
SILENCE_KEYS = ("match", "starts", "ends", "comment")
MATCH_KEYS = ("rule", "source", "entity", "severity", "labels")


@dataclass
class Context:
    """What a rule may refer to: names defined elsewhere in the configuration."""

    sources: dict[str, s.Source]  # the sources that parsed
    source_names: set[str]  # every source defined, parsed or not (no cascading errors)
    channels: set[str]
    defaults: dict[str, Any] = field(default_factory=dict)
    defaults_have_notify: bool = False


def parse_settings(reader: Reader, m: Mapping, what: str, context: Context) -> dict[str, Any]:
    """Read the per-rule settings present in ``m``; a value that fails is left out."""
    items = m.items
    out: dict[str, Any] = {}

    def put(key: str, value: Any) -> None:
        if value is not None:
            out[key] = value

    if "notify" in items:
        names = reader.strings(items["notify"], f"{what}: notify")
        for name in names or ():
            if name not in context.channels:
                reader.error(items["notify"].loc,
                             f"{what}: notify names unknown channel '{name}'"
                             f"{suggest(name, context.channels)}")
        put("notify", names)
    if "severity" in items:
        put("severity", reader.choice(items["severity"], f"{what}: severity", s.SEVERITIES))
    if "repeat" in items:
        node = items["repeat"]
        if isinstance(node, Scalar) and node.text.strip() == "never":
            out["repeat"] = "never"
        else:
            put("repeat", reader.duration(node, f"{what}: repeat (or 'never')", positive=True))
    for key, attribute in (("group_wait", "group_wait"), ("for", "for_"),
                           ("clear_for", "clear_for")):
        if key in items:
            put(attribute, reader.duration(items[key], f"{what}: {key}"))
    if "resolved" in items:
        put("resolved", reader.boolean(items["resolved"], f"{what}: resolved"))
    if "labels" in items:
        labels = reader.mapping(items["labels"], f"{what}: labels")
        if labels is not None:
            values = {k: reader.string(v, f"{what}: labels.{k}") for k, v in labels.items.items()}
            put("labels", {k: v for k, v in values.items() if v is not None})
    for key in ("title", "body", "description"):
        if key in items:
            text = reader.string(items[key], f"{what}: {key}")
            if text is not None and key != "description":
                for problem in template_problems(text):
                    reader.error(items[key].loc, f"{what}: {key}: {problem}")
            put(key, text)
    if "flapping" in items:
        put("flapping", _flapping(reader, items["flapping"], f"{what}: flapping"))
    return out


def _flapping(reader: Reader, node: Node, what: str) -> s.Flapping | None:
    m = reader.mapping(node, what, ("changes", "within"), required=("changes", "within"))
    if m is None or "changes" not in m.items or "within" not in m.items:
        return None
    changes = reader.integer(m.items["changes"], f"{what}.changes", minimum=2)
    within = reader.duration(m.items["within"], f"{what}.within", positive=True)
    return None if changes is None or within is None else s.Flapping(changes, within)


def _misspelt_condition(m: Mapping) -> bool:
    """Whether an unknown key of the rule is a condition's name misspelt (``treshold``)."""
    import difflib

    return any(difflib.get_close_matches(key, CONDITION_KINDS, n=1, cutoff=0.6)
               for key in m.items if key not in RULE_KEYS)


def parse_rule(reader: Reader, node: Node, index: int, context: Context) -> s.Rule | None:
    m = reader.mapping(node, f"rule #{index}")
    if m is None:
        return None
    name = reader.string(m.items["name"], f"rule #{index}: name") if "name" in m.items else None
    if "name" not in m.items:
        reader.error(m.loc, f"rule #{index} needs a 'name'")
    what = f"rule '{name}'" if name else f"rule #{index}"
    reader.mapping(m, what, RULE_KEYS)
    errors_before = len(reader.problems)
    kinds = [k for k in m.items if k in CONDITION_KINDS]
    condition = None
    if not kinds:
        if not _misspelt_condition(m):  # a misspelt one was reported already: the cause
            reader.error(m.loc, f"{what} has no condition; give exactly one of "
                                + ", ".join(CONDITION_KINDS))
    elif len(kinds) > 1:
        reader.error(m.keys[kinds[1]],
                     f"{what} has two conditions ('{kinds[0]}' on line "
                     f"{m.keys[kinds[0]].line} and '{kinds[1]}'); a rule holds exactly one: "
                     "combine them with all: or any:")
    else:
        condition = parse_condition(reader, kinds[0], m.items[kinds[0]], what)
    sources = _sources(reader, m, what, context)
    entities = None
    if "entities" in m.items:
        entities = reader.strings(m.items["entities"], f"{what}: entities")
        if entities == ():
            reader.error(m.items["entities"].loc, f"{what}: entities must list at least one id "
                                                  "(leave it out to watch every entity)")
    settings = {**context.defaults, **parse_settings(reader, m, what, context)}
    settings["labels"] = {**context.defaults.get("labels", {}), **settings.get("labels", {})}
    if "notify" not in m.items and not context.defaults_have_notify:
        reader.error(m.loc, f"{what} has no 'notify' and defaults has none: name the channels "
                            "to send to (notify: [] keeps the alert silent on purpose)")
    if condition is not None and sources:
        _check_applies(reader, condition, sources, context, what)
    overrides: dict[str, s.Condition] = {}
    if "overrides" in m.items and condition is not None:
        overrides = _overrides(reader, m, kinds[0], what, context)
    if name is None or condition is None or len(reader.problems) > errors_before:
        return None
    repeat = settings.pop("repeat", 4 * 3600.0)
    return s.Rule(loc=m.loc, name=name, condition=condition, sources=sources,
                  entities=entities or None, repeat=None if repeat == "never" else repeat,
                  overrides=overrides, **settings)


def _overrides(reader: Reader, m: Mapping, kind: str, what: str,
               context: Context) -> dict[str, s.Condition]:
    """``overrides: {ENTITY: {above: 4}}``: the rule's condition with other bounds for one
    entity (an id, or source/id). Each is checked as the whole condition would be."""
    where = f"{what}: overrides"
    om = reader.mapping(m.items["overrides"], where)
    if om is None:
        return {}
    allowed = OVERRIDABLE.get(kind)
    if allowed is None:
        reader.error(m.keys["overrides"],
                     f"{where}: a '{kind}' condition has no bounds to override; overrides "
                     f"apply to {', '.join(OVERRIDABLE)} (inside all/any, write a bound as "
                     "{field: NAME} to read it from each entity)")
        return {}
    base = m.items[kind]
    out: dict[str, s.Condition] = {}
    for entity, node in om.items.items():
        source, slash, entity_id = entity.partition("/")
        if slash and (not entity_id or source not in context.source_names):
            reader.error(om.keys[entity], f"{where}: '{entity}' must be an entity id or "
                                          "source/id with a configured source"
                                          f"{suggest(source, context.source_names)}")
            continue
        vm = reader.mapping(node, f"{where}.{entity}", allowed)
        if vm is None or any(key not in allowed for key in vm.items):
            continue
        if not vm.items:
            reader.error(vm.loc, f"{where}.{entity} must set at least one of "
                                 + ", ".join(allowed))
            continue
        items = dict(base.items) if isinstance(base, Mapping) else {}
        keys = dict(base.keys) if isinstance(base, Mapping) else {}
        items.update(vm.items)
        keys.update(vm.keys)
        parsed = parse_condition(reader, kind, Mapping(vm.loc, items, keys),
                                 f"{where}.{entity}")
        if parsed is not None:
            out[entity] = parsed
    return out


def _sources(reader: Reader, m: Mapping, what: str, context: Context) -> tuple[str, ...] | None:
    if "source" not in m.items:
        return None
    names = reader.strings(m.items["source"], f"{what}: source")
    if names == ():
        reader.error(m.items["source"].loc, f"{what}: source must name at least one source "
                                            "(leave it out to watch every source)")
    for name in names or ():
        if name not in context.source_names:
            reader.error(m.items["source"].loc, f"{what}: unknown source '{name}'"
                                                f"{suggest(name, context.source_names)}")
    return names or None


def _check_applies(reader: Reader, condition: s.Condition, sources: tuple[str, ...],
                   context: Context, what: str) -> None:
    kinds = {type(context.sources[n]) for n in sources if n in context.sources}
    if kinds != {s.ElementSource}:
        return
    for status in _statuses(condition):
        reader.error(status.loc, f"{what}: status conditions apply to navixy trackers only, "
                                 "and every source of this rule is an element source")


def _statuses(condition: s.Condition) -> list[s.Status]:
    if isinstance(condition, (s.AllOf, s.AnyOf)):
        return [x for c in condition.conditions for x in _statuses(c)]
    return [condition] if isinstance(condition, s.Status) else []


def parse_silence(reader: Reader, node: Node, index: int, rules: set[str],
                  context: Context) -> s.Silence | None:
    what = f"silence #{index}"
    m = reader.mapping(node, what, SILENCE_KEYS, required=("match", "ends"))
    if m is None or "match" not in m.items or "ends" not in m.items:
        return None
    before = len(reader.problems)
    match: dict[str, str] = {}
    mm = reader.mapping(m.items["match"], f"{what}: match", MATCH_KEYS)
    if mm is not None:
        if not mm.items:
            reader.error(mm.loc, f"{what}: match must name at least one of "
                                 + ", ".join(MATCH_KEYS))
        for key, value in mm.items.items():
            if key == "labels":
                labels = reader.mapping(value, f"{what}: match.labels")
                for label, label_node in (labels.items.items() if labels else ()):
                    text = reader.string(label_node, f"{what}: match.labels.{label}")
                    if text is not None:
                        match[f"labels.{label}"] = text
                continue
            if key not in MATCH_KEYS:
                continue
            text = reader.string(value, f"{what}: match.{key}")
            if text is None:
                continue
            match[key] = text
            _check_match(reader, key, text, value, what, rules, context)
    if mm is not None and mm.items and not match and len(reader.problems) == before:
        reader.error(mm.loc, f"{what}: match is empty, so it would silence every alert; "
                             "name at least one rule, source, entity, severity or label")
    starts = reader.timestamp(m.items["starts"], f"{what}: starts") if "starts" in m.items \
        else None
    ends = reader.timestamp(m.items["ends"], f"{what}: ends")
    if starts is not None and ends is not None and ends <= starts:
        reader.error(m.items["ends"].loc, f"{what}: ends must be after starts")
    comment = reader.string(m.items["comment"], f"{what}: comment") \
        if "comment" in m.items else ""
    if len(reader.problems) > before or ends is None:
        return None
    return s.Silence(m.loc, match, starts or datetime.min.replace(tzinfo=timezone.utc), ends,
                     comment or "")


def _check_match(reader: Reader, key: str, text: str, node: Node, what: str, rules: set[str],
                 context: Context) -> None:
    if key == "rule" and text not in rules:
        reader.error(node.loc, f"{what}: match.rule names unknown rule '{text}'"
                               f"{suggest(text, rules)}")
    elif key == "source" and text not in context.source_names:
        reader.error(node.loc, f"{what}: match.source names unknown source '{text}'"
                               f"{suggest(text, context.source_names)}")
    elif key == "severity" and text not in s.SEVERITIES:
        reader.choice(node, f"{what}: match.severity", s.SEVERITIES)
    elif key == "entity":
        source, _, entity_id = text.partition("/")
        if not entity_id or source not in context.source_names:
            reader.error(node.loc, f"{what}: match.entity must be written source/id with a "
                                   f"configured source, like "
                                   f"{min(context.source_names, default='fleet')}/21080")
