"""What goes into the planner and what comes out of it, as values.

In: ``Entry`` (a notice for one channel, from the store's inbox) and ``Settled`` (the
engine's ``AlertSettled``: an alert stopped firing without a notice). Out: a ``Plan`` per
step, with the messages to send, the inbox rows done with and the decisions taken; the
loop turns each message into one ``Outgoing`` per URL of its channel for the outbox.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from alertd.config import schema as s
from alertd.model import AlertSettled, Notification
from alertd.notify.decision import Decision
from alertd.notify.message import NotifyType, notify_type

AlertKey = tuple[str, str]  # (rule, entity)

Settled = AlertSettled  # the engine's event is offered to the planner as it is


def key(note: Notification) -> AlertKey:
    return note.rule, note.entity


@dataclass(frozen=True, slots=True)
class Entry:
    """One notification for one channel. ``id`` is its row in the store's inbox; None for a
    notice the planner made itself (an alert still firing when its silence ended), which
    no inbox row stands for."""

    id: int | None
    channel: str
    note: Notification


def inbox_ids(entries: Iterable[Entry]) -> tuple[int, ...]:
    """The inbox rows of these entries (those the planner made have none)."""
    return tuple(entry.id for entry in entries if entry.id is not None)


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


@dataclass(frozen=True, slots=True)
class Plan:
    """The outcome of one step: messages to deliver, inbox rows done with (sent in a
    message, or dropped with a reason), and the decisions taken, in order. Plans add up."""

    messages: tuple[Message, ...] = ()
    consumed: tuple[int, ...] = ()
    decisions: tuple[Decision, ...] = ()

    def __add__(self, other: Plan) -> Plan:
        return Plan(self.messages + other.messages, self.consumed + other.consumed,
                    self.decisions + other.decisions)

    @staticmethod
    def join(plans: Iterable[Plan]) -> Plan:
        """The plans one after the other (in linear time: a wake-up may take thousands)."""
        messages: list[Message] = []
        consumed: list[int] = []
        decisions: list[Decision] = []
        for plan in plans:
            if plan is NOTHING:
                continue
            messages += plan.messages
            consumed += plan.consumed
            decisions += plan.decisions
        return Plan(tuple(messages), tuple(consumed), tuple(decisions))

    @staticmethod
    def decided(decision: Decision, consumed: Iterable[Entry] = ()) -> Plan:
        """A plan of one decision that uses up ``consumed``'s inbox rows."""
        return Plan(consumed=inbox_ids(consumed), decisions=(decision,))


NOTHING = Plan()  # a step that decided nothing yet (a notice joined its group)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message for one URL of its channel, as the outbox queues it."""

    channel: str
    url: str
    title: str
    body: str
    notify_type: str = str(NotifyType.INFO)  # apprise's: info, success, warning or failure


def outgoing(messages: Iterable[Message],
             channels: Mapping[str, s.Channel]) -> list[Outgoing]:
    """Each message once per URL of its channel, in order."""
    return [Outgoing(message.channel, url, message.title, message.body,
                     str(message.notify_type))
            for message in messages for url in channels[message.channel].urls]
