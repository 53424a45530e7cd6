"""When to try a failed delivery again, and when to give up (SPEC 6): pure arithmetic.

A failed delivery is retried with exponential backoff (10 s doubling to 10 minutes) for up
to an hour after it was first due; then it is given up, logged and counted. When the
receiver said when to come back (HTTP 429/503 with ``Retry-After``), that wait is used
instead, capped at ``MAX_RETRY_AFTER``; the hour still applies. A permanent failure (the
sender says retrying cannot help) is given up at once. ``after_attempt`` decides, for one
attempt's ``DeliveryOutcome``, and the delivery loop applies the decision.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

FIRST_RETRY = 10.0
MAX_RETRY = 600.0
MAX_RETRY_AFTER = 600.0  # a receiver asking for more is tried again after 10 minutes
GIVE_UP_AFTER = 3600.0


def retry_delay(attempts: int, first: float = FIRST_RETRY, maximum: float = MAX_RETRY) -> float:
    """The wait after the ``attempts``-th failed attempt (1 for the first failure)."""
    return float(min(maximum, first * 2 ** max(0, min(attempts - 1, 20))))


def next_attempt(created: float, attempts: int, now: float, first: float = FIRST_RETRY,
                 give_up_after: float = GIVE_UP_AFTER,
                 retry_after: float | None = None) -> float | None:
    """When to try again after a failure at ``now``; None when it is time to give up.
    ``retry_after`` is the receiver's own wait (seconds), which replaces the backoff."""
    if retry_after is not None:
        due = now + min(MAX_RETRY_AFTER, max(0.0, retry_after))
    else:
        due = now + retry_delay(attempts, first)
    return None if due > created + give_up_after else due


class Outcome(Protocol):
    """What a sender said of one attempt (``senders.outcome.DeliveryOutcome``)."""

    @property
    def delivered(self) -> bool: ...
    @property
    def retryable(self) -> bool: ...  # False: retrying cannot help
    @property
    def reason(self) -> str: ...
    @property
    def retry_after(self) -> float | None: ...  # seconds the receiver asked for


class Fate(enum.Enum):
    """What becomes of an outbox row after one attempt to send it."""

    DELIVERED = "delivered"
    GIVE_UP_NOW = "given up at once: retrying cannot help"
    RETRY = "tried again later"
    GIVE_UP_LATE = "given up: the hour of retries is over"


@dataclass(frozen=True, slots=True)
class AfterAttempt:
    """The decision on one attempt: its ``fate``, the attempts made with this one, the
    sender's ``reason`` (words for the operator), and for a retry when (``retry_at``) and
    whether that is the receiver's own wait (``asked``: Retry-After)."""

    fate: Fate
    attempts: int
    reason: str = ""
    retry_at: float | None = None
    asked: bool = False

    @property
    def given_up(self) -> bool:
        return self.fate in (Fate.GIVE_UP_NOW, Fate.GIVE_UP_LATE)


def after_attempt(outcome: Outcome, created: float, attempts: int, now: float,
                  first: float = FIRST_RETRY) -> AfterAttempt:
    """What to do with a row first due at ``created``, tried ``attempts`` times before,
    whose attempt at ``now`` came to ``outcome``: done, given up at once (permanent),
    tried again at ``retry_at`` (backoff, or the receiver's Retry-After, capped), or given
    up once that lies more than ``GIVE_UP_AFTER`` after ``created``."""
    made = attempts + 1
    if outcome.delivered:
        return AfterAttempt(Fate.DELIVERED, made)
    if not outcome.retryable:
        return AfterAttempt(Fate.GIVE_UP_NOW, made, outcome.reason)
    retry_at = next_attempt(created, made, now, first=first, retry_after=outcome.retry_after)
    if retry_at is None:
        return AfterAttempt(Fate.GIVE_UP_LATE, made, outcome.reason)
    return AfterAttempt(Fate.RETRY, made, outcome.reason, retry_at,
                        outcome.retry_after is not None)
