"""The websocket consumer chargers connect to: transport only.

Handshake (CBID, subprotocol, credentials), then every text frame goes to the station's
version-specific ChargePoint (`ocpp_gateway.handlers`). Channel-layer events let any
process reach the socket: `station.command`, `station.refresh`, `station.replaced`.
"""

from __future__ import annotations

import asyncio
import logging

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from ocpp_gateway import liveness, log_context, mailbox, metrics
from ocpp_gateway.auth import connection_is_secure, parse_basic_auth
from ocpp_gateway.commands import run_command
from ocpp_gateway.db import db_call
from ocpp_gateway.handlers import charge_point_class
from ocpp_gateway.message_log import message_log
from ocpp_gateway.refusals import refuse, remote_addr
from ocpp_gateway.runtime import TaskSet, retry_with_backoff
from ocpp_gateway.takeover import probation_start
from ocpp_spec.close_codes import (
    CLOSE_INTERNAL_ERROR,
    CLOSE_MESSAGE_TOO_BIG,
    CLOSE_REPLACED,
)
from ocpp_spec.identity import InvalidCbid, negotiate_subprotocol, validate_cbid
from stations.models import Command, ConnectionAttempt
from stations.services.commands import command_record_failure
from stations.services.refusals import ConnectionRefused
from stations.services.sessions import (
    station_close_session,
    station_open_session,
    station_session_reload,
)

logger = logging.getLogger(__name__)


# Retry delays while the channel layer (Redis) is away.
CHANNEL_RETRY_FIRST, CHANNEL_RETRY_MAX = 0.5, 10.0


