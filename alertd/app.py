"""The daemon's wiring: the only nursery of alertd (STYLE.md convention 7).

    sources (one task per socket) --Batch--> engine loop --Notification--> delivery workers
                                              |  (one per channel)
                                              +-- state store: alerts, replay positions, history

The engine loop wakes on a batch or on the engine's next deadline, reads the clock once,
evaluates, persists what changed in one transaction, and hands notifications on. Channels are
bounded; each notify channel has its own worker, so a slow or failing channel never delays
evaluation or the other channels. SIGHUP loads the file again: an invalid file is logged and
the old one kept; a valid one restarts sources and engine, and alerts of rules that still
exist resume from the store.
"""

from __future__ import annotations

import logging
import math
import signal
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TextIO

import trio

from alertd.clock import Clock
from alertd.config import load_config
from alertd.config import schema as s
from alertd.engine import Engine
from alertd.errors import ConfigError
from alertd.logs import Redact, secrets_of
from alertd.model import Batch, Notification
from alertd.notify.message import compose
from alertd.senders.apprise_sender import CONSOLE_URL, AppriseSender
from alertd.sources import element_client, navixy_client
from alertd.sources.stats import SourceStats
from alertd.store import StoredAlert, Store

log = logging.getLogger("alertd")
BATCH_LIMIT = 512  # batches taken per wake-up: keeps one wake-up short under a flood
CHANNEL_QUEUE = 10_000


@dataclass
class Runtime:
    """What outlives one configuration: the store, the clock, counters, where to print."""

    store: Store
    clock: Clock
    out: TextIO = sys.stdout
    stats: SourceStats = field(default_factory=SourceStats)
    delivered: int = 0
    failed: int = 0


async def run(config: s.Config, store: Store, *, config_path: str | None = None,
              redact: Redact | None = None, out: TextIO = sys.stdout,
              task_status: trio.TaskStatus[Runtime] = trio.TASK_STATUS_IGNORED) -> None:
    """Run until cancelled (SIGINT/SIGTERM end it cleanly; SIGHUP reloads ``config_path``)."""
    runtime = Runtime(store, Clock(), out)
    if redact is not None:
        redact.update(secrets_of(config))
    reload_send, reload_receive = trio.open_memory_channel[None](1)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_signals, nursery.cancel_scope, reload_send)
        started = False
        while True:
            async with trio.open_nursery() as generation:
                await generation.start(_generation, config, runtime)
                if not started:
                    task_status.started(runtime)
                    started = True
                log.info("watching %d sources with %d rules", len(config.sources),
                         len(config.rules))
                while True:
                    await reload_receive.receive()
                    new = _reload(config_path, config, redact)
                    if new is not None:
                        config = new
                        generation.cancel_scope.cancel()
                        break


def _reload(path: str | None, old: s.Config, redact: Redact | None) -> s.Config | None:
    if path is None:
        return None
    try:
        new = load_config(path, state=str(old.state))
    except ConfigError as error:
        for problem in error.problems:
            log.error("reload: %s", problem)
        log.error("reload: the new file is invalid; keeping the running configuration")
        return None
    if redact is not None:
        redact.update([*redact.secrets, *secrets_of(new)])
    log.info("reload: %s loaded (%d rules)", path, len(new.rules))
    return new


async def _signals(scope: trio.CancelScope, reload: trio.MemorySendChannel[None]) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
        async for signum in signals:
            if signum == signal.SIGHUP:
                try:
                    reload.send_nowait(None)
                except trio.WouldBlock:
                    pass  # a reload is already waiting
            else:
                log.info("stopping (%s)", signal.Signals(signum).name)
                scope.cancel()


