"""Running a simulated charger: connecting, its whole life, or step by step."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import websockets

from simulator.base import (
    CLOSE_REPLACED,
    SUBPROTOCOLS,
    Backoff,
    HandshakeRefused,
    Output,
    SimulatorBase,
    SimulatorOptions,
    StationState,
    print_line,
    wait_first,
)
from simulator.v16 import Simulator16
from simulator.v201 import Simulator21, Simulator201

SIMULATORS: dict[str, type[SimulatorBase]] = {
    "1.6": Simulator16,
    "2.0.1": Simulator201,
    "2.1": Simulator21,
}


async def connect(options: SimulatorOptions) -> Any:
    """Open the websocket as a charger does; HandshakeRefused when the backend says no."""
    try:
        connection = await websockets.connect(
            options.station_url,
            subprotocols=[SUBPROTOCOLS[options.version]],
            additional_headers=options.headers,
            open_timeout=10,
        )
    except websockets.InvalidStatus as exc:
        raise HandshakeRefused(
            f"{options.station_url} refused the connection (HTTP {exc.response.status_code})"
        ) from exc
    if connection.subprotocol != SUBPROTOCOLS[options.version]:
        await connection.close()
        raise HandshakeRefused(f"the backend did not agree to {SUBPROTOCOLS[options.version]}")
    return connection


@contextlib.asynccontextmanager
async def open_simulator(
    options: SimulatorOptions,
    *,
    state: StationState | None = None,
    output: Output = print_line,
) -> AsyncIterator[SimulatorBase]:
    """A connected simulator whose receive loop runs; drive it step by step.

    async with open_simulator(SimulatorOptions(cbid="CP-1", url=...)) as charger:
        status, interval = await charger.boot()
    """
    connection = await connect(options)
    simulator = SIMULATORS[options.version](options, connection, state=state, output=output)
    reader = asyncio.create_task(simulator.start(), name="receive")
    try:
        yield simulator
    finally:
        await simulator.cancel_tasks()
        await connection.close()
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)


async def run_simulator(
    options: SimulatorOptions,
    *,
    stop: asyncio.Event | None = None,
    output: Output = print_line,
) -> SimulatorBase:
    """Run a simulated charger until `stop` is set or `options.duration` has passed.

    Stays connected like real firmware: reconnects after a Reset (at once) and whenever
    the backend closes the connection or it drops, backing off between failed attempts
    (`Backoff`), with the password the backend last gave it. With
    `options.exit_on_close` it returns when the backend closes the connection instead.
    The first connection must work: a refused or failed first handshake raises
    (HandshakeRefused, OSError), to tell the person who started it.
    Returns the last simulator (its `registration_status` tells how the boot went).
    """
    stop = stop or asyncio.Event()
    timer = None
    if options.duration is not None:
        timer = asyncio.get_running_loop().call_later(options.duration, stop.set)
    state = StationState()
    backoff = Backoff(options)
    boot_reason: str | None = None
    simulator: SimulatorBase | None = None
    first = True
    try:
        while not stop.is_set():
            try:
                connection = await connect(options)
            except (OSError, TimeoutError, websockets.InvalidHandshake, HandshakeRefused) as exc:
                if first:
                    raise
                if options.exit_on_close:
                    output(f"could not reconnect ({exc}): exiting")
                    break
                delay = backoff.next_delay()
                output(f"could not reconnect ({exc}); trying again in {delay:.1f} s")
                await wait_first(stop.wait(), asyncio.sleep(delay))
                continue
            first = False
            simulator = SIMULATORS[options.version](options, connection, state=state, output=output)
            simulator.say(f"connected to {options.station_url} (OCPP {options.version})")
            try:
                ended = await simulator.run_session(stop, boot_reason=boot_reason)
            finally:
                await connection.close()
            code = connection.close_code
            if ended == "reset":
                simulator.say(f"resetting ({simulator.reset_type}): reconnecting")
                boot_reason = "RemoteReset"
                await asyncio.sleep(1)
                continue
            if ended == "stopped":
                simulator.say("disconnected")
                break
            why = "another connection took over" if code == CLOSE_REPLACED else f"code {code}"
            if options.exit_on_close:
                simulator.say(f"the backend closed the connection ({why}): exiting")
                break
            if simulator.registration_status is not None:
                backoff.reset()  # The backend answered this connection: a fresh outage.
            delay = backoff.next_delay()
            simulator.say(f"connection closed ({why}); reconnecting in {delay:.1f} s")
            boot_reason = None
            await wait_first(stop.wait(), asyncio.sleep(delay))
    finally:
        if timer is not None:
            timer.cancel()
    return simulator
