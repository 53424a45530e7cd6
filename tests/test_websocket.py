"""The sources' WebSocket client (``alertd/sources/websocket.py``) against real servers on
127.0.0.1: trio-websocket's server for what a well-behaved server does, and a raw TCP server
that writes exactly the bytes a test gives it (split frames, fragments, protocol errors)
and records the client's frames, unmasked."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trio
import trio.testing
import trio_websocket
from hypothesis import given, settings
from hypothesis import strategies as st

from alertd.sources.reconnect import describe, open_socket
from alertd.sources.websocket import WebSocket, client_frame, connect, open_websocket

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX = 1 << 20


def frame(payload: bytes, opcode: int = 1, fin: bool = True, rsv: int = 0,
          masked: bool = False) -> bytes:
    """A server's frame, as written by a test (masked only to break the rules)."""
    n = len(payload)
    first = (0x80 if fin else 0) | rsv | opcode
    mask_bit = 0x80 if masked else 0
    if n < 126:
        head = bytes((first, mask_bit | n))
    elif n < 65536:
        head = bytes((first, mask_bit | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((first, mask_bit | 127)) + n.to_bytes(8, "big")
    return head + (b"\0\0\0\0" + payload if masked else payload)


def unmask_all(data: bytes) -> list[tuple[int, bytes]]:
    """The client's frames in ``data``: (opcode, payload)."""
    out, at = [], 0
    while at + 2 <= len(data):
        first, second = data[at], data[at + 1]
        assert second & 0x80, "a client frame must be masked"
        n, at = second & 0x7F, at + 2
        if n == 126:
            n, at = int.from_bytes(data[at:at + 2], "big"), at + 2
        elif n == 127:
            n, at = int.from_bytes(data[at:at + 8], "big"), at + 8
        key, at = data[at:at + 4], at + 4
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(data[at:at + n]))
        out.append((first & 0x0F, payload))
        at += n
    return out


@dataclass
class RawServer:
    """Answers the upgrade (``answer`` replaces the 101 when given), writes ``script``'s
    pieces one after another (``pause`` seconds apart), then keeps reading the client's
    bytes until it hangs up (or ``hang_up`` once the script is written)."""

    script: list[bytes] = field(default_factory=list)
    answer: bytes | None = None
    after_101: bytes = b""  # written with the 101, in the same send
    pause: float = 0.0
    hang_up: bool = False
    received: bytearray = field(default_factory=bytearray)
    done: trio.Event = field(default_factory=trio.Event)
    port: int = 0

    async def handler(self, stream: trio.SocketStream) -> None:
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = await stream.receive_some(65536)
            if not chunk:
                return
            request += chunk
        key = next(line.split(b":", 1)[1].strip() for line in request.split(b"\r\n")
                   if line.lower().startswith(b"sec-websocket-key:"))
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        await stream.send_all(self.answer if self.answer is not None else (
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            + self.after_101))
        try:
            for piece in self.script:
                await stream.send_all(piece)
                if self.pause:
                    await trio.sleep(self.pause)
            if not self.hang_up:
                while chunk := await stream.receive_some(65536):
                    self.received += chunk
        except trio.BrokenResourceError:
            pass
        finally:
            await stream.aclose()
            self.done.set()

    def frames(self) -> list[tuple[int, bytes]]:
        return unmask_all(bytes(self.received))


@asynccontextmanager
async def serving(server: RawServer) -> AsyncIterator[str]:
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(trio.serve_tcp, server.handler, 0)
        server.port = listeners[0].socket.getsockname()[1]
        yield f"ws://127.0.0.1:{server.port}/api/v1/readings/socket?auth=k%20x"
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def websocket_server(handler: Callable[[trio_websocket.WebSocketRequest], object]
                           ) -> AsyncIterator[str]:
    async with trio.open_nursery() as nursery:
        server = await nursery.start(trio_websocket.serve_websocket, handler, "127.0.0.1", 0,
                                     None)
        yield f"ws://127.0.0.1:{server.port}/v2/event/subscription?a=1"
        nursery.cancel_scope.cancel()


async def read_all(ws: WebSocket) -> tuple[list[str | bytes], int | None]:
    """Every message until the socket ends, and its close code."""
    got: list[str | bytes] = []
    try:
        while True:
            got.append(await ws.get_message())
    except trio_websocket.ConnectionClosed as closed:
        return got, closed.reason.code if closed.reason else None


# ---- against trio-websocket's server ----------------------------------------------------------


async def test_messages_both_ways_with_a_trio_websocket_server() -> None:
    heard: list[str | bytes] = []
    paths: list[str] = []
    big = "é" * 300_000  # 600 KB: many reads of 64 KiB

    async def handler(request: trio_websocket.WebSocketRequest) -> None:
        paths.append(request.path)
        ws = await request.accept()
        heard.append(await ws.get_message())
        for message in ("one", b"\x00\xff", big, "two"):
            await ws.send_message(message)
        heard.append(await ws.get_message())
        await ws.aclose(4001, "bye now")

    async with websocket_server(handler) as url:
        async with open_websocket(url, max_message=MAX) as ws:
            await ws.send_message("hello")
            first = await ws.get_message()
            await ws.send_message(b"\x01\x02")
            rest, code = await read_all(ws)
    assert paths == ["/v2/event/subscription?a=1"]
    assert heard == ["hello", b"\x01\x02"]
    assert [first, *rest] == ["one", b"\x00\xff", big, "two"]
    assert code == 4001


async def test_the_server_close_code_and_reason_come_after_the_messages_before_it() -> None:
    async def handler(request: trio_websocket.WebSocketRequest) -> None:
        ws = await request.accept()
        for n in range(5):
            await ws.send_message(f"m{n}")
        await ws.aclose(1008, "key revoked")

    async with websocket_server(handler) as url:
        ws = await connect(url, max_message=MAX)
        await trio.sleep(0.2)  # everything, the close too, is in one read
        messages = [await ws.get_message(), *ws.received(10)]
        with pytest.raises(trio_websocket.ConnectionClosed) as closed:
            await ws.get_message()
        with pytest.raises(trio_websocket.ConnectionClosed):
            await ws.send_message("too late")
        await ws.aclose()
    assert messages == [f"m{n}" for n in range(5)]
    assert closed.value.reason is not None
    assert (closed.value.reason.code, closed.value.reason.reason) == (1008, "key revoked")


async def test_pings_both_ways() -> None:
    """The server's ping is answered while the client reads; the client's ping returns
    when its pong came."""
    answered = trio.Event()

    async def handler(request: trio_websocket.WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.ping(b"are you there")  # returns when the client's pong came
        answered.set()
        await ws.send_message("after the pong")
        await ws.get_message()

    async with websocket_server(handler) as url:
        async with open_websocket(url, max_message=MAX) as ws:
            with trio.fail_after(5):
                assert await ws.get_message() == "after the pong"
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(ws.ping)
                    with pytest.raises(trio.TooSlowError):
                        with trio.fail_after(0.3):  # the reader sees the pong, returns
                            await ws.get_message()
            await ws.send_message("done")
    assert answered.is_set()


async def test_a_refused_handshake_has_its_status_and_body() -> None:
    async def handler(request: trio_websocket.WebSocketRequest) -> None:
        await request.reject(401, body=b"bad key")

    async with websocket_server(handler) as url:
        with pytest.raises(trio_websocket.ConnectionRejected) as rejected:
            await connect(url, max_message=MAX)
    assert rejected.value.status_code == 401
    assert rejected.value.body == b"bad key"


async def test_leaving_closes_with_1000_and_waits_for_the_answer() -> None:
    codes: list[int | None] = []

    async def handler(request: trio_websocket.WebSocketRequest) -> None:
        ws = await request.accept()
        try:
            await ws.get_message()
        except trio_websocket.ConnectionClosed as closed:
            codes.append(closed.reason.code if closed.reason else None)

    async with websocket_server(handler) as url:
        async with open_websocket(url, max_message=MAX) as ws:
            pass
        await trio.sleep(0.1)
    assert codes == [1000]
    assert ws.closed is not None


# ---- against a raw server ---------------------------------------------------------------------


async def test_a_stream_one_byte_at_a_time_and_fragments_around_a_ping() -> None:
    payloads = [json.dumps([{"event": "reading_added", "n": n}]).encode() for n in range(3)]
    stream = frame(payloads[0]) + frame(b"frag", fin=False) + frame(b"ping!", opcode=9) \
        + frame("mént".encode(), opcode=0, fin=False) + frame(b"ed", opcode=0) \
        + frame(b"\x00bin", opcode=2) + frame(payloads[1] * 100) + frame(payloads[2])
    server = RawServer(script=[stream[i:i + 1] for i in range(len(stream))])
    async with serving(server) as url:
        async with open_websocket(url, max_message=MAX) as ws:
            with trio.fail_after(10):
                got = [await ws.get_message() for _ in range(5)]
        await server.done.wait()
    assert got == [payloads[0].decode(), "fragmént ed".replace(" ", ""), b"\x00bin",
                   payloads[1].decode() * 100, payloads[2].decode()]
    assert server.frames() == [(0xA, b"ping!"), (0x8, (1000).to_bytes(2, "big"))]


@pytest.mark.parametrize(("script", "code"), [
    (frame(b"hi", masked=True), 1002),  # servers never mask
    (frame(b"hi", rsv=0x40), 1002),  # no extension was agreed
    (frame(b"hi", opcode=0), 1002),  # a continuation of nothing
    (frame(b"a", fin=False) + frame(b"b"), 1002),  # a new message inside a fragmented one
    (frame(b"hi", opcode=3), 1002),  # a reserved opcode
    (frame(b"x" * 126, opcode=9), 1002),  # a control frame over 125 bytes
    (frame(b"hi", opcode=9, fin=False), 1002),  # a fragmented control frame
    (frame(b"\xff\xfe"), 1007),  # text that is not UTF-8
    (frame(b"\xc3", fin=False) + frame(b"(", opcode=0), 1007),  # ... across fragments
    (frame(b"x" * 40)[:2] + bytes(0), 1006),  # the server hangs up inside a frame
    (frame(b"\x03\xe8\xff", opcode=8), 1007),  # a close reason that is not UTF-8
    (frame(b"\x03", opcode=8), 1002),  # a close code of one byte
])
async def test_protocol_errors_close_with_the_rfc_code(script: bytes, code: int) -> None:
    server = RawServer(script=[frame(b"first") + script], hang_up=code == 1006)
    async with serving(server) as url:
        ws = await connect(url, max_message=MAX)
        with trio.fail_after(5):
            got, closed = await read_all(ws)
            await server.done.wait()
        await ws.aclose()
    assert got == ["first"]
    assert closed == code
    if code != 1006:  # the client said why before hanging up
        [(opcode, payload)] = server.frames()
        assert (opcode, payload[:2]) == (0x8, code.to_bytes(2, "big"))


async def test_a_message_over_the_limit_is_refused_from_its_header() -> None:
    """Only the header of a 100 MB frame is sent: the client does not wait for the rest."""
    server = RawServer(script=[bytes((0x81, 127)) + (100_000_000).to_bytes(8, "big")])
    async with serving(server) as url:
        ws = await connect(url, max_message=MAX)
        with trio.fail_after(5):
            got, closed = await read_all(ws)
        await ws.aclose()
    assert (got, closed) == ([], 1009)
    big = frame(b"x" * 1000, fin=False) + frame(b"x" * 1000, opcode=0, fin=False)
    server = RawServer(script=[big])
    async with serving(server) as url:
        ws = await connect(url, max_message=1500)
        with trio.fail_after(5):
            got, closed = await read_all(ws)
        await ws.aclose()
    assert (got, closed) == ([], 1009)


async def test_a_close_without_a_code_is_1005_and_answered_empty() -> None:
    server = RawServer(script=[frame(b"last") + frame(b"", opcode=8)])
    async with serving(server) as url:
        ws = await connect(url, max_message=MAX)
        with trio.fail_after(5):
            got, closed = await read_all(ws)
            await server.done.wait()
    assert (got, closed) == (["last"], 1005)
    assert server.frames() == [(0x8, b"")]


async def test_the_bytes_right_after_the_101_are_frames() -> None:
    server = RawServer(after_101=frame(b"zero") + frame(b"one"))
    async with serving(server) as url:
        async with open_websocket(url, max_message=MAX) as ws:
            with trio.fail_after(5):
                assert [await ws.get_message(), await ws.get_message()] == ["zero", "one"]


@pytest.mark.parametrize(("answer", "why"), [
    (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
     b"Sec-WebSocket-Accept: d3Jvbmc=\r\n\r\n", "Sec-WebSocket-Accept"),
    (b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n", "Upgrade"),
    (b"", None),  # the server hangs up without a word
    (b"SSH-2.0-OpenSSH_9.6\r\n", None),  # not HTTP at all
])
async def test_a_broken_handshake_is_a_handshake_error(answer: bytes, why: str | None) -> None:
    server = RawServer(answer=answer, hang_up=True)
    async with serving(server) as url:
        with trio.fail_after(5), pytest.raises(trio_websocket.HandshakeError) as failed:
            await connect(url, max_message=MAX)
    if why is not None:
        assert why in str(failed.value)


async def test_nobody_listening_is_a_handshake_error_from_the_os() -> None:
    listener = trio.socket.socket()
    await listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # the port is free: the connection is refused
    with pytest.raises(trio_websocket.HandshakeError) as failed:
        await connect(f"ws://127.0.0.1:{port}/", max_message=MAX)
    assert isinstance(failed.value.__cause__, OSError)


async def test_a_ping_waiting_when_the_socket_ends_raises() -> None:
    server = RawServer(script=[frame(b"x")], pause=0.2, hang_up=True)
    async with serving(server) as url:
        ws = await connect(url, max_message=MAX)
        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                failures: list[BaseException] = []

                async def pinging() -> None:
                    try:
                        await ws.ping(b"p")
                    except trio_websocket.ConnectionClosed as error:
                        failures.append(error)

                nursery.start_soon(pinging)
                await read_all(ws)
    assert len(failures) == 1


# ---- the parser, property ----------------------------------------------------------------------

messages = st.lists(st.one_of(st.text(max_size=300), st.binary(max_size=300)), max_size=12)


@settings(max_examples=150, deadline=None)
@given(messages, st.data())
def test_any_split_of_any_fragmentation_gives_the_messages_sent(
        sent: list[str | bytes], data: st.DataObject) -> None:
    """Messages, each in 1-3 fragments with pings between some, cut into random pieces:
    the client returns exactly the messages, in order, and answers every ping."""
    stream = b""
    pings = 0
    for message in sent:
        raw = message.encode() if isinstance(message, str) else message
        pieces = data.draw(st.integers(1, 3))
        cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), min_size=pieces - 1,
                                         max_size=pieces - 1)))
        parts = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)])]
        for n, part in enumerate(parts):
            stream += frame(part, opcode=(1 if isinstance(message, str) else 2) if n == 0
                            else 0, fin=n == len(parts) - 1)
            if data.draw(st.booleans()):
                stream += frame(b"p%d" % pings, opcode=9)
                pings += 1
    cuts = sorted(set(data.draw(st.lists(st.integers(0, len(stream)), max_size=20))))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)]) if b > a]

    async def run() -> tuple[list[str | bytes], list[tuple[int, bytes]]]:
        client_side, server_side = trio.testing.memory_stream_pair()
        ws = WebSocket(client_side, b"", MAX, 65536)
        replies = b""
        async with trio.open_nursery() as nursery:
            async def feed() -> None:
                for chunk in chunks:
                    await server_side.send_all(chunk)
                await server_side.send_all(frame(b"\x03\xe8", opcode=8))

            nursery.start_soon(feed)
            got, code = await read_all(ws)
            assert code == 1000
        while chunk := await server_side.receive_some():  # until the client hung up
            replies += chunk
        return got, unmask_all(replies)

    got, replies = trio.run(run)
    assert got == sent
    assert replies == [(0xA, b"p%d" % n) for n in range(pings)] + [(0x8, b"\x03\xe8")]


