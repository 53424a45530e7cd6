"""Parsing of the ``sources:`` and ``channels:`` sections (SPEC sections 2, 4 and 6)."""

from __future__ import annotations

import re
import zoneinfo
from functools import lru_cache
from urllib.parse import urlsplit

from alertd.config import schema as s
from alertd.config.fields import Reader, suggest
from alertd.config.nodes import Mapping, Node, Scalar
from alertd.senders import alertmanager
from alertd.senders.apprise_sender import url_problem

SOURCE_TYPES = ("element", "navixy")
ELEMENT_KEYS = ("type", "url", "api_key", "subscribe", "preload", "ping_interval", "replay")
NAVIXY_KEYS = ("type", "url", "hash", "trackers", "rate_limit", "flow_id", "status_refresh")
CHANNEL_KEYS = ("urls", "alertmanager", "mute", "timezone", "resend")
_SUBSCRIBE = re.compile(r"(?:(?:devices|tags|streams)/[^/\s?#&]+/)?(?:readings|packets)")
_MUTE = re.compile(r"(?:(?P<days>[A-Za-z]{3}(?:[-,][A-Za-z]{3})*)\s+)?"
                   r"(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})")
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_source(reader: Reader, name: str, node: Node) -> s.Source | None:
    what = f"source '{name}'"
    m = reader.mapping(node, what)
    if m is None:
        return None
    if "type" not in m.items:
        reader.error(m.loc, f"{what} needs 'type' (one of {', '.join(SOURCE_TYPES)})")
        return None
    kind = reader.choice(m.items["type"], f"{what}: type", SOURCE_TYPES)
    if kind == "element":
        return _element(reader, name, m, what)
    if kind == "navixy":
        return _navixy(reader, name, m, what)
    return None


def _url(reader: Reader, node: Node, what: str) -> str | None:
    url = reader.string(node, what)
    if url is None:
        return None
    if url == "" and isinstance(node, Scalar) and node.from_env:
        return url  # lenient loading (offline commands): the variable is unset
    parts = urlsplit(url)
    shown = node.shown if isinstance(node, Scalar) else url
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        reader.error(node.loc, f"{what} must be a ws:// or wss:// URL, not '{shown}'")
        return None
    try:
        port = parts.port  # raises for a port that is no number of 0-65535
    except ValueError:
        port = 0
    if not parts.hostname or port == 0:
        reader.error(node.loc, f"{what} needs a host and, if it names a port, one of 1-65535, "
                               f"not '{shown}'")
        return None
    return url.rstrip("/") if not parts.query else url


def _element(reader: Reader, name: str, m: Mapping, what: str) -> s.ElementSource | None:
    reader.mapping(m, what, ELEMENT_KEYS, required=("api_key", "subscribe"))
    items = m.items
    url = _url(reader, items["url"], f"{what}: url") if "url" in items else s.ELEMENT_DEFAULT_URL
    api_key = reader.string(items["api_key"], f"{what}: api_key") if "api_key" in items \
        else None
    paths: list[str] = []
    ok = True
    if "subscribe" in items:
        written = reader.strings(items["subscribe"], f"{what}: subscribe")
        if written == ():
            reader.error(items["subscribe"].loc,
                         f"{what}: subscribe must list at least one socket path")
        for path in written or ():
            path = path.strip().strip("/")
            if not _SUBSCRIBE.fullmatch(path):
                reader.error(items["subscribe"].loc,
                             f"{what}: subscribe entry '{path}' is not an ELEMENT socket path "
                             "(write devices/ID/readings, tags/ID/packets, streams/ID/readings, "
                             "readings or packets)")
                ok = False
            elif path in paths:
                reader.error(items["subscribe"].loc, f"{what}: subscribe lists '{path}' twice")
                ok = False
            else:
                paths.append(path)
    preload: tuple[str, ...] = ()
    if "preload" in items:
        raw = reader.strings(items["preload"], f"{what}: preload") or ()
        preload = tuple(p.strip() for item in raw for p in item.split(",") if p.strip())
        for entry in preload:
            kinds = [k for k in ("readings", "packets") if any(p.endswith(k) for p in paths)]
            allowed = s.ELEMENT_PRELOADS["readings"]
            if entry not in allowed:
                reader.error(items["preload"].loc, f"{what}: unknown preload '{entry}'"
                                                   f"{suggest(entry, allowed)}; ELEMENT offers "
                                                   + ", ".join(allowed))
                ok = False
            elif kinds == ["packets"] and entry not in s.ELEMENT_PRELOADS["packets"]:
                reader.error(items["preload"].loc, f"{what}: preload '{entry}' is only "
                                                   "offered on readings sockets")
                ok = False
    ping = reader.duration(items["ping_interval"], f"{what}: ping_interval", positive=True) \
        if "ping_interval" in items else s.ELEMENT_PING_INTERVAL
    if ping is not None and ping >= 60:
        reader.error(items["ping_interval"].loc, f"{what}: ping_interval must be under 60s: "
                                                 "ELEMENT closes a socket after 60 s without "
                                                 "a ping")
        ping = None
    replay = reader.boolean(items["replay"], f"{what}: replay") if "replay" in items else True
    if None in (url, api_key, ping, replay) or not ok or not paths:
        return None
    assert url is not None and api_key is not None and ping is not None and replay is not None
    return s.ElementSource(m.loc, name, api_key, tuple(paths), url, preload, ping, replay)


