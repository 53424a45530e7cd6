"""`/healthz` answers 503 once a source has been down longer than its rules tolerate (the
smallest `source_down.after` on it, else 60 s), naming it; reason phrases are proper."""

from __future__ import annotations

import json
from pathlib import Path

import trio

from alertd.metrics import HEALTH_DOWN_DEFAULT, down_tolerances, health_json
from alertd.simulator.element import FakeElement
from alertd.simulator.navixy import FakeNavixy
from tests.test_daemon import config_file, daemon


def test_tolerance_is_the_smallest_source_down_after_else_the_default() -> None:
    rules = [(("fleet",), 300.0), (None, 120.0), (("fleet",), 30.0)]
    assert down_tolerances(["cold", "fleet", "spare"], rules) == {
        "cold": 120.0, "fleet": 30.0, "spare": 120.0}
    assert down_tolerances(["cold"], []) == {"cold": 60.0} and HEALTH_DOWN_DEFAULT == 60.0


def test_health_is_503_naming_the_sources_down_too_long() -> None:
    tolerances = {"cold": 60.0, "fleet": 30.0}
    assert health_json({"cold": None, "fleet": 1000.0}, tolerances, 1029.0) == (
        200, json.dumps({"status": "ok", "sources": {"cold": True, "fleet": False}}) + "\n")
    status, body = health_json({"cold": 900.0, "fleet": 1000.0}, tolerances, 1030.0)
    assert status == 503
    assert json.loads(body) == {
        "status": "down", "sources": {"cold": False, "fleet": False},
        "down": {"cold": {"down_for": 130.0, "tolerated": 60.0},
                 "fleet": {"down_for": 30.0, "tolerated": 30.0}}}


async def head(port: int, path: str) -> tuple[str, dict[str, object]]:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        data = b""
        while chunk := await stream.receive_some(65536):
            data += chunk
    head, _, body = data.decode().partition("\r\n\r\n")
    return head.splitlines()[0], json.loads(body)


async def test_healthz_turns_503_when_every_source_is_down_too_long(
        tmp_path: Path, autojump_clock: trio.abc.Clock,
        fakes: tuple[FakeElement, FakeNavixy]) -> None:
    element, _ = fakes
    path = config_file(tmp_path, element.url, "ws://127.0.0.1:9/never", [21080], """\
        - name: fleet-down
          source: fleet
          source_down: {after: 2m}
        """)  # fleet's server never answers: it is down from the start
    path.write_text("http: 127.0.0.1:0\n" + path.read_text())
    async with daemon(path) as d:
        engine = d.runtime.engine
        assert engine is not None
        await d.wait_for(lambda: engine.sources_up() == {"cold": True, "fleet": False})
        port = d.runtime.http_port
        assert port
        # fleet is down, but not yet for as long as its rule tolerates (2 minutes)
        assert await head(port, "/healthz") == (
            "HTTP/1.1 200 OK", {"status": "ok", "sources": {"cold": True, "fleet": False}})
        element.pause()  # now cold goes down too, and stays down
        element.drop_all()
        await d.wait_for(lambda: not any(engine.sources_up().values()))
        await trio.sleep(HEALTH_DOWN_DEFAULT + 1)  # cold has no source_down rule: 60 s
        line, body = await head(port, "/healthz")
        assert line == "HTTP/1.1 503 Service Unavailable"
        assert body["status"] == "down" and list(body["down"]) == ["cold"]  # type: ignore
        await trio.sleep(120)
        line, body = await head(port, "/healthz")
        assert line == "HTTP/1.1 503 Service Unavailable"
        assert list(body["down"]) == ["cold", "fleet"]  # type: ignore
