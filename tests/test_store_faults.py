"""The state store under faults, with real ``alertd run`` processes: a file locked by another
connection, a full file system, a file deleted, replaced, corrupted or made read-only, a
second daemon, and kill -9 early in a fresh state (issue 11 items 4-7, issue 12 item 4)."""

from __future__ import annotations

import os
import resource
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from alertd.app import CHECKPOINT_EVERY
from alertd.simulator.element import FakeElement

KEY = "store-test-k3y-s3cr3t"
ROOT = Path(__file__).resolve().parent.parent
EXIT_STORE = 3  # the state file failed while running (docs/operations.md)


class Run:
    """One ``alertd run`` process, its stdout and stderr collected as they come."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.out = ""
        self.err = ""

    async def collect(self) -> None:
        async def read(stream: trio.abc.ReceiveStream, name: str) -> None:
            while chunk := await stream.receive_some():
                setattr(self, name, getattr(self, name) + chunk.decode())

        assert self.process.stdout is not None and self.process.stderr is not None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read, self.process.stdout, "out")
            nursery.start_soon(read, self.process.stderr, "err")

    async def wait_for(self, predicate: Callable[[], bool], seconds: float = 30) -> None:
        """Poll for a positive condition, with a bound; say what the daemon said if not."""
        with trio.move_on_after(seconds):
            while not predicate():
                await trio.sleep(0.05)
            return
        raise AssertionError(f"timed out; stdout:\n{self.out}\nstderr:\n{self.err}")

    async def exit_code(self, seconds: float = 30) -> int:
        with trio.fail_after(seconds):
            return await self.process.wait()


def write_config(tmp_path: Path, element: FakeElement) -> Path:
    config = tmp_path / "rules.yaml"
    config.write_text(textwrap.dedent(f"""\
        sources:
          cold: {{type: element, url: "{element.url}", api_key: "${{KEY}}",
                 subscribe: [readings]}}
        channels: {{out: console://}}
        rules:
          - {{name: warm, source: cold, threshold: {{field: t, above: 8}}, notify: [out]}}
        """))
    return config


def alertd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "alertd", *args], capture_output=True,
                          text=True, timeout=60, env=ENV, cwd=ROOT)


ENV = {"KEY": KEY, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}


@asynccontextmanager
async def alertd_run(config: Path, state: Path,
                     preexec: Callable[[], None] | None = None) -> AsyncIterator[Run]:
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "alertd", "run", "-c", str(config), "--state", str(state)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, cwd=ROOT,
        preexec_fn=preexec)
    run = Run(process)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run.collect)
            yield run
            if process.returncode is None:
                process.kill()
            await process.wait()
    finally:
        if process.returncode is None:
            process.kill()


@asynccontextmanager
async def element_server() -> AsyncIterator[FakeElement]:
    element = FakeElement(api_keys={KEY})
    async with trio.open_nursery() as nursery:
        await nursery.start(element.serve)
        yield element
        nursery.cancel_scope.cancel()


def cursor(state: Path) -> str | None:
    db = sqlite3.connect(state, timeout=5)  # closed at once: an open one keeps the log
    try:
        row = db.execute("SELECT after FROM cursors").fetchone()
    except sqlite3.OperationalError:  # no tables yet
        return None
    finally:
        db.close()
    return None if row is None else str(row[0])


async def test_a_locked_state_file_delays_the_alert_but_loses_nothing(tmp_path: Path) -> None:
    """Another connection holds the write lock for 8 s while a reading raises an alert: the
    daemon keeps running, says so in one line, fires the alert once the lock is gone, says
    so too; after a restart the alert is still firing and nothing is notified twice."""
    state = tmp_path / "state.db"
    async with element_server() as element:
        config = write_config(tmp_path, element)
        async with alertd_run(config, state) as run:
            await run.wait_for(lambda: bool(element.connections) and "watching" in run.err)
            blocker = sqlite3.connect(state, isolation_level=None)
            blocker.execute("BEGIN IMMEDIATE")
            try:
                reading = element.add_reading("room1", {"t": 9})
                await run.wait_for(lambda: "cannot write" in run.err)
                busy = cpu_seconds(run.process.pid)
                await trio.sleep(8)  # longer than any busy wait alertd had
                assert run.process.returncode is None, run.err
                assert cpu_seconds(run.process.pid) - busy < 1.0  # waits, never spins
                assert "[FIRING] warm" not in run.out  # not handed on before its commit
            finally:
                blocker.execute("ROLLBACK")
                blocker.close()
            await run.wait_for(lambda: "[FIRING] warm: room1" in run.out)
            await run.wait_for(lambda: "writing again" in run.err)
            assert run.err.count("cannot write") == 1, run.err
            assert reading["inserted_at"] in (cursor(state) or "")
            run.process.send_signal(signal.SIGTERM)
            assert await run.exit_code() == 0, run.err
        # a stopped daemon leaves the file whole: its write-ahead log is copied in and gone
        assert not Path(f"{state}-wal").exists() and not Path(f"{state}-shm").exists()
        listed = alertd("alerts", "--state", str(state))
        assert "warm" in listed.stdout and "firing" in listed.stdout, listed
        async with alertd_run(config, state) as again:
            await again.wait_for(lambda: len(element.connections_log) >= 2)
            assert "after=" in element.connections_log[-1]
            element.add_reading("room1", {"t": 5})
            await again.wait_for(lambda: "[RESOLVED] warm: room1" in again.out)
            assert "[FIRING]" not in again.out


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _mount_small_tmpfs(where: Path) -> bool:
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)],
                          capture_output=True)
    return done.returncode == 0


async def test_a_full_disk_delays_the_alert_but_loses_nothing(tmp_path: Path) -> None:
    """A full file system (a 1 MiB tmpfs when this test may mount one; otherwise a file-size
    limit of 0 set on the daemon with prlimit, which fails writes the same way): the daemon
    keeps running with one line, and writes once there is room again."""
    disk = tmp_path / "disk"
    mounted = _mount_small_tmpfs(disk)
    state = disk / "state.db"
    filler = disk / "filler"
    try:
        async with element_server() as element:
            config = write_config(tmp_path, element)
            async with alertd_run(config, state) as run:
                await run.wait_for(lambda: bool(element.connections) and "watching" in run.err)
                if mounted:
                    with open(filler, "wb") as out:
                        try:
                            while True:
                                out.write(b"\0" * 65536)
                                out.flush()
                        except OSError:
                            pass
                else:
                    resource.prlimit(run.process.pid, resource.RLIMIT_FSIZE, (0, 0))
                element.add_reading("room1", {"t": 9})
                await run.wait_for(lambda: "cannot write" in run.err)
                assert "disk is full" in run.err or "I/O error" in run.err, run.err
                await trio.sleep(3)
                assert run.process.returncode is None and "[FIRING]" not in run.out
                if mounted:
                    filler.unlink()
                else:
                    unlimited = resource.RLIM_INFINITY
                    resource.prlimit(run.process.pid, resource.RLIMIT_FSIZE,
                                     (unlimited, unlimited))
                await run.wait_for(lambda: "[FIRING] warm: room1" in run.out)
                await run.wait_for(lambda: "writing again" in run.err)
                assert run.err.count("cannot write") == 1, run.err
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(disk)], check=False)


@pytest.mark.parametrize("how", ["deleted", "replaced"])
async def test_a_state_file_deleted_or_replaced_under_the_daemon_stops_it(
        tmp_path: Path, how: str) -> None:
    state = tmp_path / "state.db"
    async with element_server() as element:
        config = write_config(tmp_path, element)
        async with alertd_run(config, state) as run:
            await run.wait_for(lambda: "watching" in run.err)
            state.unlink()
            if how == "replaced":  # an operator's silence now goes to a new file
                assert alertd("silence", "add", "--state", str(state), "--match", "rule=warm",
                              "--for", "1h").returncode == 0
            assert await run.exit_code() == EXIT_STORE, run.err
    lines = [line for line in run.err.splitlines() if "state file" in line]
    assert lines == [f"alertd: state file {state}: the file was "
                     f"{'deleted' if how == 'deleted' else 'replaced by another one'} while "
                     "alertd ran; stopping (start alertd again to use the file now at that "
                     "path)"], run.err


async def test_a_state_file_corrupted_under_the_daemon_stops_it_with_one_line(
        tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    async with element_server() as element:
        config = write_config(tmp_path, element)
        async with alertd_run(config, state) as run:
            await run.wait_for(lambda: bool(element.connections) and "watching" in run.err)
            with open(state, "r+b") as file:  # the same file, its content overwritten
                file.write(b"this is not a database any more" * 200)
            element.add_reading("room1", {"t": 9})
            assert await run.exit_code() == EXIT_STORE, run.err
    assert "Traceback" not in run.err and "ExceptionGroup" not in run.err
    assert run.err.splitlines()[-1].startswith(f"alertd: state file {state}: it is "), run.err


async def test_one_daemon_per_state_file(tmp_path: Path) -> None:
    """A second daemon refuses at once naming the first one's pid; the commands keep working
    beside the first; after kill -9 of the first, a new daemon starts."""
    state = tmp_path / "state.db"
    async with element_server() as element:
        config = write_config(tmp_path, element)
        async with alertd_run(config, state) as first:
            await first.wait_for(lambda: "watching" in first.err)
            second = alertd("run", "-c", str(config), "--state", str(state))
            assert second.returncode == 3
            assert second.stderr.splitlines() == [
                f"alertd: state file {state} is in use by another alertd run "
                f"(pid {first.process.pid}); one daemon per state file"]
            added = alertd("silence", "add", "--state", str(state), "--match", "rule=warm",
                           "--for", "1h")
            assert added.returncode == 0, added.stderr
            silence_id = added.stdout.split()[1]
            assert silence_id in alertd("silence", "list", "--state", str(state)).stdout
            assert alertd("alerts", "--state", str(state)).returncode == 0
            assert alertd("silence", "expire", silence_id, "--state",
                          str(state)).returncode == 0
            await trio.sleep(2 * CHECKPOINT_EVERY)  # a checkpoint after the commands closed
            element.add_reading("room1", {"t": 9})  # the daemon's writes still reach them
            await first.wait_for(lambda: "[FIRING] warm: room1" in first.out)
            listed = alertd("alerts", "--state", str(state))
            assert "warm" in listed.stdout and "firing" in listed.stdout, listed
            first.process.send_signal(signal.SIGKILL)
            assert await first.exit_code() == -signal.SIGKILL
        async with alertd_run(config, state) as third:
            await third.wait_for(lambda: "watching" in third.err)
            assert third.process.returncode is None


async def test_a_fired_alert_reaches_the_file_itself_within_two_checkpoints(
        tmp_path: Path) -> None:
    """The daemon's commits go to the write-ahead log without waiting for the disk; its
    checkpoint syncs them into the file every second, so a power cut (the file without its
    log) loses at most that last second: the firing alert is there, with its position."""
    state = tmp_path / "state.db"
    async with element_server() as element:
        config = write_config(tmp_path, element)
        async with alertd_run(config, state) as run:
            await run.wait_for(lambda: bool(element.connections) and "watching" in run.err)
            reading = element.add_reading("room1", {"t": 9})
            await run.wait_for(lambda: "[FIRING] warm: room1" in run.out)
            await trio.sleep(2 * CHECKPOINT_EVERY)
            alone = tmp_path / "alone.db"
            alone.write_bytes(state.read_bytes())  # the main file only, not its log
            db = sqlite3.connect(alone)
            try:
                alerts = db.execute("SELECT rule, entity, state FROM alerts").fetchall()
                positions = db.execute("SELECT after FROM cursors").fetchall()
            finally:
                db.close()
            assert [(rule, entity.endswith("room1"), alert) for rule, entity, alert
                    in alerts] == [("warm", True, "firing")], alerts
            assert reading["inserted_at"] in positions[0][0]


async def test_kill_9_in_the_first_second_keeps_the_replay_position(tmp_path: Path) -> None:
    """Fresh state, one reading that changes nothing, kill -9 at once: the position is on
    disk, so the readings sent while the daemon was down are replayed after the restart."""
    state = tmp_path / "state.db"
    async with element_server() as element:
        config = write_config(tmp_path, element)
        async with alertd_run(config, state) as run:
            await run.wait_for(lambda: bool(element.connections) and "watching" in run.err)
            first = element.add_reading("room1", {"t": 5})
            with trio.move_on_after(0.6):  # the old code wrote it after a second
                while first["inserted_at"] not in (cursor(state) or ""):
                    await trio.sleep(0.02)
            run.process.send_signal(signal.SIGKILL)
            await run.exit_code()
        element.add_reading("room1", {"t": 9})  # while the daemon is down
        async with alertd_run(config, state) as again:
            await again.wait_for(lambda: "[FIRING] warm: room1" in again.out)
        assert "after=" in element.connections_log[-1]


def _read_only_folder(folder: Path) -> Callable[[], None]:
    """Make ``folder`` read-only for the daemon: a read-only tmpfs when this test may mount
    one (root ignores permissions), else the permissions; returns the undo."""
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)],
                          capture_output=True)
    if done.returncode == 0:
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        return lambda: subprocess.run(["umount", "-l", str(folder)], check=False) and None
    folder.chmod(0o555)
    return lambda: folder.chmod(0o755)


@pytest.mark.parametrize("case", ["not a database", "folder cannot be made", "a folder",
                                  "read-only"])
def test_a_state_file_alertd_cannot_use_is_one_line_and_exit_1(tmp_path: Path,
                                                              case: str) -> None:
    config = tmp_path / "rules.yaml"
    config.write_text("sources: {cold: {type: element, api_key: k, subscribe: [readings]}}\n"
                      "channels: {out: console://}\n"
                      "rules: [{name: warm, threshold: {field: t, above: 8}, notify: [out]}]\n")
    state = tmp_path / "state.db"
    undo: Callable[[], None] = lambda: None  # noqa: E731
    if case == "not a database":
        state.write_text("name,value\nthis,is a csv file\n" * 100)
        want = f"alertd: state file {state}: it is not a SQLite database (not an alertd " \
               "state file)"
    elif case == "folder cannot be made":
        (tmp_path / "plain").write_text("a file, not a folder")
        state = tmp_path / "plain" / "state.db"
        want = f"alertd: state file {state}: cannot create its folder {state.parent}: "
    elif case == "a folder":
        state.mkdir()
        want = f"alertd: state file {state}: it is a folder"
    else:
        folder = tmp_path / "ro"
        folder.mkdir()
        undo = _read_only_folder(folder)
        state = folder / "state.db"
        want = f"alertd: state file {state}: "
    try:
        done = alertd("run", "-c", str(config), "--state", str(state))
    finally:
        undo()
    assert done.returncode == 3, done.stderr
    assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith(want), done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
