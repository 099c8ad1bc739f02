"""/healthz and /readyz through a real daphne, as a load balancer's check sends them."""

from __future__ import annotations

import json
import socket
import time

import pytest

from tests.e2e.conftest import server_environment
from tests.e2e.servers import HOST, DaphneServer, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def raw_get(port: int, path: str) -> tuple[int, dict]:
    """HTTP/1.0 with no Host header, as the simplest health checker sends it."""
    with socket.create_connection((HOST, port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.0\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_healthz_and_readyz_without_host_or_login():
    # Production hardening on: HTTPS redirect, secure cookies. The checks still answer.
    with DaphneServer(env=server_environment(SECURE_SSL_REDIRECT="1")) as server:
        assert raw_get(server.port, "/healthz") == (200, {"status": "ok"})
        assert raw_get(server.port, "/readyz") == (200, {"status": "ok"})


def test_readyz_is_503_when_redis_is_unreachable():
    env = server_environment(REDIS_URL=f"redis://{HOST}:{free_port()}/0", READYZ_TIMEOUT="1")
    with DaphneServer(env=env) as server:
        assert raw_get(server.port, "/healthz") == (200, {"status": "ok"})
        started = time.monotonic()
        status, body = raw_get(server.port, "/readyz")
        assert time.monotonic() - started < 5
        assert status == 503
        assert list(body["problems"]) == ["channel_layer"]
