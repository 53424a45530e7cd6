"""The notify planner: what each channel is told, and when. Pure; ``now`` is passed in.

Stages, in the order a notification meets them (Alertmanager's pipeline, smaller):

  1. silence  - a silence (config or ``alertd silence``) covering the alert drops the notice;
                a firing alert is remembered, and notified when the silence ends if it is
                still firing then;
  2. mute     - while the channel's quiet hours are open the notice waits; when they end,
                the alerts still firing go out as one digest (the rest are counted);
  3. group    - notices for one channel within the rule's ``group_wait`` of the first one
                become one message, listed by rule.

Alertmanager channels (``alertmanager://``) skip all three: their notices pass at once, and
firing alerts are posted again on the channel's ``resend`` interval (``alertmanager.py``).

Invariants:
  * every entry offered is consumed exactly once: sent in one message, or dropped with a
    reason (silenced, resolved during quiet hours); ``Plan.consumed`` names it then;
  * nothing is sent to a channel while it is muted;
  * a notice is never held past ``next_deadline()``: the loop must call ``on_timer`` then.

Entries carry the id of their row in the store's inbox, so a restart replays what was
offered but not yet consumed. Each decision is logged by the caller with its reason.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from alertd.config import schema as s
from alertd.model import Notification
from alertd.notify.alertmanager import AlertmanagerStage, Post
from alertd.notify.message import (
    NotifyType,
    compose_digest,
    compose_group,
    notify_type,
    plural,
)
from alertd.notify.mute import local_text, muted_until
from alertd.notify.silences import Silence, alert_values, covering

AlertKey = tuple[str, str]  # (rule, entity)


@dataclass(frozen=True, slots=True)
class Entry:
    """One notification for one channel, as written to the inbox (``id``)."""

    id: int
    channel: str
    note: Notification


@dataclass(frozen=True, slots=True)
class Settled:
    """An alert stopped firing without a notice of its own (``resolved: false``, or held
    back while flapping): the planner must no longer count it as firing."""

    rule: str
    entity: str


@dataclass(frozen=True, slots=True)
class Message:
    """What one channel is to be sent now."""

    channel: str
    title: str
    body: str
    notes: tuple[Notification, ...]

    @property
    def notify_type(self) -> NotifyType:
        """apprise's notify type: from the notices' states and severities."""
        return notify_type(self.notes)


@dataclass(slots=True)
class Plan:
    """The outcome of one step: messages to deliver, inbox rows done with, and the reasons."""

    messages: list[Message] = field(default_factory=list)
    consumed: list[int] = field(default_factory=list)
    decisions: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Group:
    due: float
    entries: list[Entry]


@dataclass(slots=True)
class _Quiet:
    since: float
    until: float
    entries: list[Entry]


def _key(note: Notification) -> AlertKey:
    return note.rule, note.entity


def _says(note: Notification) -> str:
    return f"{note.rule} {note.entity} {note.state}{' (repeat)' if note.repeat else ''}"


class Planner:
    def __init__(self, rules: Iterable[s.Rule], channels: Mapping[str, s.Channel],
                 silences: Iterable[Silence] = (), *,
                 generator_url: str | None = None) -> None:
        self.rules = {rule.name: rule for rule in rules}
        self.channels = dict(channels)
        self.alertmanager = AlertmanagerStage(self.rules, self.channels, generator_url)
        self.silences = tuple(silences)
        self._firing: dict[AlertKey, Notification] = {}  # the newest word on firing alerts
        self._held: dict[tuple[str, AlertKey], Silence] = {}  # silenced while firing
        self._groups: dict[str, _Group] = {}
        self._quiet: dict[str, _Quiet] = {}

    # ---- input -------------------------------------------------------------------------

    def set_silences(self, silences: Iterable[Silence]) -> None:
        """Replace the silences (the loop re-reads the store every second). An alert held by
        a silence that was expired or deleted is due for release at once."""
        self.silences = tuple(silences)
        by_id = {silence.id: silence for silence in self.silences}
        for key, held in self._held.items():
            self._held[key] = by_id.get(held.id, dataclasses.replace(held, ends=held.starts))

    def seed(self, firing: Iterable[Notification]) -> None:
        """Alerts found firing at start (restored from the store): known to the digest and
        to silences, so that one silenced across a restart is still notified when the
        silence ends."""
        firing = list(firing)
        for note in firing:
            self._firing[_key(note)] = note
        self.alertmanager.seed(firing)

    def settle(self, settled: Settled) -> None:
        key = (settled.rule, settled.entity)
        self._firing.pop(key, None)
        self.alertmanager.settle(*key)
        for held in [held for held in self._held if held[1] == key]:
            del self._held[held]

    def offer(self, entry: Entry, now: float, plan: Plan) -> None:
        note = entry.note
        if entry.channel not in self.channels:  # left by a run with another config
            plan.consumed.append(entry.id)
            plan.decisions.append(f"{_says(note)} -> {entry.channel}: dropped, the channel "
                                  "is no longer configured")
            return
        if note.state == "firing":
            self._firing[_key(note)] = note
        elif note.state == "resolved":
            self._firing.pop(_key(note), None)
        if self.alertmanager.handles(entry.channel):  # no silence, mute or group here
            if entry.id >= 0:
                plan.consumed.append(entry.id)
            plan.decisions.append(f"{_says(note)} -> {entry.channel}: posted to Alertmanager")
            self._post(self.alertmanager.offer(entry.channel, note, now), plan)
            return
        silence = covering(self.silences, self._values(note), now)
        if silence is not None:
            if note.state == "resolved":
                self._held.pop((entry.channel, _key(note)), None)
            else:
                self._held[(entry.channel, _key(note))] = silence
            plan.consumed.append(entry.id)
            plan.decisions.append(f"{_says(note)} -> {entry.channel}: silenced by "
                                  f"{silence.id}" + (f" ({silence.comment})"
                                                     if silence.comment else ""))
            return
        self._queue(entry, now, plan)

    # ---- time ----------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        times = [group.due for group in self._groups.values()]
        times += [quiet.until for quiet in self._quiet.values()]
        times += [silence.ends for silence in self._held.values()]
        resend = self.alertmanager.next_deadline()
        times += [resend] if resend is not None else []
        return min(times) if times else None

    def on_timer(self, now: float, plan: Plan) -> None:
        """Release what is due at ``now``: ended silences, ended quiet hours, full groups,
        Alertmanager resends."""
        for post in self.alertmanager.on_timer(now):
            self._post(post, plan)
        for (channel, key), silence in list(self._held.items()):
            still = covering(self.silences, self._values_of(key), now)
            if still is not None:
                self._held[(channel, key)] = still
                continue
            del self._held[(channel, key)]
            note = self._firing.get(key)
            if note is None:
                continue
            plan.decisions.append(f"{_says(note)} -> {channel}: silence {silence.id} ended "
                                  "and the alert is still firing")
            self._queue(Entry(-1, channel, dataclasses.replace(note, at=now, repeat=False)),
                        now, plan)
        for channel, quiet in list(self._quiet.items()):
            if quiet.until <= now:
                del self._quiet[channel]
                self._digest(channel, quiet, now, plan)
        for channel, group in list(self._groups.items()):
            if group.due <= now:
                del self._groups[channel]
                until = muted_until(self.channels[channel], now)
                if until is None:
                    self._send(channel, group.entries, plan)
                    continue
                # quiet hours began while the group waited: the digest takes it
                self._quiet[channel] = _Quiet(now, until, group.entries)
                plan.decisions.append(f"{channel}: quiet hours began within group_wait; "
                                      f"{len(group.entries)} notices go in the digest")

    # ---- stages --------------------------------------------------------------------------

    def _queue(self, entry: Entry, now: float, plan: Plan) -> None:
        """Stage 2 and 3: wait out quiet hours, or join the channel's group."""
        channel = self.channels[entry.channel]
        quiet = self._quiet.get(entry.channel)
        until = muted_until(channel, now) if quiet is None else quiet.until
        if until is not None:
            if quiet is None:
                quiet = self._quiet[entry.channel] = _Quiet(now, until, [])
            quiet.entries.append(entry)
            plan.decisions.append(f"{_says(entry.note)} -> {entry.channel}: quiet hours until "
                                  f"{local_text(channel, until)}; it goes in the digest")
            return
        rule = self.rules.get(entry.note.rule)
        # counted from when the notice was made: one resumed after a restart is not held again
        due = min(now, entry.note.at) + (rule.group_wait if rule is not None else 0.0)
        group = self._groups.get(entry.channel)
        if group is None:
            self._groups[entry.channel] = _Group(due, [entry])
        else:
            group.entries.append(entry)
            group.due = min(group.due, due)

    def _digest(self, channel: str, quiet: _Quiet, now: float, plan: Plan) -> None:
        latest: dict[AlertKey, Notification] = {}
        for entry in quiet.entries:
            latest[_key(entry.note)] = entry.note
            if entry.id >= 0:
                plan.consumed.append(entry.id)
        firing = [dataclasses.replace(self._firing[key], at=now, repeat=False)
                  for key in latest if key in self._firing]
        settled = sum(1 for key in latest if key not in self._firing)
        if not firing:
            plan.decisions.append(f"{channel}: quiet hours over; nothing is still firing "
                                  f"({plural(settled, 'alert')} came and went)")
            return
        title, body = compose_digest(firing, settled, quiet.since, self.rules)
        plan.decisions.append(f"{channel}: quiet hours over; digest of "
                              f"{plural(len(firing), 'alert')} still firing")
        plan.messages.append(Message(channel, title, body, tuple(firing)))

    def _send(self, channel: str, entries: list[Entry], plan: Plan) -> None:
        notes = tuple(entry.note for entry in entries)
        title, body = compose_group(notes, self.rules)
        plan.consumed.extend(entry.id for entry in entries if entry.id >= 0)
        if len(notes) > 1:
            plan.decisions.append(f"{channel}: {len(notes)} notices grouped into one message")
        plan.messages.append(Message(channel, title, body, notes))

    # ---- helpers -------------------------------------------------------------------------

    @staticmethod
    def _post(post: Post, plan: Plan) -> None:
        plan.messages.append(Message(post.channel, post.title, post.body, post.notes))

    def _values(self, note: Notification) -> dict[str, str]:
        return alert_values(note.rule, note.entity, note.severity, note.labels)

    def _values_of(self, key: AlertKey) -> dict[str, str]:
        note = self._firing.get(key)
        return self._values(note) if note is not None else alert_values(*key)
