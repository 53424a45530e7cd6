"""Sharding: several alertd processes share the entities of one rule file (SPEC 10).

Prometheus's ``hashmod``: the process with ``shard: {index: I, of: N}`` (or ``--shard I/N``)
owns the entities whose stable hash of ``source/id`` (CRC-32 of its UTF-8 bytes, the same
in every process and every Python; never ``hash()``, which is salted per process) modulo N
is I. Pure: no I/O, no clock.

What a shard does with that (``narrow`` and ``event_filter``, wired in ``alertd.app``):
  * Navixy: it subscribes only to its own trackers (a source left with none is not
    connected at all);
  * ELEMENT: it opens only the ``devices/ID/...`` sockets of its own devices, and drops
    other shards' entities from tag, stream and mandate-wide sockets before evaluation;
  * rules' ``entities`` lists keep only its own entities, so ``silent`` counts a listed
    entity from the start in one shard only;
  * ``source_down`` watches the shard's own sockets of the source.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Callable

from alertd.config import schema as s
from alertd.model import Event, Message, StatusChanged


def parse(text: str) -> s.Shard:
    """``"1/3"`` -> ``Shard(1, 3)``; ValueError with words for the operator otherwise."""
    index_text, slash, of_text = text.partition("/")
    if not slash or not index_text.strip().isdigit() or not of_text.strip().isdigit():
        raise ValueError(f"--shard must be I/N such as 0/2 (this process's number, from 0, "
                         f"and the number of shards), not '{text}'")
    index, of = int(index_text), int(of_text)
    if of < 1 or index >= of:
        raise ValueError(f"--shard {text}: shards are numbered 0 to N-1, and N is at least 1")
    return s.Shard(index, of, from_option=True)


def slot(source: str, entity_id: str, of: int) -> int:
    """The shard that owns ``source/entity_id`` among ``of`` shards."""
    return zlib.crc32(f"{source}/{entity_id}".encode()) % of


def owns(shard: s.Shard | None, source: str, entity_id: str) -> bool:
    return shard is None or slot(source, entity_id, shard.of) == shard.index


def device_of(path: str) -> str | None:
    """The device of an ELEMENT ``devices/ID/readings`` socket path; None for other paths."""
    parts = path.split("/")
    return parts[1] if len(parts) == 3 and parts[0] == "devices" else None


def narrow(config: s.Config) -> s.Config:
    """The configuration as one shard runs it: its own trackers, device sockets and listed
    entities. Sources with nothing of this shard left are left out (not connected)."""
    shard = config.shard
    if shard is None:
        return config
    sources: dict[str, s.Source] = {}
    for name, source in config.sources.items():
        if isinstance(source, s.NavixySource):
            trackers = tuple(t for t in source.trackers if owns(shard, name, str(t)))
            if trackers:
                sources[name] = dataclasses.replace(source, trackers=trackers)
        else:
            paths = tuple(p for p in source.subscribe
                          if (device := device_of(p)) is None or owns(shard, name, device))
            if paths:
                sources[name] = dataclasses.replace(source, subscribe=paths)
    rules = tuple(rule if rule.entities is None else dataclasses.replace(
        rule, entities=tuple(e for e in rule.entities
                             if _listed_here(shard, e, rule.sources or tuple(config.sources))))
        for rule in config.rules)
    return dataclasses.replace(config, sources=sources, rules=rules)


def _listed_here(shard: s.Shard, entity: str, sources: tuple[str, ...]) -> bool:
    """Whether a rule's ``entities`` entry (``id`` or ``source/id``) is this shard's."""
    source, slash, entity_id = entity.partition("/")
    if slash and source in sources:
        return owns(shard, source, entity_id)
    return any(owns(shard, name, entity) for name in sources)


def event_filter(shard: s.Shard | None) -> Callable[[Event], bool] | None:
    """A predicate that keeps the events of this shard's entities (and every connection
    event); None when the process is not sharded (keep everything)."""
    if shard is None:
        return None
    known: dict[tuple[str, str], bool] = {}

    def keep(event: Event) -> bool:
        if not isinstance(event, (Message, StatusChanged)):
            return True
        key = (event.source, event.entity)
        mine = known.get(key)
        if mine is None:
            if len(known) > 1_000_000:  # bounded: an id storm cannot grow it for ever
                known.clear()
            mine = known[key] = owns(shard, *key)
        return mine

    return keep
