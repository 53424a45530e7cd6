"""Typed readers for located YAML nodes.

Each reader returns the value or None, and on None has already appended a located problem
that says what was expected, so callers can go on and collect every error of a file in one
pass (as Prometheus' rulefmt does). Messages quote what the user wrote, never a value taken
from the environment.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import date, datetime, timezone

from alertd.config.nodes import Mapping, Node, Scalar, Sequence, kind_of
from alertd.errors import Loc, Problem

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+")
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
DURATION_HELP = "write 45s, 10m, 2h, 1d, 1h30m or a number of seconds"


def suggest(name: str, valid: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the nearest valid name, or an empty string."""
    import difflib  # only for a mistake

    close = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def parse_duration(text: str) -> float | None:
    """Seconds for ``45s``, ``1h30m``, ``250ms`` or a bare number; None when not a duration."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    if not _DURATION.fullmatch(text):
        return None
    return sum(float(number) * _UNITS[unit] for number, unit in _PART.findall(text))


class Reader:
    """Reads typed values out of nodes, appending a problem for each one it cannot read."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems

    def error(self, loc: Loc, message: str) -> None:
        self.problems.append(Problem(loc, message))

    def mapping(self, node: Node | None, what: str, allowed: Iterable[str] | None = None,
                required: Iterable[str] = ()) -> Mapping | None:
        if node is None:
            return None
        if not isinstance(node, Mapping):
            self.error(node.loc, f"{what} must be a mapping of keys to values, "
                                 f"not {kind_of(node)}")
            return None
        if allowed is not None:
            valid = list(allowed)
            for key, loc in node.keys.items():
                if key not in valid and not (what == "the top level" and key.startswith("x-")):
                    self.error(loc, f"unknown key '{key}' in {what}{suggest(key, valid)}")
        for key in required:
            if key not in node.items:
                self.error(node.loc, f"{what} needs '{key}'")
        return node

    def sequence(self, node: Node, what: str) -> tuple[Node, ...] | None:
        if isinstance(node, Sequence):
            return node.items
        self.error(node.loc, f"{what} must be a list, not {kind_of(node)}")
        return None

    def scalar(self, node: Node, what: str, expected: str) -> Scalar | None:
        if isinstance(node, Scalar) and node.broken:
            return None  # the unset variable was reported already
        if isinstance(node, Scalar) and node.value is not None:
            return node
        self.error(node.loc, f"{what} must be {expected}, not {kind_of(node)}")
        return None

    def string(self, node: Node, what: str) -> str | None:
        scalar = self.scalar(node, what, "a string")
        if scalar is None:
            return None
        if scalar.text.strip() == "" and not scalar.from_env:
            self.error(node.loc, f"{what} must not be empty")
            return None
        return scalar.text

    def strings(self, node: Node, what: str) -> tuple[str, ...] | None:
        """One string or a list of them."""
        if isinstance(node, Scalar):
            one = self.string(node, what)
            return None if one is None else (one,)
        items = self.sequence(node, what)
        if items is None:
            return None
        values = [self.string(item, f"{what} item") for item in items]
        return None if any(v is None for v in values) else tuple(v for v in values if v)

    def number(self, node: Node, what: str) -> float | None:
        scalar = self.scalar(node, what, "a number")
        if scalar is None:
            return None
        value = scalar.value
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            self.error(node.loc, f"{what} must be a number, not {kind_of(node)}")
            return None
        return float(value)

    def integer(self, node: Node, what: str, minimum: int | None = None,
                maximum: int | None = None) -> int | None:
        scalar = self.scalar(node, what, "a whole number")
        if scalar is None:
            return None
        value = scalar.value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(node.loc, f"{what} must be a whole number, not {kind_of(node)}")
            return None
        if minimum is not None and value < minimum:
            self.error(node.loc, f"{what} must be at least {minimum}, not {value}")
            return None
        if maximum is not None and value > maximum:
            self.error(node.loc, f"{what} must be at most {maximum}, not {value}")
            return None
        return value

    def boolean(self, node: Node, what: str) -> bool | None:
        scalar = self.scalar(node, what, "true or false")
        if scalar is None:
            return None
        if isinstance(scalar.value, bool):
            return scalar.value
        self.error(node.loc, f"{what} must be true or false, not {kind_of(node)}")
        return None

    def duration(self, node: Node, what: str, *, positive: bool = False) -> float | None:
        scalar = self.scalar(node, what, f"a duration ({DURATION_HELP})")
        if scalar is None:
            return None
        value = scalar.value
        seconds = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            seconds = float(value)
        elif isinstance(value, str):
            stripped = value.strip()
            if stripped.startswith("-") and parse_duration(stripped[1:]) is not None:
                seconds = -1.0
            else:
                seconds = parse_duration(stripped)
        if seconds is None or not math.isfinite(seconds):
            self.error(node.loc, f"{what}: '{scalar.shown}' is not a duration ({DURATION_HELP})")
            return None
        if seconds < 0:
            self.error(node.loc, f"{what} must not be negative, not '{scalar.shown}'")
            return None
        if positive and seconds == 0:
            self.error(node.loc, f"{what} must be longer than 0s")
            return None
        return seconds

    def choice(self, node: Node, what: str, choices: Iterable[str]) -> str | None:
        options = list(choices)
        text = self.string(node, what)
        if text is None:
            return None
        if text not in options:
            self.error(node.loc, f"{what} must be one of {', '.join(options)}, not "
                                 f"'{node.shown if isinstance(node, Scalar) else text}'"
                                 f"{suggest(text, options)}")
            return None
        return text

    def timestamp(self, node: Node, what: str) -> datetime | None:
        scalar = self.scalar(node, what, "a time such as 2026-12-01T08:00:00Z")
        if scalar is None:
            return None
        value = scalar.value
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            except ValueError:
                value = None
        if isinstance(value, date) and not isinstance(value, datetime):
            value = datetime(value.year, value.month, value.day)
        if not isinstance(value, datetime):
            self.error(node.loc, f"{what}: '{scalar.shown}' is not a time "
                                 "(write it as 2026-12-01T08:00:00Z)")
            return None
        if value.tzinfo is None:  # times without an offset are UTC, as documented
            value = value.replace(tzinfo=timezone.utc)
        return value