def test_client_frames_are_masked_and_read_back() -> None:
    for size in (0, 1, 125, 126, 65535, 65536, 70000):
        payload = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
        assert unmask_all(client_frame(2, payload)) == [(2, payload)]


async def test_an_interrupted_send_ends_the_socket_rather_than_write_after_half_a_frame() -> None:
    client_side, server_side = trio.testing.lockstep_stream_pair()  # a peer not reading
    ws = WebSocket(client_side, b"", MAX, 65536)
    with trio.move_on_after(0.1) as interrupted:
        await ws.send_message("x" * 1000)
    assert interrupted.cancelled_caught
    with pytest.raises(trio_websocket.ConnectionClosed) as closed:
        await ws.send_message("next")
    assert closed.value.reason is not None and closed.value.reason.code == 1006
    with pytest.raises(trio_websocket.ConnectionClosed):
        await ws.ping()
    await ws.aclose()
    await server_side.aclose()


async def test_leaving_a_server_that_never_answers_the_close_waits_no_longer_than_asked() -> None:
    server = RawServer()  # reads, never answers
    async with serving(server) as url:
        started = trio.current_time()
        async with open_websocket(url, max_message=MAX, close_wait=0.3):
            pass
        assert 0.3 <= trio.current_time() - started < 3
        with trio.fail_after(5):
            await server.done.wait()  # the client hung up after its wait
    assert server.frames() == [(0x8, (1000).to_bytes(2, "big"))]


