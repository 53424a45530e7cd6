"""Recordings: every frame the sources received, as it arrived, in rotating JSON Lines files.

``alertd run --record DIR`` and ``alertd record`` write them; ``alertd replay`` reads them
back (``replay.py``). One line per record, in arrival order::

    {"t": 1767225600.125, "source": "cold", "socket": "readings", "frame": "[{...}]"}
    {"t": 1767225600.125, "source": "cold", "socket": "readings", "frame_b64": "..."}
    {"t": 1767225599.9, "source": "cold", "socket": "readings", "event": "start", "after": null}
    {"t": 1767225600.0, "source": "fleet", "socket": "", "event": "open"}
    {"t": 1767225700.0, "source": "fleet", "socket": "", "event": "closed"}

``t`` is the daemon's clock (epoch seconds) when the frames were handed to the engine;
frames that the client handed on together (an ELEMENT replay after a reconnect, gathered
and evaluated in measurement order) share one ``t``, so a replay evaluates them together
too. ``start`` says where a socket's decoder began (the ELEMENT replay position, the Navixy
queue positions that a state file held); ``open``/``closed`` are the socket's standing with
the engine (confirmed, ended), which make ``SourceUp``/``SourceDown``. Binary frames are
written base64-encoded.

Secrets are never written: a frame holds no URL (the sockets' URLs carry the keys, and are
not recorded), what alertd sends (Navixy's subscribe action with its hash) is not a
received frame, and any secret of the configuration that a server echoes in a frame is
replaced by ``***``.

Size: files of ``file_size`` bytes (``frames-<UTC time>-<n>.jsonl``); when the folder's
recordings pass ``max_total``, the oldest files are removed. A write that fails (disk full)
logs one line and stops recording; the daemon goes on.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

log = logging.getLogger("alertd.record")
FILE_SIZE = 10 * 1024 * 1024
MAX_TOTAL = 100 * 1024 * 1024
NAME = re.compile(r"frames-(\d{8}T\d{6}Z)-(\d{6})\.jsonl$")
MASK = "***"


def parse_size(text: str) -> int | None:
    """``100MB``, ``1GB``, ``512KB``, ``2000000`` (bytes); None when unreadable."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*", text, re.IGNORECASE)
    if not found:
        return None
    unit = (found.group(2) or "").lower().rstrip("b").rstrip("i")
    factor = {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3, "t": 1024 ** 4}[unit]
    size = int(float(found.group(1)) * factor)
    return size if size > 0 else None


def recordings(folder: Path) -> list[Path]:
    """The recording files of a folder, oldest first."""
    try:
        names = [p for p in folder.iterdir() if NAME.search(p.name)]
    except OSError:
        return []
    return sorted(names, key=lambda p: NAME.search(p.name).groups())  # type: ignore[union-attr]


class Recorder:
    """Appends records to the current file of ``folder``; rotates and prunes by size."""

    def __init__(self, folder: str | Path, clock: Callable[[], float], *,
                 secrets: Iterable[str] = (), max_total: int = MAX_TOTAL,
                 file_size: int = FILE_SIZE) -> None:
        self.folder = Path(folder)
        self.clock = clock
        self.secrets = sorted((x for x in secrets if len(x) >= 4), key=len, reverse=True)
        self.file_size = min(file_size, max_total)
        self.max_total = max_total
        self.folder.mkdir(parents=True, exist_ok=True)
        self._file: TextIO | None = None
        self._written = 0
        self.failed = False
        existing = recordings(self.folder)
        last = NAME.search(existing[-1].name) if existing else None
        self._number = int(last.group(2)) if last else 0
        self.records = 0

    # ---- what the sources call -------------------------------------------------------

    def frames(self, source: str, socket: str, frames: Iterable[str | bytes]) -> None:
        """Frames received on one socket, handed to the engine together, now."""
        now = self.clock()
        for frame in frames:
            record: dict[str, Any] = {"t": now, "source": source, "socket": socket}
            if isinstance(frame, bytes):
                for secret in self.secrets:
                    frame = frame.replace(secret.encode(), MASK.encode())
                record["frame_b64"] = base64.b64encode(frame).decode("ascii")
            else:
                record["frame"] = self._masked(frame)
            self._append(record)

    def start(self, source: str, socket: str, **state: Any) -> None:
        """Where a socket's decoder starts (replay position, queue positions)."""
        self._append({"t": self.clock(), "source": source, "socket": socket,
                      "event": "start", **state})

    def connection(self, source: str, socket: str, up: bool) -> None:
        self._append({"t": self.clock(), "source": source, "socket": socket,
                      "event": "open" if up else "closed"})

    # ---- files -----------------------------------------------------------------------

    def _masked(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def _append(self, record: dict[str, Any]) -> None:
        if self.failed:
            return
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
        try:
            if self._file is None or self._written >= self.file_size:
                self._rotate()
            assert self._file is not None
            self._file.write(line)
            self._file.flush()
        except OSError as error:
            self.failed = True
            log.error("record: cannot write to %s: %s; recording stopped (alertd goes on)",
                      self.folder, error.strerror or error)
            return
        self._written += len(line.encode("utf-8"))
        self.records += 1

    def _rotate(self) -> None:
        if self._file is not None:
            self._file.close()
        self._number += 1
        stamp = datetime.fromtimestamp(self.clock(), timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        path = self.folder / f"frames-{stamp}-{self._number:06d}.jsonl"
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - kept open
        self._written = 0
        self._prune(keep=path)

    def _prune(self, keep: Path) -> None:
        """Remove the oldest files until the folder's recordings fit ``max_total`` with a
        full current file."""
        files = [p for p in recordings(self.folder) if p != keep]
        sizes = {p: p.stat().st_size for p in files}
        total = sum(sizes.values()) + self.file_size
        for path in files:
            if total <= self.max_total:
                break
            try:
                os.remove(path)
            except FileNotFoundError:
                pass
            total -= sizes[path]

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
