"""BootNotification of a connection on probation (a station without a password whose
live connection was challenged): it takes over only with the station's serial number."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings

from ocpp_gateway.db import db_call
from stations.models import RegistrationStatus
from stations.services.boot import BootDecision, BootInfo, station_boot
from stations.services.sessions import station_take_over_by_serial

logger = logging.getLogger(__name__)


async def boot_decision(charge_point: Any, info: BootInfo) -> BootDecision:
    """`station_boot` for the charge point's station; first, for a connection on probation,
    the take-over: Rejected (nothing stored) unless it reported the station's serial number.
    """
    session = charge_point.session
    if session.probation:
        consumer = charge_point._connection
        taken = await db_call(
            station_take_over_by_serial,
            session=session,
            channel_name=consumer.channel_name,
            serial_numbers=(info.serial_number, info.charge_box_serial_number),
        )
        if taken is None:
            return BootDecision(
                status=RegistrationStatus.REJECTED, interval=settings.OCPP_POOL_RETRY_INTERVAL
            )
        charge_point.session = taken
        if taken.replaced_channel:
            try:
                await consumer.channel_layer.send(
                    taken.replaced_channel, {"type": "station.replaced"}
                )
            except Exception:
                logger.warning("Could not tell the replaced connection of %s to close", taken.cbid)
    return await db_call(station_boot, station_id=charge_point.session.station_id, info=info)


def probation_start(charge_point: Any) -> None:
    """A connection on probation is asked to boot (TriggerMessage BootNotification): a real
    charger that merely reconnected would otherwise not report its serial number."""

    async def ask_for_boot() -> None:
        try:
            await charge_point.send_call("TriggerMessage", {"requestedMessage": "BootNotification"})
        except Exception as exc:
            logger.info("%s: no boot on request (%s)", charge_point.session.cbid, exc)

    charge_point.spawn(ask_for_boot(), "asking a connection on probation to boot")
