"""The one exception tree of alertd.

    AlertdError                   anything alertd reports to the operator as one clear line
     +-- ConfigError              the rule file is invalid; carries every located problem at once
     +-- SourceError              a source cannot be used (bad credentials, refused subscription)
     +-- DeliveryError            a notification could not be delivered; ``retryable`` says
                                  whether trying again later can help
     +-- UsageError               a command-line argument is wrong (exit status 2)
     +-- ResourceError            something alertd needs is unusable: the HTTP port is in use,
                                  the state file cannot be opened (exit status 3)

Exit statuses, one scheme for every command (``cli.py``, docs/operations.md): 0 done, 1 the
answer is no (a rule test failed, a message was not delivered, no such silence), 2 invalid
input (rule file, case file, command line), 3 the environment stops alertd, 70 a bug.

Bad *input* from a server is never an exception that escapes a source: it is logged, counted
and skipped. A bug is not an AlertdError and is allowed to crash loudly in tests.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, order=True)
class Loc:
    """Where a value was written: a file and a 1-based line number."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    """One located configuration error, printed as ``FILE:LINE: message``."""

    loc: Loc
    message: str

    def __str__(self) -> str:
        return f"{self.loc}: {self.message}"


class AlertdError(Exception):
    """Base of every error alertd reports to the operator."""


class ConfigError(AlertdError):
    """The configuration is invalid. ``problems`` holds all of them, sorted by place."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(set(problems))
        super().__init__("\n".join(str(p) for p in self.problems))


class SourceError(AlertdError):
    """A source cannot be used as configured (for example its credentials were rejected)."""


class DeliveryError(AlertdError):
    """A notification was not delivered. ``retryable`` is False when retrying cannot help."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        self.retryable = retryable
        super().__init__(message)


class UsageError(AlertdError):
    """A command-line argument is wrong (exit status 2, as argparse's own errors)."""


class ResourceError(AlertdError):
    """Something alertd needs from its host is unusable: a port in use, a state file that
    cannot be opened, a missing folder (exit status 3)."""


class CredentialsRejected(SourceError):
    """The service refused the API key or hash: report once, retry slowly."""
