"""The Alertmanager edge: ``alertmanager://HOST[:PORT][/PREFIX]`` (``alertmanagers://`` for
HTTPS) posts the body, a JSON list of alerts built by ``alertd.notify.alertmanager``, to
``/api/v2/alerts`` of one Alertmanager, with the standard library (no apprise).

It runs where apprise sends run, in a child process that the daemon kills when a send
overruns (``alertd.senders.child``): a receiver that trickles its answer cannot hold a send
past its deadline. ``user:password@`` in the URL is sent as HTTP basic authentication and
never appears in a reason.
"""

from __future__ import annotations

import base64
from urllib.parse import unquote, urlsplit

from alertd.senders.outcome import DeliveryOutcome

SCHEMES = ("alertmanager://", "alertmanagers://")  # = config.schema.ALERTMANAGER_SCHEMES; not
# imported from there: the sending child process must start without the config package
DEFAULT_PORT = 9093
API_PATH = "/api/v2/alerts"


def is_alertmanager(url: str) -> bool:
    return url.startswith(SCHEMES)


def url_problem(url: str) -> str | None:
    """Why ``url`` is not a usable alertmanager:// URL (never quoting its password)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "is not a valid alertmanager:// URL (the port must be a number 1-65535)"
    if not parts.hostname:
        return ("is not a valid alertmanager:// URL: it needs a host, as in "
                "alertmanager://127.0.0.1:9093")
    if parts.query or parts.fragment:
        return "is not a valid alertmanager:// URL: it takes no ?options or #fragment"
    if port == 0:
        return "is not a valid alertmanager:// URL (the port must be a number 1-65535)"
    return None


def from_http(url: str) -> str | None:
    """``http://h:p/x`` -> ``alertmanager://h:p/x`` (the ``alertmanager:`` list form of a
    channel); None when ``url`` is not http(s)."""
    for plain, ours in (("http://", "alertmanager://"), ("https://", "alertmanagers://")):
        if url.startswith(plain):
            return ours + url[len(plain):].rstrip("/")
    return None


def endpoint(url: str) -> tuple[bool, str, int, str, dict[str, str]]:
    """(https, host, port, path, headers) of ``url``'s ``/api/v2/alerts``."""
    parts = urlsplit(url)
    secure = parts.scheme == "alertmanagers"
    headers = {"Content-Type": "application/json", "User-Agent": "alertd"}
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    port = parts.port or DEFAULT_PORT
    return secure, parts.hostname or "", port, parts.path.rstrip("/") + API_PATH, headers


def where(url: str) -> str:
    """The URL without its credentials, for the operator."""
    secure, host, port, path, _ = endpoint(url)
    return f"{'https' if secure else 'http'}://{host}:{port}{path}"


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def send_blocking(url: str, body: str, timeout: float = 10.0) -> DeliveryOutcome:
    """POST ``body`` (the JSON list of alerts) to one Alertmanager. 2xx: delivered; 400/422
    (Alertmanager refused the alerts themselves) and 401/403/404: permanent; anything else,
    and a refused or broken connection: retry (``Retry-After`` passed on).

    ``http.client`` and ``ssl`` are imported here, by the sending child process: the config
    checks that use this module's URL functions (``alertd check``) go without them (20 ms)."""
    import http.client
    import ssl

    secure, host, port, path, headers = endpoint(url)
    connection: http.client.HTTPConnection
    if secure:
        connection = http.client.HTTPSConnection(host, port, timeout=timeout,
                                                 context=ssl.create_default_context())
    else:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
    shown = where(url)
    try:
        connection.request("POST", path, body=body.encode(), headers=headers)
        answer = connection.getresponse()
        text = answer.read(300).decode("utf-8", "replace").strip()
        status = answer.status
        retry_after = _retry_after(answer.getheader("Retry-After"))
    except (OSError, http.client.HTTPException) as error:  # a time-out is an OSError
        return DeliveryOutcome.retry(f"Alertmanager {shown}: {type(error).__name__}: {error}")
    finally:
        connection.close()
    if 200 <= status < 300:
        return DeliveryOutcome.ok()
    said = f"Alertmanager {shown} answered HTTP {status}" + (f": {text}" if text else "")
    if status in (400, 401, 403, 404, 422):
        return DeliveryOutcome.permanent(said)
    return DeliveryOutcome.retry(said, retry_after)
