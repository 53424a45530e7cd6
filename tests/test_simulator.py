"""The fake ELEMENT and Navixy servers, probed with real client sockets.

alertd's end-to-end tests and ``alertd demo`` trust these fakes to behave as the protocol
pages say; these tests hold them to it. Every test runs on trio's ``autojump_clock``
(keep-alive minutes pass in milliseconds) under a ``fail_after`` bound.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest
import trio
import trio_websocket
from trio.testing import MockClock
from trio_websocket import WebSocketConnection, open_websocket_url

from alertd.simulator.element import FakeElement
from alertd.simulator.navixy import FakeNavixy
from alertd.simulator.windows import DEPTH, parse_rate_limit

KEY = "46cb688e2c0b468e26e914235d4b73ea"
HASH = "6c638c52cb40729d5e6181a48f868649"
ATMOSPHERE = (
    "?X-Atmosphere-tracking-id=0&X-Atmosphere-Framework=2.3.6-javascript"
    "&X-Atmosphere-Transport=websocket&Content-Type=application/json"
    "&X-atmo-protocol=true"
)
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class FixedClock:
    """Epoch seconds for the fakes' timestamps, moved by the test."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
async def element(nursery: trio.Nursery, clock: FixedClock) -> FakeElement:
    fake = FakeElement(
        api_keys={KEY},
        device_names={"dev1": "Cold room"},
        streams={"s1": {"dev1", "dev2"}},
        tags={"t1": {"dev2"}},
        clock=clock,
    )
    port = await nursery.start(fake.serve)
    assert port == fake.port and fake.url == f"ws://127.0.0.1:{port}/api/v1"
    return fake


@pytest.fixture
async def navixy(nursery: trio.Nursery, clock: FixedClock) -> FakeNavixy:
    fake = FakeNavixy(
        hashes={HASH}, trackers={21080: "normal", 21081: "normal", 21085: "blocked"}, clock=clock
    )
    port = await nursery.start(fake.serve)
    assert fake.url == f"ws://127.0.0.1:{port}/v2/event/subscription"
    return fake


async def receive_json(ws: WebSocketConnection) -> Any:
    return json.loads(await ws.get_message())


@asynccontextmanager
async def navixy_socket(navixy: FakeNavixy) -> AsyncIterator[WebSocketConnection]:
    """A Navixy client past the handshake frame, which it checks."""
    async with open_websocket_url(navixy.url + ATMOSPHERE) as ws:
        frame = await ws.get_message()
        assert isinstance(frame, str)
        uuid_part, interval, x, rest = frame.split("|")
        assert len(uuid_part) == 36 and interval == "25000" and (x, rest) == ("X", "")
        yield ws


async def subscribe(
    ws: WebSocketConnection,
    trackers: list[int],
    rate_limit: str = "5s",
    hash: str = HASH,
    **extra: Any,
) -> None:
    await ws.send_message(
        json.dumps(
            {
                "action": "subscribe",
                "hash": hash,
                "requests": [
                    {
                        "type": "iot_monitor",
                        "target": {"type": "selected", "tracker_ids": trackers},
                        "rate_limit": rate_limit,
                        **extra,
                    }
                ],
            }
        )
    )


# ---- ELEMENT ---------------------------------------------------------------------------


async def test_a_wrong_key_is_refused_with_401(
    autojump_clock: MockClock, element: FakeElement
) -> None:
    with trio.fail_after(10):
        with pytest.raises(trio_websocket.ConnectionRejected) as rejected:
            async with open_websocket_url(f"{element.url}/readings/socket?auth=nope"):
                pass  # pragma: no cover
    assert rejected.value.status_code == 401
    assert element.handshakes == 1 and element.connections == []


async def test_reject_mode_close_accepts_then_closes_with_4001(
    autojump_clock: MockClock, element: FakeElement
) -> None:
    element.reject_mode = "close"
    with trio.fail_after(10):
        async with open_websocket_url(f"{element.url}/readings/socket?auth=nope") as ws:
            with pytest.raises(trio_websocket.ConnectionClosed) as closed:
                await ws.get_message()
    assert closed.value.reason is not None and closed.value.reason.code == 4001