# ---- TLS -------------------------------------------------------------------------------------


@asynccontextmanager
async def tls_server(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    """A trio-websocket server over TLS with a self-signed certificate for 127.0.0.1."""
    from tests.test_senders import self_signed

    cert_file, key_file = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)

    async def handler(request: trio_websocket.WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.send_message("secret reading")
        with contextlib.suppress(trio_websocket.ConnectionClosed):
            await ws.get_message()

    async with trio.open_nursery() as nursery:
        server = await nursery.start(trio_websocket.serve_websocket, handler, "127.0.0.1", 0,
                                     context)
        yield f"wss://127.0.0.1:{server.port}/api/v1/readings/socket", cert_file
        nursery.cancel_scope.cancel()


async def test_wss_trusts_what_the_system_trusts(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The daemon's sockets use the system's trust store, which SSL_CERT_FILE can name (an
    operator's own CA); a certificate nobody trusts is a handshake error that says so."""
    async with tls_server(tmp_path) as (url, cert_file):
        with pytest.raises(trio_websocket.HandshakeError) as failed:
            await connect(url, max_message=MAX)
        assert isinstance(failed.value.__cause__, ssl.SSLCertVerificationError)
        assert "SSLCertVerificationError" in describe(failed.value)
        monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
        async with open_socket(url) as ws:
            assert await ws.get_message() == "secret reading"


async def test_a_path_with_a_space_or_a_non_ascii_letter_is_sent_percent_encoded() -> None:
    paths: list[str] = []

    async def handler(request: trio_websocket.WebSocketRequest) -> None:
        paths.append(request.path)
        await request.reject(404)

    async with websocket_server(handler) as url:
        base = url.split("/v2/")[0]
        with pytest.raises(trio_websocket.ConnectionRejected):
            await connect(f"{base}/api/v1/devices/kühl raum/readings/socket?auth=a%2Fb&x=ü",
                          max_message=MAX)
    assert paths == ["/api/v1/devices/k%C3%BChl%20raum/readings/socket?auth=a%2Fb&x=%C3%BC"]


class CountingStream(trio.abc.Stream):
    """One end of an in-memory stream that notes how many bytes each read asked for."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.asked: list[int | None] = []

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        self.asked.append(max_bytes)
        return bytes(await self.stream.receive_some(max_bytes))

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.stream.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self.stream.aclose()


async def test_a_flood_is_read_in_big_reads_and_a_trickle_in_small_ones() -> None:
    """A read asks for 64 KiB while less than that comes at once (a bigger buffer costs
    every read more) and for all it may once a read brought 64 KiB or more; the messages
    come whole and in order across the change, both ways."""
    client_end, server_end = trio.testing.memory_stream_pair()
    counting = CountingStream(client_end)
    ws = WebSocket(counting, b"", max_message=MAX, receive_size=1 << 20)
    flood = [f"{n:05d}" * (n % 7 * 3000 + 1) for n in range(400)]  # ~4 MB
    trickle = [f"quiet {n}" for n in range(5)]
    await server_end.send_all(frame(b"before"))
    got = [await ws.get_message()]
    await server_end.send_all(b"".join(frame(m.encode()) for m in flood))
    while len(got) < 1 + len(flood):
        got.append(await ws.get_message())
        got.extend(ws.received(256))
    flood_reads = counting.asked[1:]
    for message in trickle:
        await server_end.send_all(frame(message.encode()))
        got.append(await ws.get_message())
    assert got == ["before", *flood, *trickle]
    assert counting.asked[0] == 65536
    assert flood_reads.count(1 << 20) >= 3  # ~4 MB in reads of up to 1 MiB, not of 64 KiB
    # the first read after the flood may still ask for all; each one after it, 64 KiB
    assert counting.asked[-len(trickle) + 1:] == [65536] * (len(trickle) - 1)
