"""The web page at `/` over HTTP (a real daemon, real sockets): alerts, silences added and
expired through the forms with the token, reads limited to loopback, /alerts in the schema
of `alertd alerts --json`, /explain. The headless-browser test is tests/test_web_browser.py."""

from __future__ import annotations

import json
from pathlib import Path

import trio

from alertd.config import schema as s
from alertd.http_server import Request
from alertd.simulator.element import FakeElement
from alertd.simulator.navixy import FakeNavixy
from alertd.web import AlertRow, PageView, access_guard, render_page
from tests.test_daemon import config_file, daemon

TOKEN = "web-t0ken-0123456789abcdef"


async def http(port: int, method: str, path: str, body: str = "",
               cookie: str = "") -> tuple[int, dict[str, str], str]:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    head = f"{method} {path} HTTP/1.1\r\nHost: x\r\n"
    if cookie:
        head += f"Cookie: {cookie}\r\n"
    if method == "POST":
        head += ("Content-Type: application/x-www-form-urlencoded\r\n"
                 f"Content-Length: {len(body.encode())}\r\n")
    async with stream:
        await stream.send_all((head + "\r\n" + body).encode())
        data = b""
        while chunk := await stream.receive_some(65536):
            data += chunk
    top, _, text = data.decode().partition("\r\n\r\n")
    lines = top.split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, text


async def test_the_page_lists_alerts_and_adds_and_expires_silences_with_the_token(
        tmp_path: Path, fakes: tuple[FakeElement, FakeNavixy]) -> None:
    element, navixy = fakes
    path = config_file(tmp_path, element.url, navixy.url, [21080, 21085], """\
        - {name: blocked, source: fleet, status: {in: [blocked]}, labels: {team: road}}
        """)
    path.write_text(f"http: {{listen: 127.0.0.1:0, token: {TOKEN}}}\n" + path.read_text())
    async with daemon(path) as d:
        await d.wait_for(lambda: bool(d.lines("[FIRING] blocked")), 30)
        port = d.runtime.http_port
        assert port
        status, _, page = await http(port, "GET", "/")
        assert status == 200 and "fleet/21085" in page and "silenced by" not in page
        assert "<script" not in page and "id=login" in page and "id=add" not in page
        refused, _, _ = await http(port, "POST", "/silences", "entity=fleet/21085&duration=1h")
        wrong, headers, _ = await http(port, "POST", "/login", "token=nope")
        assert (refused, wrong, headers["location"]) == (403, 303, "/?message=wrong+token")
        status, headers, _ = await http(port, "POST", "/login", f"token={TOKEN}")
        cookie = headers["set-cookie"].split(";")[0]
        assert status == 303 and "HttpOnly" in headers["set-cookie"] \
            and "SameSite=Strict" in headers["set-cookie"]
        status, headers, _ = await http(port, "POST", "/silences",
                                        "entity=fleet%2F21085&duration=2h&comment=repair",
                                        cookie)
        assert status == 303 and "added" in headers["location"]
        _, _, page = await http(port, "GET", "/?state=firing", cookie=cookie)
        silence_id = d.runtime.store.silences()[0].id
        assert f"silenced by {silence_id}" in page and "repair" in page
        assert f"/silences/{silence_id}/expire" in page
        _, _, alerts = await http(port, "GET", "/alerts")
        found = json.loads(alerts)
        assert found["daemon"] == "running" and found["alerts"] == [{
            "rule": "blocked", "entity": "fleet/21085", "state": "firing",
            "since": found["alerts"][0]["since"], "silenced": silence_id,
            "severity": "warning", "labels": {"team": "road"}}]
        status, _, _ = await http(port, "POST", f"/silences/{silence_id}/expire",
                                  f"token={TOKEN}")
        assert status == 303 and d.runtime.store.silences(now=d.runtime.clock.now()) == []
        _, _, filtered = await http(port, "GET", "/?rule=nothing-like-it")
        assert "id=no-alerts" in filtered
        status, _, explained = await http(port, "GET", "/explain?entity=fleet/21085")
        rule = json.loads(explained)["rules"][0]
        assert status == 200 and (rule["rule"], rule["state"], rule["value"]) == \
            ("blocked", "firing", "blocked")


def test_reads_from_other_hosts_and_writes_without_a_token_are_refused() -> None:
    closed = access_guard(s.HttpAccess(TOKEN, open_reads=False))
    remote = Request("GET", "/", peer="192.0.2.7")
    assert closed(remote) is not None and closed(remote)[0] == 403  # type: ignore[index]
    assert closed(Request("GET", "/metrics", peer="192.0.2.7")) is None
    assert closed(Request("GET", "/", peer="127.0.0.1")) is None
    assert closed(Request("GET", "/", peer="::1")) is None
    assert access_guard(s.HttpAccess(TOKEN, open_reads=True))(remote) is None
    no_token = access_guard(s.HttpAccess())
    write = Request("POST", "/silences", form={"token": ""}, peer="127.0.0.1")
    assert no_token(write)[0] == 403  # type: ignore[index]
    assert closed(Request("POST", "/silences", cookies={"alertd_token": TOKEN},
                          peer="192.0.2.7")) is None


def test_the_page_escapes_what_devices_named() -> None:
    view = PageView(0.0, (AlertRow("r", "cold/<script>x</script>", "firing", 0.0, "warning",
                                   None),), (), frozenset(), {"cold": False}, {}, False, True)
    page = render_page(view)
    assert "<script>" not in page and "&lt;script&gt;" in page and "cold: DOWN" in page
