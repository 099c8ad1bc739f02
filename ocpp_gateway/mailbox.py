"""One channel-layer address per daphne process, for messages to many of its chargers.

channels-redis hands a process its messages one Redis round trip at a time, under a lock
that all the process's consumers contend for: a command per message is slow to reach a
fleet (bench/RESULTS.md, command fan-out). A bulk request
(`stations.services.commands.command_request_system_many`) sends instead one message per
process, `station.commands`, to the process's mailbox
(`stations.services.notify.process_mailbox`: "<the process's prefix>!gateway"); the task
here hands each Command to the consumer holding its charger's socket.

The task runs while the process (its event loop) holds chargers: started by the first
connect, stopped with the last disconnect, like the liveness task.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from ocpp_gateway import liveness
from ocpp_gateway.db import db_call
from ocpp_gateway.runtime import PerLoop, retry_with_backoff, spawn_detached
from stations.models import Command
from stations.services.commands import command_record_failure
from stations.services.notify import process_mailbox

logger = logging.getLogger(__name__)

# Retry delays while the channel layer (Redis) is away.
RETRY_FIRST, RETRY_MAX = 0.5, 10.0


@dataclass
class _LoopState:
    task: asyncio.Task | None = None
    name: str = ""


_states: PerLoop[_LoopState] = PerLoop(_LoopState)


def _state() -> _LoopState:
    return _states.get()


def listen(layer, channel_name: str) -> None:
    """Make sure this process reads its mailbox (from a consumer's connect)."""
    mailbox = process_mailbox(channel_name)
    if layer is None or mailbox is None:
        return
    state = _state()
    if state.task is None or state.task.done():
        state.name = mailbox
        state.task = spawn_detached(_listen(layer, mailbox))


def stop() -> None:
    """The process holds no charger any more."""
    state = _state()
    if state.task is not None:
        state.task.cancel()
        state.task = None


async def _listen(layer, mailbox: str) -> None:
    def unavailable(exc: Exception) -> None:
        logger.warning("Mailbox %s: channel layer unavailable (%s); retrying", mailbox, exc)

    while True:
        message = await retry_with_backoff(
            lambda: layer.receive(mailbox),
            first=RETRY_FIRST,
            maximum=RETRY_MAX,
            on_failure=unavailable,
        )
        try:
            await deliver(message)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("Mailbox %s: could not deliver %s", mailbox, message.get("type"))


async def deliver(message: dict) -> None:
    """Hand each (channel, command) of a `station.commands` message to its consumer."""
    if message.get("type") != "station.commands":
        logger.warning("Mailbox: ignored a %r message", message.get("type"))
        return
    consumers = liveness.consumers_by_channel()
    gone = []
    for channel_name, command_id in message.get("commands") or []:
        consumer = consumers.get(channel_name)
        if consumer is None:
            gone.append(command_id)
            continue
        await consumer.station_command({"type": "station.command", "command_id": command_id})
    for command_id in gone:
        # Its charger disconnected between the request and now: say so at once rather
        # than leave the Command queued until it expires.
        await db_call(
            command_record_failure,
            command_id=command_id,
            status=Command.Status.OFFLINE,
            error="The station disconnected before the command could be sent.",
        )