async def test_unknown_path_404_and_paused_503(
    autojump_clock: MockClock, element: FakeElement
) -> None:
    with trio.fail_after(10):
        with pytest.raises(trio_websocket.ConnectionRejected) as rejected:
            async with open_websocket_url(f"{element.url}/gadgets/x/readings/socket?auth={KEY}"):
                pass  # pragma: no cover
        assert rejected.value.status_code == 404
        element.pause()
        with pytest.raises(trio_websocket.ConnectionRejected) as rejected:
            async with open_websocket_url(f"{element.url}/readings/socket?auth={KEY}"):
                pass  # pragma: no cover
        assert rejected.value.status_code == 503
        element.resume()
        async with open_websocket_url(f"{element.url}/readings/socket?auth={KEY}"):
            assert len(element.connections) == 1
    assert element.handshakes == 3


async def test_readings_are_pushed_live_to_matching_sockets(
    autojump_clock: MockClock, element: FakeElement
) -> None:
    paths = {
        "device": "devices/dev1/readings",
        "stream": "streams/s1/readings",
        "tag": "tags/t1/readings",
        "mandate": "readings",
        "packets": "packets",
    }
    with trio.fail_after(10):
        async with (
            open_websocket_url(
                f"{element.url}/{paths['device']}/socket?auth={KEY}&preload=device"
            ) as device,
            open_websocket_url(f"{element.url}/{paths['stream']}/socket?auth={KEY}") as stream,
            open_websocket_url(f"{element.url}/{paths['tag']}/socket?auth={KEY}") as tag,
            open_websocket_url(f"{element.url}/{paths['mandate']}/socket?auth={KEY}") as mandate,
            open_websocket_url(f"{element.url}/{paths['packets']}/socket?auth={KEY}") as packets,
        ):
            assert sorted(c.path for c in element.connections) == sorted(
                f"/api/v1/{p}/socket" for p in paths.values()
            )
            assert element.connections[0].query["auth"] == KEY
            first = element.add_reading(
                "dev1",
                {"temperature": 21.5},
                measured_at=T0 - 1,
                location={"type": "Point", "coordinates": [9.9, 53.5]},
            )
            second = element.add_reading("dev2", {"temperature": 5})
            packet = element.add_packet("dev2", "0a0b", meta={"rssi": -90})

            [envelope] = await receive_json(device)
            assert envelope["event"] == "reading_added"
            body = envelope["body"]
            assert body["device"] == {"id": "dev1", "name": "Cold room"}
            del body["device"]
            assert body == first
            assert set(body) == {
                "id",
                "device_id",
                "packet_id",
                "parser_id",
                "measured_at",
                "inserted_at",
                "location",
                "meta",
                "data",
            }
            assert body["inserted_at"] == "2026-01-01T00:00:00.000000Z"
            assert body["measured_at"] == "2025-12-31T23:59:59.000000Z"
            assert [e["body"]["id"] for e in await receive_json(stream)] == [first["id"]]
            assert [e["body"]["id"] for e in await receive_json(stream)] == [second["id"]]
            assert [e["body"]["id"] for e in await receive_json(tag)] == [second["id"]]
            assert [e["body"]["id"] for e in await receive_json(mandate)] == [first["id"]]
            assert [e["body"]["id"] for e in await receive_json(mandate)] == [second["id"]]
            [envelope] = await receive_json(packets)
            assert envelope == {"event": "packet_added", "body": packet}
            assert set(packet) == {
                "id",
                "device_id",
                "interface_id",
                "packet_type",
                "payload",
                "payload_encoding",
                "meta",
                "transceived_at",
                "inserted_at",
            }
            with trio.move_on_after(1) as quiet:  # the device socket got nothing of dev2
                await device.get_message()
            assert quiet.cancelled_caught


async def test_replay_after_is_inclusive_in_order_and_one_frame(
    autojump_clock: MockClock, element: FakeElement, clock: FixedClock
) -> None:
    for n in range(4):
        clock.now = T0 + 60 * n
        element.add_reading("dev1", {"n": n})
    element.add_reading("dev2", {"n": 99})  # another device: not replayed on dev1's socket
    bound = element.readings[1]["inserted_at"]
    url = f"{element.url}/devices/dev1/readings/socket?auth={KEY}&after={quote(bound)}"
    with trio.fail_after(10):
        async with open_websocket_url(url) as ws:
            assert element.connections[0].query["after"] == bound
            assert "%3A" in element.connections[0].raw_path  # still percent-encoded
            replay = await receive_json(ws)
            assert [e["body"]["data"]["n"] for e in replay] == [1, 2, 3]  # 1: inclusive
            live = element.add_reading("dev1", {"n": 4})
            assert [e["body"] for e in await receive_json(ws)] == [live]


