"""Parsing of the one condition each rule holds (SPEC section 5): shapes and ranges.

What the conditions *mean* is the engine's business; here they only have to be well formed,
so that a rule file that passes ``alertd check`` cannot surprise the engine.
"""

from __future__ import annotations

from alertd.config import schema as s
from alertd.config.fields import Reader, suggest
from alertd.config.nodes import Mapping, Node, Scalar

CONDITION_KINDS = ("threshold", "missing", "silent", "status", "source_down", "change",
                   "all", "any")
# all:/any: combine conditions on one entity's messages; silent and source_down are about
# the absence of messages and have no value on a given message.
COMBINABLE = ("threshold", "missing", "change", "status", "all", "any")
NOT_NORMAL = ("blocked", "unknown", "disallowed")
TIME_FIELDS = ("_lag", "_age")  # virtual fields, in seconds (SPEC section 3)
MAX_NESTING = 16  # all/any inside all/any: deeper is a generated or hostile file


def parse_condition(reader: Reader, kind: str, node: Node, what: str,
                    depth: int = 0) -> s.Condition | None:
    """Parse the condition ``kind`` written as ``node``; ``what`` names its place for messages;
    ``depth`` counts the ``all``/``any`` around it."""
    where = f"{what}: {kind}"
    if kind in ("all", "any"):
        if depth >= MAX_NESTING:
            rule = what.split(": ", 1)[0]  # the path would be 16 levels long
            reader.error(node.loc, f"{rule}: all/any nested more than {MAX_NESTING} deep; "
                                   "write the condition flatter")
            return None
        return _combination(reader, kind, node, where, depth + 1)
    parsers = {"threshold": _threshold, "missing": _missing, "silent": _silent,
               "status": _status, "source_down": _source_down, "change": _change}
    return parsers[kind](reader, node, where)


def _threshold(reader: Reader, node: Node, what: str) -> s.Threshold | None:
    m = reader.mapping(node, what, ("field", "above", "below", "equals", "in", "clear_below",
                                    "clear_above"), required=("field",))
    if m is None:
        return None
    items = m.items
    field = reader.string(items["field"], f"{what}.field") if "field" in items else None
    numbers: dict[str, float | None] = {}  # bounds written as numbers
    bounds: dict[str, s.Bound | None] = {}  # every bound: a number or another field
    timed = field in TIME_FIELDS  # _lag and _age are seconds: a duration reads better
    for key in ("above", "below", "clear_below", "clear_above"):
        written = items.get(key)
        if written is None:
            numbers[key] = None
        elif isinstance(written, Mapping):
            numbers[key] = None
            bounds[key] = _field_bound(reader, written, f"{what}.{key}")
            continue
        elif timed and isinstance(written, Scalar) and isinstance(written.value, str):
            numbers[key] = reader.duration(written, f"{what}.{key}")
        else:
            numbers[key] = reader.number(items[key], f"{what}.{key}")
        bounds[key] = numbers[key]
    equals = _comparable(reader, items["equals"], f"{what}.equals") if "equals" in items \
        else None
    in_: tuple[s.Scalar, ...] | None = None
    if "in" in items:
        values = reader.sequence(items["in"], f"{what}.in")
        if values is not None:
            if not values:
                reader.error(items["in"].loc, f"{what}.in must list at least one value")
            parsed = [_comparable(reader, v, f"{what}.in item") for v in values]
            in_ = tuple(v for v in parsed if v is not None)
    ok = field is not None and all(items.get(k) is None or bounds[k] is not None
                                   for k in bounds)
    above, below = numbers["above"], numbers["below"]
    kinds = [k for k in ("above", "below", "equals", "in") if k in items]
    if not kinds:
        reader.error(m.loc, f"{what} needs one of above, below, equals or in")
        ok = False
    elif ("equals" in kinds or "in" in kinds) and len(kinds) > 1:
        reader.error(m.loc, f"{what}: {' and '.join(kinds)} cannot be combined; "
                            "use equals or in alone, or above/below")
        ok = False
    if above is not None and below is not None and below >= above:
        reader.error(items["below"].loc,
                     f"{what}: with both bounds the alert fires outside the band, so below "
                     f"({below:g}) must be less than above ({above:g})")
        ok = False
    for clear, bound, side in (("clear_below", "above", "at or below"),
                               ("clear_above", "below", "at or above")):
        if clear not in items:
            continue
        if bound not in items:
            reader.error(items[clear].loc, f"{what}.{clear} needs '{bound}' "
                                           f"(it is the hysteresis bound for {bound})")
            ok = False
        elif numbers[clear] is not None and numbers[bound] is not None and (
                numbers[clear] > numbers[bound] if clear == "clear_below"  # type: ignore[operator]
                else numbers[clear] < numbers[bound]):  # type: ignore[operator]
            reader.error(items[clear].loc,
                         f"{what}.{clear} ({numbers[clear]:g}) must be {side} "
                         f"{bound} ({numbers[bound]:g})")
            ok = False
    if ok and above is not None and below is not None:
        high = numbers["clear_below"] if numbers["clear_below"] is not None else above
        low = numbers["clear_above"] if numbers["clear_above"] is not None else below
        if low >= high:
            reader.error(m.loc, f"{what}: the clear bounds leave no value that resolves the "
                                f"alert (it must fall above {low:g} and below {high:g})")
            ok = False
    if not ok or field is None:
        return None
    return s.Threshold(m.loc, field, bounds["above"], bounds["below"], equals, in_,
                       bounds["clear_below"], bounds["clear_above"])


