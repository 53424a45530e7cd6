"""The words of a notification: the rule's ``title``/``body`` templates, or defaults that
read well on a phone's lock screen and in an e-mail (rule, entity and its name, value, since
when, severity)."""

from __future__ import annotations

import dataclasses
import enum
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from alertd.config import schema as s
from alertd.escape import FIELD_LIMIT, cut, escape, needs_escape, safe
from alertd.model import NoticeKind, Notification
from alertd.notify.templates import render

TITLE_LIMIT = 250  # characters: a lock screen shows far fewer, a subject line no more
BODY_LIMIT = 4000  # characters: below Telegram's 4096 and Slack's section limit

DEFAULT_TITLE = "[{STATE}] {rule}: {entity_name}"
LISTED = 20  # alerts listed in one message: a phone screen, not a report
MARK = {kind: kind.value.upper() for kind in NoticeKind}  # {STATE} in a title


class NotifyType(enum.StrEnum):
    """apprise's notify types (its values), from least to most severe: Slack, Telegram,
    Teams and webhooks show them (a colour, an icon, the JSON ``type``)."""

    SUCCESS = "success"
    INFO = "info"
    WARNING = "warning"
    FAILURE = "failure"


_BY_SEVERITY = {"critical": NotifyType.FAILURE, "warning": NotifyType.WARNING,
                "info": NotifyType.INFO}
_RANK = list(NotifyType)


def notify_type(notes: Iterable[Notification]) -> NotifyType:
    """What apprise is told a message is (SPEC 6): a resolved notice is a success; a firing
    (or flapping) one says its severity (critical: failure, warning: warning, info: info); a
    group or digest takes the most severe of what it holds."""
    kinds = [NotifyType.SUCCESS if note.state == NoticeKind.RESOLVED
             else _BY_SEVERITY.get(note.severity, NotifyType.WARNING) for note in notes]
    return max(kinds, key=_RANK.index, default=NotifyType.INFO)


def duration_text(seconds: float) -> str:
    """45s, 12m, 3h05m, 2d04h: short enough for a lock screen."""
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m" if minutes and not secs else f"{minutes}m{secs:02d}s" if minutes \
        else f"{secs}s"


def value_text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, float):
        return f"{value:.15g}"  # 262.9138 stays 262.9138; 0.1 + 0.2 reads 0.3
    return str(value)


def outside_made_safe(note: Notification) -> Notification:
    """``note`` with every value that came from outside escaped and cut (``safe``); ``note``
    itself when none needed it (the usual notice: no copy made, and one search over all of
    its texts instead of one per value)."""
    value = note.value
    texts = [note.rule, note.entity, note.source, note.entity_name, note.field,
             *note.labels.keys(), *note.labels.values()]
    if isinstance(value, str):
        texts.append(value)  # a text value is checked as the other texts are
    if (value is None or isinstance(value, (int, float, str))) \
            and all(type(text) is str and len(text) <= FIELD_LIMIT for text in texts) \
            and not needs_escape("".join(texts) + note.description):
        return note
    if isinstance(value, str) or not isinstance(value, (int, float, type(None))):
        value = safe(str(value))
    rule, entity, source = safe(note.rule), safe(note.entity), safe(note.source)
    entity_name, field = safe(note.entity_name), safe(note.field)
    labels = {safe(key): safe(str(text)) for key, text in note.labels.items()}
    description = escape(note.description)
    return dataclasses.replace(
        note, rule=rule, entity=entity, source=source, entity_name=entity_name, field=field,
        value=value, labels=labels, description=description)


def one_line(title: str) -> str:
    """A title as it is sent: one line (a template's own line breaks become spaces), no
    control characters, at most ``TITLE_LIMIT`` characters."""
    return cut(escape(" ".join(title.splitlines())), TITLE_LIMIT)


def values(note: Notification) -> dict[str, Any]:
    """What templates may use (SPEC section 5's placeholders)."""
    since = datetime.fromtimestamp(note.since, timezone.utc)
    return {"rule": note.rule, "severity": note.severity, "state": note.state,
            "source": note.source, "entity": note.entity,
            "entity_name": note.entity_name or note.entity, "field": note.field,
            "value": "null" if note.value is None else note.value,
            "since": since.isoformat(" ", "seconds")[:19] + " UTC",  # strftime's cost x2
            "duration": duration_text(note.at - note.since), "labels": dict(note.labels),
            "description": note.description}


def compose(note: Notification, rule: s.Rule | None) -> tuple[str, str]:
    """(title, body) of one notification."""
    note = outside_made_safe(note)
    fields = values(note)
    state = MARK.get(note.state, note.state.upper()) + (" again" if note.repeat else "")
    title = render(rule.title, fields) if rule is not None and rule.title else \
        DEFAULT_TITLE.replace("{STATE}", state).format(**fields)
    title = one_line(title)
    if rule is not None and rule.body:
        return title, cut(render(rule.body, fields), BODY_LIMIT)
    lines = [f"{fields['rule']} is {state.lower()} for {fields['entity_name']}"
             + (f" ({note.entity})" if fields["entity_name"] != note.entity else ""),
             f"severity: {note.severity}"]
    if note.field:
        lines.append(f"{note.field}: {value_text(note.value)}"
                     + _change_text(rule.condition if rule is not None else None, note))
    lines.append(f"since: {fields['since']} ({fields['duration']})")
    if note.labels:
        lines.append("labels: " + ", ".join(f"{k}={v}" for k, v in sorted(note.labels.items())))
    if note.description:
        lines.append(note.description)
    return title, cut("\n".join(lines), BODY_LIMIT)


def _change_text(condition: object, note: Notification) -> str:
    """For a ``change`` rule: how much the field changed, from what, within how long (as
    the engine found it when the alert fired), or else the change the rule watches for."""
    if not isinstance(condition, s.Change) or note.state == NoticeKind.RESOLVED:
        return ""
    verb = "fell" if condition.drop is not None else "rose"
    if note.change:
        amount, start, seconds = note.change
        return (f" (it {verb} by {value_text(amount)} from {value_text(start)} within "
                f"{duration_text(seconds)})")
    watched = condition.drop if condition.drop is not None else condition.rise
    return (f" (it {verb} by {value_text(watched)} or more within "
            f"{duration_text(condition.within)})")


def summary_line(note: Notification, rule: s.Rule | None) -> str:
    """One alert in a grouped message or a digest: the rule's title when it has one."""
    note = outside_made_safe(note)
    fields = values(note)
    state = MARK.get(note.state, note.state.upper()) + (" again" if note.repeat else "")
    if rule is not None and rule.title:
        return f"{state}: {one_line(render(rule.title, fields))}"
    name = fields["entity_name"]
    text = f"{state}: {name}" + (f" ({note.entity})" if name != note.entity else "")
    if note.field:
        text += f", {note.field} {value_text(note.value)}"
    return text + f", since {fields['since'][11:16]} UTC ({fields['duration']})"


def _by_rule(notes: Sequence[Notification], rules: Mapping[str, s.Rule]) -> list[str]:
    """Alerts listed under their rule: at most ``LISTED`` in all, the rest counted."""
    order: dict[str, list[Notification]] = {}
    for note in notes:
        order.setdefault(note.rule, []).append(note)
    lines: list[str] = []
    budget = LISTED
    for name, group in order.items():
        if lines:
            lines.append("")
        lines.append(f"{name} ({group[0].severity}):")
        shown, budget = group[:budget], max(0, budget - len(group))
        lines.extend(f"  {summary_line(note, rules.get(name))}" for note in shown)
        if len(group) > len(shown):
            rest = Counter(MARK.get(n.state, n.state.upper()) for n in group[len(shown):])
            counted = ", ".join(f"{n} {state}" for state, n in rest.items())
            lines.append(f"  ... and {len(group) - len(shown)} more ({counted})" if shown
                         else f"  {counted}")
    return lines


def compose_group(notes: Sequence[Notification],
                  rules: Mapping[str, s.Rule]) -> tuple[str, str]:
    """(title, body) of the notifications one channel got within ``group_wait``: one alone
    reads as itself; several are listed by rule, the title counting them by state."""
    if len(notes) == 1:
        return compose(notes[0], rules.get(notes[0].rule))
    counts = Counter(MARK.get(note.state, note.state.upper()) for note in notes)
    names = list(dict.fromkeys(note.rule for note in notes))
    named = ", ".join(names[:3]) + (f" and {len(names) - 3} more rules" if len(names) > 3
                                     else "")
    title = "[" + ", ".join(f"{state} {n}" for state, n in counts.items()) + "] " + named
    return one_line(title), cut("\n".join(_by_rule(notes, rules)), BODY_LIMIT)


def compose_digest(firing: Sequence[Notification], settled: int, quiet_from: float,
                   rules: Mapping[str, s.Rule]) -> tuple[str, str]:
    """The message sent when a channel's quiet hours end: what is still firing, and how
    many alerts came and went meanwhile."""
    start = datetime.fromtimestamp(quiet_from, timezone.utc).strftime("%H:%M UTC")
    title = f"[DIGEST] {len(firing)} alert{'s' if len(firing) != 1 else ''} still firing " \
            f"after quiet hours"
    lines = [f"Quiet hours since {start} are over. Still firing:", "", *_by_rule(firing, rules)]
    if settled:
        lines += ["", f"{settled} more alert{'s' if settled != 1 else ''} fired and resolved "
                  "during quiet hours."]
    return title, cut("\n".join(lines), BODY_LIMIT)
