"""Making text from devices and servers safe to show: one line, no terminal controls, bounded.

A device name, a field value or a server's error text is written by someone else. Shown
raw, a newline forges a second log line or a second ``[RESOLVED]`` line inside a title, an
ESC sequence recolours or clears the operator's terminal, and a 1 MB name makes a 2 MB
message. ``escape`` writes every control character (C0, DEL, C1, the Unicode line and
paragraph separators, and the bidirectional overrides that reorder what a reader sees) as a
visible escape (``\\n``, ``\\x1b``, ``\\u2028``); ``cut`` bounds a length with an ellipsis.
Pure functions: logs, tables and notifications all use them, and ``plural`` (``2 alerts``),
here because ``alertd check`` imports nothing else of the notifications.
"""

from __future__ import annotations

import re

FIELD_LIMIT = 200  # one value from outside (an entity name, a field value) in a message or log
ELLIPSIS = "…"

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _visible(match: re.Match[str]) -> str:
    char = match.group(0)
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def needs_escape(text: str) -> bool:
    """Whether ``escape`` would change ``text``."""
    return _CONTROL.search(text) is not None


def escape(text: str) -> str:
    """``text`` on one line, with every control character written as a visible escape."""
    return _CONTROL.sub(_visible, text) if _CONTROL.search(text) else text


def cut(text: str, limit: int = FIELD_LIMIT) -> str:
    """``text`` of at most ``limit`` characters; a longer one ends with an ellipsis."""
    return text if len(text) <= limit else text[:limit - 1] + ELLIPSIS


def safe(text: str, limit: int = FIELD_LIMIT) -> str:
    """One value from outside, ready to show: cut first (so escaping 1 MB costs nothing),
    escaped, and cut again (escapes make it longer)."""
    return cut(escape(cut(text, limit)), limit)


def plural(count: int, word: str) -> str:
    """``1 alert``, ``2 alerts``: the count with its noun."""
    return f"{count} {word}{'' if count == 1 else 's'}"
