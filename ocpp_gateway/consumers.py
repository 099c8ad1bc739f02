"""The websocket consumer chargers connect to: transport only.

Handshake (CBID, subprotocol, credentials), then every text frame goes to the station's
version-specific ChargePoint (`ocpp_gateway.handlers`). Channel-layer events let any
process reach the socket: `station.command`, `station.refresh`, `station.replaced`.
"""

from __future__ import annotations

import logging

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from ocpp_gateway.auth import parse_basic_auth
from ocpp_gateway.commands import run_command
from ocpp_gateway.handlers import charge_point_class
from ocpp_gateway.identity import InvalidCbid, negotiate_subprotocol, validate_cbid
from ocpp_gateway.message_log import message_log
from ocpp_gateway.protocol import StationContext
from ocpp_gateway.refusals import refuse
from stations.models import ConnectionAttempt
from stations.services.registration import (
    ConnectionRefused,
    station_close_session,
    station_open_session,
    station_session_reload,
)

logger = logging.getLogger(__name__)

# Close code for a connection replaced by a newer one of the same station.
CLOSE_REPLACED = 4000


class StationConsumer(AsyncWebsocketConsumer):
    charge_point = None

    async def connect(self) -> None:
        raw_cbid = self.scope["url_route"]["kwargs"].get("cbid", "")
        try:
            cbid = validate_cbid(raw_cbid)
        except InvalidCbid as exc:
            await refuse(
                self.scope, reason=ConnectionAttempt.Reason.BAD_CBID, detail=str(exc), cbid=raw_cbid
            )
            await self.close()
            return
        offered = self.scope.get("subprotocols") or []
        negotiated = negotiate_subprotocol(offered)
        if negotiated is None:
            await refuse(
                self.scope,
                reason=ConnectionAttempt.Reason.UNSUPPORTED_SUBPROTOCOL,
                detail=f"offered {offered!r}"[:200],
                cbid=cbid,
            )
            await self.close()
            return
        subprotocol, version = negotiated
        try:
            session = await database_sync_to_async(station_open_session)(
                cbid=cbid,
                version=version,
                channel_name=self.channel_name,
                credentials=parse_basic_auth(self.scope.get("headers", [])),
                secure=self.scope.get("scheme") == "wss",
            )
        except ConnectionRefused as exc:
            await refuse(self.scope, reason=exc.reason, detail=exc.detail, cbid=cbid)
            await self.close()
            return
        except Exception:
            # The database is down or similar: refuse (HTTP 403), never a 500; it retries.
            logger.exception("Could not open a session for %s", cbid)
            await self.close()
            return
        if session.replaced_channel:
            await self.channel_layer.send(session.replaced_channel, {"type": "station.replaced"})
        await self.accept(subprotocol=subprotocol)
        context = StationContext(
            station_id=session.station_id,
            cbid=session.cbid,
            version=version,
            registration_status=session.registration_status,
            cpo_id=session.cpo_id,
            lenient=session.lenient,
            free_usage=session.free_usage,
        )
        self.charge_point = charge_point_class(version)(
            context, self, log=message_log, call_timeout=settings.OCPP_CALL_TIMEOUT
        )
        logger.info("Station %s connected (OCPP %s)", cbid, version)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None:
            # OCPP-J uses text frames: the frame path refuses a binary one (or reads it as
            # text for a lenient station) rather than drop it unanswered.
            raw = (bytes_data or b"").decode("utf-8", errors="replace")
            await self.charge_point.route_message(raw, binary=True)
            return
        await self.charge_point.route_message(text_data)

    async def disconnect(self, code: int) -> None:
        if self.charge_point is None:
            return
        self.charge_point.close()
        await database_sync_to_async(station_close_session)(
            station_id=self.charge_point.context.station_id, channel_name=self.channel_name
        )
        await message_log.flush()
        logger.info("Station %s disconnected (code %s)", self.charge_point.context.cbid, code)

    # ---- channel-layer events ---------------------------------------------------------

    async def station_replaced(self, event: dict) -> None:
        """A newer connection of this station was accepted: this one goes."""
        logger.info(
            "Closing replaced connection of %s",
            self.charge_point and self.charge_point.context.cbid,
        )
        await self.close(code=CLOSE_REPLACED)

    async def station_refresh(self, event: dict) -> None:
        """The station's registration changed (claimed, settings): reload it."""
        if self.charge_point is None:
            return
        session = await database_sync_to_async(station_session_reload)(
            station_id=self.charge_point.context.station_id
        )
        context = self.charge_point.context
        context.cpo_id = session.cpo_id
        context.registration_status = session.registration_status
        context.lenient = session.lenient
        context.free_usage = session.free_usage

    async def station_command(self, event: dict) -> None:
        """Send a queued Command to the charger, without blocking the receive path."""
        if self.charge_point is None:
            return
        self.charge_point.spawn(
            run_command(self.charge_point, event["command_id"]), f"command {event['command_id']}"
        )
