"""`http: HOST:PORT`: /metrics in Prometheus' text format, /healthz and /alerts, served by
the running daemon (real loopback fakes, autojump clock)."""

from __future__ import annotations

import json

import trio

from alertd.simulator.element import FakeElement
from alertd.simulator.navixy import FakeNavixy
from tests.test_daemon import config_file, daemon


async def get(port: int, path: str, method: str = "GET") -> tuple[int, str]:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        data = b""
        while chunk := await stream.receive_some(65536):
            data += chunk
    head, _, body = data.decode().partition("\r\n\r\n")
    return int(head.split()[1]), body


async def test_metrics_health_and_alerts(tmp_path, autojump_clock,  # type: ignore[no-untyped-def]
                                         fakes: tuple[FakeElement, FakeNavixy]) -> None:
    element, navixy = fakes
    path = config_file(tmp_path, element.url, navixy.url, [21080, 21085], """\
        - name: warm
          source: cold
          threshold: {field: temperature, above: 8}
        - name: blocked
          source: fleet
          status: {in: [blocked]}
        """)
    path.write_text("http: 127.0.0.1:0\n" + path.read_text())
    async with daemon(path) as d:
        await d.wait_for(lambda: bool(d.lines("[FIRING] blocked")))
        element.add_reading("room1", {"temperature": 9.5})
        element.send_raw("this is not json")
        await d.wait_for(lambda: bool(d.lines("[FIRING] warm")))
        port = d.runtime.http_port
        assert port
        status, metrics = await get(port, "/metrics")
        _, health = await get(port, "/healthz")
        _, alerts = await get(port, "/alerts")
        missing, _ = await get(port, "/nothing")
        post, _ = await get(port, "/metrics", "POST")
    assert status == 200
    lines = metrics.splitlines()
    assert 'alertd_messages_total{source="cold"} 1' in lines
    assert 'alertd_bad_frames_total{source="cold"} 1' in lines
    assert 'alertd_open_sockets{source="cold"} 1' in lines
    assert 'alertd_source_up{source="fleet"} 1' in lines
    assert 'alertd_alerts{rule="warm",state="firing"} 1' in lines
    assert 'alertd_alerts{rule="blocked",state="firing"} 1' in lines
    assert "# TYPE alertd_event_dispatch_seconds histogram" in lines
    count = next(line for line in lines if line.startswith("alertd_event_dispatch_seconds_count"))
    assert int(count.split()[1]) >= 2  # the reading's frame and Navixy's
    assert json.loads(health) == {"status": "ok", "sources": {"cold": True, "fleet": True}}
    assert {(a["rule"], a["entity"], a["state"]) for a in json.loads(alerts)["alerts"]} == {
        ("warm", "cold/room1", "firing"), ("blocked", "fleet/21085", "firing")}
    assert (missing, post) == (404, 405)
