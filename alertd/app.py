"""The daemon's wiring: the only nursery of alertd (STYLE.md convention 7).

    sources (a task per socket) --Batch--> engine loop --Entry--> planner --Message--> outbox
                                               |       (inbox)                  a worker per
                                               +-- state store: alerts, replay   channel
                                                   positions, history, inbox, outbox

The engine loop wakes on a batch or on the engine's next deadline, reads the clock once,
evaluates, and persists what changed, with each (channel, notification) for the planner's
inbox, in one transaction. The planner loop (``_deliver``) applies silences, quiet hours
and grouping, and writes its messages to the outbox; each channel has its own worker, so a
slow or failing channel never delays evaluation or the other channels, and a restart
resumes what was neither planned nor delivered. An optional HTTP task serves /metrics.
SIGHUP loads the file again: an invalid file is logged and the old one kept; a valid one
restarts sources, engine and planner, and alerts of rules that still exist resume from the
store.
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

from alertd import http_server
from alertd.clock import Clock
from alertd.config import load_config
from alertd.config import schema as s
from alertd.engine import Engine
from alertd.errors import ConfigError
from alertd.logs import Redact, secrets_of
from alertd.metrics import Histogram, Snapshot, alerts_json, health_json, render
from alertd.model import Batch, Notification
from alertd.notify.planner import Entry, Plan, Planner, Settled
from alertd.notify.schedule import FIRST_RETRY, next_attempt
from alertd.notify.silences import Silence, from_config
from alertd.senders.apprise_sender import CONSOLE_URL, AppriseSender
from alertd.sources import element_client, navixy_client
from alertd.sources.stats import SourceStats
from alertd.store import Store, StoredAlert

log = logging.getLogger("alertd")
BATCH_LIMIT = 512  # batches taken per wake-up: keeps one wake-up short under a flood
CHANNEL_QUEUE = 10_000  # notifications waiting for the planner (they are in the inbox)
HISTORY_KEPT = 90 * 86400  # notifications and ended silences, pruned at start and reload
CURSOR_WRITE = 1.0  # seconds a replay position may wait to be written with nothing else
SILENCES_EVERY = 1.0  # how often the store's silences are read: `silence add` works in 2 s


@dataclass
class Runtime:
    """What outlives one configuration: the store, the clock, counters, where to print."""

    store: Store
    clock: Clock
    out: TextIO = sys.stdout
    stats: SourceStats = field(default_factory=SourceStats)
    delivered: int = 0
    failed: int = 0  # deliveries given up
    retry_first: float = FIRST_RETRY
    send_timeout: float = 30.0  # per apprise call, in the daemon's clock's seconds
    engine: Engine | None = None  # the running generation's, for /metrics and /alerts
    latency: Histogram = field(default_factory=Histogram)
    http_port: int | None = None


async def run(config: s.Config, store: Store, *, config_path: str | None = None,
              redact: Redact | None = None, out: TextIO = sys.stdout,
              send_timeout: float = 30.0,
              task_status: trio.TaskStatus[Runtime] = trio.TASK_STATUS_IGNORED) -> None:
    """Run until cancelled (SIGINT/SIGTERM end it cleanly; SIGHUP reloads ``config_path``)."""
    runtime = Runtime(store, Clock(), out, send_timeout=send_timeout)
    if redact is not None:
        redact.update(secrets_of(config))
    reload_send, reload_receive = trio.open_memory_channel[None](1)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_signals, nursery.cancel_scope, reload_send)
        if config.http is not None:  # kept across reloads: a new address needs a restart
            runtime.http_port = await nursery.start(http_server.serve, *config.http,
                                                    _routes(runtime, config))
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
                    # off the event loop: a slow or hostile file never stalls the daemon
                    new = await trio.to_thread.run_sync(_reload, config_path, config, redact,
                                                        abandon_on_cancel=True)
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
    pruned = runtime.store.prune(now - HISTORY_KEPT)
    if pruned:
        log.info("forgot %d notifications older than %d days", pruned, HISTORY_KEPT // 86400)
    previous, engine = runtime.engine, Engine(config.rules, config.sources, now,
                                              connected=False)
    if previous is not None:  # a reload: histories carry over, alerts come from the store
        log.info("reload: carried the histories of %d entities over",
                 engine.adopt(previous, now))
    runtime.engine = engine
    resumed = engine.restore(((a.rule, a.entity, a.data)
                              for a in runtime.store.load_alerts()), now)
    if resumed:
        log.info("resumed %d alerts from %s", resumed, runtime.store.path)
    batches_send, batches_receive = trio.open_memory_channel[Batch](1024)
    notes_send, notes_receive = trio.open_memory_channel[Entry | Settled](CHANNEL_QUEUE)
    dropped = runtime.store.orphans({name: channel.urls
                                     for name, channel in config.channels.items()})
    if dropped:
        log.warning("dropped %d queued deliveries for channels or URLs no longer configured",
                    dropped)
    left = [Entry(*row) for row in runtime.store.inbox()]  # read before anything adds to it
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
        nursery.start_soon(_deliver, config, notes_receive, runtime, left)
        task_status.started()


async def _evaluate(engine: Engine, batches: trio.MemoryReceiveChannel[Batch], runtime: Runtime,
                    entries: trio.MemorySendChannel[Entry | Settled]) -> None:
    """The engine loop. Replay positions that come with no alert change are written at most
    every ``CURSOR_WRITE`` seconds (and when the loop ends), not once per frame: re-reading
    a second of readings that changed nothing after a crash costs nothing, while a
    transaction per frame was the largest cost per message."""
    clock, store = runtime.clock, runtime.store
    notify = {rule.name: rule.notify for rule in engine.rules}
    cursors: dict[tuple[str, str], str] = {}
    cursors_due = math.inf
    try:
        async with batches, entries:
            while True:
                deadline = min(engine.next_deadline() or math.inf, cursors_due)
                taken: list[Batch] = []
                with trio.move_on_at(clock.trio_time(deadline)):
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
                for batch in taken:
                    for event in batch.events:
                        made.extend(engine.receive(event, now))
                    if batch.cursor:
                        cursors[(batch.source, batch.socket)] = batch.cursor
                made.extend(engine.on_timer(now))
                changed = [StoredAlert(*item) for item in engine.take_changed()]
                if changed or made or (cursors and now >= cursors_due):
                    offered = [(channel, note) for note in made
                               for channel in notify[note.rule]]
                    ids = store.commit(changed, cursors,
                                       [(n.at, n.rule, n.entity, n.state) for n in made], now,
                                       offered)
                    cursors, cursors_due = {}, math.inf
                    await _hand_on(made, changed, ids, offered, entries)
                elif cursors and cursors_due == math.inf:
                    cursors_due = now + CURSOR_WRITE
                done = clock.monotonic()
                for batch in taken:
                    if batch.received is not None:
                        runtime.latency.observe(max(0.0, done - batch.received))
                following = engine.next_deadline()
                if following is not None and following <= now and not taken and not made:
                    log.error("engine: a timer did not advance at %.3f; pausing 1 s", following)
                    await trio.sleep(1)  # never spin a core, even on a bug
    finally:
        if cursors:  # a stop or a reload: keep the replay positions reached
            store.commit([], cursors, [], clock.now())


async def _hand_on(made: list[Notification], changed: list[StoredAlert], ids: list[int],
                   offered: list[tuple[str, Notification]],
                   entries: trio.MemorySendChannel[Entry | Settled]) -> None:
    """Log the notifications made and pass them, as inbox entries, to the planner; tell it
    of alerts that resolved without a notice."""
    for note in made:
        log.info("%s %s %s", note.rule, note.entity,
                 note.state + (" (repeat)" if note.repeat else ""))
    for entry_id, (channel, note) in zip(ids, offered, strict=True):
        await entries.send(Entry(entry_id, channel, note))
    told = {(n.rule, n.entity) for n in made if n.state == "resolved"}
    for alert in changed:
        if alert.state == "resolved" and (alert.rule, alert.entity) not in told:
            await entries.send(Settled(alert.rule, alert.entity))


def _routes(runtime: Runtime, config: s.Config) -> dict[str, http_server.Route]:
    def snapshot() -> Snapshot:
        engine, stats = runtime.engine, runtime.stats
        return Snapshot(sorted(config.sources), stats.message_count, stats.bad_frame_count,
                        stats.open_sockets, engine.sources_up() if engine else {},
                        engine.alerts() if engine else [], runtime.delivered, runtime.failed,
                        runtime.store.queued(), runtime.latency)

    def alerts() -> list[tuple[str, str, str, float]]:
        return runtime.engine.alerts() if runtime.engine else []

    def up() -> dict[str, bool]:
        return runtime.engine.sources_up() if runtime.engine else {}

    return {"/metrics": lambda: ("text/plain; version=0.0.4", render(snapshot())),
            "/healthz": lambda: ("application/json", health_json(up())),
            "/alerts": lambda: ("application/json", alerts_json(alerts()))}


def _silences(config: s.Config, store: Store, now: float) -> list[Silence]:
    return [*map(from_config, config.silences),
            *(Silence(x.id, x.match, x.starts, x.ends, x.comment) for x in store.silences(now))]


def _firing_at_start(store: Store) -> list[Notification]:
    """Alerts restored firing, as the planner needs to know them (silences, digests)."""
    return [Notification(a.rule, a.entity, "firing", a.since, a.since,
                         str(a.data.get("severity", "")), a.entity.split("/", 1)[0],
                         a.entity.rsplit("/", 1)[-1], str(a.data.get("field", "")),
                         a.data.get("value"), labels=dict(a.data.get("labels") or {}))
            for a in store.load_alerts() if a.state == "firing"]


async def _deliver(config: s.Config, entries: trio.MemoryReceiveChannel[Entry | Settled],
                   runtime: Runtime, left: list[Entry]) -> None:
    """Plan what each channel is told (silences, quiet hours, grouping), write the messages
    to the outbox, then wake the channels' workers. ``console://`` prints at once.
    Notifications left in the inbox by an earlier run are planned first."""
    store, clock = runtime.store, runtime.clock
    now = clock.now()
    planner = Planner(config.rules, config.channels, _silences(config, store, now))
    planner.seed(_firing_at_start(store))
    sender = AppriseSender(timeout=runtime.send_timeout)
    kicks: dict[tuple[str, str], trio.MemorySendChannel[None]] = {}
    async with trio.open_nursery() as nursery:
        for channel in config.channels.values():
            for url in channel.urls:
                if url != CONSOLE_URL:
                    kick, woken = trio.open_memory_channel[None](1)
                    kicks[(channel.name, url)] = kick
                    nursery.start_soon(_url_worker, channel.name, url, woken, sender, runtime)
        taken: list[Entry | Settled] = list(left)
        if taken:
            log.info("resuming %d notifications left by the last run", len(taken))
        silences_read = now
        async with entries:
            while True:
                plan = Plan()
                for entry in taken:
                    if isinstance(entry, Settled):
                        planner.settle(entry)
                    else:
                        planner.offer(entry, now, plan)
                planner.on_timer(now, plan)
                for decision in plan.decisions:
                    log.info("notify: %s", decision)
                _dispatch(config, plan, store, now, kicks, runtime)
                due = planner.next_deadline()
                wake = min(math.inf if due is None else due, silences_read + SILENCES_EVERY)
                taken = []
                with trio.move_on_at(clock.trio_time(wake)):
                    try:
                        taken.append(await entries.receive())
                    except trio.EndOfChannel:
                        return
                    while True:
                        try:
                            taken.append(entries.receive_nowait())
                        except (trio.WouldBlock, trio.EndOfChannel):
                            break
                now = clock.now()
                if now >= silences_read + SILENCES_EVERY:
                    planner.set_silences(_silences(config, store, now))
                    silences_read = now


def _dispatch(config: s.Config, plan: Plan, store: Store, now: float,
              kicks: dict[tuple[str, str], trio.MemorySendChannel[None]],
              runtime: Runtime) -> None:
    queued = []
    for message in plan.messages:
        for url in config.channels[message.channel].urls:
            if url == CONSOLE_URL:
                print_console(runtime.out, message.title, message.body, now)
                runtime.delivered += 1
            else:
                queued.append((message.channel, url, message.title, message.body))
    if queued or plan.consumed:
        store.plan(queued, plan.consumed, now)
    for channel, url, _title, _body in queued:
        try:
            kicks[(channel, url)].send_nowait(None)
        except trio.WouldBlock:
            pass  # already woken


async def _url_worker(channel: str, url: str, woken: trio.MemoryReceiveChannel[None],
                      sender: AppriseSender, runtime: Runtime) -> None:
    """Deliver one URL's due outbox rows in order; a failure is retried with backoff (this
    URL only) and given up after an hour. One worker per URL, so a hanging Slack does not
    hold up the e-mail of the same channel. Rows left by an earlier run resume at start."""
    store, clock = runtime.store, runtime.clock
    kind = url.split("://", 1)[0]
    while True:
        for delivery in store.pending(channel, url):
            if delivery.due > clock.now():
                break
            if await sender.send(url, delivery.title, delivery.body):
                store.delivered(delivery.id)
                runtime.delivered += 1
                continue
            now = clock.now()
            retry_at = next_attempt(delivery.created, delivery.attempts + 1, now,
                                    first=runtime.retry_first)
            if retry_at is None:
                store.delivered(delivery.id)
                runtime.failed += 1
                log.error("channel '%s': gave up delivering '%s' (%s://) after %d attempts",
                          channel, delivery.title, kind, delivery.attempts + 1)
            else:
                store.retry(delivery.id, retry_at)
                log.warning("channel '%s': delivery failed (%s://); retrying in %.3g s",
                            channel, kind, retry_at - now)
        pending = store.pending(channel, url)
        wake = clock.trio_time(pending[0].due) if pending else math.inf
        with trio.move_on_at(wake):
            await woken.receive()


def print_console(out: TextIO, title: str, body: str, at: float) -> None:
    stamp = datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = [f"{stamp} {title}",
             *(f"    {line}" if line else "" for line in body.splitlines())]
    out.write("\n".join(lines) + "\n")
    out.flush()
