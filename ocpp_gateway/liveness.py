"""Per-process liveness: stations stay "online" only while some process holds them.

A daphne process killed with -9 runs no `disconnect()`: its stations would show online
forever. Each process therefore registers its live consumers here, and a task per event
loop (started on the first connect, stopped with the last disconnect) every
OCPP_LIVENESS_INTERVAL seconds:

1. refreshes `last_seen` of the stations it holds (one UPDATE for all of them),
2. marks offline every station still "connected" whose `last_seen` is older than
   OCPP_LIVENESS_STALE_AFTER intervals: its process stopped refreshing it, and
3. finishes the Commands whose outcome can no longer come (`command_expire_stale`).

`manage.py sweep_stale_connections` runs the same sweep from cron or at start-up.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.utils import timezone

from ocpp_gateway.db import db_call
from ocpp_gateway.runtime import PerLoop, spawn_detached
from stations.services.commands import command_expire_stale
from stations.services.liveness import (
    stale_cutoff,
    station_liveness_refresh,
    station_sweep_stale_connections,
)

logger = logging.getLogger(__name__)


@dataclass
class _LoopState:
    consumers: set = field(default_factory=set)
    task: asyncio.Task | None = None


_states: PerLoop[_LoopState] = PerLoop(_LoopState)


def _state() -> _LoopState:
    return _states.get()


def register(consumer) -> None:
    """A consumer accepted a charger: keep its station fresh from now on."""
    state = _state()
    state.consumers.add(consumer)
    if state.task is None or state.task.done():
        state.task = spawn_detached(_run(state))


def unregister(consumer) -> None:
    """The consumer's socket is gone."""
    state = _state()
    state.consumers.discard(consumer)
    if not state.consumers and state.task is not None:
        state.task.cancel()
        state.task = None


def consumers_by_channel() -> dict[str, object]:
    """channel name → consumer, of the chargers this event loop holds."""
    return {c.channel_name: c for c in _state().consumers if c.charge_point is not None}


def live_stations() -> dict[int, str]:
    """station id → channel name of the stations this event loop holds."""
    state = _state()
    return {
        c.charge_point.session.station_id: c.channel_name
        for c in state.consumers
        # A connection on probation does not hold its station (sessions.StationSession).
        if c.charge_point is not None and not c.charge_point.session.probation
    }


async def tick() -> int:
    """One round: refresh our stations, sweep stale ones; returns how many were swept."""
    live, as_of = live_stations(), timezone.now()
    if live:
        # Disconnects now close sessions on other threads, maybe before this runs: `as_of`
        # keeps the refresh from bringing those stations back online.
        await db_call(station_liveness_refresh, live=live, as_of=as_of)
    swept = await db_call(station_sweep_stale_connections, stale_before=stale_cutoff())
    expired = await db_call(command_expire_stale)
    if expired:
        logger.warning("Finished %d command(s) whose outcome can no longer come", expired)
    return swept


async def _run(state: _LoopState) -> None:
    while True:
        await asyncio.sleep(settings.OCPP_LIVENESS_INTERVAL)
        try:
            swept = await tick()
        except asyncio.CancelledError:
            raise
        except Exception:
            # The database may be away: try again next interval.
            logger.exception("Liveness round failed")
            continue
        if swept:
            logger.warning("Marked %d stale station connection(s) offline", swept)
