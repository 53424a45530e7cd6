"""NavixyDecoder against recorded Navixy frames: statuses, merged messages, protocol notices.

The frames in ``tests/frames/`` are the seed page's ``iot_monitor`` sample (``lls_level_1``
null at 15:12:59), the documented subscribe response, error, ``logout`` and ``lifecycle``
frames, an Atmosphere handshake, and an event holding two trackers whose queues do not line up.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alertd.model import Message, StatusChanged
from alertd.sources import navixy
from alertd.sources.common import Decoded
from alertd.sources.navixy import (
    AuthFailed,
    Handshake,
    Lifecycle,
    LoggedOut,
    NavixyDecoder,
    RequestFailed,
    SubscribeRejected,
    subscribe_action,
    with_atmosphere_params,
)
from tests.budget import examples

FRAMES = Path(__file__).resolve().parent / "frames"
NOTHING = Decoded((), ())
T52, T58, T59 = 1739286772.0, 1739286778.0, 1739286779.0  # 2025-02-11T15:12:52Z, :58Z, :59Z


def frame(name: str) -> str:
    return (FRAMES / name).read_text()


def messages(decoded: Decoded) -> list[Message]:
    assert all(isinstance(event, Message) for event in decoded.events)
    return [event for event in decoded.events if isinstance(event, Message)]


def seed() -> dict[str, Any]:
    sample: dict[str, Any] = json.loads(frame("navixy_iot_monitor_seed.json"))
    return sample


def entry(msg_time: str, value: Any, srv_time: str | None = None) -> dict[str, Any]:
    return {"msg_time": msg_time, "srv_time": srv_time or msg_time, "value": value}


# ---- Atmosphere and the protocol frames ----------------------------------------------------


def test_the_atmosphere_handshake_gives_the_heartbeat_interval() -> None:
    decoded = NavixyDecoder("fleet").decode(frame("navixy_handshake.txt"))
    assert decoded == Decoded((), (), (Handshake(25000),))


@pytest.mark.parametrize("heartbeat", ["X", b"X", "X\n", ""])
def test_heartbeats_are_nothing(heartbeat: str | bytes) -> None:
    assert NavixyDecoder("fleet").decode(heartbeat) == NOTHING


def test_the_documented_subscribe_response_gives_the_status() -> None:
    decoded = NavixyDecoder("fleet").decode(frame("navixy_subscribe_response_doc.json"))
    assert decoded == Decoded((StatusChanged("fleet", "21080", "normal"),), ())


def test_a_response_without_success_is_a_success() -> None:
    decoded = NavixyDecoder("fleet").decode(frame("navixy_subscribe_response.json"))
    assert decoded.events == (StatusChanged("fleet", "21080", "normal"),
                              StatusChanged("fleet", "21085", "blocked"),
                              StatusChanged("fleet", "21090", "unknown"),
                              StatusChanged("fleet", "21091", "disallowed"))
    assert decoded.problems == () and decoded.notices == ()


def test_a_rejected_subscription_names_its_trackers() -> None:
    response = json.loads(frame("navixy_subscribe_response_doc.json"))
    response["data"]["iot_monitor"] = {"success": False, "value": {"21080": "unknown",
                                                                   "21081": "unknown"}}
    decoded = NavixyDecoder("fleet").decode(json.dumps(response))
    assert decoded == Decoded((), (), (SubscribeRejected(("21080", "21081")),))


def test_an_unknown_status_is_a_problem_and_the_others_still_count() -> None:
    response = json.loads(frame("navixy_subscribe_response_doc.json"))
    response["data"]["iot_monitor"]["value"] = {"21080": "normal", "21081": "sleeping"}
    decoded = NavixyDecoder("fleet").decode(json.dumps(response))
    assert decoded.events == (StatusChanged("fleet", "21080", "normal"),)
    (problem,) = decoded.problems
    assert "21081" in problem and "sleeping" in problem


def test_a_wrong_hash_is_an_auth_failure() -> None:
    decoded = NavixyDecoder("fleet").decode(frame("navixy_error_wrong_hash.json"))
    assert decoded == Decoded((), (), (AuthFailed(3, "Wrong hash"),))


@pytest.mark.parametrize(("code", "notice"), [
    (4, AuthFailed(4, "x")), (7, RequestFailed(7, "x")), (267, RequestFailed(267, "x")),
    (1, RequestFailed(1, "x"))])
def test_error_codes_3_and_4_are_auth_failures_the_rest_request_failures(
        code: int, notice: object) -> None:
    error = json.loads(frame("navixy_error_wrong_hash.json"))
    error["status"] = {"code": code, "description": "x"}
    assert NavixyDecoder("fleet").decode(json.dumps(error)).notices == (notice,)


def test_logout_and_lifecycle_are_notices() -> None:
    decoder = NavixyDecoder("fleet")
    assert decoder.decode(frame("navixy_logout.json")) == Decoded(
        (), (), (LoggedOut("session closed"),))
    assert decoder.decode(frame("navixy_lifecycle.json")) == Decoded(
        (), (), (Lifecycle(123456, "block"),))


@pytest.mark.parametrize("event", ["state", "state_batch", "readings_batch"])
def test_other_subscriptions_events_are_ignored_quietly(event: str) -> None:
    text = json.dumps({"type": "event", "event": event, "data": {"tracker_id": 1}})
    assert NavixyDecoder("fleet").decode(text) == NOTHING


# ---- iot_monitor: queues merged by msg_time, nothing twice --------------------------------


def test_the_seed_sample_merges_into_one_message_per_msg_time() -> None:
    decoded = NavixyDecoder("fleet").decode(frame("navixy_iot_monitor_seed.json"))
    assert decoded.problems == () and decoded.notices == ()
    assert decoded.events == (
        Message("fleet", "21080", T52, {"satellites": 10, "heading": 6,
                                        "latitude": "5.9646583", "longitude": "6.5169383",
                                        "lls_level_1": "262.9945", "speed": 48},
                srv_time=1739286773.0, absent_is_null=False),
        # lls_level_1 at :58 is only in nonnull_fields: the merge keeps it
        Message("fleet", "21080", T58, {"satellites": 10, "heading": 7,
                                        "latitude": "5.9654133", "longitude": "6.5171267",
                                        "lls_level_1": "262.9138", "speed": 43},
                srv_time=T58, absent_is_null=False),
        Message("fleet", "21080", T59, {"lls_level_1": None}, srv_time=T59,
                absent_is_null=False),
    )


def test_a_resent_window_is_nothing_new() -> None:
    decoder = NavixyDecoder("fleet")
    assert len(decoder.decode(frame("navixy_iot_monitor_seed.json")).events) == 3
    assert decoder.decode(frame("navixy_iot_monitor_seed.json")) == NOTHING
    assert decoder.decode(frame("navixy_iot_monitor_seed.json").encode()) == NOTHING


def test_a_new_message_in_the_window_is_exactly_one_new_message() -> None:
    decoder = NavixyDecoder("fleet")
    decoder.decode(frame("navixy_iot_monitor_seed.json"))
    sample = seed()
    tracker = sample["data"]["iot_last_values"][0]
    new = {"satellites": 9, "heading": 8, "latitude": "5.9660001", "longitude": "6.5173002",
           "lls_level_1": None, "speed": 44}
    for queues in (tracker["all_fields"], tracker["nonnull_fields"]):
        for attribute, value in new.items():
            if value is not None or queues is tracker["all_fields"]:
                queues[attribute].insert(0, entry("2025-02-11T15:13:04Z", value,
                                                  "2025-02-11T15:13:05Z"))
            del queues[attribute][2:]  # the window slides: the oldest entry leaves it
    decoded = decoder.decode(json.dumps(sample))
    assert decoded.events == (Message("fleet", "21080", 1739286784.0, new,
                                      srv_time=1739286785.0, absent_is_null=False),)
    assert decoder.decode(json.dumps(sample)) == NOTHING


def test_two_trackers_in_one_event_each_become_messages() -> None:
    found = messages(NavixyDecoder("fleet").decode(frame("navixy_two_trackers.json")))
    assert [(m.entity, m.msg_time, m.srv_time, dict(m.fields)) for m in found] == [
        ("21080", 1767254400.0, 1767254401.0, {"speed": 50, "lls_level_1": "262.9138"}),
        ("21080", 1767254410.0, 1767254411.0, {"speed": 52, "lls_level_1": None}),
        # board_voltage reached the server later than the rest of its message: max srv_time
        ("21081", 1767254405.0, 1767254409.0, {"board_voltage": 12.7, "ignition": 0,
                                               "driver": "A. Weber"}),
        ("21081", 1767254420.0, 1767254421.0, {"ignition": 1}),
    ]


def test_queues_that_do_not_line_up_give_each_entry_once() -> None:
    decoder = NavixyDecoder("fleet")
    decoder.decode(frame("navixy_two_trackers.json"))
    sample = json.loads(frame("navixy_two_trackers.json"))
    later = sample["data"]["iot_last_values"][1]
    for queues in (later["all_fields"], later["nonnull_fields"]):
        # the rest of the 08:00:20 message arrives in the next window
        queues["board_voltage"].insert(0, entry("2026-01-01T08:00:20Z", 12.9))
        queues["driver"].insert(0, entry("2026-01-01T08:00:20Z", "A. Weber"))
    found = messages(decoder.decode(json.dumps(sample)))
    assert [(m.entity, m.msg_time, dict(m.fields)) for m in found] == [
        ("21081", 1767254420.0, {"board_voltage": 12.9, "driver": "A. Weber"})]


def test_what_is_remembered_is_bounded_by_the_window() -> None:
    decoder = NavixyDecoder("fleet")
    window: list[dict[str, Any]] = []
    for second in range(200):
        window.insert(0, entry(f"2026-01-01T08:{second // 60:02}:{second % 60:02}Z", second))
        del window[12:]
        item = {"tracker_id": 7, "all_fields": {"speed": window},
                "nonnull_fields": {"speed": window}}
        text = json.dumps({"type": "event", "event": "iot_monitor",
                           "data": {"iot_last_values": [item]}})
        (message,) = messages(decoder.decode(text))
        assert message.fields == {"speed": second}
    assert len(decoder._seen["7"]) <= 12  # private, but the bound is the point
    assert len(decoder._known["7"]["speed"]) <= 12  # the texts skipped before any work


def test_a_resent_window_reads_no_time_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """The entries taken before are skipped by their time text before any other work: the
    second decoding of the same window reads no time at all (the null of the all_fields
    queue included), and a window with one new message reads only that one's times."""
    import alertd.sources.navixy as navixy

    read: list[Any] = []
    original = navixy._time

    def counting(cache: dict[Any, float | None], raw: Any) -> float | None:
        read.append(raw)
        return original(cache, raw)

    monkeypatch.setattr(navixy, "_time", counting)
    decoder = NavixyDecoder("fleet")
    decoder.decode(frame("navixy_iot_monitor_seed.json"))
    assert read
    read.clear()
    assert decoder.decode(frame("navixy_iot_monitor_seed.json")) == NOTHING
    assert read == []
    sample = seed()
    queues = sample["data"]["iot_last_values"][0]["all_fields"]
    queues["speed"].insert(0, entry("2025-02-11T15:13:04Z", 44, "2025-02-11T15:13:05Z"))
    (message,) = messages(decoder.decode(json.dumps(sample)))
    assert message.fields == {"speed": 44}
    assert read == ["2025-02-11T15:13:04Z", "2025-02-11T15:13:05Z"]


