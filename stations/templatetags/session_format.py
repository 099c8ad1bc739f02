"""Filters the session pages share: durations and energy for people."""

from __future__ import annotations

from datetime import timedelta

from django import template

register = template.Library()


@register.filter
def duration(value: timedelta | None) -> str:
    """1 h 05 min, 12 min 30 s; "—" when unknown."""
    if value is None:
        return "—"
    seconds = max(0, int(value.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {seconds:02d} s"
    return f"{seconds} s"


@register.filter
def kwh(wh: float | None) -> str:
    """Wh as kWh with 2 decimals; "—" when unknown."""
    if wh is None:
        return "—"
    return f"{wh / 1000:.2f}"


@register.filter
def kw(watts: float | None) -> str:
    if watts is None:
        return "—"
    return f"{watts / 1000:.1f}"