async def test_replay_batch_one_sends_one_envelope_per_frame(
    autojump_clock: MockClock, element: FakeElement, clock: FixedClock
) -> None:
    element.replay_batch = 1
    for n in range(3):
        clock.now = T0 + n
        element.add_reading("dev1", {"n": n})
    with trio.fail_after(10):
        async with open_websocket_url(
            f"{element.url}/readings/socket?auth={KEY}&after=2025-12-31T23%3A00%3A00Z"
        ) as ws:
            frames = [await receive_json(ws) for _ in range(3)]
    assert [[e["body"]["data"]["n"] for e in frame] for frame in frames] == [[0], [1], [2]]


async def test_an_after_that_is_no_time_is_refused(
    autojump_clock: MockClock, element: FakeElement
) -> None:
    with trio.fail_after(10):
        with pytest.raises(trio_websocket.ConnectionRejected) as rejected:
            async with open_websocket_url(f"{element.url}/readings/socket?auth={KEY}&after=x"):
                pass  # pragma: no cover
    assert rejected.value.status_code == 400


async def test_text_ping_gets_pong(autojump_clock: MockClock, element: FakeElement) -> None:
    with trio.fail_after(10):
        async with open_websocket_url(f"{element.url}/readings/socket?auth={KEY}") as ws:
            await ws.send_message("ping")
            assert await ws.get_message() == "pong"


async def test_a_socket_without_pings_is_closed_after_60_s(
    autojump_clock: MockClock, element: FakeElement
) -> None:
    with trio.fail_after(120):
        async with open_websocket_url(f"{element.url}/readings/socket?auth={KEY}") as ws:
            start = trio.current_time()
            with pytest.raises(trio_websocket.ConnectionClosed) as closed:
                await ws.get_message()
            assert 60 <= trio.current_time() - start < 61
    assert closed.value.reason is not None and closed.value.reason.code == 1000
    await element.wait_until(lambda: not element.connections)


@pytest.mark.parametrize("kind", ["text", "frame"])
async def test_pings_of_either_kind_keep_a_socket_open(
    autojump_clock: MockClock, element: FakeElement, kind: str
) -> None:
    with trio.fail_after(600):
        async with open_websocket_url(f"{element.url}/readings/socket?auth={KEY}") as ws:
            start = trio.current_time()
            for _ in range(10):
                await trio.sleep(50)
                if kind == "text":
                    await ws.send_message("ping")
                    assert await ws.get_message() == "pong"
                else:
                    await ws.ping()
            assert len(element.connections) == 1
            with pytest.raises(trio_websocket.ConnectionClosed):
                await ws.get_message()
            assert 560 <= trio.current_time() - start < 561


async def test_drop_all_cuts_the_connection_and_send_raw_reaches_the_client(
    autojump_clock: MockClock, element: FakeElement
) -> None:
    with trio.fail_after(10):
        async with open_websocket_url(f"{element.url}/readings/socket?auth={KEY}") as ws:
            element.send_raw("not json")
            assert await ws.get_message() == "not json"
            element.drop_all()
            with pytest.raises(trio_websocket.ConnectionClosed) as closed:
                await ws.get_message()
    assert (
        closed.value.reason is not None and closed.value.reason.code == 1006
    )  # abrupt: no close frame
    await element.wait_until(lambda: not element.connections)


# ---- Navixy ------------------------------------------------------------------------------


async def test_handshake_then_heartbeats_and_query_recorded(
    autojump_clock: MockClock, navixy: FakeNavixy
) -> None:
    with trio.fail_after(120):
        async with navixy_socket(navixy) as ws:
            start = trio.current_time()
            assert await ws.get_message() == "X"
            assert trio.current_time() - start == pytest.approx(25)
            [connection] = navixy.connections
            assert connection.query["X-Atmosphere-Transport"] == "websocket"
            assert connection.query["X-atmo-protocol"] == "true"


