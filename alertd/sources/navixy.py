"""Navixy frames -> events: the pure half of the Navixy source (SPEC 4.2).

Atmosphere's handshake ``<uuid>|<ms>|X|`` and heartbeats ``X`` are protocol, not events.
Subscribe responses give tracker statuses (``StatusChanged``); ``iot_monitor`` events give
each tracker's per-attribute queues, merged here by ``msg_time`` into messages. The server
resends its whole window every time, so an (attribute, msg_time) entry already emitted is
not new. Errors, ``logout`` and ``lifecycle`` become notices for the client. Bad input is
described in ``problems``, never raised.
"""

from __future__ import annotations

import json
import math
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from alertd.config.schema import NAVIXY_MAX_TRACKERS_PER_REQUEST as MAX_TRACKERS
from alertd.config.schema import STATUSES
from alertd.model import Event, Message, StatusChanged
from alertd.sources.common import (
    EMPTY,
    Decoded,
    as_text,
    cut,
    dump_json,
    excerpt,
    load_json,
    parse_time,
)

_NONE_TAKEN: dict[Any, float] = {}  # shared, never written
_NO_QUEUES: dict[str, Any] = {}  # shared, never written
_NOTHING = object()  # equal to no value a frame holds
_NO_FIELDS: dict[str, Any] = {}  # never written: no entry's time is _NOTHING
_COLON = re.compile(r"\s*:\s*")
_COMMA = re.compile(r"\s*,\s*")
_SPACE = " \t\r\n"  # JSON's white space
# ``_fold``'s stand-ins: drawn at start, so that no frame holds one (a frame's own, at its
# item's place, would be taken for a stand-in: its item given another's queues)
_STAND_IN = f"alertd-{secrets.token_hex(8)}"
TIME_CACHE = 65_536  # distinct time texts remembered before the cache starts again
AUTH_CODES = (3, 4)  # wrong hash; user or API key not found, or session ended
ATMOSPHERE = (("X-Atmosphere-tracking-id", "0"), ("X-Atmosphere-Framework", "2.3.6-javascript"),
              ("X-Atmosphere-Transport", "websocket"), ("Content-Type", "application/json"),
              ("X-atmo-protocol", "true"))


@dataclass(frozen=True, slots=True)
class Handshake:
    interval_ms: int


@dataclass(frozen=True, slots=True)
class AuthFailed:
    code: int
    description: str


@dataclass(frozen=True, slots=True)
class RequestFailed:
    code: int
    description: str


@dataclass(frozen=True, slots=True)
class LoggedOut:
    reason: str


@dataclass(frozen=True, slots=True)
class Lifecycle:
    source_id: int
    event: str


@dataclass(frozen=True, slots=True)
class SubscribeRejected:
    trackers: tuple[str, ...]


def with_atmosphere_params(url: str) -> str:
    """``url`` with Atmosphere's query parameters added, each unless already present."""
    parts = urlsplit(url)
    have = {key for key, _ in parse_qsl(parts.query, keep_blank_values=True)}
    missing = "&".join(f"{key}={value}" for key, value in ATMOSPHERE if key not in have)
    if not missing:
        return url
    query = f"{parts.query}&{missing}" if parts.query else missing  # the user's part as written
    return urlunsplit(parts._replace(query=query))


def subscribe_action(hash: str, trackers: Sequence[int], rate_limit: str,
                     flow_id: int | None) -> str:
    """The one subscribe action for every tracker: a request per chunk of at most 10.

    One action, not one per chunk: whether a later subscribe action adds to the earlier ones
    or replaces them is not documented, and one action holding every request leaves the
    connection subscribed to every tracker under either behaviour. Retries and status
    refreshes send the same whole action again."""
    requests = []
    for start in range(0, len(trackers), MAX_TRACKERS):
        request: dict[str, Any] = {"type": "iot_monitor", "target": {
            "type": "selected", "tracker_ids": list(trackers[start:start + MAX_TRACKERS])},
            "rate_limit": rate_limit}
        if flow_id is not None:
            request["flow_id"] = flow_id
        requests.append(request)
    return json.dumps({"action": "subscribe", "hash": hash, "requests": requests})


