"""The live Navixy client: the ``iot_monitor`` subscription over Atmosphere (SPEC 4.2).

One socket per source. After the Atmosphere handshake (``<uuid>|<ms>|X|``) alertd sends ``X``
every ``<ms>``, subscribes (one action, at most 10 trackers per request), repeats the
subscribe action every ``status_refresh`` to refresh tracker statuses, and treats a socket
that stays silent for 3 heartbeat intervals as dead. A ``lifecycle`` event (a tracker blocked
or unblocked) refreshes the statuses at once; a refused subscription is retried with backoff
(5 s doubling to 5 minutes). A wrong hash (error codes 3 and 4) or a ``logout`` event
is reported once and retried every 5 minutes. Frames are decoded by the pure
``NavixyDecoder`` (``navixy.py``), which also drops the values the server resends and
says how far each tracker's queues have been evaluated (saved in the state store).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

import trio

from alertd.config import schema as s
from alertd.errors import CredentialsRejected
from alertd.model import Batch, Event, Message, Position, StatusChanged
from alertd.sources.common import Decoded
from alertd.sources.connection import SUBSCRIBE_RETRY_FIRST, NavixyConnection
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
    Connectivity,
    Standing,
    already_received,
    clamp_heartbeat,
    open_socket,
    run_forever,
)
from alertd.sources.stats import SourceStats
from alertd.sources.websocket import WebSocket

if TYPE_CHECKING:
    from alertd.record import Recorder

log = logging.getLogger("alertd.sources.navixy")
DEFAULT_HEARTBEAT = 25.0  # seconds, as seen in real traffic, when no handshake says otherwise
HANDSHAKE_WAIT = 10.0
REFRESH_SPACING = 1.0  # lifecycle events in a burst are one status refresh
POSITION_PREFIX = "tracker/"  # state-store key of a tracker's queue positions
SUBSCRIPTION = "iot_monitor"  # what recordings name the socket of a Navixy source


class _Resubscribe:
    """When the subscribe action must be sent again before the next periodic refresh: at
    once after a lifecycle event, after the connection's backoff after a refusal."""

    def __init__(self, connection: NavixyConnection) -> None:
        self.send, self.receive = trio.open_memory_channel[float](16)
        self.connection = connection

    def soon(self, delay: float) -> None:
        try:
            self.send.send_nowait(delay)
        except trio.WouldBlock:
            pass  # one is already waiting: the action goes out anyway

    def refused(self) -> float:
        delay = self.connection.subscription_refused()
        self.soon(delay)
        return delay


def positions_of(saved: dict[str, str]) -> dict[str, dict[str, float]]:
    """Saved state-store positions (``tracker/ID`` -> JSON) as the decoder takes them."""
    out: dict[str, dict[str, float]] = {}
    for key, text in saved.items():
        if not key.startswith(POSITION_PREFIX):
            continue
        try:
            found = json.loads(text)
            out[key.removeprefix(POSITION_PREFIX)] = {str(a): float(v)
                                                      for a, v in found.items()}
        except (ValueError, TypeError, AttributeError):
            continue  # an unreadable position: that tracker's window is evaluated again
    return out


async def run_source(source: s.NavixySource, send: trio.MemorySendChannel[Batch],
                     stats: SourceStats, positions: dict[str, str] | None = None,
                     recorder: Recorder | None = None) -> None:
    """``positions``: what the state store holds for this source (``positions_of``);
    ``recorder`` gets every frame received (``alertd run --record``)."""
    connectivity = Connectivity(source.name)
    label = f"source '{source.name}'"
    # outlives sessions: it knows what was evaluated
    decoder = NavixyDecoder(source.name, positions_of(positions or {}))
    if recorder is not None:
        recorder.start(source.name, SUBSCRIPTION, positions=positions_of(positions or {}))

    connection = NavixyConnection()
    standing = Standing(label, log, send, connectivity, stats, connection, recorded=(
        lambda up: recorder.connection(source.name, SUBSCRIPTION, up)) if recorder else None)

    async def session(connection: NavixyConnection) -> None:
        async with open_socket(with_atmosphere_params(source.url)) as ws:
            connection.opened(trio.current_time())
            heartbeat = await _handshake(ws, decoder, source, send, stats, recorder)
            resubscribe = _Resubscribe(connection)
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(_heartbeats, ws, heartbeat)
                    nursery.start_soon(_subscribe, ws, source, resubscribe)
                    await _read(ws, decoder, source, send, stats, heartbeat, standing,
                                resubscribe, recorder)
                    nursery.cancel_scope.cancel()
            finally:
                await standing.down()

    await run_forever(label, session, log, connection)


