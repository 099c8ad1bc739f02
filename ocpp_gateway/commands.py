"""Sending a queued Command to the charger on this connection, and recording the outcome.

Runs as a task spawned by the consumer's `station.command` event: never in the receive
path, whose next frame is the very answer awaited here (DESIGN.md §2, §4).
"""

from __future__ import annotations

import asyncio
import logging
import weakref

from ocpp_gateway import metrics
from ocpp_gateway.db import db_call
from ocpp_gateway.protocol import CallErrorReceived
from ocpp_spec.commands import ERROR, interpret_result, kind_for_action
from stations.models import Command
from stations.services.commands import (
    command_mark_sent,
    command_record_failure,
    command_record_result,
)

logger = logging.getLogger(__name__)

# Commands to one charger go one after the other, and a Command becomes "sent" only when
# its turn comes (send_call's own lock would also serialise them, but then a Command
# waiting behind a silent charger would look sent). Weak: the lock goes with the connection.
_command_locks: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _lock_for(charge_point) -> asyncio.Lock:
    lock = _command_locks.get(charge_point)
    if lock is None:
        lock = _command_locks[charge_point] = asyncio.Lock()
    return lock


async def run_command(charge_point, command_id: int) -> None:
    """Send Command `command_id` to the charger and record what came of it.

    Does nothing if the Command is not queued for this station any more (handled by
    another connection, finished, expired). The outcome is written even when the
    connection closes meanwhile (`charge_point.close()` cancels this task).
    """
    session = charge_point.session
    sent = False
    try:
        async with _lock_for(charge_point):
            to_send = await db_call(
                command_mark_sent, command_id=command_id, station_id=session.station_id
            )
            if to_send is None:
                return
            sent = True
            response = await charge_point.send_call(to_send.action, to_send.payload)
    except (asyncio.CancelledError, ConnectionError) as exc:
        # The socket closed: close() fails the pending call and cancels this task.
        await _finish_failure(command_id, sent=sent)
        if isinstance(exc, asyncio.CancelledError):
            raise
        return
    except CallErrorReceived as exc:
        await _record(
            command_record_result,
            command_id=command_id,
            status=Command.Status.ERROR,
            response={
                "errorCode": exc.code,
                "errorDescription": exc.description,
                "errorDetails": exc.details,
            },
            error=" ".join(
                part for part in ("The charger answered", exc.code + ":", exc.description) if part
            ),
        )
        return
    except TimeoutError:
        await _record(
            command_record_failure,
            command_id=command_id,
            status=Command.Status.TIMED_OUT,
            error="The charger did not answer in time.",
        )
        return
    except ValueError as exc:
        # The payload broke the schema (never sent) or the answer was not an object.
        await _record(
            command_record_failure,
            command_id=command_id,
            status=Command.Status.ERROR,
            error=str(exc),
        )
        return
    except Exception:
        logger.exception("%s: command %s failed", session.cbid, command_id)
        await _record(
            command_record_failure,
            command_id=command_id,
            status=Command.Status.ERROR,
            error="Internal error while sending the command.",
        )
        return

    kind = kind_for_action(to_send.action)
    try:
        status = interpret_result(session.version, kind, response)
    except ValueError:
        logger.exception("%s: cannot interpret the answer to %s", session.cbid, to_send.action)
        status = ERROR
    error = "" if status != ERROR else "The charger's answer was not understood."
    await _record(
        command_record_result,
        command_id=command_id,
        status=status,
        response=response,
        error=error,
    )


async def _finish_failure(command_id: int, *, sent: bool) -> None:
    if sent:
        status = Command.Status.ERROR
        error = (
            "The connection closed before the charger answered; "
            "it may still have acted on the command."
        )
    else:
        status = Command.Status.OFFLINE
        error = "The station disconnected before the command could be sent."
    await _record(command_record_failure, command_id=command_id, status=status, error=error)


async def _record(service, **kwargs) -> None:
    metrics.COMMAND_RESULTS.labels(str(kwargs.get("status", "unknown"))).inc()
    # Shielded: a disconnect cancels this task, and the outcome must be written anyway.
    try:
        await asyncio.shield(db_call(service, **kwargs))
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.exception("Recording the outcome of command %s failed", kwargs.get("command_id"))
