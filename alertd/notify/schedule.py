"""When to try a failed delivery again, and when to give up (SPEC 6): pure arithmetic.

A failed delivery is retried with exponential backoff (10 s doubling to 10 minutes) for up
to an hour after it was first due; then it is given up, logged and counted. When the
receiver said when to come back (HTTP 429/503 with ``Retry-After``), that wait is used
instead, capped at ``MAX_RETRY_AFTER``; the hour still applies.
"""

from __future__ import annotations

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
