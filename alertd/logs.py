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
    handler.addFilter(redact)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    logging.getLogger("apprise").setLevel(logging.DEBUG if debug else logging.WARNING)
    for noisy in ("trio-websocket", "trio_websocket"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return redact
