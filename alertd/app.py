"""The daemon's wiring: the only nursery of alertd (STYLE.md convention 7).

    sources (a task per socket) --Batch--> engine loop --Entry--> planner --Message--> outbox
                                               |       (inbox)                  a worker per
                                               +-- state store: alerts, replay   channel
                                                   positions, history, inbox, outbox

The engine loop wakes on a batch or on the engine's next deadline, reads the clock once and
evaluates; its writer persists what changed, with each (channel, notification) for the
planner's inbox, in one transaction, in the store's thread (``_in_store``: every store call
of these tasks runs there, one at a time, so no write stalls the event loop), while the loop
goes on evaluating; what it adds meanwhile goes into the next transaction. The file's
write-ahead log is synced into it every second by a task of its own (``_checkpoints``), so
no write waits for the disk. The writer then plans what it wrote (``Desk``, the planner):
silences, quiet hours and grouping, and writes the messages to the outbox; each channel has
its own worker, so a slow or failing channel never delays evaluation or the other channels,
and a restart resumes what was neither planned nor delivered. An optional HTTP task serves
/metrics. SIGHUP loads the file again (a storm of them is one reload): an invalid file is
logged and the old one kept; a valid one restarts sources, engine and planner, and alerts of
rules that still exist resume from the store.

The URL workers (``Couriers``) live outside the generations: a reload keeps every worker
whose channel and URL survive it, so a send in flight is never cancelled (and never sent
twice). Each send runs in a child process (``senders.pool``) that is killed when it
overruns. SIGINT/SIGTERM stop the sources, engine and planner at once, then give the sends
in flight up to ``STOP_GRACE`` seconds: those that complete are recorded, the rest are
killed and stay in the outbox for the next start; a second signal ends them at once.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import math
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, TextIO, TypeVar

import trio

from alertd import http_server, shard
from alertd.clock import Clock
from alertd.config import load_config
from alertd.config import schema as s
from alertd.engine import Engine, firing_at_start
from alertd.errors import ConfigError, ResourceError
from alertd.escape import plural
from alertd.logs import Redact, secrets_of
from alertd.metrics import (Histogram, Snapshot, alerts_json, down_tolerances, health_json,
                            render)
from alertd.model import AlertEvent, AlertSettled, Batch, Event, Notification
from alertd.notify.decision import describe
from alertd.notify.plan import Entry, Outgoing, Plan, Settled, outgoing
from alertd.notify.planner import Planner
from alertd.notify.schedule import FIRST_RETRY, AfterAttempt, Fate, after_attempt
from alertd.notify.silences import Silence, from_config
from alertd.records import AlertView
from alertd.senders.apprise_sender import CONSOLE_URL
from alertd.senders.console import print_console
from alertd.senders.outcome import DeliveryOutcome
from alertd.senders.pool import START_TIMEOUT, ProcessSender
from alertd.sources import element_client, navixy_client
from alertd.sources.stats import SourceStats
from alertd.store import Delivery, Store, StoreFailed, StoreUnavailable
from alertd.store_thread import StoreThread
from alertd.writes import Unwritten, WriteSchedule, positions_of

if TYPE_CHECKING:
    from alertd.record import Recorder

log = logging.getLogger("alertd")
T = TypeVar("T")
BATCH_LIMIT = 512  # batches taken per wake-up: keeps one wake-up short under a flood
HISTORY_KEPT = 90 * 86400  # notifications and ended silences, pruned at start and reload
PROMPT_WAIT = 0.002  # seconds an idle loop blocks for a store call a notification waits for
CURSOR_WRITE = 1.0  # seconds a replay position may wait to be written with nothing else
SILENCES_EVERY = 1.0  # how often the store's silences are read: `silence add` works in 2 s
GC_YOUNG = 20_000  # allocations between young collections (the default, 700, is for scripts)
STOP_GRACE = 5.0  # seconds a stop waits for sends in flight before killing them
RELOAD_QUIET = 0.3  # a SIGHUP waits for this much quiet (a storm of them is one reload) ...
RELOAD_WAIT = 2.0  # ... but no longer than this
STORE_RETRY = (0.25, 5.0)  # a failed state write is tried again after 0.25 s, doubling to 5 s
STORE_PATIENCE = 300.0  # seconds the state file may keep failing before the daemon stops
CHECKPOINT_EVERY = 1.0  # seconds between syncs of the state file's write-ahead log
STORE_CHECK = 2.0  # how often the state file's identity is checked and held writes retried


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
    engine: Engine | None = None  # the running generation's, for /metrics and /alerts
    latency: Histogram = field(default_factory=Histogram)
    http_port: int | None = None
    stop_grace: float = STOP_GRACE
    couriers: Couriers | None = None  # the URL workers, which outlive reloads
    reloads: int = 0  # reloads done (a storm of SIGHUPs is one)
    recorder: Recorder | None = None  # --record: every frame received, to files
    dry_run: bool = False  # --dry-run: every channel prints (a reload keeps it so)
    alerts_route: http_server.Route | None = None  # /alerts, as alertd alerts --json says
    store_thread: StoreThread | None = None  # the store's calls, one at a time

    def __post_init__(self) -> None:
        # the store's thread, whose calls run one at a time, in order; none on a virtual
        # clock (it jumps while a thread works): the loop thread does them
        if self.store_thread is None and not self.clock.virtual:
            self.store_thread = StoreThread()


async def run(config: s.Config, store: Store, *, config_path: str | None = None,
              redact: Redact | None = None, out: TextIO = sys.stdout,
              send_timeout: float = 30.0, time_scale: float = 1.0,
              recorder: Recorder | None = None,
              dry_run: bool = False,
              task_status: trio.TaskStatus[Runtime] = trio.TASK_STATUS_IGNORED) -> None:
    """Run until SIGINT/SIGTERM (a clean stop within ``STOP_GRACE`` seconds and a little) or
    cancelled from outside (sends in flight are killed); SIGHUP reloads ``config_path``.
    ``recorder``: frames received are recorded; ``dry_run``: every channel prints.
    ``send_timeout``: seconds per apprise call; ``time_scale``: clock seconds per real second
    (the demo's fast clock), by which every wait on a real sending process is scaled."""
    runtime = Runtime(store, Clock(), out, recorder=recorder, dry_run=dry_run)
    if dry_run:
        from alertd.dry_run import printed_only

        config = printed_only(config)
        log.info("dry run: notifications are printed, not sent; no state is written")
    if redact is not None:
        redact.update(secrets_of(config))
    reload_send, reload_receive = trio.open_memory_channel[None](1)
    sender = ProcessSender(timeout=send_timeout * time_scale,
                           start_timeout=START_TIMEOUT * time_scale)
    try:
        async with trio.open_nursery() as daemon:
            async with trio.open_nursery() as workers:
                couriers = runtime.couriers = Couriers(workers, sender, runtime)
                if any(url != CONSOLE_URL for channel in config.channels.values()
                       for url in channel.urls):
                    workers.start_soon(sender.warm)  # apprise is needed: have one ready
                with trio.CancelScope() as stop:
                    daemon.start_soon(_signals, stop, workers.cancel_scope, reload_send)
                    async with trio.open_nursery() as nursery:
                        if config.http is not None:  # kept across reloads: a new address
                            try:  # needs a restart
                                runtime.http_port = await nursery.start(
                                    _serve_http(runtime, config), *config.http,
                                    _routes(runtime, config))
                            except OSError as error:
                                raise ResourceError(_bind_problem(*config.http, error)) \
                                    from error
                        await _generations(config, config_path, redact, runtime, reload_receive,
                                           task_status)
                couriers.stop(runtime.stop_grace)
            daemon.cancel_scope.cancel()  # the signal task
    finally:
        if runtime.store_thread is not None:
            runtime.store_thread.close()  # every call of it was awaited: none is left
        await sender.aclose()


async def _generations(config: s.Config, config_path: str | None, redact: Redact | None,
                       runtime: Runtime, reloads: trio.MemoryReceiveChannel[None],
                       task_status: trio.TaskStatus[Runtime]) -> None:
    """One generation (sources, engine, planner) per configuration; a reload starts the
    next one. The URL workers are configured before each and survive it."""
    assert runtime.couriers is not None
    started = False
    while True:
        runtime.couriers.configure(config)
        async with trio.open_nursery() as generation:
            await generation.start(_generation, config, runtime)
            _keep_collector_out()  # the start-up's objects (config, rules, indexes) and, at
            if not started:  # a reload, the new generation's: never scanned again
                task_status.started(runtime)
                started = True
            log.info("watching %s with %s%s", plural(len(config.sources), "source"),
                     plural(len(config.rules), "rule"),
                     f" as shard {config.shard}" if config.shard else "")
            while True:
                await reloads.receive()
                await _settle(reloads)
                runtime.reloads += 1
                # off the event loop: a slow or hostile file never stalls the daemon
                new = await trio.to_thread.run_sync(_reload, config_path, config, redact,
                                                    abandon_on_cancel=True)
                if new is not None and runtime.dry_run:
                    from alertd.dry_run import printed_only

                    new = printed_only(new)
                if new is not None:
                    config = new
                    generation.cancel_scope.cancel()
                    break


def _keep_collector_out() -> None:
    """Keep the cyclic garbage collector out of the hot path: what exists now lives as long
    as the configuration, so it is collected once and frozen (``gc.freeze``: never scanned
    again, still freed by reference counting), and young collections run less often. A
    full collection over a large heap was the latency maximum (16-55 ms)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG, 20, 100)


async def _settle(reloads: trio.MemoryReceiveChannel[None]) -> None:
    """A storm of SIGHUPs is one reload: wait until none came for ``RELOAD_QUIET`` seconds
    (at most ``RELOAD_WAIT``)."""
    with trio.move_on_after(RELOAD_WAIT):
        while True:
            with trio.move_on_after(RELOAD_QUIET) as quiet:
                await reloads.receive()
            if quiet.cancelled_caught:
                return


def _bind_problem(host: str, port: int, error: OSError) -> str:
    """One line for an HTTP address that cannot be listened on."""
    import errno

    reasons = {errno.EADDRINUSE: "is already in use",
               errno.EACCES: "needs more privileges (a port below 1024?)",
               errno.EADDRNOTAVAIL: "is not an address of this machine"}
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return f"http: {where} {reasons.get(error.errno or 0, f'cannot be used: {error.strerror}')}"


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
    if old.shard is not None and old.shard.from_option:
        new = dataclasses.replace(new, shard=old.shard)  # --shard wins, as at start
    elif new.shard != old.shard:  # the entities a state file holds follow the shard
        log.warning("reload: the shard stays %s until a restart (the file says %s)",
                    old.shard or "none", new.shard or "none")
        new = dataclasses.replace(new, shard=old.shard)
    if redact is not None:
        redact.update([*redact.secrets, *secrets_of(new)])
    log.info("reload: %s loaded (%s)", path, plural(len(new.rules), "rule"))
    return new


async def _signals(stop: trio.CancelScope, sends: trio.CancelScope,
                   reload: trio.MemorySendChannel[None]) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
        async for signum in signals:
            if signum == signal.SIGHUP:
                try:
                    reload.send_nowait(None)
                except trio.WouldBlock:
                    pass  # a reload is already waiting
            elif not stop.cancel_called:
                log.info("stopping (%s)", signal.Signals(signum).name)
                stop.cancel()
            else:
                log.warning("stopping now (%s again): sends in flight are ended",
                            signal.Signals(signum).name)
                sends.cancel()


async def _generation(config: s.Config, runtime: Runtime,
                      task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    now = runtime.clock.now()
    config = shard.narrow(config)  # a shard's own trackers, device sockets, listed entities
    try:
        pruned = runtime.store.prune(now - HISTORY_KEPT)
        if pruned:
            log.info("forgot %s older than %d days", plural(pruned, "notification"),
                     HISTORY_KEPT // 86400)
    except StoreUnavailable:
        pass  # housekeeping waits for the next start; the store logged why
    previous, engine = runtime.engine, Engine(config.rules, config.sources, now,
                                              connected=False)
    if previous is not None:  # a reload: histories carry over, alerts come from the store
        carried = engine.adopt(previous, now)
        log.info("reload: carried the histories of %d %s over", carried,
                 "entity" if carried == 1 else "entities")
    runtime.engine = engine
    resumed = engine.restore(runtime.store.load_alerts(), now)
    if resumed:
        log.info("resumed %s from %s", plural(resumed, "alert"), runtime.store.path)
    batches_send, batches_receive = trio.open_memory_channel[Batch](1024)
    try:
        dropped = runtime.store.orphans({name: channel.urls
                                         for name, channel in config.channels.items()})
    except StoreUnavailable:
        dropped = 0  # the workers of channels no longer configured are gone anyway
    if dropped:
        log.warning("dropped %d queued %s for channels or URLs no longer configured",
                    dropped, "delivery" if dropped == 1 else "deliveries")
    left = runtime.store.inbox()  # read before anything adds to it
    async with trio.open_nursery() as nursery:
        async with batches_send:
            for source in config.sources.values():
                if isinstance(source, s.ElementSource):
                    cursors = {path: _cursor(runtime.store, source.name, path, now)
                               for path in source.subscribe}
                    nursery.start_soon(element_client.run_source, source, batches_send.clone(),
                                       cursors, runtime.stats, runtime.clock.now,
                                       runtime.recorder)
                else:
                    nursery.start_soon(navixy_client.run_source, source, batches_send.clone(),
                                       runtime.stats, runtime.store.load_cursors(source.name),
                                       runtime.recorder)
        nursery.start_soon(_evaluate, engine, batches_receive, runtime,
                           Desk(config, runtime, left), shard.event_filter(config.shard))
        nursery.start_soon(_watch_store, runtime)
        nursery.start_soon(_checkpoints, runtime)
        task_status.started()


def _cursor(store: Store, source: str, path: str, now: float) -> str | None:
    """A socket's saved replay position, unless it lies in the future (a device or server
    clock far ahead once): that one would hide every reading for good."""
    saved = store.load_cursor(source, path)
    after = element_client.cursor_time(saved)
    if after is not None and after > now + element_client.FUTURE_CURSOR:
        log.warning("source '%s' socket %s: ignoring the saved replay position %s: it is "
                    "in the future", source, path, element_client.cursor_text(saved))
        return None
    return saved


async def _checkpoints(runtime: Runtime) -> None:
    """Every ``CHECKPOINT_EVERY`` seconds, the state file's write-ahead log is copied into
    the file and both are synced to the disk (``Store.checkpoint``), in a thread of its own:
    the store's thread, and the notifications waiting for its writes, never wait for the
    disk. A power cut loses at most the writes of that last interval (docs/operations.md)."""
    thread = StoreThread()  # beside the store's own, so that its writes never wait for this
    try:
        while True:
            await trio.sleep(CHECKPOINT_EVERY)
            await _in_store(runtime, runtime.store.checkpoint, thread)
    finally:
        thread.close()  # its call was awaited: none is left (never started: no call)


async def _watch_store(runtime: Runtime) -> None:
    """Every ``STORE_CHECK`` seconds: stop when the state file was deleted or replaced
    under the daemon (its writes would go nowhere and ``alertd silence`` would talk to
    another file); write what the delivery side holds; stop when writes have failed for
    ``STORE_PATIENCE`` seconds."""
    store, clock = runtime.store, runtime.clock
    troubled_since: float | None = None
    while True:
        await trio.sleep(STORE_CHECK)
        now = clock.now()
        gone = store.replaced()
        if gone is not None:
            raise StoreFailed(f"state file {store.path}: {gone} while alertd ran; stopping "
                              "(start alertd again to use the file now at that path)")
        if store.held:
            await _in_store(runtime, store.flush)
        if store.trouble is None:
            troubled_since = None
        elif troubled_since is None:
            troubled_since = now
        elif now - troubled_since >= STORE_PATIENCE:
            raise StoreFailed(f"state file {store.path}: cannot write for "
                              f"{STORE_PATIENCE / 60:g} minutes: {store.trouble}; stopping")


@dataclass
class EngineWrites:
    """What the engine loop has not written yet (``work``, added to while a write is in
    flight) and when to write it (``schedule``); ``wake`` tells the writer to look."""

    work: Unwritten
    schedule: WriteSchedule
    wake: trio.MemorySendChannel[None]

    def after_wake_up(self, now: float) -> None:
        """Tell the writer when the work is due now, or its deadline moved (positions alone
        now wait); otherwise it sleeps on (a wake-up of its own per frame costs throughput)."""
        deadline = self.schedule.next_deadline()
        if self.schedule.due(self.work, now):
            self.kick()
        else:
            self.schedule.hold(self.work, now)
            if self.schedule.next_deadline() != deadline:
                self.kick()

    def kick(self) -> None:
        try:
            self.wake.send_nowait(None)
        except trio.WouldBlock:
            pass  # the writer is already told


async def _evaluate(engine: Engine, batches: trio.MemoryReceiveChannel[Batch], runtime: Runtime,
                    desk: Desk, owned: Callable[[Event], bool] | None = None) -> None:
    """The engine loop: take the batches waiting, hand their events to the engine, and add
    what changed to the work not yet written; its writer (``_write_engine``) writes it in the
    store's thread and plans what was written (``desk``), while this loop goes on
    evaluating. ``owned`` (sharded: ``shard.event_filter``) drops other shards' entities
    first. When the loop ends, what is still unwritten is written (``_write_at_end``)."""
    clock = runtime.clock
    wake_send, wake_receive = trio.open_memory_channel[None](1)
    writes = EngineWrites(Unwritten(), WriteSchedule(CURSOR_WRITE, STORE_RETRY), wake_send)
    try:
        async with batches, trio.open_nursery() as nursery:
            nursery.start_soon(_write_engine, writes, wake_receive, runtime, desk)
            while True:
                wake = engine.next_deadline() or math.inf
                taken = await _take(batches, clock.trio_time(wake), BATCH_LIMIT)
                if taken is None:
                    writes.wake.close()  # the writer writes what it was told of, and ends
                    return
                now = clock.now()
                events = _apply(engine, taken, now, owned, writes.work, writes.schedule)
                writes.after_wake_up(now)
                _observe_latency(runtime, taken)
                await _never_spin(engine, now, bool(taken or events))
    finally:
        _write_at_end(runtime.store, writes.work, clock.now())


async def _write_engine(writes: EngineWrites, wake: trio.MemoryReceiveChannel[None],
                        runtime: Runtime, desk: Desk) -> None:
    """The engine loop's writer, and the planner's task: whenever the loop added work, or
    the schedule's deadline comes (``writes.WriteSchedule``: alert changes at once, replay
    positions alone at most every ``CURSOR_WRITE`` seconds, a failed write again with
    backoff), write everything unwritten in one transaction, then plan what was written at
    once (``desk``); the planner's own deadlines (grouping, quiet hours, silences read
    again) wake it too. Whatever the engine adds while a commit is in flight goes into the
    next one, so commits follow the disk's pace, not the notifications'. (A notification
    written is planned in the same task, not handed to another: that hop waited behind the
    readers woken meanwhile, 0.2 ms at the median on a 2-core VM.)"""
    clock, schedule = runtime.clock, writes.schedule
    await desk.start()
    while True:
        with trio.move_on_at(clock.trio_time(min(schedule.next_deadline(), desk.deadline()))):
            try:
                await wake.receive()
            except trio.EndOfChannel:
                return  # the engine loop ended: what is left is written at its end
        now = clock.now()
        if not schedule.due(writes.work, now):
            schedule.hold(writes.work, now)
            await desk.plan([], now)  # the planner's deadline, if it was that
            continue
        done, writes.work = writes.work, Unwritten()
        ids = await _write_now(runtime, done, schedule, now)
        if ids is None:
            writes.work.put_back(done)  # tried again after the schedule's backoff
            await desk.plan([], clock.now())
            continue
        for key in writes.work.positions:  # a socket's first position, reached meanwhile
            schedule.position(key, clock.now())
        schedule.hold(writes.work, clock.now())  # the other positions reached meanwhile
        try:
            await desk.plan(_entries(done.events, ids), clock.now())
        finally:  # written, so logged, even if a stop came first
            _log_written(done.events)


async def _take(channel: trio.MemoryReceiveChannel[T], until: float,
                limit: float = math.inf) -> list[T] | None:
    """What is waiting on ``channel`` (at most ``limit``: keeps one wake-up short under a
    flood), waiting for the first until trio time ``until``; None once the channel is closed
    and empty."""
    taken: list[T] = []
    with trio.move_on_at(until):
        try:
            taken.append(await channel.receive())
        except trio.EndOfChannel:
            return None
        while len(taken) < limit:
            try:
                taken.append(channel.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                break
    return taken


def _apply(engine: Engine, taken: list[Batch], now: float, owned: Callable[[Event], bool] | None,
           work: Unwritten, schedule: WriteSchedule) -> list[AlertEvent]:
    """Evaluate the batches' events (the owned ones) and the timers due at ``now``; add what
    changed, what the alerts did and the positions reached to ``work``."""
    events: list[AlertEvent] = []
    for batch in taken:
        for event in batch.events:
            if owned is None or owned(event):
                events.extend(engine.receive(event, now))
        for position in positions_of(batch):
            key = (position.source, position.socket)
            work.positions[key] = position
            schedule.position(key, now)
    events.extend(engine.on_timer(now))
    work.add(engine.take_changed(), events)
    return events


async def _write_now(runtime: Runtime, work: Unwritten, schedule: WriteSchedule,
                     now: float) -> list[int] | None:
    """Write ``work`` in the store's thread; its inbox ids, or None when the store failed
    (tried again later)."""
    try:
        ids = await _in_store(runtime, partial(_write, runtime.store, work, now),
                              awaited=bool(work.events))  # the planner waits for them
    except StoreUnavailable:
        schedule.failed(now)
        return None
    schedule.written(work)
    return ids


async def _in_store(runtime: Runtime, call: Callable[[], T],
                    thread: StoreThread | None = None, awaited: bool = False) -> T:
    """``call`` on the state store in the store's one thread (``Runtime.store_thread``, or
    ``thread``: the checkpointer's), so that a commit (or a lock held elsewhere) never
    stalls the event loop; one call at a time, in the order they come. On a virtual clock
    (no store thread) the loop thread makes it. Not cancellable: a call that began is never
    left half-known by a cancellation (a stop or reload finds what it did done; the
    cancellation is raised after it), and every call is short (a busy timeout of 50 ms).

    ``awaited``: a notification waits for this call; the loop, if it has nothing else to
    run and no other store call is unfinished, blocks for it up to ``PROMPT_WAIT`` rather
    than be woken by its end (``StoreThread.run``)."""
    if runtime.store_thread is None:
        return call()
    return await (thread or runtime.store_thread).run(call, PROMPT_WAIT if awaited else 0.0)


def _write(store: Store, work: Unwritten, now: float) -> list[int]:
    return store.commit(work.alerts.values(), work.positions.values(), work.notes(), now,
                        work.offers())


def _write_at_end(store: Store, work: Unwritten, now: float) -> None:
    """A stop or a reload: keep what was reached."""
    if not (work.alerting or work.positions):
        return
    try:
        _write(store, work, now)
    except StoreUnavailable:
        log.error("state file %s: %d alert changes and the replay positions after them could "
                  "not be written; they are evaluated again from the last saved position",
                  store.path, len(work.alerts))


def _observe_latency(runtime: Runtime, taken: list[Batch]) -> None:
    done_at = runtime.clock.monotonic()
    for batch in taken:
        if batch.received is not None:
            runtime.latency.observe(max(0.0, done_at - batch.received))


async def _never_spin(engine: Engine, now: float, busy: bool) -> None:
    """A timer that does not advance (a bug) pauses the loop instead of spinning a core."""
    following = engine.next_deadline()
    if following is not None and following <= now and not busy:
        log.error("engine: a timer did not advance at %.3f; pausing 1 s", following)
        await trio.sleep(1)


def _entries(events: list[AlertEvent], ids: list[int]) -> list[Entry | Settled]:
    """What the planner is given of the events written: each notification once per channel
    (as the inbox entry ``ids`` gives, in order), and each alert that settled without a
    notice."""
    entries: list[Entry | Settled] = []
    next_id = iter(ids)
    for event in events:
        if isinstance(event, AlertSettled):
            entries.append(Settled(event.rule, event.entity))
        else:
            entries.extend(Entry(next(next_id), channel, event.note) for channel in event.channels)
    return entries


def _log_written(events: list[AlertEvent]) -> None:
    """One line per notification written, after it was planned (the planner need not wait
    for the log lines, ~30 us each with the daemon's logging)."""
    for event in events:
        if not isinstance(event, AlertSettled):
            note = event.note
            log.info("%s %s %s", note.rule, note.entity,
                     note.state + (" (repeat)" if note.repeat else ""))


def _routes(runtime: Runtime, config: s.Config) -> dict[str, http_server.Route]:
    def snapshot() -> Snapshot:
        engine, stats = runtime.engine, runtime.stats
        return Snapshot(sorted(config.sources), stats.message_count, stats.bad_frame_count,
                        stats.open_sockets, engine.sources_up() if engine else {},
                        engine.alerts() if engine else [], runtime.delivered, runtime.failed,
                        runtime.store.queued(), runtime.latency)

    def alerts() -> list[AlertView]:
        return runtime.engine.alerts() if runtime.engine else []

    tolerances = down_tolerances(config.sources, (
        (rule.sources, rule.condition.after) for rule in config.rules
        if isinstance(rule.condition, s.SourceDown)))

    def health() -> tuple[str, str, int]:
        down_since = runtime.engine.sources_down_since() if runtime.engine else {}
        status, body = health_json(down_since, tolerances, runtime.clock.now())
        return "application/json", body, status

    return {"/metrics": lambda: ("text/plain; version=0.0.4", render(snapshot())),
            "/healthz": health,
            "/alerts": lambda: runtime.alerts_route() if runtime.alerts_route else
            ("application/json", alerts_json(alerts()))}


def _serve_http(runtime: Runtime, config: s.Config) -> Callable[..., Awaitable[None]]:
    """``http_server.serve`` with the web page's handlers (``web.py``) and access rules;
    ``/alerts`` in the schema of ``alertd alerts --json``."""
    from alertd import web

    handlers, alerts = web.daemon_handlers(config, lambda: runtime.engine, runtime.store,
                                           runtime.clock.now)
    runtime.alerts_route = alerts
    return partial(http_server.serve, handlers=handlers,
                   guard=web.access_guard(config.http_access))


def _silences(config: s.Config, store: Store, now: float) -> list[Silence]:
    return [*map(from_config, config.silences),
            *(Silence(x.id, x.match, x.starts, x.ends, x.comment) for x in store.silences(now))]


def _firing_at_start(store: Store) -> list[Notification]:
    """Alerts restored firing, as the planner needs to know them (silences, digests)."""
    return firing_at_start(store.load_alerts())


class Desk:
    """The planner of a generation, driven by the engine's writer (``_write_engine``): it
    plans what each channel is told (silences, quiet hours, grouping), logs each decision,
    and hands the messages on (``_dispatch``). Notifications left in the inbox by an earlier
    run are planned first (``start``); the store's silences are read again every
    ``SILENCES_EVERY``."""

    def __init__(self, config: s.Config, runtime: Runtime, left: list[Entry]) -> None:
        self.config = config
        self.runtime = runtime
        self.left = left
        self.planner: Planner | None = None
        self.silences_read = -math.inf

    async def start(self) -> None:
        runtime, store = self.runtime, self.runtime.store
        now = self.silences_read = runtime.clock.now()
        self.planner = Planner(self.config.rules, self.config.channels,
                               await _in_store(runtime,
                                               partial(_silences, self.config, store, now)),
                               generator_url=_page_url(self.config, runtime))
        self.planner.seed(await _in_store(runtime, partial(_firing_at_start, store)))
        left, self.left = self.left, []  # planned once, then not kept
        if left:
            log.info("resuming %s left by the last run", plural(len(left), "notification"))
        await self.plan(list(left), now)

    def deadline(self) -> float:
        """When the planner must look again though nothing was written (as ``now``)."""
        assert self.planner is not None, "start() comes first"
        due = self.planner.next_deadline()
        return min(math.inf if due is None else due, self.silences_read + SILENCES_EVERY)

    async def plan(self, taken: list[Entry | Settled], now: float) -> None:
        """Plan ``taken`` and whatever grouping or quiet hours hold that is due at ``now``."""
        planner = self.planner
        assert planner is not None, "start() comes first"
        if now >= self.silences_read + SILENCES_EVERY:
            planner.set_silences(await _in_store(
                self.runtime, partial(_silences, self.config, self.runtime.store, now)))
            self.silences_read = now
        plan = planner.step(taken, now)
        for decision in plan.decisions:
            log.info("notify: %s", describe(decision))
        await _dispatch(self.config, plan, now, self.runtime)


def _page_url(config: s.Config, runtime: Runtime) -> str | None:
    """alertd's own page (``http:``), as Alertmanager's ``generatorURL`` links to it."""
    if config.http is None or runtime.http_port is None:
        return None
    host = config.http[0]
    if host in ("", "0.0.0.0", "::"):
        import socket

        host = socket.gethostname()
    return f"http://{f'[{host}]' if ':' in host else host}:{runtime.http_port}/"


async def _dispatch(config: s.Config, plan: Plan, now: float, runtime: Runtime) -> None:
    """A plan's messages, once per URL of their channel: ``console://`` prints at once, the
    rest go to the outbox with the inbox rows the plan used up (one transaction, in the
    store's thread), and their URLs' workers (``Couriers``, which outlive this planner) are
    woken once it is written."""
    queued = []
    for delivery in outgoing(plan.messages, config.channels):
        if delivery.url == CONSOLE_URL:
            _print(runtime, delivery, now)
        else:
            queued.append(delivery)
    if queued or plan.consumed:
        await _in_store(runtime, partial(runtime.store.plan, queued, plan.consumed, now),
                        awaited=bool(queued))
    if runtime.couriers is not None:
        for delivery in queued:
            runtime.couriers.kick(delivery.channel, delivery.url)


def _print(runtime: Runtime, delivery: Outgoing, now: float) -> None:
    """A ``console://`` delivery: printed to the daemon's output, delivered at once."""
    print_console(runtime.out, delivery.title, delivery.body, now)
    runtime.delivered += 1


@dataclass(eq=False)
class Courier:
    """One URL's worker, as its peers see it: how to wake it, whether it is asked to end,
    the cancel scope of its send in flight, and until when the URL is held (backoff or the
    receiver's Retry-After apply to the URL, not only to one message)."""

    channel: str
    url: str
    kick: trio.MemorySendChannel[None]
    woken: trio.MemoryReceiveChannel[None]
    stopping: bool = False
    sending: trio.CancelScope | None = None
    hold_until: float = 0.0


class Couriers:
    """The URL workers, one per (channel, URL), in the nursery ``run`` gives them. A reload
    calls ``configure``: workers of URLs that survive go on untouched (a send in flight is
    never cancelled), new ones start, removed ones finish what they are sending and end."""

    def __init__(self, nursery: trio.Nursery, sender: ProcessSender, runtime: Runtime) -> None:
        self.nursery = nursery
        self.sender = sender
        self.runtime = runtime
        self.workers: dict[tuple[str, str], Courier] = {}

    def configure(self, config: s.Config) -> None:
        wanted = {(channel.name, url) for channel in config.channels.values()
                  for url in channel.urls if url != CONSOLE_URL}
        for key, courier in self.workers.items():
            courier.stopping = key not in wanted  # a URL put back while it ends goes on
            self.kick(*key)
        for key in wanted - set(self.workers):
            kick, woken = trio.open_memory_channel[None](1)
            courier = self.workers[key] = Courier(*key, kick, woken)
            self.nursery.start_soon(_url_worker, courier, self.sender, self.runtime)

    def kick(self, channel: str, url: str) -> None:
        courier = self.workers.get((channel, url))
        if courier is not None:
            try:
                courier.kick.send_nowait(None)
            except trio.WouldBlock:
                pass  # already woken

    def stop(self, grace: float) -> None:
        """Every worker ends: idle ones at once, one sending once its send is over or
        ``grace`` seconds from now, whichever comes first (then its process is killed)."""
        deadline = trio.current_time() + grace
        for courier in self.workers.values():
            courier.stopping = True
            if courier.sending is not None:
                courier.sending.deadline = min(courier.sending.deadline, deadline)
            self.kick(courier.channel, courier.url)

    def ended(self, courier: Courier) -> None:
        if self.workers.get((courier.channel, courier.url)) is courier:
            del self.workers[(courier.channel, courier.url)]


async def _url_worker(courier: Courier, sender: ProcessSender, runtime: Runtime) -> None:
    """Deliver one URL's due outbox rows in order, then wait for the next one due or a kick.
    One worker per URL, so a hanging Slack does not hold up the e-mail of the same channel;
    a failure holds this URL only (``_record``). Rows left by an earlier run resume at
    start."""
    store, clock = runtime.store, runtime.clock
    try:
        while not courier.stopping and await _send_due(courier, sender, runtime):
            if courier.stopping:
                return
            pending = await _in_store(runtime, partial(store.pending, courier.channel,
                                                       courier.url))
            due = max(pending[0].due, courier.hold_until) if pending else math.inf
            with trio.move_on_at(clock.trio_time(due)):
                await courier.woken.receive()
    finally:
        if runtime.couriers is not None:
            runtime.couriers.ended(courier)


async def _send_due(courier: Courier, sender: ProcessSender, runtime: Runtime) -> bool:
    """Send the URL's rows that are due, oldest first, until one must wait (or the worker
    is stopping); False when a stop ended a send in flight (its row stays queued)."""
    store = runtime.store
    for delivery in await _in_store(runtime, partial(store.pending, courier.channel,
                                                     courier.url), awaited=True):
        now = runtime.clock.now()
        if courier.stopping or delivery.due > now or courier.hold_until > now:
            break
        with trio.CancelScope() as scope:
            courier.sending = scope
            outcome = await sender.send(courier.url, delivery.title, delivery.body,
                                        delivery.notify_type)
        courier.sending = None
        if scope.cancelled_caught:
            log.warning("channel '%s': stop: a send to %s:// was still running after %g s "
                        "and was ended; it is sent again at the next start",
                        courier.channel, _kind(courier.url), runtime.stop_grace)
            return False
        if not await _record(courier, delivery, outcome, runtime):
            break
    return True


def _kind(url: str) -> str:
    return url.split("://", 1)[0]


async def _record(courier: Courier, delivery: Delivery, outcome: DeliveryOutcome,
                  runtime: Runtime) -> bool:
    """Apply the decision on a send (``schedule.after_attempt``): the outbox row done or
    due again (in the store's thread), the counters, one log line; False when the URL is
    now held (try later)."""
    now = runtime.clock.now()
    decision = after_attempt(outcome, delivery.created, delivery.attempts, now,
                             first=runtime.retry_first)
    if decision.retry_at is None:
        await _in_store(runtime, partial(runtime.store.delivered, delivery.id))
    else:
        courier.hold_until = decision.retry_at
        await _in_store(runtime, partial(runtime.store.retry, delivery.id,
                                         decision.retry_at))
    runtime.delivered += int(decision.fate is Fate.DELIVERED)
    runtime.failed += int(decision.given_up)
    _log_attempt(decision, courier, delivery.title, now)
    return decision.retry_at is None


def _log_attempt(decision: AfterAttempt, courier: Courier, title: str, now: float) -> None:
    """The decision on a failed send in one line (a delivered one says nothing)."""
    channel, kind, reason = courier.channel, _kind(courier.url), decision.reason
    if decision.fate is Fate.GIVE_UP_NOW:
        log.error("channel '%s': gave up delivering '%s' (%s://) at once, retrying cannot "
                  "help: %s", channel, title, kind, reason)
    elif decision.fate is Fate.GIVE_UP_LATE:
        log.error("channel '%s': gave up delivering '%s' (%s://) after %d attempts: %s",
                  channel, title, kind, decision.attempts, reason)
    elif decision.retry_at is not None:
        asked = " as the receiver asked (Retry-After)" if decision.asked else ""
        log.warning("channel '%s': delivery failed (%s://): %s; retrying in %.3g s%s",
                    channel, kind, reason, decision.retry_at - now, asked)


async def record(config: s.Config, recorder: Recorder, seconds: float | None,
                 task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """``alertd record``: connect to every source and record what it sends, for ``seconds``
    (None: until SIGINT/SIGTERM), without evaluating, notifying or writing state. The
    sources start from now (no replay position): what a daemon started now would see."""
    stats = SourceStats()
    batches_send, batches_receive = trio.open_memory_channel[Batch](1024)
    with trio.move_on_after(math.inf if seconds is None else seconds):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_stop_on_signal, nursery.cancel_scope)
            async with batches_send:
                for source in config.sources.values():
                    if isinstance(source, s.ElementSource):
                        nursery.start_soon(element_client.run_source, source,
                                           batches_send.clone(), {}, stats, None, recorder)
                    else:
                        nursery.start_soon(navixy_client.run_source, source,
                                           batches_send.clone(), stats, {}, recorder)
            log.info("recording %s to %s", plural(len(config.sources), "source"),
                     recorder.folder)
            task_status.started()
            async with batches_receive:
                async for _batch in batches_receive:
                    pass  # evaluated by nobody: the frames are in the recording


async def _stop_on_signal(scope: trio.CancelScope) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            log.info("stopping (%s)", signal.Signals(signum).name)
            scope.cancel()
            return