def test_a_time_completed_later_takes_the_newest_srv_time_of_either_queue() -> None:
    """driver's 08:00:00 value comes an event after speed's, in nonnull_fields only, and
    reached the server 5 s later: its message says so, whichever queue held the entry."""
    def event(nonnull: dict[str, Any]) -> str:
        item = {"tracker_id": 7,
                "all_fields": {"speed": [entry("2026-01-01T08:00:00Z", 50)]},
                "nonnull_fields": nonnull}
        return json.dumps({"type": "event", "event": "iot_monitor",
                           "data": {"iot_last_values": [item]}})

    decoder = NavixyDecoder("fleet")
    assert [m.srv_time for m in messages(decoder.decode(event({})))] == [T0]
    later = {"driver": [entry("2026-01-01T08:00:00Z", "A. Weber", "2026-01-01T08:00:05Z")]}
    found = messages(decoder.decode(event(later)))
    assert [(m.msg_time, dict(m.fields), m.srv_time) for m in found] == [
        (T0, {"driver": "A. Weber"}, T0 + 5)]


WINDOW_TIMES = [f"2026-01-01T08:00:{second:02}Z" for second in range(60)]


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(1, 8), st.sets(st.sampled_from("abc")),
                          st.booleans(), st.integers(0, 2)), max_size=12))