async def test_missing_atmosphere_parameters_are_refused(
    autojump_clock: MockClock, navixy: FakeNavixy
) -> None:
    with trio.fail_after(10):
        with pytest.raises(trio_websocket.ConnectionRejected) as rejected:
            async with open_websocket_url(navixy.url):
                pass  # pragma: no cover
    assert rejected.value.status_code == 400


async def test_a_silent_client_is_closed_after_3_heartbeats(
    autojump_clock: MockClock, navixy: FakeNavixy
) -> None:
    with trio.fail_after(400):
        async with navixy_socket(navixy) as ws:
            start = trio.current_time()
            with pytest.raises(trio_websocket.ConnectionClosed):
                while True:
                    assert await ws.get_message() == "X"
            assert 75 <= trio.current_time() - start < 76
        async with navixy_socket(navixy) as ws:  # a client sending X stays
            for _ in range(8):
                assert await ws.get_message() == "X"
                await ws.send_message("X")
            assert len(navixy.connections) == 1


async def test_subscribe_response_then_windows_at_once(
    autojump_clock: MockClock, navixy: FakeNavixy, clock: FixedClock
) -> None:
    navixy.add_message(21080, {"speed": 40, "latitude": "5.9646583"})
    navixy.add_message(21085, {"speed": 1})  # blocked: never sent
    with trio.fail_after(10):
        async with navixy_socket(navixy) as ws:
            await subscribe(ws, [21080, 21081, 21085, 99999], flow_id=1335)
            assert await receive_json(ws) == {
                "type": "response",
                "action": "subscription/subscribe",
                "events": ["iot_monitor"],
                "data": {
                    "iot_monitor": {
                        "value": {
                            "21080": "normal",
                            "21081": "normal",
                            "21085": "blocked",
                            "99999": "unknown",
                        }
                    }
                },
            }
            event = await receive_json(ws)
    assert event["type"] == "event" and event["event"] == "iot_monitor"
    [item] = event["data"]["iot_last_values"]
    entry = {"msg_time": "2026-01-01T00:00:00Z", "srv_time": "2026-01-01T00:00:00Z"}
    assert item == {
        "tracker_id": 21080,
        "nonnull_fields": {
            "speed": [{**entry, "value": 40}],
            "latitude": [{**entry, "value": "5.9646583"}],
        },
        "all_fields": {
            "speed": [{**entry, "value": 40}],
            "latitude": [{**entry, "value": "5.9646583"}],
        },
    }
    assert navixy.subscribe_actions[0]["requests"][0]["flow_id"] == 1335


async def test_include_success_and_later_status_changes(
    autojump_clock: MockClock, navixy: FakeNavixy
) -> None:
    navixy.include_success = True
    navixy.set_status(21081, "disallowed")
    with trio.fail_after(10):
        async with navixy_socket(navixy) as ws:
            await subscribe(ws, [21081])
            response = await receive_json(ws)
    assert response["data"]["iot_monitor"] == {"value": {"21081": "disallowed"}, "success": True}


@pytest.mark.parametrize(
    ("action", "code"),
    [
        ({"hash": "0" * 32}, 3),
        ({"trackers": list(range(1, 12))}, 7),
        ({"rate_limit": "soon"}, 7),
    ],
)
async def test_refused_subscriptions(
    autojump_clock: MockClock, navixy: FakeNavixy, action: dict[str, Any], code: int
) -> None:
    with trio.fail_after(10):
        async with navixy_socket(navixy) as ws:
            await subscribe(
                ws,
                action.get("trackers", [21080]),
                rate_limit=action.get("rate_limit", "5s"),
                hash=action.get("hash", HASH),
            )
            error = await receive_json(ws)
    assert error["type"] == "error" and error["action"] == "subscription/subscribe"
    assert error["status"]["code"] == code and error["data"] == {}
    if code == 3:
        assert error["status"] == {"code": 3, "description": "Wrong hash"}
    assert len(navixy.subscribe_actions) == 1


