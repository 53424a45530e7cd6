"""The pure rules of delivery outcomes, as tables: how an apprise call's result and HTTP
answers become delivered / retry after / permanent, when to retry, and which apprise notify
type a message gets. Also the outbox's notify type surviving an older state file."""

from __future__ import annotations

import sqlite3
from email.utils import format_datetime
from datetime import datetime, timezone
from pathlib import Path

import pytest

from alertd.model import Notification
from alertd.notify.message import NotifyType, notify_type
from alertd.notify.plan import Outgoing
from alertd.notify.schedule import (GIVE_UP_AFTER, MAX_RETRY_AFTER, AfterAttempt, Fate,
                                    after_attempt, next_attempt)
from alertd.senders.apprise_sender import classify, retry_after_seconds
from alertd.senders.outcome import DeliveryOutcome, Verdict

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z


@pytest.mark.parametrize(("delivered", "timed_out", "answers", "verdict", "after"), [
    (True, False, [(200, None)], Verdict.DELIVERED, None),
    (False, False, [(429, "3")], Verdict.RETRY, 3.0),
    (False, False, [(503, "120")], Verdict.RETRY, 120.0),
    (False, False, [(429, None)], Verdict.RETRY, None),
    (False, False, [(503, format_datetime(datetime.fromtimestamp(NOW + 90, timezone.utc),
                                         usegmt=True))], Verdict.RETRY, 90.0),
    (False, False, [(404, None)], Verdict.PERMANENT, None),
    (False, False, [(401, None)], Verdict.PERMANENT, None),
    (False, False, [(403, None)], Verdict.PERMANENT, None),
    (False, False, [(408, None)], Verdict.RETRY, None),
    (False, False, [(500, None)], Verdict.RETRY, None),
    (False, False, [(302, None), (404, None)], Verdict.PERMANENT, None),  # the last answer
    (False, True, [], Verdict.RETRY, None),
    (False, False, [], Verdict.RETRY, None),  # no HTTP at all: SMTP, a refused connection
])
def test_classify(delivered: bool, timed_out: bool, answers: list[tuple[int, str | None]],
                  verdict: Verdict, after: float | None) -> None:
    outcome = classify(delivered, timed_out, answers, ["apprise said so"], NOW)
    assert outcome.verdict is verdict
    assert outcome.retry_after == after
    if verdict is not Verdict.DELIVERED:
        assert "apprise said so" in outcome.reason


def test_a_reason_names_the_http_status() -> None:
    assert classify(False, False, [(404, None)], [], NOW).reason == "HTTP 404 Not Found"