def test_resent_windows_give_each_attribute_and_time_once_as_a_model_says(
        steps: list[tuple[int, int, set[str], bool, int]]) -> None:
    """Windows that slide, deepen, lose and regain attributes, newest or oldest first: each
    (attribute, time) of an event that the decoder does not remember is emitted once, in
    one message per time (in time order) whose srv_time is the newest of that time's entries
    in the event; what leaves the window (older than the event's oldest entry) is forgotten.
    The decoder skips the entries it took before by their time text: it must say what
    decoding every entry says."""
    decoder = NavixyDecoder("fleet")
    remembered: dict[int, set[str]] = {}
    end = 5
    for advance, depth, attributes, newest_first, srv_lag in steps:
        end += advance
        seconds = list(range(max(0, end - depth), end))

        def queue(attribute: str, nonnull: bool, seconds: list[int], srv_lag: int,
                  newest_first: bool) -> list[dict[str, Any]]:
            values = [(t, None if (t + ord(attribute)) % 4 == 0 else t) for t in seconds]
            found = [entry(WINDOW_TIMES[t], v, WINDOW_TIMES[t + srv_lag * (a == "b")])
                     for t, v in values for a in [attribute] if not (nonnull and v is None)]
            return found[::-1] if newest_first else found

        shape = (seconds, srv_lag, newest_first)
        item = {"tracker_id": 7,
                "all_fields": {a: queue(a, False, *shape) for a in sorted(attributes)},
                "nonnull_fields": {a: queue(a, True, *shape) for a in sorted(attributes)}}
        text = json.dumps({"type": "event", "event": "iot_monitor",
                           "data": {"iot_last_values": [item]}})
        expected = []
        for t in seconds:
            new = {a: (None if (t + ord(a)) % 4 == 0 else t) for a in sorted(attributes)
                   if a not in remembered.get(t, set())}
            if new:
                srv = max(t + srv_lag * (a == "b") for a in attributes)
                expected.append((T0 + t, new, T0 + srv))
            remembered.setdefault(t, set()).update(attributes)
        if attributes and seconds:
            remembered = {t: a for t, a in remembered.items() if t >= seconds[0]}
        found = messages(decoder.decode(text))
        assert [(m.msg_time, dict(m.fields), m.srv_time) for m in found] == expected


T0 = 1767254400.0  # 2026-01-01T08:00:00Z


# ---- bad input: described, skipped, never raised ---------------------------------------------


