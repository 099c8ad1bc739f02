"""A session's energy and power over time as a server-rendered SVG (no script, no library).

Two panels on one time axis: energy delivered so far (kWh, from the energy register less
its first reading) and total active power (kW). Axes carry round-number ticks; times are
in the active time zone (the CPO's). The SVG has a <title> and a <desc> that says in words
what the chart shows, for screen readers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import mark_safe

from stations.services.transaction_timeline import TimelineSample

WIDTH = 760
PANEL_HEIGHT = 150
LEFT, RIGHT, TOP, GAP, BOTTOM = 64, 16, 28, 44, 40


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (1, 2, 2.5, 5 × 10^n steps)."""
    if high <= low:
        high = low + 1
    raw = (high - low) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value < high + step * 0.999:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _time_ticks(start: datetime, end: datetime) -> list[datetime]:
    span = max((end - start).total_seconds(), 1)
    for step in (60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400):
        if span / step <= 8:
            break
    else:
        step = 86400 * math.ceil(span / 86400 / 8)
    local = timezone.localtime(start)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    first = midnight + timedelta(
        seconds=math.ceil((local - midnight).total_seconds() / step) * step
    )
    ticks = []
    tick = first
    while tick <= end:
        ticks.append(tick)
        tick += timedelta(seconds=step)
    return ticks


def _fmt(value: float) -> str:
    return f"{value:g}" if abs(value) >= 0.01 or value == 0 else f"{value:.3f}"


def power_from_energy(energy: Sequence[tuple[datetime, float]]) -> list[tuple[datetime, float]]:
    """Mean power (W) over each step between register readings (Wh), at the step's end."""
    power = []
    for (t0, wh0), (t1, wh1) in zip(energy, energy[1:], strict=False):
        seconds = (t1 - t0).total_seconds()
        if seconds > 0 and wh1 >= wh0:
            power.append((t1, (wh1 - wh0) * 3600 / seconds))
    return power


def session_chart_svg(samples: Sequence[TimelineSample], *, meter_start_wh: float | None) -> str:
    """The chart as SVG markup (safe to put in a page), or "" when there is nothing to draw."""
    energy = [(s.timestamp, s.energy_wh) for s in samples if s.energy_wh is not None]
    power = [(s.timestamp, s.power_w) for s in samples if s.power_w is not None]
    if not energy and not power:
        return ""
    times = [t for t, _ in energy] + [t for t, _ in power]
    start, end = min(times), max(times)
    if end <= start:
        end = start + timedelta(minutes=1)
    base = meter_start_wh if meter_start_wh is not None else (energy[0][1] if energy else 0)
    kwh = [(t, max(0.0, (wh - base) / 1000)) for t, wh in energy]
    kw = [(t, w / 1000) for t, w in power]
    power_title = "Power"
    if not kw and len(energy) > 1:
        # A charger that samples only its register: the mean power between readings.
        kw = [(t, w / 1000) for t, w in power_from_energy(energy)]
        power_title = "Power (from energy)"
    plot_width = WIDTH - LEFT - RIGHT
    height = TOP + 2 * PANEL_HEIGHT + GAP + BOTTOM
    span = (end - start).total_seconds()

    def x(moment: datetime) -> float:
        return LEFT + (moment - start).total_seconds() / span * plot_width

    parts: list[str] = []
    panels = (
        ("Energy delivered", "kWh", kwh, TOP, "chart-energy"),
        (power_title, "kW", kw, TOP + PANEL_HEIGHT + GAP, "chart-power"),
    )
    summary = []
    for title, unit, series, top, css in panels:
        values = [v for _, v in series]
        ticks = nice_ticks(0.0, max(values) if values else 1.0)
        low, high = ticks[0], ticks[-1]

        def y(value: float, top: int = top, low: float = low, high: float = high) -> float:
            return top + PANEL_HEIGHT - (value - low) / (high - low or 1) * PANEL_HEIGHT

        parts.append(
            f'<text class="chart-title" x="{LEFT}" y="{top - 10}">'
            f"{escape(title)} ({escape(unit)})</text>"
        )
        for tick in ticks:
            ty = y(tick)
            parts.append(
                f'<line class="chart-grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" '
                f'y1="{ty:.1f}" y2="{ty:.1f}"/>'
                f'<text class="chart-label" x="{LEFT - 6}" y="{ty + 4:.1f}" '
                f'text-anchor="end">{_fmt(tick)}</text>'
            )
        if series:
            points = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in series)
            parts.append(f'<polyline class="chart-line {css}" points="{points}"/>')
            if len(series) == 1:
                t, v = series[0]
                parts.append(f'<circle class="{css}" cx="{x(t):.1f}" cy="{y(v):.1f}" r="3"/>')
            summary.append(f"{title}: up to {_fmt(max(values))} {unit}")
        else:
            parts.append(
                f'<text class="chart-label" x="{LEFT + 8}" y="{top + PANEL_HEIGHT / 2:.1f}">'
                f"No {escape(title.lower())} samples</text>"
            )
    axis_y = TOP + 2 * PANEL_HEIGHT + GAP
    for tick in _time_ticks(start, end):
        tx = x(tick)
        label = timezone.localtime(tick).strftime("%H:%M" if span < 86400 * 2 else "%d.%m %H:%M")
        parts.append(
            f'<line class="chart-grid" x1="{tx:.1f}" x2="{tx:.1f}" y1="{TOP}" y2="{axis_y}"/>'
            f'<text class="chart-label" x="{tx:.1f}" y="{axis_y + 16}" '
            f'text-anchor="middle">{label}</text>'
        )
    zone = timezone.get_current_timezone_name()
    parts.append(
        f'<text class="chart-label" x="{WIDTH - RIGHT}" y="{axis_y + 34}" text-anchor="end">'
        f"Time ({escape(zone)})</text>"
    )
    first, last = timezone.localtime(start), timezone.localtime(end)
    desc = (
        f"From {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} ({zone}). "
        + ". ".join(summary)
        + "."
    )
    return mark_safe(
        f'<svg class="session-chart" role="img" aria-labelledby="chart-t chart-d" '
        f'viewBox="0 0 {WIDTH} {height}" width="100%" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="chart-t">Energy and power over the session</title>'
        f'<desc id="chart-d">{escape(desc)}</desc>' + "".join(parts) + "</svg>"
    )
