"""The OCPP message log of one station, as the station log page reads it."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from django.db.models import QuerySet
from django.utils import timezone

from stations.models import OcppMessage, Station

DEFAULT_WINDOW = timedelta(hours=24)
# Periodic traffic that buries what a technician looks for. Answers carry the action of
# their CALL (the gateway logs them so), so both halves are hidden.
NOISE_ACTIONS = ("Heartbeat", "MeterValues")


def station_log(
    *, station: Station, since: datetime | None = None, hide_noise: bool = False
) -> QuerySet[OcppMessage]:
    """The station's OCPP frames since `since` (default: the last 24 h), newest first.

    `hide_noise` leaves out heartbeats and meter values, requests and answers alike.
    Uses the (station, -created_at) index; slice or paginate the result.
    """
    if since is None:
        since = timezone.now() - DEFAULT_WINDOW
    messages = OcppMessage.objects.filter(station=station, created_at__gte=since)
    if hide_noise:
        messages = messages.exclude(action__in=NOISE_ACTIONS)
    return messages.order_by("-created_at", "-id")


def message_payload_text(message: OcppMessage) -> str:
    """The frame's payload as indented JSON for reading (the raw text of an unparseable one)."""
    if message.payload is None:
        return message.raw
    return json.dumps(message.payload, indent=2, ensure_ascii=False, sort_keys=False)