@pytest.mark.parametrize(("text", "said"), [
    ("{not json", "JSON"),
    ('["X"]', "object"),
    ('{"type": "broadcast"}', "broadcast"),
    ('{"type": "error", "status": {"description": "no code"}}', "code"),
    ('{"type": "error"}', "code"),
    ('{"type": "event", "event": "iot_monitor", "data": {}}', "iot_last_values"),
    ('{"type": "event", "event": "iot_monitor", "data": {"iot_last_values": {}}}',
     "iot_last_values"),
    ('{"type": "event", "event": "lifecycle", "data": "block"}', "lifecycle"),
    ('{"type": "response", "data": {"iot_monitor": ["normal"]}}', "iot_monitor"),
])
def test_a_malformed_frame_is_a_problem(text: str, said: str) -> None:
    decoded = NavixyDecoder("fleet").decode(text)
    assert decoded.events == () and decoded.notices == ()
    (problem,) = decoded.problems
    assert said in problem


@pytest.mark.parametrize("bad_item", [
    "21081",
    {"all_fields": {"speed": [entry("2026-01-01T08:00:00Z", 1)]}},
    {"tracker_id": None, "all_fields": {}},
    {"tracker_id": 21081, "all_fields": ["speed"]},
])
def test_a_malformed_tracker_is_a_problem_and_the_other_tracker_still_decodes(
        bad_item: Any) -> None:
    sample = seed()
    sample["data"]["iot_last_values"].insert(0, bad_item)
    decoded = NavixyDecoder("fleet").decode(json.dumps(sample))
    assert [m.msg_time for m in messages(decoded)] == [T52, T58, T59]
    assert len(decoded.problems) == 1


def test_entries_without_a_valid_msg_time_are_a_problem_the_rest_decodes() -> None:
    sample = seed()
    queues = sample["data"]["iot_last_values"][0]["all_fields"]
    queues["speed"].insert(0, {"msg_time": "soon", "value": 1})
    queues["heading"].insert(0, "not an entry")
    queues["odometer"] = "not a queue"
    decoded = NavixyDecoder("fleet").decode(json.dumps(sample))
    assert [m.msg_time for m in messages(decoded)] == [T52, T58, T59]
    (problem,) = decoded.problems
    assert "msg_time" in problem


def test_values_pass_through_unchanged() -> None:
    values = [0, -3, 2.5, "262.9138", "on", None, True]
    queues = {f"a{i}": [entry("2026-01-01T08:00:00Z", v)] for i, v in enumerate(values)}
    item = {"tracker_id": "21080", "all_fields": queues, "nonnull_fields": {}}
    text = json.dumps({"type": "event", "event": "iot_monitor",
                       "data": {"iot_last_values": [item]}})
    (message,) = messages(NavixyDecoder("fleet").decode(text))
    assert list(message.fields.values()) == values and message.entity == "21080"


def test_deeply_nested_json_is_a_problem_not_a_crash() -> None:
    decoded = NavixyDecoder("fleet").decode("[" * 100_000 + "]" * 100_000)
    assert decoded.events == () and len(decoded.problems) == 1


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
    | st.sampled_from(["2025-02-11T15:12:58Z", "event", "response", "error", "iot_monitor",
                       "lifecycle", "logout", "normal", "X"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["type", "event", "action", "data", "status", "code", "description",
                         "iot_monitor", "value", "success", "iot_last_values", "tracker_id",
                         "all_fields", "nonnull_fields", "speed", "msg_time", "srv_time",
                         "source_id", "lifecycle_event"]),
        inner, max_size=6),
    max_leaves=40)


@settings(max_examples=examples(400), deadline=None)
@given(st.one_of(st.text(), st.binary(), JSON_VALUES.map(json.dumps),
                 st.from_regex(r"\A[0-9a-f-]{0,36}\|-?[0-9]{0,6}\|X?\|?\Z")))
def test_no_frame_makes_the_decoder_raise(data: str | bytes) -> None:
    decoder = NavixyDecoder("fleet")
    decoded = decoder.decode(data)
    decoder.decode(data)  # and again, with what the first call remembered
    assert all(isinstance(e, Message | StatusChanged) for e in decoded.events)


# ---- what alertd sends -------------------------------------------------------------------


def test_23_trackers_are_one_action_of_three_requests_of_at_most_10() -> None:
    trackers = list(range(21080, 21103))
    action = json.loads(subscribe_action("6c638c52cb40729d5e6181a48f868649", trackers, "5s",
                                         None))
    assert [r["target"]["tracker_ids"] for r in action["requests"]] == [
        trackers[:10], trackers[10:20], trackers[20:]]
    assert action["action"] == "subscribe"
    assert action["hash"] == "6c638c52cb40729d5e6181a48f868649"
    assert action["requests"][0] == {"type": "iot_monitor",
                                     "target": {"type": "selected",
                                                "tracker_ids": trackers[:10]},
                                     "rate_limit": "5s"}


def test_flow_id_goes_into_every_request() -> None:
    action = json.loads(subscribe_action("h" * 32, [1] * 11, "10s", 1335))
    assert [r["flow_id"] for r in action["requests"]] == [1335, 1335]
    assert {r["rate_limit"] for r in action["requests"]} == {"10s"}


def test_the_atmosphere_parameters_are_added() -> None:
    url = with_atmosphere_params("wss://api.eu.navixy.com/v2/event/subscription")
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("wss", "api.eu.navixy.com",
                                                        "/v2/event/subscription")
    assert parse_qs(parts.query) == {
        "X-Atmosphere-tracking-id": ["0"], "X-Atmosphere-Framework": ["2.3.6-javascript"],
        "X-Atmosphere-Transport": ["websocket"], "Content-Type": ["application/json"],
        "X-atmo-protocol": ["true"]}


