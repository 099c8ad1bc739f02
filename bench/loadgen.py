"""Load generator: simulated OCPP-J chargers (1.6 and 2.0.1) over plain `websockets`.

Frames are hand-rolled (no `ocpp` library on this side: it would cost more client CPU than
the server spends answering). Chargers are spread over several worker processes; each
worker reports its own CPU time so a saturated client is never mistaken for a slow server.

    .venv/bin/python bench/loadgen.py --url ws://127.0.0.1:8000/ocpp --scenario boot \\
        --chargers 300 --duration 20

Scenarios (see bench/README.md):
  boot    every charger connects and sends BootNotification at once, then holds the socket
  steady  boot, then a Heartbeat every --heartbeat-interval s, and MeterValues every
          --meter-interval s from the --charging-share that are charging
  peak    boot, then raise the aggregate request rate step by step until p99 > --p99-limit
  fanout  boot, then wait for the server's CALLs: TriggerMessage is answered Accepted and
          the triggered message is sent
  smoke   a short steady run: boot, then Heartbeats every second
  sessions boot, then charging sessions back to back: Authorize, StartTransaction (2.x:
          TransactionEvent Started), MeterValues every --meter-interval s for
          --session-length s, StopTransaction (2.x: TransactionEvent Ended)

Only loopback addresses are accepted; every loop is bounded by --duration. The summary is
one JSON object on stdout (the last line); progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import multiprocessing as mp
import os
import queue
import random
import resource
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from ipaddress import ip_address
from urllib.parse import urlsplit

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidMessage, InvalidStatus

CALL, CALLRESULT, CALLERROR = 2, 3, 4
SUBPROTOCOL = {"1.6": "ocpp1.6", "2.0.1": "ocpp2.0.1"}
# A worker whose CPU time is above this share of its wall time is the bottleneck itself.
SATURATED_CPU_SHARE = 0.85


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ---- payloads -----------------------------------------------------------------------


def boot_payload(version: str, cbid: str) -> dict:
    if version == "1.6":
        return {
            "chargePointVendor": "VirtaBench",
            "chargePointModel": "Bench-16",
            "chargePointSerialNumber": cbid[:25],
            "firmwareVersion": "1.0.0",
        }
    return {
        "reason": "PowerUp",
        "chargingStation": {
            "model": "Bench-201",
            "vendorName": "VirtaBench",
            "serialNumber": cbid[:25],
            "firmwareVersion": "1.0.0",
        },
    }


def status_payload(version: str, status: str = "Available") -> dict:
    if version == "1.6":
        return {
            "connectorId": 1,
            "errorCode": "NoError",
            "status": status,
            "timestamp": utc_now(),
        }
    # 2.0.1 ConnectorStatusEnumType has no "Charging": a charging connector is Occupied.
    status = "Occupied" if status == "Charging" else status
    return {"timestamp": utc_now(), "connectorStatus": status, "evseId": 1, "connectorId": 1}


def meter_payload(version: str, energy_wh: float) -> dict:
    if version == "1.6":
        return {
            "connectorId": 1,
            "meterValue": [
                {
                    "timestamp": utc_now(),
                    "sampledValue": [
                        {
                            "value": f"{energy_wh:.1f}",
                            "measurand": "Energy.Active.Import.Register",
                            "unit": "Wh",
                        }
                    ],
                }
            ],
        }
    return {
        "evseId": 1,
        "meterValue": [
            {
                "timestamp": utc_now(),
                "sampledValue": [
                    {
                        "value": round(energy_wh, 1),
                        "measurand": "Energy.Active.Import.Register",
                        "unitOfMeasure": {"unit": "Wh"},
                    }
                ],
            }
        ],
    }


def request_payload(action: str, version: str, cbid: str, energy_wh: float = 0.0) -> dict:
    if action == "BootNotification":
        return boot_payload(version, cbid)
    if action == "Heartbeat":
        return {}
    if action == "StatusNotification":
        return status_payload(version)
    if action == "MeterValues":
        return meter_payload(version, energy_wh)
    raise ValueError(f"No payload for {action}")


# ---- one charger --------------------------------------------------------------------


class CallFailed(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class Stats:
    """What one worker measured; merged by the parent."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    failures: Counter = field(default_factory=Counter)
    statuses: Counter = field(default_factory=Counter)
    connected: int = 0
    booted: int = 0
    held: int = 0
    disconnects: int = 0
    calls: int = 0
    server_calls: Counter = field(default_factory=Counter)
    # Seconds from the scenario start until each boot was answered.
    settled: int = 0
    retries: int = 0
    fleet_settled: bool = False
    gave_up: int = 0
    # Boot storm: set once every charger booted (or gave up) and the hold time passed.
    finish: asyncio.Event = field(default_factory=asyncio.Event)
    boot_answered_at: list[float] = field(default_factory=list)
    trigger_received_at: list[float] = field(default_factory=list)

    def fail(self, reason: str) -> None:
        self.failures[reason[:120]] += 1


