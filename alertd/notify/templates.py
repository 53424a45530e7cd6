"""Safe ``str.format``-style templates for titles and bodies.

Only the placeholders of SPEC section 5 are allowed, ``{labels[KEY]}`` is the one indexing,
and attribute access is refused, so a template can never reach into Python objects. A
template is checked once when the config is loaded (``problems``) and rendered per
notification (``render``), where a missing value renders as an empty string.
"""

from __future__ import annotations

import functools
import string
from collections.abc import Mapping
from typing import Any

PLACEHOLDERS = ("rule", "severity", "state", "source", "entity", "entity_name", "field",
                "value", "since", "duration", "labels", "description")


def problems(template: str) -> list[str]:
    """What is wrong with a template, as messages for the operator (empty when fine)."""
    found: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as error:
        return [f"template is malformed ({error}); write a literal brace as {{{{ or }}}}"]
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if conversion:
            found.append(f"placeholder {{{name}!{conversion}}}: conversions such as "
                         f"!{conversion} are not allowed")
            continue
        if name == "":
            found.append("empty placeholder {} (name one, e.g. {entity})")
            continue
        base, _, rest = name.partition("[")
        if "." in base:
            found.append(f"placeholder {{{name}}} uses attribute access, which is not allowed")
            continue
        if base not in PLACEHOLDERS:
            import difflib  # only for a mistake

            close = difflib.get_close_matches(base, PLACEHOLDERS, n=1, cutoff=0.6)
            hint = f" (did you mean {{{close[0]}}}?)" if close else ""
            found.append(f"unknown placeholder {{{name}}}{hint}; use one of "
                         + ", ".join("{labels[KEY]}" if p == "labels" else "{" + p + "}"
                                     for p in PLACEHOLDERS))
            continue
        if base == "labels":
            key = rest[:-1] if rest.endswith("]") else ""
            if not key or "[" in key or "]" in key or "." in key:
                found.append(f"placeholder {{{name}}}: write labels as {{labels[KEY]}}")
        elif rest:
            found.append(f"placeholder {{{name}}} cannot be indexed")
        if spec and ("{" in spec):
            found.append(f"placeholder {{{name}}}: nested placeholders are not allowed")
    return found


class _SafeFormatter(string.Formatter):
    def get_field(self, field_name: str, args: Any, kwargs: Any) -> tuple[Any, str]:
        base, _, rest = field_name.partition("[")
        if base == "labels":
            labels = kwargs.get("labels") or {}
            return labels.get(rest.rstrip("]"), ""), field_name
        return kwargs.get(base, ""), field_name

    def format_field(self, value: Any, format_spec: str) -> str:
        if value is None:
            return ""
        if isinstance(value, float) and not format_spec:
            return f"{value:.15g}"
        try:
            return str(super().format_field(value, format_spec))
        except (ValueError, TypeError):  # e.g. {value:.1f} on a string value
            return str(value)


_FORMATTER = _SafeFormatter()
_Pieces = tuple[tuple[str, "str | None", str], ...]


@functools.lru_cache(maxsize=1024)
def _pieces(template: str) -> _Pieces | None:
    """A template parsed once (each notification renders it again): its text and named
    placeholders with their specs; None for one ``vformat`` must render (numbered or empty
    placeholders, conversions, nested specs: what ``problems`` refuses) or cannot parse."""
    try:
        parsed = tuple(_FORMATTER.parse(template))
    except ValueError:
        return None
    pieces = []
    for literal, name, spec, conversion in parsed:
        if name is not None and (not name or name[0].isdigit() or conversion
                                 or "{" in (spec or "")):
            return None
        pieces.append((literal, name, spec or ""))
    return tuple(pieces)


def render(template: str, values: Mapping[str, Any]) -> str:
    """Fill a template checked by ``problems``; unknown or missing values render empty."""
    pieces = _pieces(template)
    if pieces is not None:  # what ``vformat`` does for these, without parsing it again
        out = []
        for literal, name, spec in pieces:
            out.append(literal)
            if name is not None:
                value = _FORMATTER.get_field(name, (), values)[0]
                out.append(_FORMATTER.format_field(value, spec))
        return "".join(out)
    try:
        return str(_FORMATTER.vformat(template, (), dict(values)))
    except (ValueError, IndexError, KeyError):  # unchecked template: show it as written
        return template
