"""Daphne pings idle sockets and drops a peer that stops answering; the station goes offline.

A charger whose link dies silently (NAT timeout, power cut behind a modem) sends no TCP FIN:
without pings its socket, and its "online" station, would live forever. Production runs
daphne with `--ping-interval 30 --ping-timeout 30` (see the Makefile); here the same server
runs with 1 s / 2 s so the test takes seconds:

- a raw-socket charger completes the handshake and boots, receives a ping (opcode 0x9) and
  never answers it: the server cuts the TCP connection and the station is marked offline;
- a well-behaved charger (`websockets`, which answers pings) idle for longer than
  interval + timeout stays connected and online.

Daphne checks its sockets every 2 s (`Server.timeout_checker`), so a ping goes out 1-3 s
after the last data frame from the charger. Autobahn arms the ping timeout on a timer that
rounds its deadline down to a whole second (txaio's batched timer), so a dead peer is
dropped between timeout - 1 and timeout seconds after the ping (29-30 s in production).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import socket
import struct
import time
from collections.abc import Callable, Iterator

import pytest
from websockets.sync.client import connect

from stations.models import Station
from tests.e2e.conftest import server_environment
from tests.e2e.servers import HOST, DaphneServer
from tests.factories import make_cpo, make_station

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PING_INTERVAL = 1
PING_TIMEOUT = 2
# Worst case for a dead peer: one timeout_checker tick (2 s) after the interval, then the
# timeout; plus slack for a loaded machine.
DROP_WITHIN = PING_INTERVAL + 2 + PING_TIMEOUT + 3
# Longer than a dead peer survives (interval + tick + timeout): the control must outlive it.
IDLE_FOR = PING_INTERVAL + 2 + PING_TIMEOUT + 1

OP_TEXT, OP_CLOSE, OP_PING = 0x1, 0x8, 0x9
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
BOOT = [2, "boot", "BootNotification", {"chargePointVendor": "A", "chargePointModel": "B"}]


@pytest.fixture
def server(transactional_db) -> Iterator[DaphneServer]:
    daphne = DaphneServer(
        env=server_environment(), ping_interval=PING_INTERVAL, ping_timeout=PING_TIMEOUT
    ).start()
    try:
        yield daphne
    finally:
        daphne.stop()
        print(f"--- daphne log ({daphne.http_url}) ---\n{daphne.log_text()[-20000:]}")
        daphne.close()


def registered_station(cbid: str) -> None:
    # Registered, so the boot is Accepted and the Heartbeat of the control case is answered.
    make_station(cbid, cpo=make_cpo(f"CPO of {cbid}"))


def eventually(check: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(0.05)


def is_offline(cbid: str) -> bool:
    station = Station.objects.get(cbid=cbid)
    return not station.connected and station.channel_name == ""


class RawCharger:
    """A WebSocket client on a bare TCP socket: it sends and reads only what the test says.

    Crucially it never sends a pong, which every WebSocket library does on its own.
    """

    def __init__(self, port: int, cbid: str) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=10)
        self.buffer = b""
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET /ocpp/{cbid} HTTP/1.1\r\n"
                f"Host: {HOST}:{port}\r\n"
                "Upgrade: websocket\r\n"
                "Connection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n"
                "Sec-WebSocket-Protocol: ocpp1.6\r\n"
                "\r\n"
            ).encode()
        )
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(4096)
            assert chunk, f"server closed during the handshake: {self.buffer!r}"
            self.buffer += chunk
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        assert lines[0].startswith("HTTP/1.1 101"), f"handshake refused: {head!r}"
        headers = {k.strip().lower(): v.strip() for k, v in (x.split(":", 1) for x in lines[1:])}
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        assert headers.get("sec-websocket-accept") == accept, headers
        assert headers.get("sec-websocket-protocol") == "ocpp1.6", headers

    def send_text(self, text: str) -> None:
        # Client frames must be masked (RFC 6455 5.3); payloads here are < 64 KiB.
        payload = text.encode()
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        length = (
            struct.pack("!B", 0x80 | len(payload))
            if len(payload) < 126
            else struct.pack("!BH", 0x80 | 126, len(payload))
        )
        self.sock.sendall(struct.pack("!B", 0x80 | OP_TEXT) + length + mask + masked)

    def _read_exactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionResetError("EOF")
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def read_frame(self) -> tuple[int, bytes]:
        """(opcode, payload) of the next frame; raises ConnectionError once the peer is gone."""
        first, second = self._read_exactly(2)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._read_exactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._read_exactly(8))
        assert not second & 0x80, "server frames are never masked"
        return first & 0x0F, self._read_exactly(length)

    def close(self) -> None:
        self.sock.close()


def test_a_peer_that_stops_answering_pings_is_dropped_and_goes_offline(server):
    registered_station("DEAD-1")
    charger = RawCharger(server.port, "DEAD-1")
    try:
        charger.send_text(json.dumps(BOOT))
        opcode, payload = charger.read_frame()
        assert opcode == OP_TEXT, (opcode, payload)
        assert json.loads(payload)[2]["status"] == "Accepted"
        assert Station.objects.get(cbid="DEAD-1").connected

        # From here on the charger only listens: it never sends a pong or anything else.
        silent_since = time.monotonic()
        deadline = silent_since + DROP_WITHIN
        pinged_at = None
        frames = []
        try:
            while True:
                # One deadline for the whole wait: each ping would restart a per-recv timeout.
                charger.sock.settimeout(max(0.01, deadline - time.monotonic()))
                opcode, payload = charger.read_frame()
                frames.append(opcode)
                if opcode == OP_PING and pinged_at is None:
                    pinged_at = time.monotonic()
                if opcode == OP_CLOSE:
                    break
        except TimeoutError:
            pytest.fail(
                f"the server kept the unresponsive peer for {DROP_WITHIN} s (frames seen: {frames})"
            )
        except ConnectionError as exc:
            # Autobahn aborts the connection (RST) on a ping timeout: the expected end.
            frames.append(repr(exc))
        dropped_at = time.monotonic()
    finally:
        charger.close()

    # Shown with a failure: what came in and when, counted from the boot's answer.
    print(
        f"frames after boot: {frames}; ping at +{(pinged_at or 0) - silent_since:.2f} s, "
        f"drop at +{dropped_at - silent_since:.2f} s"
    )
    assert pinged_at is not None, f"dropped without a ping first (frames seen: {frames})"
    assert pinged_at - silent_since <= PING_INTERVAL + 2 + 1, "first ping came late"
    # Not dropped at once but when the ping timeout (rounded down, see above) ran out: the
    # drop is the unanswered ping's doing.
    assert PING_TIMEOUT - 1.2 <= dropped_at - pinged_at <= PING_TIMEOUT + 2, (
        f"dropped {dropped_at - pinged_at:.1f} s after the ping (timeout {PING_TIMEOUT} s)"
    )
    eventually(lambda: is_offline("DEAD-1"), "station DEAD-1 going offline")
    assert Station.objects.get(cbid="DEAD-1").disconnected_at is not None


class _Frames(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.received: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == "< %s":  # websockets logs each received frame so, at DEBUG
            self.received.append(str(record.args[0]))


def test_a_peer_that_answers_pings_survives_idling(server):
    registered_station("ALIVE-1")
    frames = _Frames()
    frame_logger = logging.getLogger("tests.e2e.test_dead_peer.frames")
    frame_logger.setLevel(logging.DEBUG)
    frame_logger.propagate = False
    frame_logger.addHandler(frames)
    try:
        # ping_interval=None: the client sends no pings of its own, it only answers the
        # server's; so the server's pings alone decide whether it lives.
        with connect(
            server.ws_url("ALIVE-1"),
            subprotocols=["ocpp1.6"],
            ping_interval=None,
            proxy=None,
            logger=frame_logger,
        ) as ws:
            ws.send(json.dumps(BOOT))
            assert json.loads(ws.recv(timeout=10))[2]["status"] == "Accepted"

            time.sleep(IDLE_FOR)  # no data frames either way; pongs answered in background

            assert not [f for f in frames.received if f.startswith("CLOSE")], frames.received
            pings = [f for f in frames.received if f.startswith("PING")]
            assert len(pings) >= 2, f"expected repeated server pings, got {frames.received}"
            assert Station.objects.get(cbid="ALIVE-1").connected
            # The socket still works, both ways.
            ws.send(json.dumps([2, "hb", "Heartbeat", {}]))
            reply = json.loads(ws.recv(timeout=10))
            assert reply[:2] == [3, "hb"], reply
    finally:
        frame_logger.removeHandler(frames)
