"""The pure decoders against recorded frames of both services."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alertd.model import Message, StatusChanged
from alertd.sources.common import Decoded
from alertd.sources.element import ElementDecoder
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


def frame(name: str) -> str:
    return (FRAMES / name).read_text()


def test_element_reading() -> None:
    decoder = ElementDecoder("cold")
    decoded = decoder.decode(frame("element_reading.json"))
    assert decoded.problems == ()
    assert decoded.events == (Message(
        "cold", "43b5dca3-e7d9-4028-9309-c26ac0c08721", 1501665064.910127,
        {"temperature": 21.5, "humidity": 40}, 1501665064.918087, None, absent_is_null=True),)
    assert decoder.newest_inserted_at == "2017-08-02T09:11:04.918087Z"


def test_element_packet_with_meta_and_preloaded_name() -> None:
    (message,) = ElementDecoder("cold").decode(frame("element_packet.json")).events
    assert isinstance(message, Message)
    assert message.entity == "8a1d0f" and message.entity_name == "Blast freezer"
    assert message.fields == {"interface_id": "if-lorawan-1", "packet_type": "up",
                              "payload": "0167010a", "payload_encoding": "binary",
                              "meta.frame_port": 2, "meta.frame_count_up": 1017,
                              "meta.rssi": -117, "meta.snr": -6.5,
                              "meta.gateways": [{"id": "gw1", "rssi": -117}],
                              "device.id": "8a1d0f", "device.name": "Blast freezer"}
    assert message.msg_time == 1767261600.25 and message.srv_time == 1767261601.0


def test_element_replay_overlap_is_not_evaluated_twice() -> None:
    envelopes = [{"event": "reading_added", "body": {
        "id": f"r{i}", "device_id": "d1", "measured_at": f"2026-01-01T00:00:0{i}Z",
        "inserted_at": f"2026-01-01T00:00:0{i}.5Z", "data": {"t": i}}} for i in range(4)]
    decoder = ElementDecoder("cold")
    assert len(decoder.decode(json.dumps(envelopes[:2])).events) == 2
    replay = decoder.decode(json.dumps(envelopes[1:]))  # after= is inclusive: r1 comes again
    assert [e.fields["t"] for e in replay.events] == [2, 3]  # type: ignore[union-attr]
    assert decoder.newest_inserted_at == "2026-01-01T00:00:03.5Z"


def test_element_bad_input_is_described_and_the_rest_goes_on() -> None:
    decoder = ElementDecoder("cold")
    good = json.loads(frame("element_reading.json"))[0]
    decoded = decoder.decode(json.dumps([{"event": "reading_added", "body": {"id": "x"}},
                                         "junk", good, {"event": "device_updated"}]))
    assert len(decoded.events) == 1
    assert [p.split(":")[0] for p in decoded.problems] == [
        "body without device_id", "item is not an event envelope", "unknown event 'device_updated'"]
    assert decoder.decode("pong").events == () and decoder.decode("pong").problems == ()
    assert decoder.decode("{not json").problems == ("frame is not JSON: {not json",)
    long = decoder.decode("x" * 1000).problems[0]
    assert len(long) < 240 and long.endswith("...")


def test_navixy_iot_monitor_sample_merges_queues_by_msg_time() -> None:
    decoder = NavixyDecoder("fleet")
    decoded = decoder.decode(frame("navixy_iot_monitor_seed.json"))
    assert decoded.problems == ()
    times = [(e.msg_time, e.fields) for e in decoded.events]  # type: ignore[union-attr]
    assert times[0] == (1739286772.0, {"satellites": 10, "heading": 6, "latitude": "5.9646583",
                                       "longitude": "6.5169383", "lls_level_1": "262.9945",
                                       "speed": 48})
    assert times[-1] == (1739286779.0, {"lls_level_1": None})  # the gap, a second later
    assert all(not e.absent_is_null for e in decoded.events)  # type: ignore[union-attr]


def test_navixy_resent_window_is_not_new_and_a_new_entry_is() -> None:
    decoder = NavixyDecoder("fleet")
    sample = json.loads(frame("navixy_iot_monitor_seed.json"))
    decoder.decode(json.dumps(sample))
    assert decoder.decode(json.dumps(sample)).events == ()
    item = sample["data"]["iot_last_values"][0]
    item["all_fields"]["speed"].insert(0, {"msg_time": "2025-02-11T15:13:04Z",
                                           "srv_time": "2025-02-11T15:13:05Z", "value": 50})
    (new,) = decoder.decode(json.dumps(sample)).events
    assert isinstance(new, Message) and new.fields == {"speed": 50}
    assert new.srv_time == 1739286785.0


def test_navixy_several_trackers_in_one_event() -> None:
    sample = json.loads(frame("navixy_iot_monitor_seed.json"))
    other = json.loads(json.dumps(sample["data"]["iot_last_values"][0]))
    other["tracker_id"] = 21081
    sample["data"]["iot_last_values"].append(other)
    events = NavixyDecoder("fleet").decode(json.dumps(sample)).events
    assert {e.entity for e in events} == {"21080", "21081"}  # type: ignore[union-attr]


def test_navixy_protocol_frames() -> None:
    decoder = NavixyDecoder("fleet")
    assert decoder.decode("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0|25000|X|").notices == (
        Handshake(25000),)
    assert decoder.decode("X") == Decoded((), (), ()) == decoder.decode("")  # keep-alives
    statuses = decoder.decode(frame("navixy_subscribe_response.json")).events
    assert statuses == tuple(StatusChanged("fleet", t, s) for t, s in [
        ("21080", "normal"), ("21085", "blocked"), ("21090", "unknown"),
        ("21091", "disallowed")])
    assert decoder.decode('{"type": "error", "status": {"code": 3, "description": '
                          '"Wrong hash"}}').notices == (AuthFailed(3, "Wrong hash"),)
    assert decoder.decode('{"type": "error", "status": {"code": 7, "description": "Invalid '
                          'parameters"}}').notices == (RequestFailed(7, "Invalid parameters"),)
    assert decoder.decode('{"type": "event", "event": "logout", "data": "session closed"}'
                          ).notices == (LoggedOut("session closed"),)
    assert decoder.decode('{"type": "event", "event": "lifecycle", "data": {"source_id": '
                          '123456, "lifecycle_event": "block"}}').notices == (
        Lifecycle(123456, "block"),)
    assert decoder.decode('{"type": "response", "action": "subscription/subscribe", "data": '
                          '{"iot_monitor": {"success": false, "value": {"1": "unknown"}}}}'
                          ).notices == (SubscribeRejected(("1",)),)


def test_navixy_subscribe_is_chunked_by_ten_and_carries_flow_id() -> None:
    action = json.loads(subscribe_action("h" * 32, list(range(1, 24)), "5s", 1335))
    assert [len(r["target"]["tracker_ids"]) for r in action["requests"]] == [10, 10, 3]
    assert action["hash"] == "h" * 32
    assert all(r["flow_id"] == 1335 for r in action["requests"])


def test_atmosphere_params_are_added_once() -> None:
    url = with_atmosphere_params("wss://h/v2/event/subscription?X-Atmosphere-tracking-id=0")
    assert url.count("X-Atmosphere-tracking-id") == 1 and "X-atmo-protocol=true" in url
    assert with_atmosphere_params(url) == url


@settings(max_examples=examples(300), deadline=None)
@given(st.one_of(st.text(), st.binary(), st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["event", "body", "type", "data", "iot_last_values", "tracker_id",
                         "all_fields", "msg_time", "value", "device_id", "status", "code"]),
        inner, max_size=5), max_leaves=30).map(json.dumps)))
def test_no_input_makes_a_decoder_raise(data: str | bytes) -> None:
    for decoded in (ElementDecoder("cold").decode(data), NavixyDecoder("fleet").decode(data)):
        assert isinstance(decoded, Decoded)
        assert all(isinstance(e, Message | StatusChanged) and e.source in ("cold", "fleet")
                   for e in decoded.events)
        # one short line each, with an excerpt of the frame, not the frame
        assert all(isinstance(p, str) and 0 < len(p) < 400 for p in decoded.problems)
    try:
        json.loads(data)
    except ValueError:  # not JSON: ELEMENT says so, whatever else it is
        if data not in ("pong", b"pong", "", b""):
            assert ElementDecoder("cold").decode(data).problems[0].startswith(
                ("frame is not JSON", "frame is not UTF-8 text"))


def test_element_cursor_survives_a_restart_without_repeating_the_boundary() -> None:
    envelope = {"event": "reading_added", "body": {
        "id": "r9", "device_id": "d1", "measured_at": "2026-01-01T00:00:09Z",
        "inserted_at": "2026-01-01T00:00:09.5Z", "data": {"t": 9}}}
    first = ElementDecoder("cold")
    first.decode(json.dumps([envelope]))
    assert first.cursor is not None
    restarted = ElementDecoder("cold", after=first.cursor)  # what the state file gave back
    assert restarted.newest_inserted_at == "2026-01-01T00:00:09.5Z"  # for after=
    assert restarted.decode(json.dumps([envelope])).events == ()  # after= is inclusive
    assert ElementDecoder("cold", after="2026-01-01T00:00:09.5Z").decode(
        json.dumps([envelope])).events != ()  # a bare time (older state files) still works


def test_atmosphere_params_leave_the_users_query_as_written() -> None:
    url = with_atmosphere_params("wss://h/api-v2/wse/subscription?token=a%2Fb")
    assert url.startswith("wss://h/api-v2/wse/subscription?token=a%2Fb&")
    assert "Content-Type=application/json" in url


# ---- what both decoders share (sources/common.py) ----------------------------------------


def test_a_problem_shows_up_to_200_characters_of_its_frame_and_marks_a_cut() -> None:
    from alertd.sources.common import cut

    assert cut("a" * 200) == "a" * 200  # exactly the limit: nothing cut, no mark
    assert cut("a" * 201) == "a" * 200 + "..."
    assert cut(b"\xff" + b"b" * 10) == "\ufffd" + "b" * 10  # bytes that are not UTF-8


def test_a_frame_nested_too_deeply_is_a_problem_that_shows_its_start() -> None:
    from alertd.sources.common import excerpt, load_json

    deep = "[" * 100_000 + "]" * 100_000
    parsed, problem = load_json(deep)
    assert parsed is None
    assert problem == "frame is nested too deeply: " + "[" * 200 + "..."
    nested: list[object] = []
    for _ in range(100_000):
        nested = [nested]
    assert excerpt(nested) == "<nested too deeply to show>"
    assert excerpt({"v": 1.5}) == '{"v": 1.5}'


def test_a_time_without_an_offset_is_utc_on_a_machine_in_another_zone(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The services send UTC; a time written without an offset is UTC too, whatever zone
    the machine running alertd is set to."""
    import time

    from alertd.sources.common import parse_time

    monkeypatch.setenv("TZ", "Asia/Kolkata")  # UTC+5:30, no daylight saving
    time.tzset()
    try:
        assert parse_time("2026-12-01T10:00:00") == parse_time("2026-12-01T10:00:00Z") \
            == 1796119200.0
    finally:
        monkeypatch.undo()
        time.tzset()