def _navixy(reader: Reader, name: str, m: Mapping, what: str) -> s.NavixySource | None:
    reader.mapping(m, what, NAVIXY_KEYS, required=("hash", "trackers"))
    items = m.items
    url = _url(reader, items["url"], f"{what}: url") if "url" in items else s.NAVIXY_DEFAULT_URL
    hash_ = reader.string(items["hash"], f"{what}: hash") if "hash" in items else None
    trackers: list[int] = []
    ok = True
    if "trackers" in items:
        node = items["trackers"]
        nodes = (node,) if isinstance(node, Scalar) and node.value is not None \
            else reader.sequence(node, f"{what}: trackers")
        if nodes is None:
            ok = False
        elif not nodes:
            reader.error(items["trackers"].loc, f"{what}: trackers must list at least one "
                                                "tracker id")
            ok = False
        for node in nodes or ():
            tracker = reader.integer(node, f"{what}: tracker id", minimum=1)
            if tracker is None:
                ok = False
            elif tracker in trackers:
                reader.error(node.loc, f"{what}: tracker {tracker} is listed twice")
                ok = False
            else:
                trackers.append(tracker)
    rate_limit = "5s"
    if "rate_limit" in items:
        seconds = reader.duration(items["rate_limit"], f"{what}: rate_limit", positive=True)
        ok = ok and seconds is not None
        node = items["rate_limit"]
        if seconds is not None and seconds != int(seconds):
            reader.error(node.loc, f"{what}: rate_limit must be whole seconds (Navixy takes "
                                   "values such as 5s or 1m)")
            ok = False
        elif seconds is not None:
            rate_limit = f"{int(seconds)}s"
    flow_id = reader.integer(items["flow_id"], f"{what}: flow_id", minimum=1) \
        if "flow_id" in items else None
    refresh = reader.duration(items["status_refresh"], f"{what}: status_refresh",
                              positive=True) if "status_refresh" in items else 300.0
    if None in (url, hash_, refresh) or not ok or ("flow_id" in items and flow_id is None):
        return None
    assert url is not None and hash_ is not None and refresh is not None
    return s.NavixySource(m.loc, name, hash_, tuple(trackers), url, rate_limit, flow_id, refresh)


def parse_channel(reader: Reader, name: str, node: Node,
                  validate_urls: bool = True) -> s.Channel | None:
    what = f"channel '{name}'"
    url_node: Node = node
    mute: tuple[s.MuteWindow, ...] = ()
    tz = "UTC"
    resend: float | None = 60.0
    ok = True
    plain: tuple[str, ...] = ()  # the ``alertmanager:`` list, as written (http://...)
    if isinstance(node, Mapping):
        reader.mapping(node, what, CHANNEL_KEYS)
        if "urls" in node.items and "alertmanager" in node.items:
            reader.error(node.loc, f"{what}: give either urls or alertmanager, not both")
            return None
        if "alertmanager" in node.items:
            url_node = node.items["alertmanager"]
            plain = reader.strings(url_node, f"{what}: alertmanager") or ()
        elif "urls" in node.items:
            url_node = node.items["urls"]
        else:
            reader.error(node.loc, f"{what} needs 'urls' (or 'alertmanager', a list of "
                                   "Alertmanager addresses)")
            return None
        if "timezone" in node.items:
            tz_name = _timezone(reader, node.items["timezone"], f"{what}: timezone")
            ok = tz_name is not None
            tz = tz_name or tz
        if "mute" in node.items:
            windows = _mute(reader, node.items["mute"], f"{what}: mute")
            ok = ok and windows is not None
            mute = windows or ()
        if "resend" in node.items:
            resend = reader.duration(node.items["resend"], f"{what}: resend", positive=True)
            ok = ok and resend is not None
    if plain:
        urls: tuple[str, ...] | None = ()
        for text in plain:
            converted = alertmanager.from_http(text.strip())
            if converted is None:
                reader.error(url_node.loc, f"{what}: alertmanager lists addresses such as "
                                           f"http://127.0.0.1:9093, not '{text}'")
                ok = False
            else:
                urls = (*(urls or ()), converted)
    else:
        urls = reader.strings(url_node, f"{what}: urls" if url_node is not node else what)
    if urls is None:
        return None
    urls = tuple(url.strip() for url in urls)
    if not urls:
        reader.error(url_node.loc, f"{what} must name at least one URL")
        return None
    managers = [url for url in urls if alertmanager.is_alertmanager(url)]
    if managers and len(managers) != len(urls):
        reader.error(url_node.loc, f"{what}: alertmanager:// URLs cannot share a channel with "
                                   "other URLs (Alertmanager groups, mutes and repeats them "
                                   "itself): give them a channel of their own")
        ok = False
    if isinstance(node, Mapping) and not managers:
        for key in ("resend",):
            if key in node.items:
                reader.error(node.items[key].loc, f"{what}: {key} applies to Alertmanager "
                                                  "channels only")
                ok = False
    if managers and mute:
        reader.error(url_node.loc, f"{what}: an Alertmanager channel has no mute (quiet "
                                   "hours belong in Alertmanager: time_intervals, silences)")
        ok = False
    for url in urls if validate_urls else ():
        problem = alertmanager.url_problem(url) if alertmanager.is_alertmanager(url) \
            else url_problem(url)
        if problem is not None:
            reader.error(url_node.loc, f"{what}: the URL {problem}")
            ok = False
    if not ok or resend is None:
        return None
    return s.Channel(node.loc, name, urls, mute, tz, resend)


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _timezone(reader: Reader, node: Node, what: str) -> str | None:
    name = reader.string(node, what)
    if name is None:
        return None
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        shown = node.shown if isinstance(node, Scalar) else name
        reader.error(node.loc, f"{what}: unknown time zone '{shown}'{suggest(name, _zones())} "
                               "(use an IANA name such as Europe/Berlin)")
        return None
    return name


