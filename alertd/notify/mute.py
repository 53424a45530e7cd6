"""Quiet hours: whether a channel's ``mute`` windows hold its notifications at a given
moment, and until when. Pure calendar arithmetic in the channel's time zone.

A window is minutes after local midnight (``start``, ``end``), crossing midnight when the end
is not after the start, on the ISO weekdays it *starts* on (every day when empty). Local
times are turned into instants with ``zoneinfo``, so a window keeps its wall-clock hours
across daylight-saving changes: "22:00-07:00" in Europe/Berlin is nine hours long on most
nights, eight or ten on the nights the clocks change.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from alertd.config import schema as s

_CHAINED = 16  # windows followed end to start (e.g. Sat-Sun 00:00-24:00): never loop forever


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _instant(day: date, minutes: int, zone: ZoneInfo) -> float:
    day = day + timedelta(days=minutes // 1440)
    hour, minute = divmod(minutes % 1440, 60)
    return datetime.combine(day, time(hour, minute), tzinfo=zone).timestamp()


def _open_window_end(windows: Sequence[s.MuteWindow], zone: ZoneInfo, now: float) -> float | None:
    """The end of a window open at ``now`` (the latest end, if several overlap)."""
    today = datetime.fromtimestamp(now, zone).date()
    ends = []
    for window in windows:
        for day in (today - timedelta(days=1), today):
            if window.days and day.isoweekday() not in window.days:
                continue
            start = _instant(day, window.start, zone)
            end_minutes = window.end if window.end > window.start else window.end + 1440
            end = _instant(day, end_minutes, zone)
            if start <= now < end:
                ends.append(end)
    return max(ends) if ends else None


def muted_until(channel: s.Channel, now: float) -> float | None:
    """When the quiet hours open at ``now`` end (None: the channel may speak now).
    Windows that follow each other without a gap count as one."""
    if not channel.mute:
        return None
    zone = _zone(channel.timezone)
    end = _open_window_end(channel.mute, zone, now)
    if end is None:
        return None
    for _ in range(_CHAINED):
        following = _open_window_end(channel.mute, zone, end)
        if following is None or following <= end:
            break
        end = following
    return end


def zone_text(timezone: str, at: float) -> str:
    """``2026-12-02 06:30 Europe/Berlin``: how a log line names the end of quiet hours (in
    the channel's time zone)."""
    moment = datetime.fromtimestamp(at, _zone(timezone))
    return f"{moment:%Y-%m-%d %H:%M} {timezone}"