def _queues(found: Any) -> dict[str, list[Any]] | None:
    """An item's ``nonnull_fields``/``all_fields`` as attribute -> queue. The seed's sample
    keys them by attribute (an object), its text calls them a "list of objects": both are
    read, the list as objects keyed by attribute whose values are queues or single entries."""
    if isinstance(found, dict):
        parts = [found]
    elif isinstance(found, list) and all(isinstance(part, dict) for part in found):
        parts = found
    else:
        return None
    out: dict[str, list[Any]] = {}
    for part in parts:
        for attribute, queue in part.items():
            entries = [queue] if isinstance(queue, dict) else queue
            if isinstance(entries, list):
                out.setdefault(str(attribute), []).extend(entries)
            else:
                out.setdefault(str(attribute), []).append(None)  # counted as bad below
    return out


class NavixyDecoder:
    """``positions``: per tracker, the newest ``msg_time`` of each attribute that an earlier
    run evaluated (from the state store). After a restart the server resends its whole
    window: entries up to those times rebuild the history (``history_only``) but are not
    evaluated again, so an incident already notified is not notified twice."""

    def __init__(self, source: str,
                 positions: dict[str, dict[str, float]] | None = None) -> None:
        self.source = source
        # tracker -> msg_time -> the attributes of that time already emitted
        self._seen: dict[str, dict[float, set[str]]] = {}
        self._times: dict[Any, float | None] = {}  # time text -> epoch seconds (``_time``)
        # tracker -> attribute -> msg_time text -> msg_time: the entries taken (``_tracker``)
        self._known: dict[str, dict[str, dict[Any, float]]] = {}
        self._floor = {t: dict(p) for t, p in (positions or {}).items()}
        self._newest: dict[str, dict[str, float]] = {t: dict(p)
                                                     for t, p in (positions or {}).items()}
        self._moved: set[str] = set()  # trackers whose position moved since last taken
        self._status: dict[str, str] = {}  # as last reported to the engine

    def take_positions(self) -> dict[str, str]:
        """Per tracker whose queues delivered something new since the last call, its
        position to save: ``{attribute: newest msg_time}`` as JSON."""
        out = {t: dump_json(self._newest[t], sort_keys=True) for t in sorted(self._moved)}
        self._moved.clear()
        return out

    def decode(self, frame: str | bytes) -> Decoded:
        text = as_text(frame)
        if text is None:
            return Decoded(problems=(f"frame is not UTF-8 text: {cut(frame)}",))
        if text[:1] == "{":  # the usual frame: no need to strip a copy of it first
            stripped = text
        else:
            stripped = text.strip()
            if stripped == "X" or not stripped:
                return EMPTY
            if not stripped.startswith(("{", "[")) and stripped.count("|") >= 2:
                return self._handshake(stripped)
        folded, values = _fold(stripped)
        if values:
            parsed, error = load_json(folded)
            if error is not None or not _unfold(parsed, values):
                parsed, error = load_json(stripped)  # folded in the wrong place: as it came
        else:
            parsed, error = load_json(stripped)
        if error is not None:
            return Decoded(problems=(error,))
        if not isinstance(parsed, dict):
            return Decoded(problems=(f"frame is not a JSON object: {cut(text)}",))
        kind = parsed.get("type")
        if kind == "response":
            return self._response(parsed, text)
        if kind == "error":
            found = parsed.get("status")
            status: dict[str, Any] = found if isinstance(found, dict) else {}
            code = status.get("code")
            description = str(status.get("description", ""))
            if not isinstance(code, int):
                return Decoded(problems=(f"error frame without a code: {cut(text)}",))
            notice = AuthFailed(code, description) if code in AUTH_CODES \
                else RequestFailed(code, description)
            return Decoded(notices=(notice,))
        if kind == "event":
            return self._event(parsed, text)
        return Decoded(problems=(f"frame of unknown type {cut(repr(kind), 40)}: {cut(text)}",))

    def _handshake(self, text: str) -> Decoded:
        parts = text.split("|")
        try:
            return Decoded(notices=(Handshake(int(parts[1])),))
        except ValueError:
            return Decoded(problems=(f"handshake without an interval: {cut(text)}",))

    def _response(self, parsed: dict[str, Any], text: str) -> Decoded:
        data = parsed.get("data")
        monitor = data.get("iot_monitor") if isinstance(data, dict) else None
        if monitor is None:
            return EMPTY  # the response to another subscription
        if not isinstance(monitor, dict):
            return Decoded(problems=(f"response without iot_monitor statuses: {cut(text)}",))
        values = monitor.get("value")
        if monitor.get("success") is False or not isinstance(values, dict):
            trackers = tuple(str(t) for t in values) if isinstance(values, dict) else ()
            return Decoded(notices=(SubscribeRejected(trackers),))
        events: list[Event] = []
        problems: list[str] = []
        for tracker, status in values.items():
            if status in STATUSES:
                self._status[str(tracker)] = status
                events.append(StatusChanged(self.source, str(tracker), status))
            else:
                problems.append(f"tracker {tracker} has unknown status {cut(status, 40)!r}")
        return Decoded(tuple(events), tuple(problems))

    def _event(self, parsed: dict[str, Any], text: str) -> Decoded:
        event, data = parsed.get("event"), parsed.get("data")
        if event == "logout":
            return Decoded(notices=(LoggedOut(str(data) if data else "session closed"),))
        if event == "lifecycle":
            if isinstance(data, dict) and isinstance(data.get("source_id"), int):
                return Decoded(notices=(Lifecycle(data["source_id"],
                                                  str(data.get("lifecycle_event", ""))),))
            return Decoded(problems=(f"lifecycle event of unexpected shape: {cut(text)}",))
        if event != "iot_monitor":
            return EMPTY  # state, state_batch, readings_batch: not subscribed by alertd
        items = data.get("iot_last_values") if isinstance(data, dict) else None
        if not isinstance(items, list):
            return Decoded(problems=(f"iot_monitor event without iot_last_values: {cut(text)}",))
        events: list[Event] = []
        problems: list[str] = []
        for item in items:
            problem = self._tracker(item, events)
            if problem:
                problems.append(f"{problem}: {excerpt(item)}")
        return Decoded(tuple(events), tuple(problems))

    def _tracker(self, item: Any, events: list[Event]) -> str | None:
        if not isinstance(item, dict) or not isinstance(item.get("tracker_id"), (int, str)):
            return "iot_monitor item without tracker_id"
        tracker = str(item["tracker_id"])
        entries: dict[float, dict[str, Any]] = {}
        srv_times: dict[float, float] = {}
        # per attribute, the msg_time texts of entries taken before: the server resends its
        # whole window with every event (384 entries of a 12-deep one, 16 of them new), and
        # one of those is skipped at once, before any other work
        known = self._known.get(tracker, {})
        kept: dict[str, dict[Any, float]] = {}  # what this event resends: known next time
        oldest = math.inf
        bad = 0
        times = self._times
        if len(times) > TIME_CACHE:
            times.clear()
        same: dict[str, Any] | None = None  # all_fields, to spot nonnull queues equal to it
        for queue_name in ("all_fields", "nonnull_fields"):
            found = item.get(queue_name, _NO_QUEUES)
            if found is same:  # nonnull_fields equal to all_fields, as ``_fold`` found
                continue
            queues = found if isinstance(found, dict) else _queues(found)
            if queues is None:
                return f"{queue_name} is neither an object nor a list of objects"
            oldest, bad = self._take(queues, same, known, kept, entries, srv_times, oldest, bad)
            if bad == 0 and queues is found:  # a queue equal to one already taken, entry for
                same = found  # entry, adds nothing (nor any bad entry to count)
        self._known[tracker] = kept
        if self._status.get(tracker, "normal") != "normal":
            # data comes only for trackers that are not blocked (seed page): proof that this
            # one is back, long before the next status refresh would say so
            self._status[tracker] = "normal"
            events.append(StatusChanged(self.source, tracker, "normal"))
        seen = self._seen.setdefault(tracker, {})
        floor = self._floor.pop(tracker, {})
        newest = self._newest.setdefault(tracker, {})
        for msg_time in sorted(entries):
            fields = entries[msg_time]
            already = seen.get(msg_time)
            if already is None:
                new = fields
                seen[msg_time] = set(fields)
            elif already.issuperset(fields):
                continue
            else:  # rare: a time some attributes of which came before, maybe skipped now
                new = {a: v for a, v in fields.items() if a not in already}
                already.update(new)
                newest_srv = _newest_srv_time(item, msg_time, times)
                if newest_srv is not None:
                    srv_times[msg_time] = newest_srv
            for attribute in new:
                if msg_time > newest.get(attribute, -math.inf):
                    newest[attribute] = msg_time
                    self._moved.add(tracker)
            done = {a: v for a, v in new.items() if msg_time <= floor.get(a, -math.inf)} \
                if floor else None
            if done:
                events.append(Message(self.source, tracker, msg_time, done,
                                      srv_times.get(msg_time), absent_is_null=False,
                                      history_only=True))
            if not done or len(done) < len(new):
                events.append(Message(self.source, tracker, msg_time,
                                      {a: v for a, v in new.items() if a not in done}
                                      if done else new,
                                      srv_times.get(msg_time), absent_is_null=False))
        if oldest < math.inf:  # forget what has left the server's window
            for msg_time in [t for t in seen if t < oldest]:
                del seen[msg_time]
        return f"{bad} queue entries without a valid msg_time" if bad else None


    def _take(self, queues: dict[str, Any], same: dict[str, Any] | None,
              known: dict[str, dict[Any, float]], kept: dict[str, dict[Any, float]],
              entries: dict[float, dict[str, Any]], srv_times: dict[float, float],
              oldest: float, bad: int) -> tuple[float, int]:
        """One of an item's two sets of queues into ``entries`` (the new entries' values by
        time), ``srv_times`` and ``kept`` (every entry's time, by text); the queues equal to
        those of ``same`` are skipped. Returns the oldest time seen and the bad entries."""
        times = self._times
        last_raw: Any = _NOTHING  # the new entry before: its time text, time and fields
        last_time, last_fields = 0.0, _NO_FIELDS
        last_srv: Any = _NOTHING  # ... and the srv_time text taken for that time
        last_srv_for = math.nan
        for attribute, queue in queues.items():
            if same is not None and same.get(attribute) == queue:
                continue
            if queue.__class__ is not list:
                queue = [queue] if isinstance(queue, dict) else [None]  # None: counted bad
            taken = known.get(attribute, _NONE_TAKEN)
            keep = kept.get(attribute)
            if keep is None:
                keep = kept[attribute] = {}
            for entry in queue:
                try:
                    raw = entry["msg_time"]  # (a subscript: quicker than ``get``)
                except KeyError:  # an object without a time: counted below
                    raw = None
                except TypeError:  # not an object (a list, text, a number, null)
                    bad += 1
                    continue
                try:
                    msg_time = taken.get(raw)
                except TypeError:  # not hashable (a list, an object): not a time
                    msg_time = None
                if msg_time is not None:
                    keep[raw] = msg_time
                    if msg_time < oldest:
                        oldest = msg_time
                    continue
                if raw == last_raw:  # the time of the new entry before (a message's
                    msg_time, fields = last_time, last_fields  # attributes, one by one)
                else:
                    msg_time = _time(times, raw)
                    if msg_time is None:
                        bad += 1
                        continue
                    if msg_time < oldest:
                        oldest = msg_time
                    found = entries.get(msg_time)
                    if found is None:
                        found = entries[msg_time] = {}
                    last_raw, last_time, last_fields = raw, msg_time, found
                    fields = found
                keep[raw] = msg_time  # in ``seen`` once this event is taken
                if fields.get(attribute) is None:
                    fields[attribute] = entry.get("value")
                srv_raw = entry.get("srv_time")
                if srv_raw != last_srv or msg_time != last_srv_for:  # else: taken just now
                    last_srv, last_srv_for = srv_raw, msg_time
                    srv = _time(times, srv_raw)
                    if srv is not None:
                        before = srv_times.get(msg_time)
                        if before is None or srv > before:
                            srv_times[msg_time] = srv
        return oldest, bad


