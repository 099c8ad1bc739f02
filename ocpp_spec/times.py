"""OCPP time: UTC, ISO 8601 with 'Z' and at most milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils.dateparse import parse_datetime


def utc_iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utc_now_iso() -> str:
    return utc_iso(datetime.now(UTC))


def parse_ocpp_time(value: str | None) -> datetime | None:
    """A charger's timestamp as an aware datetime; None when missing or unreadable.

    A timestamp without offset is taken as UTC (OCPP requires UTC).
    """
    if not value:
        return None
    try:
        parsed = parse_datetime(value)
    except ValueError:
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed
