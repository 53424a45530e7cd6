"""``alertd explain`` at the edge: the engine's view of one entity (``engine/explain.py``)
with the silences and quiet hours that apply, as JSON (``/explain``) and as text.

The JSON is what the daemon's ``/explain?entity=SOURCE/ID[&rule=NAME]`` answers and what
``alertd explain`` renders, from a daemon or from a replay.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from alertd.config import schema as s
from alertd.engine.explain import EntitySeen, RuleSeen, Why
from alertd.notify.message import duration_text, value_text
from alertd.notify.mute import muted_until
from alertd.notify.silences import Silence, alert_values, covering
from alertd.rules_text import condition_text


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def explanation_json(seen: EntitySeen, config: s.Config, silences: Iterable[Silence],
                     now: float, rule: str | None = None) -> dict[str, Any]:
    silences = list(silences)
    rules = {r.name: r for r in config.rules}

    def one(x: RuleSeen, entity: str) -> dict[str, Any]:
        cfg = rules[x.rule]
        silence = covering(silences, alert_values(x.rule, entity, cfg.severity, cfg.labels),
                           now)
        quiet = {}
        for name in cfg.notify:
            channel = config.channels.get(name)
            until = muted_until(channel, now) if channel is not None else None
            if until is not None:
                quiet[name] = _iso(until)
        return {"rule": x.rule, "condition": condition_text(x.condition),
                "holds": x.holds, "known": x.known, "value": x.value,
                "bounds": None if x.bounds is None else
                {"above": x.bounds[0], "below": x.bounds[1]},
                "state": x.state, "why": str(x.why), "since": _iso(x.since), "for": x.for_,
                "pending_for": None if x.pending_for is None else round(x.pending_for, 3),
                "clearing_since": _iso(x.clearing_since), "next_check": _iso(x.next_check),
                "fields": [{"field": f.field, "newest": f.newest, "newest_at": _iso(f.newest_at),
                            "messages": f.messages, "nulls": f.nulls,
                            "window": None if f.window_low is None else
                            {"low": f.window_low, "high": f.window_high}} for f in x.fields],
                "silenced_by": None if silence is None else
                {"id": silence.id, "until": _iso(silence.ends), "comment": silence.comment},
                "quiet_hours": quiet}

    source = seen.entity.split("/", 1)[0]
    return {"entity": seen.entity, "at": _iso(now), "known": seen.known,
            "name": seen.name, "status": seen.status,
            "last_message": _iso(seen.last_msg_time), "received": _iso(seen.last_receipt),
            "source_up": seen.source_up, "next_wake": _iso(seen.next_wake),
            "rules": [one(x, seen.entity) for x in seen.rules if rule in (None, x.rule)],
            "source_rules": [one(x, source) for x in seen.source_rules
                             if rule in (None, x.rule)]}


def _ago(at: str | None, now: float) -> str:
    if at is None:
        return "never"
    epoch = datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp()
    return f"{at} ({duration_text(max(0.0, now - epoch))} ago)"


def _bounds_text(bounds: dict[str, Any] | None) -> str:
    if not bounds:
        return ""
    parts = [f"above {value_text(bounds['above'])}" if bounds["above"] is not None else "",
             f"below {value_text(bounds['below'])}" if bounds["below"] is not None else ""]
    return "; bound in force: " + " / ".join(p for p in parts if p)


def explanation_text(found: dict[str, Any], now: float) -> str:
    """The JSON above for people: one block per rule."""
    entity = found["entity"]
    lines = [f"{entity}" + (f" ({found['name']})" if found.get("name") else "")
             + f" at {found['at']}"]
    if found["source_up"] is None:
        return lines[0] + f"\n  no source '{entity.split('/', 1)[0]}' in the rule file"
    lines.append(f"  source {'up' if found['source_up'] else 'DOWN'}; last message "
                 + _ago(found["last_message"], now)
                 + (f"; status {found['status']}" if found.get("status") else ""))
    if not found["known"]:
        lines.append("  no message from this entity yet")
    if not found["rules"] and not found["source_rules"]:
        lines.append("  no rule reaches this entity")
    for x in [*found["rules"], *found["source_rules"]]:
        lines.append("")
        lines.append(f"  {x['rule']}: {x['condition']}")
        for f in x["fields"]:
            text = f"    {f['field']}: newest {value_text(f['newest'])}" if f["newest"] \
                is not None else f"    {f['field']}: no value yet"
            if f["newest_at"]:
                text += f" at {f['newest_at']}"
            text += f"; {f['nulls']} null of the last {f['messages']} message" \
                + ("" if f["messages"] == 1 else "s")
            if f["window"]:
                text += f"; window {value_text(f['window']['low'])} .. " \
                    f"{value_text(f['window']['high'])}"
            lines.append(text)
        lines.append(f"    compared: {value_text(x['value'])}{_bounds_text(x['bounds'])}; "
                     f"condition {'holds' if x['holds'] else 'does not hold'}"
                     + ("" if x["known"] else " (nothing to read)"))
        why = x["why"]
        if why == Why.PENDING:
            state = (f"PENDING since {x['since']}: held {duration_text(x['pending_for'] or 0)}"
                     f" of {duration_text(x['for'])}")
        elif why in (Why.FIRING, Why.CLEARING):
            state = f"FIRING since {x['since']}" + (
                f"; clear since {x['clearing_since']}" if why == Why.CLEARING else "")
        elif why == Why.NO_DATA:
            state = "not firing: no data"
        elif why == Why.HELD:
            state = "held still: the source is down (source_down speaks for it)"
        else:
            state = "not firing: the condition is false"
        lines.append(f"    state: {state}")
        if x["next_check"]:
            lines.append(f"    next timer: {x['next_check']}")
        if x["silenced_by"]:
            silence = x["silenced_by"]
            lines.append(f"    silenced by {silence['id']} until {silence['until']}"
                         + (f" ({silence['comment']})" if silence["comment"] else ""))
        for channel, until in x["quiet_hours"].items():
            lines.append(f"    channel {channel}: quiet hours until {until}")
    return "\n".join(lines)
