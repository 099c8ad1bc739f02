"""Consumers that crash or are closed for cause, in a loop, through real daphne (issue 11.1).

Under `WebsocketCommunicator` a close with 1009 or 1008 passed; autobahn refuses any
application close code but 1000 and 3000-4999, so through daphne those ended as a crash
(1011, "invalid close code"), the disconnect cleanup never ran, the station stayed online
with its commands queued, and every crash leaked memory. Here each round one charger:

- sends a frame over OCPP_MAX_FRAME_BYTES: closed with 4009;
- floods Heartbeats: closed with 4008;
- nests its payload hundreds of levels deep: a CALLERROR, the connection kept;
- sets off a crash in the frame path (tests/e2e/crashing_asgi.py): closed with 4011.

Each round queues a Command first; afterwards the station is offline, the Command failed
as offline with a reason, and the liveness task does not bring the station back (its
registry entry is gone). Daphne's memory stays flat over the rounds.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from ocpp_spec.close_codes import (
    CLOSE_INTERNAL_ERROR,
    CLOSE_MESSAGE_TOO_BIG,
    CLOSE_POLICY_VIOLATION,
)
from stations.models import Command, Station
from tests.e2e.conftest import server_environment
from tests.e2e.crashing_asgi import CRASH_MARKER
from tests.e2e.servers import DaphneServer
from tests.factories import make_cpo, make_station

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CBID = "CP-GHOST"
ROUNDS = 360
# RSS grows over the first rounds whatever the rounds do (allocator arenas, caches), and
# by some 7 KB a round for plain connections after that, flattening out by 400.
WARM_UP = 120
# The leak found was 40-70 KB per crash: ~10 MB or more over the measured rounds.
MAX_GROWTH_KB_PER_ROUND = 20


class CrashingDaphne(DaphneServer):
    def command(self) -> list[str]:
        return [
            "tests.e2e.crashing_asgi:application" if part == "virta.asgi:application" else part
            for part in super().command()
        ]


@pytest.fixture
def server(transactional_db) -> Iterator[DaphneServer]:
    # Python's default collector thresholds: production's (GC_THRESHOLDS) leave cyclic
    # garbage for a long time, which would hide a leak behind garbage not yet collected.
    env = server_environment(OCPP_LIVENESS_INTERVAL="1", GC_THRESHOLDS="700,10,10")
    daphne = CrashingDaphne(env=env).start()
    try:
        yield daphne
    finally:
        daphne.stop()
        print(f"--- daphne log ({daphne.http_url}) ---\n{daphne.log_text()[-8000:]}")
        daphne.close()


def eventually(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(0.02)


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def closed_with(ws) -> int | None:
    """Read until the server closes the socket; its close code."""
    try:
        while True:
            ws.recv(timeout=10)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None


def nested(levels: int) -> dict:
    data: dict = {}
    for _ in range(levels):
        data = {"customData": data}
    return data


def too_big(ws) -> int | None:
    ws.send(json.dumps([2, "big", "DataTransfer", {"vendorId": "x" * 300_000}]))
    return closed_with(ws)


def flood(ws) -> int | None:
    for n in range(130):
        ws.send(json.dumps([2, f"f{n}", "Heartbeat", {}]))
    return closed_with(ws)


def deep_then_crash(ws) -> int | None:
    ws.send(json.dumps([2, "deep", "Heartbeat", nested(400)]))
    reply = json.loads(ws.recv(timeout=10))
    assert reply[:3] == [4, "deep", "FormationViolation"], reply
    ws.send(json.dumps([2, "hb", "Heartbeat", {}]))
    assert json.loads(ws.recv(timeout=10))[:2] == [3, "hb"], "the connection was kept"
    return crash(ws)


def crash(ws) -> int | None:
    ws.send(json.dumps([2, "boom", "DataTransfer", {"vendorId": CRASH_MARKER}]))
    return closed_with(ws)


ROUND_KINDS = [
    (too_big, CLOSE_MESSAGE_TOO_BIG),
    (flood, CLOSE_POLICY_VIOLATION),
    (deep_then_crash, CLOSE_INTERNAL_ERROR),
    (crash, CLOSE_INTERNAL_ERROR),
]


def test_crashed_consumers_leave_no_ghost_and_no_leak(server):
    station = make_station(CBID, cpo=make_cpo("Ghost CPO"), registration_status="Accepted")
    baseline = None
    for n in range(ROUNDS):
        if n == WARM_UP:
            baseline = rss_kb(server.process.pid)
        run, expected = ROUND_KINDS[n % len(ROUND_KINDS)]
        with connect(server.ws_url(CBID), subprotocols=["ocpp1.6"], open_timeout=10) as ws:
            eventually(
                lambda: Station.objects.filter(pk=station.pk, connected=True).exists(),
                "the connection",
            )
            command = Command.objects.create(station=station, action="Reset", payload={})
            code = run(ws)
        assert code == expected, (n, run.__name__, code)
        eventually(
            lambda: not Station.objects.filter(pk=station.pk, connected=True).exists(),
            f"round {n} ({run.__name__}): the station going offline",
        )
        command.refresh_from_db()
        assert command.status == Command.Status.OFFLINE, (n, command.status, command.error)
        assert "disconnected" in command.error
    growth = rss_kb(server.process.pid) - baseline
    print(f"daphne RSS grew by {growth} KB over {ROUNDS - WARM_UP} rounds")

    # No liveness entry keeps the ghost alive: two refresh rounds later, still offline.
    seen = Station.objects.get(pk=station.pk).last_seen
    time.sleep(2.5)
    station.refresh_from_db()
    assert not station.connected and station.last_seen == seen
    assert not Command.objects.filter(status=Command.Status.QUEUED).exists()
    log = server.log_text()
    assert "invalid close code" not in log
    assert "Exception inside application" not in log
    assert growth < MAX_GROWTH_KB_PER_ROUND * (ROUNDS - WARM_UP), growth
