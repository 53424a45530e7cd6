"""The benchmarks' WebSocket server, run in a process of its own: ``python ws_server.py SHAPE
FRAMES [options]``. It prints its port, builds its frames before the first client comes,
and gives every connection the same frames, as fast as it can send them (``--rate 0``) or
at ``--rate`` frames per second.

It is a minimal RFC 6455 server on plain sockets, a thread per connection, not
trio-websocket: a trio-websocket server pays a ``send()`` system call and a trip through
trio per frame and sent only ~4,000 frames/s on this machine, below what a client receives,
so it would have measured itself. Here every frame is encoded once, before the first
client, and a flood is written in 256 KiB pieces; the client's side is the one measured.

Shapes:
  element1   ELEMENT readings sockets, one reading per frame (``[{"event":
             "reading_added", "body": ...}]``), devices ``dev0..`` in turn
  element50  the same, 50 readings per frame
  navixy     Navixy over Atmosphere: the handshake ``<uuid>|25000|X|``, then, once the
             client's subscribe action came, the ``subscription/subscribe`` response and
             ``iot_monitor`` events of one tracker: 8 attributes, both queues ``--depth``
             deep (12, Navixy's), each event one message newer than the last (the server
             resends its whole window)
  paced      ELEMENT one-reading frames sent at ``--rate``, each reading stamped when sent:
             field ``sent`` is the sender's ``time.monotonic()`` in milliseconds (the same
             clock in every process of the machine), and every ``--notify-every``-th
             reading carries it as field ``bench`` too, positive and negative in turn per
             device, so a rule ``bench above 0`` fires or resolves on each of them

Readings carry the five fields of their device's kind (benchlib) near normal values, so no
rule of the benchmark rule sets fires; with ``--sentinel`` the last reading (last event)
also carries ``bench_end: 1``, which a rule turns into one notification: the sign that
every frame before it was evaluated. Message times lie in the past, one entity's
readings a minute apart (Navixy: 30 s), so change windows hold a realistic ten or so.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import socket
import sys
import threading
import time
import uuid
from collections import deque
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import kind_fields  # noqa: E402

DEPTH = 12  # Navixy's queue depth
CHUNK = 256 * 1024  # bytes written at once while flooding
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455
TRACKER = 21080
EXTRA = {"latitude": "52.5200066", "longitude": "13.404954", "speed": 42}
SUBSCRIBED = json.dumps({"type": "response", "action": "subscription/subscribe",
                         "events": ["iot_monitor"],
                         "data": {"iot_monitor": {"value": {str(TRACKER): "normal"}}}})


def iso(epoch: float, micro: bool = True) -> str:
    stamp = datetime.fromtimestamp(epoch, timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if micro else "%Y-%m-%dT%H:%M:%SZ")


def reading(n: int, device: str, kind: int, at: float,
            extra: dict[str, object]) -> dict[str, Any]:
    stamp = iso(at)
    return {"event": "reading_added",
            "body": {"id": str(uuid.UUID(int=n + 1)), "device_id": device,
                     "packet_id": str(uuid.UUID(int=(n + 1) << 64)),
                     "parser_id": "cee40cb2-f58c-4ca8-ae91-4ae76cba5119",
                     "measured_at": stamp, "inserted_at": stamp, "location": None,
                     "meta": None,
                     "data": {**kind_fields(kind, (n % 7) * 0.01), **extra}}}


def element_frames(frames: int, per_frame: int, entities: int, kinds: int,
                   sentinel: bool) -> list[str]:
    total = frames * per_frame
    spacing = 60.0 / entities  # one device's readings a minute apart
    start = time.time() - total * spacing - 3600
    out = []
    for f in range(frames):
        items = []
        for k in range(per_frame):
            n = f * per_frame + k
            extra: dict[str, object] = {"bench_end": 1} if sentinel and n == total - 1 else {}
            items.append(reading(n, f"dev{n % entities}", (n % entities) % kinds,
                                 start + n * spacing, extra))
        out.append(json.dumps(items))
    return out


def navixy_frames(events: int, kind: int, sentinel: bool, depth: int = DEPTH) -> list[str]:
    """Each event: the tracker's whole window, one message newer than the last one's."""
    attributes = [*kind_fields(kind), *EXTRA]
    queues: dict[str, deque[str]] = {a: deque(maxlen=depth) for a in attributes}
    start = time.time() - (events + depth) * 30 - 3600
    out = []
    for i in range(events + depth - 1):
        at = start + 30 * i
        values = {**kind_fields(kind, (i % 7) * 0.01), **EXTRA}
        if sentinel and i == events + depth - 2:
            values["bench_end"] = 1
            queues["bench_end"] = deque(maxlen=depth)
        times = f'"msg_time":"{iso(at, False)}","srv_time":"{iso(at + 1, False)}"'
        for attribute, value in values.items():
            queues[attribute].appendleft(f'{{{times},"value":{json.dumps(value)}}}')
        if i < depth - 1:
            continue  # the first event comes with full queues
        window = ",".join(f'"{a}":[{",".join(q)}]' for a, q in queues.items())
        out.append('{"type":"event","event":"iot_monitor","data":{"iot_last_values":'
                   f'[{{"tracker_id":{TRACKER},"nonnull_fields":{{{window}}},'
                   f'"all_fields":{{{window}}}}}]}}}}')
    return out


def frame(payload: str | bytes, opcode: int = 1) -> bytes:
    """One unmasked (server-to-client) WebSocket frame."""
    data = payload.encode() if isinstance(payload, str) else payload
    n = len(data)
    if n < 126:
        head = bytes((0x80 | opcode, n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 127)) + n.to_bytes(8, "big")
    return head + data


class Peer:
    """One client connection: the handshake, reading its (masked) frames, writing ours."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.lock = threading.Lock()
        self.buffer = b""

    def _read(self, count: int) -> bytes:
        while len(self.buffer) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buffer += chunk
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def handshake(self) -> None:
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buffer += chunk
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        key = next(line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
                   if line.lower().startswith(b"sec-websocket-key:"))
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        self.send(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")

    def receive(self) -> tuple[int, bytes]:
        """The client's next frame: (opcode, payload)."""
        first, second = self._read(2)
        n = second & 0x7F
        if n == 126:
            n = int.from_bytes(self._read(2), "big")
        elif n == 127:
            n = int.from_bytes(self._read(8), "big")
        mask = self._read(4) if second & 0x80 else b"\0\0\0\0"
        data = bytes(b ^ mask[i % 4] for i, b in enumerate(self._read(n)))
        return first & 0x0F, data

    def send(self, data: bytes) -> None:
        with self.lock:
            self.sock.sendall(data)

    def answer(self) -> None:
        """Answer pings and the closing handshake until the client goes."""
        try:
            while True:
                opcode, data = self.receive()
                if opcode == 9:
                    self.send(frame(data, 10))
                elif opcode == 8:
                    self.send(frame(data[:2], 8))
                    return
        except (EOFError, OSError):
            return


def flood(peer: Peer, stream: bytes) -> None:
    """Write the pre-built frames in large pieces: the server is never the limit."""
    view = memoryview(stream)
    for start in range(0, len(view), CHUNK):
        peer.send(view[start:start + CHUNK].tobytes())


def paced(peer: Peer, frames: int, rate: float, entities: int, kinds: int, every: int) -> None:
    start = time.monotonic() + 0.2  # the client has its socket: start in a moment
    spacing = 60.0 / entities
    epoch = time.time() - frames * spacing - 3600
    for n in range(frames):
        delay = start + n / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        sign = 1 if (n // entities) % 2 == 0 else -1
        stamp = time.monotonic() * 1000
        extra = {"sent": stamp, "bench": sign * stamp} if n % every == 0 else {"sent": stamp}
        peer.send(frame(json.dumps([reading(n, f"dev{n % entities}", (n % entities) % kinds,
                                            epoch + n * spacing, extra)])))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("shape", choices=("element1", "element50", "navixy", "paced"))
    parser.add_argument("frames", type=int)
    parser.add_argument("--entities", type=int, default=100)
    parser.add_argument("--kinds", type=int, default=20)
    parser.add_argument("--kind", type=int, default=0, help="the Navixy tracker's kind")
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--sentinel", action="store_true")
    parser.add_argument("--depth", type=int, default=DEPTH, help="Navixy queue depth")
    parser.add_argument("--notify-every", type=int, default=1,
                        help="paced: every Nth reading carries the field 'bench'")
    args = parser.parse_args()
    stream = b""
    if args.shape == "navixy":
        stream = b"".join(map(frame, navixy_frames(args.frames, args.kind, args.sentinel,
                                                   args.depth)))
    elif args.shape != "paced":
        stream = b"".join(map(frame, element_frames(
            args.frames, 50 if args.shape == "element50" else 1, args.entities, args.kinds,
            args.sentinel)))

    def serve(sock: socket.socket) -> None:
        peer = Peer(sock)
        try:
            peer.handshake()
            if args.shape == "navixy":
                peer.send(frame(f"{uuid.uuid4()}|25000|X|"))
                peer.receive()  # the subscribe action
                peer.send(frame(SUBSCRIBED))
            threading.Thread(target=peer.answer, daemon=True).start()
            if args.shape == "paced":
                paced(peer, args.frames, args.rate, args.entities, args.kinds,
                      args.notify_every)
            else:
                flood(peer, stream)
        except (EOFError, OSError):
            pass

    listener = socket.create_server(("127.0.0.1", 0))
    print(listener.getsockname()[1], flush=True)
    while True:
        sock, _ = listener.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=serve, args=(sock,), daemon=True).start()


if __name__ == "__main__":
    main()
