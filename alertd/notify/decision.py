"""Why the planner did what it did with a notice: a ``Decision`` with a ``Reason``
(Alertmanager's ``NotifyReason``), and the one function that puts it into words.

The planner's stages return decisions as values; the daemon logs each as
``notify: <describe(decision)>``, and nothing else turns them into text. The wording is
what operators and the daemon tests read:

================================  ========================================================
reason                            the log line after ``notify:``
================================  ========================================================
``CHANNEL_GONE``                  ``RULE ENTITY STATE -> CHANNEL: dropped, the channel is
                                  no longer configured``
``ALERTMANAGER``                  ``... -> CHANNEL: posted to Alertmanager``
``SILENCED``                      ``... -> CHANNEL: silenced by ID (COMMENT)``
``SILENCE_ENDED``                 ``... -> CHANNEL: silence ID ended and the alert is still
                                  firing``
``QUIET_HOURS``                   ``... -> CHANNEL: quiet hours until 2026-12-02 07:00
                                  Europe/Berlin; it goes in the digest``
``QUIET_HOURS_TOOK_GROUP``        ``CHANNEL: quiet hours began within group_wait; N notices
                                  go in the digest``
``GROUPED``                       ``CHANNEL: N notices grouped into one message``
``DIGEST``                        ``CHANNEL: quiet hours over; digest of N alerts still
                                  firing``
``NOTHING_STILL_FIRING``          ``CHANNEL: quiet hours over; nothing is still firing (N
                                  alerts came and went)``
================================  ========================================================

``STATE`` is the notice's state, with `` (repeat)`` for a reminder.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from alertd.escape import plural
from alertd.model import Notification
from alertd.notify.mute import zone_text
from alertd.notify.silences import Silence


class Reason(enum.Enum):
    CHANNEL_GONE = "dropped: the channel is no longer configured"
    ALERTMANAGER = "posted to Alertmanager"
    SILENCED = "dropped: a silence covers it"
    SILENCE_ENDED = "the silence ended and the alert is still firing"
    QUIET_HOURS = "held for the digest: quiet hours"
    QUIET_HOURS_TOOK_GROUP = "quiet hours began within group_wait: the group goes in the digest"
    GROUPED = "several notices grouped into one message"
    DIGEST = "quiet hours over: a digest of what still fires"
    NOTHING_STILL_FIRING = "quiet hours over: nothing still fires, no digest"


@dataclass(frozen=True, slots=True)
class Decision:
    """What a stage decided for one notice (``note`` given) or for a channel's group or
    digest (``note`` None). Only the fields its reason needs are set."""

    reason: Reason
    channel: str
    note: Notification | None = None
    silence: Silence | None = None  # SILENCED: the covering one; SILENCE_ENDED: the ended one
    until: float | None = None  # QUIET_HOURS: when they end ...
    timezone: str = "UTC"  # ... named in the channel's time zone
    count: int = 0  # GROUPED, QUIET_HOURS_TOOK_GROUP: notices; DIGEST: alerts still firing
    settled: int = 0  # NOTHING_STILL_FIRING: alerts that fired and ended meanwhile


def _says(note: Notification) -> str:
    return f"{note.rule} {note.entity} {note.state}{' (repeat)' if note.repeat else ''}"


def _about_channel(decision: Decision) -> str:
    channel, count = decision.channel, decision.count
    match decision.reason:
        case Reason.QUIET_HOURS_TOOK_GROUP:
            return (f"{channel}: quiet hours began within group_wait; {count} notices go in "
                    "the digest")
        case Reason.GROUPED:
            return f"{channel}: {count} notices grouped into one message"
        case Reason.DIGEST:
            return f"{channel}: quiet hours over; digest of {plural(count, 'alert')} still firing"
        case Reason.NOTHING_STILL_FIRING:
            return (f"{channel}: quiet hours over; nothing is still firing "
                    f"({plural(decision.settled, 'alert')} came and went)")
        case _:
            raise ValueError(f"a {decision.reason.name} decision names no notice")


def _about_notice(decision: Decision, note: Notification) -> str:
    silence, until = decision.silence, decision.until
    match decision.reason:
        case Reason.CHANNEL_GONE:
            what = "dropped, the channel is no longer configured"
        case Reason.ALERTMANAGER:
            what = "posted to Alertmanager"
        case Reason.SILENCED if silence is not None:
            what = f"silenced by {silence.id}" + (f" ({silence.comment})"
                                                  if silence.comment else "")
        case Reason.SILENCE_ENDED if silence is not None:
            what = f"silence {silence.id} ended and the alert is still firing"
        case Reason.QUIET_HOURS if until is not None:
            what = f"quiet hours until {zone_text(decision.timezone, until)}; it goes in the digest"
        case _:
            raise ValueError(f"a {decision.reason.name} decision without what it needs")
    return f"{_says(note)} -> {decision.channel}: {what}"


def describe(decision: Decision) -> str:
    """The decision in the words of the daemon's log (the table above)."""
    if decision.note is None:
        return _about_channel(decision)
    return _about_notice(decision, decision.note)