def _field_bound(reader: Reader, node: Mapping, what: str) -> s.FieldBound | None:
    """``{field: device.fields.max_temp}``: a bound read from the entity's own field."""
    m = reader.mapping(node, what, ("field",), required=("field",))
    if m is None or "field" not in m.items:
        return None
    name = reader.string(m.items["field"], f"{what}.field")
    if name is not None and name in TIME_FIELDS:
        reader.error(m.items["field"].loc, f"{what}.field: a bound cannot be the virtual "
                                           f"field {name}")
        return None
    return None if name is None else s.FieldBound(name)


def _comparable(reader: Reader, node: Node, what: str) -> s.Scalar | None:
    scalar = reader.scalar(node, what, "a number, a string or true/false")
    if scalar is None:
        return None
    value = scalar.value
    if isinstance(value, (bool, int, float)):
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value
    return scalar.text


def _missing(reader: Reader, node: Node, what: str) -> s.Missing | None:
    m = reader.mapping(node, what, ("field", "nulls", "of"), required=("field", "nulls"))
    if m is None:
        return None
    items = m.items
    depth = s.HISTORY_DEPTH
    field = reader.string(items["field"], f"{what}.field") if "field" in items else None
    nulls = reader.integer(items["nulls"], f"{what}.nulls", 1, depth) if "nulls" in items \
        else None
    of = reader.integer(items["of"], f"{what}.of", 1, depth) if "of" in items else None
    if "of" in items and of is None or field is None or nulls is None:
        return None
    if of is not None and nulls > of:
        reader.error(items["nulls"].loc,
                     f"{what}.nulls ({nulls}) cannot be more than of ({of})")
        return None
    return s.Missing(m.loc, field, nulls, of)


def _silent(reader: Reader, node: Node, what: str) -> s.Silent | None:
    m = reader.mapping(node, what, ("after",), required=("after",))
    if m is None or "after" not in m.items:
        return None
    after = reader.duration(m.items["after"], f"{what}.after", positive=True)
    return None if after is None else s.Silent(m.loc, after)


def _source_down(reader: Reader, node: Node, what: str) -> s.SourceDown | None:
    if isinstance(node, Scalar) and node.value is None:  # `source_down:` alone: at once
        return s.SourceDown(node.loc, 0.0)
    m = reader.mapping(node, what, ("after",))
    if m is None:
        return None
    if "after" not in m.items:
        return s.SourceDown(m.loc, 0.0)
    after = reader.duration(m.items["after"], f"{what}.after")
    return None if after is None else s.SourceDown(m.loc, after)


def _status(reader: Reader, node: Node, what: str) -> s.Status | None:
    if isinstance(node, Scalar) and node.value is None:  # `status:` alone: any non-normal
        return s.Status(node.loc, NOT_NORMAL)
    m = reader.mapping(node, what, ("in",))
    if m is None:
        return None
    if "in" not in m.items:
        return s.Status(m.loc, NOT_NORMAL)
    names = reader.strings(m.items["in"], f"{what}.in")
    if names is None:
        return None
    if not names:
        reader.error(m.items["in"].loc, f"{what}.in must list at least one status")
        return None
    for name in names:
        if name == "normal":
            reader.error(m.items["in"].loc, f"{what}.in: 'normal' is the status that resolves "
                                            "the alert; list blocked, unknown or disallowed")
            return None
        if name not in NOT_NORMAL:
            reader.choice(Scalar(m.items["in"].loc, name, name, name, True, False),
                          f"{what}.in item", NOT_NORMAL)
            return None
    return s.Status(m.loc, tuple(dict.fromkeys(names)))


def _change(reader: Reader, node: Node, what: str) -> s.Change | None:
    m = reader.mapping(node, what, ("field", "drop", "rise", "within"),
                       required=("field", "within"))
    if m is None:
        return None
    items = m.items
    field = reader.string(items["field"], f"{what}.field") if "field" in items else None
    within = reader.duration(items["within"], f"{what}.within", positive=True) \
        if "within" in items else None
    directions = [k for k in ("drop", "rise") if k in items]
    if len(directions) != 1:
        reader.error(m.loc, f"{what} needs exactly one of drop or rise")
        return None
    direction = directions[0]
    amount = reader.number(items[direction], f"{what}.{direction}")
    if amount is not None and amount <= 0:
        reader.error(items[direction].loc,
                     f"{what}.{direction} must be a positive amount, not {amount:g}")
        return None
    if field is None or within is None or amount is None:
        return None
    return s.Change(m.loc, field, within, amount if direction == "drop" else None,
                    amount if direction == "rise" else None)


def _combination(reader: Reader, kind: str, node: Node, what: str,
                 depth: int) -> s.Condition | None:
    items = reader.sequence(node, what)
    if items is None:
        return None
    if not items:
        reader.error(node.loc, f"{what} must list at least one condition")
        return None
    parsed: list[s.Condition] = []
    ok = True
    for index, item in enumerate(items, 1):
        where = f"{what}[{index}]"
        m = reader.mapping(item, where)
        if m is None:
            ok = False
            continue
        if len(m.items) != 1:
            reader.error(m.loc, f"{where} must be one condition such as "
                                "'threshold: {field: x, above: 1}'")
            ok = False
            continue
        (sub_kind, sub_node), = m.items.items()
        if sub_kind not in COMBINABLE:
            reason = (f"'{sub_kind}' cannot be combined in {kind}: it has no value on a "
                      "message; give it a rule of its own") if sub_kind in CONDITION_KINDS \
                else f"unknown condition '{sub_kind}'{suggest(sub_kind, COMBINABLE)}"
            reader.error(m.keys[sub_kind], f"{where}: {reason}")
            ok = False
            continue
        condition = parse_condition(reader, sub_kind, sub_node, where, depth)
        if condition is None:
            ok = False
        else:
            parsed.append(condition)
    if not ok:
        return None
    return (s.AllOf if kind == "all" else s.AnyOf)(node.loc, tuple(parsed))
