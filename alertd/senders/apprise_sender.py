"""The apprise edge: the only module of alertd that imports apprise.

It validates channel URLs offline (``url_problem``) with apprise's own parser, the same
code that sends, so ``alertd check`` accepts exactly what apprise can use, and it sends
(``send_blocking``): the daemon runs that in a child process (``alertd.senders.child``)
that it can kill when a send overruns, because a thread cannot be stopped.
apprise's own messages often repeat the URL, secrets included: only those that do not are
passed on, with any part of the URL masked.
"""

from __future__ import annotations

import http
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from alertd.senders.outcome import DeliveryOutcome

CONSOLE_URL = "console://"


@contextmanager
def _apprise_warnings() -> Iterator[list[str]]:
    """The warnings apprise logs while the block runs, kept out of the logs (they may quote
    the URL). ``logging`` is imported here, as apprise is: ``alertd check`` needs neither."""
    import logging

    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.WARNING:
                messages.append(record.getMessage())

    collect = Collect(logging.DEBUG)
    logger = logging.getLogger("apprise")
    logger.addHandler(collect)
    propagate, logger.propagate = logger.propagate, False
    try:
        yield messages
    finally:
        logger.removeHandler(collect)
        logger.propagate = propagate


@lru_cache(maxsize=1)
def known_schemes() -> frozenset[str]:
    import apprise

    schemes: set[str] = set()
    for service in apprise.Apprise().details()["schemas"]:
        for key in ("protocols", "secure_protocols"):
            value = service.get(key) or ()
            schemes.update([value] if isinstance(value, str) else value)
    return frozenset(schemes)


