"""The sources' WebSocket client (RFC 6455): the handshake with h11, frames by hand.

Why not trio-websocket's client: its receive path costs ~18 us per message on this machine
(a reader task, wsproto's frame parser, a memory channel between them), which was more than
alertd's whole evaluation of a reading; here each ``receive_some`` (64 KiB, up to 1 MiB
under a flood) is parsed in one pass (~0.5 us per 430-byte frame, docs/performance.md) and
everything it completed is handed on at once. The servers that alertd's tests and
simulator run are trio-websocket's, and its exception types are the ones raised here
(``ConnectionClosed`` with a ``CloseReason``, ``ConnectionRejected`` with the HTTP status,
``HandshakeError``), so the reconnect logic classifies both alike.

What it does, and no more (alertd only receives, and sends a few small messages):

- ``connect(url)``: TCP (TLS for ``wss://``, the system's trust store), the upgrade request,
  the ``101`` checked (``Upgrade``, ``Connection``, ``Sec-WebSocket-Accept``); any other
  answer is ``ConnectionRejected(status, headers, body)``; a failure to connect or a broken
  answer is ``HandshakeError`` from the cause. No extension is offered, so no frame may set
  an RSV bit; no subprotocol.
- One reader at a time (``get_message``, ``received``): a server's ping is answered with
  its pong while reading, and a pong wakes the ``ping`` it answers (and every earlier one).
- Protocol errors close the socket with the RFC's code and raise ``ConnectionClosed`` with
  it: 1002 (a masked, reserved or badly fragmented frame), 1007 (a text message that is not
  UTF-8), 1009 (a message over ``max_message``). A server's close is answered and raised
  with the server's code and reason; a socket that ends without one is 1006. Messages
  received before the end are still returned first.
- A send that was interrupted (cancelled, or the peer gone) leaves a frame half-written:
  the socket counts as closed (1006) from then on rather than write after it.
"""

from __future__ import annotations

import os
import ssl
import struct
from collections import deque
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from urllib.parse import quote, urlsplit

import h11
import trio
from trio_websocket import (
    CloseReason,
    ConnectionClosed,
    ConnectionRejected,
    HandshakeError,
)
from wsproto.utilities import generate_accept_token, generate_nonce

TEXT, BINARY, CONTINUATION, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA
NORMAL, NO_STATUS, ABNORMAL = 1000, 1005, 1006  # close codes (RFC 6455 section 7.4.1)
PROTOCOL_ERROR, INVALID_DATA, TOO_BIG = 1002, 1007, 1009
REJECTED_BODY = 65536  # bytes of a refused handshake's body kept for the error
# A read asks for at most this much while less than this came at once: asking for more
# costs a read ~8 us more (the interpreter's buffer of that size, allocated and shrunk, is
# too big for the heap and is mapped and unmapped), worth it only under a flood
QUIET_READ = 65536
_U16 = struct.Struct("!H").unpack_from
_U64 = struct.Struct("!Q").unpack_from