class Charger:
    """One simulated charger: one socket, one outstanding CALL, answers the server's CALLs."""

    def __init__(self, *, cbid: str, version: str, url: str, stats: Stats, opts: dict):
        self.cbid = cbid
        self.version = version
        self.url = url
        self.stats = stats
        self.opts = opts
        self.ws = None
        self.ids = itertools.count(1)
        self.pending: dict[str, asyncio.Future] = {}
        self.lock = asyncio.Lock()
        self.energy_wh = random.uniform(0, 50_000)
        self.closed = asyncio.Event()
        self.closing = False
        self.reader: asyncio.Task | None = None
        self.background: set[asyncio.Task] = set()

    async def open(self) -> bool:
        started = time.perf_counter()
        try:
            self.ws = await connect(
                f"{self.url}/{self.cbid}",
                subprotocols=[SUBPROTOCOL[self.version]],
                open_timeout=self.opts["open_timeout"],
                # The server pings; the client answers pongs (websockets does it itself).
                ping_interval=None,
                close_timeout=2,
                compression=None,
                max_queue=64,
            )
        except InvalidStatus as exc:
            self.stats.fail(f"handshake HTTP {exc.response.status_code}")
            return False
        except InvalidMessage:
            # Daphne drops a handshake its application has not accepted within
            # --websocket_connect_timeout (5 s by default) without an HTTP response.
            self.stats.fail("handshake closed without a response")
            return False
        except TimeoutError:
            self.stats.fail("connect timeout")
            return False
        except OSError as exc:
            self.stats.fail(f"connect {type(exc).__name__}: {exc.strerror or exc}")
            return False
        except Exception as exc:  # every refusal is a counted failure
            self.stats.fail(f"connect {type(exc).__name__}")
            return False
        if self.ws.subprotocol != SUBPROTOCOL[self.version]:
            self.stats.fail(f"subprotocol {self.ws.subprotocol!r}")
            await self.ws.close()
            return False
        self.stats.latencies["connect"].append(time.perf_counter() - started)
        self.stats.connected += 1
        self.reader = asyncio.create_task(self._read())
        return True

    async def _read(self) -> None:
        try:
            async for text in self.ws:
                try:
                    frame = json.loads(text)
                except ValueError:
                    self.stats.fail("server sent invalid JSON")
                    continue
                if frame[0] == CALL:
                    task = asyncio.create_task(self._answer(frame))
                    self.background.add(task)
                    task.add_done_callback(self.background.discard)
                    continue
                future = self.pending.pop(frame[1], None)
                if future is None or future.done():
                    self.stats.fail("answer to an unknown id")
                    continue
                future.set_result(frame)
        except ConnectionClosed:
            pass
        finally:
            self.closed.set()
            # A call cut short by our own end-of-run close is not the server's failure.
            reason = "unanswered at the end of the run" if self.closing else "connection closed"
            for future in self.pending.values():
                if not future.done():
                    future.set_exception(CallFailed(reason))

    async def _answer(self, frame: list) -> None:
        """Answer a CALL from the server; TriggerMessage then sends what was asked for."""
        _, unique_id, action, payload = frame
        self.stats.server_calls[action] += 1
        if action == "TriggerMessage":
            self.stats.trigger_received_at.append(time.time() - self.opts["t0"])
            requested = payload.get("requestedMessage", "")
            supported = requested in {"StatusNotification", "Heartbeat", "BootNotification"}
            status = "Accepted" if supported else "NotImplemented"
            await self._send([CALLRESULT, unique_id, {"status": status}])
            if supported:
                try:
                    await self.call(requested)
                except CallFailed as exc:
                    self.stats.fail(f"{requested} (triggered): {exc.reason}")
            return
        if action in {"Reset", "ChangeAvailability", "UnlockConnector", "ClearCache"}:
            await self._send([CALLRESULT, unique_id, {"status": "Accepted"}])
            return
        await self._send([CALLERROR, unique_id, "NotImplemented", f"{action} not simulated", {}])

    async def _send(self, frame: list) -> None:
        try:
            await self.ws.send(json.dumps(frame, separators=(",", ":")))
        except ConnectionClosed:
            pass

    async def call(self, action: str, payload: dict | None = None) -> dict:
        """Send one CALL and wait for its answer; records latency or the failure."""
        if payload is None:
            payload = request_payload(action, self.version, self.cbid, self.energy_wh)
        async with self.lock:  # OCPP-J: one outstanding CALL per direction.
            unique_id = str(next(self.ids))
            future = asyncio.get_running_loop().create_future()
            self.pending[unique_id] = future
            started = time.perf_counter()
            try:
                await self.ws.send(json.dumps([CALL, unique_id, action, payload]))
                answer = await asyncio.wait_for(future, self.opts["call_timeout"])
            except TimeoutError:
                self.pending.pop(unique_id, None)
                self.stats.fail(f"{action}: timeout")
                raise CallFailed("timeout") from None
            except ConnectionClosed:
                self.pending.pop(unique_id, None)
                reason = "unanswered at the end of the run" if self.closing else "connection closed"
                self.stats.fail(f"{action}: {reason}")
                raise CallFailed(reason) from None
            except CallFailed as exc:
                self.stats.fail(f"{action}: {exc.reason}")
                raise
            elapsed = time.perf_counter() - started
        self.stats.calls += 1
        if answer[0] == CALLERROR:
            self.stats.fail(f"{action}: CALLERROR {answer[2]}")
            raise CallFailed(f"CALLERROR {answer[2]}")
        # Steady traffic sent while the rest of the fleet still boots is kept apart.
        booting = action != "BootNotification" and not self.stats.fleet_settled
        self.stats.latencies[f"{action} (fleet booting)" if booting else action].append(elapsed)
        return answer[2]

    async def boot(self) -> str:
        answer = await self.call("BootNotification")
        status = answer.get("status", "?")
        self.stats.statuses[status] += 1
        self.stats.booted += 1
        self.stats.boot_answered_at.append(time.time() - self.opts["t0"])
        return status

    async def reset(self) -> None:
        """Drop the connection and its state before trying again."""
        await self.close()
        self.ws = None
        self.reader = None
        self.pending.clear()
        self.closed = asyncio.Event()
        self.closing = False

    async def close(self) -> None:
        self.closing = True
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            await self.reader


