"""The daemon's web page at ``/``: current alerts, silences, sources. Server-rendered HTML,
no JavaScript: plain forms (GET to filter, POST to write), each answered with a redirect
back to the page.

Access (``http: {listen, token, open_reads}``):

- reads (``/``, ``/alerts``, ``/explain``) answer clients on loopback only, unless
  ``open_reads: true``; ``/metrics`` and ``/healthz`` answer everyone, as before;
- writes (``POST /silences``, ``POST /silences/ID/expire``) need the configured token: in
  the form's ``token`` field (for curl), or in the ``alertd_token`` cookie that ``POST
  /login`` sets from the page's login form. The cookie is ``HttpOnly`` and
  ``SameSite=Strict``: a browser sends it only with requests made from this page, never
  with a form posted from another site (that is the CSRF protection; kept simple on
  purpose). Without a configured token there are no writes (403). A refused write is 403.

``render_page`` is pure (values in, HTML out); ``daemon_handlers`` binds it to a running
daemon (engine, store, clock).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from html import escape
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

from alertd.alerts_schema import alert_entry, alerts_document
from alertd.config import schema as s
from alertd.http_server import Answer, Guard, Handler, Request, Route
from alertd.model import SHOWN_STATES
from alertd.notify.message import duration_text
from alertd.notify.silences import Silence, alert_values, covering

if TYPE_CHECKING:
    from alertd.engine import Engine
    from alertd.store import Store

log = logging.getLogger("alertd.http")
COOKIE = "alertd_token"
PRIVATE = ("/", "/alerts", "/explain")  # reads: loopback unless open_reads
MATCH_KEYS = ("rule", "source", "entity", "severity")
HTML = "text/html; charset=utf-8"


@dataclass(frozen=True, slots=True)
class AlertRow:
    rule: str
    entity: str
    state: str
    since: float
    severity: str
    silenced: str | None  # the silence's id


@dataclass(frozen=True, slots=True)
class PageView:
    now: float
    alerts: tuple[AlertRow, ...]
    silences: tuple[Silence, ...]
    runtime_silences: frozenset[str]  # ids that can be expired here (the store's)
    sources: Mapping[str, bool]
    filters: Mapping[str, str]
    logged_in: bool
    writable: bool  # a token is configured
    message: str = ""


def _time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def filtered(alerts: Iterable[AlertRow], filters: Mapping[str, str]) -> list[AlertRow]:
    """Alerts whose rule, entity and state contain the filters' text (state: equals)."""
    rule, entity, state = (filters.get(k, "").strip() for k in ("rule", "entity", "state"))
    return [a for a in alerts if rule in a.rule and entity in a.entity
            and (not state or a.state == state)]