def test_the_atmosphere_parameters_a_url_has_are_not_duplicated() -> None:
    url = with_atmosphere_params("wss://white.example/api-v2/wse/subscription"
                                 "?X-Atmosphere-Framework=3.1.0-javascript&region=eu"
                                 "&X-atmo-protocol=true")
    query = parse_qs(urlsplit(url).query)
    assert query["X-Atmosphere-Framework"] == ["3.1.0-javascript"]
    assert query["X-atmo-protocol"] == ["true"] and query["region"] == ["eu"]
    assert len(query) == 6 and all(len(values) == 1 for values in query.values())
    assert with_atmosphere_params(url) == url



# ---- both queue shapes, restarts, statuses from data -------------------------------------


def as_list_of_objects(event: dict[str, Any]) -> dict[str, Any]:
    """The seed's text reading: each queue set a list of one-attribute objects."""
    listed = json.loads(json.dumps(event))
    for item in listed["data"]["iot_last_values"]:
        for key in ("nonnull_fields", "all_fields"):
            item[key] = [{attribute: queue} for attribute, queue in item[key].items()]
    return listed


def test_list_shaped_queues_give_the_same_messages_as_keyed_ones() -> None:
    keyed = NavixyDecoder("fleet").decode(json.dumps(seed()))
    listed = NavixyDecoder("fleet").decode(json.dumps(as_list_of_objects(seed())))
    assert listed.problems == ()
    assert messages(listed) == messages(keyed)
    assert [m.msg_time for m in messages(listed)] == [T52, T58, T59]


def test_a_list_of_single_entries_is_read_too() -> None:
    event = {"type": "event", "event": "iot_monitor", "data": {"iot_last_values": [{
        "tracker_id": 21080, "nonnull_fields": [{"speed": entry("2025-02-11T15:12:58Z", 43)}],
        "all_fields": [{"speed": entry("2025-02-11T15:12:58Z", 43)},
                       {"lls_level_1": entry("2025-02-11T15:12:59Z", None)}]}]}}
    (speed, gap) = messages(NavixyDecoder("fleet").decode(json.dumps(event)))
    assert (speed.msg_time, dict(speed.fields)) == (T58, {"speed": 43})
    assert (gap.msg_time, dict(gap.fields)) == (T59, {"lls_level_1": None})


def test_positions_say_how_far_each_attribute_was_evaluated() -> None:
    decoder = NavixyDecoder("fleet")
    decoder.decode(json.dumps(seed()))
    positions = decoder.take_positions()
    assert list(positions) == ["21080"]
    saved = json.loads(positions["21080"])
    assert saved["lls_level_1"] == T59 and saved["speed"] == T58
    decoder.decode(json.dumps(seed()))  # the same window again: nothing new to save
    assert decoder.take_positions() == {}


def test_after_a_restart_the_resent_window_only_rebuilds_the_history() -> None:
    first = NavixyDecoder("fleet")
    evaluated = messages(first.decode(json.dumps(seed())))
    saved = {tracker: {a: float(t) for a, t in json.loads(text).items()}
             for tracker, text in first.take_positions().items()}
    restarted = NavixyDecoder("fleet", saved)
    again = messages(restarted.decode(json.dumps(seed())))
    assert again and all(m.history_only for m in again)
    assert [m.msg_time for m in again] == [T52, T58, T59]  # the queues are whole again
    # the same messages as the first run evaluated (source, tracker, fields, srv_time)
    assert [dataclasses.replace(m, history_only=False) for m in again] == evaluated
    newer = seed()
    newer["data"]["iot_last_values"][0]["all_fields"]["lls_level_1"].insert(
        0, entry("2025-02-11T15:13:05Z", "261.0"))
    (fresh,) = [m for m in messages(restarted.decode(json.dumps(newer))) if not m.history_only]
    assert dict(fresh.fields) == {"lls_level_1": "261.0"}


def test_data_for_a_blocked_tracker_says_it_is_normal_again() -> None:
    decoder = NavixyDecoder("fleet")
    decoder.decode('{"type": "response", "action": "subscription/subscribe", "data": '
                   '{"iot_monitor": {"value": {"21080": "blocked"}}}}')
    events = decoder.decode(json.dumps(seed())).events
    assert events[0] == StatusChanged("fleet", "21080", "normal")
    assert decoder.decode(json.dumps(seed())).events == ()  # said once, not on every event


def test_queue_entries_without_a_time_are_counted_and_the_rest_is_decoded() -> None:
    sample = seed()
    queues = sample["data"]["iot_last_values"][0]["all_fields"]
    queues["speed"] += [{"value": 1}, "junk", {"msg_time": ["2025-02-11T15:13:05Z"]},
                        {"msg_time": {"at": 1}}, {"msg_time": 1739286785}, {"msg_time": ""},
                        {"msg_time": "yesterday"}]
    decoder = NavixyDecoder("fleet")
    decoded = decoder.decode(json.dumps(sample))
    (problem,) = decoded.problems
    assert problem.startswith("7 queue entries without a valid msg_time: {"), problem
    (again,) = decoder.decode(json.dumps(sample)).problems  # remembered texts: still bad
    assert again.startswith("7 queue entries without a valid msg_time: {"), again
    assert [m.msg_time for m in messages(decoded)] == [
        m.msg_time for m in messages(NavixyDecoder("fleet").decode(json.dumps(seed())))]
    assert NavixyDecoder("fleet").decode(json.dumps({
        "type": "event", "event": "iot_monitor", "data": {"iot_last_values": [{"x": 1}]}})
    ).problems[0].startswith("iot_monitor item without tracker_id")


