"""The daemon's clock knows a virtual clock (the tests', the demo's) from trio's own without
importing ``trio.testing``, which brings pytest in wherever it is installed."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import trio
import trio.testing

from alertd.clock import Clock


async def test_a_mock_clock_is_virtual(autojump_clock: trio.testing.MockClock) -> None:
    assert Clock().virtual


def test_the_real_clock_is_not_virtual_and_imports_no_test_tools() -> None:
    script = textwrap.dedent("""\
        import sys, trio
        from alertd.clock import Clock
        async def main():
            print(Clock().virtual, "trio.testing" in sys.modules, "pytest" in sys.modules)
        trio.run(main)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False", "False"]
