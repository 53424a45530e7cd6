"""The live Navixy client: the ``iot_monitor`` subscription over Atmosphere (SPEC 4.2).

One socket per source. After the Atmosphere handshake (``<uuid>|<ms>|X|``) alertd sends ``X``
every ``<ms>``, subscribes (at most 10 trackers per request), repeats the subscribe action
every ``status_refresh`` to refresh tracker statuses, and treats a socket that stays silent
for 3 heartbeat intervals as dead. A wrong hash (error codes 3 and 4) or a ``logout`` event
is reported once and retried every 5 minutes. Frames are decoded by the pure
``NavixyDecoder`` (``navixy.py``), which also drops the values the server resends.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable

import trio
import trio_websocket

from alertd.config import schema as s
from alertd.errors import CredentialsRejected
from alertd.model import Batch, StatusChanged
from alertd.sources.common import Decoded
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
from alertd.sources.reconnect import (
    CONNECT_TIMEOUT,
    Connectivity,
    Session,
    clamp_heartbeat,
    run_forever,
)
from alertd.sources.stats import SourceStats

log = logging.getLogger("alertd.sources.navixy")
DEFAULT_HEARTBEAT = 25.0  # seconds, as seen in real traffic, when no handshake says otherwise
HANDSHAKE_WAIT = 10.0
MAX_MESSAGE = 16 * 1024 * 1024


async def run_source(source: s.NavixySource, send: trio.MemorySendChannel[Batch],
                     stats: SourceStats) -> None:
    connectivity = Connectivity(source.name)
    label = f"source '{source.name}'"
    decoder = NavixyDecoder(source.name)  # outlives sessions: it knows what was evaluated

    async def session(opened: Callable[[], None]) -> None:
        url = with_atmosphere_params(source.url)
        with trio.CancelScope(deadline=trio.current_time() + CONNECT_TIMEOUT) as connecting:
            async with trio_websocket.open_websocket_url(
                    url, connect_timeout=CONNECT_TIMEOUT, disconnect_timeout=5,
                    max_message_size=MAX_MESSAGE, message_queue_size=64,
                    receive_buffer_size=65536) as ws:
                connecting.deadline = math.inf
                heartbeat = await _handshake(ws, decoder, source, send, stats)
                session_state = Session(send, connectivity, stats, opened)
                try:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(_heartbeats, ws, heartbeat)
                        nursery.start_soon(_subscribe, ws, source)
                        await _read(ws, decoder, source, send, stats, heartbeat,
                                    session_state.confirm)
                        nursery.cancel_scope.cancel()
                finally:
                    await session_state.close()
        if connecting.cancelled_caught:
            raise trio.TooSlowError

    await run_forever(label, session, log)


async def _handshake(ws: trio_websocket.WebSocketConnection, decoder: NavixyDecoder,
                     source: s.NavixySource, send: trio.MemorySendChannel[Batch],
                     stats: SourceStats) -> float:
    """Wait for the Atmosphere handshake; return the heartbeat interval in seconds."""
    with trio.move_on_after(HANDSHAKE_WAIT):
        frame = await ws.get_message()
        decoded = decoder.decode(frame)
        for notice in decoded.notices:
            if isinstance(notice, Handshake) and notice.interval_ms > 0:
                return clamp_heartbeat(notice.interval_ms / 1000)
        await _handle(decoded, source, send, stats)  # not a handshake: use it anyway
    log.info("source '%s': no Atmosphere handshake; sending heartbeats every %.0f s",
             source.name, DEFAULT_HEARTBEAT)
    return DEFAULT_HEARTBEAT


async def _heartbeats(ws: trio_websocket.WebSocketConnection, interval: float) -> None:
    while True:
        await trio.sleep(interval)
        await ws.send_message("X")


async def _subscribe(ws: trio_websocket.WebSocketConnection, source: s.NavixySource) -> None:
    """Subscribe now and again every status_refresh (the response refreshes statuses)."""
    frames = subscribe_action(source.hash, source.trackers, source.rate_limit, source.flow_id)
    while True:
        for frame in frames:
            await ws.send_message(frame)
        await trio.sleep(source.status_refresh)


async def _read(ws: trio_websocket.WebSocketConnection, decoder: NavixyDecoder,
                source: s.NavixySource, send: trio.MemorySendChannel[Batch],
                stats: SourceStats, heartbeat: float,
                confirm: Callable[[], Awaitable[None]]) -> None:
    while True:
        with trio.move_on_after(3 * heartbeat) as silent:
            frame = await ws.get_message()
        if silent.cancelled_caught:
            raise trio.TooSlowError
        decoded = decoder.decode(frame)
        if any(isinstance(event, StatusChanged) for event in decoded.events):
            await confirm()
        await _handle(decoded, source, send, stats)


async def _handle(decoded: Decoded, source: s.NavixySource,
                  send: trio.MemorySendChannel[Batch], stats: SourceStats) -> None:
    problems, events = decoded.problems, decoded.events
    if problems:
        stats.bad_frames(source.name, len(problems))
        for problem in problems:
            log.warning("source '%s': skipped bad input: %s", source.name, problem)
    for notice in decoded.notices:
        if isinstance(notice, AuthFailed):
            raise CredentialsRejected(f"Navixy rejected the hash (error {notice.code}: "
                                      f"{notice.description})")
        if isinstance(notice, LoggedOut):
            raise CredentialsRejected(f"Navixy ended the session ({notice.reason})")
        if isinstance(notice, RequestFailed):
            log.error("source '%s': Navixy refused a request (error %d: %s)", source.name,
                      notice.code, notice.description)
        elif isinstance(notice, SubscribeRejected):
            log.error("source '%s': subscription refused for trackers %s", source.name,
                      ", ".join(notice.trackers))
        elif isinstance(notice, Lifecycle):
            log.info("source '%s': lifecycle event %s for source id %s", source.name,
                     notice.event, notice.source_id)
    if events:
        stats.messages(source.name, len(events))
        await send.send(Batch(source.name, tuple(events), received=trio.current_time()))