# ---- each problem names itself and quotes the frame; defaults of what a frame leaves out -----

UNKNOWN = '{"type": "' + "q" * 60 + '"}'
DEAF = '{"type": "response", "data": {"iot_monitor": {"value": {"7": "' + "z" * 60 + '"}}}}'


@pytest.mark.parametrize(("text", "problem"), [
    ("[1, 2]", "frame is not a JSON object: [1, 2]"),
    ('[1, "|", "|"]', 'frame is not a JSON object: [1, "|", "|"]'),
    ('{"type": "a|b|c"}', """frame of unknown type 'a|b|c': {"type": "a|b|c"}"""),
    (UNKNOWN, "frame of unknown type '" + "q" * 39 + "...: " + UNKNOWN),
    ('{"type": "error", "status": {"description": "x"}}',
     'error frame without a code: {"type": "error", "status": {"description": "x"}}'),
    ("25|x|X", "handshake without an interval: 25|x|X"),
    ('{"type": "response", "data": {"iot_monitor": 5}}',
     'response without iot_monitor statuses: {"type": "response", "data": {"iot_monitor": 5}}'),
    ('{"type": "event", "event": "lifecycle", "data": {}}',
     'lifecycle event of unexpected shape: {"type": "event", "event": "lifecycle", "data": {}}'),
    ('{"type": "event", "event": "iot_monitor", "data": [1]}',
     'iot_monitor event without iot_last_values: '
     '{"type": "event", "event": "iot_monitor", "data": [1]}'),
    (DEAF, "tracker 7 has unknown status '" + "z" * 40 + "...'"),
])
def test_each_frame_problem_names_itself_and_quotes_the_frame(text: str, problem: str) -> None:
    assert NavixyDecoder("fleet").decode(text).problems == (problem,)


def test_an_undecodable_frame_is_quoted() -> None:
    (problem,) = NavixyDecoder("fleet").decode(b"\xff\xfe{}").problems
    assert problem.startswith("frame is not UTF-8 text: ") and "{}" in problem


@pytest.mark.parametrize(("text", "notice"), [
    ('{"type": "error", "status": {"code": 12}}', RequestFailed(12, "")),
    ('{"type": "event", "event": "logout", "data": "kicked"}', LoggedOut("kicked")),
    ('{"type": "event", "event": "logout", "data": ""}', LoggedOut("session closed")),
    ('{"type": "event", "event": "lifecycle", "data": {"source_id": 5}}', Lifecycle(5, "")),
    ('{"type": "response", "data": {"iot_monitor": {"success": false, "value": null}}}',
     SubscribeRejected(())),
    ("25|30000|X", Handshake(30000)),
])
def test_what_a_frame_leaves_out_has_a_plain_default(text: str, notice: object) -> None:
    assert NavixyDecoder("fleet").decode(text) == Decoded((), (), (notice,))


def test_a_response_to_another_subscription_is_nothing() -> None:
    assert NavixyDecoder("fleet").decode('{"type": "response", "data": [1]}') == Decoded()


def test_atmosphere_parameters_are_added_once_and_after_no_stray_ampersand() -> None:
    added = ("X-Atmosphere-tracking-id=0&X-Atmosphere-Framework=2.3.6-javascript&"
             "X-Atmosphere-Transport=websocket&Content-Type=application/json&X-atmo-protocol=true")
    assert with_atmosphere_params("wss://h/event/subscription") == \
        "wss://h/event/subscription?" + added
    blank = with_atmosphere_params("wss://h/e?X-Atmosphere-tracking-id=")  # present, if blank
    assert parse_qs(urlsplit(blank).query, keep_blank_values=True)[
        "X-Atmosphere-tracking-id"] == [""]


# ---- final mutation round: merging, positions after a restart, statuses -----------------


def test_an_item_with_only_nonnull_fields_decodes_without_a_problem() -> None:
    sample = seed()
    del sample["data"]["iot_last_values"][0]["all_fields"]
    decoded = NavixyDecoder("fleet").decode(json.dumps(sample))
    assert decoded.problems == ()
    assert [m.msg_time for m in messages(decoded)] == [T52, T58]  # no null at :59 without it


@pytest.mark.parametrize("with_value", ["all_fields", "nonnull_fields"])
def test_a_value_beats_a_null_at_the_same_time_whichever_queue_says_it(with_value: str) -> None:
    # a queue that says null where the other holds a value at the same msg_time would make
    # a `missing` rule count a null that is not one
    with_null = "nonnull_fields" if with_value == "all_fields" else "all_fields"
    item = {"tracker_id": 7, with_value: {"speed": [entry("2025-02-11T15:12:52Z", 41)]},
            with_null: {"speed": [entry("2025-02-11T15:12:52Z", None)]}}
    event = {"type": "event", "event": "iot_monitor", "data": {"iot_last_values": [item]}}
    (message,) = messages(NavixyDecoder("fleet").decode(json.dumps(event)))
    assert dict(message.fields) == {"speed": 41}


