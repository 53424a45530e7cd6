"""How the notify planner copes with a storm: 20,000 notices from 40 rules, offered to three
channels (one of them in quiet hours) within a few seconds, as when a gateway comes back
and every device's alert fires at once.

Prints how long planning took per notice, how many messages came out per channel, and the
longest message body, which must stay short enough for a phone. Run:
python3 benchmarks/notify_storm.py
"""

from __future__ import annotations

import time

from alertd.config import schema as s
from alertd.errors import Loc
from alertd.model import Notification
from alertd.notify.planner import Entry, Planner

LOC = Loc("bench", 1)
T0 = 1_796_119_200.0  # 2026-12-01T10:00:00Z
RULES = [s.Rule(LOC, f"rule-{n}", s.Threshold(LOC, "t", above=8), notify=("a",),
                group_wait=5.0) for n in range(40)]
CHANNELS = {"slack": s.Channel(LOC, "slack", ("slack://x",)),
            "mail": s.Channel(LOC, "mail", ("mailto://x",)),
            "night": s.Channel(LOC, "night", ("tgram://x",),
                               (s.MuteWindow(9 * 60, 11 * 60),))}  # 09:00-11:00 UTC


def main(notices: int = 20_000) -> None:
    planner = Planner(RULES, CHANNELS)
    sent: dict[str, int] = {name: 0 for name in CHANNELS}
    longest = 0
    started = time.perf_counter()
    offered = 0
    for n in range(notices):
        now = T0 + n * (3.0 / notices)  # the whole storm within 3 s
        note = Notification(RULES[n % 40].name, f"fleet/{n}", "firing", now, now, "warning",
                            "fleet", str(n), "t", 9.5)
        entries = [Entry(offered + k, channel, note) for k, channel in enumerate(CHANNELS, 1)]
        offered += len(entries)
        plan = planner.step(entries, now)
        for message in plan.messages:
            sent[message.channel] += 1
            longest = max(longest, len(message.body))
    while (due := planner.next_deadline()) is not None:
        plan = planner.on_timer(due)
        for message in plan.messages:
            sent[message.channel] += 1
            longest = max(longest, len(message.body))
    elapsed = time.perf_counter() - started
    print(f"{offered} notices planned in {elapsed:.2f} s "
          f"({1e6 * elapsed / offered:.1f} µs per notice per channel)")
    for channel, count in sent.items():
        print(f"  {channel:6s} {count:4d} message(s)")
    print(f"  longest body: {longest} characters")


if __name__ == "__main__":
    main()
