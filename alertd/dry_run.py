"""``alertd run --dry-run``: live sources and rules, every notification printed, none sent.

Every channel keeps its name, quiet hours and grouping, and its URLs are replaced by
``console://``: what would have been sent to it is printed to stdout, in the console
format, when it would have been sent. With an in-memory state store (``cli.cmd_run``), no
state file is read or written: alerts start empty, replay positions are not kept.
"""

from __future__ import annotations

import dataclasses

from alertd.config import schema as s
from alertd.senders.apprise_sender import CONSOLE_URL


def printed_only(config: s.Config) -> s.Config:
    """The configuration with every channel printing instead of sending."""
    channels = {name: dataclasses.replace(channel, urls=(CONSOLE_URL,))
                for name, channel in config.channels.items()}
    return dataclasses.replace(config, channels=channels)