async def _handshake(ws: WebSocket, decoder: NavixyDecoder,
                     source: s.NavixySource, send: trio.MemorySendChannel[Batch],
                     stats: SourceStats, recorder: Recorder | None = None) -> float:
    """Wait for the Atmosphere handshake; return the heartbeat interval in seconds."""
    with trio.move_on_after(HANDSHAKE_WAIT):
        frame = await ws.get_message()
        if recorder is not None:
            recorder.frames(source.name, SUBSCRIPTION, (frame,))
        decoded = decoder.decode(frame)
        for notice in decoded.notices:
            if isinstance(notice, Handshake) and notice.interval_ms > 0:
                return clamp_heartbeat(notice.interval_ms / 1000)
        await _handle([decoded], decoder, source, send, stats)  # not a handshake: use it
    log.info("source '%s': no Atmosphere handshake; sending heartbeats every %.0f s",
             source.name, DEFAULT_HEARTBEAT)
    return DEFAULT_HEARTBEAT


async def _heartbeats(ws: WebSocket, interval: float) -> None:
    while True:
        await trio.sleep(interval)
        await ws.send_message("X")


async def _subscribe(ws: WebSocket, source: s.NavixySource,
                     resubscribe: _Resubscribe) -> None:
    """Subscribe now and again every status_refresh (the response refreshes statuses), or
    sooner when asked (a lifecycle event, a refusal's retry). Requests that come in while
    waiting are one action."""
    frame = subscribe_action(source.hash, source.trackers, source.rate_limit, source.flow_id)
    while True:
        await ws.send_message(frame)
        delay = 0.0
        with trio.move_on_after(source.status_refresh):
            delay = max(REFRESH_SPACING, await resubscribe.receive.receive())
        await trio.sleep(delay)
        while True:  # what was asked meanwhile is answered by the action about to go out
            try:
                resubscribe.receive.receive_nowait()
            except trio.WouldBlock:
                break


async def _read(ws: WebSocket, decoder: NavixyDecoder,
                source: s.NavixySource, send: trio.MemorySendChannel[Batch],
                stats: SourceStats, heartbeat: float, standing: Standing,
                resubscribe: _Resubscribe, recorder: Recorder | None = None) -> None:
    while True:
        with trio.move_on_after(3 * heartbeat) as silent:
            frame = await ws.get_message()
        if silent.cancelled_caught:
            raise trio.TooSlowError
        frames = [frame, *already_received(ws)]  # one batch, one engine pass, under a flood
        try:  # decoded one at a time: a frame that ends the session leaves the rest undecoded
            await _handle((decoder.decode(frame) for frame in frames), decoder, source, send,
                          stats, resubscribe, standing)
        finally:
            if recorder is not None:  # after the confirmation, as the engine sees them
                recorder.frames(source.name, SUBSCRIPTION, frames)


async def _handle(decoded: Iterable[Decoded], decoder: NavixyDecoder,
                  source: s.NavixySource, send: trio.MemorySendChannel[Batch],
                  stats: SourceStats, resubscribe: _Resubscribe | None = None,
                  standing: Standing | None = None) -> None:
    """The frames' problems and notices, in order, then their events as one batch; a notice
    that ends the session hands on the events before it first. A tracker's status or data
    proves the subscription (``standing``)."""
    events: list[Event] = []
    for each in decoded:
        if standing is not None and StatusChanged in map(type, each.events):
            await standing.proven(trio.current_time())
            standing = None  # once per batch
        if each.problems or each.notices:
            try:
                _notices(each, source, stats, resubscribe)
            except CredentialsRejected:
                await _send(events, decoder, source, send, stats)
                raise
        events.extend(each.events)
    await _send(events, decoder, source, send, stats)


def _notices(decoded: Decoded, source: s.NavixySource, stats: SourceStats,
             resubscribe: _Resubscribe | None) -> None:
    """One frame's problems (logged, counted) and protocol notices; raises
    ``CredentialsRejected`` for a rejected hash or an ended session."""
    problems = decoded.problems
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
        if isinstance(notice, RequestFailed | SubscribeRejected):
            delay = resubscribe.refused() if resubscribe is not None else SUBSCRIBE_RETRY_FIRST
            if isinstance(notice, RequestFailed):
                log.error("source '%s': Navixy refused the subscription (error %d: %s); "
                          "retrying in %.0f s", source.name, notice.code, notice.description,
                          delay)
            else:
                refused = notice.trackers or tuple(str(t) for t in source.trackers)
                log.error("source '%s': subscription refused for trackers %s; retrying in "
                          "%.0f s", source.name, ", ".join(refused), delay)
        elif isinstance(notice, Lifecycle):
            log.info("source '%s': lifecycle event %s for source id %s; refreshing tracker "
                     "statuses", source.name, notice.event, notice.source_id)
            if resubscribe is not None:
                resubscribe.soon(0.0)


async def _send(events: list[Event], decoder: NavixyDecoder, source: s.NavixySource,
                send: trio.MemorySendChannel[Batch], stats: SourceStats) -> None:
    positions = decoder.take_positions()
    if events or positions:
        stats.messages(source.name, sum(1 for e in events if isinstance(e, Message)
                                        and not e.history_only))
        await send.send(Batch(source.name, tuple(events), received=trio.current_time(),
                              positions=tuple(Position(source.name, POSITION_PREFIX + tracker,
                                                       position)
                                              for tracker, position in positions.items())))
