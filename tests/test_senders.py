"""The apprise senders against real services: what arrives at the other end, or what would be
sent. ``ProcessSender`` (what the daemon uses: apprise in a child process it can kill) for
everything a local server can receive; ``send_blocking`` (the code that child runs) in this
process for Slack and Telegram, because ``responses`` patches this process only.

Email goes to a real aiosmtpd server on 127.0.0.1 (plain, and STARTTLS with a self-signed
certificate made here); json:// and form:// to a real ``http.server``. Slack and Telegram
cannot be reached from a test, so ``responses`` stands in for them at the HTTP boundary
(``requests``, which apprise uses); its patch is process-wide, so it also sees the request
made in apprise's worker thread while ``send_blocking(...)`` runs inside the ``with``.

Real clock here: apprise runs in a worker thread, which autojump_clock would race.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import html
import ipaddress
import json
import logging
import re
import socket
import ssl
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import responses
import trio
import trio.testing
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from requests import PreparedRequest

from alertd.senders.apprise_sender import send_blocking
from alertd.senders.outcome import DeliveryOutcome, Verdict
from alertd.senders.pool import ProcessSender

TITLE = "[FIRING] freezer: cold/room1 is -2.5 °C"
BODY = "freezer is firing for room1 (cold/room1)\ntemperature -2.5 °C, limit -18 °C"


async def send(url: str, title: str = TITLE, body: str = BODY, timeout: float = 20,
               notify_type: str = "info") -> DeliveryOutcome:
    """One send through a fresh ProcessSender, as the daemon makes it."""
    sender = ProcessSender(timeout=timeout)
    try:
        return await sender.send(url, title, body, notify_type)
    finally:
        await sender.aclose()


# ---------------------------------------------------------------- SMTP


class Inbox:
    """aiosmtpd handler: keeps every message it accepts, and whether it came over TLS."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.over_tls: list[bool] = []

    async def handle_DATA(self, server: SMTP, session: Session,  # noqa: N802 - aiosmtpd's name
                          envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        self.over_tls.append(session.ssl is not None)
        return "250 Message accepted for delivery"

    def messages(self) -> list[EmailMessage]:
        found = []
        for envelope in self.envelopes:
            raw = envelope.original_content or envelope.content
            assert isinstance(raw, bytes)
            message = email.message_from_bytes(raw, policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            found.append(message)
        return found


class LocalSMTP(Controller):
    """aiosmtpd's Controller on a free port: it binds port 0, then probes the real port."""

    def _trigger_server(self) -> None:
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    handler = Inbox()
    controller = LocalSMTP(handler, hostname="127.0.0.1", port=0)
    controller.start()
    try:
        yield handler, controller.port
    finally:
        controller.stop()


def text_of(message: EmailMessage, subtype: str = "plain") -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None, message.as_string()
    content = part.get_content()
    assert isinstance(content, str)
    return content.replace("\r\n", "\n")


def assert_has_body(text: str) -> None:
    """Every line of BODY is in ``text``, "°C" included (line breaks: see the test after
    this one)."""
    for line in BODY.splitlines():
        assert line in text


async def test_an_email_arrives_with_the_title_as_subject_and_the_body_as_text(
        inbox: tuple[Inbox, int]) -> None:
    handler, port = inbox
    url = f"mailto://127.0.0.1:{port}?from=alertd@example.com&to=oncall@example.com"
    assert (await send(url, TITLE, BODY, timeout=20)).delivered
    (envelope,) = handler.envelopes
    assert envelope.mail_from == "alertd@example.com"
    assert envelope.rcpt_tos == ["oncall@example.com"]
    (message,) = handler.messages()
    assert message["Subject"] == TITLE  # "°C" survives the header encoding
    assert message["To"].addresses[0].addr_spec == "oncall@example.com"
    assert message["From"].addresses[0].addr_spec == "alertd@example.com"
    assert_has_body(text_of(message))


async def test_an_email_with_two_recipients_reaches_both(inbox: tuple[Inbox, int]) -> None:
    handler, port = inbox
    url = (f"mailto://127.0.0.1:{port}?from=alertd@example.com"
           "&to=a@example.com,b@example.com")
    assert (await send(url, TITLE, BODY, timeout=20)).delivered
    # apprise sends one mail per recipient, over one SMTP session
    assert sorted(rcpt for e in handler.envelopes for rcpt in e.rcpt_tos) == [
        "a@example.com", "b@example.com"]
    messages = handler.messages()
    assert sorted(m["To"].addresses[0].addr_spec for m in messages) == [
        "a@example.com", "b@example.com"]
    for message in messages:
        assert message["Subject"] == TITLE
        assert_has_body(text_of(message))


async def test_an_email_body_keeps_its_line_breaks_and_angle_brackets(
        inbox: tuple[Inbox, int]) -> None:
    handler, port = inbox
    body = "freezer is firing for room1\ntemperature -2.5 °C > limit -18 °C\n<see runbook>"
    url = f"mailto://127.0.0.1:{port}?from=alertd@example.com&to=oncall@example.com"
    assert (await send(url, TITLE, body, timeout=20)).delivered
    (message,) = handler.messages()
    assert text_of(message).strip() == body  # today: "... room1 temperature ... °C"
    html_part = message.get_body(preferencelist=("html",))
    assert html_part is None or "<see runbook>" not in html_part.get_content()  # today: it is


def free_port() -> int:
    """A port on 127.0.0.1 that nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_dead_smtp_server_is_a_retry_with_apprise_s_reason(
        caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"mailto://127.0.0.1:{free_port()}?from=alertd@example.com&to=oncall@example.com"
    caplog.set_level(logging.DEBUG)
    outcome = await send(url, TITLE, BODY, timeout=60)
    assert outcome.verdict is Verdict.RETRY  # the server may come back
    # apprise answered the refused connection itself; our send timeout did not end it
    assert "no answer within" not in outcome.reason, outcome
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert "Traceback" not in capsys.readouterr().err
    # apprise says why (its warnings, collected in the child), without a traceback
    assert "Traceback" not in outcome.reason and "email" in outcome.reason.lower(), outcome


# ---------------------------------------------------------------- SMTP over STARTTLS


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by its own key, written as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "alertd test SMTP")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


@pytest.fixture
def tls_inbox(tmp_path: Path) -> Iterator[tuple[Inbox, int, Path]]:
    """An SMTP server that refuses mail until the client has said STARTTLS."""
    cert_file, key_file = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    handler = Inbox()
    controller = LocalSMTP(handler, hostname="127.0.0.1", port=0, tls_context=context,
                           require_starttls=True)
    controller.start()
    try:
        yield handler, controller.port, cert_file
    finally:
        controller.stop()


# Experiment (apprise 2.3.0 installed here, offline): STARTTLS to a local server with a self-signed
# certificate works. apprise's SMTP controller calls smtplib's starttls() with
# ssl.create_default_context(); `verify=no` turns off both the hostname check and the
# chain check. `mailtos://...&mode=starttls&verify=no` delivers over TLS; without
# `verify=no` the handshake fails (the server logs "tlsv1 alert unknown ca") and send
# returns False; plain `mailto://` never says STARTTLS and a server that requires it
# rejects the mail. Because create_default_context() loads OpenSSL's default paths at each
# call, trusting the certificate through SSL_CERT_FILE makes verification pass too.
MAIL = "from=alertd@example.com&to=oncall@example.com"


async def test_starttls_with_verify_no_delivers_over_tls(
        tls_inbox: tuple[Inbox, int, Path]) -> None:
    handler, port, _ = tls_inbox
    url = f"mailtos://127.0.0.1:{port}?{MAIL}&mode=starttls&verify=no"
    assert (await send(url, TITLE, BODY, timeout=20)).delivered
    assert handler.over_tls == [True]
    (message,) = handler.messages()
    assert message["Subject"] == TITLE
    assert_has_body(text_of(message))


async def test_starttls_checks_the_certificate_unless_told_not_to(
        tls_inbox: tuple[Inbox, int, Path]) -> None:
    handler, port, _ = tls_inbox
    url = f"mailtos://127.0.0.1:{port}?{MAIL}&mode=starttls"
    assert (await send(url, TITLE, BODY, timeout=20)).delivered is False
    assert handler.envelopes == []


async def test_starttls_verifies_a_certificate_the_system_trusts(
        tls_inbox: tuple[Inbox, int, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    handler, port, cert_file = tls_inbox
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
    url = f"mailtos://127.0.0.1:{port}?{MAIL}&mode=starttls"
    assert (await send(url, TITLE, BODY, timeout=20)).delivered
    assert handler.over_tls == [True]


async def test_plain_mailto_is_refused_by_a_server_that_requires_starttls(
        tls_inbox: tuple[Inbox, int, Path]) -> None:
    handler, port, _ = tls_inbox
    url = f"mailto://127.0.0.1:{port}?{MAIL}"
    assert (await send(url, TITLE, BODY, timeout=20)).delivered is False
    assert handler.envelopes == []


# ---------------------------------------------------------------- json:// and form://


class Recorder(BaseHTTPRequestHandler):
    """Keeps (path, content type, raw body) of every POST; answers ``status``."""

    posts: list[tuple[str, str, bytes]]
    status = 200

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length", 0))
        self.posts.append((self.path, self.headers.get("Content-Type", ""),
                           self.rfile.read(length)))
        self.send_response(self.status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[tuple[type[Recorder], int]]:
    handler = type("Hook", (Recorder,), {"posts": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield handler, server.server_port
    finally:
        server.shutdown()
        server.server_close()


def test_a_fast_clock_scales_the_wait_for_a_sending_process_to_start(
        recorder: tuple[type[Recorder], int]) -> None:
    """Under the demo's clock (3,000 clock seconds per real second) the 30 s a child has to
    start and import apprise are 10 real ms: too short, it is reported as not started. With
    the wait scaled (``start_timeout``, as ``app.run(time_scale=...)`` sets it) it sends."""
    from alertd.senders.pool import START_TIMEOUT

    hook, port = recorder
    rate = 3000.0

    async def once(start_timeout: float) -> DeliveryOutcome:
        sender = ProcessSender(timeout=20 * rate, start_timeout=start_timeout)
        try:
            return await sender.send(f"json://127.0.0.1:{port}/alerts", TITLE, BODY)
        finally:
            await sender.aclose()

    unscaled = trio.run(once, START_TIMEOUT, clock=trio.testing.MockClock(rate=rate))
    assert not unscaled.delivered and "did not start" in unscaled.reason
    scaled = trio.run(once, START_TIMEOUT * rate, clock=trio.testing.MockClock(rate=rate))
    assert scaled.delivered, scaled.reason
    assert len(hook.posts) == 1


async def test_json_posts_title_and_message(recorder: tuple[type[Recorder], int]) -> None:
    hook, port = recorder
    assert (await send(f"json://127.0.0.1:{port}/alerts", TITLE, BODY, timeout=20)).delivered
    ((path, content_type, raw),) = hook.posts
    assert path == "/alerts"
    assert content_type.startswith("application/json")
    posted = json.loads(raw)
    assert posted["title"] == TITLE
    assert posted["message"] == BODY
    assert posted["type"] == "info"


async def test_form_posts_title_and_message_url_encoded(
        recorder: tuple[type[Recorder], int]) -> None:
    hook, port = recorder
    assert (await send(f"form://127.0.0.1:{port}/alerts", TITLE, BODY, timeout=20)).delivered
    ((path, content_type, raw),) = hook.posts
    assert path == "/alerts"
    assert content_type.startswith("application/x-www-form-urlencoded")
    assert b"%C2%B0C" in raw  # "°" as UTF-8, percent-encoded
    posted = parse_qs(raw.decode("ascii"), strict_parsing=True)
    assert posted["title"] == [TITLE]
    assert posted["message"] == [BODY]


async def test_a_webhook_answering_500_is_a_failure(
        recorder: tuple[type[Recorder], int]) -> None:
    hook, port = recorder
    hook.status = 500
    outcome = await send(f"json://127.0.0.1:{port}/alerts", TITLE, BODY, timeout=20)
    assert outcome.verdict is Verdict.RETRY  # a 500 may pass
    assert len(hook.posts) == 1  # it was asked, and said no


@pytest.fixture
def silent_server() -> Iterator[tuple[int, list[socket.socket]]]:
    """Accepts TCP connections and never says a word."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield listener.getsockname()[1], accepted
    finally:
        listener.close()
        for connection in accepted:
            connection.close()


async def test_a_server_that_never_answers_costs_the_timeout_and_no_more(
        silent_server: tuple[int, list[socket.socket]]) -> None:
    port, accepted = silent_server
    sender = ProcessSender(timeout=2)
    await sender.warm()  # the process start is not part of a send's time
    start = trio.current_time()
    try:
        outcome = await sender.send(f"json://127.0.0.1:{port}/alerts", TITLE, BODY)
    finally:
        await sender.aclose()
    elapsed = trio.current_time() - start
    assert accepted, "the request never reached the silent server"
    # apprise would give up by itself after its 4 s read timeout: a killed child and this
    # reason show that ProcessSender's own 2 s answered (whatever the machine's load), and
    # not before its time
    assert outcome.verdict is Verdict.RETRY and sender.killed == 1
    assert outcome.reason == "no answer within 2 s; the send was ended (its process killed)"
    assert elapsed >= 2 - 0.01


def posted_json(request: PreparedRequest) -> Any:
    assert isinstance(request.body, (bytes, str))
    return json.loads(request.body)


# ---------------------------------------------------------------- Slack (faked at HTTP)

SLACK_URL = "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#ops"
SLACK_HOOK = "https://hooks.slack.com/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ"

# RequestsMock: a request to any URL not added fails the send, and leaving the block fails
# the test if an added URL was never requested. It forgets its calls on exit: assert inside.


async def test_slack_posts_title_and_body_to_the_webhook_of_the_token() -> None:
    with responses.RequestsMock() as fake:
        fake.add(responses.POST, SLACK_HOOK, body="ok", status=200)
        assert send_blocking(SLACK_URL, TITLE, BODY).delivered
        (call,) = fake.calls
        assert "/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ" in str(call.request.url)
        payload = posted_json(call.request)
    assert payload["channel"] == "#ops"
    (attachment,) = payload["attachments"]
    assert attachment["title"] == TITLE
    assert attachment["text"] == BODY


async def test_slack_answering_500_is_a_failure() -> None:
    with responses.RequestsMock() as fake:
        fake.add(responses.POST, SLACK_HOOK, body="internal_error", status=500)
        assert send_blocking(SLACK_URL, TITLE, BODY).delivered is False
        assert len(fake.calls) == 1


# ---------------------------------------------------------------- Telegram (faked at HTTP)

TG_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
TG_URL = f"tgram://{TG_TOKEN}/12345678"
TG_SEND = f"https://api.telegram.org/bot{TG_TOKEN}/sendMessage"

# What the Bot API accepts with parse_mode=HTML: '<' only opens a supported tag, '&' only
# opens an entity; anything else is "400 Bad Request: can't parse entities".
TG_TAG = re.compile(r"</?(b|strong|i|em|u|ins|s|strike|del|a|code|pre|span|tg-spoiler"
                    r"|tg-emoji|blockquote)(\s[^<>]*)?>")
TG_ENTITY = re.compile(r"&(lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")


def fake_telegram(request: PreparedRequest) -> tuple[int, dict[str, str], str]:
    payload = posted_json(request)
    text = payload["text"]
    if payload.get("parse_mode") == "HTML":
        for i, char in enumerate(text):
            if (char == "<" and not TG_TAG.match(text, i)
                    or char == "&" and not TG_ENTITY.match(text, i)):
                return 400, {}, json.dumps({
                    "ok": False, "error_code": 400,
                    "description": f"Bad Request: can't parse entities: "
                                   f"unexpected {char!r} at byte offset {i}"})
    return 200, {}, json.dumps({"ok": True, "result": {
        "message_id": 42, "date": 1767225600,
        "chat": {"id": payload["chat_id"], "type": "private"}, "text": text}})


def shown_by_telegram(text: str, parse_mode: str | None) -> str:
    """The text a Telegram user reads: tags dropped, entities decoded (for HTML)."""
    if parse_mode != "HTML":
        return text
    return html.unescape(TG_TAG.sub("", text))


async def test_telegram_sends_one_message_with_title_and_body_to_the_chat() -> None:
    # Experiment: with the chat id in the URL, apprise 2.3.0 calls sendMessage only (no
    # getMe first); any other request would hit an unregistered URL and fail the send.
    with responses.RequestsMock() as fake:
        fake.add_callback(responses.POST, TG_SEND, callback=fake_telegram)
        assert send_blocking(TG_URL, TITLE, BODY).delivered
        (call,) = fake.calls
        payload = posted_json(call.request)
    assert payload["chat_id"] == 12345678
    shown = shown_by_telegram(payload["text"], payload.get("parse_mode"))
    assert shown.replace("\r\n", "\n") == f"{TITLE}\n{BODY}"


async def test_telegram_delivers_a_title_with_less_than_and_ampersand() -> None:
    title = "[FIRING] freezer: room1 temperature < -18 °C & rising"
    with responses.RequestsMock() as fake:
        fake.add_callback(responses.POST, TG_SEND, callback=fake_telegram)
        delivered = send_blocking(TG_URL, title, BODY).delivered
        (call,) = fake.calls
        payload = posted_json(call.request)
    assert delivered  # today: 400 can't parse entities, so the alert never reaches anyone
    assert shown_by_telegram(payload["text"], payload.get("parse_mode")).startswith(title)


async def test_telegram_refusing_the_token_is_a_failure() -> None:
    with responses.RequestsMock() as fake:
        fake.add(responses.POST, TG_SEND, status=401, json={
            "ok": False, "error_code": 401, "description": "Unauthorized"})
        outcome = send_blocking(TG_URL, TITLE, BODY)
        assert len(fake.calls) == 1
    # a refused token cannot get better by itself: given up at once, with the reason, masked
    assert outcome.verdict is Verdict.PERMANENT, outcome
    assert outcome.reason.startswith("HTTP 401 Unauthorized"), outcome
    assert "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw" not in outcome.reason