# ---- scenarios ----------------------------------------------------------------------


async def sleep_until(deadline: float) -> None:
    delay = deadline - time.time()
    if delay > 0:
        await asyncio.sleep(delay)


async def run_charger(charger: Charger, scenario: str, opts: dict, peak: PeakClock | None):
    end = opts["t0"] + opts["duration"]
    stats = charger.stats
    # Spread the connects over the ramp (0 = all at once: a storm).
    if opts["ramp"] > 0:
        await asyncio.sleep(random.uniform(0, opts["ramp"]))
    booted = False
    try:
        while True:
            if await charger.open():
                try:
                    await charger.boot()
                    booted = True
                    break
                except CallFailed:
                    pass
            # As real chargers do, try again after a while (when --retry asks for it).
            delay = random.uniform(*opts["retry"]) if opts["retry"] else math.inf
            if time.time() + delay >= end:
                break
            stats.retries += 1
            await charger.reset()
            await asyncio.sleep(delay)
    finally:
        stats.settled += 1  # connected and booted, or given up: the peak may start
    try:
        if not booted:
            stats.gave_up += 1
            return
        if scenario in {"boot", "fanout"}:
            until = [charger.closed.wait()] + ([stats.finish.wait()] if scenario == "boot" else [])
            await asyncio.wait(
                [asyncio.create_task(c) for c in until],
                timeout=max(0, end - time.time()),
                return_when=asyncio.FIRST_COMPLETED,
            )
        elif scenario in {"steady", "smoke"}:
            await steady_traffic(charger, opts, end)
        elif scenario == "peak":
            await peak_traffic(charger, opts, end, peak)
        elif scenario == "sessions":
            await session_traffic(charger, opts, end)
        if charger.closed.is_set():
            stats.disconnects += 1
            stats.fail("disconnected by the server")
        else:
            stats.held += 1
    finally:
        await charger.close()