async def test_changes_are_rate_limited_and_coalesced(
    autojump_clock: MockClock, navixy: FakeNavixy, clock: FixedClock
) -> None:
    navixy.add_message(21080, {"speed": 10})
    with trio.fail_after(60):
        async with navixy_socket(navixy) as ws:
            await subscribe(ws, [21080, 21081], rate_limit="5s")
            await receive_json(ws)  # response
            await receive_json(ws)  # the windows at once
            subscribed = trio.current_time()
            await trio.sleep(1)
            for speed in (11, 12, 13):
                clock.now += 1
                navixy.add_message(21080, {"speed": speed})
                navixy.add_message(21081, {"speed": speed * 2})
            event = await receive_json(ws)
            first = trio.current_time()
            # 21080 waited out its 5 s; 21081 had no window yet, so it went at once.
            [item] = event["data"]["iot_last_values"]
            assert item["tracker_id"] == 21081 and first - subscribed == pytest.approx(1)
            assert [e["value"] for e in item["all_fields"]["speed"]] == [26, 24, 22]
            event = await receive_json(ws)
            assert trio.current_time() - subscribed == pytest.approx(5)
            [item] = event["data"]["iot_last_values"]
            assert item["tracker_id"] == 21080
            assert [e["value"] for e in item["all_fields"]["speed"]] == [13, 12, 11, 10]


async def test_nulls_go_to_all_fields_only_and_queues_keep_12(
    autojump_clock: MockClock, navixy: FakeNavixy, clock: FixedClock
) -> None:
    for n in range(DEPTH + 3):
        clock.now = T0 + n
        navixy.add_message(21080, {"lls_level_1": None if n % 2 else f"{n}.5", "speed": n})
    clock.now = T0 + 100
    navixy.add_message(21080, {"heading": 7})  # lacks speed and lls_level_1
    with trio.fail_after(10):
        async with navixy_socket(navixy) as ws:
            await subscribe(ws, [21080])
            await receive_json(ws)
            [item] = (await receive_json(ws))["data"]["iot_last_values"]
    all_fields, nonnull = item["all_fields"], item["nonnull_fields"]
    assert [e["value"] for e in all_fields["speed"]] == [None, *range(14, 3, -1)]
    assert [e["value"] for e in all_fields["lls_level_1"]][:4] == [None, "14.5", None, "12.5"]
    assert all(
        len(queue) == DEPTH
        for queue in [all_fields["speed"], nonnull["speed"], all_fields["lls_level_1"]]
    )
    assert [e["value"] for e in nonnull["lls_level_1"]] == [f"{n}.5" for n in range(14, -1, -2)]
    assert nonnull["speed"][0]["msg_time"] == "2026-01-01T00:00:14Z"
    assert all_fields["speed"][0]["msg_time"] == "2026-01-01T00:01:40Z"
    assert (
        all_fields["heading"]
        == nonnull["heading"]
        == [{"msg_time": "2026-01-01T00:01:40Z", "srv_time": "2026-01-01T00:01:40Z", "value": 7}]
    )


async def test_unblocking_sends_the_windows_and_lifecycle_logout_frames(
    autojump_clock: MockClock, navixy: FakeNavixy
) -> None:
    navixy.add_message(21085, {"speed": 3})
    with trio.fail_after(10):
        async with navixy_socket(navixy) as ws:
            await subscribe(ws, [21085])
            assert (await receive_json(ws))["data"]["iot_monitor"]["value"] == {"21085": "blocked"}
            navixy.send_lifecycle(123456, "unblock")
            assert await receive_json(ws) == {
                "type": "event",
                "event": "lifecycle",
                "data": {"source_id": 123456, "lifecycle_event": "unblock"},
            }
            navixy.set_status(21085, "normal")
            [item] = (await receive_json(ws))["data"]["iot_last_values"]
            assert item["tracker_id"] == 21085
            navixy.send_logout()
            assert await receive_json(ws) == {
                "type": "event",
                "event": "logout",
                "data": "session closed",
            }
            navixy.drop_all()
            with pytest.raises(trio_websocket.ConnectionClosed):
                await ws.get_message()


def test_rate_limits_parse() -> None:
    assert [parse_rate_limit(t) for t in ("5s", "500ms", "1m", "1h", None)] == [5, 0.5, 60, 3600, 0]
    for bad in ("5", "fast", 5, "-1s"):
        with pytest.raises(ValueError):
            parse_rate_limit(bad)


def test_element_timestamps_have_microseconds_and_z() -> None:
    fake = FakeElement(clock=lambda: T0 + 0.25)
    body = fake.add_reading("d", {})
    assert body["inserted_at"] == "2026-01-01T00:00:00.250000Z"
    assert datetime.fromisoformat(body["inserted_at"]) == datetime.fromtimestamp(T0 + 0.25, UTC)
