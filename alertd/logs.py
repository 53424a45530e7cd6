"""Logging for operators: one line per event worth their time, on stderr, as text or JSON.

Every record passes a filter that replaces known secret values (API keys, hashes, the secret
parts of apprise URLs) with ``***``, so no log line can leak them, whatever code wrote it;
ordinary words, host names and channel names are never masked.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import datetime, timezone

from alertd.config import schema as s
from alertd.escape import cut, escape, safe

MESSAGE_LIMIT = 2000  # characters of one log message, after escaping


class Redact(logging.Filter):
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets: list[str] = []
        self.update(secrets)

    def update(self, secrets: Iterable[str]) -> None:
        # longest first, so a secret that contains another is masked whole
        self.secrets = sorted({x for x in secrets if len(x) >= 4}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            for secret in self.secrets:
                message = message.replace(secret, "***")
            record.msg, record.args = message, None
        return True


class Escape(logging.Filter):
    """One line per record, whatever a device or server wrote: every control character is
    escaped (a newline cannot forge a second line, ESC cannot reach the terminal), each
    argument is cut to 200 characters and the whole message to ``MESSAGE_LIMIT``.

    ``mask`` is the secret filter (``Redact``): each argument, and the message, pass it
    before being cut, so a cut can never split a secret and leave half of it unmasked."""

    def __init__(self, mask: logging.Filter | None = None) -> None:
        super().__init__()
        self.mask = mask

    def masked(self, text: str) -> str:
        if self.mask is None:
            return text
        record = logging.LogRecord("", logging.INFO, "", 0, text, None, None)
        self.mask.filter(record)
        return record.getMessage()

    def bounded(self, arg: object) -> object:
        return arg if isinstance(arg, (int, float)) else safe(self.masked(str(arg)))

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple):
            record.args = tuple(self.bounded(arg) for arg in args)
        elif isinstance(args, dict):
            record.args = {key: self.bounded(value) for key, value in args.items()}
        message = escape(self.masked(record.getMessage()))
        record.msg, record.args = cut(message, MESSAGE_LIMIT), None
        return True


def secrets_of(config: s.Config) -> list[str]:
    """Everything in a config that must never be logged: the sources' API keys and hashes,
    and the secret parts of the channels' apprise URLs as apprise's own privacy rendering
    knows them (tokens, passwords, keys). Host names, channel names, paths and words stay
    readable."""
    from alertd.senders.apprise_sender import url_secrets

    found: list[str] = []
    for source in config.sources.values():
        found.append(source.api_key if isinstance(source, s.ElementSource) else source.hash)
    for channel in config.channels.values():
        for url in channel.urls:
            found.extend(url_secrets(url))
    if config.http_access.token:
        found.append(config.http_access.token)
    return found


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({"time": datetime.fromtimestamp(record.created, timezone.utc)
                           .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                           "level": record.levelname.lower(), "logger": record.name,
                           "message": record.getMessage()})


def setup(debug: bool, fmt: str) -> Redact:
    """Configure the root logger once; returns the filter so secrets can be added."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(
        "%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S"))
    redact = Redact()
    handler.addFilter(Escape(mask=redact))  # masks each value with redact, then cuts it
    handler.addFilter(redact)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    logging.getLogger("apprise").setLevel(logging.DEBUG if debug else logging.WARNING)
    for noisy in ("trio-websocket", "trio_websocket"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return redact
