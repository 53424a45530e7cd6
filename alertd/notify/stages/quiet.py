"""Stage 2, quiet hours: while a channel's ``mute`` windows are open its notices wait (the
windows themselves are ``notify/mute.py``); when they end, the alerts among them that still
fire go out as one digest, and the rest are counted in it.

Invariants: every entry held here is consumed when its channel's quiet hours end, whether
or not a digest goes out; nothing leaves for a channel while its quiet hours are open;
``next_deadline`` is the soonest end of a channel's quiet hours.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from alertd.config import schema as s
from alertd.model import Notification
from alertd.notify.decision import Decision, Reason
from alertd.notify.message import compose_digest
from alertd.notify.mute import muted_until
from alertd.notify.plan import AlertKey, Entry, Message, Plan, inbox_ids, key


@dataclass(slots=True)
class _Quiet:
    since: float
    until: float
    entries: list[Entry]


class QuietStage:
    def __init__(self, channels: Mapping[str, s.Channel]) -> None:
        self.channels = channels
        self._quiet: dict[str, _Quiet] = {}

    def hold(self, entry: Entry, now: float) -> Decision | None:
        """Keep ``entry`` for its channel's digest when quiet hours are open at ``now``;
        None when the channel may speak."""
        channel = self.channels[entry.channel]
        quiet = self._quiet.get(entry.channel)
        until = muted_until(channel, now) if quiet is None else quiet.until
        if until is None:
            return None
        if quiet is None:
            quiet = self._quiet[entry.channel] = _Quiet(now, until, [])
        quiet.entries.append(entry)
        return Decision(Reason.QUIET_HOURS, entry.channel, entry.note, until=until,
                        timezone=channel.timezone)

    def take_group(self, channel: str, entries: Sequence[Entry], now: float) -> Decision | None:
        """A group due at ``now``: when quiet hours began while it waited, the digest takes
        it; None when the channel may speak."""
        until = muted_until(self.channels[channel], now)
        if until is None:
            return None
        quiet = self._quiet.get(channel)
        if quiet is None:
            quiet = self._quiet[channel] = _Quiet(now, until, [])
        quiet.entries[:0] = entries  # before what came in quiet hours: they were first
        return Decision(Reason.QUIET_HOURS_TOOK_GROUP, channel, count=len(entries))

    def next_deadline(self) -> float | None:
        return min((quiet.until for quiet in self._quiet.values()), default=None)

    def on_timer(self, now: float, firing: Mapping[AlertKey, Notification],
                 rules: Mapping[str, s.Rule]) -> Plan:
        """The digests of the channels whose quiet hours are over at ``now``; ``firing`` is
        the newest word on each firing alert."""
        ended = [(channel, quiet) for channel, quiet in self._quiet.items()
                 if quiet.until <= now]
        for channel, _ in ended:
            del self._quiet[channel]
        return Plan.join(digest(channel, quiet.since, quiet.entries, now, firing, rules)
                         for channel, quiet in ended)


def digest(channel: str, since: float, entries: Sequence[Entry], now: float,
           firing: Mapping[AlertKey, Notification], rules: Mapping[str, s.Rule]) -> Plan:
    """One message of the alerts among ``entries`` that still fire at ``now`` (none when no
    alert does); every entry is consumed."""
    alerts = dict.fromkeys(key(entry.note) for entry in entries)
    still = [dataclasses.replace(firing[alert], at=now, repeat=False)
             for alert in alerts if alert in firing]
    settled = sum(1 for alert in alerts if alert not in firing)
    consumed = inbox_ids(entries)
    if not still:
        return Plan(consumed=consumed, decisions=(Decision(
            Reason.NOTHING_STILL_FIRING, channel, settled=settled),))
    title, body = compose_digest(still, settled, since, rules)
    return Plan((Message(channel, title, body, tuple(still)),), consumed,
                (Decision(Reason.DIGEST, channel, count=len(still)),))