def _mute(reader: Reader, node: Node, what: str) -> tuple[s.MuteWindow, ...] | None:
    texts = reader.strings(node, what)
    if texts is None:
        return None
    windows = []
    for text in texts:
        match = _MUTE.fullmatch(text.strip())
        start = _minutes(match.group("start")) if match else None
        end = _minutes(match.group("end")) if match else None
        days = _days(match.group("days")) if match and match.group("days") else frozenset()
        if match is None or start is None or end is None or days is None or start == end:
            reader.error(node.loc, f"{what}: '{text}' is not a quiet window (write HH:MM-HH:MM, "
                                   "e.g. \"22:00-07:00\", optionally after days: "
                                   "\"Sat-Sun 00:00-24:00\" or \"Mon,Wed 12:00-13:00\")")
            return None
        windows.append(s.MuteWindow(start, end, days))
    return tuple(windows)


def _minutes(text: str) -> int | None:
    hours, minutes = (int(part) for part in text.split(":"))
    if minutes > 59 or hours > 24 or (hours == 24 and minutes):
        return None
    return hours * 60 + minutes


def _days(text: str) -> frozenset[int] | None:
    days: set[int] = set()
    for part in text.lower().split(","):
        first, _, last = part.partition("-")
        if first not in _DAYS or (last and last not in _DAYS):
            return None
        a, b = _DAYS.index(first), _DAYS.index(last or first)
        span = range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)]
        days.update(day + 1 for day in span)
    return frozenset(days)


HTTP_KEYS = ("listen", "token", "open_reads")


def parse_http(reader: Reader, node: Node) -> tuple[tuple[str, int] | None, s.HttpAccess]:
    """``http: HOST:PORT``, or ``http: {listen: HOST:PORT, token: ..., open_reads: bool}``:
    the address, and who may read the page and write silences (``web.py``)."""
    if not isinstance(node, Mapping):
        return listen_address(reader, node, "http"), s.HttpAccess()
    reader.mapping(node, "http", HTTP_KEYS, required=("listen",))
    items = node.items
    address = listen_address(reader, items["listen"], "http: listen") \
        if "listen" in items else None
    token = reader.string(items["token"], "http: token") if "token" in items else None
    if token is not None and token and len(token) < 16:
        reader.error(items["token"].loc, "http: token must be at least 16 characters (it is "
                                         "the only thing between a browser and your silences)")
    open_reads = reader.boolean(items["open_reads"], "http: open_reads") \
        if "open_reads" in items else False
    return address, s.HttpAccess(token or None, bool(open_reads))


def listen_address(reader: Reader, node: Node, what: str) -> tuple[str, int] | None:
    text = reader.string(node, what)
    if text is None:
        return None
    host, _, port = text.rpartition(":")
    if not port.isdigit() or not 0 <= int(port) < 65536:  # 0: any free port (logged)
        shown = node.shown if isinstance(node, Scalar) else text
        reader.error(node.loc, f"{what} must be HOST:PORT such as 127.0.0.1:9464, not "
                               f"'{shown}'")
        return None
    return (host.strip("[]") or "127.0.0.1", int(port))