async def _generation(config: s.Config, runtime: Runtime,
                      task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    now = runtime.clock.now()
    engine = Engine(config.rules, config.sources, now, connected=False)
    resumed = engine.restore(((a.rule, a.entity, a.data)
                              for a in runtime.store.load_alerts()), now)
    if resumed:
        log.info("resumed %d alerts from %s", resumed, runtime.store.path)
    batches_send, batches_receive = trio.open_memory_channel[Batch](1024)
    notes_send, notes_receive = trio.open_memory_channel[Notification](CHANNEL_QUEUE)
    async with trio.open_nursery() as nursery:
        async with batches_send:
            for source in config.sources.values():
                if isinstance(source, s.ElementSource):
                    cursors = {path: runtime.store.load_cursor(source.name, path)
                               for path in source.subscribe}
                    nursery.start_soon(element_client.run_source, source, batches_send.clone(),
                                       cursors, runtime.stats)
                else:
                    nursery.start_soon(navixy_client.run_source, source, batches_send.clone(),
                                       runtime.stats)
        nursery.start_soon(_evaluate, engine, batches_receive, runtime, notes_send)
        nursery.start_soon(_deliver, config, notes_receive, runtime)
        task_status.started()


async def _evaluate(engine: Engine, batches: trio.MemoryReceiveChannel[Batch], runtime: Runtime,
                    notes: trio.MemorySendChannel[Notification]) -> None:
    clock, store = runtime.clock, runtime.store
    async with batches, notes:
        while True:
            deadline = engine.next_deadline()
            taken: list[Batch] = []
            with trio.move_on_at(math.inf if deadline is None else clock.trio_time(deadline)):
                try:
                    taken.append(await batches.receive())
                except trio.EndOfChannel:
                    return
                while len(taken) < BATCH_LIMIT:
                    try:
                        taken.append(batches.receive_nowait())
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
            now = clock.now()
            made: list[Notification] = []
            cursors: dict[tuple[str, str], str] = {}
            for batch in taken:
                for event in batch.events:
                    made.extend(engine.receive(event, now))
                if batch.cursor:
                    cursors[(batch.source, batch.socket)] = batch.cursor
            made.extend(engine.on_timer(now))
            changed = [StoredAlert(*item) for item in engine.take_changed()]
            if changed or cursors or made:
                store.commit(changed, cursors, [(n.at, n.rule, n.entity, n.state) for n in made],
                             now)
            for note in made:
                await notes.send(note)
            following = engine.next_deadline()
            if following is not None and following <= now and not taken and not made:
                log.error("engine: a timer did not advance at %.3f; pausing 1 s", following)
                await trio.sleep(1)  # never spin a core, even on a bug


async def _deliver(config: s.Config, notes: trio.MemoryReceiveChannel[Notification],
                   runtime: Runtime) -> None:
    """Route each notification to the workers of its rule's channels."""
    rules = {rule.name: rule for rule in config.rules}
    sender = AppriseSender()
    queues: dict[str, trio.MemorySendChannel[tuple[str, str, Notification]]] = {}
    async with trio.open_nursery() as nursery:
        for channel in config.channels.values():
            send, receive = trio.open_memory_channel[tuple[str, str, Notification]](
                CHANNEL_QUEUE)
            queues[channel.name] = send
            nursery.start_soon(_channel_worker, channel, receive, sender, runtime)
        async with notes:
            async for note in notes:
                rule = rules.get(note.rule)
                title, body = compose(note, rule)
                log.info("%s %s %s", note.rule, note.entity,
                         note.state + (" (repeat)" if note.repeat else ""))
                for name in rule.notify if rule is not None else ():
                    try:
                        queues[name].send_nowait((title, body, note))
                    except trio.WouldBlock:
                        runtime.failed += 1
                        log.error("channel '%s' is %d notifications behind; dropped one",
                                  name, CHANNEL_QUEUE)
        for send in queues.values():
            await send.aclose()


async def _channel_worker(channel: s.Channel,
                          items: trio.MemoryReceiveChannel[tuple[str, str, Notification]],
                          sender: AppriseSender, runtime: Runtime) -> None:
    async with items:
        async for title, body, note in items:
            for url in channel.urls:
                if url == CONSOLE_URL:
                    print_console(runtime.out, title, body, note.at)
                    runtime.delivered += 1
                elif await sender.send(url, title, body):
                    runtime.delivered += 1
                else:
                    runtime.failed += 1
                    log.warning("channel '%s': delivery failed (%s://)", channel.name,
                                url.split("://", 1)[0])


def print_console(out: TextIO, title: str, body: str, at: float) -> None:
    stamp = datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = [f"{stamp} {title}", *(f"    {line}" for line in body.splitlines())]
    out.write("\n".join(lines) + "\n")
    out.flush()