def scheme_of(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else ""


def _instantiate(url: str) -> tuple[object | None, list[str]]:
    """apprise's plugin for ``url`` (None when apprise cannot use it) and the warnings it
    logged while trying, which are not passed on to the logs (they may quote the URL)."""
    import apprise

    with _apprise_warnings() as logged:
        plugin = apprise.Apprise.instantiate(url)
    return plugin, logged


def _hint(scheme: str, url: str) -> str:
    """What to change, for the mistakes apprise's own message does not explain."""
    query = url.split("?", 1)[1] if "?" in url else ""
    if scheme in ("mailto", "mailtos") and "from=" not in query:
        return ("it has no sender: add ?from=alerts@example.com (or write "
                "user:password@host, which sends as user@host)")
    if scheme == "tgram":
        token = url.split("://", 1)[1].split("/", 1)[0].removeprefix("bot")
        if not re.fullmatch(r"[0-9]+:[A-Za-z0-9_-]+", token):
            return ("the bot token (the part after tgram://) must be written NUMBER:KEY, "
                    "as @BotFather gives it; write tgram://BOT_TOKEN/CHAT_ID")
        return "write tgram://BOT_TOKEN/CHAT_ID (the chat id is a number or @channel)"
    return ""


def url_problem(url: str) -> str | None:
    """Why apprise cannot use ``url``, in words that never contain its secrets; None if fine.
    Answers are remembered between runs (``url_cache``): apprise's plugins load only when a
    URL is new to this apprise version."""
    from alertd.senders import url_cache

    if url.strip() == CONSOLE_URL:
        return None
    known, answer = url_cache.lookup(url)
    if known:
        return answer
    answer = _url_problem(url)
    url_cache.remember(url, answer)
    return answer


def _url_problem(url: str) -> str | None:
    """Why apprise cannot use ``url``, in words that never contain its secrets; None if fine.

    apprise itself decides: a URL it can instantiate is valid, whatever its scheme (it turns
    many ``https://`` web-hook URLs, Slack's and Discord's among them, into its services).
    Other schemes are suggested only when apprise does not know the scheme at all."""
    if url.strip() == CONSOLE_URL:
        return None
    scheme = scheme_of(url)
    if scheme == "console":
        return f"must be exactly {CONSOLE_URL} (it takes no host, path or options)"
    if not scheme:
        return "is not a URL (it needs a scheme such as mailto://, slack:// or tgram://)"
    plugin, messages = _instantiate(url)
    if plugin is not None:
        return None
    if scheme in ("http", "https"):
        return (f"is an {scheme}:// address that apprise does not recognise as a service's "
                "web hook (it knows Slack's, Discord's, Teams' and others); to post JSON to "
                f"any web hook write json{'s' if scheme == 'https' else ''}://HOST/PATH")
    schemes = known_schemes()
    if scheme not in schemes:
        import difflib  # only for a mistake

        close = difflib.get_close_matches(scheme, sorted(schemes) + ["console"], n=1)
        hint = f" (did you mean '{close[0]}://'?)" if close else ""
        return f"uses '{scheme}://', which is not an apprise service{hint}"
    secrets = [part for part in re.split(r"[/:@?&=#,]+", url.split("://", 1)[1]) if len(part) >= 4]
    reasons = []
    for message in messages:
        if "://" in message:
            continue
        for secret in secrets:
            message = message.replace(secret, "***")
        reasons.append(message.strip().rstrip(".:").strip())
    hint = _hint(scheme, url)
    reasons += [hint] if hint else []
    reason = f": {'; '.join(reasons)}" if reasons else ""
    return f"is not a valid {scheme}:// URL for apprise{reason}"


_URL_PARTS = re.compile(r"[/:@?&=#,]+")
_SECRET_KEYS = re.compile(r"pass|secret|token|key|auth|hash|sig", re.IGNORECASE)


def url_secrets(url: str) -> list[str]:
    """The secret parts of an apprise URL, as apprise's own privacy rendering knows them:
    the parts of ``url()`` that ``url(privacy=True)`` hides (tokens, passwords, keys), never
    the scheme, host, path words or options. A URL apprise cannot use falls back to its
    password and the values of options named like secrets (token=, key=, password=)."""
    from urllib.parse import parse_qsl, unquote, urlsplit

    plugin = None if url.strip() == CONSOLE_URL or "://" not in url else _instantiate(url)[0]
    found: set[str] = set()
    if plugin is not None:
        full: str = plugin.url()  # type: ignore[attr-defined]
        private: str = plugin.url(privacy=True)  # type: ignore[attr-defined]
        shown = set(_URL_PARTS.split(private))
        found.update(unquote(part) for part in _URL_PARTS.split(full) if part not in shown)
    else:
        try:
            parts = urlsplit(url)
            password = parts.password
            query = parse_qsl(parts.query)
        except ValueError:
            password, query = None, []
        found.update(x for x in [password] if x)
        found.update(value for key, value in query if _SECRET_KEYS.search(key) and value)
    pieces = {piece for secret in found for piece in secret.split(":") if len(piece) >= 6}
    return sorted(found | pieces)


def secret_parts(url: str) -> list[str]:
    """``url_secrets``, longest first (a longer secret is masked before a piece of it)."""
    return sorted(url_secrets(url), key=len, reverse=True)


def mask(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


_answers: list[tuple[int, str | None]] = []  # (HTTP status, Retry-After) seen during a send
_answers_lock = threading.Lock()


def _watch_http() -> None:
    """Note the status and ``Retry-After`` of every HTTP answer apprise's plugins get
    (through ``requests``): apprise logs a status code in words at most, never the header."""
    import requests

    if getattr(requests.Session.send, "_alertd_watch", False):
        return
    original = requests.Session.send

    def send(self: Any, request: Any, **kwargs: Any) -> Any:
        response = original(self, request, **kwargs)
        with _answers_lock:
            _answers.append((int(response.status_code), response.headers.get("Retry-After")))
        return response

    send._alertd_watch = True  # type: ignore[attr-defined]
    setattr(requests.Session, "send", send)


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """``Retry-After`` as seconds from ``now``: delta-seconds or an HTTP date (RFC 9110)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    import email.utils  # only for a date (5 ms of `alertd check` at the top)

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


def classify(delivered: bool, timed_out: bool, answers: list[tuple[int, str | None]],
             reasons: list[str], now: float) -> DeliveryOutcome:
    """The outcome of one apprise call from what it returned, the HTTP answers its plugin
    got, and its (masked) warnings. Pure, so the rules are tested as a table."""
    if delivered:
        return DeliveryOutcome.ok()
    said = "; ".join(reasons)
    if answers:
        status, header = answers[-1]
        words = f"HTTP {status} {_phrase(status)}".strip() + (f" ({said})" if said else "")
        if status in (429, 503):
            return DeliveryOutcome.retry(words, retry_after_seconds(header, now))
        if 400 <= status < 500 and status != 408:
            return DeliveryOutcome.permanent(words)
        return DeliveryOutcome.retry(words)
    if timed_out:
        return DeliveryOutcome.retry(said or "apprise gave up waiting for the service")
    return DeliveryOutcome.retry(said or "apprise reported a failure without a reason")


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


_clients: dict[str, Any] = {}


def send_blocking(url: str, title: str, body: str, notify_type: str = "info") -> DeliveryOutcome:
    """Send one message to one URL and say what came of it (blocking: alertd runs it in a
    child process, ``alertd.senders.child``, that it can kill). One ``Apprise`` object per
    URL (apprise paces the sends on one object). One send at a time per process: the HTTP
    answers are noted process-wide."""
    import apprise

    client = _clients.get(url)
    if client is None:
        client = apprise.Apprise()
        if not client.add(url):
            return DeliveryOutcome.permanent(url_problem(url) or "apprise cannot use this URL")
        _clients[url] = client
    _watch_http()
    with _answers_lock:
        _answers.clear()
    with _apprise_warnings() as logged:
        # Our words are plain text: without TEXT, apprise reads them as HTML, and e-mail's
        # plain part loses every line break (and a "<" in a value would become markup).
        result = client.notify(title=title, body=body or title, notify_type=notify_type,
                               body_format=apprise.NotifyFormat.TEXT)
    with _answers_lock:
        answers = list(_answers)
    secrets = secret_parts(url)
    reasons = [mask(message, secrets).strip().rstrip(".:").strip()
               for message in logged]
    timed_out = getattr(result, "status", None) == apprise.AppriseResultStatus.TIMEOUT
    return classify(bool(result), timed_out, answers, [r for r in reasons if r], time.time())