def test_a_tracker_reported_normal_gets_no_second_normal_with_its_data() -> None:
    decoder = NavixyDecoder("fleet")
    decoder.decode('{"type": "response", "action": "subscription/subscribe", "data": '
                   '{"iot_monitor": {"value": {"21080": "normal"}}}}')
    events = decoder.decode(json.dumps(seed())).events
    assert not any(isinstance(event, StatusChanged) for event in events)


def test_after_a_restart_only_the_attributes_saved_are_history_only() -> None:
    # saved: speed up to :58; the other attributes were never evaluated (say, no rule read
    # them before a reload), so they are evaluated now
    restarted = NavixyDecoder("fleet", {"21080": {"speed": T58}})
    found = messages(restarted.decode(json.dumps(seed())))
    assert [(m.msg_time, m.history_only, sorted(m.fields)) for m in found] == [
        (T52, True, ["speed"]),
        (T52, False, ["heading", "latitude", "lls_level_1", "longitude", "satellites"]),
        (T58, True, ["speed"]),
        (T58, False, ["heading", "latitude", "lls_level_1", "longitude", "satellites"]),
        (T59, False, ["lls_level_1"]),
    ]


def test_a_restarts_resent_window_saves_no_position_again() -> None:
    first = NavixyDecoder("fleet")
    first.decode(json.dumps(seed()))
    saved = {tracker: {a: float(t) for a, t in json.loads(text).items()}
             for tracker, text in first.take_positions().items()}
    restarted = NavixyDecoder("fleet", saved)
    restarted.decode(json.dumps(seed()))
    assert restarted.take_positions() == {}  # nothing newer than what was saved


def test_a_late_entry_does_not_move_the_saved_position_back() -> None:
    decoder = NavixyDecoder("fleet")
    decoder.decode(json.dumps(seed()))
    decoder.take_positions()
    late = seed()
    late["data"]["iot_last_values"][0]["all_fields"]["speed"].append(
        entry("2025-02-11T15:12:40Z", 30))  # older than every entry seen, never seen itself
    (message,) = messages(decoder.decode(json.dumps(late)))
    assert message.msg_time == T52 - 12 and dict(message.fields) == {"speed": 30}
    assert decoder.take_positions() == {}  # speed was evaluated up to :58 already


# ---- nonnull_fields equal to all_fields: parsed once -----------------------------------------


def item_text(pairs: list[tuple[str, Any]], compact: bool) -> str:
    """An item written key by key, so that a key may come twice (JSON allows it)."""
    comma, colon = (",", ":") if compact else (",\n  ", " : ")
    options: dict[str, Any] = {"separators": (",", ":")} if compact else {"indent": 1}
    return "{" + comma.join(f"{json.dumps(key)}{colon}{json.dumps(value, **options)}"
                            for key, value in pairs) + "}"


def monitor_text(items: list[str]) -> str:
    return ('{"type":"event","event":"iot_monitor","data":{"iot_last_values":['
            + ",".join(items) + "]}}")


ENTRY_VALUES = st.one_of(
    st.integers(-5, 5), st.none(), st.text(alphabet='ab"\\:,{}[]', max_size=6),
    st.sampled_from(['"nonnull_fields":', ',"all_fields":', "{", "}]"]),
    st.fixed_dictionaries({"nonnull_fields": st.just({"a": []}),
                           "all_fields": st.just({"a": []})}))
QUEUES = st.dictionaries(
    st.sampled_from(["speed", "fuel", 'x"nonnull_fields', "all_fields"]),
    st.lists(st.builds(lambda second, value: entry(WINDOW_TIMES[second], value),
                       st.integers(0, 5), ENTRY_VALUES), max_size=3),
    max_size=3) | st.lists(st.dictionaries(st.sampled_from(["speed", "fuel"]),
                                           st.lists(st.builds(entry, st.sampled_from(
                                               WINDOW_TIMES[:3]), st.integers(0, 3)),
                                               max_size=2), max_size=2), max_size=2)
ITEM_KEYS = st.sampled_from(["tracker_id", "nonnull_fields", "all_fields", "nonnull_fields",
                             "all_fields", 'a\\"nonnull_fields', "x", 'a"nonnull_fields'])


@st.composite
def items_with_pairs(draw: st.DrawFn) -> str:
    """An item whose ``nonnull_fields`` and ``all_fields`` are mostly the same queues, in
    either order, and sometimes beside keys that only look like them, keys twice, values
    that hold such keys or their text, or no tracker_id."""
    same = draw(QUEUES)
    pairs: list[tuple[str, Any]] = [("tracker_id", draw(st.integers(1, 3)))]
    pairs += [("nonnull_fields", same), ("all_fields", same)] \
        if draw(st.booleans()) else [("all_fields", same), ("nonnull_fields", same)]
    for _ in range(draw(st.integers(0, 2))):
        key = draw(ITEM_KEYS)
        value = same if draw(st.booleans()) else draw(QUEUES | ENTRY_VALUES)
        pairs.insert(draw(st.integers(0, len(pairs))), (key, value))
    return item_text(pairs, draw(st.booleans()))


@settings(max_examples=examples(600), deadline=None)
@given(st.lists(st.lists(items_with_pairs(), min_size=1, max_size=3), min_size=1,
                max_size=3))