class StationConsumer(AsyncWebsocketConsumer):
    charge_point = None
    _raw_channel_receive = None
    _session_closed = False
    # The websocket is closed (websocket.disconnect received).
    _socket_gone = False
    # The connected-chargers gauge this consumer counts in (None once it left).
    _connected_metric = None

    # Channels reads channel-layer messages with `self.channel_receive()` in the same loop
    # as the websocket's; one exception there (Redis down) would end the consumer and
    # drop the charger. The setter catches what Channels assigns; the getter hands back a
    # receive that waits for the layer to come back instead. Charger traffic goes on;
    # commands fail visibly (their sender cannot reach Redis either) until it returns.
    @property
    def channel_receive(self):
        return self._resilient_channel_receive

    @channel_receive.setter
    def channel_receive(self, receive) -> None:
        self._raw_channel_receive = receive

    async def _resilient_channel_receive(self) -> dict:
        return await retry_with_backoff(
            self._raw_channel_receive,
            first=CHANNEL_RETRY_FIRST,
            maximum=CHANNEL_RETRY_MAX,
            on_failure=_channel_layer_unavailable,
        )

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except asyncio.CancelledError:
            # Daphne kills an application that outlives its socket (application close
            # timeout) without a websocket.disconnect: do what disconnect() would have.
            if self.charge_point is not None and not self._session_closed:
                self._session_closed = True
                _leave(self)
                self.charge_point.close()
                _close_session_later(self.charge_point.session.station_id, self.channel_name)
            raise
        except Exception:
            if self.charge_point is None:
                raise  # The handshake failed: daphne refuses it.
            # Whatever broke, the charger must not stay a ghost: close its socket with a
            # code autobahn sends, and run the session cleanup disconnect() would have.
            logger.exception(
                "Station %s: the connection failed; closing it (%d)",
                self.charge_point.session.cbid,
                CLOSE_INTERNAL_ERROR,
            )
            await self._crashed()

    async def _crashed(self) -> None:
        if not self._socket_gone:
            self.charge_point.stop_reading()
            try:
                await self.close(code=CLOSE_INTERNAL_ERROR)
            except Exception:
                logger.warning("Could not close the socket of %s", self.charge_point.session.cbid)
        try:
            await self._end_session()
        except Exception:
            # The database is away: the liveness sweep marks the station offline later.
            logger.exception("Could not close the session of %s", self.charge_point.session.cbid)

    async def dispatch(self, message: dict) -> None:
        # Channels' own dispatch first runs close_old_connections through sync_to_async,
        # on the process's one thread-sensitive thread: a thread hop per frame, which
        # serialised every charger of the process behind that thread. This consumer never
        # touches the database on the event loop; `db_call` manages connections on the
        # database threads, before and after each call.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

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
        # This consumer's task and what it starts log with the CBID (LOG_FORMAT=json).
        log_context.cbid.set(cbid)
        opening = asyncio.ensure_future(
            db_call(
                station_open_session,
                cbid=cbid,
                version=version,
                channel_name=self.channel_name,
                credentials=parse_basic_auth(self.scope.get("headers", [])),
                secure=connection_is_secure(self.scope),
                remote_addr=remote_addr(self.scope),
            )
        )
        try:
            session = await asyncio.shield(opening)
        except asyncio.CancelledError:
            # Daphne gave up on the handshake (connect timeout, then close timeout) while
            # the session was being opened. The call finishes anyway: close the session
            # then, or the station shows online with a channel nobody listens on.
            opening.add_done_callback(self._close_abandoned_session)
            raise
        except ConnectionRefused as exc:
            await refuse(self.scope, reason=exc.reason, detail=exc.detail, cbid=exc.cbid or cbid)
            await self.close()
            return
        except Exception:
            # The database is down or similar: refuse (HTTP 403), never a 500; it retries.
            logger.exception("Could not open a session for %s", cbid)
            await self.close()
            return
        if session.replaced_channel:
            try:
                await self.channel_layer.send(
                    session.replaced_channel, {"type": "station.replaced"}
                )
            except Exception:
                metrics.CHANNEL_LAYER_ERRORS.labels("send").inc()
                # Redis is away: the old socket stays until its charger or daphne's pings
                # drop it; its disconnect cannot mark this newer session offline.
                logger.warning("Could not tell the replaced connection of %s to close", cbid)
        try:
            self.charge_point = charge_point_class(version)(
                session, self, log=message_log, call_timeout=settings.OCPP_CALL_TIMEOUT
            )
        except Exception:
            # The session is open: it must not outlive this failure as a ghost.
            _close_session_later(session.station_id, self.channel_name)
            raise
        # From here on a failure is a crash of a session: __call__ cleans it up.
        await self.accept(subprotocol=subprotocol)
        if session.probation:
            probation_start(self.charge_point)
        self._connected_metric = metrics.CONNECTED.labels(version)
        self._connected_metric.inc()
        liveness.register(self)
        mailbox.listen(self.channel_layer, self.channel_name)
        logger.info("Station %s connected (OCPP %s)", cbid, version)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.charge_point is None:
            return
        if _too_big(text_data, bytes_data):
            await self._close_too_big(text_data, bytes_data)
            return
        if text_data is None:
            # OCPP-J uses text frames: the frame path refuses a binary one (or reads it as
            # text for a lenient station) rather than drop it unanswered.
            raw = (bytes_data or b"").decode("utf-8", errors="replace")
            await self.charge_point.route_message(raw, binary=True)
            return
        await self.charge_point.route_message(text_data)

    async def disconnect(self, code: int) -> None:
        self._socket_gone = True
        if self.charge_point is None:
            return
        await self._end_session()
        await message_log.flush()
        logger.info("Station %s disconnected (code %s)", self.charge_point.session.cbid, code)

    async def _end_session(self) -> None:
        """The session cleanup, once: out of this process's registries, background work
        stopped (a command being sent fails visibly), the station offline and its queued
        commands failed (`station_close_session`)."""
        if self.charge_point is None or self._session_closed:
            return
        self._session_closed = True
        _leave(self)
        self.charge_point.close()
        await db_call(
            station_close_session,
            station_id=self.charge_point.session.station_id,
            channel_name=self.channel_name,
        )

    def _close_abandoned_session(self, opening: asyncio.Future) -> None:
        if opening.cancelled() or opening.exception() is not None:
            return
        _close_session_later(opening.result().station_id, self.channel_name)

    # ---- channel-layer events ---------------------------------------------------------

    async def station_replaced(self, event: dict) -> None:
        """A newer connection of this station was accepted: this one goes."""
        logger.info(
            "Closing replaced connection of %s",
            self.charge_point and self.charge_point.session.cbid,
        )
        await self.close(code=CLOSE_REPLACED)

    async def station_refresh(self, event: dict) -> None:
        """The station's registration changed (claimed, settings): reload it."""
        if self.charge_point is None:
            return
        self.charge_point.session = await db_call(
            station_session_reload, session=self.charge_point.session
        )

    async def station_command(self, event: dict) -> None:
        """Send a queued Command to the charger, without blocking the receive path."""
        if self.charge_point is None:
            return
        command_id = event["command_id"]
        task = self.charge_point.spawn(
            run_command(self.charge_point, command_id), f"command {command_id}"
        )
        if task is None:
            # Too much work queued on this connection already: fail it visibly.
            await db_call(
                command_record_failure,
                command_id=command_id,
                status=Command.Status.ERROR,
                error="Too many commands are waiting for this station; try again later.",
            )

    async def _close_too_big(self, text_data: str | None, bytes_data: bytes | None) -> None:
        size = (
            len(text_data.encode("utf-8", "surrogatepass"))
            if text_data is not None
            else len(bytes_data or b"")
        )
        session = self.charge_point.session
        logger.warning(
            "Station %s sent a %d-byte frame (limit %d): closing with %d",
            session.cbid,
            size,
            settings.OCPP_MAX_FRAME_BYTES,
            CLOSE_MESSAGE_TOO_BIG,
        )
        message_log.record(
            station_id=session.station_id,
            cbid=session.cbid,
            direction="in",
            message_type=None,
            raw=f"(frame of {size} bytes over the {settings.OCPP_MAX_FRAME_BYTES}-byte limit)",
        )
        self.charge_point.stop_reading()
        await self.close(code=CLOSE_MESSAGE_TOO_BIG)