def render_page(view: PageView) -> str:
    e = escape
    rows = filtered(view.alerts, view.filters)
    out = ["<!doctype html><html lang=en><head><meta charset=utf-8>",
           "<title>alertd</title><style>body{font-family:sans-serif;margin:1.5em}"
           "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .6em}"
           ".firing{color:#b00}.pending{color:#a60}.silenced{color:#777}</style></head><body>",
           f"<h1>alertd</h1><p>at {e(_time(view.now))}</p>"]
    if view.message:
        out.append(f"<p id=message><strong>{e(view.message)}</strong></p>")
    out.append("<h2>Sources</h2><ul id=sources>")
    for name, up in sorted(view.sources.items()):
        out.append(f"<li class={'up' if up else 'down'}>{e(name)}: {'up' if up else 'DOWN'}"
                   "</li>")
    out.append("</ul><h2>Alerts</h2><form method=get action='/' id=filter>")
    for key in ("rule", "entity"):
        out.append(f"<label>{key} <input name={key} value='{e(view.filters.get(key, ''))}'>"
                   "</label> ")
    out.append("<label>state <select name=state>")
    for state in ("", *SHOWN_STATES):
        chosen = " selected" if view.filters.get("state", "") == state else ""
        out.append(f"<option value='{state}'{chosen}>{state or 'any'}</option>")
    out.append("</select></label> <button>filter</button></form>")
    if not rows:
        out.append("<p id=no-alerts>no alerts</p>")
    else:
        out.append("<table id=alerts><tr><th>rule<th>entity<th>state<th>since<th>severity"
                   "<th>silenced</tr>")
        for a in rows:
            silenced = f"silenced by {e(a.silenced)}" if a.silenced else ""
            out.append(f"<tr class='{e(a.state)}{' silenced' if a.silenced else ''}'>"
                       f"<td>{e(a.rule)}<td>{e(a.entity)}<td class=state>{e(a.state)}"
                       f"<td>{e(_time(a.since))} ({e(duration_text(view.now - a.since))})"
                       f"<td>{e(a.severity)}<td class=silence>{silenced}</tr>")
        out.append("</table>")
    out.append("<h2>Silences</h2>")
    if not view.silences:
        out.append("<p id=no-silences>no silences</p>")
    else:
        out.append("<table id=silences><tr><th>id<th>match<th>ends<th>comment<th></tr>")
        for x in view.silences:
            match = " ".join(f"{k}={v}" for k, v in x.match.items())
            button = ""
            if view.logged_in and x.id in view.runtime_silences:
                button = (f"<form method=post action='/silences/{quote(x.id)}/expire'>"
                          "<button>expire</button></form>")
            out.append(f"<tr><td>{e(x.id)}<td>{e(match)}<td>{e(_time(x.ends))}"
                       f"<td>{e(x.comment)}<td>{button}</tr>")
        out.append("</table>")
    if not view.writable:
        out.append("<p>Adding silences here needs <code>http: {token: ...}</code> in the "
                   "rule file.</p>")
    elif not view.logged_in:
        out.append("<form method=post action='/login' id=login><label>token "
                   "<input type=password name=token></label> <button>log in</button></form>")
    else:
        out.append("<h3>Add a silence</h3><form method=post action='/silences' id=add>")
        for key in MATCH_KEYS:
            out.append(f"<label>{key} <input name={key}></label> ")
        out.append("<label>for <input name=duration value=1h></label> "
                   "<label>comment <input name=comment></label> "
                   "<button>add silence</button></form>")
    out.append("</body></html>")
    return "\n".join(out)


# ---- the daemon's handlers --------------------------------------------------------------


def is_loopback(peer: str) -> bool:
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return bool(address.is_loopback or (mapped is not None and mapped.is_loopback))


def _text(status: int, text: str) -> Answer:
    return status, "text/plain; charset=utf-8", text + "\n", []


def _back(message: str = "", cookie: str | None = None) -> Answer:
    headers = [("Location", "/" + (f"?{urlencode({'message': message})}" if message else ""))]
    if cookie is not None:
        headers.append(("Set-Cookie", f"{COOKIE}={cookie}; HttpOnly; SameSite=Strict; "
                                      "Path=/"))
    return 303, "text/plain", "", headers


def access_guard(access: s.HttpAccess) -> Guard:
    def guard(request: Request) -> Answer | None:
        if request.method == "POST":
            if request.path == "/login":
                return None  # the token is checked by the handler
            if not _token_ok(access, request):
                return _text(403, "writes need the token of http: in the rule file")
            return None
        if request.path in PRIVATE and not access.open_reads and not is_loopback(request.peer):
            return _text(403, "reads from other hosts need http: {open_reads: true}")
        return None
    return guard


def _token_ok(access: s.HttpAccess, request: Request) -> bool:
    if not access.token:
        return False
    given = request.form.get("token") or request.cookies.get(COOKIE, "")
    return hmac.compare_digest(given.encode(), access.token.encode())


