"""The live ELEMENT IoT client: one WebSocket per ``subscribe`` entry (SPEC section 4.1).

Each socket runs ``run_socket`` forever: connect with ``auth=``, ``preload=`` and ``after=``
(the newest ``inserted_at`` evaluated on that socket, from the state store), hand every frame's
events to the engine loop, ping every ``ping_interval`` and give the connection up when a pong
is 2 intervals late, then reconnect with backoff. Frames are decoded by the pure
``ElementDecoder`` (``element.py``), which also skips items already seen after a replay.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING
from urllib.parse import quote

import trio
import trio_websocket

from alertd.config import schema as s
from alertd.errors import CredentialsRejected
from alertd.model import Batch, Message
from alertd.sources.common import parse_time
from alertd.sources.connection import ElementConnection
from alertd.sources.element import ElementDecoder, read_cursor
from alertd.sources.reconnect import (
    Connectivity,
    Standing,
    already_received,
    open_socket,
    run_forever,
)
from alertd.sources.stats import SourceStats
from alertd.sources.websocket import WebSocket

if TYPE_CHECKING:
    from alertd.record import Recorder

log = logging.getLogger("alertd.sources.element")
REPLAY_QUIET = 0.05  # a replay's frames are gathered until none comes for this long
REPLAY_FRAMES = 1024  # ... or this many frames are gathered


def is_mandate(path: str) -> bool:
    """A mandate-wide socket (``readings``, ``packets``): read_only or admin keys only."""
    return path.strip("/") in ("readings", "packets")


def rejected(path: str, status: int | None) -> str:
    """Why a socket's key was refused, in words that say what to change."""
    if is_mandate(path) and status != 401:
        return (f"the API key may not open the mandate-wide socket '{path}'"
                + (f" (HTTP {status})" if status else "")
                + ": it needs a key with read_only or admin permission; a key with group "
                "permissions can open devices/, tags/ and streams/ sockets only")
    return f"the API key was rejected (HTTP {status})" if status else \
        "the API key was rejected"


FUTURE_CURSOR = 300.0  # an inserted_at further ahead of its receipt is not a replay position


def cursor_text(cursor: str | None) -> str | None:
    """The ``after=`` time of a saved replay position (a JSON cursor or a bare time)."""
    return read_cursor(cursor)[0]


def cursor_time(cursor: str | None) -> float | None:
    return parse_time(cursor_text(cursor))


def socket_url(source: s.ElementSource, path: str, after: str | None) -> str:
    """``{url}/{path}/socket?auth=KEY`` plus ``preload=`` and ``after=``, URL-encoded."""
    query = f"auth={quote(source.api_key, safe='')}"
    preload = source.preload if path.endswith("readings") else \
        tuple(p for p in source.preload if p in s.ELEMENT_PRELOADS["packets"])
    if preload:
        query += "&preload=" + quote(",".join(preload), safe=",")
    if after and source.replay:
        query += "&after=" + quote(after, safe="")
    return f"{source.url}/{path}/socket?{query}"


async def run_source(source: s.ElementSource, send: trio.MemorySendChannel[Batch],
                     cursors: dict[str, str | None], stats: SourceStats,
                     now: Callable[[], float] | None = None,
                     recorder: Recorder | None = None) -> None:
    """Every socket of one ELEMENT source, each reconnecting on its own. ``now`` (the
    daemon's clock) bounds the replay positions adopted to ``FUTURE_CURSOR`` ahead;
    ``recorder`` gets every frame received (``alertd run --record``)."""
    connectivity = Connectivity(source.name)
    async with trio.open_nursery() as nursery:
        for path in source.subscribe:
            nursery.start_soon(run_socket, source, path, send, cursors.get(path),
                               connectivity, stats, now, recorder)


