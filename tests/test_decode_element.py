"""ElementDecoder against recorded ELEMENT frames: what the rules will see, what is skipped.

The frames in ``tests/frames/`` are the seed page's reading envelope, a LoRaWAN packet with
driver meta and a preloaded device, and a replay of three readings in one frame.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alertd.model import Message
from alertd.sources.common import Decoded
from alertd.sources.element import SEEN_IDS, ElementDecoder
from tests.budget import examples

FRAMES = Path(__file__).resolve().parent / "frames"
SEED_DEVICE = "43b5dca3-e7d9-4028-9309-c26ac0c08721"


def frame(name: str) -> str:
    return (FRAMES / name).read_text()


def messages(decoded: Decoded) -> list[Message]:
    assert all(isinstance(event, Message) for event in decoded.events)
    return [event for event in decoded.events if isinstance(event, Message)]


def reading(item_id: str, inserted_at: str, data: Any = None) -> dict[str, Any]:
    """A minimal reading envelope of device d1, measured at 2026-01-01T00:00:00Z."""
    body = {"id": item_id, "device_id": "d1", "measured_at": "2026-01-01T00:00:00Z",
            "inserted_at": inserted_at, "data": {"t": 1} if data is None else data}
    return {"event": "reading_added", "body": body}


# ---- readings and packets --------------------------------------------------------------------


def test_the_seed_reading_becomes_one_message() -> None:
    decoder = ElementDecoder("cold")
    decoded = decoder.decode(frame("element_reading.json"))
    assert decoded.problems == () and decoded.notices == ()
    assert decoded.events == (Message(
        source="cold", entity=SEED_DEVICE,
        msg_time=1501665064.910127,  # measured_at 2017-08-02T09:11:04.910127Z
        fields={"temperature": 21.5, "humidity": 40},
        srv_time=1501665064.918087,  # inserted_at 2017-08-02T09:11:04.918087Z
        entity_name=None, absent_is_null=True),)
    assert decoder.newest_inserted_at == "2017-08-02T09:11:04.918087Z"


def test_bytes_frames_decode_like_text() -> None:
    text = frame("element_reading.json")
    decoded = ElementDecoder("cold").decode(text.encode())
    assert decoded.problems == () and decoded.events == (Message(
        "cold", SEED_DEVICE, 1501665064.910127, {"temperature": 21.5, "humidity": 40},
        1501665064.918087, None, absent_is_null=True),)


def test_a_single_envelope_object_is_accepted() -> None:
    envelope = json.loads(frame("element_reading.json"))[0]
    (message,) = messages(ElementDecoder("cold").decode(json.dumps(envelope)))
    assert message.entity == SEED_DEVICE and message.fields == {"temperature": 21.5,
                                                                "humidity": 40}


def test_a_lorawan_packet_keeps_its_scalars_and_flattens_meta() -> None:
    decoder = ElementDecoder("cold")
    (packet,) = messages(decoder.decode(frame("element_packet.json")))
    assert packet.entity == "8a1d0f" and packet.entity_name == "Blast freezer"
    assert packet.msg_time == 1767261600.25  # transceived_at 2026-01-01T10:00:00.250000Z
    assert packet.srv_time == 1767261601.0  # inserted_at 2026-01-01T10:00:01.000000Z
    assert packet.fields == {
        "interface_id": "if-lorawan-1", "packet_type": "up", "payload": "0167010a",
        "payload_encoding": "binary", "meta.frame_port": 2, "meta.frame_count_up": 1017,
        "meta.rssi": -117, "meta.snr": -6.5, "meta.gateways": [{"id": "gw1", "rssi": -117}],
        "device.id": "8a1d0f", "device.name": "Blast freezer"}  # the preloaded device too
    assert not {"id", "device_id", "transceived_at", "inserted_at", "device"} & set(packet.fields)
    assert decoder.newest_inserted_at == "2026-01-01T10:00:01.000000Z"


def test_a_packet_without_meta_has_no_meta_fields() -> None:
    envelope = json.loads(frame("element_packet.json"))[0]
    envelope["body"]["meta"] = None
    del envelope["body"]["device"]
    (packet,) = messages(ElementDecoder("cold").decode(json.dumps([envelope])))
    assert packet.entity_name is None
    assert packet.fields == {"interface_id": "if-lorawan-1", "packet_type": "up",
                             "payload": "0167010a", "payload_encoding": "binary"}


def test_a_replay_frame_gives_every_reading_in_order_with_flattened_keys() -> None:
    decoder = ElementDecoder("cold")
    decoded = decoder.decode(frame("element_replay.json"))
    assert decoded.problems == ()
    first, second, third = messages(decoded)
    assert [m.msg_time for m in (first, second, third)] == [
        1767261600.125, 1767261900.125, 1767262200.0]
    assert [m.srv_time for m in (first, second, third)] == [
        1767261600.5, 1767261900.75, 1767262201.000001]
    assert {m.entity for m in (first, second, third)} == {"8a1d0f"}
    assert {m.entity_name for m in (first, second, third)} == {"Cold room 2"}
    device = {"device.id": "8a1d0f", "device.name": "Cold room 2", "device.slug": "cold-room-2"}
    assert first.fields == {"temperature": 6.5, "battery.voltage": 3.61, "battery.low": False,
                            **device}
    assert second.fields == {"temperature": 7.25, "battery.voltage": 3.6, "battery.low": False,
                             "probe.ids": [1, 2], "probe.state.door": "closed", **device,
                             "location.type": "Point", "location.coordinates": [9.99, 53.55],
                             "location.lon": 9.99, "location.lat": 53.55, "meta.port": 2}
    assert all(m.absent_is_null for m in (first, second, third))
    assert decoder.newest_inserted_at == "2026-01-01T10:10:01.000001Z"


def test_pong_is_not_an_event() -> None:
    decoder = ElementDecoder("cold")
    assert decoder.decode("pong") == Decoded((), ())
    assert decoder.decode(b"pong") == Decoded((), ())
    assert decoder.decode("[]") == Decoded((), ())


# ---- nothing twice, and the replay position ------------------------------------------------


def test_an_overlapping_replay_is_not_evaluated_twice() -> None:
    decoder = ElementDecoder("cold")
    replay = json.loads(frame("element_replay.json"))
    assert len(decoder.decode(json.dumps(replay[:2])).events) == 2
    # after= is the newest inserted_at: if the bound is inclusive, the boundary comes again
    again = decoder.decode(json.dumps(replay[1:]))
    assert [m.msg_time for m in messages(again)] == [1767262200.0]
    assert again.problems == ()
    assert decoder.decode(frame("element_replay.json")) == Decoded((), ())
    assert decoder.newest_inserted_at == "2026-01-01T10:10:01.000001Z"


def test_seen_ids_are_bounded_and_cover_the_newest() -> None:
    decoder = ElementDecoder("cold")
    items = [reading(f"r{i}", "2026-01-01T00:00:00Z") for i in range(SEEN_IDS + 1)]
    assert len(decoder.decode(json.dumps(items)).events) == SEEN_IDS + 1
    assert decoder.decode(json.dumps(items[1:])).events == ()  # the newest 10,000: remembered
    assert len(decoder.decode(json.dumps(items[:1])).events) == 1  # the oldest: forgotten


def test_newest_inserted_at_is_the_latest_time_not_the_last_string() -> None:
    decoder = ElementDecoder("cold")
    decoder.decode(json.dumps([reading("a", "2026-01-01T10:00:02Z"),
                               reading("b", "2026-01-01T10:00:01.999999Z"),
                               reading("c", "2026-01-01T11:00:01+02:00")]))  # 09:00:01Z
    assert decoder.newest_inserted_at == "2026-01-01T10:00:02Z"


def test_the_replay_position_starts_at_after() -> None:
    decoder = ElementDecoder("cold", after="2026-01-01T10:00:00Z")
    assert decoder.newest_inserted_at == "2026-01-01T10:00:00Z"
    decoder.decode(json.dumps([reading("old", "2026-01-01T09:59:59.999Z")]))
    assert decoder.newest_inserted_at == "2026-01-01T10:00:00Z"
    decoder.decode(json.dumps([reading("new", "2026-01-01T10:00:00.000001Z")]))
    assert decoder.newest_inserted_at == "2026-01-01T10:00:00.000001Z"


# ---- bad input: described, skipped, never raised ---------------------------------------------


@pytest.mark.parametrize(("envelope", "reason"), [
    ("junk", "envelope"),
    (42, "envelope"),
    ({"event": "device_updated", "body": {}}, "device_updated"),
    ({"body": {"device_id": "d1"}}, "unknown event"),
    ({"event": "reading_added"}, "body"),
    ({"event": "reading_added", "body": [1, 2]}, "body"),
    ({"event": "reading_added", "body": {"id": "x", "measured_at": "2026-01-01T00:00:00Z",
                                         "data": {"t": 1}}}, "device_id"),
    ({"event": "reading_added", "body": {"id": "x", "device_id": "d1", "data": {"t": 1}}},
     "measured_at"),
    (reading("x", "2026-01-01T00:00:00Z", data=[1, 2]), "data"),
    (reading("x", "2026-01-01T00:00:00Z", data="21.5"), "data"),
])
def test_a_bad_envelope_is_a_problem_and_its_neighbours_still_decode(
        envelope: Any, reason: str) -> None:
    good = json.loads(frame("element_reading.json"))[0]
    decoded = ElementDecoder("cold").decode(json.dumps([envelope, good]))
    assert [m.entity for m in messages(decoded)] == [SEED_DEVICE]
    (problem,) = decoded.problems
    assert reason in problem
    assert json.dumps(envelope)[:30] in problem  # the excerpt shows what was skipped


@pytest.mark.parametrize("text", ["{not json", "pong pong", "", "\x00", "[1,", "NaNa"])
def test_a_frame_that_is_not_json_is_one_problem(text: str) -> None:
    decoded = ElementDecoder("cold").decode(text)
    assert decoded.events == () and len(decoded.problems) == 1
    assert "JSON" in decoded.problems[0]


def test_bytes_that_are_not_utf8_are_a_problem() -> None:
    decoded = ElementDecoder("cold").decode(b"\xff\xfe[{}]")
    assert decoded.events == () and len(decoded.problems) == 1


@pytest.mark.parametrize("text", ["42", "null", '"reading_added"', "{}", "[[], {}]"])
def test_json_of_another_shape_is_a_problem(text: str) -> None:
    decoded = ElementDecoder("cold").decode(text)
    assert decoded.events == () and decoded.problems


def test_excerpts_are_cut_to_200_characters() -> None:
    (problem,) = ElementDecoder("cold").decode("x" * 5000).problems
    assert "x" * 200 in problem and "x" * 201 not in problem
    (problem,) = ElementDecoder("cold").decode(
        json.dumps([{"event": "reading_added", "body": {"id": "x" * 5000}}])).problems
    assert "x" * 201 not in problem


def test_a_problem_quotes_no_more_than_200_characters_of_the_frame() -> None:
    (problem,) = ElementDecoder("cold").decode(json.dumps([{"event": "y" * 5000}])).problems
    assert "y" * 201 not in problem


@pytest.mark.parametrize("times", [{"measured_at": "yesterday"},
                                   {"inserted_at": "2026-13-45T00:00:00Z"},
                                   {"measured_at": 1767225600}])
def test_an_unparseable_timestamp_is_a_problem(times: dict[str, Any]) -> None:
    bad = reading("x", "2026-01-01T00:00:00Z")
    bad["body"].update(times)
    good = json.loads(frame("element_reading.json"))[0]
    decoded = ElementDecoder("cold").decode(json.dumps([bad, good]))
    assert [m.entity for m in messages(decoded)] == [SEED_DEVICE]
    assert len(decoded.problems) == 1


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000,
                                  json.dumps([reading("x", "2026-01-01T00:00:00Z")])
                                  .replace('{"t": 1}', '{"a": ' * 990 + "1" + "}" * 990)])
def test_deeply_nested_json_is_a_problem_not_a_crash(text: str) -> None:
    decoded = ElementDecoder("cold").decode(text)
    assert decoded.events == () and len(decoded.problems) == 1


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
    | st.sampled_from(["2026-01-01T00:00:00Z", "2017-08-02T09:11:04.910127Z", "reading_added",
                       "packet_added", "pong"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["event", "body", "id", "device_id", "measured_at", "inserted_at",
                         "transceived_at", "data", "meta", "device", "name", "packet_type"]),
        inner, max_size=6),
    max_leaves=40)


@settings(max_examples=examples(400), deadline=None)
@given(st.one_of(st.text(), st.binary(), JSON_VALUES.map(json.dumps),
                 JSON_VALUES.map(lambda value: json.dumps(value).encode())))
def test_no_frame_makes_the_decoder_raise(data: str | bytes) -> None:
    decoded = ElementDecoder("cold").decode(data)
    assert all(isinstance(event, Message) for event in decoded.events)
    assert all(isinstance(problem, str) for problem in decoded.problems)


# ---- what an operator reads and what rules see, exactly (found by mutation testing) ---------


def with_body(**changes: Any) -> str:
    envelope = reading("x", "2026-01-01T00:00:01Z")
    envelope["body"].update(changes)
    return json.dumps([envelope])


def test_location_preloads_and_meta_become_fields() -> None:
    (message,) = messages(ElementDecoder("cold").decode(with_body(
        location={"type": "Point", "coordinates": [9.99, 53.55, 12.5]},
        meta={"rssi": -90}, packet={"id": "p1"}, interface={"name": "lora"},
        device={"name": "Cold room"})))
    assert message.fields == {
        "t": 1, "meta.rssi": -90, "packet.id": "p1", "interface.name": "lora",
        "device.name": "Cold room", "location.type": "Point",
        "location.coordinates": [9.99, 53.55, 12.5], "location.lon": 9.99,
        "location.lat": 53.55, "location.alt": 12.5}
    (flat,) = messages(ElementDecoder("cold").decode(with_body(
        location={"type": "Point", "coordinates": [9.99, 53.55]})))
    assert (flat.fields["location.lon"], flat.fields["location.lat"]) == (9.99, 53.55)
    assert "location.alt" not in flat.fields


@pytest.mark.parametrize("location", [
    {"type": "Point", "coordinates": [1, 2, 3, 4]}, {"type": "Point", "coordinates": ["1", "2"]},
    {"type": "Point", "coordinates": [True, False]}, {"type": "Point", "coordinates": None},
    {"type": "Point", "coordinates": "12"}, {"type": "LineString", "coordinates": [1, 2]},
    {"type": "Point", "coordinates": [1]}])
def test_a_location_that_is_no_point_of_numbers_gives_no_lon_and_lat(
        location: dict[str, Any]) -> None:
    (message,) = messages(ElementDecoder("cold").decode(with_body(location=location)))
    assert not {"location.lon", "location.lat", "location.alt"} & set(message.fields)
    assert message.fields["location.type"] == location["type"]


def test_a_reading_without_measured_at_is_measured_when_inserted() -> None:
    envelope = reading("x", "2026-01-01T00:00:01Z")
    del envelope["body"]["measured_at"]
    (message,) = messages(ElementDecoder("cold").decode(json.dumps([envelope])))
    assert message.msg_time == message.srv_time == 1767225601.0


@pytest.mark.parametrize(("changes", "problem"), [
    ({"device_id": ""}, "body without device_id"),
    ({"device_id": 7}, "body without device_id"),
    ({"inserted_at": "later"}, "inserted_at is not an ISO 8601 time"),
    ({"measured_at": "soon"}, "measured_at is not an ISO 8601 time"),
    ({"data": [1]}, "reading whose data is not an object"),
])
def test_each_problem_of_a_body_is_named_exactly(changes: dict[str, Any], problem: str) -> None:
    (found,) = ElementDecoder("cold").decode(with_body(**changes)).problems
    assert found.split(": ", 1)[0] == problem


def test_an_event_without_a_body_and_an_unknown_event_are_named_exactly() -> None:
    kind = "k" * 60
    problems = ElementDecoder("cold").decode(json.dumps([
        {"event": "reading_added"}, {"event": kind, "body": {}}])).problems
    assert [p.split(": ", 1)[0] for p in problems] == [
        "event without a body", "unknown event '" + "k" * 39 + "...",]


def test_readings_inserted_at_the_same_time_in_two_frames_are_all_in_the_cursor() -> None:
    # a restart resumes with after= that time, which sends both again: both are skipped
    decoder = ElementDecoder("cold")
    for item_id in ("a", "b"):
        frame_of_one = json.dumps([reading(item_id, "2026-01-01T00:00:05Z")])
        assert len(messages(decoder.decode(frame_of_one))) == 1
    assert json.loads(decoder.cursor or "") == {"after": "2026-01-01T00:00:05Z",
                                                "ids": ["a", "b"]}
    again = ElementDecoder("cold", decoder.cursor)
    replay = [reading(i, "2026-01-01T00:00:05Z") for i in ("a", "b", "c")]
    assert [m.fields for m in messages(again.decode(json.dumps(replay)))] == [{"t": 1}]


def test_an_id_with_a_lone_surrogate_still_gives_a_position_that_resumes_past_it() -> None:
    """JSON may escape half of a UTF-16 pair ("\\ud800"); such an id is still an id: its
    reading is evaluated once, and the position saved (which orjson cannot write) skips it
    in the replay after a restart."""
    decoder = ElementDecoder("cold")
    odd = "a\ud800b"
    frame = json.dumps([reading(odd, "2026-01-01T00:00:05Z")])
    assert len(messages(decoder.decode(frame))) == 1
    assert json.loads(decoder.cursor or "") == {"after": "2026-01-01T00:00:05Z", "ids": [odd]}
    again = ElementDecoder("cold", decoder.cursor)
    assert messages(again.decode(frame)) == []


def test_a_saved_position_without_ids_still_resumes_there() -> None:
    decoder = ElementDecoder("cold", '{"after": "2026-01-01T00:00:05Z"}')
    assert decoder.newest_inserted_at == "2026-01-01T00:00:05Z"


def test_two_readings_of_a_frame_are_handed_on_in_measurement_order() -> None:
    first, second = reading("a", "2026-01-01T00:00:05Z"), reading("b", "2026-01-01T00:00:06Z")
    first["body"]["measured_at"] = "2026-01-01T00:00:02Z"
    assert [m.msg_time for m in messages(ElementDecoder("cold").decode(
        json.dumps([first, second])))] == [1767225600.0, 1767225602.0]


def test_the_position_may_reach_exactly_the_latest_allowed_time() -> None:
    decoder = ElementDecoder("cold")
    decoder.latest = lambda: 1767225605.0
    decoder.decode(json.dumps([reading("a", "2026-01-01T00:00:05Z")]))
    assert decoder.newest_inserted_at == "2026-01-01T00:00:05Z"
    decoder.decode(json.dumps([reading("b", "2026-01-01T00:00:06Z")]))  # beyond: not kept
    assert decoder.newest_inserted_at == "2026-01-01T00:00:05Z"


@pytest.mark.parametrize("device", ["Cold room", None, {"name": 5}, {"id": "d1"}])
def test_a_device_that_is_no_object_with_a_text_name_names_nothing(device: Any) -> None:
    (message,) = messages(ElementDecoder("cold").decode(with_body(device=device)))
    assert message.entity_name is None


def test_undecodable_and_too_deep_frames_are_named_with_what_was_sent() -> None:
    (problem,) = ElementDecoder("cold").decode(b"\xff\xfe[{}]").problems
    assert problem.startswith("frame is not UTF-8 text: ") and "[{}]" in problem
    deep = json.dumps([reading("x", "2026-01-01T00:00:00Z")]).replace(
        '{"t": 1}', '{"a": ' * 990 + "1" + "}" * 990)
    (problem,) = ElementDecoder("cold").decode(deep).problems
    assert problem.startswith("envelope nested too deeply: ")
