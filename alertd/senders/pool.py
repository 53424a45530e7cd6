"""Sends through apprise in child processes that can be killed (``alertd.senders.child``).

Each send has a process of its own for its duration: one is taken from a few idle ones kept
warm (or started: about 0.3 s, mostly ``import apprise``), asked, and given back. A send
that is not answered within ``timeout`` seconds (counted once the process is ready), or
that is cancelled (a stop whose grace
ran out), ends with the process killed (SIGKILL) and reaped: nothing of it keeps running,
so a receiver that trickles one byte every 2 s holds nothing after the deadline and no
other URL ever waits for it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import trio

from alertd.senders.outcome import DeliveryOutcome

KEEP_IDLE = 2  # warm processes kept between sends
START_TIMEOUT = 30.0  # for a child to start and import apprise (not part of a send's time)


def _child_env() -> dict[str, str]:
    """The environment, with this alertd first on the path: the child runs the same code."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    return env


class _Child:
    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.buffer = b""

    @classmethod
    async def start(cls, timeout: float = START_TIMEOUT) -> _Child | None:
        """A child that has imported apprise and said so within ``timeout``; None if not."""
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "alertd.senders.child"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=_child_env())
        child = cls(process)
        try:
            with trio.move_on_after(timeout):
                if await child.read() == {"ready": True}:
                    return child
        except BaseException:
            await child.kill()
            raise
        await child.kill()
        return None

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    async def ask(self, request: dict[str, Any]) -> dict[str, Any] | None:
        """Send one request and read its answer; None when the process ended instead."""
        assert self.process.stdin is not None
        try:
            await self.process.stdin.send_all(json.dumps(request).encode() + b"\n")
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return None
        return await self.read()

    async def read(self) -> dict[str, Any] | None:
        """The child's next line, as JSON; None when it ended first."""
        assert self.process.stdout is not None
        try:
            while b"\n" not in self.buffer:
                chunk = await self.process.stdout.receive_some()
                if not chunk:
                    return None
                self.buffer += chunk
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return None
        line, self.buffer = self.buffer.split(b"\n", 1)
        answer = json.loads(line)
        return answer if isinstance(answer, dict) else None

    async def kill(self) -> None:
        with trio.CancelScope(shield=True):
            if self.alive:
                self.process.kill()
            await self.process.wait()

    async def close(self) -> None:
        """Let it end by itself (stdin closed), or kill it after a second."""
        with trio.CancelScope(shield=True):
            if self.process.stdin is not None:
                await self.process.stdin.aclose()
            with trio.move_on_after(1.0):
                await self.process.wait()
            await self.kill()


class ProcessSender:
    """``await send(url, title, body, type)`` -> ``DeliveryOutcome``; ``aclose()`` at the end."""

    def __init__(self, timeout: float = 30.0, keep: int = KEEP_IDLE,
                 start_timeout: float = START_TIMEOUT) -> None:
        self.timeout = timeout
        self.start_timeout = start_timeout
        self.keep = keep
        self._idle: list[_Child] = []
        self.killed = 0  # sends ended by killing their process

    async def send(self, url: str, title: str, body: str,
                   notify_type: str = "info") -> DeliveryOutcome:
        child: _Child | None = None
        while self._idle and child is None:
            child = self._idle.pop()
            if not child.alive:
                await child.kill()
                child = None
        if child is None:
            child = await _Child.start(self.start_timeout)
            if child is None:
                return DeliveryOutcome.retry("the sending process did not start")
        request = {"url": url, "title": title, "body": body, "type": notify_type}
        try:
            with trio.move_on_after(self.timeout) as scope:
                answer = await child.ask(request)
        except BaseException:  # cancelled from outside: end the send for real, then go on
            await child.kill()
            self.killed += 1
            raise
        if scope.cancelled_caught:
            await child.kill()
            self.killed += 1
            return DeliveryOutcome.retry(f"no answer within {self.timeout:g} s; the send was "
                                         "ended (its process killed)")
        if answer is None:
            await child.kill()
            return DeliveryOutcome.retry(f"the sending process ended unexpectedly (exit "
                                         f"{child.process.returncode})")
        if len(self._idle) < self.keep:
            self._idle.append(child)
        else:
            await child.close()
        return DeliveryOutcome.from_json(answer)

    async def warm(self) -> None:
        """Start one process ahead of the first send (it costs about 0.6 s)."""
        if not self._idle:
            child = await _Child.start(self.start_timeout)
            if child is not None:
                self._idle.append(child)

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for child in idle:
            await child.close()
