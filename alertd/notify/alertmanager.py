"""The planner's stage for Alertmanager channels (``alertmanager://`` URLs). Pure; ``now`` is
passed in.

Such a channel hands alertd's alerts to Alertmanager the way Prometheus does, and leaves
grouping, quiet hours, repeats, routing and silences to it (docs/notifications.md):

  * every notice for the channel passes through at once, unchanged: no ``group_wait``, no
    quiet-hours digest, and alertd's own silences do not hold it (silence in Alertmanager,
    so that every alertd of an HA pair is silenced alike);
  * each firing alert is posted again every ``resend`` seconds (the channel's ``resend:``,
    default 1m) with ``endsAt`` ``ENDS_AFTER`` resend intervals ahead, as Prometheus does
    (4 x its resend delay): if every alertd that knows the alert dies, Alertmanager resolves
    it by itself once ``endsAt`` passes;
  * a resolved notice is posted with ``endsAt`` = when it resolved.

Labels are ``alertname`` (the rule), ``entity``, ``source``, ``severity`` and the rule's
``labels`` (alertd's own four win a clash); two alertd processes with the same rule file
therefore post identical label sets, and Alertmanager de-duplicates them: an HA pair pages
once. Annotations are ``summary`` (the title) and ``description`` (the body).

Invariants: every entry offered for an Alertmanager channel is consumed at once in a
message of its own; a channel with firing alerts always has a resend due
(``next_deadline``); nothing in here groups or holds a notice.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from dataclasses import dataclass
from typing import Any

from alertd.config import schema as s
from alertd.model import NoticeKind, Notification
from alertd.notify.message import compose

ENDS_AFTER = 4  # resend intervals a firing alert's endsAt lies ahead (Prometheus: 4)
PER_POST = 500  # alerts in one resend POST: a large fleet's resend is a few requests
_NOT_IN_NAME = re.compile(r"[^a-zA-Z0-9_]")

AlertKey = tuple[str, str]  # (rule, entity)


def timestamp(at: float) -> str:
    """RFC 3339 in UTC with milliseconds, as Alertmanager's API takes it."""
    return datetime.fromtimestamp(at, timezone.utc).isoformat(timespec="milliseconds") \
        .replace("+00:00", "Z")


def label_name(name: str) -> str:
    """A rule's label key as a valid Alertmanager label name (``[a-zA-Z_][a-zA-Z0-9_]*``):
    other characters become ``_`` (Alertmanager refuses the whole post otherwise)."""
    name = _NOT_IN_NAME.sub("_", name)
    return f"_{name}" if not name or name[0].isdigit() else name


def labels(note: Notification) -> dict[str, str]:
    """The alert's identity in Alertmanager (what it de-duplicates and routes on)."""
    out = {label_name(key): str(value) for key, value in note.labels.items() if str(value)}
    out.update({"alertname": note.rule, "entity": note.entity, "source": note.source,
                "severity": note.severity})
    return {key: value for key, value in out.items() if value}


def alert(note: Notification, rule: s.Rule | None, now: float, resend: float,
          generator_url: str | None) -> dict[str, Any]:
    """One element of the ``/api/v2/alerts`` list."""
    title, body = compose(note, rule)
    annotations = {"summary": title, "description": body}
    if note.state == NoticeKind.FLAPPING:
        annotations["flapping"] = "true"
    ends = note.at if note.state == NoticeKind.RESOLVED else now + ENDS_AFTER * resend
    out: dict[str, Any] = {"labels": labels(note), "annotations": annotations,
                           "startsAt": timestamp(min(note.since, ends)),
                           "endsAt": timestamp(ends)}
    if generator_url:
        out["generatorURL"] = generator_url
    return out


def payload(notes: Iterable[Notification], rules: Mapping[str, s.Rule], now: float,
            resend: float, generator_url: str | None) -> str:
    """The body of one POST: a JSON list of alerts."""
    return json.dumps([alert(note, rules.get(note.rule), now, resend, generator_url)
                       for note in notes], ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class Post:
    """One POST for a channel's URLs: the title is for the log and the outbox, the body
    is the JSON list of alerts."""

    channel: str
    title: str
    body: str
    notes: tuple[Notification, ...]


def test_payload(title: str, body: str, now: float) -> str:
    """What ``alertd notify`` posts to an Alertmanager channel: one alert named
    ``alertd_test`` (severity info) that ends by itself after 5 minutes."""
    return json.dumps([{"labels": {"alertname": "alertd_test", "severity": "info",
                                   "source": "alertd"},
                        "annotations": {"summary": title, "description": body},
                        "startsAt": timestamp(now), "endsAt": timestamp(now + 300)}])


class AlertmanagerStage:
    """Passes the notices of Alertmanager channels through, and resends firing alerts."""

    def __init__(self, rules: Mapping[str, s.Rule], channels: Mapping[str, s.Channel],
                 generator_url: str | None = None) -> None:
        self.rules = rules
        self.channels = {name: c for name, c in channels.items() if c.alertmanager}
        self.generator_url = generator_url
        self._active: dict[str, dict[AlertKey, Notification]] = {c: {} for c in self.channels}
        self._due: dict[str, float] = {}

    def handles(self, channel: str) -> bool:
        return channel in self.channels

    def seed(self, firing: Iterable[Notification]) -> None:
        """Alerts restored firing at start: posted at the first ``on_timer`` (Alertmanager
        may have let them end while alertd was stopped), then resent."""
        for note in firing:
            rule = self.rules.get(note.rule)
            for channel in rule.notify if rule is not None else ():
                if channel in self._active:
                    self._active[channel][(note.rule, note.entity)] = note
                    self._due[channel] = 0.0

    def settle(self, rule: str, entity: str) -> None:
        """An alert ended without a notice: no more resends (Alertmanager ends it at its
        ``endsAt``)."""
        for active in self._active.values():
            active.pop((rule, entity), None)

    def offer(self, channel: str, note: Notification, now: float) -> Post:
        """The post of one notice for ``channel``, at once."""
        key = (note.rule, note.entity)
        active = self._active[channel]
        if note.state == NoticeKind.RESOLVED:
            active.pop(key, None)
        else:
            active[key] = note
            self._due.setdefault(channel, now + self.channels[channel].resend)
        return Post(channel, f"{note.rule} {note.entity} {note.state}",
                    self._payload([note], channel, now), (note,))

    def next_deadline(self) -> float | None:
        return min(self._due.values(), default=None)

    def on_timer(self, now: float) -> list[Post]:
        """Every firing alert of each channel whose resend is due, in one or a few posts;
        the next resend is set."""
        posts = []
        for channel, due in list(self._due.items()):
            if due > now:
                continue
            notes = list(self._active[channel].values())
            if not notes:
                del self._due[channel]
                continue
            self._due[channel] = now + self.channels[channel].resend
            for start in range(0, len(notes), PER_POST):
                part = tuple(notes[start:start + PER_POST])
                posts.append(Post(channel, f"resend of {len(part)} firing "
                                           f"alert{'s' * (len(part) != 1)}",
                                  self._payload(part, channel, now), part))
        return posts

    def _payload(self, notes: Iterable[Notification], channel: str, now: float) -> str:
        return payload(notes, self.rules, now, self.channels[channel].resend,
                       self.generator_url)