def _fold(text: str) -> tuple[str, dict[str, Any]]:
    """The usual item's ``nonnull_fields`` and ``all_fields`` are the same text (queues
    without a gap), resent whole with every event (SPEC 4.2): that text is parsed once
    here, not twice in the frame. Returns ``text`` with both values of each such pair
    replaced by a stand-in string, and each stand-in's parsed value; (``text``, {}) when
    there is no such pair.

    A name found is a key when a colon follows it; the value after it, beginning with ``{``
    or ``[``, parsed alone, is a complete value that ends where its text ends, and the
    other, the same text at a value's place, is the same value: replacing both changes
    nothing else in the frame. A pair found where it is no item's keys (inside an entry's
    value, or the end of a longer escaped key) leaves a stand-in that ``_unfold`` does not
    find in its item's place: the frame is then parsed as it came. A pair that is not the
    same text is left as it is."""
    values: dict[str, Any] = {}
    parts: list[str] = []
    done = at = 0  # text before ``done`` is in ``parts``; the next name is looked for at ``at``
    while (key := text.find('"nonnull_fields"', at)) >= 0:
        at = key + 16
        start = _after_colon(text, at)
        if not start:
            continue
        other = text.find('"all_fields"', start)
        end = _comma_before(text, start, other) if other >= 0 else 0
        second = _after_colon(text, other + 12) if end else 0
        if second:  # nonnull_fields first
            first = start
        else:  # all_fields first
            other = text.rfind('"all_fields"', done, key)
            first = _after_colon(text, other + 12) if other >= 0 else 0
            end = _comma_before(text, first, key) if first else 0
            if not end:
                continue
            second = start
        value = text[first:end]
        if value[:1] not in ("{", "[") or not text.startswith(value, second):
            continue  # a number's text may begin a longer one: objects and arrays only
        parsed, error = load_json(value)
        if error is not None:
            continue
        stand_in = f"{_STAND_IN} {len(values)}"
        values[stand_in] = parsed
        quoted = f'"{stand_in}"'
        parts += (text[done:first], quoted, text[end:second], quoted)
        done = at = second + len(value)
    if not values:
        return text, {}
    parts.append(text[done:])
    return "".join(parts), values


