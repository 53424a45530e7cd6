"""``console://``: alertd's own output, a message printed to the daemon's stdout at once
(no outbox, no retry: a write to stdout does not fail the way a service does). ``alertd
notify`` and ``alertd replay`` print the same way."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TextIO


def print_console(out: TextIO, title: str, body: str, at: float) -> None:
    """``2026-12-01T10:00:05Z TITLE`` and the body indented below it."""
    stamp = datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = [f"{stamp} {title}",
             *(f"    {line}" if line else "" for line in body.splitlines())]
    out.write("\n".join(lines) + "\n")
    out.flush()
