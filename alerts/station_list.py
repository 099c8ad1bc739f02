"""The month's uptime on the Station List (registered in `AlertsConfig.ready()`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from alerts.services.uptime import station_uptime_percent
from stations.list_columns import station_list_column
from stations.models import Station


@station_list_column(_("Uptime this month"))
def uptime_this_month(stations: Sequence[Station]) -> dict[int, str]:
    now = timezone.now()
    start = datetime(now.year, now.month, 1, tzinfo=UTC)
    claimed = [s for s in stations if s.cpo_id]
    figures = station_uptime_percent(
        station_ids=[s.pk for s in claimed],
        start=start,
        end=now,
        now=now,
        # Prefetched by the Station List.
        connectors=[c for s in claimed for c in s.connectors.all()],
    )
    return {pk: f"{value:.1f} %" for pk, value in figures.items() if value is not None}
