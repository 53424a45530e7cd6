"""The apprise edge: the only module of alertd that imports apprise.

For now it validates channel URLs offline (``url_problem``) with apprise's own parser, the
same code that will later send, so ``alertd check`` accepts exactly what apprise can use.
apprise's own messages often repeat the URL, secrets included: only those that do not are
passed on, with any part of the URL masked.
"""

from __future__ import annotations

import difflib
import functools
import logging
import re
from functools import lru_cache

import trio

CONSOLE_URL = "console://"


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            self.messages.append(record.getMessage())


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


def url_problem(url: str) -> str | None:
    """Why apprise cannot use ``url``, in words that never contain its secrets; None if fine."""
    if url.strip() == CONSOLE_URL:
        return None
    scheme = scheme_of(url)
    if scheme == "console":
        return f"must be exactly {CONSOLE_URL} (it takes no host, path or options)"
    if not scheme:
        return "is not a URL (it needs a scheme such as mailto://, slack:// or tgram://)"
    schemes = known_schemes()
    if scheme not in schemes:
        close = difflib.get_close_matches(scheme, sorted(schemes) + ["console"], n=1)
        hint = f" (did you mean '{close[0]}://'?)" if close else ""
        return f"uses '{scheme}://', which is not an apprise service{hint}"
    import apprise

    collect = _Collect()
    logger = logging.getLogger("apprise")
    logger.addHandler(collect)
    propagate, logger.propagate = logger.propagate, False
    try:
        plugin = apprise.Apprise.instantiate(url)
    finally:
        logger.removeHandler(collect)
        logger.propagate = propagate
    if plugin is not None:
        return None
    secrets = [part for part in re.split(r"[/:@?&=#,]+", url.split("://", 1)[1]) if len(part) >= 4]
    reasons = []
    for message in collect.messages:
        if "://" in message:
            continue
        for secret in secrets:
            message = message.replace(secret, "***")
        reasons.append(message.strip().rstrip(".:").strip())
    reason = f": {'; '.join(reasons)}" if reasons else ""
    return f"is not a valid {scheme}:// URL for apprise{reason}"


class AppriseSender:
    """Delivers to apprise URLs, one ``Apprise`` object per URL (apprise sleeps between sends
    on one object, and a slow URL must not hold up the others), each ``notify()`` in a worker
    thread so the event loop never blocks."""

    def __init__(self, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self._clients: dict[str, object] = {}

    def _client(self, url: str) -> object:
        import apprise

        client = self._clients.get(url)
        if client is None:
            client = apprise.Apprise()
            client.add(url)
            self._clients[url] = client
        return client

    def send_blocking(self, url: str, title: str, body: str) -> bool:
        """Send one message to one URL; True when apprise reports success."""
        import apprise

        client = self._client(url)
        # Our words are plain text: without TEXT, apprise reads them as HTML, and e-mail's
        # plain part loses every line break (and a "<" in a value would become markup).
        result = client.notify(title=title, body=body or title,  # type: ignore[attr-defined]
                               body_format=apprise.NotifyFormat.TEXT)
        return bool(result)

    async def send(self, url: str, title: str, body: str) -> bool:
        with trio.move_on_after(self.timeout):
            return await trio.to_thread.run_sync(
                functools.partial(self.send_blocking, url, title, body), abandon_on_cancel=True)
        return False
