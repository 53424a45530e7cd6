"""Stage 1, silences: a silence (from the file or ``alertd silence add``) that covers an
alert drops its notices, and remembers it while it fires; when the silence ends (or is
expired or deleted) and the alert still fires, the alert is notified then.

Invariants: a notice dropped here is consumed (``Plan.consumed``) with a SILENCED decision;
an alert is held per (channel, alert) at most once, until its silence ends, it resolves or
it settles; ``next_deadline`` is the soonest end of a holding silence.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from alertd.model import NoticeKind, Notification
from alertd.notify.decision import Decision, Reason
from alertd.notify.plan import AlertKey, Entry, Plan, key
from alertd.notify.silences import Silence, alert_values, covering


def values_of(note: Notification) -> dict[str, str]:
    return alert_values(note.rule, note.entity, note.severity, note.labels)


@dataclass(frozen=True, slots=True)
class Released:
    """An alert still firing when the silence that held it ended: ``entry`` is its fresh
    notice (not from the inbox) for the channel, to go on to quiet hours and grouping."""

    entry: Entry
    decision: Decision


class SilenceStage:
    def __init__(self, silences: Iterable[Silence] = ()) -> None:
        self.silences = tuple(silences)
        self._held: dict[tuple[str, AlertKey], Silence] = {}  # silenced while firing

    def set_silences(self, silences: Iterable[Silence]) -> None:
        """Replace the silences. An alert held by a silence that was expired or deleted is
        due for release at once."""
        self.silences = tuple(silences)
        by_id = {silence.id: silence for silence in self.silences}
        for held, silence in self._held.items():
            self._held[held] = by_id.get(silence.id,
                                         dataclasses.replace(silence, ends=silence.starts))

    def offer(self, entry: Entry, now: float) -> Plan | None:
        """The plan for a silenced notice (dropped), or None when no silence covers it."""
        note = entry.note
        silence = covering(self.silences, values_of(note), now)
        if silence is None:
            return None
        if note.state == NoticeKind.RESOLVED:
            self._held.pop((entry.channel, key(note)), None)
        else:
            self._held[(entry.channel, key(note))] = silence
        return Plan.decided(Decision(Reason.SILENCED, entry.channel, note, silence), [entry])

    def settle(self, alert: AlertKey) -> None:
        """The alert stopped firing without a notice: nothing to release any more."""
        for held in [held for held in self._held if held[1] == alert]:
            del self._held[held]

    def next_deadline(self) -> float | None:
        return min((silence.ends for silence in self._held.values()), default=None)

    def on_timer(self, now: float, firing: Mapping[AlertKey, Notification]) -> list[Released]:
        """Release the alerts whose silence no longer covers them at ``now``; those of them
        in ``firing`` (the newest word on each firing alert) are notified again."""
        released = []
        for (channel, alert), silence in list(self._held.items()):
            note = firing.get(alert)
            values = values_of(note) if note is not None else alert_values(*alert)
            still = covering(self.silences, values, now)
            if still is not None:
                self._held[(channel, alert)] = still
                continue
            del self._held[(channel, alert)]
            if note is not None:
                fresh = dataclasses.replace(note, at=now, repeat=False)
                released.append(Released(Entry(None, channel, fresh), Decision(
                    Reason.SILENCE_ENDED, channel, note, silence)))
        return released
