"""Stage 3, grouping: a channel's notices within the rule's ``group_wait`` of the first
one become one message, listed by rule (``notify/message.py`` words it).

Invariants: a channel has at most one group waiting; a group is due ``group_wait`` after
the soonest notice in it was made (so a notice resumed after a restart is not held again);
every entry of a group sent is consumed by the message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from alertd.config import schema as s
from alertd.notify.decision import Decision, Reason
from alertd.notify.message import compose_group
from alertd.notify.plan import Entry, Message, Plan, inbox_ids


@dataclass(slots=True)
class _Group:
    due: float
    entries: list[Entry]


class GroupStage:
    def __init__(self, rules: Mapping[str, s.Rule]) -> None:
        self.rules = rules
        self._groups: dict[str, _Group] = {}

    def add(self, entry: Entry, now: float) -> None:
        """``entry`` joins its channel's group (or starts one)."""
        rule = self.rules.get(entry.note.rule)
        # counted from when the notice was made: one resumed after a restart is not held again
        due = min(now, entry.note.at) + (rule.group_wait if rule is not None else 0.0)
        group = self._groups.get(entry.channel)
        if group is None:
            self._groups[entry.channel] = _Group(due, [entry])
        else:
            group.entries.append(entry)
            group.due = min(group.due, due)

    def next_deadline(self) -> float | None:
        return min((group.due for group in self._groups.values()), default=None)

    def due(self, now: float) -> list[tuple[str, list[Entry]]]:
        """The groups due at ``now`` (channel, entries), taken out of the stage."""
        taken = [(channel, group.entries) for channel, group in self._groups.items()
                 if group.due <= now]
        for channel, _ in taken:
            del self._groups[channel]
        return taken


def grouped(channel: str, entries: Sequence[Entry], rules: Mapping[str, s.Rule]) -> Plan:
    """One message of a group's notices (a GROUPED decision when it holds several)."""
    notes = tuple(entry.note for entry in entries)
    title, body = compose_group(notes, rules)
    decisions = (Decision(Reason.GROUPED, channel, count=len(notes)),) if len(notes) > 1 \
        else ()
    return Plan((Message(channel, title, body, notes),), inbox_ids(entries), decisions)
