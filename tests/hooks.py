"""Local receivers for delivery tests: a JSON webhook whose answer a test controls (delay,
status, Retry-After), and one that trickles its answer a byte at a time and never ends."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Post:
    at: float  # time.monotonic() when the body was read
    path: str
    body: dict[str, Any]


@dataclass
class Answer:
    status: int = 200
    delay: float = 0.0  # seconds between reading the body and answering
    headers: dict[str, str] = field(default_factory=dict)
    trickle: float = 0.0  # > 0: then a body of one byte per this many seconds, for ever


class Webhook:
    """A threaded HTTP server on 127.0.0.1 that records each POST (once its body is read)
    and answers what ``answer(post_number)`` says (post_number counts from 1)."""

    def __init__(self, answer: Callable[[int], Answer] = lambda n: Answer()) -> None:
        self.posts: list[Post] = []
        self.answer = answer
        self.lock = threading.Lock()
        self.closing = threading.Event()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                with hook.lock:
                    hook.posts.append(Post(time.monotonic(), self.path, body))
                    answer = hook.answer(len(hook.posts))
                hook.closing.wait(answer.delay)
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                if answer.trickle:
                    self.send_header("Content-Length", "100000")
                self.end_headers()
                try:
                    while answer.trickle and not hook.closing.wait(answer.trickle):
                        self.wfile.write(b"x")
                        self.wfile.flush()
                except OSError:
                    pass  # the client went away

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def url(self, path: str = "/alerts") -> str:
        return f"json://127.0.0.1:{self.port}{path}"

    def titles(self) -> list[str]:
        with self.lock:
            return [post.body["title"] for post in self.posts]

    def close(self) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()


class Trickle:
    """Reads a request, then answers one byte every ``every`` seconds, for ever: requests'
    per-read timeout never fires. Counts connections, and those the client closed."""

    def __init__(self, every: float = 1.0) -> None:
        self.every = every
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.accepted = 0
        self.ended_by_client = 0
        self.stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.listener.getsockname()[1])

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                connection = self.listener.accept()[0]
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._trickle, args=(connection,), daemon=True).start()

    def _trickle(self, connection: socket.socket) -> None:
        answer = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 100000
        with connection:
            connection.settimeout(5)
            try:
                connection.recv(65536)
                for byte in answer:
                    if self.stop.wait(self.every):
                        return
                    connection.sendall(bytes([byte]))
            except OSError:  # the client went away: the send was ended
                self.ended_by_client += 1

    def close(self) -> None:
        self.stop.set()
        self.listener.close()