async def steady_traffic(charger: Charger, opts: dict, end: float) -> None:
    heartbeat_every = opts["heartbeat_interval"]
    meter_every = opts["meter_interval"]
    charging = random.random() < opts["charging_share"]
    now = time.time()
    # A random phase, as a real fleet has: not every charger beats in the same second.
    next_heartbeat = now + random.uniform(0, heartbeat_every)
    next_meter = now + random.uniform(0, meter_every) if charging else math.inf
    while not charger.closed.is_set():
        wake = min(next_heartbeat, next_meter)
        if wake >= end:
            await asyncio.wait(
                [asyncio.create_task(charger.closed.wait())], timeout=max(0, end - time.time())
            )
            return
        await sleep_until(wake)
        try:
            if next_meter <= next_heartbeat:
                charger.energy_wh += 7400 * meter_every / 3600
                next_meter += meter_every
                await charger.call("MeterValues")
            else:
                next_heartbeat += heartbeat_every
                await charger.call("Heartbeat")
        except CallFailed:
            if charger.closed.is_set():
                return


def _tx_event(event: str, seq_no: int, tx_id: str, tag: str, energy_wh: float, **extra) -> dict:
    payload = {
        "eventType": event,
        "timestamp": utc_now(),
        "triggerReason": {"Started": "Authorized", "Updated": "MeterValuePeriodic"}.get(
            event, "StopAuthorized"
        ),
        "seqNo": seq_no,
        "transactionInfo": {"transactionId": tx_id, **extra},
        "meterValue": [
            {
                "timestamp": utc_now(),
                "sampledValue": [
                    {
                        "value": round(energy_wh, 1),
                        "measurand": "Energy.Active.Import.Register",
                        "unitOfMeasure": {"unit": "Wh"},
                    }
                ],
            }
        ],
    }
    if event == "Started":
        payload["idToken"] = {"idToken": tag, "type": "ISO14443"}
        payload["evse"] = {"id": 1, "connectorId": 1}
    return payload


async def session_traffic(charger: Charger, opts: dict, end: float) -> None:
    """Sessions back to back until `end`, each of --session-length s (a random phase
    first, so the fleet does not start them all in one second)."""
    length, meter_every = opts["session_length"], opts["meter_interval"]
    tag = f"B{charger.cbid[-18:]}"
    await asyncio.sleep(random.uniform(0, min(length, max(0.0, end - time.time()))))
    n = 0
    while not charger.closed.is_set() and time.time() + 1 < end:
        n += 1
        stop_at = min(end - 0.5, time.time() + length)
        try:
            if charger.version == "1.6":
                await charger.call("Authorize", {"idTag": tag})
                answer = await charger.call(
                    "StartTransaction",
                    {
                        "connectorId": 1,
                        "idTag": tag,
                        "meterStart": int(charger.energy_wh),
                        "timestamp": utc_now(),
                    },
                )
                tx_id = answer.get("transactionId", 0)
            else:
                await charger.call("Authorize", {"idToken": {"idToken": tag, "type": "ISO14443"}})
                tx_id, seq_no = f"{charger.cbid[-20:]}-{n}", 0
                await charger.call(
                    "TransactionEvent", _tx_event("Started", seq_no, tx_id, tag, charger.energy_wh)
                )
            while time.time() + meter_every < stop_at and not charger.closed.is_set():
                await asyncio.sleep(meter_every)
                charger.energy_wh += 11000 * meter_every / 3600
                if charger.version == "1.6":
                    payload = meter_payload("1.6", charger.energy_wh)
                    payload["transactionId"] = tx_id
                    await charger.call("MeterValues", payload)
                else:
                    seq_no += 1
                    await charger.call(
                        "TransactionEvent",
                        _tx_event("Updated", seq_no, tx_id, tag, charger.energy_wh),
                    )
            if charger.version == "1.6":
                await charger.call(
                    "StopTransaction",
                    {
                        "transactionId": tx_id,
                        "meterStop": int(charger.energy_wh),
                        "timestamp": utc_now(),
                        "reason": "EVDisconnected",
                    },
                )
            else:
                await charger.call(
                    "TransactionEvent",
                    _tx_event(
                        "Ended",
                        seq_no + 1,
                        tx_id,
                        tag,
                        charger.energy_wh,
                        stoppedReason="EVDisconnected",
                    ),
                )
        except CallFailed:
            if charger.closed.is_set():
                return


