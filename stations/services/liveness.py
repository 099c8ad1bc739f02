"""Liveness: stations stay "online" only while some gateway process holds them.

Each gateway process refreshes `last_seen` of the stations it holds and sweeps the ones
whose process stopped doing so (`ocpp_gateway.liveness`, `manage.py
sweep_stale_connections`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from stations.bulk import bulk_update
from stations.models import Station


def stale_cutoff(now: datetime | None = None) -> datetime:
    """Stations "connected" but not seen since this moment have lost their process."""
    now = now or timezone.now()
    interval = settings.OCPP_LIVENESS_INTERVAL
    return now - timedelta(seconds=interval * settings.OCPP_LIVENESS_STALE_AFTER)


def unheld_cutoff(now: datetime | None = None) -> datetime:
    """Stations "connected" but not seen since this moment are held by no live process.

    Every live process refreshes `last_seen` of the stations it holds each
    OCPP_LIVENESS_INTERVAL; half an interval more allows for a slow round. A station
    swept by mistake (its process was late) is brought back by that process's next
    refresh (`station_liveness_refresh`).
    """
    now = now or timezone.now()
    return now - timedelta(seconds=settings.OCPP_LIVENESS_INTERVAL * 1.5)


def station_liveness_refresh(*, live: dict[int, str], as_of: datetime | None = None) -> None:
    """A process still holds these stations (id → channel name): they are alive.

    One UPDATE per 1,000 stations. A station that a sweep marked offline meanwhile (the
    database was away and `last_seen` aged) is marked connected again, unless another
    connection took it over. `as_of`: when `live` was taken; a station that went offline
    after it (its charger disconnected meanwhile, the close ran on another thread) stays
    offline.
    """
    now = timezone.now()
    as_of = as_of or now
    ids = list(live)
    with transaction.atomic():
        for start in range(0, len(ids), 1000):
            Station.objects.filter(pk__in=ids[start : start + 1000]).update(last_seen=now)
        swept = Station.objects.filter(pk__in=ids, connected=False, channel_name="").filter(
            Q(disconnected_at__lt=as_of) | Q(disconnected_at__isnull=True)
        )
        for station_id in swept.values_list("pk", flat=True):
            Station.objects.filter(pk=station_id, connected=False, channel_name="").update(
                connected=True, channel_name=live[station_id]
            )


def station_sweep_stale_connections(*, stale_before: datetime) -> int:
    """Mark offline the stations still "connected" but not seen since `stale_before`.

    Their process died without a disconnect (kill -9, a crashed host). Returns how many.
    """
    return (
        Station.objects.filter(connected=True)
        .filter(Q(last_seen__lt=stale_before) | Q(last_seen__isnull=True))
        .update(connected=False, channel_name="", disconnected_at=timezone.now())
    )


def stations_last_seen_set(seen: dict[int, datetime]) -> None:
    """Set each station's `last_seen` (station id → time) in one statement.

    Every frame proves its station alive; one UPDATE per station seen in a flush
    interval would be one per connected charger per second.
    """
    bulk_update(Station, keys=("id",), columns=("last_seen",), rows=list(seen.items()))
