"""The web page in a real headless browser (Chromium from Debian; .ci/run installs it): log
in with the token, add a silence through the form, and see the firing alert marked
silenced. The browser is driven over the DevTools protocol (a WebSocket, trio-websocket);
the page itself has no JavaScript: the test fills the forms and submits them as a person
would."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import trio
import trio_websocket

from alertd.simulator.element import FakeElement
from alertd.simulator.navixy import FakeNavixy
from tests.test_daemon import config_file, daemon
from tests.test_web import TOKEN


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "Chromium is needed: apt-get install -y chromium (.ci/run does)"
    return found


class Page:
    """One browser tab over the DevTools protocol."""

    def __init__(self, ws: trio_websocket.WebSocketConnection) -> None:
        self.ws, self.ids = ws, itertools.count(1)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        number = next(self.ids)
        await self.ws.send_message(json.dumps({"id": number, "method": method,
                                               "params": params}))
        while True:
            message = json.loads(await self.ws.get_message())
            if message.get("id") == number:
                assert "error" not in message, message
                return dict(message.get("result", {}))

    async def loaded(self, action: str, **params: Any) -> None:
        """Do ``action`` and wait for the page it leads to to have loaded."""
        number = next(self.ids)
        await self.ws.send_message(json.dumps({"id": number, "method": action,
                                               "params": params}))
        while True:
            message = json.loads(await self.ws.get_message())
            if message.get("method") == "Page.loadEventFired":
                return

    async def run(self, script: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=script, returnByValue=True)
        return result["result"].get("value")


def _length(data: bytes) -> int:
    for line in data.partition(b"\r\n\r\n")[0].split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


async def open_page(profile: Path, nursery: trio.Nursery) -> tuple[Page, trio.Process]:
    process = await trio.lowlevel.open_process(
        [chromium(), "--headless=new", "--no-sandbox", "--disable-gpu",
         "--no-first-run", "--remote-debugging-port=0", f"--user-data-dir={profile}",
         "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port_file = profile / "DevToolsActivePort"
    with trio.fail_after(30):
        while not port_file.exists() or len(port_file.read_text().splitlines()) < 2:
            await trio.sleep(0.1)
    port = int(port_file.read_text().splitlines()[0])
    with trio.fail_after(30):
        while True:
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            async with stream:
                await stream.send_all(f"GET /json/list HTTP/1.1\r\nHost: 127.0.0.1:{port}"
                                      "\r\n\r\n".encode())
                data = b""
                while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < \
                        _length(data):  # the browser keeps the connection open
                    data += await stream.receive_some(65536)
            targets = json.loads(data.partition(b"\r\n\r\n")[2] or b"[]")
            pages = [t for t in targets if t.get("type") == "page"]
            if pages:
                break
            await trio.sleep(0.1)
    ws = await trio_websocket.connect_websocket_url(nursery, pages[0]["webSocketDebuggerUrl"],
                                                    max_message_size=64 * 1024 * 1024)
    page = Page(ws)
    await page.call("Page.enable")
    return page, process


async def test_a_silence_added_in_the_browser_marks_the_firing_alert_silenced(
        tmp_path: Path, fakes: tuple[FakeElement, FakeNavixy]) -> None:
    element, navixy = fakes
    path = config_file(tmp_path, element.url, navixy.url, [21080, 21085], """\
        - {name: blocked, source: fleet, status: {in: [blocked]}}
        """)
    path.write_text(f"http: {{listen: 127.0.0.1:0, token: {TOKEN}}}\n" + path.read_text())
    async with daemon(path) as d, trio.open_nursery() as nursery:
        await d.wait_for(lambda: bool(d.lines("[FIRING] blocked")), 30)
        site = f"http://127.0.0.1:{d.runtime.http_port}/"
        page, browser = await open_page(tmp_path / "profile", nursery)
        try:
            with trio.fail_after(60):
                await page.loaded("Page.navigate", url=site)
                row = await page.run("document.querySelector('#alerts').innerText")
                assert "fleet/21085" in row and "silenced by" not in row
                await page.run("document.querySelector('#login [name=token]').value = "
                               f"'{TOKEN}'")
                await page.loaded("Runtime.evaluate",
                                  expression="document.querySelector('#login').submit()")
                assert await page.run("document.querySelector('#message').innerText") == \
                    "logged in"
                await page.run("document.querySelector('#add [name=entity]').value = "
                               "'fleet/21085'; document.querySelector('#add [name=duration]')"
                               ".value = '30m'; document.querySelector('#add [name=comment]')"
                               ".value = 'tyre change'")
                await page.loaded("Runtime.evaluate",
                                  expression="document.querySelector('#add').submit()")
                row = await page.run("document.querySelector('#alerts tr.firing').innerText")
                silences = await page.run("document.querySelector('#silences').innerText")
                stored = d.runtime.store.silences()
        finally:
            browser.kill()
            with trio.move_on_after(10):
                await browser.wait()
            nursery.cancel_scope.cancel()
    [silence] = stored
    assert f"silenced by {silence.id}" in row
    assert "entity=fleet/21085" in silences and "tyre change" in silences
    assert silence.match == {"entity": "fleet/21085"} and silence.ends - silence.starts == 1800
