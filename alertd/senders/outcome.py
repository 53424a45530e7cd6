"""What one attempt to deliver a message came to (STYLE.md convention 15).

A sender never answers with a bool: it says the message was delivered, that it may be tried
again (after ``retry_after`` seconds when the receiver said so, for example HTTP 429 or 503
with ``Retry-After``), or that trying again cannot help (an HTTP 4xx other than 408/429,
refused credentials, an invalid URL). ``reason`` is words for the operator, with the URL's
secrets already masked.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class Verdict(enum.Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    PERMANENT = "permanent"


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    verdict: Verdict
    reason: str = ""
    retry_after: float | None = None  # seconds the receiver asked for (not yet capped)

    @property
    def delivered(self) -> bool:
        return self.verdict is Verdict.DELIVERED

    @property
    def retryable(self) -> bool:
        return self.verdict is Verdict.RETRY

    @classmethod
    def ok(cls) -> DeliveryOutcome:
        return cls(Verdict.DELIVERED)

    @classmethod
    def retry(cls, reason: str, after: float | None = None) -> DeliveryOutcome:
        return cls(Verdict.RETRY, reason, after)

    @classmethod
    def permanent(cls, reason: str) -> DeliveryOutcome:
        return cls(Verdict.PERMANENT, reason)

    def to_json(self) -> dict[str, Any]:
        return {"verdict": self.verdict.value, "reason": self.reason,
                "retry_after": self.retry_after}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DeliveryOutcome:
        after = data.get("retry_after")
        return cls(Verdict(data["verdict"]), str(data.get("reason", "")),
                   None if after is None else float(after))
