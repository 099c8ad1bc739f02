"""`/ocpp/CP;X` is not station CP (issue 11.6), through real daphne.

Autobahn splits the request URI with urlparse, which drops `;params` from the last path
segment; `ocpp_gateway.daphne_paths` gives them back, so the CBID check refuses them.
A raw socket sends the request line: client libraries (websockets too) urlparse the URL
and would drop the parameters before they left.
"""

from __future__ import annotations

import base64
import os
import socket

import pytest

from stations.models import ConnectionAttempt, Station
from tests.e2e.servers import HOST
from tests.factories import make_cpo, make_station

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def handshake_status(port: int, path: str) -> str:
    """The status line daphne answers a websocket handshake for `path` with."""
    with socket.create_connection((HOST, port), timeout=10) as sock:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\n"
                f"Host: {HOST}:{port}\r\n"
                "Upgrade: websocket\r\n"
                "Connection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n"
                "Sec-WebSocket-Protocol: ocpp1.6\r\n"
                "\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                break
            head += chunk
    return head.split(b"\r\n", 1)[0].decode("latin-1")


@pytest.mark.parametrize("suffix", [";X", ";", ";a=b", ";X?x=1"])
def test_path_parameters_are_part_of_the_cbid_and_refused(daphne_server, suffix):
    make_station("CP-SEMI", cpo=make_cpo("Semi CPO"), registration_status="Accepted")
    status = handshake_status(daphne_server.port, f"/ocpp/CP-SEMI{suffix}")
    assert status.startswith("HTTP/1.1 403"), status
    assert not Station.objects.get(cbid="CP-SEMI").connected
    refused = ConnectionAttempt.objects.get()
    assert refused.reason == ConnectionAttempt.Reason.BAD_CBID
    assert refused.cbid == "CP-SEMI" + suffix.split("?")[0]


def test_the_same_path_without_parameters_is_admitted(daphne_server):
    make_station("CP-SEMI", cpo=make_cpo("Semi CPO"), registration_status="Accepted")
    status = handshake_status(daphne_server.port, "/ocpp/CP-SEMI?x=1")
    assert status.startswith("HTTP/1.1 101"), status