def _leave(consumer: StationConsumer) -> None:
    """The consumer's charger is gone from this process's registries."""
    if consumer._connected_metric is not None:
        consumer._connected_metric.dec()
        consumer._connected_metric = None
    liveness.unregister(consumer)
    if not liveness.consumers_by_channel():
        mailbox.stop()


def _channel_layer_unavailable(exc: Exception) -> None:
    metrics.CHANNEL_LAYER_ERRORS.labels("receive").inc()
    logger.warning("Channel layer unavailable (%s); retrying", exc)


# Sessions being closed for consumers that are gone: referenced until done.
_closing_tasks = TaskSet(logger)


def _close_session_later(station_id: int, channel_name: str) -> None:
    """Mark the station offline in the background: its consumer is gone (cancelled)."""

    async def close() -> None:
        try:
            if await db_call(
                station_close_session, station_id=station_id, channel_name=channel_name
            ):
                logger.warning(
                    "Closed the session of station %s left by a dropped socket", station_id
                )
        except Exception:
            logger.exception("Could not close the session of station %s", station_id)

    _closing_tasks.spawn(close(), f"closing the session of station {station_id}")


def _too_big(text_data: str | None, bytes_data: bytes | None) -> bool:
    limit = settings.OCPP_MAX_FRAME_BYTES
    if text_data is None:
        return len(bytes_data or b"") > limit
    # A character is 1 to 4 bytes of UTF-8: encode only when the length leaves it open.
    if len(text_data) > limit:
        return True
    if len(text_data) * 4 <= limit:
        return False
    return len(text_data.encode("utf-8", "surrogatepass")) > limit