def daemon_handlers(config: s.Config, engine: Callable[[], Engine | None], store: Store,
                    now: Callable[[], float]) -> tuple[dict[str, Handler], Route]:
    """The page's handlers, and the ``/alerts`` route (``alerts_schema.py``)."""
    access = config.http_access
    rules = {rule.name: rule for rule in config.rules}
    planned = [Silence(str(x.loc), x.match, x.starts.timestamp(), x.ends.timestamp(),
                       x.comment) for x in config.silences]

    def silences(at: float) -> tuple[list[Silence], set[str]]:
        stored = [Silence(x.id, x.match, x.starts, x.ends, x.comment)
                  for x in store.silences(now=at)]
        return [*stored, *planned], {x.id for x in stored}

    def rows(at: float, active: list[Silence]) -> list[AlertRow]:
        current = engine()
        found = []
        for alert in (current.alerts() if current else []):
            cfg = rules.get(alert.rule)
            severity = cfg.severity if cfg else ""
            labels = cfg.labels if cfg else {}
            silence = covering(active, alert_values(alert.rule, alert.entity, severity, labels),
                               at)
            found.append(AlertRow(alert.rule, alert.entity, alert.state, alert.since, severity,
                                  silence.id if silence else None))
        return found

    def page(request: Request) -> Answer:
        if request.method != "GET":
            return _text(405, "GET the page; forms POST to /silences and /login")
        at = now()
        active, runtime = silences(at)
        current = engine()
        view = PageView(at, tuple(rows(at, active)), tuple(x for x in active if x.starts <= at),
                        frozenset(runtime), current.sources_up() if current else {},
                        request.query, _token_ok(access, request), bool(access.token),
                        request.query.get("message", ""))
        return 200, HTML, render_page(view), []

    def alerts() -> tuple[str, str]:  # a plain route: rendered once a second at most
        at = now()
        active, _ = silences(at)
        return "application/json", alerts_document("running", (
            alert_entry(a.rule, a.entity, a.state, a.since, a.silenced, a.severity,
                        rules[a.rule].labels if a.rule in rules else {})
            for a in rows(at, active)))

    def explain(request: Request) -> Answer:
        from alertd.explain_text import explanation_json

        entity = request.query.get("entity", "")
        if "/" not in entity:
            return _text(400, "explain?entity=SOURCE/ID[&rule=NAME]")
        current = engine()
        if current is None:
            return _text(503, "the engine is starting")
        at = now()
        active, _ = silences(at)
        found = explanation_json(current.explain(entity, at), config, active, at,
                                 request.query.get("rule") or None)
        return 200, "application/json", json.dumps(found, indent=1, default=str) + "\n", []

    def login(request: Request) -> Answer:
        if request.method != "POST":
            return _text(405, "POST the token")
        if not _token_ok(access, request):
            return _back("wrong token")
        return _back("logged in", request.form.get("token", ""))

    def add(request: Request) -> Answer:
        from alertd.config.fields import parse_duration

        if request.method != "POST":
            return _text(405, "POST a form: rule, source, entity, severity, duration, comment")
        match = {k: request.form[k].strip() for k in MATCH_KEYS
                 if request.form.get(k, "").strip()}
        length = parse_duration(request.form.get("duration", "").strip() or "-")
        if not match:
            return _back("a silence needs at least one matcher")
        if not length or length <= 0:
            return _back("write the duration as 45m, 2h or 1d")
        at = now()
        try:
            silence = store.add_silence(match, at, at + length,
                                        request.form.get("comment", "").strip(), at)
        except sqlite3.Error as error:
            log.error("http: could not add a silence: %s", error)
            return _text(503, "the state file is busy; try again")
        log.info("http: silence %s added: %s for %s", silence.id,
                 " ".join(f"{k}={v}" for k, v in match.items()), duration_text(length))
        return _back(f"silence {silence.id} added")

    def expire(request: Request) -> Answer:
        parts = request.path.strip("/").split("/")
        if request.method != "POST" or len(parts) != 3 or parts[2] != "expire":
            return _text(404, "POST /silences/ID/expire")
        try:
            done = store.expire_silence(parts[1], now())
        except sqlite3.Error as error:
            log.error("http: could not expire a silence: %s", error)
            return _text(503, "the state file is busy; try again")
        if done:
            log.info("http: silence %s expired", parts[1])
        return _back(f"silence {parts[1]} expired" if done else f"no active silence "
                                                                 f"{parts[1]}")

    return {"/": page, "/explain": explain, "/login": login, "/silences": add,
            "/silences/": expire}, alerts