async def run_socket(source: s.ElementSource, path: str, send: trio.MemorySendChannel[Batch],
                     after: str | None, connectivity: Connectivity, stats: SourceStats,
                     now: Callable[[], float] | None = None,
                     recorder: Recorder | None = None) -> None:
    decoder = ElementDecoder(source.name, after=after)
    if recorder is not None:
        recorder.start(source.name, path, after=after)
    if now is not None:
        decoder.latest = lambda: now() + FUTURE_CURSOR
    label = f"source '{source.name}' socket {path}"
    connection = ElementConnection()
    standing = Standing(label, log, send, connectivity, stats, connection, path, partial(
        recorder.connection, source.name, path) if recorder else None)

    async def session(connection: ElementConnection) -> None:
        url = socket_url(source, path, decoder.newest_inserted_at)
        async with open_socket(url, partial(_refused, path)) as ws:
            connection.opened(trio.current_time())
            try:
                await _read(ws, source, path, decoder, send, stats, connection, standing,
                            recorder)
            finally:
                await standing.down()

    await run_forever(label, session, log, connection)


def _refused(path: str, status: int | None) -> str | None:
    """A handshake refused with 401 or 403: the key (see ``rejected``); others: retry."""
    return rejected(path, status) if status in (401, 403) else None


async def _read(ws: WebSocket, source: s.ElementSource, path: str,
                decoder: ElementDecoder, send: trio.MemorySendChannel[Batch],
                stats: SourceStats, connection: ElementConnection, standing: Standing,
                recorder: Recorder | None = None) -> None:
    """Read frames until the socket ends. A frame proves the socket, and so does staying
    open (the connection's proving deadline); one closed while still proving, with a
    refusal's close code, means the key was refused."""
    replaying = source.replay and decoder.newest_inserted_at is not None  # after= was sent
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_keep_alive, ws, source.ping_interval)
        nursery.start_soon(standing.prove_by_waiting)
        try:
            while True:
                taken = [await ws.get_message(), *already_received(ws)]
                await standing.proven(trio.current_time())
                events: list[Message] = []
                for frame in taken:
                    events.extend(_decode(frame, decoder, source, path, stats))
                closed: trio_websocket.ConnectionClosed | None = None
                count = len(taken)
                gathered = list(taken) if recorder is not None else []
                while replaying and count < REPLAY_FRAMES:
                    # the replay after= asked for comes first, at once: its frames list items
                    # in insertion order, and a reading measured earlier may come in a later
                    # frame. Gathered until the replay pauses, they are evaluated together in
                    # measurement order, so a late one cannot be outrun by a newer one that
                    # fires an alert it breaks.
                    more: list[str | bytes] = []
                    try:
                        with trio.move_on_after(REPLAY_QUIET):
                            more = [await ws.get_message(), *already_received(ws)]
                    except trio_websocket.ConnectionClosed as error:
                        closed = error  # hand on what was gathered first
                    if not more:
                        replaying = False  # the replay is over: live frames from here on
                        break
                    count += len(more)
                    gathered += more
                    for frame in more:
                        events.extend(_decode(frame, decoder, source, path, stats))
                if recorder is not None:
                    recorder.frames(source.name, path, gathered)
                if events:
                    if count > 1:
                        events.sort(key=lambda e: e.msg_time)
                    stats.messages(source.name, len(events))
                    await send.send(Batch(source.name, tuple(events), path,
                                          decoder.cursor, trio.current_time()))
                if closed is not None:
                    raise closed
        except trio_websocket.ConnectionClosed as closed:
            code = getattr(closed.reason, "code", None)
            if connection.closed_as_refusal(code):
                if is_mandate(path):
                    raise CredentialsRejected(
                        f"the connection was closed right after the handshake (code {code}); "
                        + rejected(path, None)) from None
                raise CredentialsRejected(f"the connection was closed right after the "
                                          f"handshake (code {code}: is the API key valid?)"
                                          ) from None
            raise  # 1006 (dropped), 1009 (frame too big), 1011...: transient


def _decode(frame: str | bytes, decoder: ElementDecoder, source: s.ElementSource, path: str,
            stats: SourceStats) -> list[Message]:
    decoded = decoder.decode(frame)
    if decoded.problems:
        stats.bad_frames(source.name, len(decoded.problems))
        for problem in decoded.problems:
            log.warning("source '%s' socket %s: skipped bad input: %s", source.name, path,
                        problem)
    return [e for e in decoded.events if isinstance(e, Message)]


async def _keep_alive(ws: WebSocket, interval: float) -> None:
    """A WebSocket ping every interval; a pong 2 intervals late means the socket is dead."""
    while True:
        await trio.sleep(interval)
        with trio.fail_after(2 * interval):
            await ws.ping()
