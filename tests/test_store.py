"""The SQLite state file keeps what a restart must not forget."""

from __future__ import annotations

from pathlib import Path

from alertd.config import schema as s
from alertd.engine import Engine, notices
from alertd.errors import Loc
from alertd.model import AlertState, Message, Notification, NoticeKind, StatusChanged
from alertd.notify.plan import Outgoing
from alertd.records import AlertView, Position
from alertd.store import Store, StoredAlert

LOC = Loc("t", 1)


def test_alerts_cursors_and_history_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "state" / "alertd.db"
    store = Store.open(path)
    store.commit([StoredAlert("hot", "cold/room1", "firing", 10.0, {"state": "firing"}),
                  StoredAlert("gap", "fleet/1", "pending", 5.0, {"state": "pending"})],
                 [Position("cold", "readings", "2026-01-01T00:00:00.123456Z")],
                 [Notification("hot", "cold/room1", NoticeKind.FIRING, 10.0, 10.0, "warning",
                               "cold")], now=11.0)
    store.commit([StoredAlert("gap", "fleet/1", "inactive", 5.0, {})], [], [], now=12.0)
    store.close()
    again = Store.open(path)
    assert [(a.rule, a.entity, a.state, a.since) for a in again.load_alerts()] == [
        ("hot", "cold/room1", "firing", 10.0)]
    assert again.load_cursor("cold", "readings") == "2026-01-01T00:00:00.123456Z"
    assert again.load_cursor("cold", "packets") is None
    assert again.db.execute("SELECT rule, state FROM history").fetchall() == [("hot", "firing")]


def test_silences_add_list_expire(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.db")
    silence = store.add_silence({"rule": "hot"}, 100.0, 200.0, "defrost", now=100.0)
    assert [x.id for x in store.silences(now=150.0)] == [silence.id]
    assert store.expire_silence(silence.id, now=150.0) is True
    assert store.silences(now=151.0) == [] and len(store.silences()) == 1
    assert store.expire_silence(silence.id, now=160.0) is False
    assert store.expire_silence("nope", now=160.0) is False


def test_engine_resumes_a_firing_alert_without_a_second_notification(tmp_path: Path) -> None:
    sources = {"fleet": s.NavixySource(LOC, "fleet", "h", (1,))}
    rules = [s.Rule(LOC, "hot", s.Threshold(LOC, "v", above=1.0), notify=("ops",)),
             s.Rule(LOC, "slow", s.Threshold(LOC, "w", above=1.0), for_=600.0,
                    notify=("ops",))]
    store = Store.open(tmp_path / "s.db")
    first = Engine(rules, sources, 0.0)
    notes = notices(first.receive(Message("fleet", "1", 0.0, {"v": 5, "w": 5},
                                          absent_is_null=False), 0.0))
    assert [n.rule for n in notes] == ["hot"]
    store.commit(first.take_changed(), [], [], 0.0)

    second = Engine(rules, sources, 100.0)  # the restart
    assert second.restore(store.load_alerts(), 100.0) == 2
    again = notices(second.receive(Message("fleet", "1", 100.0, {"v": 6, "w": 6},
                                   absent_is_null=False), 100.0))
    assert again == []  # still firing: no second notification; slow still pending
    assert notices(second.on_timer(600.0))[0].rule == "slow"  # the pending start (0 s) was kept
    assert AlertView("hot", "fleet/1", AlertState.FIRING, 0.0) in second.alerts()


def test_restored_alerts_hold_until_data_says_otherwise(tmp_path: Path) -> None:
    """Found end to end: with no data yet after a restart, a firing status or threshold
    alert must not resolve on the first timer (nor fire again when data returns)."""
    sources = {"fleet": s.NavixySource(LOC, "fleet", "h", (1,))}
    rules = [s.Rule(LOC, "blocked", s.Status(LOC, ("blocked",)), notify=("ops",)),
             s.Rule(LOC, "hot", s.Threshold(LOC, "v", above=1.0), notify=("ops",))]
    first = Engine(rules, sources, 0.0)
    first.receive(StatusChanged("fleet", "1", "blocked"), 0.0)
    first.receive(Message("fleet", "1", 0.0, {"v": 5}, absent_is_null=False), 0.0)
    saved = first.take_changed()
    second = Engine(rules, sources, 50.0, connected=False)
    assert second.restore(saved, 50.0) == 2
    assert second.on_timer(60.0) == []
    assert second.receive(StatusChanged("fleet", "1", "blocked"), 70.0) == []
    assert second.receive(Message("fleet", "1", 70.0, {"v": 6}, absent_is_null=False),
                          70.0) == []
    resolved = notices(second.receive(StatusChanged("fleet", "1", "normal"), 80.0))
    assert [(n.rule, n.state) for n in resolved] == [("blocked", "resolved")]


def test_retry_schedule_doubles_to_ten_minutes_and_gives_up_after_an_hour() -> None:
    from alertd.notify.schedule import next_attempt, retry_delay

    assert [retry_delay(n) for n in range(1, 9)] == [10, 20, 40, 80, 160, 320, 600, 600]
    assert next_attempt(created=0.0, attempts=1, now=100.0) == 110.0
    assert next_attempt(created=0.0, attempts=7, now=3000.0) == 3600.0  # the last chance
    assert next_attempt(created=0.0, attempts=7, now=3001.0) is None


def test_outbox_keeps_deliveries_until_done(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.db")
    store.plan([Outgoing("hook", "json://a", "t1", "b"), Outgoing("hook", "json://b", "t1", "b")],
               [], now=5.0)
    first, second = store.pending("hook")
    store.retry(first.id, due=20.0)  # only the URL that failed waits
    store.delivered(second.id)
    (left,) = store.pending("hook")
    assert (left.url, left.due, left.attempts) == ("json://a", 20.0, 1)
    assert store.pending("hook", "json://b") == []
    assert store.orphans({"hook": ["json://a", "json://b"]}) == 0
    assert store.orphans({"hook": ["json://c"]}) == 1  # the URL was changed in the file
    assert store.pending("hook") == []


def test_old_history_and_ended_silences_are_pruned(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "state.db")
    made = [Notification("r", "fleet/1", state, at, 10.0, "warning", "fleet")
            for at, state in [(10.0, NoticeKind.FIRING), (500.0, NoticeKind.RESOLVED)]]
    store.commit([], [], made, now=500.0)
    old = store.add_silence({"rule": "r"}, 0.0, 50.0, "", 0.0)
    new = store.add_silence({"rule": "r"}, 0.0, 5000.0, "", 0.0)
    assert store.prune(before=100.0) == 1
    assert [x.id for x in store.silences()] == [new.id] and old.id != new.id
    assert store.db.execute("SELECT at FROM history").fetchall() == [(500.0,)]
    store.close()
