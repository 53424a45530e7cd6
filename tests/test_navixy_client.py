"""The Navixy client hands the frames it has already received on as one batch, and a frame
that ends the session (a logout, a rejected hash) first hands on what came before it and
leaves what came after it undecoded, so that nothing is marked seen that was never
evaluated."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
import trio

from alertd.errors import CredentialsRejected
from alertd.model import Batch, Message
from alertd.sources import navixy_client
from alertd.sources.navixy import NavixyDecoder
from alertd.sources.stats import SourceStats

SOURCE: Any = SimpleNamespace(name="fleet", trackers=[7])
T0 = 1767254400.0  # 2026-01-01T08:00:00Z


def event(*seconds: int) -> str:
    """Tracker 7's window: speed at each of ``seconds`` past 08:00:00."""
    queue = [{"msg_time": f"2026-01-01T08:00:{s:02}Z", "srv_time": f"2026-01-01T08:00:{s:02}Z",
              "value": 50 + s} for s in seconds]
    item = {"tracker_id": 7, "all_fields": {"speed": queue}, "nonnull_fields": {"speed": queue}}
    return json.dumps({"type": "event", "event": "iot_monitor",
                       "data": {"iot_last_values": [item]}})


def messages(batch: Batch) -> list[tuple[float, dict[str, Any]]]:
    return [(e.msg_time, dict(e.fields)) for e in batch.events if isinstance(e, Message)]


async def test_frames_received_together_are_one_batch() -> None:
    decoder = NavixyDecoder("fleet")
    send, receive = trio.open_memory_channel[Batch](10)
    frames = [event(0), event(0, 1), event(0, 1, 2)]
    await navixy_client._handle((decoder.decode(f) for f in frames), decoder, SOURCE, send,
                                SourceStats())
    (batch,) = [receive.receive_nowait()]
    assert messages(batch) == [(T0, {"speed": 50}), (T0 + 1, {"speed": 51}),
                               (T0 + 2, {"speed": 52})]
    assert [p.socket for p in batch.positions] == ["tracker/7"]
    with pytest.raises(trio.WouldBlock):
        receive.receive_nowait()


@pytest.mark.parametrize(("ending", "said"), [
    ('{"type": "event", "event": "logout", "data": "session expired"}', "ended the session"),
    ('{"type": "error", "status": {"code": 4, "description": "User not found"}}',
     "rejected the hash"),
])
async def test_a_frame_ending_the_session_hands_on_what_came_before_and_decodes_no_further(
        ending: str, said: str) -> None:
    decoder = NavixyDecoder("fleet")
    send, receive = trio.open_memory_channel[Batch](10)
    frames = [event(0), ending, event(0, 1)]
    with pytest.raises(CredentialsRejected, match=said):
        await navixy_client._handle((decoder.decode(f) for f in frames), decoder, SOURCE,
                                    send, SourceStats())
    batch = receive.receive_nowait()
    assert messages(batch) == [(T0, {"speed": 50})]
    assert json.loads(batch.positions[0].after) == {"speed": T0}  # not past what was sent
    # the frame after the end was not decoded: resent after the reconnect, 08:00:01 is new
    assert [e.msg_time for e in decoder.decode(frames[2]).events] == [T0 + 1]