class _ProtocolError(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


def _mask(payload: bytes) -> bytes:
    """A client frame's masking key followed by the payload XORed with it (section 5.3)."""
    key = os.urandom(4)
    n = len(payload)
    if not n:
        return key
    keys = (key * (n // 4 + 1))[:n]
    masked = int.from_bytes(payload, "big") ^ int.from_bytes(keys, "big")
    return key + masked.to_bytes(n, "big")


def client_frame(opcode: int, payload: bytes) -> bytes:
    """One whole, masked frame."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    return head + _mask(payload)


def _close_payload(code: int, reason: str = "") -> bytes:
    return b"" if code == NO_STATUS else code.to_bytes(2, "big") + reason.encode()[:123]


class WebSocket:
    """An open client socket; see the module docstring. Made by ``connect``."""

    def __init__(self, stream: trio.abc.Stream, buffered: bytes, max_message: int,
                 receive_size: int) -> None:
        self._stream = stream
        self._buffer = bytearray(buffered)
        self._unparsed = bool(buffered)
        self._max_message = max_message
        self._receive_size = receive_size  # the most a read asks for, under a flood
        self._quiet_size = min(receive_size, QUIET_READ)  # what it asks for otherwise
        self._read_size = self._quiet_size  # the next read's (``_fill``)
        self._ready: deque[str | bytes] = deque()
        self._parts: list[bytes] = []  # a fragmented message's frames so far
        self._part_opcode = 0  # its opcode (TEXT or BINARY); 0: none in progress
        self._part_size = 0
        self._send_lock = trio.Lock()
        self._pings: dict[bytes, trio.Event] = {}  # payload -> its waiter, oldest first
        self._closed: CloseReason | None = None  # once set, the socket is over
        self._close_sent = False
        self._broken = False  # a send was interrupted: nothing more is written

    @property
    def closed(self) -> CloseReason | None:
        """Why the socket ended; None while it is open."""
        return self._closed

    # ---- receiving --------------------------------------------------------------------------

    async def get_message(self) -> str | bytes:
        """The next message, waiting for it; ``ConnectionClosed`` once none is left."""
        while not self._ready:
            await self._fill()
        return self._ready.popleft()

    def received(self, limit: int) -> list[str | bytes]:
        """Messages already received, at most ``limit``, without waiting."""
        ready = self._ready
        if len(ready) <= limit:
            taken = list(ready)
            ready.clear()
            return taken
        return [ready.popleft() for _ in range(limit)]

    async def _fill(self) -> None:
        """Read once from the stream and parse what came; raises when the socket is over."""
        if self._closed is not None:
            raise ConnectionClosed(self._closed)
        buffer = self._buffer
        if self._unparsed:  # what came with the handshake's answer
            self._unparsed = False
        else:
            try:
                data = await self._stream.receive_some(self._read_size)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                data = b""
            if not data:
                await self._end(CloseReason(ABNORMAL, "the connection was lost"))
                raise ConnectionClosed(self._closed)
            buffer += data
            # a read that brought QUIET_READ or more: a flood, the next one takes all it can
            self._read_size = self._receive_size if len(data) >= QUIET_READ \
                else self._quiet_size
        replies: list[bytes] = []
        try:
            used = self._parse(buffer, replies)
        except _ProtocolError as error:
            await self._end(CloseReason(error.code, error.reason))
            if not self._ready:  # else the messages before the error come first
                raise ConnectionClosed(self._closed) from None
            return
        if used:
            del buffer[:used]
        for reply in replies:  # pongs, and the answer to a close, in the order they came
            try:
                await self._send_frame(reply, replying=True)
            except ConnectionClosed:
                break
        if self._closed is not None:
            await trio.aclose_forcefully(self._stream)
            if not self._ready:  # else the messages before the close come first
                raise ConnectionClosed(self._closed)

    def _parse(self, buffer: bytearray, replies: list[bytes]) -> int:
        """Take the complete frames at the start of ``buffer``; return the bytes used."""
        ready = self._ready
        size = len(buffer)
        at = 0
        while size - at >= 2 and self._closed is None:
            first, second = buffer[at], buffer[at + 1]
            length = second & 0x7F
            start = at + 2
            if length == 126:
                if size - start < 2:
                    break
                length = _U16(buffer, start)[0]
                start += 2
            elif length == 127:
                if size - start < 8:
                    break
                length = _U64(buffer, start)[0]
                start += 8
            if second & 0x80 or first & 0x70:
                raise _ProtocolError(PROTOCOL_ERROR, "a masked frame" if second & 0x80
                                     else "a frame with an RSV bit set")
            opcode = first & 0x0F
            if opcode >= CLOSE:
                if length > 125 or not first & 0x80:
                    raise _ProtocolError(PROTOCOL_ERROR, "a fragmented or long control frame")
            elif length + self._part_size > self._max_message:
                raise _ProtocolError(TOO_BIG, f"a message of more than {self._max_message} "
                                     "bytes")
            end = start + length
            if end > size:
                break
            at = end
            if opcode == TEXT and first & 0x80 and not self._part_opcode:
                try:  # the usual frame: a whole text message
                    ready.append(buffer[start:end].decode())
                except UnicodeDecodeError:
                    raise _ProtocolError(INVALID_DATA, "a text message that is not UTF-8"
                                         ) from None
                continue
            self._frame(first & 0x80, opcode, bytes(buffer[start:end]), replies)
        return at

    def _frame(self, fin: int, opcode: int, payload: bytes, replies: list[bytes]) -> None:
        """Any frame but a whole text message in one frame."""
        if opcode >= CLOSE:  # short and whole (``_parse``)
            if opcode == PING:
                replies.append(client_frame(PONG, payload))
            elif opcode == PONG:
                self._ponged(payload)
            elif opcode == CLOSE:
                self._closing(payload, replies)
            else:
                raise _ProtocolError(PROTOCOL_ERROR, f"an unknown opcode {opcode}")
            return
        if opcode == CONTINUATION:
            if not self._part_opcode:
                raise _ProtocolError(PROTOCOL_ERROR, "a continuation without a message")
        elif opcode in (TEXT, BINARY):
            if self._part_opcode:
                raise _ProtocolError(PROTOCOL_ERROR, "a new message inside a fragmented one")
            self._part_opcode = opcode
        else:
            raise _ProtocolError(PROTOCOL_ERROR, f"an unknown opcode {opcode}")
        self._part_size += len(payload)  # within max_message (``_parse``)
        self._parts.append(payload)
        if not fin:
            return
        data = b"".join(self._parts)
        text = self._part_opcode == TEXT
        self._parts, self._part_opcode, self._part_size = [], 0, 0
        if not text:
            self._ready.append(data)
            return
        try:
            self._ready.append(data.decode())
        except UnicodeDecodeError:
            raise _ProtocolError(INVALID_DATA, "a text message that is not UTF-8") from None

    def _closing(self, payload: bytes, replies: list[bytes]) -> None:
        """The server's close frame: answered with its code, and the socket is over."""
        if len(payload) == 1:
            raise _ProtocolError(PROTOCOL_ERROR, "a close frame of one byte")
        code = _U16(payload, 0)[0] if payload else NO_STATUS
        try:
            reason = payload[2:].decode()
        except UnicodeDecodeError:
            raise _ProtocolError(INVALID_DATA, "a close reason that is not UTF-8") from None
        if not self._close_sent:
            replies.append(client_frame(CLOSE, _close_payload(code)))
            self._close_sent = True
        self._closed = CloseReason(code, reason or None)
        self._wake_pings()

    # ---- sending ----------------------------------------------------------------------------

    async def send_message(self, message: str | bytes) -> None:
        """One text (``str``) or binary message, as one frame."""
        if isinstance(message, str):
            await self._send_frame(client_frame(TEXT, message.encode()))
        else:
            await self._send_frame(client_frame(BINARY, bytes(message)))

    async def ping(self, payload: bytes | None = None) -> None:
        """Send a ping and wait for its pong (which only a reader's ``get_message`` sees)."""
        if payload is None:
            payload = os.urandom(4)
        if payload in self._pings:
            raise ValueError(f"a ping with payload {payload!r} is already waiting")
        waiter = self._pings[payload] = trio.Event()
        try:
            await self._send_frame(client_frame(PING, payload))
            await waiter.wait()
        finally:
            self._pings.pop(payload, None)
        if self._closed is not None:
            raise ConnectionClosed(self._closed)

    def _ponged(self, payload: bytes) -> None:
        """A pong: its ping, and every ping sent before it, is answered (section 5.5.3)."""
        if payload not in self._pings:
            return  # unsolicited: a heartbeat, nothing to answer
        for sent in list(self._pings):
            self._pings.pop(sent).set()
            if sent == payload:
                break

    def _wake_pings(self) -> None:
        for waiter in self._pings.values():
            waiter.set()

    async def _send_frame(self, frame: bytes, replying: bool = False) -> None:
        """Write one frame; once the socket is over, only the answers to what came before
        (``replying``) and our close go out."""
        if self._broken or self._closed is not None and not replying and not (
                self._close_sent and frame[0] & 0x0F == CLOSE):
            raise ConnectionClosed(self._closed)
        async with self._send_lock:
            done = False
            try:
                await self._stream.send_all(frame)
                done = True
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                pass
            finally:
                if not done:  # half a frame may be on the wire: nothing may follow it
                    self._broken = True
                    if self._closed is None:
                        self._closed = CloseReason(ABNORMAL, "a send was interrupted")
                        self._wake_pings()
        if not done:
            raise ConnectionClosed(self._closed)

    # ---- ending -----------------------------------------------------------------------------

    async def _end(self, reason: CloseReason) -> None:
        """The socket is over for ``reason``: tell the server when it can still hear it."""
        if self._closed is None:
            self._closed = reason
            self._wake_pings()
            if reason.code != ABNORMAL and not self._close_sent:
                self._close_sent = True
                try:
                    await self._send_frame(client_frame(CLOSE, _close_payload(
                        reason.code, reason.reason or "")))
                except ConnectionClosed:
                    pass
        await trio.aclose_forcefully(self._stream)

    async def aclose(self, code: int = NORMAL, reason: str = "", wait: float = 5.0) -> None:
        """Close: send ``code``, wait up to ``wait`` seconds for the server's close (the
        messages meanwhile are dropped), then close the stream."""
        try:
            if self._closed is None and not self._close_sent:
                self._close_sent = True
                with trio.move_on_after(wait):
                    await self._send_frame(client_frame(CLOSE, _close_payload(code, reason)))
                    while self._closed is None:
                        self._ready.clear()
                        await self._fill()
        except ConnectionClosed:
            pass
        finally:
            if self._closed is None:
                self._closed = CloseReason(code, reason or None)
                self._wake_pings()
            await trio.aclose_forcefully(self._stream)


# ---- opening ----------------------------------------------------------------------------------


def _target(url: str) -> tuple[str, int, str, str, bool]:
    """``(host, port, Host header, request target, TLS)`` of a ws:// or wss:// URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss"):
        raise ValueError("a WebSocket URL starts with ws:// or wss://")
    secure = parts.scheme == "wss"
    host = parts.hostname
    if not host:
        raise ValueError("a WebSocket URL needs a host")
    port = parts.port or (443 if secure else 80)
    shown = f"[{host}]" if ":" in host else host
    header = shown if parts.port is None else f"{shown}:{parts.port}"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    # what a request line may not hold (a space, a non-ASCII letter) percent-encoded; what
    # is encoded already, and every delimiter, as written
    return host, port, header, quote(target, safe="/?&=%:@!$'()*+,;~[]"), secure


async def connect(url: str, *, max_message: int, receive_size: int = 65536,
                  ssl_context: ssl.SSLContext | None = None) -> WebSocket:
    """An open socket to ``url``; see the module docstring for what it raises."""
    host, port, header, target, secure = _target(url)
    try:
        if secure:
            stream: trio.abc.Stream = await trio.open_ssl_over_tcp_stream(
                host, port, ssl_context=ssl_context or ssl.create_default_context(),
                https_compatible=True)
        else:
            stream = await trio.open_tcp_stream(host, port)
    except OSError as error:
        raise HandshakeError from error
    try:
        buffered = await _handshake(stream, header, target, receive_size)
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    return WebSocket(stream, buffered, max_message, receive_size)


async def _handshake(stream: trio.abc.Stream, host: str, target: str, receive_size: int
                     ) -> bytes:
    """Send the upgrade request and read its answer; return the bytes after the ``101``."""
    nonce = generate_nonce()
    http = h11.Connection(h11.CLIENT)
    request = h11.Request(method="GET", target=target, headers=[
        (b"Host", host.encode("idna")), (b"Upgrade", b"websocket"),
        (b"Connection", b"Upgrade"), (b"Sec-WebSocket-Key", nonce),
        (b"Sec-WebSocket-Version", b"13")])
    try:
        await stream.send_all(http.send(request) or b"")
        while True:
            event = http.next_event()
            if event is h11.NEED_DATA:
                http.receive_data(bytes(await stream.receive_some(receive_size)))
                continue
            if isinstance(event, h11.InformationalResponse):
                if event.status_code == 101:
                    _check_accept(event.headers, nonce)
                    return http.trailing_data[0]
                continue  # 100 Continue and the like: the answer is still to come
            if isinstance(event, h11.Response):
                body = await _body(http, stream, receive_size)
                raise ConnectionRejected(event.status_code, tuple(event.headers), body)
            raise HandshakeError  # h11.ConnectionClosed: the server hung up
    except (OSError, trio.BrokenResourceError, trio.ClosedResourceError,
            h11.ProtocolError) as error:
        cause = error.__cause__  # a TLS failure: the certificate, say, not trio's wrapper
        raise HandshakeError from cause if isinstance(cause, ssl.SSLError) else error


def _check_accept(headers: Iterable[tuple[bytes, bytes]], nonce: bytes) -> None:
    found = {name.lower(): value for name, value in headers}
    tokens = [t.strip().lower() for t in found.get(b"connection", b"").split(b",")]
    if found.get(b"upgrade", b"").lower() != b"websocket" or b"upgrade" not in tokens:
        raise HandshakeError("the server's 101 lacks 'Upgrade: websocket' or "
                             "'Connection: Upgrade'")
    if found.get(b"sec-websocket-accept") != generate_accept_token(nonce):
        raise HandshakeError("the server's 101 has a wrong Sec-WebSocket-Accept")
    if b"sec-websocket-extensions" in found:
        raise HandshakeError("the server chose an extension alertd did not offer")


async def _body(http: h11.Connection, stream: trio.abc.Stream, receive_size: int) -> bytes:
    """A refused handshake's body, its first ``REJECTED_BODY`` bytes."""
    body = bytearray()
    with trio.move_on_after(5):
        while True:
            event = http.next_event()
            if event is h11.NEED_DATA:
                http.receive_data(bytes(await stream.receive_some(receive_size)))
            elif isinstance(event, h11.Data):
                body += event.data[:REJECTED_BODY - len(body)]
            else:
                break  # the end of the message, or of the connection
    return bytes(body)


@asynccontextmanager
async def open_websocket(url: str, *, max_message: int, receive_size: int = 65536,
                         close_wait: float = 5.0) -> AsyncIterator[WebSocket]:
    """``connect``, and close on the way out (waiting ``close_wait`` for the server's
    close at most)."""
    ws = await connect(url, max_message=max_message, receive_size=receive_size)
    try:
        yield ws
    finally:
        await ws.aclose(wait=close_wait)