def _after_colon(text: str, at: int) -> int:
    """Where the value begins after the key that ends at ``at``; 0 if no colon follows."""
    if text.startswith(":", at) and text[at + 1:at + 2] not in _SPACE:
        return at + 1
    colon = _COLON.match(text, at)
    return colon.end() if colon is not None else 0


def _comma_before(text: str, start: int, key: int) -> int:
    """Where the value that begins at ``start`` ends, when only a comma and white space
    part it from the key at ``key``; else 0."""
    comma = key - 1
    if text.startswith(",", comma) and text[comma - 1:comma] not in _SPACE:
        return comma if comma > start else 0
    comma = text.rfind(",", start, key)
    if comma < 0 or _COMMA.fullmatch(text, comma, key) is None:
        return 0
    end = comma
    while end > start and text[end - 1] in _SPACE:
        end -= 1
    return end


def _unfold(parsed: Any, values: dict[str, Any]) -> bool:
    """Each item's stand-in (in both its ``nonnull_fields`` and ``all_fields``, as
    ``_fold`` left them) replaced by its value, one object for both (``_tracker`` then
    takes it once); whether every stand-in was found so."""
    data = parsed.get("data") if isinstance(parsed, dict) else None
    items = data.get("iot_last_values") if isinstance(data, dict) else None
    if not isinstance(items, list):
        return False
    found = 0
    for item in items:
        if isinstance(item, dict):
            stand_in = item.get("all_fields")
            if stand_in.__class__ is str and stand_in in values \
                    and item.get("nonnull_fields") == stand_in:
                item["nonnull_fields"] = item["all_fields"] = values[stand_in]
                found += 1
    return found == len(values)


def _newest_srv_time(item: dict[str, Any], msg_time: float,
                     times: dict[Any, float | None]) -> float | None:
    """The newest ``srv_time`` of an item's entries of ``msg_time``, the skipped ones too."""
    found: float | None = None
    for queue_name in ("all_fields", "nonnull_fields"):
        for queue in (_queues(item.get(queue_name, {})) or {}).values():
            for entry in queue:
                if isinstance(entry, dict) and _time(times, entry.get("msg_time")) == msg_time:
                    srv = _time(times, entry.get("srv_time"))
                    if srv is not None and (found is None or srv > found):
                        found = srv
    return found


def _time(cache: dict[Any, float | None], raw: Any) -> float | None:
    """``parse_time`` through the decoder's cache of the texts seen: a 12-deep window names
    each message time once per attribute and is resent whole with every event. Most calls
    are for a new message's times, not in the cache: a KeyError raised and caught for each
    cost more than the parse (1.16 -> 0.80 us a new time)."""
    try:
        if raw in cache:
            return cache[raw]
    except TypeError:  # not hashable (a list, an object): not a time
        return None
    parsed = cache[raw] = parse_time(raw)
    return parsed
