"""The notify planner: what each channel is told, and when. Pure; ``now`` is passed in.

A facade over the stages (``notify/stages/``), in the order a notification meets them
(Alertmanager's pipeline, smaller):

  1. silence - a silence covering the alert drops the notice; a firing alert is remembered,
               and notified when the silence ends if it is still firing then;
  2. quiet   - while the channel's quiet hours are open the notice waits; when they end,
               the alerts still firing go out as one digest (the rest are counted);
  3. group   - notices for one channel within the rule's ``group_wait`` of the first one
               become one message, listed by rule.

Alertmanager channels (``alertmanager://``) skip all three: their notices pass at once, and
firing alerts are posted again on the channel's ``resend`` interval (``alertmanager.py``).

Every step returns a ``Plan`` (``notify/plan.py``): the messages to send, the inbox rows
done with, and each ``Decision`` with its ``Reason`` (``notify/decision.py``, which also
words them for the log).

Invariants:
  * every entry offered is consumed exactly once: sent in one message, or dropped with a
    reason (silenced, resolved during quiet hours); ``Plan.consumed`` names it then;
  * nothing is sent to a channel while it is muted;
  * a notice is never held past ``next_deadline()``: the loop must call ``on_timer`` then.

Entries carry the id of their row in the store's inbox, so a restart replays what was
offered but not yet consumed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from alertd.config import schema as s
from alertd.model import NoticeKind, Notification
from alertd.notify.alertmanager import AlertmanagerStage, Post
from alertd.notify.decision import Decision, Reason
from alertd.notify.plan import NOTHING, AlertKey, Entry, Message, Plan, Settled, key
from alertd.notify.silences import Silence
from alertd.notify.stages.group import GroupStage, grouped
from alertd.notify.stages.quiet import QuietStage
from alertd.notify.stages.silence import SilenceStage

__all__ = ["Entry", "Message", "Plan", "Planner", "Settled"]


class Planner:
    def __init__(self, rules: Iterable[s.Rule], channels: Mapping[str, s.Channel],
                 silences: Iterable[Silence] = (), *,
                 generator_url: str | None = None) -> None:
        self.rules = {rule.name: rule for rule in rules}
        self.channels = dict(channels)
        self.alertmanager = AlertmanagerStage(self.rules, self.channels, generator_url)
        self.silence = SilenceStage(silences)
        self.quiet = QuietStage(self.channels)
        self.group = GroupStage(self.rules)
        self._firing: dict[AlertKey, Notification] = {}  # the newest word on firing alerts

    # ---- input -------------------------------------------------------------------------

    def set_silences(self, silences: Iterable[Silence]) -> None:
        """Replace the silences (the loop re-reads the store every second)."""
        self.silence.set_silences(silences)

    def seed(self, firing: Iterable[Notification]) -> None:
        """Alerts found firing at start (restored from the store): known to the digest and
        to silences, so that one silenced across a restart is still notified when the
        silence ends."""
        firing = list(firing)
        for note in firing:
            self._firing[key(note)] = note
        self.alertmanager.seed(firing)

    def settle(self, settled: Settled) -> None:
        alert = (settled.rule, settled.entity)
        self._firing.pop(alert, None)
        self.alertmanager.settle(*alert)
        self.silence.settle(alert)

    def offer(self, entry: Entry, now: float) -> Plan:
        note = entry.note
        if entry.channel not in self.channels:  # left by a run with another config
            return Plan.decided(Decision(Reason.CHANNEL_GONE, entry.channel, note), [entry])
        if note.state == NoticeKind.FIRING:
            self._firing[key(note)] = note
        elif note.state == NoticeKind.RESOLVED:
            self._firing.pop(key(note), None)
        if self.alertmanager.handles(entry.channel):  # no silence, quiet hours or group
            post = self.alertmanager.offer(entry.channel, note, now)
            return Plan.decided(Decision(Reason.ALERTMANAGER, entry.channel, note),
                                [entry]) + _posted([post])
        silenced = self.silence.offer(entry, now)
        return silenced if silenced is not None else self._queue(entry, now)

    def step(self, taken: Iterable[Entry | Settled], now: float) -> Plan:
        """One wake-up of the loop: what was taken from the inbox, in order, then what is
        due at ``now``."""
        plans = []
        for item in taken:
            if isinstance(item, Entry):
                plans.append(self.offer(item, now))
            else:
                self.settle(item)
        plans.append(self.on_timer(now))
        return Plan.join(plans)

    # ---- time ----------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        times = [self.group.next_deadline(), self.quiet.next_deadline(),
                 self.silence.next_deadline(), self.alertmanager.next_deadline()]
        return min((time for time in times if time is not None), default=None)

    def on_timer(self, now: float) -> Plan:
        """Release what is due at ``now``: Alertmanager resends, ended silences, ended quiet
        hours, full groups."""
        plans = [_posted(self.alertmanager.on_timer(now))]
        for released in self.silence.on_timer(now, self._firing):
            plans += [Plan(decisions=(released.decision,)), self._queue(released.entry, now)]
        plans.append(self.quiet.on_timer(now, self._firing, self.rules))
        for channel, entries in self.group.due(now):
            taken = self.quiet.take_group(channel, entries, now)
            plans.append(grouped(channel, entries, self.rules) if taken is None
                         else Plan(decisions=(taken,)))
        return Plan.join(plans)

    # ---- stages 2 and 3 ------------------------------------------------------------------

    def _queue(self, entry: Entry, now: float) -> Plan:
        """Wait out quiet hours, or join the channel's group."""
        held = self.quiet.hold(entry, now)
        if held is not None:
            return Plan(decisions=(held,))
        self.group.add(entry, now)
        return NOTHING


def _posted(posts: Iterable[Post]) -> Plan:
    return Plan(messages=tuple(Message(post.channel, post.title, post.body, post.notes)
                               for post in posts))
