"""What ``/metrics``, ``/healthz`` and ``/alerts`` say (SPEC section 8): pure rendering.

The numbers come from the daemon's counters (``Runtime``, ``SourceStats``), the engine's
alerts and the outbox; this module only turns them into Prometheus' text exposition format
(version 0.0.4) and JSON. ``http_server.py`` serves them.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from alertd.model import SHOWN_STATES
from alertd.records import AlertView

STATES = SHOWN_STATES
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Histogram:
    """Cumulative buckets of observed seconds, as Prometheus expects them."""

    def __init__(self, buckets: Sequence[float] = LATENCY_BUCKETS) -> None:
        self.bounds = tuple(buckets)
        self.counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, seconds)] += 1
        self.total += seconds


@dataclass
class Snapshot:
    """Everything ``/metrics`` shows, read at one moment."""

    sources: Sequence[str]
    messages: Mapping[str, int]
    bad_frames: Mapping[str, int]
    open_sockets: Mapping[str, int]
    connected: Mapping[str, bool]
    alerts: Iterable[AlertView]
    delivered: int
    failed: int
    queued: Mapping[str, int]  # channel -> outbox rows
    latency: Histogram = field(default_factory=Histogram)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _family(lines: list[str], name: str, kind: str, text: str) -> None:
    lines.append(f"# HELP {name} {text}")
    lines.append(f"# TYPE {name} {kind}")


def render(snap: Snapshot) -> str:
    """The Prometheus text format of a snapshot."""
    lines: list[str] = []
    per_source = (
        ("alertd_messages_total", "counter", "messages received and evaluated",
         snap.messages),
        ("alertd_bad_frames_total", "counter", "frames or items skipped as malformed",
         snap.bad_frames),
        ("alertd_open_sockets", "gauge", "WebSocket connections open", snap.open_sockets),
    )
    for name, kind, text, values in per_source:
        _family(lines, name, kind, text)
        lines += [f'{name}{{source="{_label(s)}"}} {values.get(s, 0)}' for s in snap.sources]
    _family(lines, "alertd_source_up", "gauge", "1 when the source's connection is up")
    lines += [f'alertd_source_up{{source="{_label(s)}"}} {int(snap.connected.get(s, False))}'
              for s in snap.sources]
    counts: dict[tuple[str, str], int] = {}
    for alert in snap.alerts:
        counts[(alert.rule, alert.state)] = counts.get((alert.rule, alert.state), 0) + 1
    _family(lines, "alertd_alerts", "gauge", "alerts by rule and state")
    lines += [f'alertd_alerts{{rule="{_label(rule)}",state="{state}"}} {n}'
              for (rule, state), n in sorted(counts.items())]
    _family(lines, "alertd_deliveries_total", "counter",
            "messages delivered, and given up after an hour of retries")
    lines.append(f'alertd_deliveries_total{{result="sent"}} {snap.delivered}')
    lines.append(f'alertd_deliveries_total{{result="failed"}} {snap.failed}')
    _family(lines, "alertd_deliveries_queued", "gauge", "messages waiting in the outbox")
    lines += [f'alertd_deliveries_queued{{channel="{_label(c)}"}} {n}'
              for c, n in sorted(snap.queued.items())]
    name = "alertd_event_dispatch_seconds"
    _family(lines, name, "histogram",
            "from a frame's arrival to its events evaluated by the engine")
    cumulative = 0
    for bound, count in zip(snap.latency.bounds, snap.latency.counts, strict=False):
        cumulative += count
        lines.append(f'{name}_bucket{{le="{bound:g}"}} {cumulative}')
    cumulative += snap.latency.counts[-1]
    lines.append(f'{name}_bucket{{le="+Inf"}} {cumulative}')
    lines.append(f"{name}_sum {snap.latency.total:.6f}")
    lines.append(f"{name}_count {cumulative}")
    return "\n".join(lines) + "\n"


def alerts_json(alerts: Iterable[AlertView]) -> str:
    """``/alerts``: the alerts that are not inactive, as a JSON list."""
    return json.dumps([{"rule": a.rule, "entity": a.entity, "state": a.state, "since": a.since}
                       for a in alerts], indent=1) + "\n"


HEALTH_DOWN_DEFAULT = 60.0  # seconds a source with no source_down rule may be down


def down_tolerances(sources: Iterable[str],
                    rules: Iterable[tuple[tuple[str, ...] | None, float]]) -> dict[str, float]:
    """How long each source may be down before ``/healthz`` says so: the smallest
    ``source_down.after`` of the rules on it (``rules``: (their sources or None for all,
    after)), else ``HEALTH_DOWN_DEFAULT``."""
    tolerances = dict.fromkeys(sources, HEALTH_DOWN_DEFAULT)
    found: dict[str, float] = {}
    for names, after in rules:
        for name in tolerances if names is None else names:
            if name in tolerances:
                found[name] = min(found.get(name, after), after)
    return {**tolerances, **found}


def health_json(down_since: Mapping[str, float | None], tolerances: Mapping[str, float],
                now: float) -> tuple[int, str]:
    """``/healthz``: 200 while every source is up or down for less than its tolerance, else
    503; the body names each source's state and the sources down too long."""
    sources = {name: since is None for name, since in sorted(down_since.items())}
    down = {name: round(now - since, 1) for name, since in sorted(down_since.items())
            if since is not None
            and now - since >= tolerances.get(name, HEALTH_DOWN_DEFAULT)}
    body: dict[str, object] = {"status": "down" if down else "ok", "sources": sources}
    if down:
        body["down"] = {name: {"down_for": seconds,
                               "tolerated": tolerances.get(name, HEALTH_DOWN_DEFAULT)}
                        for name, seconds in down.items()}
    return (503 if down else 200), json.dumps(body) + "\n"