def test_queues_parsed_once_decode_as_the_whole_frame_parsed_does(
        frames: list[list[str]]) -> None:
    """Whatever the frame: keys twice, in either order, keys that end like the names,
    values holding the names or their text, the decoder says what it says when it parses
    every frame whole."""
    folding, whole = NavixyDecoder("fleet"), NavixyDecoder("fleet")
    for items in frames:
        text = monitor_text(items)
        found = folding.decode(text)
        with mock.patch.object(navixy, "_fold", lambda text: (text, {})):
            expected = whole.decode(text)
        assert found == expected
        assert folding.take_positions() == whole.take_positions()


def test_the_usual_frame_parses_its_queues_once_and_decodes_as_before() -> None:
    queues = {"speed": [entry("2025-02-11T15:12:58Z", 43), entry("2025-02-11T15:12:52Z", 48)]}
    item = item_text([("tracker_id", 7), ("nonnull_fields", queues), ("all_fields", queues)],
                     compact=True)
    folded, values = navixy._fold(monitor_text([item]))
    (stand_in,) = values
    assert values[stand_in] == queues
    stand_in = json.dumps(stand_in)
    assert folded == monitor_text(
        [f'{{"tracker_id":7,"nonnull_fields":{stand_in},"all_fields":{stand_in}}}'])
    found = messages(NavixyDecoder("fleet").decode(monitor_text([item])))
    assert [(m.msg_time, dict(m.fields)) for m in found] == [(T52, {"speed": 48}),
                                                            (T58, {"speed": 43})]


@pytest.mark.parametrize("pairs", [
    [("nonnull_fields", {"s": []}), ("all_fields", {"s": []}), ("all_fields", {"s": [1]})],
    [("nonnull_fields", {"s": []}), ("all_fields", {"s": []}), ("nonnull_fields", {"s": [1]})],
    [('a"nonnull_fields', {"s": []}), ("all_fields", {"s": []})],
    [("all_fields", {"s": []}), ("nonnull_fields", {"s": []}), ("nonnull_fields", 3)],
])
def test_a_pair_that_is_not_its_items_own_is_read_as_it_came(
        pairs: list[tuple[str, Any]]) -> None:
    """A key twice (the last one counts), or a key that only ends like the name: the pair
    looks the same in the text, but the values the item has are not; the frame is read as
    it came, so the entry without a time counts and the item is quoted as it was."""
    text = monitor_text([item_text([("tracker_id", 7), *pairs], compact=True)])
    assert navixy._fold(text)[1]  # a pair was found ...
    decoded = NavixyDecoder("fleet").decode(text)
    with mock.patch.object(navixy, "_fold", lambda text: (text, {})):
        assert decoded == NavixyDecoder("fleet").decode(text)  # ... and not taken


def test_a_frame_holding_a_stand_in_text_is_read_as_it_came() -> None:
    """An item whose queues are text like ``_fold``'s stand-ins, beside an item whose pair
    is not its own (its all_fields comes twice): nothing of the first is taken for the
    second's. The stand-ins are drawn when alertd starts, so no frame can hold one."""
    folded, values = navixy._fold(monitor_text([item_text(
        [("tracker_id", 1), ("nonnull_fields", {}), ("all_fields", {})], compact=True)]))
    (stand_in,) = values
    assert stand_in in folded and stand_in.startswith("alertd-")
    for literal in ("\x00alertd 0", "alertd 0", stand_in.rsplit("-", 1)[0] + "-0 0"):
        first = item_text([("tracker_id", 1), ("nonnull_fields", literal),
                           ("all_fields", literal)], compact=True)
        queues = {"s": [entry(WINDOW_TIMES[1], 5)]}
        second = item_text([("tracker_id", 2), ("nonnull_fields", queues),
                            ("all_fields", queues),
                            ("all_fields", {"s": [entry(WINDOW_TIMES[2], 6)]})], compact=True)
        text = monitor_text([first, second])
        decoded = NavixyDecoder("fleet").decode(text)
        assert [(m.entity, m.msg_time, dict(m.fields)) for m in messages(decoded)] == [
            ("2", T0 + 1, {"s": 5}), ("2", T0 + 2, {"s": 6})]
        (problem,) = decoded.problems
        assert problem.startswith("all_fields is neither an object nor a list of objects")


def test_an_attribute_with_a_lone_surrogate_still_gives_a_position_that_resumes_past_it() -> None:
    """JSON may escape half of a UTF-16 pair ("\\ud800"); such an attribute name is still a
    name: its entry is evaluated once, and the position saved (which orjson cannot write)
    makes its window history only after a restart."""
    odd = "lls\ud800"
    window = seed()
    window["data"]["iot_last_values"][0]["all_fields"][odd] = [entry("2025-02-11T15:13:05Z", 1)]
    text = json.dumps(window)  # the name as an escape, which only json reads
    first = NavixyDecoder("fleet")
    assert [m.fields for m in messages(first.decode(text)) if odd in m.fields] == [{odd: 1}]
    saved = {tracker: {a: float(t) for a, t in json.loads(position).items()}
             for tracker, position in first.take_positions().items()}
    assert odd in saved["21080"]
    again = messages(NavixyDecoder("fleet", saved).decode(text))
    assert again and all(m.history_only for m in again)