@pytest.mark.parametrize(("header", "seconds"), [
    ("7", 7.0), (" 0 ", 0.0), ("soon", None), ("", None), (None, None), ("-3", None),
    ("Wed, 31 Dec 2025 23:59:00 GMT", 0.0),  # in the past: at once
])
def test_retry_after_seconds(header: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(header, NOW) == seconds


def test_retry_after_replaces_the_backoff_and_is_capped() -> None:
    assert next_attempt(NOW, 1, NOW, first=10.0, retry_after=3.0) == NOW + 3.0
    assert next_attempt(NOW, 1, NOW, first=10.0, retry_after=86400.0) == NOW + MAX_RETRY_AFTER
    assert next_attempt(NOW, 1, NOW, first=10.0) == NOW + 10.0
    # the hour still ends it
    late = NOW + GIVE_UP_AFTER - 100
    assert next_attempt(NOW, 9, late, retry_after=300.0) is None


def test_the_daemon_s_first_wait_and_a_retry_after_of_zero_are_used_as_given() -> None:
    """``first`` (the daemon's ``retry_first``) is the backoff's first step and doubles;
    a receiver's ``Retry-After: 0`` means at once."""
    assert next_attempt(NOW, 1, NOW, first=0.5) == NOW + 0.5
    assert next_attempt(NOW, 3, NOW, first=0.5) == NOW + 2.0
    assert next_attempt(NOW, 1, NOW, retry_after=0.0) == NOW
    assert next_attempt(NOW, 1, NOW, retry_after=0.25) == NOW + 0.25
    decision = after_attempt(DeliveryOutcome.retry("HTTP 502"), NOW, 1, NOW, first=0.5)
    assert decision == AfterAttempt(Fate.RETRY, 2, "HTTP 502", NOW + 1.0)


def note(state: str, severity: str) -> Notification:
    return Notification("r", "s/e", state, NOW, NOW, severity, "s")


@pytest.mark.parametrize(("notes", "kind"), [
    ([note("firing", "critical")], NotifyType.FAILURE),
    ([note("firing", "warning")], NotifyType.WARNING),
    ([note("firing", "info")], NotifyType.INFO),
    ([note("resolved", "critical")], NotifyType.SUCCESS),
    ([note("flapping", "critical")], NotifyType.FAILURE),
    ([note("resolved", "critical"), note("firing", "info")], NotifyType.INFO),
    ([note("firing", "warning"), note("firing", "critical"), note("resolved", "info")],
     NotifyType.FAILURE),
    ([], NotifyType.INFO),
])
def test_notify_type_is_the_most_severe_of_the_message(notes: list[Notification],
                                                       kind: NotifyType) -> None:
    assert notify_type(notes) is kind


@pytest.mark.parametrize("outcome, created, attempts, now, decided", [
    (DeliveryOutcome.ok(), NOW, 3, NOW + 70, AfterAttempt(Fate.DELIVERED, 4)),
    (DeliveryOutcome.permanent("HTTP 401"), NOW, 0, NOW,  # at once, whatever time is left
     AfterAttempt(Fate.GIVE_UP_NOW, 1, "HTTP 401")),
    (DeliveryOutcome.retry("HTTP 502"), NOW, 0, NOW,  # the backoff's first step
     AfterAttempt(Fate.RETRY, 1, "HTTP 502", NOW + 10.0)),
    (DeliveryOutcome.retry("HTTP 502"), NOW, 2, NOW + 30,  # doubling
     AfterAttempt(Fate.RETRY, 3, "HTTP 502", NOW + 30 + 40.0)),
    (DeliveryOutcome.retry("HTTP 429", 3.0), NOW, 0, NOW,  # the receiver's wait, not ours
     AfterAttempt(Fate.RETRY, 1, "HTTP 429", NOW + 3.0, asked=True)),
    (DeliveryOutcome.retry("HTTP 429", 86400.0), NOW, 0, NOW,  # ... capped
     AfterAttempt(Fate.RETRY, 1, "HTTP 429", NOW + MAX_RETRY_AFTER, asked=True)),
    (DeliveryOutcome.retry("timeout"), NOW, 8, NOW + GIVE_UP_AFTER - 100,  # the hour is over
     AfterAttempt(Fate.GIVE_UP_LATE, 9, "timeout")),
])
def test_after_an_attempt_a_row_is_done_given_up_or_due_again(
        outcome: DeliveryOutcome, created: float, attempts: int, now: float,
        decided: AfterAttempt) -> None:
    """The policy the URL workers apply (app._record): one pure decision per attempt."""
    decision = after_attempt(outcome, created, attempts, now, first=10.0)
    assert decision == decided
    assert decision.given_up == (decided.fate in (Fate.GIVE_UP_NOW, Fate.GIVE_UP_LATE))


def test_outcome_crosses_the_process_boundary_unchanged() -> None:
    for outcome in (DeliveryOutcome.ok(), DeliveryOutcome.retry("HTTP 429", 3.0),
                    DeliveryOutcome.permanent("HTTP 404 Not Found")):
        assert DeliveryOutcome.from_json(outcome.to_json()) == outcome


def test_an_older_state_file_gets_the_outbox_notify_type(tmp_path: Path) -> None:
    from alertd.store import Store

    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT, channel TEXT NOT NULL, url TEXT NOT NULL,
            title TEXT NOT NULL, body TEXT NOT NULL, created REAL NOT NULL,
            due REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0);
        INSERT INTO outbox (channel, url, title, body, created, due)
            VALUES ('hook', 'json://h/x', 'left over', 'b', 1, 1);
        """)
    db.commit()
    db.close()
    store = Store.open(path)
    store.plan([Outgoing("hook", "json://h/x", "new", "b", "failure")], [], now=2.0)
    assert [(d.title, d.notify_type) for d in store.pending("hook")] == [
        ("left over", "info"), ("new", "failure")]
    store.close()
