"""Reaching the consumer that holds a charger's socket, in whatever process it runs.

The channel layer is at-most-once (Redis: 60 s expiry): it only says "go"; the durable
record (a Command row, the Station row) is always written first.
"""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)


class DeliveryFailed(Exception):
    """The channel layer could not take the message (e.g. Redis is down)."""


def station_notify(*, channel_name: str, event_type: str, **data: object) -> None:
    """Send `{"type": event_type, **data}` to the consumer on `channel_name`.

    Sync callers only (views, services, management commands). Raises DeliveryFailed.
    """
    if not channel_name:
        raise DeliveryFailed("station is not connected")
    layer = get_channel_layer()
    try:
        async_to_sync(layer.send)(channel_name, {"type": event_type, **data})
    except Exception as exc:
        logger.warning("Channel layer send to %s failed: %s", channel_name, exc)
        raise DeliveryFailed(str(exc)) from exc


async def station_notify_async(*, channel_name: str, event_type: str, **data: object) -> None:
    """Async twin of station_notify, for consumers and handlers."""
    if not channel_name:
        raise DeliveryFailed("station is not connected")
    layer = get_channel_layer()
    try:
        await layer.send(channel_name, {"type": event_type, **data})
    except Exception as exc:
        logger.warning("Channel layer send to %s failed: %s", channel_name, exc)
        raise DeliveryFailed(str(exc)) from exc
