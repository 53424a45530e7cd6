"""What both fakes share: running their own tasks, and sending without caring whether the
client is still there (a test may drop it at any moment)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import trio
import trio_websocket


class FakeServer:
    _nursery: trio.Nursery | None = None

    def _spawn(self, function: Callable[..., Any], *args: Any) -> None:
        assert self._nursery is not None, "serve() the fake first"
        self._nursery.start_soon(function, *args)

    def _send_to(self, ws: trio_websocket.WebSocketConnection, text: str) -> None:
        async def send() -> None:
            try:
                await ws.send_message(text)
            except trio_websocket.ConnectionClosed:
                pass
        self._spawn(send)