class PeakClock:
    """The peak scenario's rate steps, the same in every worker (shared start time)."""

    def __init__(self, opts: dict):
        # Set by the parent once every charger has connected and booted.
        self.shared_start = opts["peak_start"]
        self.step_seconds = opts["peak_step"]
        self.rates = [
            opts["peak_start_rate"] * opts["peak_factor"] ** k for k in range(opts["peak_steps"])
        ]
        self.stop = opts["stop_event"]

    @property
    def start(self) -> float:
        return self.shared_start.value or math.inf

    async def wait_start(self, end: float) -> None:
        # A value shared with the parent process: no event to wait on, so poll it.
        while not self.shared_start.value and time.time() < end:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        await sleep_until(min(self.start, end))

    def step_at(self, when: float) -> int:
        if when < self.start:
            return -1
        return int((when - self.start) // self.step_seconds)

    def rate(self, step: int) -> float:
        return self.rates[min(step, len(self.rates) - 1)]


async def peak_traffic(charger: Charger, opts: dict, end: float, peak: PeakClock) -> None:
    actions = opts["mix"]
    total = opts["total_chargers"]
    await peak.wait_start(end)
    end = min(end, peak.start + peak.step_seconds * len(peak.rates))
    await sleep_until(peak.start + random.expovariate(peak.rate(0) / total))
    while not charger.closed.is_set() and time.time() < end and not peak.stop.is_set():
        started = time.time()
        try:
            await charger.call(random.choice(actions))
        except CallFailed:
            if charger.closed.is_set():
                return
        # Poisson arrivals at this charger's share of the step's rate, redrawn at each step
        # boundary (memoryless, so that is exact). A slow answer delays the next call (one
        # outstanding CALL per charger), which the achieved rate then shows.
        when = started
        while True:
            step = peak.step_at(when)
            boundary = peak.start + (step + 1) * peak.step_seconds
            when += random.expovariate(peak.rate(step) / total)
            if when < boundary or boundary >= end:
                break
            when = boundary
        await sleep_until(min(when, end))


# ---- a worker process ---------------------------------------------------------------


def raise_open_files() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def snapshot(stats: Stats) -> dict:
    return {
        "latencies": {k: list(v) for k, v in stats.latencies.items()},
        "failures": dict(stats.failures),
        "calls": stats.calls,
    }


def take(stats: Stats, archive: list[dict]) -> dict:
    """Snapshot and reset the counters; the archive keeps them for the final summary."""
    snap = snapshot(stats)
    archive.append(snap)
    stats.latencies.clear()
    stats.failures.clear()
    stats.calls = 0
    return snap


async def peak_reporter(
    stats: Stats, peak: PeakClock, out: mp.Queue, worker: int, end: float, archive: list
):
    """At the end of each rate step, send what completed in it to the parent."""
    await peak.wait_start(end)
    take(stats, archive)  # the boots of the warm-up belong to no step
    step = 0
    while time.time() < end and not peak.stop.is_set() and step < len(peak.rates):
        await sleep_until(peak.start + (step + 1) * peak.step_seconds)
        out.put(("step", worker, step, take(stats, archive)))
        step += 1


async def finish_boot(stats: Stats, chargers: int, opts: dict) -> None:
    """Hold the sockets --hold s after the last boot was answered, then end the storm."""
    end = opts["t0"] + opts["duration"]
    while stats.settled < chargers and time.time() < end:  # noqa: ASYNC110
        await asyncio.sleep(0.2)
    await asyncio.sleep(opts["hold"])
    stats.finish.set()


async def mark_settled(stats: Stats, chargers: int) -> None:
    while stats.settled < chargers:  # noqa: ASYNC110
        await asyncio.sleep(0.2)
    stats.fleet_settled = True


async def report_ready(stats: Stats, chargers: int, out: mp.Queue, worker: int) -> None:
    # Counted by every charger task; polling is cheaper than an event per charger.
    while stats.settled < chargers:  # noqa: ASYNC110
        await asyncio.sleep(0.2)
    out.put(("ready", worker))


async def worker_main(worker: int, cbids: list[tuple[str, str, str]], opts: dict, out: mp.Queue):
    stats = Stats()
    cpu0 = time.process_time()
    wall0 = time.time()
    peak = PeakClock(opts) if opts["scenario"] == "peak" else None
    await sleep_until(opts["t0"])
    chargers = [
        Charger(cbid=cbid, version=version, url=url, stats=stats, opts=opts)
        for cbid, version, url in cbids
    ]
    tasks = [asyncio.create_task(run_charger(c, opts["scenario"], opts, peak)) for c in chargers]
    reporter = None
    archive: list[dict] = []
    settler = asyncio.create_task(mark_settled(stats, len(chargers)))
    finisher = None
    if opts["scenario"] == "boot":
        finisher = asyncio.create_task(finish_boot(stats, len(chargers), opts))
    if peak is not None:
        ready = asyncio.create_task(report_ready(stats, len(chargers), out, worker))
        end = opts["t0"] + opts["duration"]
        reporter = asyncio.create_task(peak_reporter(stats, peak, out, worker, end, archive))
    # Bounded: every charger stops by t0 + duration; allow a little for closing handshakes.
    done, stuck = await asyncio.wait(
        tasks, timeout=max(1.0, opts["t0"] + opts["duration"] + 15 - time.time())
    )
    for task in stuck:
        task.cancel()
        stats.fail("charger task still running at the end")
    for task in done:
        if task.exception() is not None:
            stats.fail(f"charger crashed: {type(task.exception()).__name__}")
    if reporter is not None:
        reporter.cancel()
        ready.cancel()
    if finisher is not None:
        finisher.cancel()
    settler.cancel()
    take(stats, archive)
    totals = {
        "latencies": merge_latencies(archive),
        "failures": dict(sum((Counter(a["failures"]) for a in archive), Counter())),
        "calls": sum(a["calls"] for a in archive),
    }
    cpu = time.process_time() - cpu0
    wall = time.time() - wall0
    result = {
        "worker": worker,
        "chargers": len(cbids),
        "cpu_seconds": round(cpu, 2),
        "wall_seconds": round(wall, 2),
        "cpu_share": round(cpu / wall, 3) if wall else 0.0,
        "max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "connected": stats.connected,
        "booted": stats.booted,
        "held": stats.held,
        "retries": stats.retries,
        "gave_up": stats.gave_up,
        "disconnects": stats.disconnects,
        "statuses": dict(stats.statuses),
        "server_calls": dict(stats.server_calls),
        "boot_answered_at": stats.boot_answered_at,
        "trigger_received_at": stats.trigger_received_at,
        **totals,
    }
    out.put(("done", worker, result))


def worker_entry(worker: int, cbids: list, opts: dict, out: mp.Queue) -> None:
    raise_open_files()
    asyncio.run(worker_main(worker, cbids, opts, out))


# ---- the parent: split, run, merge --------------------------------------------------


def percentiles(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]

    return {
        "n": len(ordered),
        "p50_ms": round(pick(0.50) * 1000, 2),
        "p95_ms": round(pick(0.95) * 1000, 2),
        "p99_ms": round(pick(0.99) * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
    }


def merge_latencies(snapshots: list[dict]) -> dict[str, list[float]]:
    merged: dict[str, list[float]] = defaultdict(list)
    for snap in snapshots:
        for action, values in snap["latencies"].items():
            merged[action].extend(values)
    return merged


def check_loopback(urls: list[str]) -> None:
    for url in urls:
        host = urlsplit(url).hostname or ""
        try:
            loopback = ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if not loopback:
            raise SystemExit(f"refusing to load {url}: the benchmark only targets loopback")


def assign(args: argparse.Namespace, urls: list[str]) -> list[tuple[str, str, str]]:
    """(cbid, version, url) per charger: versions interleaved, URLs round-robin."""
    every_nth = round(1 / args.v201_share) if args.v201_share > 0 else 0
    out = []
    for i in range(args.chargers):
        version = "2.0.1" if every_nth and i % every_nth == every_nth - 1 else "1.6"
        out.append((f"{args.prefix}{i:05d}", version, urls[i % len(urls)]))
    return out


def run(args: argparse.Namespace) -> dict:
    urls = [u.rstrip("/") for u in args.url.split(",")]
    check_loopback(urls)
    raise_open_files()
    workers = args.workers or max(1, math.ceil(args.chargers / args.per_worker))
    plan = assign(args, urls)
    ctx = mp.get_context("fork")
    out: mp.Queue = ctx.Queue()
    stop_event = ctx.Event()
    peak_start = ctx.Value("d", 0.0)
    t0 = time.time() + 0.5 + 0.1 * workers  # every worker starts the storm at the same time
    opts = {
        "scenario": args.scenario,
        "t0": t0,
        "duration": args.duration,
        "ramp": args.ramp,
        "retry": tuple(args.retry) if args.retry else None,
        "hold": args.hold,
        "open_timeout": args.open_timeout,
        "call_timeout": args.call_timeout,
        "heartbeat_interval": args.heartbeat_interval,
        "meter_interval": args.meter_interval,
        "session_length": args.session_length,
        "charging_share": args.charging_share,
        "mix": args.mix.split(","),
        "total_chargers": args.chargers,
        "peak_warmup": args.peak_warmup,
        "peak_step": args.peak_step,
        "peak_start_rate": args.peak_start_rate,
        "peak_factor": args.peak_factor,
        "peak_steps": args.peak_steps,
        "stop_event": stop_event,
        "peak_start": peak_start,
    }
    processes = [
        ctx.Process(target=worker_entry, args=(w, plan[w::workers], opts, out), daemon=True)
        for w in range(workers)
    ]
    for p in processes:
        p.start()
    results: dict[int, dict] = {}
    steps: dict[int, list[dict]] = defaultdict(list)
    peak_steps: list[dict] = []
    deadline = t0 + args.duration + 60
    ready = 0
    while len(results) < workers and time.time() < deadline:
        if not peak_start.value and (ready == workers or time.time() > t0 + args.peak_warmup):
            # Every charger is connected and booted (or the warm-up ran out): go.
            peak_start.value = time.time() + 1.0
        try:
            message = out.get(timeout=1)
        except queue.Empty:
            if not any(p.is_alive() for p in processes):
                break
            continue
        if message[0] == "done":
            results[message[1]] = message[2]
        elif message[0] == "ready":
            ready += 1
        elif message[0] == "step" and not stop_event.is_set():
            _, _worker, step, snap = message
            steps[step].append(snap)
            if len(steps[step]) == workers:
                summary = peak_step_summary(args, step, steps.pop(step))
                peak_steps.append(summary)
                print(f"peak step {step}: {json.dumps(summary)}", file=sys.stderr)
                if not summary["ok"]:
                    stop_event.set()
    for p in processes:
        p.join(timeout=5)
        if p.is_alive():
            p.terminate()
    return summarise(args, urls, workers, list(results.values()), peak_steps)


def peak_step_summary(args: argparse.Namespace, step: int, snaps: list[dict]) -> dict:
    latencies = merge_latencies(snaps)
    everything = [v for values in latencies.values() for v in values]
    failures = sum(sum(s["failures"].values()) for s in snaps)
    calls = sum(s["calls"] for s in snaps)
    target = args.peak_start_rate * args.peak_factor**step
    stats = percentiles(everything)
    achieved = calls / args.peak_step
    ok = (
        bool(everything)
        and stats["p99_ms"] <= args.p99_limit
        and failures <= 0.001 * max(calls, 1)
        and achieved >= 0.8 * target
    )
    return {
        "step": step,
        "target_calls_s": round(target, 1),
        "calls_s": round(achieved, 1),
        "failures": failures,
        "ok": ok,
        **{k: v for k, v in stats.items() if k != "n"},
    }


def summarise(
    args: argparse.Namespace, urls: list[str], workers: int, results: list[dict], peak_steps
) -> dict:
    latencies = merge_latencies(results)
    failures: Counter = Counter()
    statuses: Counter = Counter()
    server_calls: Counter = Counter()
    for r in results:
        failures.update(r["failures"])
        statuses.update(r["statuses"])
        server_calls.update(r["server_calls"])
    boot_times = sorted(t for r in results for t in r["boot_answered_at"])
    triggers = sorted(t for r in results for t in r["trigger_received_at"])
    calls = sum(r["calls"] for r in results)
    client = [
        {k: r[k] for k in ("worker", "chargers", "cpu_seconds", "wall_seconds", "cpu_share")}
        for r in sorted(results, key=lambda r: r["worker"])
    ]
    summary = {
        "scenario": args.scenario,
        "chargers": args.chargers,
        "v201_share": args.v201_share,
        "duration_s": args.duration,
        "urls": urls,
        "workers": workers,
        "workers_reported": len(results),
        "connected": sum(r["connected"] for r in results),
        "booted": sum(r["booted"] for r in results),
        "held": sum(r["held"] for r in results),
        "retries": sum(r["retries"] for r in results),
        "gave_up": sum(r["gave_up"] for r in results),
        "disconnects": sum(r["disconnects"] for r in results),
        "boot_statuses": dict(statuses),
        "failures": dict(failures.most_common()),
        "failure_count": sum(failures.values()),
        "calls": calls,
        "calls_per_s": round(calls / args.duration, 1) if args.duration else 0,
        "latency": {action: percentiles(v) for action, v in sorted(latencies.items())},
        "last_boot_answered_s": round(boot_times[-1], 2) if boot_times else None,
        "boots_answered_within_60s": sum(1 for t in boot_times if t <= 60),
        "server_calls": dict(server_calls),
        "triggers_received": len(triggers),
        "client": client,
        "client_saturated": any(c["cpu_share"] >= SATURATED_CPU_SHARE for c in client),
    }
    if workers != len(results):
        summary["failures"]["worker did not report"] = workers - len(results)
        summary["failure_count"] += workers - len(results)
    if args.scenario == "peak":
        summary["peak_steps"] = peak_steps
        good = [s for s in peak_steps if s["ok"]]
        summary["peak_calls_s"] = max((s["calls_s"] for s in good), default=0.0)
        summary["peak_limit_reached"] = any(not s["ok"] for s in peak_steps)
    return summary


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--url", required=True, help="ws://127.0.0.1:PORT/ocpp (comma-separate several)")
    p.add_argument(
        "--scenario",
        choices=["boot", "steady", "peak", "fanout", "smoke", "sessions"],
        default="boot",
    )
    p.add_argument("--session-length", type=float, default=60.0, help="sessions: s each")
    p.add_argument("--chargers", type=int, default=100)
    p.add_argument("--duration", type=float, default=10.0, help="seconds, from the storm's start")
    p.add_argument("--prefix", default=f"bench-{os.getpid()}-", help="CBID prefix")
    p.add_argument("--v201-share", type=float, default=0.5, help="share of 2.0.1 chargers")
    p.add_argument("--workers", type=int, default=0, help="processes (0: one per --per-worker)")
    p.add_argument("--per-worker", type=int, default=2500)
    p.add_argument("--ramp", type=float, default=0.0, help="spread connects over this many s")
    p.add_argument(
        "--retry",
        type=float,
        nargs=2,
        metavar=("MIN", "MAX"),
        help="retry a failed connect/boot after MIN..MAX s (until --duration)",
    )
    p.add_argument("--hold", type=float, default=5.0, help="boot: hold s after the last boot")
    p.add_argument("--open-timeout", type=float, default=60.0)
    p.add_argument("--call-timeout", type=float, default=60.0)
    p.add_argument("--heartbeat-interval", type=float, default=60.0)
    p.add_argument("--meter-interval", type=float, default=10.0)
    p.add_argument("--charging-share", type=float, default=0.2)
    p.add_argument("--mix", default="Heartbeat,Heartbeat,StatusNotification,MeterValues")
    p.add_argument(
        "--peak-warmup", type=float, default=120.0, help="at most s of connecting and booting"
    )
    p.add_argument("--peak-step", type=float, default=5.0, help="seconds per rate step")
    p.add_argument("--peak-start-rate", type=float, default=100.0, help="calls/s of step 0")
    p.add_argument("--peak-factor", type=float, default=1.4)
    p.add_argument("--peak-steps", type=int, default=12)
    p.add_argument("--p99-limit", type=float, default=250.0, help="ms")
    args = p.parse_args(argv)
    if args.scenario == "smoke":
        args.heartbeat_interval = min(args.heartbeat_interval, 1.0)
        args.meter_interval = min(args.meter_interval, 1.0)
    if args.scenario == "peak":
        needed = args.peak_warmup + args.peak_step * args.peak_steps
        args.duration = max(args.duration, needed)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    summary = run(args)
    print(json.dumps(summary))
    return 1 if summary["failure_count"] else 0


if __name__ == "__main__":
    sys.exit(main())
